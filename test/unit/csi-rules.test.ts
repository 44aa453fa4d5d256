// XEP-0352 §3.2 as a pure rule: what an inactive session is not sent.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { withheldWhileInactive } from '../../lib/extensions/csi.ts';
import { parseFrame } from '../../lib/xmpp/xml.ts';

const presence = (attrs: string, inner = '') => parseFrame(`<presence xmlns="jabber:client" ${attrs}>${inner}</presence>`);
const phone = { resource: 'phone' };

describe('withheld from an inactive session (XEP-0352 §3.2)', () => {
  it("a contact's available presence and its updates", () => {
    assert.equal(withheldWhileInactive(presence('from="bob@x/desk" to="alice@x"'), phone), true);
    assert.equal(withheldWhileInactive(presence('from="bob@x/desk" to="alice@x"', '<show>away</show>'), phone), true);
  });
  it("the account's other resources' presence", () => {
    assert.equal(withheldWhileInactive(presence('from="alice@x/desk" to="alice@x"'), phone), true);
  });
  it('not its own presence reflected back (RFC 6121 §4.2.2)', () => {
    assert.equal(withheldWhileInactive(presence('from="alice@x/phone" to="alice@x"'), phone), false);
  });
  it('not unavailable, subscription stanzas, errors or probes', () => {
    for (const type of ['unavailable', 'subscribe', 'subscribed', 'unsubscribe', 'unsubscribed', 'error', 'probe']) {
      assert.equal(withheldWhileInactive(presence(`from="bob@x/desk" to="alice@x" type="${type}"`), phone), false, type);
    }
  });
  it('not MUC presence (a room roster is not replayed on <active/>)', () => {
    assert.equal(withheldWhileInactive(presence('from="room@conference.x/bob" to="alice@x/phone"', '<x xmlns="http://jabber.org/protocol/muc#user"/>'), phone), false);
  });
  it('not messages or IQs', () => {
    assert.equal(withheldWhileInactive(parseFrame('<message xmlns="jabber:client" from="bob@x/desk" to="alice@x"><body>hi</body></message>'), phone), false);
    assert.equal(withheldWhileInactive(parseFrame('<iq xmlns="jabber:client" type="get" id="1" from="bob@x/desk" to="alice@x/phone"/>'), phone), false);
  });
});
