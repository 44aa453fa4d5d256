// BOSH (XEP-0124/0206) with the client libraries web apps use, as an application calls them:
// Strophe.js (5.x, under Node with xhr2 and @xmldom/xmldom: test/support/strophe.ts) and StanzaJS
// (12.x, its own BOSH transport). Each logs in over BOSH only and chats with a WebSocket user (xmpp.js)
// both ways, with long-poll delivery; presence goes both ways; a room has a BOSH and a WebSocket
// occupant; a message for a BOSH user who went away is kept offline; XEP-0198 is enabled and acks flow
// over BOSH.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Agent, createClient } from 'stanza';
import { $msg, $pres, Strophe } from '../support/strophe.ts';
import { type TestClient, type TestServer, WAIT_MS, byName, connectClient, startTestServer, until, xml } from '../support/harness.ts';
import { smStoreOf } from '../../lib/extensions/stream-management/index.ts';
import { createInstant } from '../support/muc.ts';
import { mutualSubscription } from '../support/roster.ts';

Strophe.setLogLevel(Strophe.LogLevel.FATAL);

let s: TestServer;
let n = 0;
const wsClients: TestClient[] = [];
/** Each Strophe connection and a promise of its end (Strophe.Status.DISCONNECTED). */
const stropheConns: { conn: InstanceType<typeof Strophe.Connection>; ended: Promise<void> }[] = [];
const agents: Agent[] = [];

async function account(): Promise<string> {
  const name = `bc${++n}`;
  await s.addUser(`${name}@localhost`);
  return name;
}

async function ws(username: string): Promise<TestClient> {
  const c = await connectClient(s.url, { username });
  wsClients.push(c);
  return c;
}

/** A Strophe.js BOSH connection, logged in, with every stanza it receives. */
async function strophe(username: string, resource = 'strophe'): Promise<{ conn: InstanceType<typeof Strophe.Connection>; received: Element[]; jid: string }> {
  const conn = new Strophe.Connection(s.boshUrl);
  const received: Element[] = [];
  conn.addHandler((el: Element) => {
    received.push(el);
    return true;
  });
  let ended!: () => void;
  stropheConns.push({ conn, ended: new Promise<void>((resolve) => (ended = resolve)) });
  await new Promise<void>((resolve, reject) =>
    conn.connect(`${username}@localhost/${resource}`, 'secret', (status: number, condition: string) => {
      if (status === Strophe.Status.CONNECTED) resolve();
      else if (status === Strophe.Status.AUTHFAIL || status === Strophe.Status.CONNFAIL) reject(new Error(`Strophe: status ${status} ${condition}`));
      else if (status === Strophe.Status.DISCONNECTED) ended();
    }),
  );
  return { conn, received, jid: conn.jid };
}

const textOf = (el: Element, name: string) => el.getElementsByTagName(name)[0]?.textContent ?? undefined;

/** A StanzaJS client over BOSH only, logged in. */
async function stanzaBosh(username: string, resource = 'stanza'): Promise<Agent> {
  const agent = createClient({ jid: `${username}@localhost`, password: 'secret', resource, transports: { websocket: false, bosh: s.boshUrl }, autoReconnect: false });
  agents.push(agent);
  agent.on('disconnected', () => agents.splice(agents.indexOf(agent), 1));
  const started = new Promise((resolve) => agent.once('session:started', resolve));
  agent.connect();
  await started;
  return agent;
}

before(async () => {
  s = await startTestServer({ tenantWatchMs: 3_600_000 });
});
after(async () => {
  // Every client ends its session before the server stops: a BOSH request cut by the stop would be
  // retried by the library for a minute and more.
  for (const { conn, ended } of stropheConns) {
    if (conn.connected) conn.disconnect('done');
    if (conn.connected || conn.disconnecting) await ended;
  }
  await Promise.all([...agents].map((a) => new Promise<void>((resolve) => (a.once('disconnected', () => resolve()), a.disconnect()))));
  for (const c of wsClients) await c.stop();
  await s.stop();
});

describe('Strophe.js over BOSH', () => {
  it('logs in and chats both ways with a WebSocket user; a message answers the waiting request, not its wait running out', async () => {
    const [a, b] = [await account(), await account()];
    const alice = await strophe(a);
    assert.equal(alice.jid, `${a}@localhost/strophe`);
    const bob = await ws(b);
    alice.conn.send($msg({ to: bob.jid, type: 'chat' }).c('body').t('hi bob').tree());
    const atBob = await bob.waitFor(byName('message'));
    assert.deepEqual([atBob.getChildText('body'), atBob.attrs.from], ['hi bob', alice.jid]);
    // Strophe keeps a request waiting at the server; bob's message answers it.
    const sentAt = Date.now();
    await bob.send(xml('message', { to: alice.jid, type: 'chat' }, xml('body', {}, 'hi alice')));
    await until('the message at Strophe', () => alice.received.some((e) => e.tagName === 'message' && textOf(e, 'body') === 'hi alice'), () => alice.received.length);
    const latency = Date.now() - sentAt;
    // Strophe asks for wait=60: a server that answered only when it ran out would take about a minute.
    // The bound is half of that, so no load on the machine reaches it.
    assert.ok(latency < 30_000, `delivered in ${latency} ms`);
  });

  it('receives 50 messages from a WebSocket user in order, and sends 50 in order', async () => {
    const [a, b] = [await account(), await account()];
    const alice = await strophe(a);
    const bob = await ws(b);
    for (let i = 0; i < 50; i++) await bob.send(xml('message', { to: alice.jid, type: 'chat' }, xml('body', {}, `in-${i}`)));
    const bodies = () => alice.received.filter((e) => e.tagName === 'message').map((e) => textOf(e, 'body'));
    await until('50 messages at Strophe', () => bodies().length >= 50, bodies);
    assert.deepEqual(bodies(), Array.from({ length: 50 }, (_, i) => `in-${i}`));
    for (let i = 0; i < 50; i++) alice.conn.send($msg({ to: bob.jid, type: 'chat' }).c('body').t(`out-${i}`).tree());
    const atBob: string[] = [];
    for (let i = 0; i < 50; i++) atBob.push((await bob.waitFor(byName('message'))).getChildText('body')!);
    assert.deepEqual(atBob, Array.from({ length: 50 }, (_, i) => `out-${i}`));
  });

  it('presence goes both ways with a WebSocket contact, and its disconnect shows as unavailable', async () => {
    const [a, b] = [await account(), await account()];
    await mutualSubscription(s, `${a}@localhost`, `${b}@localhost`);
    const bob = await ws(b);
    await bob.send(xml('presence'));
    const alice = await strophe(a);
    alice.conn.send($pres().tree());
    await bob.waitFor((e) => e.name === 'presence' && e.attrs.from === alice.jid && e.attrs.type === undefined);
    await until('bob\'s presence at Strophe', () => alice.received.some((e) => e.tagName === 'presence' && e.getAttribute('from') === bob.jid));
    alice.conn.disconnect('done');
    await bob.waitFor((e) => e.name === 'presence' && e.attrs.from === alice.jid && e.attrs.type === 'unavailable');
  });
});

describe('StanzaJS over BOSH', () => {
  it('logs in and chats both ways with a WebSocket user; a message answers the waiting request, not its wait running out', async () => {
    const [a, b] = [await account(), await account()];
    const alice = await stanzaBosh(a);
    assert.equal(alice.jid, `${a}@localhost/stanza`);
    assert.equal(alice.transport?.constructor.name, 'BOSH');
    const bob = await ws(b);
    const got: string[] = [];
    alice.on('chat', (m) => got.push(m.body ?? ''));
    alice.sendMessage({ to: bob.jid, type: 'chat', body: 'from stanza' });
    assert.equal((await bob.waitFor(byName('message'))).getChildText('body'), 'from stanza');
    const sentAt = Date.now();
    await bob.send(xml('message', { to: alice.jid, type: 'chat' }, xml('body', {}, 'to stanza')));
    await until('the message at StanzaJS', () => got.includes('to stanza'), () => got);
    // StanzaJS asks for wait=30: a server that answered only when it ran out would take about that long.
    assert.ok(Date.now() - sentAt < 15_000, `delivered in ${Date.now() - sentAt} ms`);
  });

  it('shares a room with a WebSocket user (XEP-0045 over BOSH)', async () => {
    const [a, b] = [await account(), await account()];
    const alice = await stanzaBosh(a);
    const bob = await ws(b);
    const room = `bosh-room-${n}@conference.localhost`;
    // bob (WebSocket) creates the room; alice (BOSH) joins it.
    await createInstant(bob, `${room}/bob`);
    await alice.joinRoom(room, 'alice');
    await bob.waitFor((e) => e.name === 'presence' && e.attrs.from === `${room}/alice`);
    const groupchat: string[] = [];
    alice.on('groupchat', (m) => groupchat.push(`${m.from}:${m.body}`));
    await bob.send(xml('message', { to: room, type: 'groupchat' }, xml('body', {}, 'hello room')));
    await until('the room message at StanzaJS', () => groupchat.includes(`${room}/bob:hello room`), () => groupchat);
    alice.sendMessage({ to: room, type: 'groupchat', body: 'hello from bosh' });
    const atBob = await bob.waitFor((e) => e.name === 'message' && e.attrs.from === `${room}/alice` && e.getChildText('body') === 'hello from bosh');
    assert.ok(atBob);
  });

  it('a message for a BOSH user who went away is kept offline and delivered at the next login', async () => {
    const [a, b] = [await account(), await account()];
    const alice = await stanzaBosh(a);
    const bob = await ws(b);
    await (alice.disconnect() as unknown as Promise<void>);
    await until('the BOSH session to end', async () => (await s.server.sessions.list(`${a}@localhost`)).length === 0);
    await bob.send(xml('message', { to: `${a}@localhost`, type: 'chat' }, xml('body', {}, 'while away')));
    await bob.roundTrip();
    const again = await stanzaBosh(a, 'again');
    const got: string[] = [];
    again.on('chat', (m) => got.push(m.body ?? ''));
    again.sendPresence();
    await until('the offline message', () => got.includes('while away'), () => got, WAIT_MS);
  });
});

describe('XEP-0198 over BOSH (StanzaJS)', () => {
  it('enables stream management on a BOSH session; the server counts and asks for acks, and acknowledges what the client sends', async () => {
    const tenant = (await s.server.tenants.get('localhost'))!;
    await s.server.tenants.put({ ...tenant, features: [...(tenant.features ?? []), 'sm'] });
    s.clock.advance(61_000); // past the tenant cache
    try {
      const [a, b] = [await account(), await account()];
      const alice = await stanzaBosh(a);
      await until('stream management', () => alice.sm.started && !!alice.sm.id, () => alice.sm.id);
      const item = () => smStoreOf(s.server).get(`${a}@localhost`, alice.sm.id!, s.clock.now());
      assert.ok(await item(), 'the session is managed at the server');
      const bob = await ws(b);
      const got: string[] = [];
      alice.on('chat', (m) => got.push(m.body ?? ''));
      for (let i = 0; i < 12; i++) await bob.send(xml('message', { to: alice.jid, type: 'chat' }, xml('body', {}, `sm-${i}`)));
      await until('12 messages at StanzaJS', () => got.length === 12, () => got);
      // The server asked for an ack with its 10th unacknowledged stanza (ackEvery: the <r/> goes out
      // just ahead of it); StanzaJS answered it with what it had handled.
      await until('the acknowledgement at the server', async () => (await item())!.acked >= 9, item);
      alice.sendMessage({ to: bob.jid, type: 'chat', body: 'managed' });
      await bob.waitFor((e) => e.name === 'message' && e.getChildText('body') === 'managed');
      await until('the server to acknowledge what StanzaJS sent', () => alice.sm.lastAck >= 1 && alice.sm.unacked.length === 0, () => [alice.sm.lastAck, alice.sm.unacked.length]);
      assert.ok((await item())!.in >= 1);
    } finally {
      await s.server.tenants.put(tenant);
      s.clock.advance(61_000);
    }
  });
});
