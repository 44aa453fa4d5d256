// Event push's IAM (README "Event push"), on the synthesized template: the functions that publish
// events may sns:Publish / events:PutEvents to exactly the topics and buses of the eventTargetArns
// context, get the list as EVENT_TARGET_ARNS, and nothing at all without it; a malformed ARN stops synth.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { buildApp } from '../../lib/infra/app.ts';

type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any -- CloudFormation JSON
const CDK_CONTEXT = JSON.parse(readFileSync(new URL('../../cdk.json', import.meta.url), 'utf8')).context as Record<string, unknown>;
const NO_BUNDLING = { 'aws:cdk:bundling-stacks': [] };
const TOPIC = 'arn:aws:sns:eu-west-1:123456789012:xmpp-events';
const FIFO = 'arn:aws:sns:us-east-1:123456789012:xmpp-events.fifo';
const BUS = 'arn:aws:events:eu-west-1:123456789012:event-bus/xmpp';
const list = <T>(v: T | T[]): T[] => (Array.isArray(v) ? v : [v]);

function build(context: Record<string, unknown>) {
  const app = new App({ context: { ...CDK_CONTEXT, ...NO_BUNDLING, ...context }, outdir: mkdtempSync(join(tmpdir(), 'xmpp-edge-cdk-')) });
  const stacks = buildApp(app, undefined);
  const eu = stacks.regions.get('eu-west-1')!;
  const t = Template.fromStack(eu);
  const statementsOf = (fn: { role?: { node: { defaultChild?: unknown } } }): Json[] => {
    const roleId = eu.getLogicalId(fn.role!.node.defaultChild as never);
    return Object.values(t.findResources('AWS::IAM::Policy'))
      .filter((p) => p.Properties.Roles.some((r: Json) => r.Ref === roleId))
      .flatMap((p) => p.Properties.PolicyDocument.Statement);
  };
  const publishing = (fn: Parameters<typeof statementsOf>[0]) =>
    statementsOf(fn)
      .filter((s) => list(s.Action).some((a: string) => a.startsWith('sns:') || a.startsWith('events:')))
      .map((s) => [s.Action, list(s.Resource)]);
  const envOf = (fn: { node: { defaultChild?: unknown } }) => {
    const id = eu.getLogicalId(fn.node.defaultChild as never);
    return t.findResources('AWS::Lambda::Function')[id].Properties.Environment?.Variables ?? {};
  };
  return { eu, publishing, envOf };
}

describe('event push targets in the region stack', () => {
  it('publishers may publish to exactly the listed topics and buses; the other functions to nothing', () => {
    const { eu, publishing, envOf } = build({ eventTargetArns: [TOPIC, FIFO, BUS].join(',') });
    const f = eu.functions;
    for (const fn of [f.ingest, f.disconnect, f.sweeper, f.tenantChanges, f.admin]) {
      assert.deepEqual(publishing(fn), [
        ['sns:Publish', [TOPIC, FIFO]],
        ['events:PutEvents', [BUS]],
      ]);
      assert.equal(envOf(fn).EVENT_TARGET_ARNS, [TOPIC, FIFO, BUS].join(','));
    }
    // $connect publishes no events (no session yet); host-meta has no server at all.
    assert.deepEqual(publishing(f.connect), []);
    assert.deepEqual(publishing(f.hostMeta), []);
    assert.equal(envOf(f.connect).EVENT_TARGET_ARNS, undefined);
  });

  it('without the context no function may publish anywhere, and none is told of a target', () => {
    const { eu, publishing, envOf } = build({});
    for (const fn of Object.values(eu.functions)) assert.deepEqual(publishing(fn), []);
    assert.equal(envOf(eu.functions.ingest).EVENT_TARGET_ARNS, '');
  });

  it('accepts the context as a JSON list too; a value that is no topic or bus ARN stops the synth with its name', () => {
    const { eu, publishing } = build({ eventTargetArns: JSON.stringify([BUS]) });
    assert.deepEqual(publishing(eu.functions.ingest), [['events:PutEvents', [BUS]]]);
    assert.throws(() => build({ eventTargetArns: `${TOPIC},arn:aws:sqs:eu-west-1:123456789012:q` }), /context "eventTargetArns": "arn:aws:sqs:eu-west-1:123456789012:q" is neither an SNS topic ARN nor an EventBridge event bus ARN/);
    assert.throws(() => build({ eventTargetArns: '*' }), /"\*" is neither/);
  });
});
