// Webhook delivery (lib/webhooks/delivery.ts) against a real HTTP server on 127.0.0.1 and dynalite:
// inline retries with backoff, deferred retries by the sweeper's step, dead letters, what is never retried.
import assert from 'node:assert/strict';
import { after, before, beforeEach, test } from 'node:test';
import { startDynalite, ensureTable, type LocalDynamo } from '../../lib/local/dynamo-local.ts';
import { createDynamoClient } from '../../lib/store/dynamo.ts';
import { WebhookDelivery, backoff, privateAddress, retryable, urlProblem, DELIVERY_HEADER, ATTEMPT_HEADER, type DeliveryPolicy } from '../../lib/webhooks/delivery.ts';
import { WebhookStore } from '../../lib/webhooks/store.ts';
import { startWebhookServer, type WebhookServer } from '../support/webhook-server.ts';

const SECRET = 'whsec-delivery';
const TABLE = 'webhooks';

class FakeTime {
  t = 1_780_000_000_000;
  slept: number[] = [];
  clock = { now: () => this.t };
  sleep = async (ms: number) => {
    this.slept.push(ms);
    this.t += ms;
  };
}

let dynamo: LocalDynamo;
let store: WebhookStore;
let hook: WebhookServer;
let time: FakeTime;

before(async () => {
  dynamo = await startDynalite({ port: 0 });
  await ensureTable(dynamo.endpoint, TABLE);
  store = new WebhookStore(createDynamoClient({ endpoint: dynamo.endpoint, localCredentials: true }), TABLE, 'local');
});
after(async () => {
  await dynamo.close();
});
beforeEach(async () => {
  await hook?.close();
  time = new FakeTime();
  hook = await startWebhookServer(SECRET, { nowMs: () => time.t });
});
after(() => hook.close());

function delivery(policy: Partial<DeliveryPolicy> = {}): WebhookDelivery {
  return new WebhookDelivery({ clock: time.clock, sleep: time.sleep, random: () => 0.5, store, allowLoopbackHttp: true, policy });
}
const req = (tenant: string, body = '{"n":1}') => ({ tenant, source: 'events', url: hook.url, body, contentType: 'application/json', secret: SECRET });

test('a 2xx answer is returned to the caller with its status, content type and body; the request is signed', async () => {
  hook.answer = () => ({ status: 200, contentType: 'application/xml', body: '<message/>' });
  const out = await delivery().deliver(req('a.example'));
  assert.equal(out.status, 'delivered');
  assert.deepEqual(out.status === 'delivered' && out.response, { status: 200, contentType: 'application/xml', body: '<message/>' });
  assert.equal(hook.received.length, 1);
  assert.equal(hook.received[0].verified.ok, true);
  assert.equal(hook.received[0].body, '{"n":1}');
  assert.equal(hook.received[0].headers[DELIVERY_HEADER.toLowerCase()], out.id);
});

test('5xx, 429 and 408 are retried inline with growing, jittered backoff; the same delivery id, attempts counted', async () => {
  const answers = [503, 429, 200];
  hook.answer = () => ({ status: answers.shift()! });
  const out = await delivery().deliver(req('b.example'));
  assert.equal(out.status, 'delivered');
  assert.equal(out.attempts, 3);
  assert.deepEqual(time.slept, [backoff(250, 0, 8000, () => 0.5), backoff(250, 1, 8000, () => 0.5)]);
  assert.deepEqual(time.slept, [188, 375]);
  assert.deepEqual(hook.received.map((r) => r.headers[ATTEMPT_HEADER.toLowerCase()]), ['1', '2', '3']);
  assert.equal(new Set(hook.received.map((r) => r.headers[DELIVERY_HEADER.toLowerCase()])).size, 1);
});

test('another 4xx is not retried: a dead letter at once, the answer returned', async () => {
  hook.answer = () => ({ status: 422, body: 'no' });
  const out = await delivery().deliver(req('c.example'));
  assert.equal(out.status, 'dead');
  assert.equal(out.attempts, 1);
  assert.equal(out.response?.status, 422);
  const { items } = await store.deadLetters('c.example', { now: time.t });
  assert.deepEqual(items.map((d) => [d.id, d.attempts, d.lastError, d.body]), [[out.id, 1, 'status 422', '{"n":1}']]);
});

test('a receiver that is down: inline attempts, then the sweeper step retries later with backoff, then delivered', async () => {
  const url = hook.url;
  await hook.close(); // connection refused
  const d = delivery();
  const out = await d.deliver(req('d.example'));
  assert.equal(out.status, 'scheduled');
  assert.equal(out.attempts, 3);
  assert.match(out.lastError, /^connection: /);
  const dueAt = out.status === 'scheduled' ? out.dueAt : 0;
  assert.equal(dueAt - time.t, 45_000); // 60 s, equal jitter at random 0.5
  // Not due yet: the sweeper leaves it.
  assert.deepEqual(await d.retryDue('events', () => ({ url, secret: SECRET }), dueAt - 1), { delivered: 0, rescheduled: 0, dead: 0, dropped: 0 });
  // Due, still down: rescheduled further out.
  time.t = dueAt;
  assert.deepEqual(await d.retryDue('events', () => ({ url, secret: SECRET })), { delivered: 0, rescheduled: 1, dead: 0, dropped: 0 });
  const [again] = await store.due('events', time.t + 3_600_000);
  assert.equal(again.attempts, 4);
  assert.equal(again.dueAt - time.t, 90_000); // 120 s with jitter
  // Back up (a new server, a new port: the owner resolves the URL again).
  hook = await startWebhookServer(SECRET, { nowMs: () => time.t });
  time.t = again.dueAt;
  assert.deepEqual(await d.retryDue('events', () => ({ url: hook.url, secret: SECRET })), { delivered: 1, rescheduled: 0, dead: 0, dropped: 0 });
  assert.equal(hook.accepted.length, 1);
  assert.equal(hook.accepted[0].headers[DELIVERY_HEADER.toLowerCase()], out.id);
  assert.equal(hook.accepted[0].headers[ATTEMPT_HEADER.toLowerCase()], '5');
  assert.deepEqual(await store.due('events', time.t + 3_600_000), []);
});

test('after the last attempt: a dead letter the admin can list, and nothing left scheduled', async () => {
  hook.answer = () => ({ status: 500 });
  const d = delivery({ maxAttempts: 4, maxInlineAttempts: 2 });
  const out = await d.deliver(req('e.example', '{"n":2}'));
  assert.equal(out.status, 'scheduled');
  for (let i = 0; i < 2; i++) {
    const [p] = await store.due('events', time.t + 3_600_000);
    time.t = p.dueAt;
    await d.retryDue('events', () => ({ url: hook.url, secret: SECRET }));
  }
  assert.equal(hook.received.length, 4);
  assert.deepEqual(await store.due('events', time.t + 3_600_000), []);
  const { items } = await store.deadLetters('e.example', { now: time.t });
  assert.deepEqual(items.map((x) => [x.id, x.attempts, x.lastError]), [[out.id, 4, 'status 500']]);
  // Kept 14 days, then no longer listed.
  assert.equal((await store.deadLetters('e.example', { now: time.t + 15 * 24 * 3600_000 })).items.length, 0);
});

test('a slow receiver is a timeout, retried; an inline attempt that cannot finish within the budget is deferred', async () => {
  let first = true;
  hook.answer = () => (first ? ((first = false), new Promise((r) => setTimeout(() => r({ status: 200 }), 2000))) : { status: 200 });
  const out = await delivery({ timeoutMs: 100, inlineBudgetMs: 150 }).deliver(req('f.example'));
  assert.equal(out.status, 'scheduled');
  assert.equal(out.lastError, 'timeout');
  assert.equal(out.attempts, 1);
});

test('the sweeper drops a retry whose owner has no webhook any more', async () => {
  hook.answer = () => ({ status: 502 });
  // A region of its own, so the requests other tests left scheduled are not in this sweep.
  const own = new WebhookStore(createDynamoClient({ endpoint: dynamo.endpoint, localCredentials: true }), TABLE, 'g');
  const d = new WebhookDelivery({ clock: time.clock, sleep: time.sleep, store: own, allowLoopbackHttp: true, policy: { maxInlineAttempts: 1 } });
  await d.deliver(req('g.example'));
  time.t += 3_600_000;
  assert.deepEqual(await d.retryDue('events', () => undefined), { delivered: 0, rescheduled: 0, dead: 0, dropped: 1 });
  assert.deepEqual(await own.due('events', time.t), []);
});

test('which failures are retried, which URLs are allowed', () => {
  const r = (status: number) => retryable({ kind: 'response', response: { status, body: '' } });
  assert.deepEqual([500, 503, 408, 429, 400, 401, 404, 410, 422, 302].map(r), [true, true, true, true, false, false, false, false, false, false]);
  assert.equal(retryable({ kind: 'timeout' }), true);
  assert.equal(urlProblem('https://hooks.example.com/x', false), undefined);
  assert.equal(urlProblem('http://127.0.0.1:8080/x', true), undefined);
  assert.match(urlProblem('http://127.0.0.1:8080/x', false)!, /local server only/);
  assert.match(urlProblem('http://hooks.example.com/x', true)!, /must be https/);
  assert.equal(urlProblem('nope', true), 'not a URL');
  // https to the deployment's own network is refused (IP literals; names are not resolved).
  for (const u of ['https://10.0.0.5/x', 'https://172.20.1.1/x', 'https://192.168.1.1/x', 'https://169.254.169.254/latest', 'https://127.0.0.1/x', 'https://[::1]/x', 'https://[fd00::1]/x', 'https://[fe80::1]/x', 'https://localhost/x']) {
    assert.equal(urlProblem(u, false), 'names a private, loopback or link-local address', u);
  }
  assert.equal(urlProblem('https://172.32.0.1/x', false), undefined);
  // NAT64 addresses are judged by the IPv4 address they carry; multicast is refused.
  assert.equal(privateAddress('64:ff9b::a00:1'), true);
  assert.equal(privateAddress('64:ff9b::5db8:d822'), false);
  assert.equal(privateAddress('224.0.0.251'), true);
  assert.equal(urlProblem('https://8.8.8.8/x', false), undefined);
  assert.equal(urlProblem('https://127.0.0.1:8443/x', true), undefined);
});

test('an http URL is refused on a deployed server: a dead letter without any request', async () => {
  const d = new WebhookDelivery({ clock: time.clock, sleep: time.sleep, store, allowLoopbackHttp: false });
  const out = await d.deliver(req('h.example'));
  assert.equal(out.status, 'dead');
  assert.match(out.lastError, /refused URL/);
  assert.equal(hook.received.length, 0);
});

test("each sender's sweep step retries only its own channel's requests", async () => {
  hook.answer = () => ({ status: 503 });
  const own = new WebhookStore(createDynamoClient({ endpoint: dynamo.endpoint, localCredentials: true }), TABLE, 'channels');
  const d = new WebhookDelivery({ clock: time.clock, sleep: time.sleep, store: own, allowLoopbackHttp: true, policy: { maxInlineAttempts: 1 } });
  await d.deliver({ ...req('k.example'), source: 'events' });
  await d.deliver({ ...req('k.example'), source: 'component:bot.k.example' });
  time.t += 3_600_000;
  hook.answer = () => ({ status: 204 });
  const asked: string[] = [];
  const resolve = (_t: string, source: string) => (asked.push(source), { url: hook.url, secret: SECRET });
  assert.deepEqual(await d.retryDue('component', resolve), { delivered: 1, rescheduled: 0, dead: 0, dropped: 0 });
  assert.deepEqual(asked, ['component:bot.k.example']);
  assert.equal((await own.due('events', time.t)).length, 1);
});

// A name is resolved at each attempt (a custom resolver stands in for DNS: nothing leaves the machine),
// refused if any address is private, and the request connects to the address that was checked.
test('a name that resolves to a private, loopback or link-local address is refused at send time: a dead letter, no request', async () => {
  const answers: Record<string, string[]> = {
    'hooks.example.com': ['93.184.216.34', '10.0.0.7'], // one public, one internal: refused
    'metadata.example.com': ['169.254.169.254'],
    'v6.example.com': ['2001:db8::1', 'fd12::1'],
    'mapped.example.com': ['::ffff:127.0.0.1'],
  };
  const asked: string[] = [];
  const resolve = async (host: string) => (asked.push(host), (answers[host] ?? []).map((address) => ({ address, family: address.includes(':') ? 6 : 4 })));
  const d = new WebhookDelivery({ clock: time.clock, sleep: time.sleep, store, allowLoopbackHttp: false, resolve });
  for (const host of Object.keys(answers)) {
    const out = await d.deliver({ ...req('dns.example'), url: `https://${host}/hook` });
    assert.equal(out.status, 'dead', host);
    assert.equal(out.attempts, 1, `${host}: not retried`);
    assert.match(out.lastError, /refused URL: .* resolves to .*private, loopback or link-local/, host);
  }
  assert.deepEqual(asked, Object.keys(answers));
  const dead = await store.deadLetters('dns.example', { now: time.t });
  assert.equal(dead.items.length, 4);
  assert.equal(hook.received.length, 0);
});

test('the request connects to the checked address, not to a second lookup of the name (DNS rebinding)', async () => {
  hook.answer = () => ({ status: 204 });
  const port = new URL(hook.url).port;
  let calls = 0;
  // The first answer is the receiver's address; any later one would be an address nothing listens on.
  const rebinding = async () => [{ address: ++calls === 1 ? '127.0.0.1' : '127.0.0.2', family: 4 }];
  const d = new WebhookDelivery({ clock: time.clock, sleep: time.sleep, store, allowLoopbackHttp: true, resolve: rebinding });
  const out = await d.deliver({ ...req('rebind.example'), url: `http://localhost:${port}/hook` });
  assert.equal(out.status, 'delivered', JSON.stringify(out));
  assert.equal(calls, 1);
  assert.equal(hook.received.length, 1);
  assert.equal(hook.received[0].headers.host, `localhost:${port}`);
  // And the address comes from the resolver, not the system's: localhost answered with 127.0.0.2 is not
  // the receiver (it listens on 127.0.0.1 only), so the attempt fails to connect.
  const elsewhere = new WebhookDelivery({ clock: time.clock, sleep: time.sleep, allowLoopbackHttp: true, policy: { maxInlineAttempts: 1, maxAttempts: 1 }, resolve: async () => [{ address: '127.0.0.2', family: 4 }] });
  const refused = await elsewhere.deliver({ ...req('rebind.example'), url: `http://localhost:${port}/hook` });
  assert.equal(refused.status, 'dead');
  assert.match(refused.lastError, /connection: ECONNREFUSED/);
  assert.equal(hook.received.length, 1);
  // On the local server a loopback name must resolve to loopback addresses only.
  const outside = new WebhookDelivery({ clock: time.clock, sleep: time.sleep, allowLoopbackHttp: true, policy: { maxAttempts: 1 }, resolve: async () => [{ address: '10.1.2.3', family: 4 }] });
  const out3 = await outside.deliver({ ...req('rebind.example'), url: `http://localhost:${port}/hook` });
  assert.match(out3.status === 'dead' ? out3.lastError : '', /refused URL: localhost resolves to 10\.1\.2\.3, not a loopback address/);
});
