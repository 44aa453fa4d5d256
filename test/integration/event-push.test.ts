// Event push per tenant (README "Event push") with real clients and a real webhook receiver on
// 127.0.0.1 that verifies each request with lib/webhooks/signing.ts: the exact events of a scripted
// session, nothing lost while the receiver is down (retried by the sweeper, the clock moved), a slow
// receiver that never delays a message, a bad signature refused, the admin API and the cost.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { FormatRegistry } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { TenantPurger, purgePlanOf } from '../../lib/admin/purge.ts';
import { eventPushOf } from '../../lib/extensions/event-push/index.ts';
import { SWEEP_SHARDS } from '../../lib/store/dynamo.ts';
import { EVENT_KINDS, PushEventSchema, type PushEvent } from '../../lib/extensions/event-push/schema.ts';
import { type TestClient, type TestServer, WAIT_MS, connectClient, startTestServer, until, xml } from '../support/harness.ts';
import { adminCall } from '../support/admin.ts';
import { enter } from '../support/muc.ts';
import { type ReceivedRequest, type WebhookServer, startWebhookServer } from '../support/webhook-server.ts';

const SECRET = 'event-push-secret-0123456789';
let s: TestServer;
let hook: WebhookServer;
let n = 0;
const clients: TestClient[] = [];

const call = (method: string, path: string, body?: unknown) => adminCall(s, method, path, body);

/** A new tenant pushing every kind to `url`, so each test reads only its own events. */
async function tenant(url = hook.url, secret = SECRET): Promise<string> {
  const domain = `ev${++n}.example`;
  assert.equal((await call('POST', '/tenants', { domain })).status, 201);
  const put = await call('PUT', `/tenants/${domain}/events`, { kinds: [...EVENT_KINDS], target: { webhook: { url, secret } } });
  assert.equal(put.status, 200, JSON.stringify(put.body));
  return domain;
}

async function login(name: string, domain: string): Promise<TestClient> {
  await s.addUser(`${name}@${domain}`, `pw-${name}`);
  const c = await connectClient(s.url, { username: name, password: `pw-${name}`, domain, resource: 'r' });
  clients.push(c);
  return c;
}

/** The events of accepted requests for one tenant, in the order received. */
function eventsOf(domain: string, requests: ReceivedRequest[] = hook.accepted): PushEvent[] {
  return requests.flatMap((r) => (JSON.parse(r.body) as { events: PushEvent[] }).events).filter((e) => e.tenant === domain);
}

/** What a test compares: the kind and the fields that say who and what, not the id or the time. */
function shape(e: PushEvent): Record<string, unknown> {
  const { id: _i, time: _t, version: _v, tenant: _d, ...rest } = e;
  return rest;
}

// The OpenAPI format of `time`; TypeBox checks only formats it is told about.
FormatRegistry.Set('date-time', (v) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/.test(v) && !Number.isNaN(Date.parse(v)));

before(async () => {
  s = await startTestServer({ adminToken: 'event-push-admin' });
  hook = await startWebhookServer(SECRET, { nowMs: () => s.clock.now() });
});
after(async () => {
  for (const c of clients) await c.stop();
  await s.stop();
  await hook.close();
});

describe('event push to a webhook', () => {
  it('a scripted session (login, chat, room join, logout): exactly its events, in order, signed', async () => {
    const d = await tenant();
    const alice = await login('alice', d);
    await alice.send(xml('presence', {}, xml('show', {}, 'chat')));
    await alice.roundTrip();
    const bob = await login('bob', d);
    await bob.send(xml('presence'));
    await bob.roundTrip();
    await alice.send(xml('message', { to: `bob@${d}`, type: 'chat', id: 'm1' }, xml('body', {}, 'hello')));
    await bob.waitFor((el) => el.name === 'message' && el.attrs.id === 'm1');
    await enter(alice, `room1@conference.${d}/Alice`);
    await alice.stop();
    await until('alice’s session/closed', () => eventsOf(d).some((e) => e.kind === 'session/closed'), () => eventsOf(d).map((e) => e.kind));

    const events = eventsOf(d);
    for (const e of events) assert.ok(Value.Check(PushEventSchema, e), `schema: ${JSON.stringify(e)} ${JSON.stringify([...Value.Errors(PushEventSchema, e)].slice(0, 2))}`);
    assert.ok(hook.accepted.every((r) => r.verified.ok));
    const times = events.map((e) => Date.parse(e.time));
    assert.deepEqual(times, [...times].sort((a, b) => a - b));
    const A = `alice@${d}/r`;
    const B = `bob@${d}/r`;
    const room = `room1@conference.${d}`;
    assert.deepEqual(events.map(shape), [
      { kind: 'session/opened', jid: A },
      { kind: 'presence/changed', jid: A, available: true, show: 'chat' },
      { kind: 'session/opened', jid: B },
      { kind: 'presence/changed', jid: B, available: true },
      { kind: 'message/sent', from: A, to: `bob@${d}`, stanzaId: 'm1', type: 'chat' },
      { kind: 'message/delivered', from: A, to: `bob@${d}`, stanzaId: 'm1', type: 'chat', resources: [B] },
      { kind: 'room/created', room, jid: A },
      { kind: 'room/joined', room, jid: A, nick: 'Alice' },
      { kind: 'presence/changed', jid: A, available: false },
      { kind: 'room/left', room, jid: A, nick: 'Alice' },
      { kind: 'room/destroyed', room, reason: 'last occupant left' },
      { kind: 'session/closed', jid: A, reason: events.at(-1)!.reason },
    ]);
    assert.equal(typeof events.at(-1)!.reason, 'string');
    await bob.stop();
  });

  it('the receiver down for a while: nothing is lost, the sweeper retries once the clock moved on', async () => {
    const d = await tenant();
    let down = true;
    hook.answer = () => ({ status: down ? 503 : 204 });
    const failedBefore = eventPushOf(s.server).stats.failed;
    try {
      await s.addUser(`carol@${d}`, 'pw');
      const alice = await login('alice', d);
      await alice.send(xml('message', { to: `nobody@${d}`, type: 'chat', id: 'm2' }, xml('body', {}, 'are you there?')));
      await alice.send(xml('message', { to: `carol@${d}`, type: 'chat', id: 'm3' }, xml('body', {}, 'hello?')));
      await alice.roundTrip();
      await alice.stop();
      const refused = (r: ReceivedRequest) => eventsOf(d, [r]).length > 0;
      await until('the session/closed to be tried', () => hook.received.filter(refused).some((r) => eventsOf(d, [r]).some((e) => e.kind === 'session/closed')));
      assert.deepEqual(eventsOf(d), []); // nothing accepted while down
      // Every one of the 5 events counted as failed (the counter and its log line), none lost.
      await until('the failures counted', () => eventPushOf(s.server).stats.failed - failedBefore === 5, () => eventPushOf(s.server).stats);
      assert.equal(s.server.metrics.total('EventPushFailures', d), 5, 'the per-tenant metric the EventPushFailures alarm watches');
      // Later attempts are the sweeper's; still down: tried again, kept again.
      const before = hook.received.length;
      s.clock.advance(61_000);
      await s.server.sweep();
      assert.ok(hook.received.length > before);
      assert.deepEqual(eventsOf(d), []);
      down = false;
      s.clock.advance(121_000);
      // Each waiting request (one per failed flush): claimed (UpdateItem), sent, deleted; plus the
      // sweep's Queries: one per shard and one per sweep step (XEP-0198 detached sessions, event push's
      // retries, webhook component retries, inactive BOSH sessions; README "Cost per operation").
      const waiting = (await eventPushOf(s.server).store.due('events', s.clock.now())).length;
      assert.ok(waiting >= 1);
      const sweep = await s.cost(() => s.server.sweep());
      // The tenant item is read once (the clock moved past the tenant cache) for the webhook's secret.
      assert.deepEqual(sweep.calls, { 'dynamodb:GetItemCommand': 1, 'dynamodb:QueryCommand': SWEEP_SHARDS + 4, 'dynamodb:UpdateItemCommand': waiting, 'dynamodb:DeleteItemCommand': waiting });
      const kinds = eventsOf(d).map((e) => e.kind);
      // m2 to an unknown account is sent (and answered with an error); m3 to carol, offline, is stored.
      assert.deepEqual([...kinds].sort(), ['message/sent', 'message/sent', 'message/stored', 'session/closed', 'session/opened'].sort());
      const ids = eventsOf(d).map((e) => e.id);
      assert.equal(new Set(ids).size, ids.length, 'each event once');
      // Sorted by time they are the session's order.
      const byTime = [...eventsOf(d)].sort((a, b) => Date.parse(a.time) - Date.parse(b.time)).map((e) => e.kind);
      assert.deepEqual(byTime, ['session/opened', 'message/sent', 'message/sent', 'message/stored', 'session/closed']);
      const last = hook.accepted.filter((r) => eventsOf(d, [r]).length).map((r) => Number(r.headers['x-xmpp-edge-attempt']));
      assert.ok(last.every((a) => a >= 3), `accepted on the third attempt or later: ${last}`);
    } finally {
      hook.answer = () => ({ status: 204 });
    }
  });

  it('a slow receiver does not slow the sender: the message is delivered while the webhook has not answered', async () => {
    const d = await tenant();
    const alice = await login('alice', d);
    const bob = await login('bob', d);
    await bob.send(xml('presence'));
    await bob.roundTrip();
    await until('the logins’ events', () => eventsOf(d).filter((e) => e.kind === 'presence/changed').length === 1);
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    // However loaded the machine, the held request must not time out (a retry would come from the sweeper).
    eventPushOf(s.server).configure({ policy: { timeoutMs: WAIT_MS } });
    const pending: ReceivedRequest[] = [];
    hook.answer = async (r) => {
      pending.push(r);
      await held;
      return { status: 204 };
    };
    try {
      await alice.send(xml('message', { to: `bob@${d}/r`, type: 'chat', id: 'slow1' }, xml('body', {}, 'fast')));
      await until('the webhook to hold a request', () => pending.length > 0);
      // The webhook is holding the event push of the first message; the next messages still go through.
      await alice.send(xml('message', { to: `bob@${d}/r`, type: 'chat', id: 'slow2' }, xml('body', {}, 'still fast')));
      await bob.waitFor((el) => el.name === 'message' && el.attrs.id === 'slow2');
      assert.equal(eventsOf(d).filter((e) => e.kind === 'message/sent').length, 0, 'no message event answered yet');
      release();
      await until('both messages’ events', () => eventsOf(d).filter((e) => e.kind === 'message/delivered').length === 2, () => eventsOf(d).map((e) => e.kind));
      assert.deepEqual(
        eventsOf(d).filter((e) => e.kind.startsWith('message/')).map((e) => [e.kind, e.stanzaId]),
        [
          ['message/sent', 'slow1'],
          ['message/delivered', 'slow1'],
          ['message/sent', 'slow2'],
          ['message/delivered', 'slow2'],
        ],
      );
    } finally {
      release();
      eventPushOf(s.server).configure({ policy: {} });
      hook.answer = () => ({ status: 204 });
    }
  });

  it('a request signed with another secret is refused by the receiver (401): not retried, a dead letter the admin API lists', async () => {
    const d = await tenant(hook.url, 'not-the-receivers-secret');
    const alice = await login('alice', d);
    await alice.roundTrip();
    await until('the refused request', () => hook.received.some((r) => !r.verified.ok && r.body.includes(d)));
    const refused = hook.received.filter((r) => r.body.includes(d));
    assert.deepEqual(refused.map((r) => r.verified), [{ ok: false, reason: 'mismatch' }]);
    assert.deepEqual(eventsOf(d), []);
    const dead = await until('the dead letter', async () => (await call('GET', `/tenants/${d}/dead-letters`)).body.deadLetters[0]);
    assert.equal(dead.attempts, 1);
    assert.equal(dead.lastError, 'status 401');
    assert.equal(dead.source, 'events');
    assert.match(dead.body, /session\/opened/);
    assert.equal(dead.secret, undefined);
  });

  it('a receiver down for good: 6 attempts over about half an hour, then a dead letter', async () => {
    const d = await tenant();
    hook.answer = (r) => ({ status: eventsOf(d, [r]).length ? 503 : 204 });
    try {
      const frank = await login('frank', d);
      await frank.roundTrip();
      const store = eventPushOf(s.server).store;
      const mine = async () => (await store.due('events', s.clock.now() + 3_600_000)).filter((p) => p.tenant === d);
      await until('the first failure kept for later', async () => (await mine()).length === 1);
      const start = s.clock.now();
      for (let attempt = 2; attempt <= 6; attempt++) {
        const [p] = await mine();
        s.clock.advance(p.dueAt - s.clock.now());
        await s.server.sweep();
      }
      assert.deepEqual(await mine(), []);
      const attempts = hook.received.filter((r) => eventsOf(d, [r]).length).map((r) => Number(r.headers['x-xmpp-edge-attempt']));
      assert.deepEqual(attempts, [1, 2, 3, 4, 5, 6]);
      const minutes = (s.clock.now() - start) / 60_000;
      assert.ok(minutes > 15 && minutes <= 31, `${minutes} minutes`);
      const [dead] = (await call('GET', `/tenants/${d}/dead-letters`)).body.deadLetters;
      assert.deepEqual([dead.attempts, dead.lastError, JSON.parse(dead.body).events[0].kind], [6, 'status 503', 'session/opened']);
    } finally {
      hook.answer = () => ({ status: 204 });
    }
  });

  it('a room an operator creates and destroys through the admin API: its events are out before the API answers', async () => {
    const d = await tenant();
    assert.equal((await call('POST', `/tenants/${d}/rooms`, { name: 'ops' })).status, 201);
    // No waiting: the admin API flushed before it answered (in Lambda: before the invocation ended).
    assert.deepEqual(eventsOf(d).map(shape), [{ kind: 'room/created', room: `ops@conference.${d}` }]);
    assert.equal((await call('DELETE', `/tenants/${d}/rooms/ops?reason=done`)).status, 204);
    assert.deepEqual(eventsOf(d).map(shape).at(-1), { kind: 'room/destroyed', room: `ops@conference.${d}`, reason: 'done' });
  });

  it("a purged tenant's dead letters and waiting retries go with it", async () => {
    const d = await tenant(hook.url, 'not-the-receivers-secret');
    await login('erin', d);
    const store = eventPushOf(s.server).store;
    await until('the dead letter of the refused POST (401)', async () => (await store.deadLetters(d)).items.length > 0);
    await store.deadLetter({ tenant: d, source: 'events', id: 'x', url: hook.url, body: '{}', contentType: 'application/json', attempts: 8, firstAttemptAt: 0, lastError: 'status 503' }, s.clock.now());
    await store.schedule({ tenant: d, source: 'events', id: 'y', url: hook.url, body: '{}', contentType: 'application/json', attempts: 1, firstAttemptAt: 0, lastError: 'status 503' }, s.clock.now() + 60_000);
    const purger = new TenantPurger(s.server.db, s.table, purgePlanOf(s.server));
    await s.server.tenants.remove(d);
    await purger.request(d);
    await purger.runPending();
    assert.deepEqual((await store.deadLetters(d)).items, []);
    assert.deepEqual((await store.due('events', s.clock.now() + 3_600_000)).filter((p) => p.tenant === d), []);
  });

  it('a failed login is an auth/failed event with the account, the mechanism and the address', async () => {
    const d = await tenant();
    await s.server.tenants.put({ ...(await s.server.tenants.get(d, 0))!, events: { kinds: ['auth/failed'], target: { webhook: { url: hook.url, secret: SECRET } } } });
    await s.addUser(`dave@${d}`, 'right');
    await assert.rejects(connectClient(s.url, { username: 'dave', password: 'wrong', domain: d }));
    await until('the auth/failed event', () => eventsOf(d).length > 0);
    const [e] = eventsOf(d);
    assert.deepEqual(shape(e), { kind: 'auth/failed', account: `dave@${d}`, mechanism: 'SCRAM-SHA-256', sourceIp: '127.0.0.1' });
  });

  it('the cost of a 1:1 message is the same with event push on: it adds no DynamoDB call and no post', async () => {
    const d = await tenant();
    const alice = await login('alice', d);
    const bob = await login('bob', d);
    await bob.send(xml('presence'));
    await bob.roundTrip();
    const send = (id: string) =>
      s.cost(async () => {
        await alice.send(xml('message', { to: `bob@${d}/r`, type: 'chat', id }, xml('body', {}, 'x')));
        await bob.waitFor((el) => el.name === 'message' && el.attrs.id === id);
      });
    const on = await send('c1');
    await call('DELETE', `/tenants/${d}/events`);
    await s.server.tenants.get(d); // the tenant cache warm again, as on the first measure
    const off = await send('c2');
    assert.deepEqual(on, off);
    // README "Cost per operation": the recipient's sessions, the archive's preferences and one write of both archive items, one post.
    assert.deepEqual({ reads: on.reads, writes: on.writes, posts: on.posts }, { reads: 2, writes: 1, posts: 1 });
    await until('c1 published', () => eventsOf(d).some((e) => e.stanzaId === 'c1'));
    assert.ok(!eventsOf(d).some((e) => e.stanzaId === 'c2'), 'no events once cleared');
  });
});

describe('event targets through the admin API', () => {
  it('set, show (secret hidden), clear; bad kinds, a plain http URL and an ARN off the allow-list are refused with the reason', async () => {
    const d = `ev${++n}.example`;
    assert.equal((await call('POST', '/tenants', { domain: d })).status, 201);
    assert.deepEqual((await call('GET', `/tenants/${d}/events`)).body, { events: null });
    const bad = await call('PUT', `/tenants/${d}/events`, { kinds: ['message/typed'], target: { webhook: { url: hook.url, secret: SECRET } } });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.code, 'invalid-events');
    assert.match(bad.body.error.message, /events\.kinds\.0: must be one of "message\/sent"/);
    const insecure = await call('PUT', `/tenants/${d}/events`, { kinds: ['session/opened'], target: { webhook: { url: 'http://hooks.example.com/x', secret: SECRET } } });
    assert.equal(insecure.status, 400);
    assert.match(insecure.body.error.message, /events\.target\.webhook\.url/);
    const arn = 'arn:aws:sns:eu-west-1:123456789012:xmpp-events';
    const offList = await call('PUT', `/tenants/${d}/events`, { kinds: ['session/opened'], target: { sns: { topicArn: arn } } });
    assert.deepEqual([offList.status, offList.body.error.code], [400, 'target-not-allowed']);
    assert.match(offList.body.error.message, /eventTargetArns/);
    const ok = await call('PUT', `/tenants/${d}/events`, { kinds: ['session/opened', 'auth/failed'], target: { webhook: { url: hook.url, secret: SECRET } } });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.deepEqual(ok.body.events.target, { webhook: { url: hook.url, secret: '(set)' } });
    // The tenant as the generic route shows it hides the secret too.
    assert.equal((await call('GET', `/tenants/${d}`)).body.events.target.webhook.secret, '(set)');
    // Written back as shown, the secret stays.
    const again = await call('PUT', `/tenants/${d}/events`, { ...ok.body.events, kinds: ['session/opened'] });
    assert.equal(again.status, 200, JSON.stringify(again.body));
    assert.equal(((await s.server.tenants.get(d, 0))!.events as { target: { webhook: { secret: string } } }).target.webhook.secret, SECRET);
    assert.equal((await call('DELETE', `/tenants/${d}/events`)).status, 204);
    assert.deepEqual((await call('GET', `/tenants/${d}/events`)).body, { events: null });
    assert.equal((await call('GET', `/tenants/nope.example/events`)).status, 404);
  });

  it('the generic tenant routes apply the same allow-list: POST, PUT and PATCH /tenants with an ARN off the list are refused, nothing written', async () => {
    const arn = 'arn:aws:sns:eu-west-1:123456789012:not-on-the-list';
    const events = { kinds: ['session/opened'], target: { sns: { topicArn: arn } } };
    const d = `ev${++n}.example`;
    const created = await call('POST', '/tenants', { domain: d, events });
    assert.deepEqual([created.status, created.body.error?.code], [400, 'target-not-allowed'], JSON.stringify(created.body));
    assert.equal(await s.server.tenants.get(d, 0), undefined);
    assert.equal((await call('POST', '/tenants', { domain: d })).status, 201);
    const patched = await call('PATCH', `/tenants/${d}`, { events });
    assert.deepEqual([patched.status, patched.body.error?.code], [400, 'target-not-allowed'], JSON.stringify(patched.body));
    assert.match(patched.body.error.message, /events\.target: .*not-on-the-list.*eventTargetArns/);
    const current = (await call('GET', `/tenants/${d}`)).body;
    const put = await call('PUT', `/tenants/${d}`, { ...current, events });
    assert.deepEqual([put.status, put.body.error?.code], [400, 'target-not-allowed'], JSON.stringify(put.body));
    assert.equal((await s.server.tenants.get(d, 0))!.events, undefined);
    // A webhook the deployment will not send to (plain http to a name) is refused the same way.
    const http = await call('PATCH', `/tenants/${d}`, { events: { kinds: ['session/opened'], target: { webhook: { url: 'https://10.0.0.7/hook', secret: SECRET } } } });
    assert.deepEqual([http.status, http.body.error?.code], [400, 'target-not-allowed'], JSON.stringify(http.body));
    // An allowed one goes through the generic route.
    eventPushOf(s.server).configure({ allowedArns: [arn] });
    try {
      const ok = await call('PATCH', `/tenants/${d}`, { events });
      assert.equal(ok.status, 200, JSON.stringify(ok.body));
    } finally {
      eventPushOf(s.server).configure({ allowedArns: [] });
    }
  });

  it('a hand-edited item naming an ARN off the list is read, but its events are refused at publishing and counted', async () => {
    const arn = 'arn:aws:events:eu-west-1:123456789012:event-bus/hand-edited';
    const calls: { command: string; input: any }[] = [];
    const { snsDouble, eventBridgeDouble } = await import('../support/aws-doubles.ts');
    eventPushOf(s.server).configure({ allowedArns: [], aws: { sns: () => snsDouble(calls), eventBridge: () => eventBridgeDouble(calls) } });
    const d = `ev${++n}.example`;
    // Written straight to the table, as an operator editing the item in the console would: no admin check.
    await s.server.tenants.put({ domain: d, enabled: true, events: { kinds: ['session/opened'], target: { eventbridge: { busArn: arn } } } });
    const refusedBefore = eventPushOf(s.server).stats.refused;
    const alice = await login('alice', d);
    await alice.roundTrip();
    await until('the refusal counted', () => eventPushOf(s.server).stats.refused === refusedBefore + 1, () => eventPushOf(s.server).stats);
    assert.deepEqual(calls, []);
  });

  it('the OpenAPI document describes the block, every kind of event, the webhook body and the routes', async () => {
    const doc = (await call('GET', '/openapi.json')).body;
    assert.deepEqual(doc.components.schemas.PushEvent.anyOf.map((e: any) => e.properties.kind.const), [...EVENT_KINDS]);
    assert.match(doc.components.schemas.PushEvent.description, /X-XMPP-Edge-Signature: sha256=<hex HMAC-SHA256\(secret, timestamp \+ "\." \+ raw body\)>/);
    assert.equal(doc.components.schemas.WebhookEventBody.properties.events.items.anyOf.length, EVENT_KINDS.length);
    assert.equal(doc.components.schemas.Tenant.properties.events.properties.target.properties.webhook.properties.secret['x-secret'], true);
    assert.ok(doc.paths['/tenants/{domain}/events'].put && doc.paths['/tenants/{domain}/events'].delete && doc.paths['/tenants/{domain}/dead-letters'].get);
  });

  it('an allowed SNS topic takes the events (PublishBatch through the SDK, a test double at its transport); once off the list, they are refused and counted', async () => {
    const arn = 'arn:aws:sns:eu-west-1:123456789012:xmpp-events';
    const calls: { command: string; input: any }[] = [];
    const { snsDouble, eventBridgeDouble } = await import('../support/aws-doubles.ts');
    eventPushOf(s.server).configure({ allowedArns: [arn], allowLoopbackHttp: true, aws: { sns: () => snsDouble(calls), eventBridge: () => eventBridgeDouble(calls) } });
    const d = `ev${++n}.example`;
    assert.equal((await call('POST', '/tenants', { domain: d })).status, 201);
    assert.equal((await call('PUT', `/tenants/${d}/events`, { kinds: ['session/opened', 'session/closed'], target: { sns: { topicArn: arn } } })).status, 200);
    const alice = await login('alice', d);
    await alice.stop();
    await until('two publishes', () => calls.length === 2, () => calls);
    assert.deepEqual(
      calls.map((c) => [c.command, c.input.TopicArn, c.input.PublishBatchRequestEntries.map((e: any) => [JSON.parse(e.Message).kind, e.MessageAttributes.kind.StringValue, e.MessageAttributes.tenant.StringValue])]),
      [
        ['PublishBatchCommand', arn, [['session/opened', 'session/opened', d]]],
        ['PublishBatchCommand', arn, [['session/closed', 'session/closed', d]]],
      ],
    );
    // The deployment's list changes (a new deploy): the tenant's item still names the topic, but nothing is
    // published there any more; the events are refused, counted and logged.
    const refusedBefore = eventPushOf(s.server).stats.refused;
    eventPushOf(s.server).configure({ allowedArns: [] });
    const again = await login('alice2', d);
    await again.roundTrip();
    await until('the refusal counted', () => eventPushOf(s.server).stats.refused === refusedBefore + 1, () => eventPushOf(s.server).stats);
    assert.equal(calls.length, 2);
  });
});
