// What the deployed bundles leave out (lib/infra/bundling.ts) is loaded at run time, from the runtime's
// AWS SDK in Lambda and from node_modules here; the bundles themselves are built and imported by
// test/unit/infra.test.ts.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { test } from 'node:test';
import { SNSClient } from '@aws-sdk/client-sns';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { BUNDLE_EXTERNALS } from '../../lib/infra/bundling.ts';
import { defaultAwsClients } from '../../lib/extensions/event-push/publishers.ts';

test('every package a bundle leaves out is a package of the AWS SDK v3 that resolves outside the bundle', () => {
  // A package's own package.json (some, like nested-clients, export only subpaths such as /sts).
  const lookup = createRequire(import.meta.url).resolve.paths('@aws-sdk/client-sns') ?? [];
  for (const name of BUNDLE_EXTERNALS) {
    assert.match(name, /^@(aws-sdk|smithy)\//, `${name}: only the runtime's SDK is there to resolve it`);
    assert.ok(lookup.some((dir) => existsSync(join(dir, name, 'package.json'))), `${name} is not installed`);
  }
});

test('event push makes its SNS and EventBridge clients when first asked, one per region', async () => {
  const clients = defaultAwsClients();
  const sns = clients.sns('eu-west-1');
  assert.ok(sns instanceof Promise, 'imported lazily');
  assert.equal(clients.sns('eu-west-1'), sns, 'one client per region');
  const client = await sns;
  assert.ok(client instanceof SNSClient);
  assert.equal(await client.config.region(), 'eu-west-1');
  assert.notEqual(await clients.sns('us-east-1'), client);
  const bus = await clients.eventBridge('us-east-1');
  assert.ok(bus instanceof EventBridgeClient);
  assert.equal(await bus.config.region(), 'us-east-1');
});
