// The `xmpp-edge` command: `user`, `tenant` and `token` run in-process through runCli (the program the
// binary runs, with its output and exit status captured) against an in-memory dynalite, checked by
// reading the table; their errors and exit codes. Two smoke tests spawn the real binary: `--help`,
// and `start` from its banner to a clean exit on SIGINT with system-shutdown sent to a logged-in client.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { GetCommand, PutCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { runCli } from '../../bin/cli.ts';
import { verifyPassword, type ScramCredentials } from '../../lib/auth/scram.ts';
import { ensureTable, startDynalite, type LocalDynamo } from '../../lib/local/dynamo-local.ts';
import { createDynamoClient } from '../../lib/store/dynamo.ts';
import { TenantStore } from '../../lib/store/tenants.ts';
import { RawClient } from '../support/harness.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CLI = 'bin/xmpp-edge.js';
const TABLE = 'cli-test';

/** The caller's environment without anything that would point the CLI elsewhere. */
function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ...extra };
  for (const k of ['AWS_REGION', 'AWS_DEFAULT_REGION', 'XMPP_EDGE_DYNAMODB_ENDPOINT', 'XMPP_EDGE_TABLE', 'LOG_LEVEL']) {
    if (!(k in extra)) delete env[k];
  }
  return env;
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** The CLI in this process, as the binary would run it with `args`. */
async function cli(args: string[], env: Record<string, string> = {}): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(args, { stdout: { write: (t: string) => (stdout += t) }, stderr: { write: (t: string) => (stderr += t) }, env: childEnv(env) });
  return { code, stdout, stderr };
}

/** The real binary in a child process. */
function spawnCli(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { cwd: ROOT, env: childEnv(env), timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const { port } = srv.address() as { port: number };
  await new Promise((r) => srv.close(r));
  return port;
}

type Scram = { 'SHA-1': ScramCredentials; 'SHA-256': ScramCredentials };

describe('xmpp-edge user', () => {
  let dynamo: LocalDynamo;
  let db: DynamoDBDocumentClient;
  let user: (...args: string[]) => Promise<Run>;

  const item = async (domain: string, username: string) =>
    (await db.send(new GetCommand({ TableName: TABLE, Key: { pk: `user#${domain}`, sk: username } }))).Item;

  before(async () => {
    dynamo = await startDynalite({ port: 0 });
    await ensureTable(dynamo.endpoint, TABLE);
    db = createDynamoClient({ endpoint: dynamo.endpoint, localCredentials: true });
    const tenants = new TenantStore(db, TABLE);
    await tenants.put({ domain: 'localhost', enabled: true });
    await tenants.put({ domain: 'off.example', enabled: false });
    user = (...args) => cli(['user', ...args, '--endpoint', dynamo.endpoint, '--table', TABLE]);
  });

  after(async () => {
    db.destroy();
    await dynamo.close();
  });

  test('add stores SCRAM-SHA-1 and SCRAM-SHA-256 keys and never the password', async () => {
    const r = await user('add', 'alice@localhost', 'correct horse');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /added alice@localhost/);
    assert.match(r.stdout, new RegExp(`table ${TABLE} at ${dynamo.endpoint}`));

    const stored = await item('localhost', 'alice');
    assert.ok(stored, 'user item written');
    assert.doesNotMatch(JSON.stringify(stored), /correct horse/);
    const scram = stored.scram as Scram;
    for (const hash of ['SHA-1', 'SHA-256'] as const) {
      assert.deepEqual(Object.keys(scram[hash]).sort(), ['iterations', 'salt', 'serverKey', 'storedKey']);
      assert.ok(verifyPassword(hash, scram[hash], 'correct horse'), `${hash} keys match the password`);
    }
  });

  test('add normalizes the address (RFC 7622) and refuses an existing user', async () => {
    const r = await user('add', 'Bob@LocalHost', 'pw1');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /added bob@localhost/);
    assert.ok(await item('localhost', 'bob'));

    const again = await user('add', 'bob@localhost', 'other');
    assert.equal(again.code, 1);
    assert.match(again.stderr, /user bob@localhost already exists/);
    assert.ok(verifyPassword('SHA-256', ((await item('localhost', 'bob'))!.scram as Scram)['SHA-256'], 'pw1'), 'password unchanged');
  });

  test('add refuses a domain that is not a tenant', async () => {
    const r = await user('add', 'carol@example.org', 'pw');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /example\.org is not a tenant/);
    assert.equal(await item('example.org', 'carol'), undefined);
  });

  test('add to a disabled tenant works and warns', async () => {
    const r = await user('add', 'dan@off.example', 'pw');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /off\.example is disabled/);
  });

  test('invalid JIDs and empty passwords are refused', async () => {
    for (const jid of ['a@b@c', 'localhost', 'eve@localhost/phone', '@localhost']) {
      const r = await user('add', jid, 'pw');
      assert.equal(r.code, 1, jid);
      assert.match(r.stderr, /invalid JID/, jid);
    }
    const empty = await user('add', 'eve@localhost', '');
    assert.equal(empty.code, 1);
    assert.match(empty.stderr, /password must not be empty/);
    assert.equal(await item('localhost', 'eve'), undefined);
  });

  test('passwd replaces the keys; the old password stops working', async () => {
    const before = (await item('localhost', 'alice'))!.scram as Scram;
    const r = await user('passwd', 'alice@localhost', 'battery staple');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /password changed for alice@localhost/);
    const now = (await item('localhost', 'alice'))!.scram as Scram;
    for (const hash of ['SHA-1', 'SHA-256'] as const) {
      assert.notEqual(now[hash].salt, before[hash].salt);
      assert.notEqual(now[hash].storedKey, before[hash].storedKey);
      assert.ok(verifyPassword(hash, now[hash], 'battery staple'));
      assert.ok(!verifyPassword(hash, now[hash], 'correct horse'));
    }

    const missing = await user('passwd', 'nobody@localhost', 'x');
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no such user: nobody@localhost/);
    assert.equal(await item('localhost', 'nobody'), undefined, 'passwd does not create users');
  });

  test("list prints a tenant's accounts, one JID per line", async () => {
    const r = await user('list', 'localhost');
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), ['alice@localhost', 'bob@localhost']);

    const other = await user('list', 'off.example');
    assert.deepEqual(other.stdout.trim().split('\n'), ['dan@off.example']);
  });

  test('remove deletes the account, and says so when there is none', async () => {
    const r = await user('remove', 'alice@localhost');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /removed alice@localhost/);
    assert.equal(await item('localhost', 'alice'), undefined);

    const again = await user('remove', 'alice@localhost');
    assert.equal(again.code, 1);
    assert.match(again.stderr, /no such user: alice@localhost/);
    assert.deepEqual((await user('list', 'localhost')).stdout.trim().split('\n'), ['bob@localhost']);
  });

  test('the endpoint and table can come from the environment', async () => {
    const r = await cli(['user', 'list', 'localhost'], { XMPP_EDGE_DYNAMODB_ENDPOINT: dynamo.endpoint, XMPP_EDGE_TABLE: TABLE });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), ['bob@localhost']);
  });

  test('an unreachable DynamoDB is named, with a hint to start the server', async () => {
    const endpoint = `http://127.0.0.1:${await freePort()}`;
    const r = await cli(['user', 'add', 'frank@localhost', 'pw', '--endpoint', endpoint]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`cannot reach DynamoDB at ${endpoint}`));
    assert.match(r.stderr, /npm start/);
  });

  test('a missing table is named', async () => {
    const r = await cli(['user', 'list', 'localhost', '--endpoint', dynamo.endpoint, '--table', 'no-such-table']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /table no-such-table does not exist/);
  });

  test('--help lists the commands (the real binary)', async () => {
    const r = await spawnCli(['--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /start/);
    assert.match(r.stdout, /user/);
    const u = await cli(['user', 'add', '--help']);
    assert.match(u.stdout, /--endpoint <url>/);
  });
});

describe('xmpp-edge tenant and token', () => {
  let dynamo: LocalDynamo;
  let db: DynamoDBDocumentClient;
  let run: (group: string, ...args: string[]) => Promise<Run>;

  before(async () => {
    dynamo = await startDynalite({ port: 0 });
    await ensureTable(dynamo.endpoint, TABLE);
    db = createDynamoClient({ endpoint: dynamo.endpoint, localCredentials: true });
    run = (group, ...args) => cli([group, ...args, '--endpoint', dynamo.endpoint, '--table', TABLE]);
  });

  after(async () => {
    db.destroy();
    await dynamo.close();
  });

  test('tenant add writes the item with login methods, JWT and token settings and labels', async () => {
    const r = await run('tenant', 'add', 'Acme.Example', '--jwt-secret', 's3cret', '--token-secret', 'hmac', '--label', 'plan=gold');
    assert.equal(r.code, 0, r.stderr);
    const tenant = await new TenantStore(db, TABLE, 0).get('acme.example');
    assert.equal(tenant?.enabled, true);
    assert.deepEqual(tenant?.loginMethods, ['jwt', 'token', 'password']);
    assert.equal(tenant?.jwt?.secret, 's3cret');
    assert.equal(tenant?.tokens?.secret, 'hmac');
    assert.deepEqual(tenant?.labels, { plan: 'gold' });
    assert.equal((await run('tenant', 'add', 'acme.example')).code, 1);
    assert.match((await run('tenant', 'add', 'x.example', '--login', 'magic')).stderr, /unknown login method magic/);
  });

  test('tenant add checks its settings with the tenant schema: a bad value names the field and writes nothing', async () => {
    const r = await run('tenant', 'add', 'bad.example', '--max-stanza-bytes', '1k', '--registration', 'maybe', '--jwks-url', 'ftp://keys');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /limits\.maxStanzaBytes \(--max-stanza-bytes\): expected integer/);
    assert.match(r.stderr, /registration \(--registration\): must be one of "open", "closed"/);
    assert.match(r.stderr, /jwt\.jwksUrl \(--jwks-url\)/);
    assert.equal((await db.send(new GetCommand({ TableName: TABLE, Key: { pk: 'tenant#bad.example', sk: 'tenant' } }))).Item, undefined);
    assert.equal((await run('tenant', 'add', 'bad.example', '--max-stanza-bytes', '500')).code, 1, 'below RFC 6120 §13.12');

    const ok = await run('tenant', 'add', 'good.example', '--max-stanza-bytes', '20000', '--registration', 'open', '--sessions-per-user', '3');
    assert.equal(ok.code, 0, ok.stderr);
    const item = (await db.send(new GetCommand({ TableName: TABLE, Key: { pk: 'tenant#good.example', sk: 'tenant' } }))).Item!;
    assert.deepEqual(item.limits, { maxStanzaBytes: 20000, sessionsPerUser: 3 });
    assert.equal(item.registration, 'open');
  });

  test('tenant show warns about fields of a hand-edited item that the server ignores; enable keeps them', async () => {
    await db.send(new PutCommand({ TableName: TABLE, Item: { pk: 'tenant#hand.example', sk: 'tenant', domain: 'hand.example', enabled: false, limits: { maxStanzaBytes: '1k' }, tokens: { secret: 'do-not-print' } } }));
    const shown = await run('tenant', 'show', 'hand.example');
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stderr, /warning: tenant field ignored: limits\.maxStanzaBytes: expected integer/);
    assert.equal(JSON.parse(shown.stdout).limits, undefined);
    assert.doesNotMatch(shown.stderr, /do-not-print/);
    assert.equal((await run('tenant', 'enable', 'hand.example')).code, 0);
    const item = (await db.send(new GetCommand({ TableName: TABLE, Key: { pk: 'tenant#hand.example', sk: 'tenant' } }))).Item!;
    assert.equal(item.enabled, true);
    assert.deepEqual(item.limits, { maxStanzaBytes: '1k' }, 'enable changes only enabled');
  });

  test('tenant list, show, disable, enable and remove', async () => {
    await run('tenant', 'add', 'b.example');
    assert.match((await run('tenant', 'list')).stdout, /^b\.example\tenabled$/m);
    assert.equal((await run('tenant', 'disable', 'b.example')).code, 0);
    assert.equal((await new TenantStore(db, TABLE, 0).get('b.example'))?.enabled, false);
    assert.match((await run('tenant', 'list')).stdout, /^b\.example\tdisabled$/m);
    assert.equal(JSON.parse((await run('tenant', 'show', 'b.example')).stdout).enabled, false);
    assert.equal((await run('tenant', 'enable', 'b.example')).code, 0);
    assert.equal((await new TenantStore(db, TABLE, 0).get('b.example'))?.enabled, true);
    const removed = await run('tenant', 'remove', 'b.example', '--purge');
    assert.equal(removed.code, 0, removed.stderr);
    assert.equal(await new TenantStore(db, TABLE, 0).get('b.example'), undefined);
    const job = await db.send(new GetCommand({ TableName: TABLE, Key: { pk: 'purge', sk: 'b.example' } }));
    assert.equal(job.Item?.domain, 'b.example');
    assert.equal((await run('tenant', 'remove', 'b.example')).code, 1);
    assert.equal((await run('tenant', 'show', 'nope.example')).code, 1);
  });

  test("tenant add refuses a domain the admin API refuses, and one at another tenant's MUC address, naming why", async () => {
    for (const [domain, why] of [['a/b', /"\/" starts the resourcepart/], ['localhost:5280', /port/], ['[::1]', /IP address/], ['a..b', /empty label/]] as const) {
      const r = await run('tenant', 'add', domain);
      assert.equal(r.code, 1, domain);
      assert.match(r.stderr, why, domain);
    }
    assert.equal((await run('tenant', 'add', 'host.example')).code, 0);
    const taken = await run('tenant', 'add', 'conference.host.example');
    assert.equal(taken.code, 1);
    assert.match(taken.stderr, /conference\.host\.example is the address of the muc service of tenant host\.example; nothing written/);
    assert.equal(await new TenantStore(db, TABLE, 0).get('conference.host.example'), undefined);
  });

  test('tenant show prints secrets as "(set)"', async () => {
    assert.equal((await run('tenant', 'add', 'shh.example', '--jwt-secret', 'jwt-s3cret', '--token-secret', 'tok-s3cret')).code, 0);
    const shown = await run('tenant', 'show', 'shh.example');
    assert.equal(shown.code, 0, shown.stderr);
    assert.doesNotMatch(shown.stdout, /s3cret/);
    assert.equal(JSON.parse(shown.stdout).jwt.secret, '(set)');
    assert.equal(JSON.parse(shown.stdout).tokens.secret, '(set)');
  });

  test('token revoke bumps the account\'s token sequence number', async () => {
    await run('tenant', 'add', 'tok.example');
    assert.equal((await run('user', 'add', 'ty@tok.example', 'pw')).code, 0);
    const before = (await db.send(new GetCommand({ TableName: TABLE, Key: { pk: 'user#tok.example', sk: 'ty' } }))).Item!;
    const r = await run('token', 'revoke', 'ty@tok.example');
    assert.equal(r.code, 0, r.stderr);
    const after = (await db.send(new GetCommand({ TableName: TABLE, Key: { pk: 'user#tok.example', sk: 'ty' } }))).Item!;
    assert.ok(after.tokenSeq > (before.tokenSeq ?? before.createdAt));
    assert.equal((await run('token', 'revoke', 'nobody@tok.example')).code, 1);
  });
});

describe('xmpp-edge start', () => {
  test('prints where it listens, serves users added by the CLI, and exits 0 on SIGINT', async (t) => {
    const child = spawn(
      process.execPath,
      [CLI, 'start', '--memory', '--port', '0', '--dynamo-port', '0', '--domain', 'localhost', 'example.com', '--log-level', 'silent'],
      { cwd: ROOT, env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    t.after(() => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no banner; stdout: ${stdout} stderr: ${stderr}`)), 20_000);
      child.stdout.on('data', (d) => {
        stdout += d;
        if (stdout.includes('Ctrl-C')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.on('exit', () => reject(new Error(`exited early; stdout: ${stdout} stderr: ${stderr}`)));
    });

    const url = stdout.match(/ws:\/\/127\.0\.0\.1:(\d+)\/xmpp-websocket/);
    assert.ok(url, stdout);
    assert.notEqual(url[1], '0', 'the real port is printed');
    const endpoint = stdout.match(/http:\/\/127\.0\.0\.1:\d+/)?.[0];
    assert.ok(endpoint && !endpoint.endsWith(':0'), stdout);
    assert.match(stdout, /Admin API\s+http:\/\/127\.0\.0\.1:\d+\/api\s+\(Authorization: Bearer \S+\)/);
    assert.match(stdout, /BOSH\s+http:\/\/127\.0\.0\.1:\d+\/http-bind\n/);
    assert.match(stdout, /in memory/);
    assert.match(stdout, /Tenants\s+localhost, example\.com/);
    // The call demo (README "Call demo") is served by `xmpp-edge start`, its script bundled on request.
    const demo = stdout.match(/Call demo\s+(http:\/\/127\.0\.0\.1:\d+\/demo\/)/)?.[1];
    assert.equal(demo, `http://127.0.0.1:${url[1]}/demo/`, stdout);
    assert.equal((await fetch(demo!)).status, 200);
    const script = await fetch(`${demo}app.js`);
    assert.equal(script.status, 200);
    assert.ok((await script.text()).includes('urn:xmpp:jingle-message:0'));
    assert.match(stdout, new RegExp(`npx xmpp-edge user add alice@localhost <password> --endpoint ${endpoint}`));

    const added = await cli(['user', 'add', 'zoe@example.com', 'pw', '--endpoint', endpoint!]);
    assert.equal(added.code, 0, added.stderr);
    const client = await RawClient.connect(url[0]);
    await client.login('zoe', 'pw', 'laptop', 'example.com');

    child.kill('SIGINT');
    // RFC 6120 §4.9.3.20
    const error = await client.next((el) => el.name === 'stream:error', 10_000);
    assert.ok(error.getChild('system-shutdown'), error.toString());
    assert.equal(await exited, 0, stderr);
    await client.closed;
  });
});
