// XEP-0352 Client State Indication with real clients: the stream feature, presence withheld from an
// inactive session while messages, subscription requests and unavailable presence still flow, the
// current presence of every contact on <active/>, and what each step costs.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { RawClient, type TestClient, type TestServer, byName, connectClient, startTestServer, xml, type Element } from '../support/harness.ts';
import { mutualSubscription } from '../support/roster.ts';

const CSI = 'urn:xmpp:csi:0';

let s: TestServer;
const jid = (name: string) => `${name}@localhost`;
const user = (prefix: string): Promise<string> => s.freshUser(prefix);
/** A mutual subscription, written straight into both rosters. */
const friends = (a: string, b: string) => mutualSubscription(s, jid(a), jid(b));
const presenceFrom = (full: string, type?: string) => (el: Element) => el.name === 'presence' && el.attrs.from === full && el.attrs.type === type;
/** Logs in, sends initial presence and waits for its reflection. */
async function online(name: string, resource: string, show?: string): Promise<TestClient> {
  const c = await connectClient(s.url, { username: name, resource });
  await c.send(xml('presence', {}, ...(show ? [xml('show', {}, show)] : [])));
  await c.waitFor(presenceFrom(c.jid));
  return c;
}
/** A nonza, and a round trip: the stream is processed in order, so it was handled before the pong. */
async function nonza(c: TestClient, name: 'active' | 'inactive'): Promise<void> {
  await c.send(xml(name, { xmlns: CSI }));
  await c.roundTrip();
}

before(async () => {
  s = await startTestServer({ tenantWatchMs: 3_600_000 });
});
after(async () => {
  await s.stop();
});

describe('XEP-0352 Client State Indication', () => {
  it('offers <csi/> as a stream feature after authentication, not before (§4.1)', async () => {
    const name = await user('feat');
    const raw = await RawClient.connect(s.url);
    const open = '<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="localhost" version="1.0"/>';
    raw.send(open);
    const before = await raw.next(byName('stream:features'));
    assert.equal(before.getChild('csi', CSI), undefined);
    raw.send(`<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="PLAIN">${Buffer.from(`\0${name}\0secret`).toString('base64')}</auth>`);
    await raw.next(byName('success'));
    raw.send(open);
    const afterAuth = await raw.next(byName('stream:features'));
    assert.ok(afterAuth.getChild('csi', CSI), afterAuth.toString());
    raw.ws.close();
  });

  it('an inactive session gets no presence updates, but messages, subscription requests and unavailable; <active/> brings the current presence', async () => {
    const [alice, bob, carol] = [await user('alice'), await user('bob'), await user('carol')];
    await friends(alice, bob);
    const a1 = await online(alice, 'phone');
    const b1 = await online(bob, 'desk');
    await a1.waitFor(presenceFrom(b1.jid));
    await nonza(a1, 'inactive'); // no answer to a nonza (§4.2): the round trip proves it was handled
    assert.deepEqual(a1.received.filter((el) => el.name !== 'iq'), [], a1.received.join('\n'));

    // Withheld: a contact's update, a contact's new resource, the account's own other resource.
    await b1.send(xml('presence', {}, xml('show', {}, 'away'), xml('status', {}, 'lunch')));
    const b2 = await online(bob, 'laptop');
    const a2 = await online(alice, 'desk', 'dnd');
    await a1.expectNothing(s, (el) => el.name === 'presence', b1, b2, a2);

    // Not withheld: a message, a subscription request, a contact's resource going offline.
    await b1.send(xml('message', { to: a1.jid, type: 'chat', id: 'm1' }, xml('body', {}, 'still there?')));
    await a1.waitFor(byName('message', { id: 'm1' }));
    const c = await connectClient(s.url, { username: carol, resource: 'r' });
    await c.send(xml('presence', { to: jid(alice), type: 'subscribe' }));
    await a1.waitFor((el) => el.name === 'presence' && el.attrs.type === 'subscribe' && el.attrs.from === jid(carol));
    await b2.stop();
    await a1.waitFor(presenceFrom(b2.jid, 'unavailable'));
    // Its own presence comes back to it (RFC 6121 §4.2.2: the answer to its own action).
    await a1.send(xml('presence', {}, xml('show', {}, 'xa')));
    await a1.waitFor(presenceFrom(a1.jid));
    await a1.expectNothing(s, (el) => el.name === 'presence' && el.attrs.type === undefined && el.attrs.from !== a1.jid);

    // Active again: the latest presence of each contact's resource and of its own other resource.
    await nonza(a1, 'active');
    const bobNow = await a1.waitFor(presenceFrom(b1.jid));
    assert.equal(bobNow.getChildText('show'), 'away');
    assert.equal(bobNow.getChildText('status'), 'lunch');
    assert.equal((await a1.waitFor(presenceFrom(a2.jid))).getChildText('show'), 'dnd');
    await a1.expectNothing(s, presenceFrom(b2.jid)); // gone: nothing to replay
    // And updates flow again as they happen.
    await b1.send(xml('presence', {}, xml('show', {}, 'chat')));
    assert.equal((await a1.waitFor(presenceFrom(b1.jid))).getChildText('show'), 'chat');
    for (const x of [a1, a2, b1, c]) await x.stop();
  });

  it('the state is in the table, not in a process: another server (another Lambda) withholds and replays alike', async () => {
    const other = await startTestServer({ dynamoEndpoint: s.dynamoEndpoint, tenantWatchMs: 3_600_000 });
    try {
      const [alice, bob] = [await user('alice'), await user('bob')];
      await friends(alice, bob);
      const a1 = await online(alice, 'phone');
      const b1 = await connectClient(other.url, { username: bob, resource: 'desk' });
      await b1.send(xml('presence'));
      await a1.waitFor(presenceFrom(b1.jid));
      await nonza(a1, 'inactive');
      await b1.send(xml('presence', {}, xml('show', {}, 'away')));
      await a1.expectNothing(s, presenceFrom(b1.jid), b1);
      await b1.send(xml('message', { to: a1.jid, type: 'chat', id: 'x1' }, xml('body', {}, 'via the other server')));
      await a1.waitFor(byName('message', { id: 'x1' }));
      await nonza(a1, 'active');
      assert.equal((await a1.waitFor(presenceFrom(b1.jid))).getChildText('show'), 'away');
      await b1.send(xml('presence', {}, xml('show', {}, 'dnd')));
      assert.equal((await a1.waitFor(presenceFrom(b1.jid))).getChildText('show'), 'dnd');
      for (const x of [a1, b1]) await x.stop();
    } finally {
      await other.stop();
    }
  });

  it('costs: <inactive/> one write; a withheld presence no post; <active/> one write and the probe answers', async () => {
    const [alice, bob] = [await user('alice'), await user('bob')];
    await friends(alice, bob);
    const a1 = await online(alice, 'phone');
    const b1 = await online(bob, 'desk');
    await a1.waitFor(presenceFrom(b1.jid));

    const inactive = await s.cost(() => nonza(a1, 'inactive'));
    // The nonza's write; the round trip's ping costs nothing and is answered with one post.
    assert.deepEqual({ reads: inactive.reads, writes: inactive.writes, posts: inactive.posts }, { reads: 0, writes: 1, posts: 1 }, JSON.stringify(inactive.calls));

    // bob's update: the roster Query and one BatchGetItem, his entry's write, and one post (his own
    // reflection); alice's is withheld by the filter, which read nothing.
    const update = await s.cost(async () => {
      await b1.send(xml('presence', {}, xml('show', {}, 'away')));
      await b1.waitFor((el) => presenceFrom(b1.jid)(el) && el.getChildText('show') === 'away');
    });
    assert.deepEqual({ reads: update.reads, writes: update.writes, posts: update.posts }, { reads: 2, writes: 1, posts: 1 }, JSON.stringify(update.calls));

    const active = await s.cost(async () => {
      await a1.send(xml('active', { xmlns: CSI }));
      await a1.waitFor(presenceFrom(b1.jid));
    });
    // One write, the roster Query and one BatchGetItem, one post per available contact resource.
    assert.deepEqual({ reads: active.reads, writes: active.writes, posts: active.posts }, { reads: 2, writes: 1, posts: 1 }, JSON.stringify(active.calls));
    for (const x of [a1, b1]) await x.stop();
  });
});
