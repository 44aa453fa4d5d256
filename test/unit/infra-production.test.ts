// What issue 16 asks of the deployed stacks, on the synthesized templates: throttling that bounds what a
// flood costs (stage defaults and route throttles, from context), JSON access logs with a retention,
// where failed work goes (destinations, DLQs, redrive), the Lambda runtime, explicit memory and
// timeouts, SSL-only topic and queues, execution roles without AWS managed policies, tracing behind a
// flag, and the dashboard. Offline: no account, no bundling.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { Runtime } from 'aws-cdk-lib/aws-lambda';
import { buildApp, type XmppEdgeStacks } from '../../lib/infra/app.ts';
import { DEFAULT_THROTTLING, parseThrottle, readConfig } from '../../lib/infra/config.ts';
import { HTTP_ACCESS_LOG_FIELDS, routeThrottles, WEBSOCKET_ACCESS_LOG_FIELDS } from '../../lib/infra/api-stages.ts';
import { THROTTLED_METRICS } from '../../lib/infra/operator-alarms.ts';
import { MAX_RECEIVE_COUNT } from '../../lib/infra/ordered-ingest.ts';
import type { RegionStack } from '../../lib/infra/region-stack.ts';
import { LAMBDA_RUNTIME, XmppFunction } from '../../lib/infra/xmpp-function.ts';

const CDK_CONTEXT = JSON.parse(readFileSync(new URL('../../cdk.json', import.meta.url), 'utf8')).context as Record<string, unknown>;
const NO_BUNDLING = { 'aws:cdk:bundling-stacks': [] };
type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any -- CloudFormation JSON

const outdirs: string[] = [];
function synth(context: Record<string, unknown> = {}): { stacks: XmppEdgeStacks; eu: RegionStack; t: Template } {
  const outdir = mkdtempSync(join(tmpdir(), 'xmpp-edge-prod-'));
  outdirs.push(outdir);
  const app = new App({ context: { ...CDK_CONTEXT, ...NO_BUNDLING, ...context }, outdir });
  const stacks = buildApp(app, undefined);
  const eu = stacks.regions.get('eu-west-1')!;
  return { stacks, eu, t: Template.fromStack(eu) };
}
after(() => {
  for (const d of outdirs) rmSync(d, { recursive: true, force: true });
});

const idOf = (stack: RegionStack, c: { node: { defaultChild?: unknown } }) => stack.getLogicalId(c.node.defaultChild as never);
const ref = (stack: RegionStack, c: { node: { defaultChild?: unknown } }) => ({ 'Fn::GetAtt': [idOf(stack, c), 'Arn'] });

describe('production settings of a region stack (cdk.json context)', () => {
  let eu: RegionStack;
  let t: Template;
  let stacks: XmppEdgeStacks;
  before(() => ({ stacks, eu, t } = synth()));

  const stage = (kind: 'ws' | 'http') => {
    const api = idOf(eu, kind === 'ws' ? eu.api : eu.http.api);
    const [entry] = Object.entries(t.findResources('AWS::ApiGatewayV2::Stage')).filter(([, s]) => s.Properties.ApiId.Ref === api);
    return { id: entry[0], ...entry[1] } as Json;
  };

  describe('throttling', () => {
    it('gives both stages a default throttle, from the documented defaults', () => {
      assert.deepEqual(stage('ws').Properties.DefaultRouteSettings, { ThrottlingRateLimit: 500, ThrottlingBurstLimit: 1000 });
      assert.deepEqual(stage('http').Properties.DefaultRouteSettings, { ThrottlingRateLimit: 200, ThrottlingBurstLimit: 400 });
      assert.deepEqual(DEFAULT_THROTTLING, {
        webSocket: { rate: 500, burst: 1000 },
        connect: { rate: 100, burst: 500 },
        http: { rate: 200, burst: 400 },
        hostMeta: { rate: 20, burst: 50 },
      });
    });

    it('throttles $connect and the public host-meta routes tighter, after the routes exist', () => {
      assert.deepEqual(stage('ws').Properties.RouteSettings, { $connect: { ThrottlingRateLimit: 100, ThrottlingBurstLimit: 500 } });
      assert.deepEqual(stage('http').Properties.RouteSettings, {
        'GET /.well-known/host-meta': { ThrottlingRateLimit: 20, ThrottlingBurstLimit: 50 },
        'GET /.well-known/host-meta.json': { ThrottlingRateLimit: 20, ThrottlingBurstLimit: 50 },
      });
      assert.deepEqual(routeThrottles(eu.stage), { $connect: { rate: 100, burst: 500 } });
      // API Gateway refuses route settings for a route it does not have yet.
      const routes = t.findResources('AWS::ApiGatewayV2::Route');
      const routeId = (key: string) => Object.entries(routes).find(([, r]) => r.Properties.RouteKey === key)![0];
      assert.ok(stage('ws').DependsOn.includes(routeId('$connect')));
      for (const key of ['GET /.well-known/host-meta', 'GET /.well-known/host-meta.json']) assert.ok(stage('http').DependsOn.includes(routeId(key)), key);
    });

    it('takes each throttle from context, as JSON or rate/burst', () => {
      const { eu: custom, t: ct } = synth({
        regions: 'eu-west-1',
        webSocketThrottle: '50/80',
        connectThrottle: { rate: 5, burst: 10 },
        httpThrottle: '{"rate": 1.5, "burst": 3}',
        hostMetaThrottle: '0/0',
      });
      const stages = Object.values(ct.findResources('AWS::ApiGatewayV2::Stage'));
      const ws = stages.find((s) => s.Properties.ApiId.Ref === idOf(custom, custom.api))!;
      const http = stages.find((s) => s.Properties.ApiId.Ref === idOf(custom, custom.http.api))!;
      assert.deepEqual(ws.Properties.DefaultRouteSettings, { ThrottlingRateLimit: 50, ThrottlingBurstLimit: 80 });
      assert.deepEqual(ws.Properties.RouteSettings.$connect, { ThrottlingRateLimit: 5, ThrottlingBurstLimit: 10 });
      assert.deepEqual(http.Properties.DefaultRouteSettings, { ThrottlingRateLimit: 1.5, ThrottlingBurstLimit: 3 });
      assert.deepEqual(http.Properties.RouteSettings['GET /.well-known/host-meta'], { ThrottlingRateLimit: 0, ThrottlingBurstLimit: 0 });
    });

    it('refuses a throttle that is not one, naming the context key', () => {
      const read = (context: Record<string, unknown>) => readConfig(new App({ context }).node);
      assert.throws(() => read({ webSocketThrottle: 'fast' }), /context "webSocketThrottle": "fast" is not rate\/burst \(e\.g\. 500\/1000\)/);
      assert.throws(() => read({ connectThrottle: '-1/10' }), /context "connectThrottle": rate: .*0/);
      assert.throws(() => read({ httpThrottle: { rate: 10 } }), /context "httpThrottle": .*burst/);
      assert.throws(() => read({ httpThrottle: '{"rate": 10, "burst": 2.5}' }), /context "httpThrottle": burst: .*integer/i);
      assert.throws(() => read({ hostMetaThrottle: '{"rate": 10, "burst": 5, "per": "ip"}' }), /context "hostMetaThrottle": .*per/);
      assert.throws(() => read({ hostMetaThrottle: '{rate: 10}' }), /context "hostMetaThrottle": \{rate: 10\} is not JSON/);
      assert.throws(() => read({ tracing: 'yes' }), /context "tracing": "yes" is not true or false/);
      assert.throws(() => read({ sourceMaps: 'on' }), /context "sourceMaps": "on" is not true or false/);
      assert.deepEqual(parseThrottle('k', ' 7/9 '), { rate: 7, burst: 9 });
      assert.deepEqual(read({}).throttling, DEFAULT_THROTTLING);
    });
  });

  describe('access logs', () => {
    for (const [kind, fields, must] of [
      ['ws', WEBSOCKET_ACCESS_LOG_FIELDS, { requestId: '$context.requestId', connectionId: '$context.connectionId', routeKey: '$context.routeKey', eventType: '$context.eventType', status: '$context.status' }],
      ['http', HTTP_ACCESS_LOG_FIELDS, { requestId: '$context.requestId', routeKey: '$context.routeKey', status: '$context.status', caller: '$context.identity.userArn' }],
    ] as const) {
      it(`${kind === 'ws' ? 'WebSocket' : 'HTTP'} stage: one JSON line per ${kind === 'ws' ? 'message' : 'request'} into its own log group, kept 30 days`, () => {
        const settings = stage(kind).Properties.AccessLogSettings;
        const format = JSON.parse(settings.Format);
        assert.deepEqual(format, fields);
        for (const [k, v] of Object.entries(must)) assert.equal(format[k], v, k);
        const groupId = settings.DestinationArn['Fn::GetAtt'][0];
        assert.equal(t.findResources('AWS::Logs::LogGroup')[groupId].Properties.RetentionInDays, 30);
      });
    }

    it('sets the account\'s API Gateway CloudWatch Logs role first (WebSocket logging needs it), unless told it exists', () => {
      const accounts = t.findResources('AWS::ApiGateway::Account');
      const [accountId] = Object.keys(accounts);
      assert.equal(Object.keys(accounts).length, 1);
      const roleId = accounts[accountId].Properties.CloudWatchRoleArn['Fn::GetAtt'][0];
      const role = t.findResources('AWS::IAM::Role')[roleId];
      assert.deepEqual(role.Properties.AssumeRolePolicyDocument.Statement.map((s: Json) => s.Principal.Service), ['apigateway.amazonaws.com']);
      for (const kind of ['ws', 'http'] as const) assert.ok(stage(kind).DependsOn.includes(accountId), kind);
      const { t: without } = synth({ regions: 'eu-west-1', apiGatewayLogsRole: false, logRetentionDays: 7 });
      without.resourceCountIs('AWS::ApiGateway::Account', 0);
      // The stages still log, with the retention asked for.
      for (const s of Object.values(without.findResources('AWS::ApiGatewayV2::Stage'))) {
        const groupId = s.Properties.AccessLogSettings.DestinationArn['Fn::GetAtt'][0];
        assert.equal(without.findResources('AWS::Logs::LogGroup')[groupId].Properties.RetentionInDays, 7);
      }
    });
  });

  describe('where failed work goes', () => {
    it('frames: the FIFO queue redrives to its dead-letter queue after MAX_RECEIVE_COUNT deliveries', () => {
      const frames = t.findResources('AWS::SQS::Queue')[idOf(eu, eu.ingest.queue)];
      assert.deepEqual(frames.Properties.RedrivePolicy, { deadLetterTargetArn: ref(eu, eu.ingest.deadLetterQueue), maxReceiveCount: MAX_RECEIVE_COUNT });
    });

    it('the sweeper: neither EventBridge nor Lambda retries a tick; both send failures to the sweeper failure queue', () => {
      const [rule] = Object.values(t.findResources('AWS::Events::Rule'));
      assert.deepEqual(rule.Properties.Targets[0].DeadLetterConfig, { Arn: ref(eu, eu.sweeperFailures) });
      assert.equal(rule.Properties.Targets[0].RetryPolicy.MaximumRetryAttempts, 0);
      const configs = Object.values(t.findResources('AWS::Lambda::EventInvokeConfig'));
      assert.equal(configs.length, 1);
      assert.equal(configs[0].Properties.FunctionName.Ref, idOf(eu, eu.functions.sweeper));
      assert.equal(configs[0].Properties.MaximumRetryAttempts, 0);
      assert.deepEqual(configs[0].Properties.DestinationConfig, { OnFailure: { Destination: ref(eu, eu.sweeperFailures) } });
      // EventBridge may send to it, from this rule only.
      const policies = Object.values(t.findResources('AWS::SQS::QueuePolicy')).filter((p) => p.Properties.Queues.some((q: Json) => q.Ref === idOf(eu, eu.sweeperFailures)));
      const allow = policies.flatMap((p) => p.Properties.PolicyDocument.Statement).filter((s: Json) => s.Effect === 'Allow');
      assert.deepEqual(allow.map((s: Json) => [s.Principal.Service, s.Action]), [['events.amazonaws.com', 'sqs:SendMessage']]);
      assert.ok(allow[0].Condition.ArnEquals['aws:SourceArn'], 'only the sweep rule');
    });

    it('tenant changes: stream records given up on are described in a failure queue', () => {
      const [mapping] = Object.values(t.findResources('AWS::Lambda::EventSourceMapping')).filter((m) => m.Properties.FunctionName.Ref === idOf(eu, eu.functions.tenantChanges));
      assert.deepEqual(mapping.Properties.DestinationConfig, { OnFailure: { Destination: ref(eu, eu.tenantChanges.failures) } });
      assert.equal(mapping.Properties.MaximumRetryAttempts, 10);
    });

    it('every failure queue is encrypted, keeps messages 14 days and raises an alarm on its first message', () => {
      const alarms = Object.values(t.findResources('AWS::CloudWatch::Alarm')).map((a) => a.Properties);
      for (const q of [eu.ingest.deadLetterQueue, eu.sweeperFailures, eu.tenantChanges.failures]) {
        const queue = t.findResources('AWS::SQS::Queue')[idOf(eu, q)].Properties;
        assert.equal(queue.SqsManagedSseEnabled, true);
        assert.equal(queue.MessageRetentionPeriod, 14 * 24 * 3600);
        const alarm = alarms.find((a) => a.MetricName === 'ApproximateNumberOfMessagesVisible' && a.Dimensions[0].Value['Fn::GetAtt'][0] === idOf(eu, q));
        assert.ok(alarm, q.node.path);
        assert.equal(alarm.Threshold, 1);
      }
    });
  });

  describe('functions', () => {
    const all = () => Object.entries(t.findResources('AWS::Lambda::Function'));

    it(`run on ${LAMBDA_RUNTIME.name}, the newest Node.js runtime aws-cdk-lib knows, with explicit memory and timeout`, () => {
      const newest = Runtime.ALL.filter((r) => /^nodejs\d+\.x$/.test(r.name)).sort((a, b) => parseInt(b.name.slice(6)) - parseInt(a.name.slice(6)))[0];
      assert.equal(LAMBDA_RUNTIME.name, newest.name);
      assert.equal(all().length, 9, 'eight of ours and CDK\'s custom-resource provider');
      for (const [id, fn] of all()) {
        assert.equal(fn.Properties.Runtime, LAMBDA_RUNTIME.name, id);
        assert.ok(Number.isInteger(fn.Properties.MemorySize), `${id}: memory`);
        assert.ok(Number.isInteger(fn.Properties.Timeout), `${id}: timeout`);
      }
      const memory = (fn: XmppFunction) => t.findResources('AWS::Lambda::Function')[idOf(eu, fn)].Properties.MemorySize;
      assert.equal(memory(eu.functions.hostMeta), 128);
      assert.equal(memory(eu.functions.ingest), 512);
    });

    it('export handlers the Node.js 24 runtime can call: (event, context) returning a promise, no callback parameter', async () => {
      // Lambda's nodejs24.x runtime no longer supports callback-style handlers (event, context, callback).
      const saved = { ...process.env };
      Object.assign(process.env, { TABLE_NAME: 'xmpp-edge', FRAME_CLAIMS_TABLE: 'claims', LOG_LEVEL: 'silent', AWS_REGION: 'eu-west-1' });
      try {
        for (const name of ['connect', 'disconnect', 'ingest', 'sweeper', 'tenant-changes', 'admin', 'host-meta']) {
          const { handler } = (await import(`../../functions/${name}.ts`)) as { handler: (...args: unknown[]) => unknown };
          assert.ok(handler.length <= 2, `${name}: ${handler.length} parameters`);
        }
        // One that can answer without AWS: it returns a promise.
        const { handler } = (await import('../../functions/host-meta.ts')) as { handler: (event: unknown) => unknown };
        const result = handler({ rawPath: '/.well-known/host-meta', requestContext: { http: { method: 'GET' } }, headers: {} });
        assert.ok(result instanceof Promise);
        await result;
      } finally {
        process.env = saved;
      }
    });

    it('each have their own role that may write their own log group, and no AWS managed policy', () => {
      const roles = t.findResources('AWS::IAM::Role');
      const policies = Object.values(t.findResources('AWS::IAM::Policy'));
      for (const [name, fn] of Object.entries(eu.functions)) {
        const roleId = idOf(eu, fn.executionRole);
        assert.equal(t.findResources('AWS::Lambda::Function')[idOf(eu, fn)].Properties.Role['Fn::GetAtt'][0], roleId, name);
        assert.equal(roles[roleId].Properties.ManagedPolicyArns, undefined, name);
        const statements = policies.filter((p) => p.Properties.Roles.some((r: Json) => r.Ref === roleId)).flatMap((p) => p.Properties.PolicyDocument.Statement);
        const logs = statements.filter((s: Json) => [s.Action].flat().some((a: string) => a.startsWith('logs:')));
        assert.deepEqual(logs, [{ Action: ['logs:CreateLogStream', 'logs:PutLogEvents'], Effect: 'Allow', Resource: ref(eu, fn.logGroup) }], name);
      }
    });

    it('are not traced by default; tracing=true traces every one, with the X-Ray write actions and TRACING=true', () => {
      for (const [id, fn] of all()) {
        assert.equal(fn.Properties.TracingConfig, undefined, id);
        // Without TRACING the code never loads the X-Ray SDK (test/integration/tracing.test.ts).
        assert.equal(fn.Properties.Environment?.Variables?.TRACING, undefined, id);
      }
      const { eu: traced, t: tt } = synth({ regions: 'eu-west-1', tracing: 'true' });
      const policies = Object.values(tt.findResources('AWS::IAM::Policy'));
      assert.equal(traced.node.findAll().filter((c) => c instanceof XmppFunction).length, 8);
      for (const [name, fn] of Object.entries(traced.functions)) {
        const props = tt.findResources('AWS::Lambda::Function')[idOf(traced, fn)].Properties;
        assert.deepEqual(props.TracingConfig, { Mode: 'Active' }, name);
        assert.equal(props.Environment.Variables.TRACING, 'true', name);
        const roleId = idOf(traced, fn.executionRole);
        const statements = policies.filter((p) => p.Properties.Roles.some((r: Json) => r.Ref === roleId)).flatMap((p) => p.Properties.PolicyDocument.Statement);
        assert.ok(statements.some((s: Json) => s.Resource === '*' && [s.Action].flat().sort().join() === 'xray:PutTelemetryRecords,xray:PutTraceSegments'), name);
      }
    });
  });

  describe('source-mapped stack traces', () => {
    it('are off by default (no NODE_OPTIONS, the cold start reads no map); sourceMaps=true sets --enable-source-maps on every function', () => {
      const functions = Object.entries(t.findResources('AWS::Lambda::Function'));
      assert.ok(functions.length >= 8);
      for (const [id, fn] of functions) assert.equal(fn.Properties.Environment?.Variables?.NODE_OPTIONS, undefined, id);
      const { eu: mapped, t: mt } = synth({ regions: 'eu-west-1', sourceMaps: 'true' });
      const fns = Object.entries(mapped.functions);
      assert.equal(fns.length, 8);
      for (const [name, fn] of fns) {
        assert.equal(mt.findResources('AWS::Lambda::Function')[idOf(mapped, fn)].Properties.Environment.Variables.NODE_OPTIONS, '--enable-source-maps', name);
      }
    });
  });

  describe('SSL only', () => {
    it('the alarm topic and every queue refuse requests that are not over TLS', () => {
      const denies = (policies: Json[], target: string) =>
        policies.filter((p) => JSON.stringify(p.Properties).includes(`"${target}"`)).flatMap((p) => p.Properties.PolicyDocument.Statement)
          .filter((s: Json) => s.Effect === 'Deny' && s.Condition?.Bool?.['aws:SecureTransport'] === 'false');
      const topicId = idOf(eu, eu.alarms.topic);
      assert.equal(denies(Object.values(t.findResources('AWS::SNS::TopicPolicy')), topicId).length, 1, 'topic');
      const queuePolicies = Object.values(t.findResources('AWS::SQS::QueuePolicy'));
      for (const id of Object.keys(t.findResources('AWS::SQS::Queue'))) assert.ok(denies(queuePolicies, id).length >= 1, id);
    });
  });

  describe('throttling alarms', () => {
    it('count the requests each stage refused by throttling from its access log, and alarm on them', () => {
      const filters = Object.values(t.findResources('AWS::Logs::MetricFilter')).map((f) => f.Properties);
      const stageLogs = (kind: 'ws' | 'http') => stage(kind).Properties.AccessLogSettings.DestinationArn['Fn::GetAtt'][0];
      for (const [kind, name, threshold] of [['ws', THROTTLED_METRICS.webSocket, 100], ['http', THROTTLED_METRICS.http, 20]] as const) {
        const filter = filters.find((f) => f.MetricTransformations[0].MetricName === name)!;
        assert.equal(filter.LogGroupName.Ref, stageLogs(kind), name);
        assert.equal(filter.FilterPattern, '{ $.status = "429" }');
        assert.deepEqual(filter.MetricTransformations, [{ MetricNamespace: 'XmppEdge', MetricName: name, MetricValue: '1' }]);
        const alarm = Object.values(t.findResources('AWS::CloudWatch::Alarm')).map((a) => a.Properties).find((a) => a.MetricName === name)!;
        assert.equal(alarm.Threshold, threshold, name);
        assert.equal(alarm.Namespace, 'XmppEdge');
      }
    });
  });

  describe('dashboard', () => {
    it('one per region, with the ingest, functions, API Gateway, DynamoDB and every alarm\'s state', () => {
      for (const region of stacks.regions.values()) Template.fromStack(region).resourceCountIs('AWS::CloudWatch::Dashboard', 1);
      const [dash] = Object.values(t.findResources('AWS::CloudWatch::Dashboard'));
      const body = JSON.stringify(dash.Properties.DashboardBody);
      for (const title of ['## Ordered ingest', '## Functions', '## API Gateway', '## DynamoDB', '## Alarms']) assert.ok(body.includes(title), title);
      for (const alarm of eu.alarms.alarms) assert.ok(body.includes(idOf(eu, alarm)), alarm.node.path);
      for (const metric of ['Throttles', 'ClientError', 'ConsumedWriteCapacityUnits', 'FramesFailed', 'WebSocketThrottled', 'HttpThrottled']) assert.ok(body.includes(metric), metric);
      t.hasOutput('DashboardName', {});
    });
  });
});
