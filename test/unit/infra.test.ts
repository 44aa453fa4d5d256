// The CDK app synthesized in-process with cdk.json's context, exactly as `npx cdk synth` does it
// (functions really bundled by the local esbuild), and the templates checked for what issue 5 asks:
// routes and their integrations, the FIFO ingest, the global table, runtimes, IAM no wider than
// needed, alarms, outputs. Offline: no account, no lookups.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateRawSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { App, type Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { CfnFunction } from 'aws-cdk-lib/aws-lambda';
import type { CloudAssembly } from 'aws-cdk-lib/cx-api';
import { buildApp, type XmppEdgeStacks } from '../../lib/infra/app.ts';
import { frameToSqsTemplate } from '../../lib/gateway/frame-envelope.ts';
import { INGEST_TIMEOUT, MAX_RECEIVE_COUNT } from '../../lib/infra/ordered-ingest.ts';
import { STREAM_READ_ACTIONS } from '../../lib/infra/tenant-changes.ts';
import { SWEEPER_TIMEOUT } from '../../lib/infra/region-stack.ts';
import { LAMBDA_RUNTIME } from '../../lib/infra/xmpp-function.ts';
import { XRAY_CHUNK } from '../../lib/infra/bundling.ts';
import { BOSH_MAX_WAIT_SECONDS } from '../../functions/bosh.ts';
import { PURGE_MARGIN_MS, purgeDeadline } from '../../functions/sweeper.ts';
import { TENANT_CHANGE_FILTERS } from '../../lib/runtime/tenant-stream.ts';
import { tableDefinition } from '../../lib/store/dynamo.ts';

const CDK_CONTEXT = JSON.parse(readFileSync(new URL('../../cdk.json', import.meta.url), 'utf8')).context as Record<string, unknown>;

/** CDK's own switch (what `cdk deploy STACK` uses for the other stacks): for synths that only read the templates. */
const NO_BUNDLING = { 'aws:cdk:bundling-stacks': [] };

type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any -- CloudFormation JSON

/** CloudFormation values as readable strings: Fn::Join joined, Ref → ${Id}, Fn::GetAtt → ${Id.Attr}. */
function flat(v: Json): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return String(v);
  if (v?.Ref) return `\${${v.Ref}}`;
  if (v?.['Fn::GetAtt']) return `\${${v['Fn::GetAtt'].join('.')}}`;
  if (v?.['Fn::Join']) return v['Fn::Join'][1].map(flat).join(v['Fn::Join'][0]);
  if (v?.['Fn::Sub']) return String(v['Fn::Sub']);
  throw new Error(`cannot flatten ${JSON.stringify(v)}`);
}
const list = <T>(v: T | T[]): T[] => (Array.isArray(v) ? v : [v]);
const TABLE_ARN = 'arn:aws:dynamodb:eu-west-1:${AWS::AccountId}:table/xmpp-edge';

function synth(context: Record<string, unknown> = {}) {
  const outdir = mkdtempSync(join(tmpdir(), 'xmpp-edge-cdk-'));
  const app = new App({ context: { ...CDK_CONTEXT, ...context }, outdir });
  const stacks = buildApp(app, undefined);
  const assembly = app.synth();
  return { app, stacks, assembly, outdir };
}

describe('CDK app (cdk.json context: eu-west-1 + us-east-1)', () => {
  let stacks: XmppEdgeStacks;
  let assembly: CloudAssembly;
  let outdir: string;
  let eu: Stack & XmppEdgeStacks['regions'] extends Map<string, infer R> ? R : never;
  let t: Template;
  const logicalId = (stack: Stack, fn: { node: { defaultChild?: unknown } }) => stack.getLogicalId(fn.node.defaultChild as CfnFunction);
  /** The xmpp-edge functions of the eu-west-1 stack, by logical id. */
  const ourFunctions = () => {
    const all = t.findResources('AWS::Lambda::Function');
    return Object.fromEntries(Object.values(eu.functions).map((fn) => [logicalId(eu, fn), all[logicalId(eu, fn)]]));
  };

  before(() => {
    ({ stacks, assembly, outdir } = synth());
    eu = stacks.regions.get('eu-west-1')!;
    t = Template.fromStack(eu);
  });
  after(() => rmSync(outdir, { recursive: true, force: true }));

  it('synthesizes offline: concrete regions, no account needed, no context lookups', () => {
    assert.deepEqual([...stacks.regions.keys()], ['eu-west-1', 'us-east-1']);
    assert.deepEqual(assembly.stacks.map((s) => s.stackName).sort(), ['XmppEdge-Table', 'XmppEdge-eu-west-1', 'XmppEdge-us-east-1']);
    assert.equal(assembly.manifest.missing, undefined);
    for (const s of assembly.stacks) assert.equal(s.environment.account, 'unknown-account');
    assert.equal(stacks.table.region, 'eu-west-1');
    for (const r of stacks.regions.values()) assert.ok(r.dependencies.includes(stacks.table), `${r.stackName} waits for the table`);
  });

  describe('WebSocket API', () => {
    const routes = () => {
      const out: Record<string, { route: Json; integration: Json }> = {};
      const integrations = t.findResources('AWS::ApiGatewayV2::Integration');
      const wsId = eu.getLogicalId(eu.api.node.defaultChild as never);
      for (const r of Object.values(t.findResources('AWS::ApiGatewayV2::Route')).filter((r) => r.Properties.ApiId.Ref === wsId)) {
        const target = flat(r.Properties.Target).replace(/^integrations\/\$\{(.*)\}$/, '$1');
        out[r.Properties.RouteKey] = { route: r, integration: integrations[target] };
      }
      return out;
    };

    it('has exactly $connect, $disconnect and $default', () => {
      assert.deepEqual(Object.keys(routes()).sort(), ['$connect', '$default', '$disconnect']);
      // The WebSocket API and the HTTP API (admin, discovery).
      t.resourceCountIs('AWS::ApiGatewayV2::Api', 2);
      t.hasResourceProperties('AWS::ApiGatewayV2::Api', { ProtocolType: 'WEBSOCKET' });
      t.hasResourceProperties('AWS::ApiGatewayV2::Stage', { StageName: 'xmpp', AutoDeploy: true });
    });

    it('sends $connect and $disconnect to their Lambda functions through proxy integrations', () => {
      const r = routes();
      for (const [key, fn] of [['$connect', eu.functions.connect], ['$disconnect', eu.functions.disconnect]] as const) {
        const integ = r[key].integration.Properties;
        assert.equal(integ.IntegrationType, 'AWS_PROXY', key);
        assert.match(flat(integ.IntegrationUri), new RegExp(`:lambda:path/2015-03-31/functions/\\$\\{${logicalId(eu, fn)}\\.Arn\\}/invocations$`), key);
      }
      // API Gateway may invoke them, and only from this API.
      const perms = Object.values(t.findResources('AWS::Lambda::Permission')).filter(
        (p) => p.Properties.Principal === 'apigateway.amazonaws.com' && flat(p.Properties.SourceArn).includes('${WebSocket'),
      );
      assert.equal(perms.length, 2);
      for (const p of perms) assert.match(flat(p.Properties.SourceArn), /:execute-api:eu-west-1:\$\{AWS::AccountId\}:\$\{WebSocket\w+\}\/\*\/?\$(connect|disconnect)$/);
    });

    it('sends $default straight to the FIFO queue: SendMessage grouped by connection id, no Lambda in between', () => {
      const integ = routes().$default.integration.Properties;
      assert.equal(integ.IntegrationType, 'AWS');
      assert.equal(integ.IntegrationMethod, 'POST');
      const queueId = eu.getLogicalId(eu.ingest.queue.node.defaultChild as never);
      assert.equal(flat(integ.IntegrationUri), `arn:aws:apigateway:eu-west-1:sqs:path/\${AWS::AccountId}/\${${queueId}.QueueName}`);
      assert.deepEqual(integ.RequestParameters, { 'integration.request.header.Content-Type': "'application/x-www-form-urlencoded'" });
      assert.equal(integ.TemplateSelectionExpression, '\\$default');
      assert.equal(integ.PassthroughBehavior, 'NEVER');
      const template: string = integ.RequestTemplates.$default;
      assert.equal(template, frameToSqsTemplate());
      assert.ok(template.startsWith('Action=SendMessage&'));
      assert.ok(template.includes('&MessageGroupId=$util.urlEncode($context.connectionId)&'), 'frames of one connection form one message group');
      assert.ok(template.includes('&MessageDeduplicationId=$util.urlEncode($context.messageId)&'));
      assert.ok(template.includes('$util.base64Encode($input.body)'));
    });

    it('lets API Gateway do nothing but SendMessage to that one queue', () => {
      const integ = routes().$default.integration.Properties;
      const roleId = integ.CredentialsArn['Fn::GetAtt'][0];
      const role = t.findResources('AWS::IAM::Role')[roleId];
      assert.deepEqual(role.Properties.AssumeRolePolicyDocument.Statement.map((s: Json) => s.Principal.Service), ['apigateway.amazonaws.com']);
      assert.equal(role.Properties.ManagedPolicyArns, undefined);
      const policies = Object.values(t.findResources('AWS::IAM::Policy')).filter((p) => p.Properties.Roles.some((r: Json) => r.Ref === roleId));
      const statements = policies.flatMap((p) => p.Properties.PolicyDocument.Statement);
      const queueId = eu.getLogicalId(eu.ingest.queue.node.defaultChild as never);
      assert.deepEqual(statements, [{ Action: 'sqs:SendMessage', Effect: 'Allow', Resource: { 'Fn::GetAtt': [queueId, 'Arn'] } }]);
    });
  });

  describe('ordered ingest', () => {
    it('is a FIFO queue deduplicated by message id (not content), high-throughput, with a FIFO dead-letter queue', () => {
      const queues = t.findResources('AWS::SQS::Queue');
      const frames = queues[eu.getLogicalId(eu.ingest.queue.node.defaultChild as never)].Properties;
      const dlqId = eu.getLogicalId(eu.ingest.deadLetterQueue.node.defaultChild as never);
      assert.equal(frames.FifoQueue, true);
      assert.equal(frames.ContentBasedDeduplication, false);
      assert.equal(frames.DeduplicationScope, 'messageGroup');
      assert.equal(frames.FifoThroughputLimit, 'perMessageGroupId');
      assert.deepEqual(frames.RedrivePolicy, { deadLetterTargetArn: { 'Fn::GetAtt': [dlqId, 'Arn'] }, maxReceiveCount: MAX_RECEIVE_COUNT });
      assert.ok(frames.VisibilityTimeout >= 6 * INGEST_TIMEOUT.toSeconds(), 'visibility timeout at least 6x the function timeout');
      assert.equal(queues[dlqId].Properties.FifoQueue, true);
      assert.equal(queues[dlqId].Properties.MessageRetentionPeriod, 14 * 24 * 3600);
    });

    it('feeds the ingest function in batches with partial batch failure reporting', () => {
      const queueId = eu.getLogicalId(eu.ingest.queue.node.defaultChild as never);
      t.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
        EventSourceArn: { 'Fn::GetAtt': [queueId, 'Arn'] },
        FunctionName: { Ref: logicalId(eu, eu.functions.ingest) },
        BatchSize: 10,
        FunctionResponseTypes: ['ReportBatchItemFailures'],
      });
      t.resourceCountIs('AWS::Lambda::EventSourceMapping', 2); // and the tenant-changes stream's
    });

    it('keeps frame claims in a regional table with a TTL, and tells the ingest its name', () => {
      const claimsId = eu.getLogicalId(eu.ingest.claims.node.defaultChild as never);
      const claims = t.findResources('AWS::DynamoDB::GlobalTable')[claimsId].Properties;
      assert.deepEqual(claims.KeySchema, [{ AttributeName: 'pk', KeyType: 'HASH' }, { AttributeName: 'sk', KeyType: 'RANGE' }]);
      assert.deepEqual(claims.TimeToLiveSpecification, { AttributeName: 'ttl', Enabled: true });
      assert.deepEqual(claims.Replicas.map((r: Json) => r.Region), ['eu-west-1'], 'not replicated: a claim matters only where its queue is');
      const env = t.findResources('AWS::Lambda::Function')[logicalId(eu, eu.functions.ingest)].Properties.Environment.Variables;
      assert.deepEqual(env.FRAME_CLAIMS_TABLE, { Ref: claimsId });
    });
  });

  describe('HTTP API', () => {
    const httpRoutes = () => {
      const httpId = eu.getLogicalId(eu.http.api.node.defaultChild as never);
      const integrations = t.findResources('AWS::ApiGatewayV2::Integration');
      return Object.fromEntries(
        Object.values(t.findResources('AWS::ApiGatewayV2::Route'))
          .filter((r) => r.Properties.ApiId.Ref === httpId)
          .map((r) => [r.Properties.RouteKey, { route: r.Properties, integration: integrations[flat(r.Properties.Target).replace(/^integrations\/\$\{(.*)\}$/, '$1')].Properties }]),
      );
    };

    it('is an HTTP API on its $default stage with the admin API under /api, the two host-meta documents and BOSH, nothing else', () => {
      const httpId = eu.getLogicalId(eu.http.api.node.defaultChild as never);
      t.hasResourceProperties('AWS::ApiGatewayV2::Api', { ProtocolType: 'HTTP' });
      t.hasResourceProperties('AWS::ApiGatewayV2::Stage', { ApiId: { Ref: httpId }, StageName: '$default', AutoDeploy: true });
      assert.deepEqual(Object.keys(httpRoutes()).sort(), ['ANY /api/{proxy+}', 'GET /.well-known/host-meta', 'GET /.well-known/host-meta.json', 'OPTIONS /http-bind', 'POST /http-bind']);
    });

    it('serves BOSH (XEP-0206) at /http-bind: public POST and CORS preflight, one function inside the 30 s limit, its URL in host-meta and the outputs', () => {
      const r = httpRoutes();
      for (const key of ['POST /http-bind', 'OPTIONS /http-bind']) {
        assert.equal(r[key].route.AuthorizationType, 'NONE', `${key}: the stream authenticates with SASL`);
        assert.equal(r[key].integration.PayloadFormatVersion, '2.0', key);
        assert.deepEqual(r[key].integration.IntegrationUri, { 'Fn::GetAtt': [logicalId(eu, eu.functions.bosh), 'Arn'] }, key);
      }
      const fns = t.findResources('AWS::Lambda::Function');
      const bosh = fns[logicalId(eu, eu.functions.bosh)].Properties;
      assert.ok(bosh.Timeout < 30 && bosh.Timeout > BOSH_MAX_WAIT_SECONDS, 'longer than the longest wait, inside the HTTP API\'s 30 s');
      assert.equal(bosh.Runtime, LAMBDA_RUNTIME.name);
      // A request's frames are claimed like the ingest's, in the same regional table.
      const ingestEnv = fns[logicalId(eu, eu.functions.ingest)].Properties.Environment.Variables;
      assert.deepEqual(bosh.Environment.Variables.FRAME_CLAIMS_TABLE, ingestEnv.FRAME_CLAIMS_TABLE);
      assert.ok(bosh.Environment.Variables.TABLE_NAME);
      const hostMeta = fns[logicalId(eu, eu.functions.hostMeta)].Properties.Environment.Variables;
      assert.equal(flat(hostMeta.BOSH_URL), `\${${eu.getLogicalId(eu.http.api.node.defaultChild as never)}.ApiEndpoint}/http-bind`);
      assert.match(flat(t.findOutputs('BoshUrl').BoshUrl.Value), /\/http-bind$/);
    });

    it('lets IAM decide who may call the admin API, and anyone read host-meta', () => {
      const r = httpRoutes();
      assert.equal(r['ANY /api/{proxy+}'].route.AuthorizationType, 'AWS_IAM');
      assert.equal(r['GET /.well-known/host-meta'].route.AuthorizationType, 'NONE');
      assert.equal(r['GET /.well-known/host-meta.json'].route.AuthorizationType, 'NONE');
      // No authorizer resource: IAM authorization is a route setting, not a Lambda or JWT authorizer.
      t.resourceCountIs('AWS::ApiGatewayV2::Authorizer', 0);
    });

    it('sends each route to its own function through a payload 2.0 proxy integration', () => {
      const r = httpRoutes();
      for (const [key, fn] of [
        ['ANY /api/{proxy+}', eu.functions.admin],
        ['GET /.well-known/host-meta', eu.functions.hostMeta],
        ['GET /.well-known/host-meta.json', eu.functions.hostMeta],
      ] as const) {
        assert.equal(r[key].integration.IntegrationType, 'AWS_PROXY', key);
        assert.equal(r[key].integration.PayloadFormatVersion, '2.0', key);
        assert.deepEqual(r[key].integration.IntegrationUri, { 'Fn::GetAtt': [logicalId(eu, fn), 'Arn'] }, key);
      }
      const fns = t.findResources('AWS::Lambda::Function');
      assert.ok(fns[logicalId(eu, eu.functions.admin)].Properties.Timeout < 30, 'inside the HTTP API\'s 30 s integration timeout');
    });
  });

  describe('tenant changes', () => {
    it('has a stream with old and new images on every replica, also with one region', () => {
      const p = Object.values(Template.fromStack(stacks.table).findResources('AWS::DynamoDB::GlobalTable'))[0].Properties;
      assert.deepEqual(p.StreamSpecification, { StreamViewType: 'NEW_AND_OLD_IMAGES' });
      const one = synth({ regions: 'eu-west-1', ...NO_BUNDLING });
      try {
        const p1 = Object.values(Template.fromStack(one.stacks.table).findResources('AWS::DynamoDB::GlobalTable'))[0].Properties;
        assert.deepEqual(p1.StreamSpecification, { StreamViewType: 'NEW_AND_OLD_IMAGES' });
      } finally {
        rmSync(one.outdir, { recursive: true, force: true });
      }
    });

    it('reads this region\'s replica stream ARN at deploy time, with DescribeTable on this region\'s table only', () => {
      const [id, lookup] = Object.entries(t.findResources('Custom::TableStreamArn'))[0];
      const call = JSON.parse(lookup.Properties.Update);
      assert.deepEqual(call, { service: 'DynamoDB', action: 'DescribeTable', parameters: { TableName: 'xmpp-edge' }, physicalResourceId: { responsePath: 'Table.LatestStreamArn' }, outputPaths: ['Table.LatestStreamArn'] });
      assert.equal(lookup.Properties.InstallLatestAwsSdk, false);
      const policy = Object.values(t.findResources('AWS::IAM::Policy')).find((p) => p.Properties.PolicyDocument.Statement.some((s: Json) => s.Action === 'dynamodb:DescribeTable'))!;
      assert.deepEqual(policy.Properties.PolicyDocument.Statement.map((s: Json) => [s.Action, flat(s.Resource)]), [['dynamodb:DescribeTable', TABLE_ARN]]);
      assert.ok(id);
    });

    it('invokes the tenant-changes function from the stream, filtered to tenant items that stop being served, from now on', () => {
      const lookupId = Object.keys(t.findResources('Custom::TableStreamArn'))[0];
      const mapping = Object.values(t.findResources('AWS::Lambda::EventSourceMapping')).find((m) => m.Properties.FunctionName.Ref === logicalId(eu, eu.functions.tenantChanges))!.Properties;
      assert.deepEqual(mapping.EventSourceArn, { 'Fn::GetAtt': [lookupId, 'Table.LatestStreamArn'] });
      assert.equal(mapping.StartingPosition, 'LATEST');
      assert.equal(mapping.MaximumBatchingWindowInSeconds, undefined, 'no batching window: within seconds');
      assert.deepEqual(mapping.FunctionResponseTypes, ['ReportBatchItemFailures']);
      assert.equal(mapping.BisectBatchOnFunctionError, true);
      assert.deepEqual(mapping.FilterCriteria.Filters.map((f: Json) => JSON.parse(f.Pattern)), TENANT_CHANGE_FILTERS);
    });

    it('is in every region, each on its own replica', () => {
      const us = stacks.regions.get('us-east-1')!;
      const tu = Template.fromStack(us);
      const call = JSON.parse(Object.values(tu.findResources('Custom::TableStreamArn'))[0].Properties.Update);
      assert.equal(call.parameters.TableName, 'xmpp-edge');
      assert.equal(us.region, 'us-east-1', 'the custom resource runs in the stack\'s region, so DescribeTable answers for that replica');
      tu.resourceCountIs('AWS::Lambda::EventSourceMapping', 2);
    });
  });

  describe('global table', () => {
    it('has the keys, indexes and attributes of tableDefinition(), TTL, PITR and deletion protection in every replica', () => {
      const tt = Template.fromStack(stacks.table);
      tt.resourceCountIs('AWS::DynamoDB::GlobalTable', 1);
      const [res] = Object.values(tt.findResources('AWS::DynamoDB::GlobalTable'));
      const p = res.Properties;
      const def = tableDefinition('xmpp-edge');
      assert.equal(p.TableName, 'xmpp-edge');
      assert.equal(p.BillingMode, 'PAY_PER_REQUEST');
      assert.deepEqual(p.KeySchema, def.KeySchema);
      assert.deepEqual(p.AttributeDefinitions, def.AttributeDefinitions);
      assert.deepEqual(
        p.GlobalSecondaryIndexes.map((g: Json) => ({ IndexName: g.IndexName, KeySchema: g.KeySchema, Projection: g.Projection })),
        def.GlobalSecondaryIndexes,
      );
      assert.deepEqual(p.TimeToLiveSpecification, { AttributeName: 'ttl', Enabled: true });
      assert.deepEqual(p.Replicas.map((r: Json) => r.Region).sort(), ['eu-west-1', 'us-east-1']);
      for (const r of p.Replicas) {
        assert.deepEqual(r.PointInTimeRecoverySpecification, { PointInTimeRecoveryEnabled: true }, r.Region);
        assert.equal(r.DeletionProtectionEnabled, true, r.Region);
      }
      assert.equal(res.DeletionPolicy, 'Retain');
      assert.equal(res.UpdateReplacePolicy, 'Retain');
    });

    it('replicates to every region listed on the command line, each with its own region stack', () => {
      const three = synth({ regions: 'eu-west-1,us-east-1,ap-southeast-2', ...NO_BUNDLING });
      try {
        const p = Object.values(Template.fromStack(three.stacks.table).findResources('AWS::DynamoDB::GlobalTable'))[0].Properties;
        assert.deepEqual(p.Replicas.map((r: Json) => r.Region).sort(), ['ap-southeast-2', 'eu-west-1', 'us-east-1']);
        assert.deepEqual([...three.stacks.regions.keys()], ['eu-west-1', 'us-east-1', 'ap-southeast-2']);
      } finally {
        rmSync(three.outdir, { recursive: true, force: true });
      }
    });
  });

  describe('functions', () => {
    it(`run on ${LAMBDA_RUNTIME.name}, arm64, with their own log group kept 30 days`, () => {
      const fns = ourFunctions();
      const groups = t.findResources('AWS::Logs::LogGroup');
      assert.deepEqual(Object.keys(eu.functions).sort(), ['admin', 'bosh', 'connect', 'disconnect', 'hostMeta', 'ingest', 'sweeper', 'tenantChanges']);
      assert.equal(Object.keys(fns).length, Object.keys(eu.functions).length);
      // The one other function is CDK's own AwsCustomResource provider (it reads the replica's stream ARN at deploy time).
      const others = Object.entries(t.findResources('AWS::Lambda::Function')).filter(([id]) => !fns[id]);
      assert.deepEqual(others.map(([id]) => id.slice(0, 35)), ['AWS679f53fac002430cb0da5b7982bd2287']);
      assert.equal(groups[others[0][1].Properties.LoggingConfig.LogGroup.Ref].Properties.RetentionInDays, 30, 'its logs are kept as long as ours');
      const hostMetaId = logicalId(eu, eu.functions.hostMeta);
      for (const [id, fn] of Object.entries(fns)) {
        assert.equal(fn.Properties.Runtime, LAMBDA_RUNTIME.name, id);
        assert.deepEqual(fn.Properties.Architectures, ['arm64'], id);
        assert.equal(fn.Properties.Handler, 'index.handler', id);
        const env = fn.Properties.Environment.Variables;
        if (id === hostMetaId) {
          // Discovery knows only where to connect: no table, no connections.
          assert.equal(env.TABLE_NAME, undefined);
          assert.equal(env.MANAGEMENT_ENDPOINT, undefined);
          assert.equal(flat(env.WEBSOCKET_URL), `wss://\${${eu.getLogicalId(eu.api.node.defaultChild as never)}}.execute-api.eu-west-1.\${AWS::URLSuffix}/xmpp`);
        } else {
          assert.equal(env.TABLE_NAME, 'xmpp-edge', id);
          assert.equal(flat(env.MANAGEMENT_ENDPOINT), `https://\${${eu.getLogicalId(eu.api.node.defaultChild as never)}}.execute-api.eu-west-1.\${AWS::URLSuffix}/xmpp`);
        }
        assert.equal(groups[fn.Properties.LoggingConfig.LogGroup.Ref].Properties.RetentionInDays, 30, id);
        assert.deepEqual(fn.Properties.Tags, [{ Key: 'project', Value: 'xmpp-edge' }], `${id}: tagged for cost allocation`);
      }
    });

    it('are bundled by the local esbuild into one small ES module each, which loads and exports a handler', async (ctx) => {
      const fns = ourFunctions();
      const saved = { ...process.env };
      Object.assign(process.env, { TABLE_NAME: 'xmpp-edge', FRAME_CLAIMS_TABLE: 'claims', LOG_LEVEL: 'silent', AWS_REGION: 'eu-west-1' });
      try {
        for (const [id, fn] of Object.entries(fns)) {
          const hash = String(fn.Properties.Code.S3Key).replace(/\.zip$/, '');
          const file = join(outdir, `asset.${hash}`, 'index.mjs');
          const size = statSync(file).size;
          // What the asset's zip holds (index.mjs, xray-tracing.mjs and their source maps, deflated at
          // level 9 as the CDK zips it), without the zip's own headers: what Lambda's package limits count.
          const dir = join(outdir, `asset.${hash}`);
          const zipped = readdirSync(dir).reduce((sum, f) => sum + deflateRawSync(readFileSync(join(dir, f)), { level: 9 }).length, 0);
          ctx.diagnostic(`${id}: ${(size / 1024).toFixed(1)} KiB, asset ${(zipped / 1024).toFixed(1)} KiB deflated`);
          // About 700-725 KiB each (README "Bundle sizes"); with the X-Ray part, the SDK's credential
          // providers or event stream codec, pino's transport worker, the SNS and EventBridge clients or
          // TypeBox's whole Value namespace back in, the admin bundle is over this. $connect, which loads
          // only CONNECT_MODULES (lib/runtime/lambda.ts), about 525 KiB: with every module, 700.
          const limit = id.startsWith('Connect') ? 535 : 730;
          assert.ok(size < limit * 1024, `${id}: ${size} bytes, over ${limit} KiB`);
          // The X-Ray part beside it, in a file of its own (lib/infra/bundling.ts).
          const xray = statSync(join(outdir, `asset.${hash}`, XRAY_CHUNK.file)).size;
          assert.ok(xray > 20 * 1024 && xray < 100 * 1024, `${id}: ${XRAY_CHUNK.file} ${xray} bytes`);
          const mod = (await import(file)) as { handler?: unknown };
          assert.equal(typeof mod.handler, 'function', id);
        }
        // Without TRACING the X-Ray SDK in the bundles is never evaluated (its context library registers
        // a namespace on process when it is): docs/architecture.md "Tracing".
        assert.equal((process as { namespaces?: Record<string, unknown> }).namespaces?.AWSXRay, undefined);
      } finally {
        process.env = saved;
      }
    });

    it('load the X-Ray part from its own file with TRACING=true (a fresh process, as a Lambda container)', async () => {
      const connect = Object.entries(ourFunctions()).find(([id]) => id.startsWith('Connect'))![1];
      const dir = join(outdir, `asset.${String(connect.Properties.Code.S3Key).replace(/\.zip$/, '')}`);
      // Importing the connect bundle constructs its runtime, which starts loading the X-Ray file; the X-Ray
      // SDK's context library registers its namespace on process when it is evaluated.
      const script = `await import(${JSON.stringify(join(dir, 'index.mjs'))});
        while (!process.namespaces?.AWSXRay) await new Promise((r) => setImmediate(r));
        process.stdout.write('loaded');`;
      const env = { PATH: process.env.PATH, TABLE_NAME: 'xmpp-edge', LOG_LEVEL: 'silent', AWS_REGION: 'eu-west-1', TRACING: 'true' };
      const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], { env, timeout: 30_000 });
      assert.equal(stdout, 'loaded');
    });

    it('purge deleted tenants in the table\'s home region only, within the sweeper\'s timeout', () => {
      const env = (stack: Stack, fn: { node: { defaultChild?: unknown } }) =>
        Template.fromStack(stack).findResources('AWS::Lambda::Function')[logicalId(stack, fn)].Properties.Environment.Variables;
      assert.equal(env(eu, eu.functions.sweeper).PURGE_TENANTS, 'true');
      const us = stacks.regions.get('us-east-1')!;
      assert.equal(env(us, us.functions.sweeper).PURGE_TENANTS, undefined);
      const timeoutMs = t.findResources('AWS::Lambda::Function')[logicalId(eu, eu.functions.sweeper)].Properties.Timeout * 1000;
      assert.equal(timeoutMs, SWEEPER_TIMEOUT.toMilliseconds());
      const deadline = purgeDeadline(0, timeoutMs);
      assert.ok(deadline > 0 && deadline <= timeoutMs - PURGE_MARGIN_MS, `a purge stops starting pages ${timeoutMs - deadline} ms before the timeout`);
      assert.equal(purgeDeadline(1000, 5000), 1000, 'no time left: the purge does one page and stops');
    });

    it('run the sweeper every minute', () => {
      t.hasResourceProperties('AWS::Events::Rule', {
        ScheduleExpression: 'rate(1 minute)',
        State: 'ENABLED',
        Targets: [{ Arn: { 'Fn::GetAtt': [logicalId(eu, eu.functions.sweeper), 'Arn'] } }],
      });
    });
  });

  describe('IAM', () => {
    const statementsOf = (fn: { role?: { node: { defaultChild?: unknown } } }) => {
      const roleId = eu.getLogicalId(fn.role!.node.defaultChild as never);
      return Object.values(t.findResources('AWS::IAM::Policy'))
        .filter((p) => p.Properties.Roles.some((r: Json) => r.Ref === roleId))
        .flatMap((p) => p.Properties.PolicyDocument.Statement);
    };
    const actionsOn = (statements: Json[], prefix: string) => statements.flatMap((s) => list(s.Action)).filter((a: string) => a.startsWith(prefix)).sort();
    const TABLE = TABLE_ARN;

    it('has no wildcard actions and no DynamoDB or execute-api action on every resource', () => {
      for (const stack of [eu, stacks.regions.get('us-east-1')!, stacks.table]) {
        for (const p of Object.values(Template.fromStack(stack).findResources('AWS::IAM::Policy'))) {
          for (const s of p.Properties.PolicyDocument.Statement) {
            for (const a of list(s.Action)) assert.ok(!String(a).endsWith('*'), `${stack.stackName}: ${a}`);
            if (list(s.Action).some((a: string) => /^(dynamodb|execute-api):/.test(a))) {
              for (const r of list(s.Resource)) assert.notEqual(r, '*', `${stack.stackName}: ${JSON.stringify(s.Action)}`);
            }
          }
        }
      }
    });

    it('gives each function only the table actions it uses, on this region\'s replica and the indexes it queries', () => {
      const stream = ['dynamodb:BatchGetItem', 'dynamodb:BatchWriteItem', 'dynamodb:DeleteItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query', 'dynamodb:UpdateItem'];
      assert.deepEqual(actionsOn(statementsOf(eu.functions.connect), 'dynamodb:'), ['dynamodb:PutItem', 'dynamodb:UpdateItem']);
      assert.deepEqual(actionsOn(statementsOf(eu.functions.disconnect), 'dynamodb:'), stream);
      assert.deepEqual(actionsOn(statementsOf(eu.functions.ingest), 'dynamodb:'), [...stream, 'dynamodb:DeleteItem', 'dynamodb:PutItem'].sort());
      // The admin API does what streams do (it sends stanzas as users) and lists a tenant's sessions (byTenant).
      assert.deepEqual(actionsOn(statementsOf(eu.functions.admin), 'dynamodb:'), [...stream, 'dynamodb:Query'].sort());
      const hostMetaLogs = eu.getLogicalId(eu.functions.hostMeta.logGroup.node.defaultChild as never);
      assert.deepEqual(statementsOf(eu.functions.hostMeta), [
        { Action: ['logs:CreateLogStream', 'logs:PutLogEvents'], Effect: 'Allow', Resource: { 'Fn::GetAtt': [hostMetaLogs, 'Arn'] } },
      ], 'host-meta is allowed nothing but writing its own logs');
      // Ending a session may put a stream-managed session's unacknowledged messages into offline storage.
      const sessionEnd = ['dynamodb:BatchGetItem', 'dynamodb:DeleteItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query', 'dynamodb:UpdateItem'];
      // eu-west-1 holds the table: its sweeper also purges deleted tenants (Put the job, BatchWrite the deletes).
      assert.deepEqual(actionsOn(statementsOf(eu.functions.sweeper), 'dynamodb:'), [...sessionEnd, 'dynamodb:BatchWriteItem', 'dynamodb:Query'].sort());
      const us = stacks.regions.get('us-east-1')!;
      const usSweeperRole = us.getLogicalId(us.functions.sweeper.role!.node.defaultChild as never);
      const usSweeper = Object.values(Template.fromStack(us).findResources('AWS::IAM::Policy'))
        .filter((p) => p.Properties.Roles.some((r: Json) => r.Ref === usSweeperRole))
        .flatMap((p) => p.Properties.PolicyDocument.Statement);
      assert.deepEqual(actionsOn(usSweeper, 'dynamodb:'), [...sessionEnd, 'dynamodb:Query'].sort());
      // Ending sessions and reading the stream; no BatchWrite.
      assert.deepEqual(
        actionsOn(statementsOf(eu.functions.tenantChanges), 'dynamodb:'),
        [...sessionEnd, 'dynamodb:Query', ...STREAM_READ_ACTIONS].sort(),
      );
      for (const [name, fn] of Object.entries(eu.functions)) {
        for (const s of statementsOf(fn).filter((s) => list(s.Action).some((a: string) => a.startsWith('dynamodb:')))) {
          const resources = list(s.Resource).map(flat);
          const ok = resources.every((r) => r === TABLE || r.startsWith(`${TABLE}/index/`) || /^\$\{IngestFrameClaims\w+\.Arn\}$/.test(r));
          // The tenant-changes function reads this region's replica streams (AWS's example policy for stream triggers).
          const streamRead = name === 'tenantChanges' && resources.join() === `${TABLE}/stream/*` && list(s.Action).every((a: string) => STREAM_READ_ACTIONS.includes(a));
          assert.ok(ok || streamRead, `${name}: ${resources.join(', ')}`);
          if (resources.some((r) => r.includes('/index/'))) assert.deepEqual(s.Action, 'dynamodb:Query', name);
        }
      }
      const sweeperIndexes = statementsOf(eu.functions.sweeper).flatMap((s) => list(s.Resource).map(flat)).filter((r) => r.includes('/index/'));
      assert.deepEqual(sweeperIndexes, [`${TABLE}/index/bySweep`]);
    });

    it('scopes execute-api:ManageConnections to the xmpp stage\'s @connections, by method, in the listed regions only', () => {
      const apiId = eu.getLogicalId(eu.api.node.defaultChild as never);
      const expected: Record<string, string[]> = {
        connect: [],
        disconnect: ['POST'],
        ingest: ['POST', 'DELETE'],
        sweeper: ['GET', 'POST'],
        tenantChanges: ['POST', 'DELETE'],
        admin: ['POST', 'DELETE'],
        bosh: ['POST', 'DELETE'],
        hostMeta: [],
      };
      for (const [name, fn] of Object.entries(eu.functions)) {
        const statements = statementsOf(fn).filter((s) => list(s.Action).includes('execute-api:ManageConnections'));
        const resources = statements.flatMap((s) => list(s.Resource).map(flat)).sort();
        const want = expected[name]
          .flatMap((m) => [
            // This region: this API only.
            `arn:aws:execute-api:eu-west-1:\${AWS::AccountId}:\${${apiId}}/xmpp/${m}/@connections/*`,
            // The other listed region: its API is made by its own stack, so any API id, the same stage.
            `arn:aws:execute-api:us-east-1:\${AWS::AccountId}:*/xmpp/${m}/@connections/*`,
          ])
          .sort();
        assert.deepEqual(resources, want, name);
        for (const s of statements) assert.deepEqual(list(s.Action), ['execute-api:ManageConnections'], name);
      }
    });
  });

  describe('alarms and outputs', () => {
    const alarms = () => Object.values(t.findResources('AWS::CloudWatch::Alarm')).map((a) => a.Properties);
    const metricNames = () =>
      alarms().flatMap((a) => (a.MetricName ? [`${a.Namespace}/${a.MetricName}`] : a.Metrics.filter((m: Json) => m.MetricStat).map((m: Json) => `${m.MetricStat.Metric.Namespace}/${m.MetricStat.Metric.MetricName}`)));

    it('alarm on ingest failures, dead letters and waiting frames, function errors and throttles, API Gateway errors, DynamoDB throttling', () => {
      const names = metricNames();
      const count = (n: string) => names.filter((x) => x === n).length;
      assert.equal(count('XmppEdge/FramesFailed'), 1);
      // The ingest's dead-letter queue, the sweeper's and the tenant-changes mapping's failure queues.
      assert.equal(count('AWS/SQS/ApproximateNumberOfMessagesVisible'), 3);
      assert.equal(count('AWS/SQS/ApproximateAgeOfOldestMessage'), 1);
      assert.equal(count('AWS/Lambda/Errors'), Object.keys(eu.functions).length);
      assert.equal(count('AWS/Lambda/Throttles'), Object.keys(eu.functions).length);
      for (const m of ['IntegrationError', 'ExecutionError', 'ClientError']) assert.equal(count(`AWS/ApiGateway/${m}`), 1, m);
      assert.equal(count('AWS/ApiGateway/5xx'), 1, 'the HTTP API\'s server errors');
      assert.equal(count('AWS/DynamoDB/ReadThrottleEvents'), 2);
      assert.equal(count('AWS/DynamoDB/WriteThrottleEvents'), 2);
      const dlq = alarms().find((a) => a.AlarmDescription.includes('dead-letter queue'))!;
      assert.deepEqual(dlq.Dimensions, [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [eu.getLogicalId(eu.ingest.deadLetterQueue.node.defaultChild as never), 'QueueName'] } }]);
      assert.equal(dlq.Threshold, 1);
      assert.equal(dlq.ComparisonOperator, 'GreaterThanOrEqualToThreshold');
    });

    it('send every alarm to the region\'s topic', () => {
      const topicId = eu.getLogicalId(eu.alarms.topic.node.defaultChild as never);
      for (const a of alarms()) assert.deepEqual(a.AlarmActions, [{ Ref: topicId }], a.AlarmDescription);
      t.resourceCountIs('AWS::SNS::Subscription', 0);
      const withEmail = synth({ alarmEmail: 'ops@example.com', regions: 'eu-west-1', ...NO_BUNDLING });
      try {
        Template.fromStack(withEmail.stacks.regions.get('eu-west-1')!).hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'ops@example.com' });
      } finally {
        rmSync(withEmail.outdir, { recursive: true, force: true });
      }
    });

    it('output the WebSocket URL, the management endpoint, the alarm topic and the dead-letter queue', () => {
      const outputs = t.toJSON().Outputs;
      const apiId = eu.getLogicalId(eu.api.node.defaultChild as never);
      assert.equal(flat(outputs.WebSocketUrl.Value), `wss://\${${apiId}}.execute-api.eu-west-1.\${AWS::URLSuffix}/xmpp`);
      assert.equal(flat(outputs.ManagementEndpoint.Value), `https://\${${apiId}}.execute-api.eu-west-1.\${AWS::URLSuffix}/xmpp`);
      assert.ok(outputs.AlarmTopicArn);
      assert.ok(outputs.DeadLetterQueueUrl);
      const httpId = eu.getLogicalId(eu.http.api.node.defaultChild as never);
      assert.equal(flat(outputs.AdminUrl.Value), `\${${httpId}.ApiEndpoint}/api`);
      assert.equal(flat(outputs.HostMetaUrl.Value), `\${${httpId}.ApiEndpoint}/.well-known/host-meta`);
    });
  });
});

describe('deployment config from context', () => {
  const attempt = (context: Record<string, unknown>) => () => {
    const app = new App({ context: { ...CDK_CONTEXT, ...NO_BUNDLING, ...context }, outdir: mkdtempSync(join(tmpdir(), 'xmpp-edge-cdk-')) });
    try {
      buildApp(app, undefined);
    } finally {
      rmSync(app.outdir, { recursive: true, force: true });
    }
  };
  it('refuses a region that is not a region name, a region listed twice, or none', () => {
    assert.throws(attempt({ regions: 'eu-west-1,Europe' }), /"Europe" is not an AWS region name/);
    assert.throws(attempt({ regions: ['eu-west-1', 'eu-west-1'] }), /lists a region twice/);
    assert.throws(attempt({ regions: ' , ' }), /lists no region/);
  });
  it('refuses a log retention CloudWatch does not offer and a stage name that could widen an ARN', () => {
    assert.throws(attempt({ logRetentionDays: 31 }), /logRetentionDays/);
    assert.throws(attempt({ stageName: 'prod/*' }), /stageName/);
  });
});
