// `xmpp-edge events …` (README "Event push") in-process through runCli against an in-memory dynalite:
// set, show with the secret hidden, clear, dead letters, and the errors an operator gets.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { runCli } from '../../bin/cli.ts';
import { settingBlocksOf } from '../../lib/core/modules.ts';
import { defaultModules } from '../../lib/extensions/index.ts';
import { ensureTable, startDynalite, type LocalDynamo } from '../../lib/local/dynamo-local.ts';
import { createDynamoClient } from '../../lib/store/dynamo.ts';
import { TenantStore } from '../../lib/store/tenants.ts';
import { WebhookStore } from '../../lib/webhooks/store.ts';

const TABLE = 'events-cli-test';

describe('xmpp-edge events', () => {
  let dynamo: LocalDynamo;
  let tenants: TenantStore;
  let events: (...args: string[]) => Promise<{ code: number; stdout: string; stderr: string }>;

  before(async () => {
    dynamo = await startDynalite({ port: 0 });
    await ensureTable(dynamo.endpoint, TABLE);
    const db = createDynamoClient({ endpoint: dynamo.endpoint, localCredentials: true });
    tenants = new TenantStore(db, TABLE, { cacheMs: 0, blocks: settingBlocksOf(defaultModules) });
    await tenants.put({ domain: 'ev.example', enabled: true });
    await new WebhookStore(db, TABLE, 'local').deadLetter(
      { tenant: 'ev.example', source: 'events', id: 'd-1', url: 'https://hooks.example.com/x', body: '{"version":1,"events":[]}', contentType: 'application/json', attempts: 8, firstAttemptAt: 1, lastError: 'status 503' },
      Date.now(),
    );
    events = async (...args) => {
      let stdout = '';
      let stderr = '';
      const env = { ...process.env } as Record<string, string>;
      delete env.EVENT_TARGET_ARNS;
      const code = await runCli(['events', ...args, '--endpoint', dynamo.endpoint, '--table', TABLE], { stdout: { write: (t: string) => (stdout += t) }, stderr: { write: (t: string) => (stderr += t) }, env });
      return { code, stdout, stderr };
    };
  });
  after(() => dynamo.close());

  test('set a webhook (http://127.0.0.1 on a local table), show it with the secret hidden, clear it', async () => {
    const set = await events('set', 'ev.example', '--kinds', 'message/sent,session/opened', '--webhook', 'http://127.0.0.1:9999/hook', '--secret', 'a-long-enough-secret');
    assert.equal(set.code, 0, set.stderr);
    assert.deepEqual(JSON.parse(set.stdout), { kinds: ['message/sent', 'session/opened'], target: { webhook: { url: 'http://127.0.0.1:9999/hook', secret: '(set)' } } });
    assert.deepEqual((await tenants.get('ev.example'))!.events, { kinds: ['message/sent', 'session/opened'], target: { webhook: { url: 'http://127.0.0.1:9999/hook', secret: 'a-long-enough-secret' } } });
    const show = await events('show', 'ev.example');
    assert.equal(JSON.parse(show.stdout).target.webhook.secret, '(set)');
    const all = await events('set', 'ev.example', '--kinds', 'all', '--webhook', 'https://hooks.example.com/x', '--secret', '(set)', '--include-body');
    assert.equal(all.code, 0, all.stderr);
    assert.equal(((await tenants.get('ev.example'))!.events as { kinds: string[] }).kinds.length, 11);
    assert.equal(((await tenants.get('ev.example'))!.events as { target: { webhook: { secret: string } } }).target.webhook.secret, 'a-long-enough-secret');
    const clear = await events('clear', 'ev.example');
    assert.match(clear.stdout, /ev\.example: events cleared/);
    assert.equal((await tenants.get('ev.example'))!.events, undefined);
    assert.match((await events('show', 'ev.example')).stderr, /ev\.example pushes no events/);
  });

  test('another command writing the tenant item on a local table keeps its http://127.0.0.1 events webhook (the same check as the local server)', async () => {
    await tenants.put({ domain: 'evc.example', enabled: true, events: { kinds: ['session/opened'], target: { webhook: { url: 'http://127.0.0.1:9999/hook', secret: 'a-long-enough-secret' } } } });
    let stderr = '';
    const code = await runCli(['component', 'add', 'bot.evc.example', '--secret', 'bot-secret-123', '--endpoint', dynamo.endpoint, '--table', TABLE], { stdout: { write: () => undefined }, stderr: { write: (t: string) => (stderr += t) }, env: { ...process.env } as Record<string, string> });
    assert.equal(code, 0, stderr);
    assert.equal(((await tenants.get('evc.example'))!.components as { domain: string }[])[0].domain, 'bot.evc.example');
  });

  test('clear errors: a bad kind, two targets, a short secret, an ARN off the allow-list, an unknown tenant', async () => {
    const kind = await events('set', 'ev.example', '--kinds', 'message/typed', '--webhook', 'https://h.example/x', '--secret', 'a-long-enough-secret');
    assert.equal(kind.code, 1);
    assert.match(kind.stderr, /events\.kinds\.0: must be one of "message\/sent"/);
    const two = await events('set', 'ev.example', '--kinds', 'all', '--webhook', 'https://h.example/x', '--sns', 'arn:aws:sns:eu-west-1:123456789012:t');
    assert.match(two.stderr, /exactly one target/);
    const short = await events('set', 'ev.example', '--kinds', 'all', '--webhook', 'https://h.example/x', '--secret', 'short');
    assert.match(short.stderr, /events\.target\.webhook\.secret/);
    const arn = await events('set', 'ev.example', '--kinds', 'all', '--sns', 'arn:aws:sns:eu-west-1:123456789012:t');
    assert.equal(arn.code, 1);
    assert.match(arn.stderr, /not on this deployment's list of event targets .*EVENT_TARGET_ARNS/);
    const none = await events('show', 'nope.example');
    assert.equal(none.code, 1);
    assert.match(none.stderr, /no tenant nope\.example/);
    assert.equal((await tenants.get('ev.example'))!.events, undefined, 'nothing written');
  });

  test('dead-letters lists them, one JSON object a line', async () => {
    const r = await events('dead-letters', 'ev.example');
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(lines.map((d) => [d.id, d.attempts, d.lastError]), [['d-1', 8, 'status 503']]);
  });
});
