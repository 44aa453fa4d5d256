// XEP-0198 with a real client library: xmpp.js (@xmpp/client) enables stream management by itself
// when the server offers it, acks, and resumes after a reconnect. A burst of 200 messages each way
// with the socket killed in the middle, and API Gateway's maximum connection duration (made short)
// cutting a connection: every message arrives exactly once and in order, without a new login.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { smStoreOf } from '../../lib/extensions/stream-management/index.ts';
import { type TestClient, type TestServer, connectClient, startTestServer, until, untilCount, xml, type Element } from '../support/harness.ts';

type Sm = { id: string; enabled: boolean; on(event: 'resumed', fn: () => void): void };
const smOf = (c: TestClient) => (c.xmpp as unknown as { streamManagement: Sm }).streamManagement;
/** Kills the client's WebSocket without a close handshake: the network went away. */
const killSocket = (c: TestClient) => (c.xmpp as unknown as { socket: { socket: { terminate(): void } } }).socket.socket.terminate();
/** Reconnects as xmpp.js's reconnect module does (a new WebSocket, the same SASL login) and waits for <resumed/>. */
async function resume(c: TestClient): Promise<void> {
  const sm = smOf(c);
  const resumed = new Promise<void>((resolve) => sm.on('resumed', resolve));
  await until('the client to see the disconnect', () => c.xmpp.status === 'disconnect', () => c.xmpp.status);
  await (c.xmpp as unknown as { reconnect: { reconnect(): Promise<void> } }).reconnect.reconnect();
  await resumed;
}
const bodies = (c: TestClient, from: string) =>
  c.received.filter((el: Element) => el.name === 'message' && el.attrs.from?.startsWith(from)).map((el: Element) => el.getChildText('body'));

async function setUp(opts: Parameters<typeof startTestServer>[0] = {}): Promise<TestServer> {
  const s = await startTestServer({ tenantWatchMs: 3_600_000, ...opts });
  const tenant = (await s.server.tenants.get('localhost', 0))!;
  await s.server.tenants.put({ ...tenant, features: [...(tenant.features ?? []), 'sm'] });
  return s;
}

describe('XEP-0198 with xmpp.js', () => {
  let s: TestServer;
  before(async () => {
    s = await setUp();
    await s.addUser('alice@localhost');
    await s.addUser('bob@localhost');
  });
  after(() => s.stop());

  it('a socket killed in the middle of 200 messages each way: resumed, every message arrives once and in order', async () => {
    const alice = await connectClient(s.url, { username: 'alice', resource: 'phone' });
    const bob = await connectClient(s.url, { username: 'bob', resource: 'desk' });
    await until('stream management on both', () => smOf(alice).enabled && smOf(bob).enabled);
    const N = 200;
    const expected = Array.from({ length: N }, (_, i) => `m${i + 1}`);
    const sendAll = async (from: TestClient, to: string, killAt?: number) => {
      for (let i = 1; i <= N; i++) {
        if (i === killAt) killSocket(from);
        // A send into the dead socket fails; xmpp.js keeps the stanza in its queue and resends it after <resumed/>.
        await from.send(xml('message', { to, type: 'chat', id: `m${i}` }, xml('body', {}, `m${i}`))).catch(() => {});
      }
    };
    const bobSending = sendAll(bob, 'alice@localhost/phone');
    await sendAll(alice, 'bob@localhost/desk', 100);
    await bobSending;
    await resume(alice);
    // 400 messages take about 30 s on a shared laptop (each is a frame, a claim, a count and a post), and
    // longer on a loaded one: the waits fail only when delivery stalls.
    await untilCount('alice to have all of bob\'s', () => bodies(alice, 'bob@').length, N);
    await untilCount('bob to have all of alice\'s', () => bodies(bob, 'alice@').length, N);
    // Nothing more is on its way: round trips on both settle the streams.
    await alice.roundTrip();
    await bob.roundTrip();
    assert.deepEqual(bodies(alice, 'bob@'), expected);
    assert.deepEqual(bodies(bob, 'alice@'), expected);
    await alice.stop();
    await bob.stop();
  });
});

describe('XEP-0198 across API Gateway\'s maximum connection duration', () => {
  let s: TestServer;
  before(async () => {
    // A 6-second "2 hours": the gateway closes every connection 6 s after it opened.
    s = await setUp({ gatewayLimits: { maxDurationMs: 6000 } });
    await s.addUser('carol@localhost');
    await s.addUser('dave@localhost');
  });
  after(() => s.stop());

  it('the server asks for an ack at its check before the cut; after the cut the client resumes on a new connection without a new login and gets what was sent meanwhile', async () => {
    const carol = await connectClient(s.url, { username: 'carol', resource: 'phone' });
    await until('stream management', () => smOf(carol).enabled);
    const id = smOf(carol).id;
    const item = () => smStoreOf(s.server).get('carol@localhost', id, s.clock.now());
    // The liveness check (every 10 minutes, so within 10 minutes of the cut) pings and asks for an
    // ack; xmpp.js answers <r/> with <a h/>, which acknowledges the ping.
    await s.server.sweep(s.clock.now() + s.server.limits.connectionCheckMs + 1000);
    await until('carol to acknowledge what the server sent', async () => (await item())!.acked >= 1, item);
    // The cut: the gateway closes carol's connection at its maximum duration.
    await until('the gateway to cut carol', () => carol.xmpp.status === 'disconnect', () => carol.xmpp.status, 15_000);
    await until('the session to be detached', async () => (await item())?.detachedUntil);
    const dave = await connectClient(s.url, { username: 'dave', resource: 'desk' });
    await dave.send(xml('message', { to: 'carol@localhost/phone', type: 'chat' }, xml('body', {}, 'during the cut')));
    await dave.roundTrip();
    await resume(carol);
    assert.equal(smOf(carol).id, id, 'the same stream-managed session');
    await carol.waitFor((el) => el.getChildText('body') === 'during the cut');
    await carol.send(xml('message', { to: 'dave@localhost/desk', type: 'chat' }, xml('body', {}, 'back')));
    await dave.waitFor((el) => el.getChildText('body') === 'back');
    await carol.stop();
    await dave.stop();
  });
});
