// Usage records and per-tenant metrics after a scripted session (README "Metrics and usage"): the
// counters the local server serves at /api/metrics (Prometheus text, parsed here) and the daily usage
// record the admin API and the CLI report hold exactly what the session did, for its tenant only; the
// usage is written by the flush, not by the stanzas (their costs are unchanged).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { runCli } from '../../bin/cli.ts';
import { utcDay } from '../../lib/metrics/metrics.ts';
import { partitionItems } from '../../lib/store/dynamo.ts';
import { RawClient, type TestServer, byName, connectClient, startTestServer, until, xml } from '../support/harness.ts';

const TENANT = 'usage.example';
const DAY_MS = 86_400_000;

/** `name{tenant="…"} value` lines of a Prometheus text exposition, by metric name and tenant. */
function parsePrometheus(text: string): { types: Map<string, string>; values: Map<string, Map<string, number>> } {
  const types = new Map<string, string>();
  const values = new Map<string, Map<string, number>>();
  for (const line of text.split('\n')) {
    if (!line) continue;
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) types.set(type[1], type[2]);
    if (line.startsWith('#')) continue;
    const m = /^([a-z_]+)\{tenant="((?:[^"\\]|\\.)*)"\} (\d+(?:\.\d+)?)$/.exec(line);
    assert.ok(m, `not a sample line: ${line}`);
    if (!values.has(m[1])) values.set(m[1], new Map());
    values.get(m[1])!.set(m[2], Number(m[3]));
  }
  return { types, values };
}

describe('usage records and per-tenant metrics', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer({ seedDomains: ['localhost', TENANT], usageFlushMs: 3_600_000 });
    await s.addUser(`alice@${TENANT}`);
    await s.addUser(`bob@${TENANT}`);
    await s.addUser('carl@localhost');
  });
  after(() => s.stop());

  const api = (path: string, token: string | null = s.adminToken) => fetch(`${s.adminUrl}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });

  it('counts a scripted session exactly: usage record through the admin API and the CLI, counters at /api/metrics', async () => {
    // Another tenant's traffic, which must not show in this tenant's numbers.
    const carl = await connectClient(s.url, { username: 'carl' });
    await carl.roundTrip();

    const start = s.clock.now();
    const alice = await connectClient(s.url, { username: 'alice', domain: TENANT });
    const bob = await connectClient(s.url, { username: 'bob', domain: TENANT });
    // 3 messages and 2 pings: 5 stanzas from bound sessions.
    const messageCost = await s.cost(async () => {
      await alice.send(xml('message', { to: bob.jid, type: 'chat', id: 'u1' }, xml('body', {}, 'one')));
      await bob.waitFor(byName('message', { id: 'u1' }));
    });
    // As in README "Cost per operation" (delivery, and the archive's read and write): nothing added for metering.
    assert.deepEqual({ reads: messageCost.reads, writes: messageCost.writes, posts: messageCost.posts }, { reads: 2, writes: 1, posts: 1 }, JSON.stringify(messageCost.calls));
    // Every DynamoDB call the message made is counted for its tenant, by the SDK middleware.
    const callsBefore = s.metrics.total('DynamoDBCalls', TENANT);
    const second = await s.cost(async () => {
      await alice.send(xml('message', { to: bob.jid, type: 'chat', id: 'u2' }, xml('body', {}, 'two')));
      await bob.waitFor(byName('message', { id: 'u2' }));
    });
    const dynamoCalls = Object.entries(second.calls).filter(([k]) => k.startsWith('dynamodb:')).reduce((n, [, v]) => n + v, 0);
    assert.equal(s.metrics.total('DynamoDBCalls', TENANT) - callsBefore, dynamoCalls);
    assert.equal(dynamoCalls, 3);
    await bob.send(xml('message', { to: alice.jid, type: 'chat', id: 'u3' }, xml('body', {}, 'three')));
    await alice.waitFor(byName('message', { id: 'u3' }));
    await alice.roundTrip();
    await bob.roundTrip();
    // Each connection lasts 3 minutes (and the few real milliseconds of the test).
    s.clock.advance(3 * 60_000);
    await alice.stop();
    await bob.stop();
    await carl.stop();
    await s.gateway.idle();
    const elapsedMinutes = (s.clock.now() - start) / 60_000;

    assert.ok((await s.flushUsage()) >= 2, 'one write per tenant and day');
    const today = utcDay(s.clock.now());
    // A range around today, so that a session across midnight still adds up.
    const from = utcDay(s.clock.now() - DAY_MS);
    const to = utcDay(s.clock.now() + DAY_MS);
    const res = await api(`/tenants/${TENANT}/usage?from=${from}&to=${to}`);
    assert.equal(res.status, 200);
    const report = (await res.json()) as { domain: string; days: { day: string }[]; total: Record<string, number> };
    assert.equal(report.domain, TENANT);
    assert.ok(report.days.some((d) => d.day === today));
    assert.equal(report.total.stanzas, 5);
    assert.equal(report.total.messages, 3);
    // The archive (XEP-0313, on by default) kept each message twice: the bytes of those six items.
    let archived = 0;
    for (const owner of [`alice@${TENANT}`, `bob@${TENANT}`]) {
      const items = await partitionItems(s.server.db, s.table, `mam#${owner}`);
      assert.equal(items.length, 3);
      archived += items.reduce((n, i) => n + Buffer.byteLength(String(i.xml), 'utf8'), 0);
    }
    assert.equal(report.total.archiveBytes, archived);
    assert.ok(report.total.connectionMinutes >= 6 && report.total.connectionMinutes <= 2 * elapsedMinutes + 0.01, `connectionMinutes ${report.total.connectionMinutes}`);

    // The CLI reads the same record.
    let out = '';
    let errOut = '';
    const code = await runCli(['tenant', 'usage', TENANT, '--from', from, '--to', to, '--endpoint', s.dynamoEndpoint, '--table', s.table], {
      stdout: { write: (t: string) => (out += t) },
      stderr: { write: (t: string) => (errOut += t) },
      env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    });
    assert.equal(code, 0, errOut);
    const lines = out.trim().split('\n').map((l) => l.split('\t'));
    assert.deepEqual(lines[0], ['day', 'connectionMinutes', 'stanzas', 'messages', 'archiveBytes']);
    const total = lines.find((l) => l[0] === 'total')!;
    assert.deepEqual(total.slice(2), ['5', '3', String(archived)]);
    assert.equal(Number(total[1]), report.total.connectionMinutes);

    // The counters, in the Prometheus text format, behind the admin token.
    assert.equal((await api('/metrics', null)).status, 401);
    const metrics = await api('/metrics');
    assert.equal(metrics.status, 200);
    assert.match(metrics.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const { types, values } = parsePrometheus(await metrics.text());
    const v = (name: string, tenant = TENANT) => values.get(`xmpp_edge_${name}_total`)?.get(tenant);
    assert.equal(types.get('xmpp_edge_stanzas_in_total'), 'counter');
    assert.equal(v('connections'), 2);
    assert.equal(v('logins'), 2);
    assert.equal(v('login_failures'), undefined);
    assert.equal(v('stanzas_in'), 5);
    // 3 messages delivered and 2 ping results, plus the bind results.
    assert.equal(v('stanzas_out'), 5 + 2);
    assert.ok(v('posts')! > v('stanzas_out')!, 'stream headers, features and SASL are posts too');
    assert.ok(v('dynamodb_calls')! > 0);
    assert.equal(v('stanzas_in', 'localhost'), 1);
    assert.equal(v('connections', 'localhost'), 1);
  });

  it('refuses a bad range with a clear 400, a missing tenant with 404', async () => {
    const bad = await api(`/tenants/${TENANT}/usage?from=2026-13-01`);
    assert.equal(bad.status, 400);
    const body = (await bad.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'invalid-range');
    assert.match(body.error.message, /from: 2026-13-01 is not a calendar day/);
    const reversed = (await (await api(`/tenants/${TENANT}/usage?from=2026-03-02&to=2026-03-01`)).json()) as { error: { message: string } };
    assert.match(reversed.error.message, /is after to/);
    assert.equal((await api(`/tenants/${TENANT}/usage?from=yesterday`)).status, 400);
    assert.equal((await api('/tenants/nobody.example/usage')).status, 404);
  });

  it('a connection whose socket drops adds its minutes once, and what ending it costs is counted to its tenant', async () => {
    await s.server.tenants.put({ domain: 'drop.example', enabled: true });
    await s.addUser('dora@drop.example');
    // The gateway stamps connectedAt with the real clock, the server ends it by its own (moved by earlier tests).
    const skewMinutes = (s.clock.now() - Date.now()) / 60_000;
    const before = new Set(s.gateway.connectionIds());
    const raw = await RawClient.connect(s.url);
    await raw.login('dora', 'secret', 'r', 'drop.example');
    const id = s.gateway.connectionIds().find((c) => !before.has(c))!;
    s.clock.advance(5 * 60_000);
    const calls = s.metrics.total('DynamoDBCalls', 'drop.example');
    raw.ws.terminate();
    await raw.closed;
    await s.gateway.idle();
    await until('the session to end', async () => (await s.server.sessions.list('dora@drop.example')).length === 0);
    assert.ok(s.metrics.total('DynamoDBCalls', 'drop.example') > calls, 'the $disconnect counted for the tenant');
    // A second $disconnect (AWS may deliver one after the sweeper ended it) adds nothing.
    await s.server.disconnect(id);
    await s.flushUsage();
    const day = utcDay(s.clock.now());
    const res = await api(`/tenants/drop.example/usage?from=${utcDay(s.clock.now() - DAY_MS)}&to=${day}`);
    const minutes = ((await res.json()) as { total: { connectionMinutes: number } }).total.connectionMinutes;
    assert.ok(minutes >= 5 + skewMinutes - 0.01 && minutes < 5.5 + skewMinutes, `connectionMinutes ${minutes}, clock skew ${skewMinutes} minutes`);
  });

  it('tenant add takes the quotas, checked against the tenant schema; tenant usage refuses a bad day', async () => {
    const run = async (...args: string[]) => {
      let out = '';
      let err = '';
      const code = await runCli([...args, '--endpoint', s.dynamoEndpoint, '--table', s.table], {
        stdout: { write: (t: string) => (out += t) },
        stderr: { write: (t: string) => (err += t) },
        env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
      });
      return { code, out, err };
    };
    const bad = await run('tenant', 'add', 'quota.example', '--quota-connections', '0', '--quota-messages-per-minute', 'lots');
    assert.equal(bad.code, 1);
    assert.match(bad.err, /quotas\.connections \(--quota-connections\): .*1/);
    assert.match(bad.err, /quotas\.messagesPerMinute \(--quota-messages-per-minute\): expected integer/);
    const item = async () => (await s.server.db.send(new GetCommand({ TableName: s.table, Key: { pk: 'tenant#quota.example', sk: 'tenant' } }))).Item;
    assert.equal(await item(), undefined);
    const good = await run('tenant', 'add', 'quota.example', '--quota-connections', '5', '--quota-messages-per-minute', '30', '--quota-archive-bytes', '1000000');
    assert.equal(good.code, 0, good.err);
    assert.deepEqual((await item())?.quotas, { connections: 5, messagesPerMinute: 30, archiveBytes: 1_000_000 });
    const badDay = await run('tenant', 'usage', 'quota.example', '--from', '2026-02-30');
    assert.equal(badDay.code, 1);
    assert.match(badDay.err, /--from: 2026-02-30 is not a calendar day/);
  });

  it('counts failed logins per tenant', async () => {
    await assert.rejects(connectClient(s.url, { username: 'alice', domain: TENANT, password: 'wrong' }));
    assert.equal(s.metrics.total('LoginFailures', TENANT), 1);
  });
});
