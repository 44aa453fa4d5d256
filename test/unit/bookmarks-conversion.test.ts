// XEP-0048 <conference/> ⇄ XEP-0402 <item/> conversion (lib/extensions/bookmarks.ts), without a server.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NS_BOOKMARKS2, itemOfLegacy, legacyOfItem, legacyStorageOf } from '../../lib/extensions/bookmarks.ts';
import { parseFrame, xml } from '../../lib/xmpp/xml.ts';

describe('bookmarks conversion (XEP-0048 ⇄ XEP-0402)', () => {
  it('a conference becomes an item named by the room JID; autojoin "1" or "true" is true, anything else absent', () => {
    const item = itemOfLegacy(xml('conference', { jid: 'council@conference.underhill.lit', name: 'Council of Oberon', autojoin: '1' }, xml('nick', {}, 'Puck'), xml('password', {}, 'Titania')))!;
    assert.equal(
      item.toString(),
      xml('item', { id: 'council@conference.underhill.lit' }, xml('conference', { xmlns: NS_BOOKMARKS2, name: 'Council of Oberon', autojoin: 'true' }, xml('nick', {}, 'Puck'), xml('password', {}, 'Titania'))).toString(),
    );
    assert.equal(itemOfLegacy(xml('conference', { jid: 'a@b', autojoin: 'false' }))!.getChild('conference')!.attrs.autojoin, undefined);
    assert.equal(itemOfLegacy(xml('conference', { name: 'no jid' })), undefined);
  });

  it('an item becomes a conference with autojoin spelled out; extensions stay on the PEP side, and survive a rewrite', () => {
    const item = parseFrame(`<item id="den@muc.example"><conference xmlns="${NS_BOOKMARKS2}" name="Den"><nick>x</nick><extensions><pinned xmlns="urn:xmpp:bookmarks-pinning:0"/></extensions></conference></item>`);
    assert.equal(legacyOfItem(item)!.toString(), xml('conference', { jid: 'den@muc.example', name: 'Den', autojoin: 'false' }, xml('nick', {}, 'x')).toString());
    const rewritten = itemOfLegacy(xml('conference', { jid: 'den@muc.example', name: 'The Den', autojoin: 'true' }), item)!;
    assert.ok(rewritten.getChild('conference', NS_BOOKMARKS2)!.getChild('extensions')!.getChild('pinned', 'urn:xmpp:bookmarks-pinning:0'));
    assert.equal(legacyOfItem(xml('item', { id: 'x@y' }, xml('other', { xmlns: 'urn:example' }))), undefined);
  });

  it('the legacy list of a node (#compat-pep item, private storage answer): one conference per bookmark, others left out; no node, an empty list', () => {
    const items = [
      { id: 'a@muc.example', xml: `<item id="a@muc.example"><conference xmlns="${NS_BOOKMARKS2}" autojoin="true"/></item>` },
      { id: 'x', xml: '<item id="x"><other xmlns="urn:example"/></item>' },
    ];
    assert.equal(legacyStorageOf({ items }).toString(), xml('storage', { xmlns: 'storage:bookmarks' }, xml('conference', { jid: 'a@muc.example', autojoin: 'true' })).toString());
    assert.equal(legacyStorageOf(undefined).toString(), xml('storage', { xmlns: 'storage:bookmarks' }).toString());
  });
});
