// Faults the local gateway and local server must survive (issue 9), with a real local server and real clients:
// a client that stops reading (its senders must not wait on it), a client whose network freezes (found by the
// gateway's WebSocket pings, RFC 6455 §5.5.2), and a server that crashed and starts again on the same table.
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { test } from 'node:test';
import { offlineOf } from '../../lib/extensions/offline/index.ts';
import { RawClient, type TestServer, byName, connectClient, startTestServer, until, xml } from '../support/harness.ts';
import { mutualSubscription } from '../support/roster.ts';

const KiB = 1024;

/** The raw TCP socket under a `ws` client: pausing it stops the client reading, as a frozen app or network would. */
const socketOf = (c: RawClient) => (c.ws as unknown as { _socket: Socket })._socket;

/** Logs a raw client in and returns it with the connection id the gateway gave it. */
async function rawLogin(s: TestServer, username: string): Promise<{ client: RawClient; connectionId: string }> {
  const before = new Set(s.gateway.connectionIds());
  const client = await RawClient.connect(s.url);
  await client.login(username);
  const connectionId = s.gateway.connectionIds().find((id) => !before.has(id));
  assert.ok(connectionId, `a connection for ${username}`);
  return { client, connectionId };
}


/** The connection is closed, its session gone, and its item deleted or a tombstone (docs/architecture.md "Connections die silently"). */
const ended = async (s: TestServer, bare: string, connectionId: string) =>
  !s.gateway.connectionIds().includes(connectionId) &&
  (await s.server.sessions.list(bare)).length === 0 &&
  [undefined, 'gone'].includes((await s.server.connections.get(connectionId))?.stage);

test('a client that stops reading is dropped when its outbound buffer is full; those sending to it never wait on it', async (t) => {
  const s = await startTestServer({ gatewayLimits: { maxOutboundBufferBytes: 64 * KiB } });
  await s.addUser('slow@localhost');
  await s.addUser('sender@localhost');
  const slow = await rawLogin(s, 'slow');
  const sender = await connectClient(s.url, { username: 'sender' });
  t.after(async () => {
    slow.client.ws.terminate(); // if the test failed with the slow client still connected, this frees the server
    await sender.stop();
    await s.stop();
  });

  socketOf(slow.client).pause();
  // Flood until the gateway gives up on the slow client. The OS socket buffers take some megabytes first, so
  // the flood is sent in rounds; after each, the sender's own ping must be answered: before the fix, a post to
  // the full socket waited for it to drain, and the sender's frames waited behind that post for ever.
  const body = 'x'.repeat(30 * KiB);
  for (let round = 0; s.gateway.connectionIds().includes(slow.connectionId); round++) {
    assert.ok(round < 40, 'the slow client was dropped within 40 rounds (38 MB)');
    for (let i = 0; i < 32; i++) {
      await sender.send(xml('message', { to: 'slow@localhost/raw', type: 'chat', id: `r${round}m${i}` }, xml('body', {}, body)));
    }
    await sender.roundTrip();
  }

  // The drop counts as the connection's end: $disconnect or the next post's 410 ends the session.
  await until('the slow session ended', () => ended(s, 'slow@localhost', slow.connectionId));
  // The message that found the buffer full was not lost: it got 410 and went to offline storage (RFC 6121 §8.5.3.2.1).
  assert.ok((await offlineOf(s.server).list('slow@localhost')).length >= 1, 'the refused message is kept offline');
  await sender.roundTrip();
  socketOf(slow.client).resume();
  assert.equal((await slow.client.closed).code, 1006, 'dropped without a close handshake');
});

test('a connection that misses the gateway’s pong deadline is dropped and its session ended; one that answers stays', async (t) => {
  const s = await startTestServer({ gatewayLimits: { pingIntervalMs: 20, pongTimeoutMs: 500 } });
  t.after(() => s.stop());
  await s.addUser('frozen@localhost');
  await s.addUser('healthy@localhost');
  await s.addUser('watcher@localhost');
  await mutualSubscription(s, 'frozen@localhost', 'watcher@localhost');
  const watcher = await connectClient(s.url, { username: 'watcher' });
  t.after(() => watcher.stop());
  await watcher.send(xml('presence'));
  const healthy = await rawLogin(s, 'healthy');
  const frozen = await rawLogin(s, 'frozen');
  frozen.client.send('<presence xmlns="jabber:client"/>');
  await watcher.waitFor(byName('presence', { from: 'frozen@localhost/raw' }));

  let healthyPings = 0;
  let frozenPings = 0;
  healthy.client.ws.on('ping', () => healthyPings++);
  frozen.client.ws.on('ping', () => frozenPings++);
  await until('pings to both, answered by both', () => healthyPings >= 3 && frozenPings >= 1, () => ({ healthyPings, frozenPings }));

  socketOf(frozen.client).pause(); // the network freezes: no FIN, no RST, no pong
  const gone = await watcher.waitFor(byName('presence', { from: 'frozen@localhost/raw', type: 'unavailable' }));
  assert.ok(gone, 'contacts learn the frozen client is gone (RFC 6121 §4.5.2)');
  await until('the frozen session ended', () => ended(s, 'frozen@localhost', frozen.connectionId));

  const seen = healthyPings;
  await until('more pings to the healthy client', () => healthyPings >= seen + 3, () => healthyPings);
  assert.ok(s.gateway.connectionIds().includes(healthy.connectionId), 'a client that answers pings stays connected');
  assert.equal((await s.server.sessions.list('healthy@localhost')).length, 1);
  socketOf(frozen.client).resume();
  assert.equal((await frozen.client.closed).code, 1006, 'dropped without a close handshake');
});

test('a server restarted after a crash ends the sessions of its previous run: contacts see them leave, messages go offline', async (t) => {
  // Bob is in another region on the same table, so he outlives the crash of region "local".
  const other = await startTestServer({ region: 'other' });
  // Stopped last to first: `other` holds the dynalite the others use.
  const stops: Array<() => Promise<void>> = [() => other.stop()];
  t.after(async () => {
    for (const stop of stops.reverse()) await stop();
  });
  // dropDisconnect: the crashed process never runs $disconnect for its connections.
  const crashed = await startTestServer({ dynamoEndpoint: other.dynamoEndpoint, dropDisconnect: true });
  stops.push(() => crashed.stop());
  await crashed.addUser('alice@localhost');
  await crashed.addUser('bob@localhost');
  await mutualSubscription(crashed, 'alice@localhost', 'bob@localhost');
  const bob = await connectClient(other.url, { username: 'bob', resource: 'phone' });
  stops.push(() => bob.stop());
  await bob.send(xml('presence'));
  const alice = await connectClient(crashed.url, { username: 'alice', resource: 'laptop' });
  stops.push(() => alice.stop());
  await alice.send(xml('presence'));
  await bob.waitFor(byName('presence', { from: 'alice@localhost/laptop' }));
  // Bob's presence, the answer to Alice's probe, reached her before the crash: no post to her is still under way
  // (one posted while the gateway closes her socket is answered 410, which would end her session before the restart).
  await alice.waitFor(byName('presence', { from: 'bob@localhost/phone' }));

  // The crash: the gateway goes away, the server never ends a session.
  await crashed.gateway.stop();
  assert.equal((await crashed.server.sessions.list('alice@localhost')).length, 1, 'the dead session is still listed');

  const port = Number(new URL(crashed.url).port);
  const restarted = await startTestServer({ dynamoEndpoint: other.dynamoEndpoint, port });
  stops.push(() => restarted.stop());
  await bob.waitFor(byName('presence', { from: 'alice@localhost/laptop', type: 'unavailable' }));
  assert.deepEqual(await restarted.server.sessions.list('alice@localhost'), []);
  assert.equal((await other.server.sessions.list('bob@localhost')).length, 1, 'another region’s sessions are left alone');

  await bob.send(xml('message', { to: 'alice@localhost', type: 'chat', id: 'after-crash' }, xml('body', {}, 'are you there?')));
  await bob.roundTrip();
  const again = await connectClient(restarted.url, { username: 'alice', resource: 'laptop' });
  stops.push(() => again.stop());
  await again.send(xml('presence'));
  const kept = await again.waitFor(byName('message', { id: 'after-crash' }));
  assert.equal(kept.getChildText('body'), 'are you there?', 'the message went to offline storage, not to the dead session');
});

test('at start, a server asks about its region’s connections at other endpoints: a live server’s stay, a dead gateway’s end', async (t) => {
  const live = await startTestServer(); // region "local", still running
  const stops: Array<() => Promise<void>> = [() => live.stop()];
  t.after(async () => {
    for (const stop of stops.reverse()) await stop();
  });
  const crashed = await startTestServer({ dynamoEndpoint: live.dynamoEndpoint, dropDisconnect: true });
  stops.push(() => crashed.stop());
  await live.addUser('carol@localhost');
  await live.addUser('dave@localhost');
  const carol = await connectClient(live.url, { username: 'carol' });
  stops.push(() => carol.stop());
  const dave = await connectClient(crashed.url, { username: 'dave' });
  stops.push(() => dave.stop());
  await crashed.gateway.stop();

  // A new port: neither connection is at this server's own endpoint, so each gateway is asked (GetConnection).
  const started = await startTestServer({ dynamoEndpoint: live.dynamoEndpoint });
  stops.push(() => started.stop());
  assert.deepEqual(await started.server.sessions.list('dave@localhost'), [], 'the gateway that no longer answers held nothing');
  assert.equal((await started.server.sessions.list('carol@localhost')).length, 1, 'the live server’s session stays');
  await carol.roundTrip();
});
