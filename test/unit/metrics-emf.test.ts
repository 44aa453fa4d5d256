// The per-tenant metrics of a Lambda invocation as CloudWatch embedded metric format (EMF) lines,
// parsed: one record per tenant, the tenant as the one dimension, every metric a number at the top
// level with unit Count, counts since the previous invocation only; the Prometheus text; usage by UTC
// day; and the key the $connect cap counts an address under.
// https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLambdaRuntime, flushingAfter } from '../../lib/runtime/lambda.ts';
import { METRICS, Metrics, TOTALED_METRICS, utcDay } from '../../lib/metrics/metrics.ts';
import { connectCapKey } from '../../lib/store/usage.ts';

interface EmfRecord {
  _aws: { Timestamp: number; CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string; Unit: string }[] }[] };
  [field: string]: unknown;
}

/** Checks a record against the EMF specification's rules and returns its metrics by name. */
function parseEmf(line: string): { tenant: string; values: Record<string, number> } {
  const record = JSON.parse(line) as EmfRecord;
  assert.equal(typeof record._aws.Timestamp, 'number');
  const [directive, ...more] = record._aws.CloudWatchMetrics;
  // A second directive, without dimensions, only for the counters alarmed on deployment-wide.
  assert.ok(more.length <= 1);
  for (const total of more) {
    assert.equal(total.Namespace, 'XmppEdge');
    assert.deepEqual(total.Dimensions, [[]]);
    const names = total.Metrics.map((m) => m.Name);
    assert.deepEqual(names, directive.Metrics.map((m) => m.Name).filter((n) => TOTALED_METRICS.includes(n as never)));
    assert.ok(names.length > 0);
  }
  assert.equal(directive.Namespace, 'XmppEdge');
  assert.deepEqual(directive.Dimensions, [['Tenant']]);
  // Every dimension is a top-level string; every metric a top-level number (at most 100 per directive).
  assert.equal(typeof record.Tenant, 'string');
  assert.ok(directive.Metrics.length <= 100);
  const values: Record<string, number> = {};
  for (const m of directive.Metrics) {
    assert.equal(m.Unit, 'Count');
    assert.ok(m.Name in METRICS, m.Name);
    assert.equal(typeof record[m.Name], 'number', m.Name);
    values[m.Name] = record[m.Name] as number;
  }
  return { tenant: record.Tenant as string, values };
}

test('an invocation writes one EMF line per tenant it counted for, with the counts of that invocation only', async () => {
  const lines: string[] = [];
  // No DynamoDB is reached: nothing counted for usage, so the flush writes no usage record.
  const runtime = createLambdaRuntime({ TABLE_NAME: 't', LOG_LEVEL: 'silent', AWS_REGION: 'eu-west-1' }, (r) => lines.push(JSON.stringify(r)));
  const m = runtime.server.metrics;
  const invoke = flushingAfter(runtime.flush, async (tenants: Record<string, number>) => {
    for (const [tenant, n] of Object.entries(tenants)) {
      // Counts inside a frame's scope go to its tenant without naming it.
      await m.run({ tenant }, async () => {
        m.count('StanzasIn', n);
        m.count('Posts', 2 * n);
      });
    }
    m.count('ConnectRefusals');
  });

  await invoke({ 'a.example': 3, 'b.example': 1 });
  const first = lines.splice(0).map(parseEmf);
  assert.deepEqual(
    first.sort((x, y) => x.tenant.localeCompare(y.tenant)),
    [
      { tenant: '-', values: { ConnectRefusals: 1 } },
      { tenant: 'a.example', values: { StanzasIn: 3, Posts: 6 } },
      { tenant: 'b.example', values: { StanzasIn: 1, Posts: 2 } },
    ],
  );

  await invoke({ 'a.example': 1 });
  const second = lines.splice(0).map(parseEmf).sort((x, y) => x.tenant.localeCompare(y.tenant));
  assert.deepEqual(second, [
    { tenant: '-', values: { ConnectRefusals: 1 } },
    { tenant: 'a.example', values: { StanzasIn: 1, Posts: 2 } },
  ]);

  // A failed invocation still writes what it counted.
  const failing = flushingAfter(runtime.flush, async () => {
    m.count('Errors', 1, 'c.example');
    throw new Error('boom');
  });
  await assert.rejects(failing(), /boom/);
  assert.deepEqual(lines.map(parseEmf), [{ tenant: 'c.example', values: { Errors: 1 } }]);
  // Errors are also a deployment-wide series (no dimension), which the Errors alarm watches.
  const errorsLine = JSON.parse(lines[0]) as EmfRecord;
  assert.deepEqual(errorsLine._aws.CloudWatchMetrics[1], { Namespace: 'XmppEdge', Dimensions: [[]], Metrics: [{ Name: 'Errors', Unit: 'Count' }] });
});

test('the Lambda runtime refuses a bad connect cap or flush interval with the variable named', () => {
  assert.throws(() => createLambdaRuntime({ TABLE_NAME: 't', CONNECTS_PER_ADDRESS: 'many' }), /CONNECTS_PER_ADDRESS "many" is not a whole number/);
  assert.throws(() => createLambdaRuntime({ TABLE_NAME: 't', CONNECT_WINDOW_SECONDS: '0' }), /CONNECT_WINDOW_SECONDS must be at least 1/);
  assert.throws(() => createLambdaRuntime({ TABLE_NAME: 't', USAGE_FLUSH_SECONDS: '-1' }), /USAGE_FLUSH_SECONDS "-1"/);
  assert.equal(createLambdaRuntime({ TABLE_NAME: 't', LOG_LEVEL: 'silent' }).server.limits.connectsPerAddress, 60);
  assert.equal(createLambdaRuntime({ TABLE_NAME: 't', LOG_LEVEL: 'silent', CONNECTS_PER_ADDRESS: '0' }).server.limits.connectsPerAddress, 0);
});

test('Prometheus text: HELP and TYPE per counter, one sample per tenant, label values escaped', () => {
  const m = new Metrics();
  m.count('Logins', 2, 'a.example');
  m.count('Logins', 1, 'we"ird\\');
  m.count('DynamoDBCalls', 5, 'a.example');
  const text = m.prometheus();
  assert.match(text, /^# HELP xmpp_edge_logins_total successful SASL authentications\n# TYPE xmpp_edge_logins_total counter\nxmpp_edge_logins_total\{tenant="a\.example"\} 2\nxmpp_edge_logins_total\{tenant="we\\"ird\\\\"\} 1$/m);
  assert.match(text, /^xmpp_edge_dynamodb_calls_total\{tenant="a\.example"\} 5$/m);
  assert.ok(text.endsWith('\n'));
  // EMF is cleared per invocation; Prometheus counters are not.
  m.takeEmf();
  assert.match(m.prometheus(), /xmpp_edge_logins_total\{tenant="a\.example"\} 2/);
});

test('usage is kept per tenant and UTC day, handed back when a write fails, and known after a flush', () => {
  let now = Date.parse('2026-03-01T23:59:00Z');
  const m = new Metrics({ now: () => now });
  m.use('a.example', 'stanzas', 2);
  now += 120_000;
  m.use('a.example', 'stanzas', 1);
  const taken = m.takeUsage();
  assert.deepEqual(taken, [
    { tenant: 'a.example', day: '2026-03-01', counts: { stanzas: 2 } },
    { tenant: 'a.example', day: '2026-03-02', counts: { stanzas: 1 } },
  ]);
  assert.deepEqual(m.takeUsage(), []);
  m.giveBack(taken);
  assert.equal(m.takeUsage().length, 2);
  m.wrote('a.example', utcDay(now), { archiveBytes: 100 });
  m.use('a.example', 'archiveBytes', 20);
  assert.equal(m.usageToday('a.example', 'archiveBytes'), 120);
});

test('the connect cap counts IPv4 addresses as they are and IPv6 addresses by their /64', () => {
  assert.equal(connectCapKey('203.0.113.7'), '203.0.113.7');
  assert.equal(connectCapKey('2001:db8:0:1:aaaa::1'), '2001:db8:0:1::/64');
  assert.equal(connectCapKey('2001:DB8:0:1:ffff:1:2:3'), '2001:db8:0:1::/64');
  assert.equal(connectCapKey('2001:db8::1'), '2001:db8:0:0::/64');
  assert.equal(connectCapKey('::1'), '0:0:0:0::/64');
  assert.equal(connectCapKey('fe80::1%eth0'), 'fe80:0:0:0::/64');
  assert.equal(connectCapKey('2001:0db8:0000:0001::'), '2001:db8:0:1::/64');
});
