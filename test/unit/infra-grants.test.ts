// Least privilege that still works: the real handlers run a session's life on dynalite behind the local
// gateway, every DynamoDB and @connections call is recorded with the route (function) that made it,
// and each call must be allowed by that function's IAM policy in the synthesized template. A grant too
// narrow fails here instead of as AccessDenied after a deploy; a grant too wide fails in infra.test.ts.
import assert from 'node:assert/strict';
import { AsyncLocalStorage } from 'node:async_hooks';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { pino } from 'pino';
import { addUser } from '../../lib/core/accounts.ts';
import { CallCounter } from '../../lib/store/call-counter.ts';
import { ManagementApi } from '../../lib/core/management-api.ts';
import { XmppServer } from '../../lib/core/server.ts';
import { defaultModules } from '../../lib/extensions/index.ts';
import type { WebSocketHandler } from '../../lib/gateway/events.ts';
import { createIngestHandler } from '../../lib/gateway/ingest.ts';
import { LocalGateway } from '../../lib/gateway/local-gateway.ts';
import { createWebSocketHandlers } from '../../lib/gateway/websocket-handlers.ts';
import { sweepAndPurge } from '../../functions/sweeper.ts';
import { closeTenantsOf } from '../../functions/tenant-changes.ts';
import { serveAdmin } from '../../functions/admin.ts';
import { type AdminApi, createAdminApi } from '../../lib/admin/api.ts';
import { TenantPurger, purgePlanOf } from '../../lib/admin/purge.ts';
import type { HttpApiEvent } from '../../lib/runtime/http-api.ts';
import { buildApp } from '../../lib/infra/app.ts';
import { ensureTable, startDynalite, type LocalDynamo } from '../../lib/local/dynamo-local.ts';
import { createDynamoClient } from '../../lib/store/dynamo.ts';
import { FrameClaimStore, frameClaimsTableDefinition } from '../../lib/store/frame-dedup.ts';
import { TenantStore } from '../../lib/store/tenants.ts';
import { RawClient, until } from '../support/harness.ts';

/** The functions of the region stack, and `setup` for what an operator does by hand (not held against any grant). */
type Role = 'connect' | 'ingest' | 'disconnect' | 'sweeper' | 'tenantChanges' | 'admin' | 'setup';
type FunctionRole = Exclude<Role, 'setup'>;
interface Call {
  role: Role;
  /** dynamodb:GetItem, dynamodb:Query@bySweep, execute-api:POST, … */
  permission: string;
}

const role = new AsyncLocalStorage<Role>();

/** Records each SDK call with the function it was made for (the route whose handler is running). */
class RecordingCounter extends CallCounter {
  calls: Call[] = [];
  override attach(client: unknown, service: string): void {
    super.attach(client, service);
    (client as { middlewareStack: { add: Function } }).middlewareStack.add(
      (next: (args: unknown) => Promise<unknown>, context: { commandName?: string }) => async (args: { input?: { IndexName?: string } }) => {
        const current = role.getStore();
        if (!current) throw new Error(`${context.commandName} made outside any function`);
        this.calls.push({ role: current, permission: permissionOf(service, context.commandName ?? '?', args.input?.IndexName) });
        return next(args);
      },
      { step: 'initialize', name: 'grantRecorder' },
    );
  }
}

function permissionOf(service: string, command: string, index?: string): string {
  const name = command.replace(/Command$/, '');
  if (service === 'management') return `execute-api:${{ PostToConnection: 'POST', DeleteConnection: 'DELETE', GetConnection: 'GET' }[name] ?? name}`;
  // Document-client commands (Get, Put, BatchGet, …) are the item actions of the same name.
  const action = /^(Get|Put|Update|Delete|BatchGet|BatchWrite)$/.test(name) ? `${name}Item` : name;
  return `dynamodb:${action}${index ? `@${index}` : ''}`;
}

/**
 * What each function's policy allows, in the same terms, read from the synthesized stack of `region`:
 * eu-west-1 is the table's home region (its sweeper purges tenants), us-east-1 is not.
 */
function grantsFromTemplate(region: 'eu-west-1' | 'us-east-1' = 'eu-west-1'): Record<FunctionRole, Set<string>> {
  const context = JSON.parse(readFileSync(new URL('../../cdk.json', import.meta.url), 'utf8')).context;
  // The policies do not depend on the bundles; skip bundling (infra.test.ts covers it).
  const app = new App({ context: { ...context, regions: 'eu-west-1,us-east-1', 'aws:cdk:bundling-stacks': [] }, outdir: mkdtempSync(join(tmpdir(), 'xmpp-edge-cdk-')) });
  try {
    const stack = buildApp(app, undefined).regions.get(region)!;
    const t = Template.fromStack(stack);
    const policies = Object.values(t.findResources('AWS::IAM::Policy'));
    const out = {} as Record<FunctionRole, Set<string>>;
    for (const [name, fn] of Object.entries(stack.functions) as [FunctionRole, (typeof stack.functions)['connect']][]) {
      const roleId = stack.getLogicalId(fn.role!.node.defaultChild as never);
      const allowed = new Set<string>();
      for (const p of policies.filter((p) => p.Properties.Roles.some((r: { Ref: string }) => r.Ref === roleId))) {
        for (const s of p.Properties.PolicyDocument.Statement) {
          for (const action of [s.Action].flat() as string[]) {
            for (const resource of [s.Resource].flat().map((r) => JSON.stringify(r))) {
              if (action === 'execute-api:ManageConnections') {
                // This region's API (a Ref); the other region's are granted alike and checked in infra.test.ts.
                const method = /\/xmpp\/(POST|GET|DELETE)\/@connections/.exec(resource)?.[1];
                if (method && resource.includes(`execute-api:${region}:`)) allowed.add(`execute-api:${method}`);
              } else if (action.startsWith('dynamodb:') && resource.includes('table/xmpp-edge')) {
                const index = /table\/xmpp-edge\/index\/(\w+)/.exec(resource)?.[1];
                allowed.add(index ? `${action}@${index}` : action);
              }
            }
          }
        }
      }
      out[name] = allowed;
    }
    return out;
  } finally {
    rmSync(app.outdir, { recursive: true, force: true });
  }
}

describe('IAM grants cover what the handlers do', () => {
  let dynamo: LocalDynamo;
  let gateway: LocalGateway;
  let server: XmppServer;
  const counter = new RecordingCounter();
  /** Connections whose $disconnect API Gateway "loses", so the sweeper has to end them. */
  const lostDisconnects = new Set<string>();
  let url = '';
  let claimsDb: ReturnType<typeof createDynamoClient>;

  before(async () => {
    dynamo = await startDynalite({ port: 0 });
    await ensureTable(dynamo.endpoint, 'xmpp-edge');
    const db = createDynamoClient({ endpoint: dynamo.endpoint, localCredentials: true, counter });
    server = new XmppServer({
      db,
      table: 'xmpp-edge',
      management: new ManagementApi({ localCredentials: true, counter }),
      logger: pino({ level: 'silent' }),
      modules: defaultModules,
      version: 'test',
    });
    await role.run('setup', async () => {
      // Set-up done by an admin, not by any function: not held against the grants.
      await new TenantStore(db, 'xmpp-edge').put({ domain: 'localhost', enabled: true, createdAt: Date.now() });
      for (const u of ['alice', 'bob', 'carol']) await addUser(server.users, `${u}@localhost`, 'secret');
    });
    counter.calls = [];
    const h = createWebSocketHandlers(server, (ctx) => `http://${ctx.domainName}/${ctx.stage}`);
    const as = (r: Role, fn: WebSocketHandler): WebSocketHandler => (event) => role.run(r, () => fn(event));
    // The frame claims go to their own table on an unrecorded client: their grant (PutItem and DeleteItem
    // on the claims table only) is checked in infra.test.ts; here the grants on the main table are.
    await ensureTable(dynamo.endpoint, 'frame-claims', frameClaimsTableDefinition);
    claimsDb = createDynamoClient({ endpoint: dynamo.endpoint, localCredentials: true });
    const ingest = createIngestHandler(
      {
        processor: server,
        claims: new FrameClaimStore(claimsDb, 'frame-claims'),
        endpointOf: (e) => `http://${e.domainName}/${e.stage}`,
        log: pino({ level: 'silent' }),
      },
      () => {},
    );
    gateway = new LocalGateway({
      port: 0,
      ingest: (event) => role.run('ingest', () => ingest(event)),
      handlers: {
        connect: as('connect', h.connect),
        disconnect: as('disconnect', async (event) => (lostDisconnects.has(event.requestContext.connectionId) ? { statusCode: 200 } : h.disconnect(event))),
      },
      logger: pino({ level: 'silent' }),
    });
    ({ url } = await gateway.start());
  });

  after(async () => {
    await gateway.stop();
    claimsDb.destroy();
    await dynamo.close();
  });

  it('for a session\'s whole life: connect, login, roster, presence, chat, offline, conflict, stream error, disconnect, sweep', async (t) => {
    const presence = `<presence xmlns="jabber:client"/>`;
    const alice = await RawClient.connect(url);
    const bob = await RawClient.connect(url);
    await alice.login('alice', 'secret', 'phone');
    await bob.login('bob', 'secret', 'laptop');
    // Initial presence, then subscriptions both ways (RFC 6121 §3).
    alice.send(presence);
    bob.send(presence);
    alice.send(`<iq xmlns="jabber:client" type="set" id="r1"><query xmlns="jabber:iq:roster"><item jid="bob@localhost"/></query></iq>`);
    await alice.next((el) => el.name === 'iq' && el.attrs.id === 'r1');
    alice.send(`<presence xmlns="jabber:client" to="bob@localhost" type="subscribe"/>`);
    await bob.next((el) => el.name === 'presence' && el.attrs.type === 'subscribe');
    bob.send(`<presence xmlns="jabber:client" to="alice@localhost" type="subscribed"/>`);
    bob.send(`<presence xmlns="jabber:client" to="alice@localhost" type="subscribe"/>`);
    await alice.next((el) => el.name === 'presence' && el.attrs.type === 'subscribe');
    alice.send(`<presence xmlns="jabber:client" to="bob@localhost" type="subscribed"/>`);
    alice.send(`<iq xmlns="jabber:client" type="get" id="r2"><query xmlns="jabber:iq:roster"/></iq>`);
    const roster = await alice.next((el) => el.name === 'iq' && el.attrs.id === 'r2');
    assert.equal(roster.getChild('query')?.getChild('item')?.attrs.subscription, 'both');
    // Chat, and a message to an account that is offline.
    alice.send(`<message xmlns="jabber:client" to="bob@localhost" type="chat" id="m1"><body>hi</body></message>`);
    await bob.next((el) => el.name === 'message' && el.attrs.id === 'm1');
    alice.send(`<message xmlns="jabber:client" to="carol@localhost" type="chat" id="m2"><body>later</body></message>`);
    alice.send(`<iq xmlns="jabber:client" type="get" id="p1" to="localhost"><ping xmlns="urn:xmpp:ping"/></iq>`);
    await alice.next((el) => el.name === 'iq' && el.attrs.id === 'p1');
    // Carol logs in and receives it.
    const carol = await RawClient.connect(url);
    await carol.login('carol', 'secret', 'tablet');
    carol.send(presence);
    await carol.next((el) => el.name === 'message' && el.attrs.id === 'm2');
    // A second login with the same full JID replaces the first (RFC 6120 §7.7.2.2: conflict).
    const alice2 = await RawClient.connect(url);
    await alice2.login('alice', 'secret', 'phone');
    await alice.closed;
    alice2.send(presence);
    await gateway.idle();

    // Alice's network goes and API Gateway loses her $disconnect: the sweeper ends her session, and Bob
    // (subscribed to her presence) is told she is unavailable.
    const lost = gateway.connectionIds().find((id) => server.cachedSession(id)?.jid.local === 'alice')!;
    lostDisconnects.add(lost);
    alice2.ws.terminate();
    await until('the gateway to see the socket close', () => !gateway.connectionIds().includes(lost), () => gateway.connectionIds());
    await gateway.idle();
    const swept = await role.run('sweeper', () => server.sweep(Date.now() + server.limits.connectionCheckMs + 60_000));
    assert.equal(swept.ended, 1, 'the sweeper ended the connection whose $disconnect was lost');
    await bob.next((el) => el.name === 'presence' && el.attrs.type === 'unavailable' && el.attrs.from === 'alice@localhost/phone');

    // A malformed frame: a stream error, and the server closes the connection.
    bob.send('<message xmlns="jabber:client"><body>oops</message>');
    await bob.closed;
    carol.ws.close();
    await carol.closed;
    await gateway.idle();

    // The scenario reached every function and the calls that matter for the grants.
    assert.ok(used('connect').includes('dynamodb:PutItem'));
    for (const p of ['dynamodb:Query', 'dynamodb:UpdateItem', 'execute-api:POST', 'execute-api:DELETE']) assert.ok(used('ingest').includes(p), `ingest: ${p}`);
    // $disconnect turns the connection item into a tombstone (one UpdateItem), not a delete.
    assert.ok(used('disconnect').includes('dynamodb:UpdateItem'));
    for (const p of ['dynamodb:Query@bySweep', 'execute-api:GET', 'execute-api:POST']) assert.ok(used('sweeper').includes(p), `sweeper: ${p}`);

    assertGranted(t, ['connect', 'ingest', 'disconnect', 'sweeper']);
    // Sweeping is the same in a region that does not purge.
    assertGranted(t, ['sweeper'], 'us-east-1');
  });

  /** One admin API request as the admin function gets it from the HTTP API (IAM checked, no token). */
  let adminApi: AdminApi;
  const admin = async (method: string, path: string, body?: unknown) => {
    adminApi ??= createAdminApi(server, { token: undefined, purger: new TenantPurger(server.db, server.table, purgePlanOf(server)) });
    const event: HttpApiEvent = {
      version: '2.0',
      routeKey: 'ANY /api/{proxy+}',
      rawPath: path.split('?')[0],
      rawQueryString: path.split('?')[1] ?? '',
      headers: { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      isBase64Encoded: false,
      requestContext: { http: { method, path }, stage: '$default' },
    };
    const out = await role.run('admin', () => serveAdmin(adminApi, event));
    assert.ok(out.statusCode < 300, `${method} ${path}: ${out.statusCode} ${out.body}`);
    return out.body ? JSON.parse(out.body) : undefined;
  };
  const MUC = 'http://jabber.org/protocol/muc';
  const join = async (c: RawClient, nick: string) => {
    c.send(`<presence xmlns="jabber:client" to="lobby@conference.acme.test/${nick}"><x xmlns="${MUC}"/></presence>`);
    await c.next((el) => el.name === 'presence' && el.attrs.from === `lobby@conference.acme.test/${nick}`);
  };

  it('when a tenant is disabled: the tenant-changes function closes its sessions (and their room occupancy) in this region', async (t) => {
    counter.calls = [];
    const presence = `<presence xmlns="jabber:client"/>`;
    // An operator sets up a tenant, accounts and a room through the admin API.
    await admin('POST', '/api/tenants', { domain: 'acme.test' });
    for (const u of ['dave', 'erin', 'frank']) await admin('POST', '/api/tenants/acme.test/users', { username: u, password: 'secret' });
    await admin('PATCH', '/api/tenants/acme.test', { labels: { plan: 'test' } });
    await admin('POST', '/api/tenants/acme.test/rooms', { name: 'lobby' });
    await admin('GET', '/api/tenants');
    await admin('GET', '/api/tenants/acme.test/users');
    await admin('GET', '/api/tenants/acme.test/rooms');
    const dave = await RawClient.connect(url);
    const erin = await RawClient.connect(url);
    await dave.login('dave', 'secret', 'desk', 'acme.test');
    await erin.login('erin', 'secret', 'phone', 'acme.test');
    // Contacts of each other, so ending one session tells the other (what the function's grants must cover).
    for (const [a, b] of [[dave, 'erin'], [erin, 'dave']] as const) {
      a.send(`<iq xmlns="jabber:client" type="set" id="r-${b}"><query xmlns="jabber:iq:roster"><item jid="${b}@acme.test"/></query></iq>`);
      await a.next((el) => el.name === 'iq' && el.attrs.id === `r-${b}`);
    }
    dave.send(presence);
    erin.send(presence);
    dave.send(`<presence xmlns="jabber:client" to="erin@acme.test" type="subscribe"/>`);
    await erin.next((el) => el.name === 'presence' && el.attrs.type === 'subscribe');
    erin.send(`<presence xmlns="jabber:client" to="dave@acme.test" type="subscribed"/>`);
    erin.send(`<presence xmlns="jabber:client" to="dave@acme.test" type="subscribe"/>`);
    await dave.next((el) => el.name === 'presence' && el.attrs.type === 'subscribe');
    dave.send(`<presence xmlns="jabber:client" to="erin@acme.test" type="subscribed"/>`);
    await join(dave, 'dave');
    await join(erin, 'erin');
    // Frank is in the room too, and leaves by closing his socket ($disconnect ends his occupancy).
    const frank = await RawClient.connect(url);
    await frank.login('frank', 'secret', 'web', 'acme.test');
    await join(frank, 'frank');
    await gateway.idle();
    const frankId = gateway.connectionIds().find((id) => server.cachedSession(id)?.jid.local === 'frank')!;
    frank.ws.close();
    await frank.closed;
    // The gateway sees the close a moment after the client does, then queues $disconnect.
    await until('the gateway to see the close', () => !gateway.connectionIds().includes(frankId), () => gateway.connectionIds());
    await gateway.idle();
    assert.ok(used('disconnect').includes('dynamodb:UpdateItem'), 'frank\'s $disconnect ran');

    // Backend operations: list sessions, send a stanza as the server, kick, revoke tokens.
    const { sessions } = await admin('GET', '/api/tenants/acme.test/sessions');
    assert.equal(sessions.length, 2);
    await admin('POST', '/api/tenants/acme.test/stanzas', { stanza: `<message to="dave@acme.test" type="headline" id="n1"><body>maintenance at noon</body></message>` });
    await dave.next((el) => el.name === 'message' && el.attrs.id === 'n1');
    const frank2 = await RawClient.connect(url);
    await frank2.login('frank', 'secret', 'web', 'acme.test');
    assert.deepEqual(await admin('DELETE', '/api/tenants/acme.test/users/frank/sessions'), { closed: 1 });
    await frank2.closed;
    await admin('POST', '/api/tenants/acme.test/users/frank/tokens/revoke');
    await gateway.idle();

    // The admin disables the tenant; the table's stream hands the function this record.
    await admin('POST', '/api/tenants/acme.test/disable');
    const keys = { pk: { S: 'tenant#acme.test' }, sk: { S: 'tenant' } };
    const record = { eventName: 'MODIFY', dynamodb: { Keys: keys, NewImage: { ...keys, domain: { S: 'acme.test' }, enabled: { BOOL: false } }, OldImage: { ...keys, enabled: { BOOL: true } }, SequenceNumber: '1' } };
    const result = await role.run('tenantChanges', () => closeTenantsOf({ Records: [record] }, server));
    assert.deepEqual(result.batchItemFailures, []);
    for (const c of [dave, erin]) {
      await c.next((el) => el.name === 'stream:error' && !!el.getChild('host-gone'));
      await c.closed;
    }
    await gateway.idle();
    for (const p of ['dynamodb:Query@byTenant', 'dynamodb:DeleteItem', 'execute-api:POST', 'execute-api:DELETE']) assert.ok(used('tenantChanges').includes(p), `tenantChanges: ${p}`);
    for (const p of ['dynamodb:Query@byTenant', 'dynamodb:PutItem', 'execute-api:POST', 'execute-api:DELETE']) assert.ok(used('admin').includes(p), `admin: ${p}`);
    assertGranted(t, ['connect', 'ingest', 'disconnect', 'tenantChanges', 'admin']);
  });

  it('when a tenant is deleted with purge: the home region\'s sweeper purges its accounts, rosters and sessions', async (t) => {
    counter.calls = [];
    await admin('DELETE', '/api/tenants/acme.test?purge=true');
    assert.equal((await admin('GET', '/api/tenants/acme.test/purge')).state, 'pending');
    const purger = new TenantPurger(server.db, server.table, purgePlanOf(server));
    const result = await role.run('sweeper', () => sweepAndPurge({ server }, purger, { getRemainingTimeInMillis: () => 50_000 }));
    assert.equal(result.purgesPending, 1);
    await role.run('setup', async () => {
      assert.equal(await purger.status('acme.test'), undefined, 'the purge finished');
      assert.deepEqual(await server.users.list('acme.test'), []);
    });
    for (const p of ['dynamodb:BatchWriteItem', 'dynamodb:PutItem', 'dynamodb:DeleteItem', 'dynamodb:Query']) assert.ok(used('sweeper').includes(p), `sweeper: ${p}`);
    assertGranted(t, ['sweeper', 'admin']);
    // A region that is not the table's home does not purge, and is not allowed the purge's batch
    // writes (PutItem it has: a stream-managed session it ends may leave messages for offline storage).
    const other = grantsFromTemplate('us-east-1').sweeper;
    assert.ok(!other.has('dynamodb:BatchWriteItem'), [...other].join(' '));
  });

  const used = (r: Role) => [...new Set(counter.calls.filter((c) => c.role === r).map((c) => c.permission))].sort();
  function assertGranted(t: { diagnostic(message: string): void }, roles: FunctionRole[], region: 'eu-west-1' | 'us-east-1' = 'eu-west-1') {
    for (const r of roles) t.diagnostic(`${r} used ${used(r).join(' ')}`);
    const grants = grantsFromTemplate(region);
    for (const r of roles) {
      const missing = used(r).filter((p) => !grants[r].has(p));
      assert.deepEqual(missing, [], `${r} calls what its policy does not allow (allowed: ${[...grants[r]].sort().join(', ')})`);
    }
  }
});
