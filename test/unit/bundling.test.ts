// What the deployed bundles leave out (lib/infra/bundling.ts) is loaded at run time, from the runtime's
// AWS SDK in Lambda and from node_modules here; the bundles themselves are built and imported by
// test/unit/infra.test.ts.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { type AddressInfo } from 'node:net';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import { SNSClient } from '@aws-sdk/client-sns';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { BUNDLE_EXTERNALS, BUNDLE_OPTIONS } from '../../lib/infra/bundling.ts';
import { defaultAwsClients } from '../../lib/extensions/event-push/publishers.ts';

test('every package a bundle leaves out is a package of the AWS SDK v3 that resolves outside the bundle', () => {
  // A package's own package.json (some, like nested-clients, export only subpaths such as /sts).
  const lookup = createRequire(import.meta.url).resolve.paths('@aws-sdk/client-sns') ?? [];
  for (const name of BUNDLE_EXTERNALS) {
    assert.match(name, /^@(aws-sdk|smithy)\//, `${name}: only the runtime's SDK is there to resolve it`);
    const pkg = name.split('/').slice(0, 2).join('/');
    assert.ok(lookup.some((dir) => existsSync(join(dir, pkg, 'package.json'))), `${pkg} is not installed`);
    // A subpath (@smithy/core/event-streams) must be one its package exports.
    if (name.split('/').length > 2) assert.ok(import.meta.resolve(name), `${name} does not resolve`);
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

// Built with the deployed bundles' options into a directory with no node_modules, so whatever a bundle
// leaves out (externals) cannot be loaded: a run that needed one fails with ERR_MODULE_NOT_FOUND.
async function bundle(dir: string, name: string, source: string): Promise<{ file: string; inputs: string[] }> {
  const file = join(dir, `${name}.mjs`);
  const { metafile } = await build({ ...BUNDLE_OPTIONS, stdin: { contents: source, resolveDir: ROOT, loader: 'ts' }, outfile: file, metafile: true });
  return { file, inputs: Object.keys(metafile.inputs) };
}

const ROOT = new URL('../../', import.meta.url).pathname;
const run = (args: string[], env: Record<string, string>) =>
  promisify(execFile)(process.execPath, args, { env: { PATH: process.env.PATH ?? '', ...env }, cwd: ROOT, timeout: 30_000 });

test('the DynamoDB and @connections clients work from a bundle without the event stream codec or the credential providers it leaves out', async (t) => {
  const seen: string[] = [];
  const http = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c));
    req.on('end', () => {
      const target = String(req.headers['x-amz-target'] ?? `${req.method} ${req.url}`);
      seen.push(`${target} ${/Credential=bundled\//.test(String(req.headers.authorization)) ? 'signed' : 'unsigned'}`);
      const json = (status: number, value: unknown, type = 'application/x-amz-json-1.0') => {
        res.writeHead(status, { 'content-type': type });
        res.end(JSON.stringify(value));
      };
      if (target === 'DynamoDB_20120810.GetItem') json(200, { Item: { pk: { S: JSON.parse(body).Key.pk.S }, n: { N: '7' }, tags: { SS: ['a', 'b'] } } });
      else if (target === 'DynamoDB_20120810.PutItem') json(400, { __type: 'com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException', message: 'The conditional request failed' });
      else if (target === 'POST /prod/@connections/here') json(200, {}, 'application/json');
      else if (target === 'POST /prod/@connections/gone') {
        res.writeHead(410, { 'content-type': 'application/json', 'x-amzn-errortype': 'GoneException' });
        res.end('{"message":"Gone"}');
      }
      else json(404, { message: `unexpected ${target}` });
    });
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  t.after(() => http.close());
  const endpoint = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  const dir = mkdtempSync(join(tmpdir(), 'xmpp-edge-bundle-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const { file, inputs } = await bundle(dir, 'clients', `
    import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
    import { createDynamoClient } from './lib/store/dynamo.ts';
    import { ManagementApi } from './lib/core/management-api.ts';
    const db = createDynamoClient({ region: 'eu-west-1', endpoint: ${JSON.stringify(endpoint)} });
    const got = await db.send(new GetCommand({ TableName: 't', Key: { pk: 'u#1' } }));
    const put = await db.send(new PutCommand({ TableName: 't', Item: { pk: 'u#1' }, ConditionExpression: 'attribute_not_exists(pk)' })).catch((e) => e.name);
    const api = new ManagementApi();
    const target = (connectionId) => ({ connectionId, endpoint: ${JSON.stringify(`${endpoint}/prod`)} });
    const posted = [await api.post(target('here'), '<message/>'), await api.post(target('gone'), '<message/>')];
    process.stdout.write(JSON.stringify({ item: { ...got.Item, tags: [...got.Item.tags] }, put, posted }));`);
  assert.equal(inputs.filter((i) => /event-streams|thread-stream|@pinojs\/redact/.test(i)).join(), '', 'left out of the bundle');
  // Lambda's credentials come from the environment (lib/infra/bundling.ts).
  const { stdout } = await run([file], { AWS_ACCESS_KEY_ID: 'bundled', AWS_SECRET_ACCESS_KEY: 'bundled', AWS_SESSION_TOKEN: 'token' });
  assert.deepEqual(JSON.parse(stdout), { item: { pk: 'u#1', n: 7, tags: ['a', 'b'] }, put: 'ConditionalCheckFailedException', posted: [true, false] });
  assert.deepEqual(seen, ['DynamoDB_20120810.GetItem signed', 'DynamoDB_20120810.PutItem signed', 'POST /prod/@connections/here signed', 'POST /prod/@connections/gone signed']);
});

test('the bundled Lambda logger writes the same lines as pino unbundled, and a transport fails with a clear error', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'xmpp-edge-bundle-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const script = (lambda: string) => `
    import { pino } from 'pino';
    import { createLambdaLogger } from '${lambda}';
    const log = createLambdaLogger('info');
    log.info({ connection: 'c1', n: 2 }, 'frame in');
    log.debug('not at this level');
    const child = log.child({ component: 'ingest', tenant: 'example.com' });
    const err = new Error('boom', { cause: new TypeError('inner') });
    err.stack = 'Error: boom\\n    at here'; err.cause.stack = 'TypeError: inner\\n    at there';
    child.error({ err, attempt: 1 }, 'post failed');
    const circular = { name: 'loop' }; circular.self = circular;
    child.warn({ circular, big: 10n.toString(), nested: { deep: [1, 'two', null] } });
    // In the bundle only; an absolute path is a target pino need not look up (this file, as good as any).
    if (process.env.TRY_TRANSPORT) {
      try { pino.transport({ target: new URL(import.meta.url).pathname }); } catch (e) { process.stderr.write(e.message); }
    }`;
  const { file } = await bundle(dir, 'logger', script('./lib/runtime/lambda.ts'));
  const bundled = await run([file], { TRY_TRANSPORT: '1' });
  const source = await run(['--import', 'tsx', '--input-type=module', '-e', script(join(ROOT, 'lib/runtime/lambda.ts'))], {});
  const lines = (out: string) => out.trim().split('\n').map((l) => ({ ...JSON.parse(l), time: 0, pid: 0 }));
  assert.equal(lines(bundled.stdout).length, 3);
  assert.deepEqual(lines(bundled.stdout), lines(source.stdout));
  assert.match(bundled.stderr, /pino transports are not in the Lambda bundles/);
});
