// Message accounting (issue 9): senders and receivers that drop, freeze, read slowly and come back, and
// a server that crashes and restarts in the middle. Every message a sender had acknowledged (a ping
// round trip after it, RFC 6120 §10.1: stanzas are processed in order) is counted exactly once as
// delivered (live, or from offline storage when its recipient comes back), answered with an error, or
// "swallowed": accepted by the gateway for a connection that was dying (a frozen network, a socket the
// client dropped) and never read. Nothing else: zero unaccounted. The swallowed ones are what only
// stream management (XEP-0198) can recover; the test names them (docs/architecture.md "Connections die
// silently").
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { after, test } from 'node:test';
import { startDynalite } from '../../lib/local/dynamo-local.ts';
import { parseFrame } from '../../lib/xmpp/xml.ts';
import { RawClient, type TestClient, type TestServer, connectClient, startTestServer, until } from '../support/harness.ts';

const RECEIVERS = ['steady', 'dropper', 'freezer', 'slow', 'absent'] as const;
type Receiver = (typeof RECEIVERS)[number];
const SENDERS = ['s1', 's2'] as const;

/** What one receiver's connections read. */
interface Reader {
  raw: RawClient;
  connectionId: string;
}

const dynamo = await startDynalite({ port: 0 });
after(() => dynamo.close());

/** Every post the server made that the gateway accepted: connection id and message id. */
const accepted: { connectionId: string; id: string }[] = [];

async function startServer(port = 0): Promise<TestServer> {
  const s = await startTestServer({
    dynamoEndpoint: dynamo.endpoint,
    port,
    // The gateway's WebSocket pings find a frozen client within seconds (the defaults are 30 s + 30 s);
    // the slow reader's pause (one round) stays well inside the pong deadline even on a loaded machine.
    gatewayLimits: { pingIntervalMs: 20, pongTimeoutMs: 5000 },
  });
  const management = s.server.management;
  const post = management.post.bind(management);
  management.post = async (target, data) => {
    const ok = await post(target, data);
    const id = /^<message\b[^>]*\sid="(acct-[^"]+)"/.exec(data)?.[1];
    if (ok && id) accepted.push({ connectionId: target.connectionId, id });
    return ok;
  };
  return s;
}

const socketOf = (c: RawClient) => (c.ws as unknown as { _socket: Socket })._socket;

async function read(s: TestServer, name: Receiver): Promise<Reader> {
  const before = new Set(s.gateway.connectionIds());
  const raw = await RawClient.connect(s.url);
  await raw.login(name, 'secret', 'r');
  raw.send('<presence xmlns="jabber:client"/>');
  await raw.next((el) => el.name === 'presence' && el.attrs.from === `${name}@localhost/r`);
  // Offline messages go out while the initial presence is processed (RFC 6121 §4.2.2 lets a server
  // send them then); the answer to a ping sent after it comes after all of them (RFC 6120 §10.1).
  raw.send('<iq xmlns="jabber:client" type="get" id="flush" to="localhost"><ping xmlns="urn:xmpp:ping"/></iq>');
  await raw.next((el) => el.attrs.id === 'flush');
  const connectionId = s.gateway.connectionIds().find((id) => !before.has(id))!;
  return { raw, connectionId };
}

/** Message ids a reader has read, with how each came (live, or from offline storage with a delay stamp). */
function idsRead(r: Reader): { id: string; offline: boolean }[] {
  return r.raw.frames
    .map((f) => parseFrame(f))
    .filter((el) => el.name === 'message' && el.attrs.id?.startsWith('acct-'))
    .map((el) => ({ id: el.attrs.id, offline: !!el.getChild('delay', 'urn:xmpp:delay') }));
}

test('every acknowledged message is delivered, stored offline, answered or named as swallowed by a dying connection', async (t) => {
  let s = await startServer();
  for (const name of [...RECEIVERS, ...SENDERS]) await s.addUser(`${name}@localhost`);
  const readers = new Map<Receiver, Reader[]>(RECEIVERS.map((r) => [r, []]));
  /** Connections the test broke (dropped, froze) or that died with the server. */
  const dying = new Set<string>();
  const cleanup: (() => unknown)[] = [];
  t.after(async () => {
    for (const c of cleanup.reverse()) await c();
  });
  const connect = async (name: Receiver) => {
    const r = await read(s, name);
    readers.get(name)!.push(r);
    cleanup.push(() => r.raw.ws.terminate());
    return r;
  };
  const everySender: TestClient[] = [];
  const senders = async () => {
    const list: TestClient[] = [];
    for (const name of SENDERS) list.push(await connectClient(s.url, { username: name }));
    for (const c of list) cleanup.push(() => c.stop());
    everySender.push(...list);
    return list;
  };

  for (const name of ['steady', 'dropper', 'freezer', 'slow'] as const) await connect(name);
  let from = await senders();
  const sent: { id: string; to: Receiver; sender: TestClient }[] = [];

  /** One round: each sender sends one chat message to each receiver, then a round trip acknowledges them. */
  const round = async (n: number) => {
    for (const sender of from) {
      for (const to of RECEIVERS) {
        const id = `acct-${n}-${sender.jid.split('@')[0]}-${to}`;
        sent.push({ id, to, sender });
        await sender.send(parseFrame(`<message xmlns="jabber:client" type="chat" to="${to}@localhost" id="${id}"><body>${'m'.repeat(200)}</body></message>`));
      }
    }
    for (const sender of from) await sender.roundTrip();
  };

  await round(1);
  await round(2);

  // The dropper's socket goes away (no close handshake) while messages flow to it.
  const dropped = readers.get('dropper')![0];
  dying.add(dropped.connectionId);
  socketOf(dropped.raw).destroy();
  // The freezer's network freezes: nothing is read or answered, not even the gateway's pings.
  const frozen = readers.get('freezer')![0];
  dying.add(frozen.connectionId);
  socketOf(frozen.raw).pause();
  // The slow reader stops reading for a round (its messages wait in the socket buffers), then catches up.
  const slow = readers.get('slow')![0];
  socketOf(slow.raw).pause();
  await round(3);
  socketOf(slow.raw).resume();
  await round(4);
  await until('the frozen session found and ended', async () => (await s.server.sessions.list('freezer@localhost')).length === 0);
  await until('the dropped session ended', async () => (await s.server.sessions.list('dropper@localhost')).length === 0);
  await round(5);
  await round(6);
  await until('the slow reader caught up', () => idsRead(slow).length === 12);

  // The server crashes: no $disconnect for anyone; every open connection dies with it.
  for (const id of s.gateway.connectionIds()) dying.add(id);
  await s.gateway.crash();
  await s.stop();
  for (const c of from) await c.stop();
  s = await startServer(Number(new URL(s.url).port));
  cleanup.push(() => s.stop());
  // The restart ended the sessions of the crashed run, so what follows goes to offline storage.
  for (const name of RECEIVERS) assert.deepEqual(await s.server.sessions.list(`${name}@localhost`), [], `${name} has no stale session`);
  from = await senders();
  await round(7);
  await round(8);

  // Everyone comes back and reads what was kept.
  for (const name of RECEIVERS) await connect(name);

  // ---- the accounting
  const reads = new Map<string, { id: string; offline: boolean }[]>();
  for (const [name, list] of readers) for (const r of list) for (const hit of idsRead(r)) reads.set(hit.id, [...(reads.get(hit.id) ?? []), hit]);
  const errors = new Set<string>();
  for (const sender of everySender) for (const el of sender.received) if (el.attrs.type === 'error' && el.attrs.id?.startsWith('acct-')) errors.add(el.attrs.id);
  const swallowed = (id: string) => accepted.some((a) => a.id === id && dying.has(a.connectionId));

  const tally = { delivered: 0, fromOffline: 0, answered: 0, swallowed: [] as string[], twice: [] as string[], unaccounted: [] as string[] };
  for (const { id } of sent) {
    const got = reads.get(id) ?? [];
    if (got.length > 1) tally.twice.push(id);
    if (got.length) {
      tally.delivered++;
      if (got[0].offline) tally.fromOffline++;
    } else if (errors.has(id)) tally.answered++;
    else if (swallowed(id)) tally.swallowed.push(id);
    else tally.unaccounted.push(id);
  }
  t.diagnostic(`sent ${sent.length}: ${JSON.stringify({ ...tally, swallowed: tally.swallowed.length })}; swallowed: ${tally.swallowed.join(' ')}`);

  assert.equal(sent.length, 8 * SENDERS.length * RECEIVERS.length);
  assert.deepEqual(tally.unaccounted, [], 'every message is accounted for');
  assert.deepEqual(tally.twice, [], 'none is delivered twice');
  // Only the two broken receivers' dying connections swallow anything, and only in the rounds they broke in.
  for (const id of tally.swallowed) assert.match(id, /^acct-[34]-s\d-(dropper|freezer)$/, `${id} swallowed`);
  // The absent user, and everyone after the crash, got theirs from offline storage: the paths were exercised.
  for (const n of [1, 2, 3, 4, 5, 6, 7, 8]) for (const sender of SENDERS) assert.equal(reads.get(`acct-${n}-${sender}-absent`)?.[0].offline, true);
  for (const to of RECEIVERS) assert.equal(reads.get(`acct-7-s1-${to}`)?.[0].offline, true, `${to} got round 7 from offline storage`);
  assert.equal(reads.get('acct-5-s1-freezer')?.[0].offline, true, 'after the freeze was found, the freezer’s messages were kept');
  assert.equal(errors.size, 0, 'no message here deserved an error');
});
