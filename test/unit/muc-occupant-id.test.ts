// XEP-0421 occupant ids as pure functions (lib/extensions/muc/occupant-id.ts): what the id depends on,
// its form (§4: at most 128 characters), and the removal of ids a client sent (§4).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { occupantId, occupantIdKey, stripOccupantIds, withOccupantId } from '../../lib/extensions/muc/occupant-id.ts';
import { parseFrame } from '../../lib/xmpp/xml.ts';

const NS = 'urn:xmpp:occupant-id:0';
const key = occupantIdKey(Buffer.alloc(32, 7));

describe('occupant ids (XEP-0421)', () => {
  it('depend on the deployment secret, the room and the real bare JID, and on nothing else', () => {
    const id = occupantId(key, 'room@conference.example.com', 'alice@example.com');
    assert.equal(occupantId(occupantIdKey(Buffer.alloc(32, 7)), 'room@conference.example.com', 'alice@example.com'), id, 'stable');
    assert.notEqual(occupantId(occupantIdKey(Buffer.alloc(32, 8)), 'room@conference.example.com', 'alice@example.com'), id, 'another deployment');
    assert.notEqual(occupantId(key, 'other@conference.example.com', 'alice@example.com'), id, 'another room');
    assert.notEqual(occupantId(key, 'room@conference.example.com', 'bob@example.com'), id, 'another user');
    assert.match(id, /^[A-Za-z0-9_-]{22}$/, 'base64url of 128 bits, well under 128 characters');
    assert.ok(!id.includes('alice'));
  });

  it('the key is derived: the secret itself never keys an id', () => {
    const secret = Buffer.alloc(32, 7);
    assert.notDeepEqual(occupantIdKey(secret), secret);
  });

  it('removes every occupant-id of the XEP namespace a client sent, and nothing else', () => {
    const m = parseFrame(
      `<message xmlns="jabber:client" type="groupchat"><body>hi</body><occupant-id xmlns="${NS}" id="forged"/><occupant-id xmlns="urn:example:other" id="keep"/><occupant-id xmlns="${NS}" id="again"/></message>`,
    );
    stripOccupantIds(m);
    assert.equal(m.getChildren('occupant-id', NS).length, 0);
    assert.equal(m.getChild('occupant-id', 'urn:example:other')?.attrs.id, 'keep');
    assert.equal(m.getChildText('body'), 'hi');
  });

  it('withOccupantId leaves exactly the room\'s id', () => {
    const p = parseFrame(`<presence xmlns="jabber:client"><occupant-id xmlns="${NS}" id="forged"/><show>away</show></presence>`);
    const out = withOccupantId(p, 'real');
    assert.equal(out, p, 'changed in place and returned');
    assert.deepEqual(out.getChildren('occupant-id', NS).map((e) => e.attrs.id), ['real']);
    assert.equal(out.getChildText('show'), 'away');
  });
});
