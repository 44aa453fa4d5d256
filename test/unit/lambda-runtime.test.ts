// The Lambda wiring, as far as it goes without AWS: configuration errors are clear, the server is
// built from the environment, and every entry point in functions/ loads and exports a handler.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { WebSocketRequestContext } from '../../lib/gateway/events.ts';
import { createLambdaRuntime, VERSION } from '../../lib/runtime/lambda.ts';

const ctx = { domainName: 'abc123.execute-api.eu-west-1.amazonaws.com', stage: 'prod' } as WebSocketRequestContext;

test('a missing TABLE_NAME is a clear error', () => {
  assert.throws(() => createLambdaRuntime({}), /TABLE_NAME is not set/);
  assert.throws(() => createLambdaRuntime({ TABLE_NAME: '  ' }), /TABLE_NAME is not set/);
});

test('an unknown LOG_LEVEL is a clear error', () => {
  assert.throws(() => createLambdaRuntime({ TABLE_NAME: 't', LOG_LEVEL: 'verbose' }), /LOG_LEVEL "verbose" is not one of/);
});

test('builds the server and the $connect and $disconnect handlers from the environment', () => {
  const rt = createLambdaRuntime({ TABLE_NAME: 'xmpp-edge-prod', LOG_LEVEL: 'silent', AWS_REGION: 'eu-west-1' });
  assert.equal(rt.table, 'xmpp-edge-prod');
  assert.equal(rt.server.version, JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version);
  assert.equal(rt.server.version, VERSION);
  assert.equal(typeof rt.handlers.connect, 'function');
  assert.equal(typeof rt.handlers.disconnect, 'function');
  assert.deepEqual(Object.keys(rt.handlers).sort(), ['connect', 'disconnect'], '$default is the ingest\'s, not a Lambda proxy');
  // The default extensions are installed (disco answers from their registrations).
  assert.ok(rt.server.registry.saslMechanisms.size > 0);
  // XEP-0114 components connect to the same WebSocket API (README "Components").
  assert.ok(rt.server.registry.streamProtocols.has('xmpp-component'));
});

test('the management endpoint: the event stage by default, MANAGEMENT_ENDPOINT when set', () => {
  const byEvent = createLambdaRuntime({ TABLE_NAME: 't', LOG_LEVEL: 'silent' });
  // The environment given wins over the process's.
  const saved = process.env.MANAGEMENT_ENDPOINT;
  process.env.MANAGEMENT_ENDPOINT = 'https://elsewhere.example.com/prod';
  try {
    assert.equal(byEvent.endpointOf(ctx), 'https://abc123.execute-api.eu-west-1.amazonaws.com/prod');
  } finally {
    if (saved === undefined) delete process.env.MANAGEMENT_ENDPOINT;
    else process.env.MANAGEMENT_ENDPOINT = saved;
  }
  const fixed = createLambdaRuntime({ TABLE_NAME: 't', LOG_LEVEL: 'silent', MANAGEMENT_ENDPOINT: 'https://ws.example.com/prod' });
  assert.equal(fixed.endpointOf(ctx), 'https://ws.example.com/prod');
});

test('each entry point in functions/ loads and exports a handler', async () => {
  const saved = { TABLE_NAME: process.env.TABLE_NAME, LOG_LEVEL: process.env.LOG_LEVEL };
  process.env.TABLE_NAME = 'xmpp-edge-test';
  process.env.LOG_LEVEL = 'silent';
  try {
    for (const name of ['connect', 'disconnect', 'ingest', 'sweeper', 'tenant-changes', 'admin', 'host-meta']) {
      const mod = (await import(`../../functions/${name}.ts`)) as { handler?: unknown };
      assert.equal(typeof mod.handler, 'function', name);
    }
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
});

test('TRACING is true or false; anything else is a clear error', () => {
  assert.throws(() => createLambdaRuntime({ TABLE_NAME: 't', TRACING: 'yes' }), /TRACING "yes" is not true or false/);
  assert.equal(createLambdaRuntime({ TABLE_NAME: 't', LOG_LEVEL: 'silent', TRACING: 'false' }).tracer, undefined);
});

test('one flush ends an invocation: server.flush() runs the modules\' steps, then writes the EMF lines with what they counted', async () => {
  const lines: Record<string, unknown>[] = [];
  const rt = createLambdaRuntime({ TABLE_NAME: 't', LOG_LEVEL: 'silent', AWS_REGION: 'eu-west-1' }, (r) => lines.push(r));
  // A module's deferred work (event push) that counts as it runs, like its failures do.
  let failures = 2;
  rt.server.registry.flushSteps.unshift(async (server) => {
    if (failures) server.metrics.count('EventPushFailures', failures, 'a.example');
    failures = 0;
  });
  await rt.server.flush();
  assert.deepEqual(lines.map((r) => [r.Tenant, r.EventPushFailures]), [['a.example', 2]]);
  // The handlers' wrapper is the same flush: what the handler counted goes out once, nothing twice.
  await rt.invocation(async () => rt.server.metrics.count('Logins', 1, 'b.example'))();
  assert.deepEqual(lines.slice(1).map((r) => [r.Tenant, r.Logins, r.EventPushFailures]), [['b.example', 1, undefined]]);
});
