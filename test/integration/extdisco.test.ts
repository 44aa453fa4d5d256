// XEP-0215 External Service Discovery with real clients (xmpp.js, StanzaJS): a tenant's `turn` block
// names its STUN and TURN servers; a logged-in user gets them, TURN ones with short-lived credentials
// in coturn's shared-secret scheme; an admin changes the block live (an item edited in DynamoDB, as
// in the console); a tenant without the block advertises nothing and answers service-unavailable.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { type Agent, createClient } from 'stanza';
import { createDynamoClient } from '../../lib/store/dynamo.ts';
import { type TestClient, type TestServer, WAIT_MS, connectClient, startTestServer, xml, type Element } from '../support/harness.ts';
import { adminCall } from '../support/admin.ts';

const NS = 'urn:xmpp:extdisco:2';
const STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas';
const CALLS = 'calls.example';
const PLAIN = 'plain.example';
const SECRET = 'calls-example-turn-secret';
const TURN = {
  secret: SECRET,
  ttlSeconds: 600,
  services: [
    { type: 'stun', host: 'stun.calls.example' },
    { type: 'turn', host: 'turn.calls.example', port: 3478, transport: 'udp' },
    { type: 'turn', host: 'turn.calls.example', port: 3478, transport: 'tcp' },
    { type: 'turns', host: 'turn.calls.example', name: 'TURN over TLS' },
  ],
};

const conditionOf = (el: Element) => el.getChild('error')?.children.find((c): c is Element => typeof c !== 'string' && c.attrs.xmlns === STANZAS && c.name !== 'text')?.name;
const services = (el: Element) => (el.getChild('services', NS) ?? el.getChild('credentials', NS))!.getChildren('service').map((e) => ({ ...e.attrs }));

let s: TestServer;
let db: ReturnType<typeof createDynamoClient>;
let alice: TestClient;
let plain: TestClient;
const agents: Agent[] = [];

const tenantKey = (domain: string) => ({ pk: `tenant#${domain}`, sk: 'tenant' });
/** What an admin does in the console: edit the item; the servers see it within the tenant cache time. */
async function editTenant(domain: string, update: string, values?: Record<string, unknown>) {
  await db.send(new UpdateCommand({ TableName: s.table, Key: tenantKey(domain), UpdateExpression: update, ...(values ? { ExpressionAttributeValues: values } : {}) }));
  s.clock.advance(s.server.tenants.cacheMs);
}

/** The admin API, as an operator's tooling calls it. */
const admin = (method: string, path: string, body?: unknown) => adminCall(s, method, path, body);

let n = 0;
async function ask(c: TestClient, payload: Element, to?: string): Promise<Element> {
  const id = `x${++n}`;
  await c.send(xml('iq', { id, type: 'get', ...(to ? { to } : {}) }, payload));
  return c.waitFor((el) => el.name === 'iq' && el.attrs.id === id && (el.attrs.type === 'result' || el.attrs.type === 'error'), WAIT_MS, `answer to ${id}`);
}
const features = async (c: TestClient, domain: string) =>
  (await ask(c, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' }), domain)).getChild('query')!.getChildren('feature').map((f) => f.attrs.var as string);

before(async () => {
  s = await startTestServer({ seedDomains: [], tenantCacheMs: 3000, adminToken: 'extdisco-admin-token' });
  db = createDynamoClient({ endpoint: s.dynamoEndpoint, localCredentials: true });
  await db.send(new PutCommand({ TableName: s.table, Item: { ...tenantKey(CALLS), domain: CALLS, enabled: true, turn: TURN } }));
  await db.send(new PutCommand({ TableName: s.table, Item: { ...tenantKey(PLAIN), domain: PLAIN, enabled: true } }));
  for (const jid of [`alice@${CALLS}`, `bob@${CALLS}`, `carol@${PLAIN}`]) await s.addUser(jid);
  alice = await connectClient(s.url, { username: 'alice', domain: CALLS, resource: 'laptop' });
  plain = await connectClient(s.url, { username: 'carol', domain: PLAIN, resource: 'r' });
});
after(async () => {
  for (const a of agents) a.disconnect();
  await alice?.stop();
  await plain?.stop();
  db?.destroy();
  await s?.stop();
});

describe('XEP-0215 with the turn block set', () => {
  it('advertises urn:xmpp:extdisco:2 in the server disco#info (§4)', async () => {
    assert.ok((await features(alice, CALLS)).includes(NS));
  });

  it('§3.1: all services, TURN ones with credentials coturn accepts, and never the secret', async () => {
    const now = s.clock.now();
    const reply = await ask(alice, xml('services', { xmlns: NS }), CALLS);
    assert.equal(reply.attrs.type, 'result');
    assert.ok(!reply.toString().includes(SECRET));
    const list = services(reply);
    assert.deepEqual(list.map((x) => `${x.type} ${x.host}:${x.port}/${x.transport}`), ['stun stun.calls.example:3478/udp', 'turn turn.calls.example:3478/udp', 'turn turn.calls.example:3478/tcp', 'turns turn.calls.example:5349/tcp']);
    assert.equal(list[0].username, undefined);
    assert.equal(list[0].restricted, undefined);
    assert.equal(list[3].name, 'TURN over TLS');
    for (const turn of list.slice(1)) {
      // coturn use-auth-secret: username "<expiry>:<user>", password base64(HMAC-SHA1(secret, username)).
      const [expiry, user] = [turn.username.slice(0, turn.username.indexOf(':')), turn.username.slice(turn.username.indexOf(':') + 1)];
      assert.equal(user, `alice@${CALLS}`);
      assert.ok(Math.abs(Number(expiry) - (Math.floor(now / 1000) + TURN.ttlSeconds)) <= 1, `expiry ${expiry}`);
      assert.equal(turn.password, createHmac('sha1', SECRET).update(turn.username).digest('base64'));
      assert.equal(turn.expires, new Date(Number(expiry) * 1000).toISOString().replace('.000Z', 'Z'));
      assert.equal(turn.restricted, '1');
    }
  });

  it('asked without a `to`, the server answers for the account all the same', async () => {
    const reply = await ask(alice, xml('services', { xmlns: NS, type: 'stun' }));
    assert.deepEqual(services(reply).map((x) => x.host), ['stun.calls.example']);
  });

  it('§3.2: services of one type, the reply carrying that type; an unknown type gets an empty list', async () => {
    const turn = await ask(alice, xml('services', { xmlns: NS, type: 'turn' }), CALLS);
    assert.equal(turn.getChild('services', NS)!.attrs.type, 'turn');
    assert.deepEqual(services(turn).map((x) => `${x.type}/${x.transport}`), ['turn/udp', 'turn/tcp']);
    assert.deepEqual(services(await ask(alice, xml('services', { xmlns: NS, type: 'turns' }), CALLS)).map((x) => x.port), ['5349']);
    const none = await ask(alice, xml('services', { xmlns: NS, type: 'ftp' }), CALLS);
    assert.equal(none.attrs.type, 'result');
    assert.deepEqual(services(none), []);
  });

  it('§3.3: credentials for a service named by host and type (and port); unknown → item-not-found; no host → bad-request', async () => {
    const creds = services(await ask(alice, xml('credentials', { xmlns: NS }, xml('service', { host: 'turn.calls.example', type: 'turn' })), CALLS));
    assert.equal(creds.length, 2);
    for (const c of creds) assert.equal(c.password, createHmac('sha1', SECRET).update(c.username).digest('base64'));
    const tls = services(await ask(alice, xml('credentials', { xmlns: NS }, xml('service', { host: 'turn.calls.example', type: 'turns', port: '5349' })), CALLS));
    assert.deepEqual(tls.map((c) => [c.type, c.port, c.restricted]), [['turns', '5349', '1']]);
    assert.equal(conditionOf(await ask(alice, xml('credentials', { xmlns: NS }, xml('service', { host: 'turn.other.example', type: 'turn' })), CALLS)), 'item-not-found');
    assert.equal(conditionOf(await ask(alice, xml('credentials', { xmlns: NS }, xml('service', { host: 'turn.calls.example', type: 'turn', port: '1' })), CALLS)), 'item-not-found');
    assert.equal(conditionOf(await ask(alice, xml('credentials', { xmlns: NS }, xml('service', { type: 'turn' })), CALLS)), 'bad-request');
    assert.equal(conditionOf(await ask(alice, xml('credentials', { xmlns: NS }), CALLS)), 'bad-request');
  });

  it('another tenant\'s services are not given out: asking calls.example from plain.example is refused', async () => {
    // Tenants that do not federate do not see each other (README "Tenants"), as for any stanza.
    const reply = await ask(plain, xml('services', { xmlns: NS }), CALLS);
    assert.equal(reply.attrs.type, 'error');
    assert.equal(conditionOf(reply), 'remote-server-not-found');
  });

  it('StanzaJS discoverICEServers() turns the answer into RTCIceServers with the credentials', async () => {
    const agent = createClient({ jid: `bob@${CALLS}`, password: 'secret', resource: 'web', transports: { websocket: s.url, bosh: false }, autoReconnect: false });
    agents.push(agent);
    const started = new Promise((resolve) => agent.once('session:started', resolve));
    agent.connect();
    await started;
    await agent.discoverICEServers();
    const ice = agent.jingle.iceServers as { urls: string | string[]; username?: string; credential?: string }[];
    const turn = ice.find((i) => String(i.urls).startsWith('turn:turn.calls.example:3478'));
    assert.ok(turn, JSON.stringify(ice));
    assert.match(turn.username!, new RegExp(`^\\d+:bob@${CALLS.replace('.', '\\.')}$`));
    assert.equal(turn.credential, createHmac('sha1', SECRET).update(turn.username!).digest('base64'));
    assert.ok(ice.some((i) => String(i.urls).startsWith('stun:stun.calls.example:3478') && !i.username), JSON.stringify(ice));
  });

  it('costs one post and nothing in DynamoDB (the tenant item is cached)', async () => {
    await ask(alice, xml('services', { xmlns: NS }), CALLS); // the tenant cache is warm
    const cost = await s.cost(() => ask(alice, xml('services', { xmlns: NS }), CALLS));
    assert.deepEqual({ reads: cost.reads, writes: cost.writes, posts: cost.posts }, { reads: 0, writes: 0, posts: 1 }, JSON.stringify(cost.calls));
  });
});

describe('XEP-0215 without the block', () => {
  it('advertises nothing, and a request gets service-unavailable (§2: "if the responding entity does not support this protocol")', async () => {
    assert.ok(!(await features(plain, PLAIN)).includes(NS));
    assert.ok((await features(plain, PLAIN)).includes('http://jabber.org/protocol/disco#info'));
    assert.equal(conditionOf(await ask(plain, xml('services', { xmlns: NS }), PLAIN)), 'service-unavailable');
    assert.equal(conditionOf(await ask(plain, xml('credentials', { xmlns: NS }, xml('service', { host: 'turn.calls.example', type: 'turn' })), PLAIN)), 'service-unavailable');
  });
});

describe('an admin changes the block live', () => {
  it('a new secret, TTL and server list take effect within the tenant cache time; removing the block withdraws the feature', async () => {
    await editTenant(PLAIN, 'SET turn = :t', { ':t': { secret: 'plain-example-new-secret', ttlSeconds: 120, services: [{ type: 'turn', host: '192.0.2.7', port: 3479 }] } });
    assert.ok((await features(plain, PLAIN)).includes(NS));
    const now = s.clock.now();
    const [turn] = services(await ask(plain, xml('services', { xmlns: NS }), PLAIN));
    assert.equal(turn.host, '192.0.2.7');
    assert.equal(turn.port, '3479');
    assert.ok(Math.abs(Number(turn.username.split(':')[0]) - (Math.floor(now / 1000) + 120)) <= 1);
    assert.equal(turn.password, createHmac('sha1', 'plain-example-new-secret').update(turn.username).digest('base64'));

    await editTenant(PLAIN, 'SET turn.secret = :s', { ':s': 'plain-example-rotated-secret' });
    const [rotated] = services(await ask(plain, xml('services', { xmlns: NS }), PLAIN));
    assert.equal(rotated.password, createHmac('sha1', 'plain-example-rotated-secret').update(rotated.username).digest('base64'));

    await editTenant(PLAIN, 'REMOVE turn');
    assert.ok(!(await features(plain, PLAIN)).includes(NS));
    assert.equal(conditionOf(await ask(plain, xml('services', { xmlns: NS }), PLAIN)), 'service-unavailable');
  });

  it('a block an admin breaks by hand (no secret) is dropped: nothing is advertised rather than services without credentials', async () => {
    await editTenant(PLAIN, 'SET turn = :t', { ':t': { services: [{ type: 'turn', host: 'turn.plain.example' }] } });
    assert.ok(!(await features(plain, PLAIN)).includes(NS));
    assert.equal(conditionOf(await ask(plain, xml('services', { xmlns: NS }), PLAIN)), 'service-unavailable');
  });

  it('through the admin API: a bad block is refused naming each field, the secret reads "(set)" and is kept when written back', async () => {
    const bad = await admin('PATCH', `/tenants/${PLAIN}`, { turn: { secret: 'short', services: [{ type: 'turn-tls', host: 'turn.plain.example' }] } });
    assert.equal(bad.status, 400);
    assert.deepEqual(bad.body.error.fields.map((f: { path: string }) => f.path).sort(), ['turn.secret', 'turn.services.0.type']);

    const turn = { secret: 'plain-example-admin-secret', services: [{ type: 'turn', host: 'turn.plain.example' }] };
    const ok = await admin('PATCH', `/tenants/${PLAIN}`, { turn });
    assert.equal(ok.status, 200);
    assert.equal(ok.body.turn.secret, '(set)');
    s.clock.advance(s.server.tenants.cacheMs);
    const [first] = services(await ask(plain, xml('services', { xmlns: NS }), PLAIN));
    assert.equal(first.password, createHmac('sha1', turn.secret).update(first.username).digest('base64'));

    // Read, change the TTL, write back what was read: the secret stays.
    const read = (await admin('GET', `/tenants/${PLAIN}`)).body;
    assert.equal((await admin('PATCH', `/tenants/${PLAIN}`, { turn: { ...read.turn, ttlSeconds: 300 } })).status, 200);
    s.clock.advance(s.server.tenants.cacheMs);
    const now = s.clock.now();
    const [second] = services(await ask(plain, xml('services', { xmlns: NS }), PLAIN));
    assert.ok(Math.abs(Number(second.username.split(':')[0]) - (Math.floor(now / 1000) + 300)) <= 1);
    assert.equal(second.password, createHmac('sha1', turn.secret).update(second.username).digest('base64'));

    assert.equal((await admin('PATCH', `/tenants/${PLAIN}`, { turn: null })).status, 200);
    s.clock.advance(s.server.tenants.cacheMs);
    assert.equal(conditionOf(await ask(plain, xml('services', { xmlns: NS }), PLAIN)), 'service-unavailable');
  });
});
