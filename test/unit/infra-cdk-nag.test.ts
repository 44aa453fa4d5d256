// The security review a platform team runs on what it deploys (issue 16): cdk-nag 3's AwsSolutions and
// Serverless rule packs over the whole CDK app, as `cdk synth` runs them when they are added with
// Validations.of(app).addPlugins(...). Every finding, error or warning, is either fixed or acknowledged
// on the resource it is about with a reason (README "Security review: cdk-nag"), and every
// acknowledgement answers a finding that would otherwise be reported.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { App, Stack, Validations, type Acknowledgment } from 'aws-cdk-lib';
import { AwsSolutionsChecks, ServerlessChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { buildApp } from '../../lib/infra/app.ts';

const CDK_CONTEXT = JSON.parse(readFileSync(new URL('../../cdk.json', import.meta.url), 'utf8')).context as Record<string, unknown>;
/** The rules read templates, not code: no bundling (CDK's own switch, as `cdk deploy STACK` uses it). */
const NO_BUNDLING = { 'aws:cdk:bundling-stacks': [] };

/** Context a team may well deploy with: everything optional switched on, one region, its own logs role. */
const EVERYTHING_ON = {
  regions: 'eu-west-1',
  tracing: 'true',
  alarmEmail: 'ops@example.com',
  domainName: 'xmpp.example.com',
  hostedZoneId: 'Z0123456789ABCDEFGHIJ',
  hostedZoneName: 'example.com',
  healthCheck: 'true',
  apiGatewayLogsRole: 'false',
};

interface Finding {
  rule: string;
  path: string;
  severity: string;
  description: string;
}

function withApp<T>(context: Record<string, unknown>, use: (app: App) => T): T {
  const outdir = mkdtempSync(join(tmpdir(), 'xmpp-edge-nag-'));
  try {
    const app = new App({ context: { ...CDK_CONTEXT, ...NO_BUNDLING, ...context }, outdir });
    buildApp(app, undefined);
    return use(app);
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

const packs = (app: App) => [new AwsSolutionsChecks(app, { verbose: true }), new ServerlessChecks(app, { verbose: true })];

/** Every unacknowledged finding of both packs, errors and warnings alike. */
function findings(app: App): Finding[] {
  return packs(app).flatMap((pack) =>
    pack.validateScope(app).violations.flatMap((v) =>
      v.violatingResources.map((r) => ({ rule: v.ruleName, path: r.constructPath ?? '?', severity: v.severity ?? '?', description: v.description })),
    ),
  );
}

const show = (list: Finding[]) => list.map((f) => `${f.severity} ${f.rule} at ${f.path}: ${f.description}`).join('\n');

describe('cdk-nag (AwsSolutions and Serverless packs)', () => {
  for (const [name, context] of [['cdk.json as it is (two regions)', {}], ['tracing, alarm e-mail, custom domain with health check, one region, no logs role', EVERYTHING_ON]] as const) {
    it(`finds nothing unacknowledged: ${name}`, () => {
      withApp(context, (app) => {
        const left = findings(app);
        assert.deepEqual(left, [], `\n${show(left)}`);
        // And as `cdk synth` runs them: a finding would make synth throw ValidationFailed.
        Validations.of(app).addPlugins(...packs(app));
        app.synth();
      });
    });
  }

  /** Builds the app with acknowledge() recording instead of acknowledging: the raw findings and the acknowledgements. */
  function unacknowledged(context: Record<string, unknown>) {
    const recorded: { scope: IConstruct; ack: Acknowledgment }[] = [];
    const original = Validations.prototype.acknowledge;
    Validations.prototype.acknowledge = function (this: { scope: IConstruct }, ...rules: Acknowledgment[]) {
      for (const ack of rules) recorded.push({ scope: this.scope, ack });
    };
    try {
      return { raw: withApp(context, findings), recorded };
    } finally {
      Validations.prototype.acknowledge = original;
    }
  }
  const covers = (scope: IConstruct, f: Finding) => f.path === scope.node.path || f.path.startsWith(`${scope.node.path}/`);

  it('without the acknowledgements finds only what is acknowledged: the issue\'s other findings are fixed', () => {
    const { raw } = unacknowledged({});
    const rules = new Set(raw.map((f) => f.rule.replace(/\[.*$/, '')));
    for (const fixed of ['AwsSolutions-APIG1', 'Serverless-APIGWAccessLogging', 'Serverless-APIGWDefaultThrottling', 'AwsSolutions-L1',
      'Serverless-LambdaLatestVersion', 'AwsSolutions-SNS3', 'Serverless-LambdaDefaultMemorySize', 'Serverless-EventBusDLQ',
      'Serverless-LambdaAsyncFailureDestination']) {
      assert.ok(!rules.has(fixed), `${fixed} is fixed, not acknowledged:\n${show(raw.filter((f) => f.rule.startsWith(fixed)))}`);
    }
    // AWS managed policies only on the two roles xmpp-edge does not write: CDK's custom-resource provider
    // and API Gateway's account logs role. Every function of ours has its own least-privilege role.
    assert.deepEqual([...new Set(raw.filter((f) => f.rule.startsWith('AwsSolutions-IAM4')).map((f) => f.path.split('/')[1]))].sort(),
      ['AWS679f53fac002430cb0da5b7982bd2287', 'ApiGatewayLogsRole']);
    // The WebSocket routes, the two host-meta routes and the two BOSH routes (POST and its CORS preflight)
    // have no authorizer, in each region; the admin API has IAM.
    assert.deepEqual(raw.filter((f) => f.rule === 'AwsSolutions-APIG4' && f.path.startsWith('XmppEdge-eu-west-1/')).map((f) => f.path.split('/').slice(1, 4).join('/')).sort(),
      ['Http/Api/GET--.well-known--host-meta', 'Http/Api/GET--.well-known--host-meta.json', 'Http/Api/OPTIONS--http-bind', 'Http/Api/POST--http-bind', 'WebSocket/$connect-Route/Resource', 'WebSocket/$default-Route/Resource', 'WebSocket/$disconnect-Route/Resource']);
  });

  for (const [name, context] of [['cdk.json', {}], ['everything on', EVERYTHING_ON]] as const) {
    it(`every acknowledgement answers a finding, on the resource it is about, with a reason (${name})`, (ctx) => {
      const { raw, recorded } = unacknowledged(context);
      assert.ok(recorded.length > 0);
      const rows = new Map<string, Set<string>>();
      for (const { scope, ack } of recorded) {
        const path = scope.node.path;
        assert.ok(raw.some((f) => f.rule === ack.id && covers(scope, f)), `the acknowledgement of ${ack.id} on ${path} answers no finding`);
        assert.ok(!Stack.isStack(scope) && !(scope instanceof App), `${ack.id} is acknowledged on a whole stack (${path}), not on the resource it is about`);
        assert.ok(ack.reason.length >= 100, `${ack.id} on ${path}: a reason a reviewer can check, not "${ack.reason}"`);
        const key = `${ack.id.replace(/\[.*$/, '')} | ${ack.reason}`;
        rows.set(key, (rows.get(key) ?? new Set()).add(path.split('/').slice(1).join('/')));
      }
      for (const f of raw) assert.ok(recorded.some(({ scope, ack }) => ack.id === f.rule && covers(scope, f)), `${f.rule} at ${f.path} is neither fixed nor acknowledged`);
      // README "Security review: cdk-nag" lists these.
      for (const [key, paths] of rows) ctx.diagnostic(`${key.split(' | ')[0]} | ${[...paths].join(', ')} | ${key.split(' | ').slice(1).join(' | ')}`);
    });
  }
});
