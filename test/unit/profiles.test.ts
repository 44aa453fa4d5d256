// The pure parts of the profile modules: the XEP-0153 avatar hash of a vCard and XEP-0049's reserved
// namespaces.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { reservedNamespace } from '../../lib/extensions/private/index.ts';
import { photoHash } from '../../lib/extensions/vcard/photo.ts';
import { parseFrame } from '../../lib/xmpp/xml.ts';

describe('XEP-0153 photoHash', () => {
  const image = Buffer.from('not really a PNG, but bytes all the same');
  const sha1 = createHash('sha1').update(image).digest('hex');

  it('§3.1: the SHA-1 of the decoded image, not of its base64; whitespace in the base64 is ignored (§4.6 rule 5)', () => {
    const b64 = image.toString('base64');
    assert.equal(photoHash(parseFrame(`<vCard xmlns='vcard-temp'><PHOTO><TYPE>image/png</TYPE><BINVAL>${b64}</BINVAL></PHOTO></vCard>`)), sha1);
    const wrapped = `\n  ${b64.slice(0, 20)}\r\n  ${b64.slice(20)}\n`;
    assert.equal(photoHash(parseFrame(`<vCard xmlns='vcard-temp'><PHOTO><BINVAL>${wrapped}</BINVAL></PHOTO></vCard>`)), sha1);
  });

  it("'' for no image: no PHOTO, no BINVAL, an empty BINVAL", () => {
    for (const v of ["<vCard xmlns='vcard-temp'/>", "<vCard xmlns='vcard-temp'><PHOTO><EXTVAL>https://example.com/a.png</EXTVAL></PHOTO></vCard>", "<vCard xmlns='vcard-temp'><PHOTO><BINVAL> </BINVAL></PHOTO></vCard>"]) {
      assert.equal(photoHash(parseFrame(v)), '', v);
    }
  });
});

describe('XEP-0049 reserved namespaces (§2.3)', () => {
  it("'jabber:*', 'http://jabber.org/*' and 'vcard-temp' are reserved; others are not", () => {
    for (const ns of ['jabber:client', 'jabber:server', 'jabber:iq:private', 'jabber:x:data', 'http://jabber.org/protocol/muc', 'vcard-temp']) assert.ok(reservedNamespace(ns), ns);
    for (const ns of ['storage:bookmarks', 'storage:rosternotes', 'urn:xmpp:bookmarks:1', 'vcard-temp:x:update', 'https://jabber.org.example/x']) assert.ok(!reservedNamespace(ns), ns);
  });
});
