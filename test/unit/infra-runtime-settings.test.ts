// The functions' run-time settings from CDK context (README "Deploy to AWS", "Settings"): the $connect
// cap per source address (connectsPerAddress, connectWindowSeconds) and the usage flush interval
// (usageFlushSeconds) become CONNECTS_PER_ADDRESS, CONNECT_WINDOW_SECONDS and USAGE_FLUSH_SECONDS on the
// functions that read them, checked against one TypeBox schema; on the synthesized template.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { buildApp } from '../../lib/infra/app.ts';
import { DEFAULT_RUNTIME_SETTINGS, readConfig } from '../../lib/infra/config.ts';
import { createLambdaRuntime } from '../../lib/runtime/lambda.ts';

const CDK_CONTEXT = JSON.parse(readFileSync(new URL('../../cdk.json', import.meta.url), 'utf8')).context as Record<string, unknown>;
const outdirs: string[] = [];
after(() => {
  for (const d of outdirs) rmSync(d, { recursive: true, force: true });
});

/** Each function's environment by its key in RegionStack.functions. */
function environments(context: Record<string, unknown>): Record<string, Record<string, string>> {
  const outdir = mkdtempSync(join(tmpdir(), 'xmpp-edge-runtime-'));
  outdirs.push(outdir);
  const app = new App({ context: { ...CDK_CONTEXT, 'aws:cdk:bundling-stacks': [], regions: 'eu-west-1', ...context }, outdir });
  const eu = buildApp(app, undefined).regions.get('eu-west-1')!;
  const fns = Template.fromStack(eu).findResources('AWS::Lambda::Function');
  return Object.fromEntries(Object.entries(eu.functions).map(([name, fn]) => [name, fns[eu.getLogicalId(fn.node.defaultChild as never)].Properties.Environment.Variables]));
}

const read = (context: Record<string, unknown>) => readConfig(new App({ context }).node);

describe('run-time settings from context', () => {
  it('the defaults are the functions\' own, written into their environment', () => {
    assert.deepEqual(DEFAULT_RUNTIME_SETTINGS, { connectsPerAddress: 60, connectWindowSeconds: 60, usageFlushSeconds: 10 });
    const limits = createLambdaRuntime({ TABLE_NAME: 't', LOG_LEVEL: 'silent' }).server.limits;
    assert.deepEqual([limits.connectsPerAddress, limits.connectWindowMs], [DEFAULT_RUNTIME_SETTINGS.connectsPerAddress, DEFAULT_RUNTIME_SETTINGS.connectWindowSeconds * 1000]);
    const env = environments({});
    assert.equal(env.connect.CONNECTS_PER_ADDRESS, '60');
    assert.equal(env.connect.CONNECT_WINDOW_SECONDS, '60');
    assert.equal(env.connect.USAGE_FLUSH_SECONDS, '10');
  });

  it('context values (numbers in cdk.json, digits on the command line) reach the functions that read them, and only those', () => {
    const env = environments({ connectsPerAddress: 0, connectWindowSeconds: '300', usageFlushSeconds: '0' });
    assert.equal(env.connect.CONNECTS_PER_ADDRESS, '0');
    assert.equal(env.connect.CONNECT_WINDOW_SECONDS, '300');
    // Only $connect admits connections; every function that counts usage flushes it.
    for (const [name, vars] of Object.entries(env)) {
      if (name !== 'connect') assert.equal(vars.CONNECTS_PER_ADDRESS, undefined, name);
      if (name !== 'connect') assert.equal(vars.CONNECT_WINDOW_SECONDS, undefined, name);
      assert.equal(vars.USAGE_FLUSH_SECONDS, name === 'hostMeta' ? undefined : '0', name);
    }
    // What the functions make of those values.
    const { CONNECTS_PER_ADDRESS, CONNECT_WINDOW_SECONDS, USAGE_FLUSH_SECONDS } = env.connect;
    const rt = createLambdaRuntime({ TABLE_NAME: 't', LOG_LEVEL: 'silent', CONNECTS_PER_ADDRESS, CONNECT_WINDOW_SECONDS, USAGE_FLUSH_SECONDS });
    assert.deepEqual([rt.server.limits.connectsPerAddress, rt.server.limits.connectWindowMs], [0, 300_000]);
  });

  it('a bad value is a clear error naming the key and what it must be', () => {
    assert.throws(() => read({ connectsPerAddress: 'many' }), /context "connectsPerAddress": "many" .*\(new WebSocket connections accepted from one source address per window/);
    assert.throws(() => read({ connectsPerAddress: -1 }), /context "connectsPerAddress": -1 /);
    assert.throws(() => read({ connectWindowSeconds: 0 }), /context "connectWindowSeconds": 0 .*\(the window of connectsPerAddress, in seconds\)/);
    assert.throws(() => read({ usageFlushSeconds: '2.5' }), /context "usageFlushSeconds": "2.5" /);
    assert.deepEqual(read({ connectsPerAddress: '20', usageFlushSeconds: 30 }).runtime, { connectsPerAddress: 20, connectWindowSeconds: 60, usageFlushSeconds: 30 });
  });
});
