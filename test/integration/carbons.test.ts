// XEP-0280 Message Carbons with real xmpp.js clients: two or three resources of one account, the
// copies each gets (§7 received, §8 sent), <private/> and XEP-0334 <no-copy/> (§9), disabling, the
// interplay with RFC 6121 §8.5.2 for bare-JID messages, and the exact cost of each path.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type TestClient, type TestServer, byName, connectClient, startTestServer, xml, type Element } from '../support/harness.ts';

const CARBONS = 'urn:xmpp:carbons:2';
const FORWARD = 'urn:xmpp:forward:0';

let s: TestServer;
const user = (prefix: string): Promise<string> => s.freshUser(prefix);
const login = (name: string, resource: string, domain = 'localhost') => connectClient(s.url, { username: name, resource, domain });
async function available(c: TestClient, priority = 0): Promise<void> {
  await c.send(xml('presence', {}, xml('priority', {}, String(priority))));
  await c.waitFor((el) => el.name === 'presence' && el.attrs.from === c.jid);
}
const enable = (c: TestClient) => c.iq(xml('iq', { type: 'set' }, xml('enable', { xmlns: CARBONS })));
const disable = (c: TestClient) => c.iq(xml('iq', { type: 'set' }, xml('disable', { xmlns: CARBONS })));
/** An online resource: available, carbons enabled if asked. */
async function resource(name: string, res: string, opts: { carbons?: boolean; priority?: number } = {}): Promise<TestClient> {
  const c = await login(name, res);
  await available(c, opts.priority ?? 0);
  if (opts.carbons) await enable(c);
  return c;
}
const chat = (to: string, id: string, ...extra: Element[]) => xml('message', { to, type: 'chat', id }, xml('body', {}, `body of ${id}`), ...extra);

/** The forwarded original inside a carbon of `direction` whose original has this id. */
const carbon = (direction: 'sent' | 'received', id: string) => (el: Element) =>
  el.name === 'message' && el.getChild(direction, CARBONS)?.getChild('forwarded', FORWARD)?.getChild('message')?.attrs.id === id;
const inner = (el: Element, direction: 'sent' | 'received') => el.getChild(direction, CARBONS)!.getChild('forwarded', FORWARD)!.getChild('message')!;
const anyCopyOf = (id: string) => (el: Element) => carbon('sent', id)(el) || carbon('received', id)(el);

before(async () => {
  s = await startTestServer({ seedDomains: ['localhost', 'plain.example'] });
  const tenant = (await s.server.tenants.get('localhost', 0))!;
  await s.server.tenants.put({ ...tenant, features: [...(tenant.features ?? []), 'carbons'] });
  await s.addUser('someone@plain.example');
});
after(async () => {
  await s.stop();
});

describe('enabling (XEP-0280 §4, §5, §10.1)', () => {
  it('advertises urn:xmpp:carbons:2 and the rules it follows, and answers enable and disable, twice each', async () => {
    const c = await login(await user('disco'), 'r1');
    const info = await c.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })));
    const features = info.getChild('query')!.getChildren('feature').map((f: Element) => f.attrs.var);
    assert.ok(features.includes(CARBONS));
    assert.ok(features.includes('urn:xmpp:carbons:rules:0'));
    for (const toggle of [enable, enable, disable, disable]) assert.equal((await toggle(c)).attrs.type, 'result');
    await c.stop();
  });

  it('is a per-tenant feature: elsewhere neither advertised nor answered', async () => {
    const c = await login('someone', 'r1', 'plain.example');
    const info = await c.iq(xml('iq', { type: 'get', to: 'plain.example' }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })));
    assert.ok(!info.getChild('query')!.getChildren('feature').some((f: Element) => f.attrs.var === CARBONS));
    await assert.rejects(enable(c), (err: { condition?: string }) => err.condition === 'service-unavailable');
    await c.stop();
  });
});

describe('received copies (XEP-0280 §7)', () => {
  it('a message to one full JID: the other carbons-enabled resource gets a <received/> copy from the bare JID', async () => {
    const [alice, bob] = [await user('alice'), await user('bob')];
    const a1 = await resource(alice, 'a1', { carbons: true });
    const a2 = await resource(alice, 'a2', { carbons: true });
    const a3 = await resource(alice, 'a3'); // no carbons
    const b = await login(bob, 'b1');
    await b.send(chat(a1.jid, 'r1', xml('thread', {}, 't-1')));
    const original = await a1.waitFor(byName('message', { id: 'r1' }));
    assert.equal(original.attrs.from, b.jid);
    const copy = await a2.waitFor(carbon('received', 'r1'));
    assert.equal(copy.attrs.from, `${alice}@localhost`, 'from the bare JID (§7)');
    assert.equal(copy.attrs.to, a2.jid);
    assert.equal(copy.attrs.type, 'chat');
    const fwd = inner(copy, 'received');
    assert.equal(fwd.attrs.from, b.jid);
    assert.equal(fwd.attrs.to, a1.jid);
    assert.equal(fwd.getChildText('body'), 'body of r1');
    assert.equal(fwd.getChildText('thread'), 't-1');
    await a1.expectNothing(s, anyCopyOf('r1'), b); // the addressee gets the original only
    await a2.expectNothing(s, byName('message', { id: 'r1' }));
    await a3.expectNothing(s, (el) => el.name === 'message');
    for (const c of [a1, a2, a3, b]) await c.stop();
  });

  it('a chat to the bare JID reaches every non-negative resource itself (RFC 6121 §8.5.2.1.1), so only the others get copies', async () => {
    const [alice, bob] = [await user('alice'), await user('bob')];
    const a1 = await resource(alice, 'a1', { carbons: true, priority: 5 });
    const a2 = await resource(alice, 'a2', { carbons: true, priority: 0 });
    const neg = await resource(alice, 'neg', { carbons: true, priority: -1 });
    const b = await login(bob, 'b1');
    await b.send(chat(`${alice}@localhost`, 'bare1'));
    for (const c of [a1, a2]) await c.waitFor(byName('message', { id: 'bare1' }));
    const copy = await neg.waitFor(carbon('received', 'bare1'));
    assert.equal(inner(copy, 'received').attrs.to, `${alice}@localhost`);
    for (const c of [a1, a2]) await c.expectNothing(s, anyCopyOf('bare1'), b);
    await neg.expectNothing(s, byName('message', { id: 'bare1' }));
    // A normal message goes to the highest priority only (§8.5.2.1.1): the others get copies (rules:0).
    await b.send(xml('message', { to: `${alice}@localhost`, id: 'bare2' }, xml('body', {}, 'normal')));
    await a1.waitFor(byName('message', { id: 'bare2' }));
    for (const c of [a2, neg]) {
      const got = await c.waitFor(carbon('received', 'bare2'));
      assert.equal(got.attrs.type, undefined, 'the copy keeps the type of a normal message');
    }
    // Not copied: a headline, and a normal message without a body.
    await b.send(xml('message', { to: a1.jid, type: 'headline', id: 'hl' }, xml('body', {}, 'news')));
    await b.send(xml('message', { to: a1.jid, id: 'nobody' }, xml('received', { xmlns: 'urn:xmpp:receipts', id: 'x' })));
    for (const id of ['hl', 'nobody']) await a1.waitFor(byName('message', { id }));
    await a2.expectNothing(s, (el) => anyCopyOf('hl')(el) || anyCopyOf('nobody')(el), b);
    for (const c of [a1, a2, neg, b]) await c.stop();
  });
});

describe('across servers', () => {
  it('a flag set through one server is honoured by another (another Lambda): the state is in the session entry', async () => {
    const other = await startTestServer({ dynamoEndpoint: s.dynamoEndpoint, seedDomains: [] });
    try {
      const [alice, bob] = [await user('alice'), await user('bob')];
      const a1 = await resource(alice, 'a1');
      const a2 = await resource(alice, 'a2', { carbons: true });
      const b = await connectClient(other.url, { username: bob, resource: 'b1' });
      await b.send(chat(a1.jid, 'x1'));
      await a1.waitFor(byName('message', { id: 'x1' }));
      await a2.waitFor(carbon('received', 'x1'));
      // And a sent copy of a message handled by the other server, for a resource that enabled here.
      const a3 = await connectClient(other.url, { username: alice, resource: 'a3' });
      await a3.send(chat(b.jid, 'x2'));
      await b.waitFor(byName('message', { id: 'x2' }));
      await a2.waitFor(carbon('sent', 'x2'));
      await a1.expectNothing(s, anyCopyOf('x2'), a3);
      for (const c of [a1, a2, a3, b]) await c.stop();
    } finally {
      await other.stop();
    }
  });
});

describe('sent copies (XEP-0280 §8)', () => {
  it("a resource's outgoing message is copied to the account's other carbons-enabled resources, not back to it", async () => {
    const [alice, bob] = [await user('alice'), await user('bob')];
    const a1 = await resource(alice, 'a1', { carbons: true });
    const a2 = await resource(alice, 'a2', { carbons: true });
    const a3 = await resource(alice, 'a3');
    const b = await resource(bob, 'b1');
    await a1.send(chat(`${bob}@localhost`, 's1'));
    await b.waitFor(byName('message', { id: 's1' }));
    const copy = await a2.waitFor(carbon('sent', 's1'));
    assert.equal(copy.attrs.from, `${alice}@localhost`);
    assert.equal(copy.attrs.to, a2.jid);
    assert.equal(copy.attrs.type, 'chat');
    const fwd = inner(copy, 'sent');
    assert.equal(fwd.attrs.from, a1.jid, 'the original as sent, with the sender stamped');
    assert.equal(fwd.attrs.to, `${bob}@localhost`);
    await a1.expectNothing(s, anyCopyOf('s1'), a1);
    await a3.expectNothing(s, (el) => el.name === 'message');
    // A sender that did not enable carbons is copied all the same (§8: "irrespective").
    await a3.send(chat(`${bob}@localhost`, 's2'));
    for (const c of [a1, a2]) await c.waitFor(carbon('sent', 's2'));
    // A message to someone offline is copied too (it is stored for them).
    await a1.send(chat(`${await user('away')}@localhost`, 's3'));
    await a2.waitFor(carbon('sent', 's3'));
    for (const c of [a1, a2, a3, b]) await c.stop();
  });
});

describe('avoiding copies (XEP-0280 §9, XEP-0334)', () => {
  it('<private/> keeps a message out of both sides and is removed before delivery; <no-copy/> keeps it out', async () => {
    const [alice, bob] = [await user('alice'), await user('bob')];
    const a1 = await resource(alice, 'a1', { carbons: true });
    const a2 = await resource(alice, 'a2', { carbons: true });
    const b1 = await resource(bob, 'b1', { carbons: true });
    const b2 = await resource(bob, 'b2', { carbons: true });
    await a1.send(chat(b1.jid, 'p1', xml('private', { xmlns: CARBONS })));
    const got = await b1.waitFor(byName('message', { id: 'p1' }));
    assert.equal(got.getChild('private', CARBONS), undefined, '<private/> removed before delivery (§9)');
    await a1.send(chat(b1.jid, 'nc1', xml('no-copy', { xmlns: 'urn:xmpp:hints' })));
    const hinted = await b1.waitFor(byName('message', { id: 'nc1' }));
    assert.ok(hinted.getChild('no-copy', 'urn:xmpp:hints'), 'hints stay');
    for (const c of [a2, b2]) await c.expectNothing(s, (el) => anyCopyOf('p1')(el) || anyCopyOf('nc1')(el), a1);
    // To one's own other resource: delivered without <private/>, no copy for the third.
    await b1.send(chat(b2.jid, 'p2', xml('private', { xmlns: CARBONS })));
    assert.equal((await b2.waitFor(byName('message', { id: 'p2' }))).getChild('private', CARBONS), undefined);
    await a1.send(chat(b2.jid, 'p3'));
    await b1.waitFor(carbon('received', 'p3')); // (b1 does get copies of others' messages)
    await b1.expectNothing(s, anyCopyOf('p2'));
    for (const c of [a1, a2, b1, b2]) await c.stop();
  });

  it('a disabled resource gets no copies any more', async () => {
    const [alice, bob] = [await user('alice'), await user('bob')];
    const a1 = await resource(alice, 'a1', { carbons: true });
    const a2 = await resource(alice, 'a2', { carbons: true });
    const b = await resource(bob, 'b1');
    await disable(a2);
    await b.send(chat(a1.jid, 'd1'));
    await a1.send(chat(b.jid, 'd2'));
    await a1.waitFor(byName('message', { id: 'd1' }));
    await b.waitFor(byName('message', { id: 'd2' }));
    await a2.expectNothing(s, (el) => el.name === 'message', a1, b);
    for (const c of [a1, a2, b]) await c.stop();
  });
});

describe('cost (README "Cost per operation")', () => {
  it("enable: 1 write; a received copy: no read; every copied message: 1 read of the sender's sessions", async () => {
    const [alice, bob] = [await user('alice'), await user('bob')];
    const a1 = await resource(alice, 'a1');
    const a2 = await resource(alice, 'a2');
    const b = await resource(bob, 'b1');
    const toggled = await s.cost(async () => {
      await enable(a1);
      await enable(a2);
    });
    assert.deepEqual({ reads: toggled.reads, writes: toggled.writes, posts: toggled.posts }, { reads: 0, writes: 2, posts: 2 }, JSON.stringify(toggled.calls));

    // bob → alice/a1: alice's session item (read for delivery anyway, it has a2's flag), bob's (for §8
    // copies to his other resources: he has none), the original and one copy. The archive (XEP-0313)
    // adds what it adds to any message: one read of both accounts' preferences, one write of both archive items.
    const received = await s.cost(async () => {
      await b.send(chat(a1.jid, 'c1'));
      await a2.waitFor(carbon('received', 'c1'));
      await a1.waitFor(byName('message', { id: 'c1' }));
    });
    assert.deepEqual({ reads: received.reads, writes: received.writes, posts: received.posts }, { reads: 3, writes: 1, posts: 2 }, JSON.stringify(received.calls));

    // alice/a1 → bob: bob's session item and alice's (for the copy), the original and one copy.
    const sent = await s.cost(async () => {
      await a1.send(chat(b.jid, 'c2'));
      await a2.waitFor(carbon('sent', 'c2'));
      await b.waitFor(byName('message', { id: 'c2' }));
    });
    assert.deepEqual({ reads: sent.reads, writes: sent.writes, posts: sent.posts }, { reads: 3, writes: 1, posts: 2 }, JSON.stringify(sent.calls));

    // A message that is not copied costs what it costs without carbons: one read and one post, and the archive's read and write.
    const plain = await s.cost(async () => {
      await a1.send(chat(b.jid, 'c3', xml('private', { xmlns: CARBONS })));
      await b.waitFor(byName('message', { id: 'c3' }));
    });
    assert.deepEqual({ reads: plain.reads, writes: plain.writes, posts: plain.posts }, { reads: 2, writes: 1, posts: 1 }, JSON.stringify(plain.calls));
    for (const c of [a1, a2, b]) await c.stop();
  });
});
