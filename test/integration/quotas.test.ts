// Per-tenant quotas and the $connect cap per source address (README "Metrics and usage"): the tenant's
// quotas.connections refuses the session one over it at resource binding with the stream error
// policy-violation (RFC 6120 §4.9.3.18) and takes the place back when a session ends;
// quotas.messagesPerMinute answers the message one over it with resource-constraint of type wait
// (RFC 6120 §8.3.3.18) until the minute has passed (TestClock); a source address that opened the cap's
// connections in its window gets 429 at $connect. Each refusal is counted, per tenant.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { partitionItems } from '../../lib/store/dynamo.ts';
import { utcDay } from '../../lib/metrics/metrics.ts';
import { RawClient, type TestClient, type TestServer, byName, connectClient, startTestServer, until, xml } from '../support/harness.ts';

const STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas';
const STREAMS = 'urn:ietf:params:xml:ns:xmpp-streams';

/** Opens a stream on `raw`, logs in with PLAIN and asks to bind: returns the answer (an iq or a stream error). */
async function bindAnswer(raw: RawClient, username: string, domain: string): Promise<string> {
  const open = `<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="${domain}" version="1.0"/>`;
  raw.send(open);
  await raw.next((el) => el.name === 'stream:features');
  raw.send(`<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="PLAIN">${Buffer.from(`\0${username}\0secret`).toString('base64')}</auth>`);
  await raw.next((el) => el.name === 'success');
  raw.send(open);
  await raw.next((el) => el.name === 'stream:features');
  raw.send(`<iq xmlns="jabber:client" type="set" id="bind"><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"><resource>r</resource></bind></iq>`);
  return (await raw.next((el) => (el.name === 'iq' && el.attrs.id === 'bind') || el.name === 'stream:error')).toString();
}

describe('per-tenant quotas', () => {
  let s: TestServer;
  const clients: TestClient[] = [];
  before(async () => {
    s = await startTestServer({ seedDomains: ['localhost', 'conn.example', 'msg.example', 'arch.example', 'old.example', 'full.example'] });
    await s.server.tenants.put({ domain: 'arch.example', enabled: true, quotas: { archiveBytes: 1 } });
    // Archives kept 2 days, 1000 bytes at most: full.example archived that much yesterday; old.example 5 days
    // ago, which has expired from its archives.
    for (const domain of ['old.example', 'full.example']) await s.server.tenants.put({ domain, enabled: true, quotas: { archiveBytes: 1000 }, archive: { days: 2 } });
    await s.server.usage.add('old.example', utcDay(s.clock.now() - 5 * 86_400_000), { archiveBytes: 5000 });
    await s.server.usage.add('full.example', utcDay(s.clock.now() - 86_400_000), { archiveBytes: 1000 });
    for (const domain of ['arch.example', 'old.example', 'full.example']) for (const u of ['alice', 'bob']) await s.addUser(`${u}@${domain}`);
    await s.server.tenants.put({ domain: 'conn.example', enabled: true, quotas: { connections: 2 } });
    await s.server.tenants.put({ domain: 'msg.example', enabled: true, quotas: { messagesPerMinute: 3 } });
    for (const u of ['alice', 'bob', 'carol']) await s.addUser(`${u}@conn.example`);
    for (const u of ['alice', 'bob']) await s.addUser(`${u}@msg.example`);
    await s.addUser('dave@localhost');
  });
  after(async () => {
    for (const c of clients) await c.stop();
    await s.stop();
  });

  const live = async (domain: string) => (await s.server.db.send(new GetCommand({ TableName: s.table, Key: { pk: `usage#${domain}`, sk: 'live' } }))).Item?.sessions;

  it('refuses the session over quotas.connections with policy-violation at binding, and frees a place when one ends', async () => {
    const alice = await connectClient(s.url, { username: 'alice', domain: 'conn.example' });
    const bob = await connectClient(s.url, { username: 'bob', domain: 'conn.example' });
    clients.push(alice, bob);
    assert.equal(await live('conn.example'), 2);

    const raw = await RawClient.connect(s.url);
    const answer = await bindAnswer(raw, 'carol', 'conn.example');
    assert.match(answer, /^<stream:error/);
    assert.match(answer, new RegExp(`<policy-violation xmlns="${STREAMS}"/>`));
    assert.match(answer, /reached its quota of 2 connections/);
    assert.equal((await raw.closed).code, 1000);
    assert.equal(s.metrics.total('ConnectionQuotaRefusals', 'conn.example'), 1);
    assert.equal(await live('conn.example'), 2, 'a refused session takes no place');

    // Another tenant is not limited by this one's quota.
    clients.push(await connectClient(s.url, { username: 'dave' }));

    await alice.stop();
    await until('the ended session to give its place back', async () => (await live('conn.example')) === 1);
    const carol = await connectClient(s.url, { username: 'carol', domain: 'conn.example' });
    clients.push(carol);
    assert.equal(await live('conn.example'), 2);
  });

  it('costs one write at binding and one at the end, only for a tenant with quotas.connections', async () => {
    await s.addUser('erin@conn.example');
    await s.addUser('erin@localhost');
    const bob = clients.find((c) => c.jid.startsWith('bob@conn.example'))!;
    await bob.stop();
    await until('bob to leave', async () => (await live('conn.example')) === 1);
    let erin!: TestClient;
    const quota = await s.cost(async () => (erin = await connectClient(s.url, { username: 'erin', domain: 'conn.example' })));
    let plainErin!: TestClient;
    const plain = await s.cost(async () => (plainErin = await connectClient(s.url, { username: 'erin' })));
    assert.equal(quota.reads, plain.reads);
    assert.equal(quota.writes, plain.writes + 1, JSON.stringify({ quota: quota.calls, plain: plain.calls }));
    const endQuota = await s.cost(() => erin.stop());
    const endPlain = await s.cost(() => plainErin.stop());
    assert.equal(endQuota.writes, endPlain.writes + 1, JSON.stringify({ endQuota: endQuota.calls, endPlain: endPlain.calls }));
  });

  it('answers the message over quotas.messagesPerMinute with resource-constraint (wait), and allows more after the minute', async () => {
    const alice = await connectClient(s.url, { username: 'alice', domain: 'msg.example' });
    const bob = await connectClient(s.url, { username: 'bob', domain: 'msg.example' });
    clients.push(alice, bob);
    s.clock.freeze();
    try {
      for (let i = 1; i <= 4; i++) await alice.send(xml('message', { to: bob.jid, type: 'chat', id: `m${i}` }, xml('body', {}, `hello ${i}`)));
      const error = await alice.waitFor(byName('message', { type: 'error', id: 'm4' }));
      const err = error.getChild('error')!;
      assert.equal(err.attrs.type, 'wait');
      assert.ok(err.getChild('resource-constraint', STANZAS));
      assert.match(err.getChildText('text', STANZAS) ?? '', /more than 3 messages per minute/);
      for (let i = 1; i <= 3; i++) await bob.waitFor(byName('message', { id: `m${i}` }));
      await bob.expectNothing(s, byName('message', { id: 'm4' }), alice);
      assert.equal(s.metrics.total('MessageQuotaRefusals', 'msg.example'), 1);
      // Other stanzas are not messages: a ping goes through.
      await alice.roundTrip();

      s.clock.advance(60_000);
      await alice.send(xml('message', { to: bob.jid, type: 'chat', id: 'm5' }, xml('body', {}, 'a minute later')));
      await bob.waitFor(byName('message', { id: 'm5' }));
      assert.equal(s.metrics.total('MessageQuotaRefusals', 'msg.example'), 1);
    } finally {
      s.clock.thaw();
    }
  });

  it('stops archiving once quotas.archiveBytes are used: delivered without a stanza id, counted', async () => {
    const alice = await connectClient(s.url, { username: 'alice', domain: 'arch.example' });
    const bob = await connectClient(s.url, { username: 'bob', domain: 'arch.example' });
    clients.push(alice, bob);
    await alice.send(xml('message', { to: bob.jid, type: 'chat', id: 'a1' }, xml('body', {}, 'archived: the message that crosses the quota')));
    const first = await bob.waitFor(byName('message', { id: 'a1' }));
    assert.ok(first.getChild('stanza-id', 'urn:xmpp:sid:0'), first.toString());
    await alice.send(xml('message', { to: bob.jid, type: 'chat', id: 'a2' }, xml('body', {}, 'over the quota')));
    const second = await bob.waitFor(byName('message', { id: 'a2' }));
    // XEP-0359 §4: a stanza id names an archived item, so none is added for an archive that does not keep it.
    assert.equal(second.getChild('stanza-id', 'urn:xmpp:sid:0'), undefined, second.toString());
    // The archive is written after delivery, in the sender's frame: her next round trip follows it.
    await alice.roundTrip();
    for (const owner of ['alice@arch.example', 'bob@arch.example']) {
      assert.equal((await partitionItems(s.server.db, s.table, `mam#${owner}`)).length, 1, owner);
    }
    assert.equal(s.metrics.total('ArchiveQuotaRefusals', 'arch.example'), 1);
  });

  it('counts the bytes archived within the retention (archive.days) from the usage records of earlier days', async () => {
    for (const [domain, archived] of [['old.example', true], ['full.example', false]] as const) {
      const alice = await connectClient(s.url, { username: 'alice', domain });
      const bob = await connectClient(s.url, { username: 'bob', domain });
      clients.push(alice, bob);
      await alice.send(xml('message', { to: bob.jid, type: 'chat', id: `q-${domain}` }, xml('body', {}, 'hello')));
      const got = await bob.waitFor(byName('message', { id: `q-${domain}` }));
      assert.equal(!!got.getChild('stanza-id', 'urn:xmpp:sid:0'), archived, `${domain}: ${got.toString()}`);
      await alice.roundTrip();
      assert.equal((await partitionItems(s.server.db, s.table, `mam#bob@${domain}`)).length, archived ? 1 : 0, domain);
      assert.equal(s.metrics.total('ArchiveQuotaRefusals', domain), archived ? 0 : 1);
    }
  });
});

describe('the $connect cap per source address', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer({ limits: { connectsPerAddress: 3, connectWindowMs: 60_000 } });
  });
  after(() => s.stop());

  /** The HTTP status of a WebSocket upgrade from `localAddress`: 101 when accepted. */
  const upgrade = (localAddress: string) =>
    new Promise<{ status: number; ws: WebSocket }>((resolve, reject) => {
      const ws = new WebSocket(s.url, 'xmpp', { localAddress });
      ws.once('open', () => resolve({ status: 101, ws }));
      ws.once('unexpected-response', (_req, res) => resolve({ status: res.statusCode ?? 0, ws }));
      ws.once('error', reject);
    });

  it('refuses the connection over the cap with 429 until the window has passed; other addresses are not affected', async () => {
    s.clock.freeze();
    const open: WebSocket[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        const r = await upgrade('127.0.0.7');
        assert.equal(r.status, 101);
        open.push(r.ws);
      }
      const cost = await s.cost(async () => assert.equal((await upgrade('127.0.0.7')).status, 429));
      assert.deepEqual(cost.calls, { 'dynamodb:UpdateItemCommand': 1 }, 'a refusal costs its one conditional write');
      assert.equal(s.metrics.total('ConnectRefusals', '-'), 1);
      const other = await upgrade('127.0.0.8');
      assert.equal(other.status, 101);
      open.push(other.ws);

      s.clock.advance(60_000);
      const later = await upgrade('127.0.0.7');
      assert.equal(later.status, 101);
      open.push(later.ws);
    } finally {
      s.clock.thaw();
      for (const ws of open) ws.close();
    }
  });
});
