// The per-tenant counters (namespace XmppEdge, dimension Tenant) on each region's dashboard and alarms,
// on the synthesized template: every counter graphed by a SEARCH over the Tenant dimension (a tenant
// added later shows up without a deploy), and alarms on internal errors, quota refusals and event push
// failures that watch the deployment-wide series the functions write beside the per-tenant ones
// (alarms cannot watch a SEARCH). Offline: no account, no bundling.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { buildApp } from '../../lib/infra/app.ts';
import { EVENT_PUSH_FAILURES_THRESHOLD, QUOTA_REFUSALS_THRESHOLD } from '../../lib/infra/operator-alarms.ts';
import type { RegionStack } from '../../lib/infra/region-stack.ts';
import { METRICS, TOTALED_METRICS, emfRecord, type MetricName } from '../../lib/metrics/metrics.ts';

const CDK_CONTEXT = JSON.parse(readFileSync(new URL('../../cdk.json', import.meta.url), 'utf8')).context as Record<string, unknown>;
type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any -- CloudFormation JSON

/** The dashboard body as JSON, CloudFormation tokens (alarm ARNs, names) replaced by a placeholder. */
function dashboardOf(t: Template): { widgets: Json[] } {
  const [dash] = Object.values(t.findResources('AWS::CloudWatch::Dashboard'));
  const body = dash.Properties.DashboardBody;
  const text = typeof body === 'string' ? body : (body['Fn::Join'][1] as unknown[]).map((p) => (typeof p === 'string' ? p : 'TOKEN')).join('');
  return JSON.parse(text);
}

describe('per-tenant metrics: dashboard and alarms', () => {
  let eu: RegionStack;
  let t: Template;
  let outdir: string;
  before(() => {
    outdir = mkdtempSync(join(tmpdir(), 'xmpp-edge-tenants-'));
    const app = new App({ context: { ...CDK_CONTEXT, 'aws:cdk:bundling-stacks': [] }, outdir });
    eu = buildApp(app, undefined).regions.get('eu-west-1')!;
    t = Template.fromStack(eu);
  });
  after(() => rmSync(outdir, { recursive: true, force: true }));

  const alarm = (id: string): Json => {
    const found = eu.alarms.alarms.find((a) => a.node.id === id);
    assert.ok(found, id);
    return t.findResources('AWS::CloudWatch::Alarm')[eu.getLogicalId(found.node.defaultChild as never)].Properties;
  };

  it('graphs every counter per tenant with a SEARCH over the Tenant dimension, busiest first', () => {
    const { widgets } = dashboardOf(t);
    const titles = widgets.filter((w) => w.type === 'text').map((w) => w.properties.markdown);
    const tenants = titles.indexOf('## Tenants');
    assert.ok(tenants > 0 && tenants < titles.indexOf('## Alarms'), JSON.stringify(titles));
    const expressions = widgets.filter((w) => w.type === 'metric').flatMap((w) => w.properties.metrics).map((m: Json[]) => m.find((x) => typeof x === 'object' && x.expression)?.expression).filter(Boolean);
    for (const name of Object.keys(METRICS)) {
      assert.ok(expressions.includes(`SORT(SEARCH('{XmppEdge,Tenant} MetricName="${name}"', 'Sum', 300), SUM, DESC, 10)`), name);
    }
    // No tenant is named in the template: the dashboard needs no deploy when tenants come and go.
    assert.ok(!JSON.stringify(widgets).includes('"Tenant",'));
  });

  it('alarms on internal errors and event push failures over all tenants, from the series without dimensions', () => {
    for (const [id, name, threshold] of [['TenantErrors', 'Errors', 1], ['EventPushFailures', 'EventPushFailures', EVENT_PUSH_FAILURES_THRESHOLD]] as const) {
      const a = alarm(id);
      assert.deepEqual(
        { ns: a.Namespace, name: a.MetricName, dims: a.Dimensions, stat: a.Statistic, period: a.Period, threshold: a.Threshold, op: a.ComparisonOperator, missing: a.TreatMissingData },
        { ns: 'XmppEdge', name, dims: undefined, stat: 'Sum', period: 300, threshold, op: 'GreaterThanOrEqualToThreshold', missing: 'notBreaching' },
        id,
      );
      assert.equal(a.AlarmActions.length, 1, id);
    }
  });

  it('alarms on quota refusals of every kind, summed over all tenants', () => {
    const a = alarm('QuotaRefusals');
    assert.equal(a.Threshold, QUOTA_REFUSALS_THRESHOLD);
    const expression = a.Metrics.find((m: Json) => m.Expression);
    assert.equal(expression.Expression, 'connections + messages + archive');
    assert.equal(expression.ReturnData, true);
    const stats = a.Metrics.filter((m: Json) => m.MetricStat).map((m: Json) => [m.Id, m.MetricStat.Metric.Namespace, m.MetricStat.Metric.MetricName, m.MetricStat.Metric.Dimensions, m.MetricStat.Stat, m.MetricStat.Period]);
    assert.deepEqual(stats.sort(), [
      ['archive', 'XmppEdge', 'ArchiveQuotaRefusals', undefined, 'Sum', 300],
      ['connections', 'XmppEdge', 'ConnectionQuotaRefusals', undefined, 'Sum', 300],
      ['messages', 'XmppEdge', 'MessageQuotaRefusals', undefined, 'Sum', 300],
    ]);
  });

  it('every series an alarm watches is one the functions write without dimensions (EMF)', () => {
    const watched = new Set<string>();
    for (const a of Object.values(t.findResources('AWS::CloudWatch::Alarm')).map((r) => r.Properties)) {
      if (a.Namespace === 'XmppEdge' && !a.Dimensions) watched.add(a.MetricName);
      for (const m of a.Metrics ?? []) if (m.MetricStat?.Metric.Namespace === 'XmppEdge' && !m.MetricStat.Metric.Dimensions) watched.add(m.MetricStat.Metric.MetricName);
    }
    // The access-log throttling counts are metric filters of their own, not EMF.
    watched.delete('WebSocketThrottled');
    watched.delete('HttpThrottled');
    assert.deepEqual([...watched].sort(), [...TOTALED_METRICS].sort());
    const record = emfRecord('a.example', new Map<MetricName, number>(TOTALED_METRICS.map((n) => [n, 1])), 0) as Json;
    assert.deepEqual(record._aws.CloudWatchMetrics[1].Dimensions, [[]]);
    assert.deepEqual(record._aws.CloudWatchMetrics[1].Metrics.map((m: Json) => m.Name).sort(), [...TOTALED_METRICS].sort());
  });
});
