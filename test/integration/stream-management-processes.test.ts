// XEP-0198 counts kept right whichever process sends or handles a frame (docs/architecture.md "Stream
// management", "Who counts"). In AWS any Lambda container may handle a connection's next frame or post
// to it, each with its own memory; here two local servers on one dynalite play two such processes
// (as two regions do in two-regions.test.ts): a frame is handed to the second one with
// `server.frame()`, exactly as its ingest would, and what it posts reaches the client through the
// first one's gateway.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ENABLE_WINDOW_MS, smStoreOf } from '../../lib/extensions/stream-management/index.ts';
import { RawClient, type TestServer, startTestServer, type Element } from '../support/harness.ts';

const SM = 'urn:xmpp:sm:3';
const STANZAS = new Set(['message', 'presence', 'iq']);
let one: TestServer;
let two: TestServer;
let n = 0;

async function user(prefix: string): Promise<string> {
  const name = `${prefix}${++n}`;
  await one.addUser(`${name}@localhost`);
  return name;
}
const isSm = (name: string) => (el: Element) => el.name === name && el.attrs.xmlns === SM;
/** The connection a user's only session is on. */
/** `name` logged in on the first process as resource `phone`, with resumable stream management enabled. */
async function managed(name: string): Promise<{ c: RawClient; id: string }> {
  const c = await RawClient.connect(one.url);
  await c.login(name, 'secret', 'phone');
  c.send(`<enable xmlns="${SM}" resume="true"/>`);
  return { c, id: (await c.next(isSm('enabled'))).attrs.id as string };
}

async function connectionOf(name: string): Promise<{ connectionId: string; endpoint: string }> {
  const [entry] = await one.server.sessions.list(`${name}@localhost`);
  return { connectionId: entry.connectionId, endpoint: entry.endpoint };
}
/** Hands one frame of a connection to the second server, as its ingest would. */
async function viaTwo(name: string, frame: string): Promise<void> {
  const c = await connectionOf(name);
  await two.server.frame(c.connectionId, c.endpoint, frame);
}
/** Stanzas a client received after its <enabled/>: what it counts (§4). */
function receivedSinceEnabled(c: RawClient): number {
  const at = c.frames.findIndex((f) => f.startsWith('<enabled'));
  assert.ok(at >= 0, 'enabled');
  return c.frames.slice(at + 1).filter((f) => STANZAS.has(/^<([a-z]+)/.exec(f)![1])).length;
}
const OPEN = '<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="localhost" version="1.0"/>';
/** Opens, authenticates (PLAIN) and restarts the stream: ready for <resume/>. */
async function authenticate(c: RawClient, name: string): Promise<void> {
  c.send(OPEN);
  await c.next((el) => el.name === 'stream:features');
  c.send(`<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="PLAIN">${Buffer.from(`\0${name}\0secret`).toString('base64')}</auth>`);
  await c.next((el) => el.name === 'success');
  c.send(OPEN);
  await c.next((el) => el.name === 'stream:features');
}
let pings = 0;
async function roundTrip(c: RawClient): Promise<void> {
  const id = `rt${++pings}`;
  c.send(`<iq xmlns="jabber:client" type="get" id="${id}" to="localhost"><ping xmlns="urn:xmpp:ping"/></iq>`);
  await c.next((el) => el.name === 'iq' && el.attrs.id === id);
}
async function serverH(c: RawClient): Promise<number> {
  c.send(`<r xmlns="${SM}"/>`);
  return Number((await c.next(isSm('a'))).attrs.h);
}
/** The client acknowledges everything it received; the server must agree (no handled-count-too-high). */
async function ackAll(c: RawClient, name: string, id: string): Promise<number> {
  const h = receivedSinceEnabled(c);
  c.send(`<a xmlns="${SM}" h="${h}"/>`);
  await roundTrip(c);
  assert.equal(c.frames.filter((f) => f.includes('stream:error')).length, 0, c.frames.join('\n'));
  const item = (await smStoreOf(one.server).get(`${name}@localhost`, id, one.clock.now()))!;
  // The ping's result came after the ack: sent, counted, not yet acknowledged.
  assert.deepEqual({ acked: item.acked, out: item.out }, { acked: h, out: h + 1 });
  return h;
}

before(async () => {
  const quiet = { tenantWatchMs: 3_600_000, sweepIntervalMs: 3_600_000, purgeIntervalMs: 3_600_000 };
  one = await startTestServer({ region: 'eu-west-1', ...quiet });
  two = await startTestServer({ region: 'us-east-1', dynamoEndpoint: one.dynamoEndpoint, ...quiet });
  const tenant = (await one.server.tenants.get('localhost', 0))!;
  await one.server.tenants.put({ ...tenant, features: [...(tenant.features ?? []), 'sm'] });
});
after(async () => {
  await two?.stop();
  await one?.stop();
});

describe('XEP-0198 counts whichever process handles or sends (docs/architecture.md "Stream management")', () => {
  // First, while this region has no other connection: the sweeper checks exactly these two.
  it('costs (README "Stream management"): a liveness check asks a managed session for an ack (the ping counted and kept: one UpdateItem, and one post more); a detach is two UpdateItems instead of the session\'s end', async () => {
    const [m, p] = [await user('live'), await user('plain')];
    const { c: a, id } = await managed(m);
    const b = await RawClient.connect(one.url);
    await b.login(p, 'secret', 'phone');
    const later = Date.now() + one.server.limits.connectionCheckMs + 60_000;
    const check = await one.cost(() => one.server.sweep(later));
    await a.next((el) => el.name === 'iq' && el.attrs.id?.startsWith('xe-ping-'));
    await a.next(isSm('r'));
    await b.next((el) => el.name === 'iq' && el.attrs.id?.startsWith('xe-ping-'));
    assert.equal(b.frames.filter((f) => f.startsWith('<r ')).length, 0);
    // Both: the due connections (one Query per sweep shard, 8), and one Query each for detached XEP-0198
    // sessions, event push and webhook component retries and inactive BOSH sessions (the sweep steps),
    // the gateway asked about each (GetConnection), the next check and the ping in one UpdateItem,
    // the ping posted. The managed one: its ping counted and kept (UpdateItem), and the <r/> posted.
    assert.deepEqual(check.calls, {
      'dynamodb:QueryCommand': 8 + 4,
      'management:GetConnectionCommand': 2,
      'dynamodb:UpdateItemCommand': 2 + 1,
      'management:PostToConnectionCommand': 2 + 1,
    });
    assert.equal((await smStoreOf(one.server).get(`${m}@localhost`, id, one.clock.now()))!.q.length, 1, 'the ping is kept until acknowledged');

    // A socket that goes: the tombstone either way (one UpdateItem); then the plain session ends (its
    // entry removed: one UpdateItem; never available, so no broadcast), the managed one is detached:
    // its item marked (one UpdateItem) and its entry's expiry pushed to the deadline (one UpdateItem).
    // $disconnect is called directly, as API Gateway calls it when a socket goes.
    const [plainConn, managedConn] = [await connectionOf(p), await connectionOf(m)];
    const plainEnd = await one.cost(() => one.server.disconnect(plainConn.connectionId));
    const detach = await one.cost(() => one.server.disconnect(managedConn.connectionId));
    assert.ok((await smStoreOf(one.server).get(`${m}@localhost`, id, one.clock.now()))!.detachedUntil);
    assert.deepEqual(detach.calls, { 'dynamodb:UpdateItemCommand': 1 + 2 }, `plain end: ${JSON.stringify(plainEnd.calls)}`);
    assert.deepEqual(plainEnd.calls, { 'dynamodb:UpdateItemCommand': 2 }, 'the tombstone, the entry removed');
    a.ws.terminate();
    b.ws.terminate();
  });

  it('an <enable/> handled by another process: the process that bound the session counts its stanzas and the replies to them (§4)', async () => {
    const alice = await user('alice');
    const c = await RawClient.connect(one.url);
    await c.login(alice, 'secret', 'phone');
    await viaTwo(alice, `<enable xmlns="${SM}" resume="true"/>`);
    const enabled = await c.next((el) => el.attrs.xmlns === SM);
    assert.equal(enabled.name, 'enabled', enabled.toString());
    // Handled by the first process, which bound the session: a ping and a message to nobody online.
    await roundTrip(c);
    c.send(`<message xmlns="jabber:client" to="nobody@localhost" type="chat" id="m1"><body>hi</body></message>`);
    assert.equal(await serverH(c), 2, 'the ping and the message, both handled by the first process');
    await ackAll(c, alice, enabled.attrs.id);
    c.ws.close();
  });

  it('<enable/> later than its window after binding gets <failed><unexpected-request/> (a process may have cached the session as unmanaged)', async () => {
    const late = await user('late');
    const c = await RawClient.connect(one.url);
    await c.login(late, 'secret', 'phone');
    one.clock.advance(ENABLE_WINDOW_MS + 1);
    c.send(`<enable xmlns="${SM}" resume="true"/>`);
    const failed = await c.next(isSm('failed'));
    assert.ok(failed.getChild('unexpected-request', 'urn:ietf:params:xml:ns:xmpp-stanzas'), failed.toString());
    // The stream goes on, unmanaged.
    await roundTrip(c);
    c.ws.close();
  });

  it('a room message posted by a process that never saw the recipient is counted for its live managed session, also when it enabled after joining (XEP-0045 + §4)', async () => {
    const [owner, alice, carol] = [await user('owner'), await user('ralice'), await user('rcarol')];
    const room = `pr${n}@conference.localhost`;
    const enter = async (c: RawClient, nick: string) => {
      c.send(`<presence xmlns="jabber:client" to="${room}/${nick}"><x xmlns="http://jabber.org/protocol/muc"/></presence>`);
      await c.next((el) => el.name === 'message' && el.attrs.from === room && !!el.getChild('subject'));
    };
    const o = await RawClient.connect(one.url);
    await o.login(owner);
    await enter(o, 'owner');
    o.send(`<iq xmlns="jabber:client" type="set" id="instant" to="${room}"><query xmlns="http://jabber.org/protocol/muc#owner"><x xmlns="jabber:x:data" type="submit"/></query></iq>`);
    await o.next((el) => el.attrs.id === 'instant');
    // Alice enables, then joins; Carol joins, then enables.
    const { c: a, id: aId } = await managed(alice);
    await enter(a, 'alice');
    const c = await RawClient.connect(one.url);
    await c.login(carol, 'secret', 'phone');
    await enter(c, 'carol');
    c.send(`<enable xmlns="${SM}" resume="true"/>`);
    const cId = (await c.next(isSm('enabled'))).attrs.id;
    await roundTrip(c);

    // The owner's room message, handled by the second process: it posts to both occupants' live
    // connections, knowing them only from the room item.
    assert.equal(two.server.cachedSession((await connectionOf(alice)).connectionId), undefined);
    await viaTwo(owner, `<message xmlns="jabber:client" to="${room}" type="groupchat" id="g1"><body>g1</body></message>`);
    await a.next((el) => el.attrs.id === 'g1');
    await c.next((el) => el.attrs.id === 'g1');
    await ackAll(a, alice, aId);
    await ackAll(c, carol, cId);
    const item = (await smStoreOf(one.server).get(`${alice}@localhost`, aId, one.clock.now()))!;
    assert.ok(item.q.some((x) => x.includes('id="rt')), 'only the ping result is left unacknowledged');
    assert.ok(!item.q.some((x) => x.includes('id="g1"')));
    for (const x of [o, a, c]) x.ws.close();
  });

  it('a stanza of the old connection handled by another process after a resume read the count is not counted nor routed: the client resends it, and it arrives once (§5)', async () => {
    const [alice, bob] = [await user('race'), await user('raceb')];
    const { c: a, id } = await managed(alice);
    const b = await RawClient.connect(one.url);
    await b.login(bob);
    const old = await connectionOf(alice);
    // The second process handles a frame of the old connection, and so caches its session.
    await two.server.frame(old.connectionId, old.endpoint, `<iq xmlns="jabber:client" type="get" id="p2" to="localhost"><ping xmlns="urn:xmpp:ping"/></iq>`);
    await a.next((el) => el.attrs.id === 'p2');
    // The client resumes on a new connection while the old one is still open (§5).
    const c = await RawClient.connect(one.url);
    await authenticate(c, alice);
    c.send(`<resume xmlns="${SM}" previd="${id}" h="${receivedSinceEnabled(a)}"/>`);
    const resumed = await c.next(isSm('resumed'));
    assert.equal(resumed.attrs.h, '1', 'the ping');
    await a.closed;
    // A frame of the old connection that was already on its way, handled after the resume: not
    // counted, not routed; the client sends it again on the new connection, as §5 asks.
    await two.server.frame(old.connectionId, old.endpoint, `<message xmlns="jabber:client" to="${bob}@localhost/raw" type="chat" id="late"><body>late</body></message>`);
    c.send(`<message xmlns="jabber:client" to="${bob}@localhost/raw" type="chat" id="late"><body>late</body></message>`);
    await b.next((el) => el.attrs.id === 'late');
    await roundTrip(b);
    assert.equal(b.frames.filter((f) => f.includes('id="late"')).length, 1, 'once');
    assert.equal(await serverH(c), 2, 'the ping, then the message once');
    c.ws.close();
    b.ws.close();
  });

  it('a resume releases the kept stanzas only once it posted every one: a sender after the release cannot overtake one kept meanwhile (§5)', async () => {
    const [alice, bob] = [await user('order'), await user('orderb')];
    const { c: a, id } = await managed(alice);
    const b = await RawClient.connect(one.url);
    await b.login(bob);
    const toAlice = (mid: string) => `<message xmlns="jabber:client" to="${alice}@localhost/phone" type="chat" id="${mid}"><body>${mid}</body></message>`;
    b.send(toAlice('o1'));
    await a.next((el) => el.attrs.id === 'o1');
    await one.server.disconnect((await connectionOf(alice)).connectionId);
    a.ws.terminate();
    b.send(toAlice('o2'));
    await roundTrip(b);
    // Two senders race the resume (another process each, by the second server): one while the
    // resume resends, before its first try to release; one right after that try.
    const store = smStoreOf(one.server);
    const release = store.release.bind(store);
    let tries = 0;
    store.release = async (...args: Parameters<typeof release>) => {
      const first = ++tries === 1;
      if (first) await viaTwo(bob, toAlice('o3'));
      const result = await release(...args);
      if (first) await viaTwo(bob, toAlice('o4'));
      return result;
    };
    try {
      const c = await RawClient.connect(one.url);
      await authenticate(c, alice);
      c.send(`<resume xmlns="${SM}" previd="${id}" h="1"/>`);
      await c.next(isSm('resumed'));
      await c.next((el) => el.attrs.id === 'o4');
      const got = c.frames.map((f) => /<message[^>]* id="(o\d)"/.exec(f)?.[1]).filter(Boolean);
      assert.deepEqual(got, ['o2', 'o3', 'o4'], 'in order, once');
      c.ws.close();
    } finally {
      store.release = release;
      b.ws.close();
    }
  });
});

