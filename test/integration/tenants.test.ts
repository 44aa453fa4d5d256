// Tenants are items in DynamoDB: added, changed, disabled and deleted while the server runs, with
// effect within 5 seconds, and isolated from each other unless both allow otherwise.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DeleteCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { pino } from 'pino';
import { createDynamoClient } from '../../lib/store/dynamo.ts';
import { RawClient, type TestServer, byName, connectClient, startTestServer, until, xml, type Element, WAIT_MS } from '../support/harness.ts';
import { offlineOf } from '../../lib/extensions/offline/index.ts';

const STREAMS = 'urn:ietf:params:xml:ns:xmpp-streams';
const STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas';
const streamCondition = (el: Element) => (el.children.find((c) => typeof c !== 'string' && (c as Element).attrs.xmlns === STREAMS) as Element | undefined)?.name;
const stanzaCondition = (el: Element) => (el.getChild('error')?.children.find((c) => typeof c !== 'string' && (c as Element).attrs.xmlns === STANZAS) as Element | undefined)?.name;

let s: TestServer;
/** What the server logged at warn and above (JSON lines), to check what it says about tenant items. */
const logged: Record<string, unknown>[] = [];
/** A client of our own on the same table, as an admin editing items by hand would use. */
let db: ReturnType<typeof createDynamoClient>;
const tenantKey = (domain: string) => ({ pk: `tenant#${domain}`, sk: 'tenant' });
const putTenant = (domain: string, extra: Record<string, unknown> = {}) =>
  db.send(new PutCommand({ TableName: s.table, Item: { ...tenantKey(domain), domain, enabled: true, ...extra } }));

before(async () => {
  s = await startTestServer({
    tenantWatchMs: 500,
    tenantCacheMs: 3000,
    logger: pino({ level: 'warn' }, { write: (line: string) => void logged.push(JSON.parse(line)) }),
    // Room for a stanza above the server's 65536-byte limit: API Gateway's 32 KB frame limit would cut it first.
    gatewayLimits: { maxFrameBytes: 128 * 1024 },
  });
  db = createDynamoClient({ endpoint: s.dynamoEndpoint, localCredentials: true });
});
after(async () => {
  db.destroy();
  await s.stop();
});

async function openFails(domain: string): Promise<string | undefined> {
  const raw = await RawClient.connect(s.url);
  raw.send(`<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="${domain}" version="1.0"/>`);
  const first = await raw.next((el) => el.name === 'stream:features' || el.name === 'stream:error');
  raw.ws.close();
  return first.name === 'stream:error' ? streamCondition(first) : undefined;
}

describe('tenant life cycle', () => {
  it('a tenant written straight to DynamoDB accepts logins within 5 s', async () => {
    assert.equal(await openFails('fresh.example'), 'host-unknown');
    await putTenant('fresh.example');
    await s.addUser('ann@fresh.example', 'pw');
    // The cached "unknown" lives cacheMs (3 s, under the 5 s promised); once that has passed, the first login works.
    assert.ok(s.server.tenants.cacheMs <= 5000);
    s.clock.advance(s.server.tenants.cacheMs);
    const client = await connectClient(s.url, { username: 'ann', password: 'pw', domain: 'fresh.example' });
    assert.equal(client.jid.split('/')[0], 'ann@fresh.example');
    await client.stop();
  });

  it('disabling a tenant closes its live sessions with host-gone within 5 s and refuses new ones', async () => {
    await putTenant('doomed.example');
    await s.addUser('bob@doomed.example', 'pw');
    s.clock.advance(s.server.tenants.cacheMs); // let any cached "unknown" expire
    const raw = await RawClient.connect(s.url);
    await raw.login('bob', 'pw', 'r', 'doomed.example');
    // The watcher polls every tenantWatchMs (500 ms here, 1 s by default): the close comes at its next poll.
    await db.send(new UpdateCommand({ TableName: s.table, Key: tenantKey('doomed.example'), UpdateExpression: 'SET enabled = :f', ExpressionAttributeValues: { ':f': false } }));
    const err = await raw.next(byName('stream:error'));
    assert.equal(streamCondition(err), 'host-gone');
    await raw.closed;
    s.clock.advance(s.server.tenants.cacheMs);
    assert.equal(await openFails('doomed.example'), 'host-unknown');
  });

  it('deleting a tenant item closes its live sessions with host-gone', async () => {
    await putTenant('gone.example');
    await s.addUser('cy@gone.example', 'pw');
    s.clock.advance(s.server.tenants.cacheMs);
    const raw = await RawClient.connect(s.url);
    await raw.login('cy', 'pw', 'r', 'gone.example');
    await db.send(new DeleteCommand({ TableName: s.table, Key: tenantKey('gone.example') }));
    assert.equal(streamCondition(await raw.next(byName('stream:error'))), 'host-gone');
  });
});

describe('isolation between tenants', () => {
  before(async () => {
    await putTenant('red.example');
    await putTenant('blue.example');
    await putTenant('green.example', { federation: ['yellow.example'] });
    await putTenant('yellow.example', { federation: ['green.example'] });
    for (const d of ['red', 'blue', 'green', 'yellow']) await s.addUser(`alice@${d}.example`, 'pw');
    s.clock.advance(s.server.tenants.cacheMs);
  });

  it('a user cannot reach a user of another tenant, and the error does not reveal the tenant exists', async () => {
    const red = await connectClient(s.url, { username: 'alice', password: 'pw', domain: 'red.example' });
    const blue = await connectClient(s.url, { username: 'alice', password: 'pw', domain: 'blue.example' });
    await blue.send(xml('presence'));
    await red.send(xml('message', { to: 'alice@blue.example', type: 'chat', id: 'x1' }, xml('body', {}, 'hello blue')));
    const err = await red.waitFor(byName('message', { id: 'x1', type: 'error' }));
    assert.equal(stanzaCondition(err), 'remote-server-not-found');
    await red.send(xml('message', { to: 'alice@nowhere.example', type: 'chat', id: 'x2' }, xml('body', {}, '?')));
    assert.equal(stanzaCondition(await red.waitFor(byName('message', { id: 'x2', type: 'error' }))), 'remote-server-not-found');
    await red.send(xml('presence', { to: 'alice@blue.example', type: 'subscribe' }));
    await blue.expectNothing(s, (el) => el.attrs.from?.startsWith('alice@red.example') ?? false, red);
    assert.deepEqual(await offlineOf(s.server).list('alice@blue.example'), []);
    await red.stop();
    await blue.stop();
  });

  it('the same local part in two tenants is two accounts with separate data', async () => {
    assert.deepEqual(await s.server.users.list('red.example'), ['alice']);
    const red = await connectClient(s.url, { username: 'alice', password: 'pw', domain: 'red.example' });
    await red.iq(xml('iq', { type: 'set' }, xml('query', { xmlns: 'jabber:iq:roster' }, xml('item', { jid: 'friend@red.example', name: 'Friend' }))));
    const blue = await connectClient(s.url, { username: 'alice', password: 'pw', domain: 'blue.example' });
    const roster = await blue.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: 'jabber:iq:roster' })));
    assert.equal(roster.getChild('query')!.getChildren('item').length, 0);
    // A password of one tenant does not open the other.
    await s.server.users.remove('blue.example', 'alice');
    await assert.rejects(connectClient(s.url, { username: 'alice', password: 'pw', domain: 'blue.example' }));
    await s.addUser('alice@blue.example', 'pw');
    await red.stop();
    await blue.stop();
  });

  it('two tenants that list each other in federation can exchange messages', async () => {
    const green = await connectClient(s.url, { username: 'alice', password: 'pw', domain: 'green.example', resource: 'g' });
    const yellow = await connectClient(s.url, { username: 'alice', password: 'pw', domain: 'yellow.example' });
    await yellow.send(xml('presence'));
    await yellow.waitFor(byName('presence'));
    await green.send(xml('message', { to: 'alice@yellow.example', type: 'chat', id: 'f1' }, xml('body', {}, 'hi neighbour')));
    const got = await yellow.waitFor(byName('message', { id: 'f1' }));
    assert.equal(got.attrs.from, 'alice@green.example/g');
    await green.stop();
    await yellow.stop();
  });
});

describe('tenant limits', () => {
  before(async () => {
    await putTenant('small.example', { limits: { maxStanzaBytes: 10000, stanzasPerSecond: 1 } });
    await s.addUser('dan@small.example', 'pw');
    await s.addUser('eve@small.example', 'pw');
    s.clock.advance(s.server.tenants.cacheMs);
  });

  it('a third session beyond sessionsPerUser = 2 is refused with resource-constraint; replacing one is not', async () => {
    await putTenant('few.example', { limits: { sessionsPerUser: 2 } });
    await s.addUser('fay@few.example', 'pw');
    s.clock.advance(s.server.tenants.cacheMs);
    const a = await connectClient(s.url, { username: 'fay', password: 'pw', domain: 'few.example', resource: 'a' });
    const b = await connectClient(s.url, { username: 'fay', password: 'pw', domain: 'few.example', resource: 'b' });
    const raw = await RawClient.connect(s.url);
    await assert.rejects(raw.login('fay', 'pw', 'c', 'few.example'), (err: Error & { element?: Element }) => {
      assert.equal(stanzaCondition(err.element!), 'resource-constraint');
      return true;
    });
    raw.ws.close();
    // Same resource again: the new session replaces the old one and counts once.
    const b2 = await connectClient(s.url, { username: 'fay', password: 'pw', domain: 'few.example', resource: 'b' });
    assert.equal((await s.server.sessions.list('fay@few.example')).length, 2);
    await a.stop();
    await b2.stop();
    await b.stop();
  });

  it('a stanza over the tenant\'s size limit gets policy-violation', async () => {
    const raw = await RawClient.connect(s.url);
    await raw.login('dan', 'pw', 'r', 'small.example');
    raw.send(`<message xmlns="jabber:client" to="eve@small.example"><body>${'y'.repeat(12000)}</body></message>`);
    assert.equal(streamCondition(await raw.next(byName('stream:error'))), 'policy-violation');
  });

  it('a client over its stanza rate is slowed, then told with resource-constraint; nothing vanishes', async () => {
    const dan = await connectClient(s.url, { username: 'dan', password: 'pw', domain: 'small.example' });
    const eve = await connectClient(s.url, { username: 'eve', password: 'pw', domain: 'small.example' });
    await eve.send(xml('presence'));
    await eve.waitFor(byName('presence'));
    s.clock.advance(2100); // a full bucket for dan: 2 stanzas (twice the rate)
    // Time stands still while the burst is handled, so the outcome does not depend on how fast it is.
    s.clock.freeze();
    try {
      const ids = Array.from({ length: 6 }, (_, i) => `rl${i}`);
      for (const id of ids) void dan.send(xml('message', { to: 'eve@small.example', type: 'chat', id }, xml('body', {}, id)));
      const delivered = () => eve.received.filter((el) => el.name === 'message').map((el) => el.attrs.id);
      const told = () => dan.received.filter((el) => el.name === 'message' && el.attrs.type === 'error');
      await until('each message delivered or refused', () => delivered().length + told().length === ids.length, () => ({ delivered: delivered(), told: told().map((t) => t.attrs.id) }));
      await s.gateway.idle();
      for (const t of told()) assert.equal(stanzaCondition(t), 'resource-constraint');
      assert.deepEqual([...delivered(), ...told().map((t) => t.attrs.id)].sort(), [...ids].sort(), 'each message delivered or refused, none lost');
      // The burst passes; the third waits a full second (over the 250 ms a client is slowed) and is refused, and so on.
      assert.deepEqual(delivered(), ['rl0', 'rl1']);
    } finally {
      s.clock.thaw();
    }
    await dan.stop();
    await eve.stop();
  });
});

describe('tenant items edited by hand (README "The tenant item")', () => {
  const fieldLogs = (tenant: string) => logged.filter((l) => l.tenant === tenant);

  it('a bad field is ignored with a warning and its default applies: "1k" leaves the server\'s 65536-byte stanza limit', async () => {
    await putTenant('loose.example', { limits: { maxStanzaBytes: '1k' }, loginMethods: 'password', tokens: { secret: 'never-logged', accessValiditySeconds: 'soon' } });
    await s.addUser('gil@loose.example', 'pw');
    const raw = await RawClient.connect(s.url);
    // loginMethods fell back to its default, password: PLAIN is offered and works.
    await raw.login('gil', 'pw', 'r', 'loose.example');
    const warned = fieldLogs('loose.example');
    const limit = warned.find((l) => l.field === 'limits.maxStanzaBytes');
    assert.ok(limit, JSON.stringify(warned));
    assert.equal(limit.level, 40); // pino's warn
    assert.equal(limit.value, '1k');
    assert.match(String(limit.msg), /^tenant field ignored: limits\.maxStanzaBytes/);
    assert.ok(warned.some((l) => l.field === 'loginMethods'));
    assert.ok(warned.some((l) => l.field === 'tokens.accessValiditySeconds'));
    assert.doesNotMatch(JSON.stringify(logged), /never-logged/);

    // Under 65536 passes (a message to an unknown user bounces, the stream lives on) ...
    raw.send(`<message xmlns="jabber:client" to="nobody@loose.example" id="fits"><body>${'z'.repeat(60_000)}</body></message>`);
    assert.equal((await raw.next(byName('message', { id: 'fits' }))).attrs.type, 'error');
    // ... over it is refused: before the schema, "1k" meant no limit at all.
    raw.send(`<message xmlns="jabber:client" to="nobody@loose.example"><body>${'z'.repeat(70_000)}</body></message>`);
    assert.equal(streamCondition(await raw.next(byName('stream:error'))), 'policy-violation');
  });

  it('an item that cannot be parsed (enabled: "yes") is not served: host-unknown, logged at error', async () => {
    await putTenant('yes.example', { enabled: 'yes' });
    assert.equal(await openFails('yes.example'), 'host-unknown');
    const refused = fieldLogs('yes.example').find((l) => l.level === 50);
    assert.ok(refused, JSON.stringify(logged.slice(-5)));
    assert.match(String(refused.msg), /enabled/);
  });

  it('live sessions of a tenant whose item becomes unparseable are closed with host-gone', async () => {
    await putTenant('spoilt.example');
    await s.addUser('hal@spoilt.example', 'pw');
    const raw = await RawClient.connect(s.url);
    await raw.login('hal', 'pw', 'r', 'spoilt.example');
    await db.send(new UpdateCommand({ TableName: s.table, Key: tenantKey('spoilt.example'), UpdateExpression: 'SET enabled = :y', ExpressionAttributeValues: { ':y': 'yes' } }));
    assert.equal(streamCondition(await raw.next(byName('stream:error'), 6000)), 'host-gone');
  });
});
