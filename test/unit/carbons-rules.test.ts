// XEP-0280 Message Carbons as pure rules: which messages are copied (§6, urn:xmpp:carbons:rules:0;
// §9 <private/>; XEP-0334 <no-copy/>), to which resources (§7, §8), and the shape of a copy.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { NS_CARBONS, NS_FORWARD, carbonCopy, eligibleForCarbons, receivedCarbonTargets, sentCarbonTargets } from '../../lib/extensions/carbons.ts';
import { bareJidTargets } from '../../lib/core/router.ts';
import { parseFrame } from '../../lib/xmpp/xml.ts';

const msg = (inner: string, attrs = '') => parseFrame(`<message xmlns="jabber:client" to="romeo@example.com" ${attrs}>${inner}</message>`);

describe('messages eligible for carbons (XEP-0280 §6, rules:0)', () => {
  const cases: [string, string, string, boolean][] = [
    ['chat with a body', `type="chat"`, '<body>hi</body>', true],
    ['chat with only a chat state (XEP-0280 §10.2: intentional)', `type="chat"`, '<composing xmlns="http://jabber.org/protocol/chatstates"/>', true],
    ['normal (no type) with a body', '', '<body>hi</body>', true],
    ['type normal with a body', `type="normal"`, '<body>hi</body>', true],
    ['normal without a body', '', '<received xmlns="urn:xmpp:receipts" id="x"/>', false],
    ['groupchat', `type="groupchat"`, '<body>hi</body>', false],
    ['headline', `type="headline"`, '<body>news</body>', false],
    ['error', `type="error"`, '<error type="cancel"><item-not-found xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error>', false],
    ['chat with <private/> (§9)', `type="chat"`, `<body>secret</body><private xmlns="${NS_CARBONS}"/>`, false],
    ['chat with <no-copy/> (XEP-0334)', `type="chat"`, '<body>x</body><no-copy xmlns="urn:xmpp:hints"/>', false],
    ['a MUC private message, from the room (§6)', `type="chat"`, '<body>pm</body><x xmlns="http://jabber.org/protocol/muc#user"/>', false],
    ['a carbon itself', `type="chat"`, `<sent xmlns="${NS_CARBONS}"><forwarded xmlns="${NS_FORWARD}"/></sent>`, false],
  ];
  for (const [what, attrs, inner, expected] of cases) {
    it(`${what}: ${expected ? 'copied' : 'not copied'}`, () => {
      assert.equal(eligibleForCarbons(msg(inner, attrs)), expected);
    });
  }
  it('a <private/> in another namespace does not count', () => {
    assert.equal(eligibleForCarbons(msg('<body>x</body><private xmlns="urn:example"/>', 'type="chat"')), true);
  });
});

describe('who gets a copy (XEP-0280 §7, §8)', () => {
  const on = { carbons: { enabled: true } };
  const sessions = [
    { connectionId: 'a', resource: 'a', data: on },
    { connectionId: 'b', resource: 'b', data: on },
    { connectionId: 'c', resource: 'c', data: { carbons: {} } },
    { connectionId: 'd', resource: 'd' },
  ];
  it('received: the carbons-enabled resources that did not get the message themselves', () => {
    assert.deepEqual(receivedCarbonTargets(sessions, [sessions[0]]).map((s) => s.resource), ['b']);
    assert.deepEqual(receivedCarbonTargets(sessions, [sessions[2]]).map((s) => s.resource), ['a', 'b']);
    assert.deepEqual(receivedCarbonTargets(sessions, [sessions[0], sessions[1]]), []);
  });
  it('received: never the sending connection of a message to its own account', () => {
    assert.deepEqual(receivedCarbonTargets(sessions, [sessions[2]], 'a').map((s) => s.resource), ['b']);
  });
  it('sent: every other carbons-enabled resource, whether or not the sender enabled carbons', () => {
    assert.deepEqual(sentCarbonTargets(sessions, 'a').map((s) => s.resource), ['b']);
    assert.deepEqual(sentCarbonTargets(sessions, 'd').map((s) => s.resource), ['a', 'b']);
  });
});

describe('a carbon copy (XEP-0280 §7, §8, Examples 10 and 12)', () => {
  it('keeps the type, comes from the bare JID to the full JID, and forwards the original whole', () => {
    const original = parseFrame(`<message xmlns="jabber:client" from="juliet@capulet.example/balcony" to="romeo@montague.example/garden" type="chat"><body>What man art thou</body><thread>0e3141cd</thread></message>`);
    const copy = carbonCopy('received', original, 'romeo@montague.example', 'romeo@montague.example/home');
    assert.equal(copy.attrs.from, 'romeo@montague.example');
    assert.equal(copy.attrs.to, 'romeo@montague.example/home');
    assert.equal(copy.attrs.type, 'chat');
    const inner = copy.getChild('received', NS_CARBONS)?.getChild('forwarded', NS_FORWARD)?.getChild('message');
    assert.ok(inner);
    assert.equal(inner.attrs.xmlns, 'jabber:client');
    assert.equal(inner.attrs.from, 'juliet@capulet.example/balcony');
    assert.equal(inner.getChildText('body'), 'What man art thou');
    assert.equal(inner.getChildText('thread'), '0e3141cd');
    assert.notEqual(inner, original, 'a copy, so the original is not re-parented');
    assert.ok(!copy.getChild('sent', NS_CARBONS));
  });
  it('a sent copy of a normal message has no type either', () => {
    const copy = carbonCopy('sent', parseFrame('<message xmlns="jabber:client" to="j@c"><body>x</body></message>'), 'r@m', 'r@m/home');
    assert.equal(copy.attrs.type, undefined);
    assert.ok(copy.getChild('sent', NS_CARBONS)?.getChild('forwarded', NS_FORWARD)?.getChild('message'));
  });
});

describe('messages to the bare JID (RFC 6121 §8.5.2.1.1)', () => {
  const s = (resource: string, priority: number, available = true) => ({ resource, priority, available });
  const all = [s('top', 5), s('top2', 5), s('low', 0), s('neg', -1), s('away', 9, false)];
  const names = (type: string) => bareJidTargets(all, type).map((x) => x.resource);
  it('chat and headline: every available resource of non-negative priority', () => {
    assert.deepEqual(names('chat'), ['top', 'top2', 'low']);
    assert.deepEqual(names('headline'), ['top', 'top2', 'low']);
  });
  it('normal: the available resource(s) of highest priority', () => assert.deepEqual(names('normal'), ['top', 'top2']));
  it('groupchat and error: none', () => {
    assert.deepEqual(names('groupchat'), []);
    assert.deepEqual(names('error'), []);
  });
  it('none when only negative priorities are available', () => assert.deepEqual(bareJidTargets([s('neg', -1)], 'chat'), []));
});
