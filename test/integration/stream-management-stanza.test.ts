// XEP-0198 with StanzaJS (`stanza`), the other client library web apps use: it enables stream
// management with resumption by itself, resumes on the next connect, and resends what the server's
// <resumed h/> does not cover. 200 messages each way, one client's socket killed in the middle of the
// other's burst: every message arrives exactly once and in order.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Agent, createClient } from 'stanza';
import { type TestServer, startTestServer, until, untilCount } from '../support/harness.ts';

let s: TestServer;

/** A logged-in StanzaJS client with stream management on; records the bodies it receives, by sender. */
async function stanzaClient(username: string, resource: string): Promise<{ agent: Agent; bodies: (from: string) => string[] }> {
  const agent = createClient({
    jid: `${username}@localhost`,
    password: 'secret',
    resource,
    transports: { websocket: s.url, bosh: false },
    autoReconnect: false,
    useStreamManagement: true,
    allowResumption: true,
  });
  const got: { from: string; body: string }[] = [];
  agent.on('message', (m) => {
    if (m.body) got.push({ from: m.from, body: m.body });
  });
  const started = new Promise((resolve) => agent.once('session:started', resolve));
  agent.connect();
  await started;
  await until(`${username}'s stream management`, () => agent.sm.started);
  return { agent, bodies: (from) => got.filter((g) => g.from.startsWith(from)).map((g) => g.body) };
}

before(async () => {
  s = await startTestServer({ tenantWatchMs: 3_600_000 });
  const tenant = (await s.server.tenants.get('localhost', 0))!;
  await s.server.tenants.put({ ...tenant, features: [...(tenant.features ?? []), 'sm'] });
  await s.addUser('alice@localhost');
  await s.addUser('bob@localhost');
});
after(() => s.stop());

describe('XEP-0198 with StanzaJS', () => {
  it('the connection dropped in the middle of a 200-message burst, 200 messages each way: resumed, every message arrives once and in order', async () => {
    const alice = await stanzaClient('alice', 'phone');
    const bob = await stanzaClient('bob', 'desk');
    const N = 200;
    const expected = Array.from({ length: N }, (_, i) => `m${i + 1}`);
    let disconnected = false;
    let resumed = false;
    alice.agent.once('disconnected', () => (disconnected = true));
    alice.agent.once('stream:management:resumed', () => (resumed = true));
    const send = (from: Agent, to: string, i: number) => from.sendMessage({ to, type: 'chat', id: `m${i}`, body: `m${i}` });
    for (let i = 1; i < 100; i++) {
      send(bob.agent, 'alice@localhost/phone', i);
      send(alice.agent, 'bob@localhost/desk', i);
    }
    // The network goes in the middle of bob's burst. (StanzaJS, unlike xmpp.js, fails on writes to a
    // dead socket, so alice sends the rest of hers once it has resumed.)
    // As StanzaJS's own keepalive drops a dead connection: the socket closes, no </close> is sent.
    const transport = alice.agent.transport as unknown as { hasStream: boolean; disconnect(clean: boolean): void };
    transport.hasStream = false;
    transport.disconnect(false);
    for (let i = 100; i <= N; i++) send(bob.agent, 'alice@localhost/phone', i);
    await until('alice to see the disconnect', () => disconnected);
    alice.agent.connect();
    await until('alice to resume', () => resumed);
    for (let i = 100; i <= N; i++) send(alice.agent, 'bob@localhost/desk', i);
    // The burst's total time depends on how busy the machine is: the waits fail only when delivery stalls.
    await untilCount('alice to have all of bob\'s', () => alice.bodies('bob@').length, N);
    await untilCount('bob to have all of alice\'s', () => bob.bodies('alice@').length, N);
    // A round trip on each: nothing more (no duplicate) is on its way.
    await alice.agent.ping('localhost');
    await bob.agent.ping('localhost');
    await s.gateway.idle();
    assert.deepEqual(alice.bodies('bob@'), expected);
    assert.deepEqual(bob.bodies('alice@'), expected);
    await alice.agent.disconnect();
    await bob.agent.disconnect();
  });
});
