// Webhook components (README "Components"): stanzas to a component domain POSTed, signed, to a local
// HTTP server standing in for the backend, which verifies the signature (401 when it fails) and may
// answer with stanzas; retries with backoff (the delivery's waits move the test clock), then the
// sweeper's for a message (kept, not bounced, its late answer routed), a dead letter after the last
// attempt; an IQ gets service-unavailable after the inline attempts.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { type TestClient, type TestServer, byName, connectClient, startTestServer } from '../support/harness.ts';
import { type WebhookServer, startWebhookServer } from '../support/webhook-server.ts';
import type { ComponentsApi } from '../../lib/extensions/components/index.ts';
import { WebhookStore } from '../../lib/webhooks/store.ts';
import { type Element, parseFrame, xml } from '../../lib/xmpp/xml.ts';

const D = 'localhost';
const HOOK = `hook.${D}`;
const SIGNING = 'webhook-signing-secret-1';

const stanzaErrorOf = (el: { getChild(n: string): { children: unknown[] } | undefined }) =>
  (el.getChild('error')?.children.find((c) => typeof c !== 'string') as { name: string } | undefined)?.name;

describe('webhook components', () => {
  let s: TestServer;
  let hook: WebhookServer;
  let alice: TestClient;
  let api: ComponentsApi;
  const waits: number[] = [];

  before(async () => {
    s = await startTestServer();
    hook = await startWebhookServer(SIGNING, { nowMs: () => s.clock.now() });
    await s.server.tenants.put({
      domain: D,
      enabled: true,
      components: [
        { domain: HOOK, kind: 'webhook', enabled: true, url: hook.url, signingSecret: SIGNING },
        { domain: `badsig.${D}`, kind: 'webhook', enabled: true, url: hook.url, signingSecret: 'not-the-receivers-secret' },
      ],
    });
    await s.addUser(`alice@${D}`);
    alice = await connectClient(s.url, { username: 'alice' });
    api = s.server.registry.apis.get('components') as ComponentsApi;
    // The delivery's backoff waits move the test clock instead of the wall clock.
    api.webhooks.sleep = async (ms) => {
      waits.push(ms);
      s.clock.advance(ms);
    };
  });
  beforeEach(() => {
    waits.length = 0;
    hook.received.length = 0;
    hook.answer = () => ({ status: 204 });
  });
  after(async () => {
    await alice?.stop();
    await hook?.close();
    await s?.stop();
  });

  test('a stanza is POSTed signed, as XML, and the stanzas of the answer are sent from the component', async () => {
    hook.answer = (req) => {
      const msg = parseFrame(req.body);
      return { status: 200, contentType: 'application/xmpp+xml', body: `<message to="${msg.attrs.from}" from="echo@${HOOK}" type="chat"><body>pong</body></message>` };
    };
    await alice.send(xml('message', { to: `echo@${HOOK}`, type: 'chat', id: 'w1' }, xml('body', {}, 'ping')));
    const reply = await alice.waitFor(byName('message', { from: `echo@${HOOK}` }));
    assert.equal(reply.getChildText('body'), 'pong');
    assert.equal(hook.received.length, 1);
    const req = hook.received[0];
    assert.ok(req.verified.ok, 'signature verified by the receiver');
    assert.equal(req.headers['content-type'], 'application/xmpp+xml');
    const posted = parseFrame(req.body);
    assert.equal(posted.attrs.xmlns, 'jabber:component:accept');
    assert.equal(posted.attrs.from, alice.jid);
    assert.equal(posted.attrs.to, `echo@${HOOK}`);
    assert.equal(posted.getChildText('body'), 'ping');
  });

  test("a user subscribes to a webhook component (RFC 6121 §3.1.2): her roster asks, the request is POSTed from her bare JID, the answer's subscribed updates her roster", async () => {
    const ROSTER = 'jabber:iq:roster';
    const bare = alice.jid.split('/')[0];
    hook.answer = (req) => {
      const p = parseFrame(req.body);
      return p.attrs.type === 'subscribe' ? { status: 200, body: `<presence from="${HOOK}" to="${p.attrs.from}" type="subscribed"/>` } : { status: 204 };
    };
    await alice.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: ROSTER })));
    const pushOf = (sub: string) => (el: Element) =>
      el.name === 'iq' && el.attrs.type === 'set' && el.getChild('query', ROSTER)?.getChild('item')?.attrs.jid === HOOK && el.getChild('query', ROSTER)?.getChild('item')?.attrs.subscription === sub;
    const asked = alice.waitFor(pushOf('none'));
    const answered = alice.waitFor(pushOf('to'));
    await alice.send(xml('presence', { to: HOOK, type: 'subscribe' }));
    assert.equal((await asked).getChild('query', ROSTER)?.getChild('item')?.attrs.ask, 'subscribe');
    await alice.waitFor(byName('presence', { from: HOOK, type: 'subscribed' }));
    await answered;
    const posted = parseFrame(hook.received.find((r) => parseFrame(r.body).attrs.type === 'subscribe')!.body);
    assert.deepEqual([posted.attrs.from, posted.attrs.to], [bare, HOOK]);
  });

  test('answer stanzas from another domain are dropped', async () => {
    hook.answer = () => ({ status: 200, body: `<message to="${alice.jid}" from="admin@${D}"><body>spoof</body></message><message to="${alice.jid}" from="${HOOK}"><body>fine</body></message>` });
    await alice.send(xml('message', { to: HOOK, type: 'chat' }, xml('body', {}, 'x')));
    await alice.waitFor(byName('message', { from: HOOK }));
    await alice.expectNothing(s, (el) => el.getChildText('body') === 'spoof');
  });

  test('a failing webhook is retried with backoff; the same delivery id on each attempt', async () => {
    let n = 0;
    hook.answer = () => (++n < 3 ? { status: 503 } : { status: 200, body: `<message to="${alice.jid}" from="${HOOK}"><body>third time</body></message>` });
    await alice.send(xml('message', { to: HOOK, type: 'chat' }, xml('body', {}, 'retry me')));
    const reply = await alice.waitFor(byName('message', { from: HOOK }));
    assert.equal(reply.getChildText('body'), 'third time');
    assert.equal(hook.received.length, 3);
    assert.equal(new Set(hook.received.map((r) => r.headers['x-xmpp-edge-delivery'])).size, 1);
    assert.deepEqual(hook.received.map((r) => r.headers['x-xmpp-edge-attempt']), ['1', '2', '3']);
    // Equal jitter around 250 ms, then 500 ms.
    assert.equal(waits.length, 2);
    assert.ok(waits[0] >= 125 && waits[0] <= 250, `first wait ${waits[0]}`);
    assert.ok(waits[1] >= 250 && waits[1] <= 500, `second wait ${waits[1]}`);
  });

  test('an attempt that gets no answer within its timeout (2 s) is retried', async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let n = 0;
    hook.answer = async () => {
      // The first request is answered only once its retry has come: the delivery gave up waiting.
      if (++n === 1) {
        await held;
        return { status: 200, body: `<message to="${alice.jid}" from="${HOOK}"><body>too late</body></message>` };
      }
      release();
      return { status: 200, body: `<message to="${alice.jid}" from="${HOOK}"><body>in time</body></message>` };
    };
    await alice.send(xml('message', { to: HOOK, type: 'chat' }, xml('body', {}, 'slow')));
    const reply = await alice.waitFor(byName('message', { from: HOOK }));
    assert.equal(reply.getChildText('body'), 'in time');
    assert.deepEqual(hook.received.map((r) => r.headers['x-xmpp-edge-attempt']), ['1', '2']);
    await alice.expectNothing(s, (el) => el.getChildText('body') === 'too late');
  });

  test('a message to a webhook that is down is kept, not bounced: the sweeper delivers it minutes later and routes the answer', async () => {
    let down = true;
    hook.answer = (req) => (down ? { status: 503 } : { status: 200, body: `<message to="${parseFrame(req.body).attrs.from}" from="${HOOK}"><body>late answer</body></message>` });
    await alice.send(xml('message', { to: HOOK, type: 'chat', id: 'kept1' }, xml('body', {}, 'are you up?')));
    await alice.roundTrip();
    assert.equal(hook.received.length, 3);
    // The sender hears nothing: a component is like a server, which queues for a peer that is down.
    await alice.expectNothing(s, (el) => el.attrs.type === 'error');
    const store = new WebhookStore(s.server.db, s.server.table, 'local');
    const waiting = await store.due('component', s.clock.now() + 3_600_000);
    assert.equal(waiting.length, 1);
    assert.equal(waiting[0].source, `component:${HOOK}`);
    // A minute later, still down: tried again (the 4th attempt), kept.
    s.clock.advance(61_000);
    await s.server.sweep();
    assert.equal(hook.received.length, 4);
    assert.equal((await store.due('component', s.clock.now() + 3_600_000)).length, 1);
    // Back up: the next sweep delivers it, same delivery id, and the answer's stanzas reach the sender.
    down = false;
    s.clock.advance(121_000);
    // The module's sweep step alone, to count its calls.
    const sweep = await s.cost(async () => {
      assert.deepEqual(await api.webhooks.retry(s.server), { delivered: 1, rescheduled: 0, dead: 0, dropped: 0 });
    });
    const reply = await alice.waitFor(byName('message', { from: HOOK }));
    assert.equal(reply.getChildText('body'), 'late answer');
    assert.deepEqual(hook.received.map((r) => r.headers['x-xmpp-edge-attempt']), ['1', '2', '3', '4', '5']);
    assert.equal(new Set(hook.received.map((r) => r.headers['x-xmpp-edge-delivery'])).size, 1);
    assert.equal(parseFrame(hook.received[4].body).getChildText('body'), 'are you up?');
    assert.deepEqual(await store.due('component', s.clock.now() + 3_600_000), []);
    // The retry itself: one Query of the component channel, the tenant item read again (past its cache
    // time) for the URL and secret, the claim (UpdateItem) and the delete once delivered. The rest is the
    // answer routed to alice exactly as an inline answer is (the tenant item, her sessions, her archive's
    // write and the batch read of the router's checks, one post).
    const retry = { 'dynamodb:QueryCommand': 1, 'dynamodb:GetItemCommand': 1, 'dynamodb:UpdateItemCommand': 1, 'dynamodb:DeleteItemCommand': 1 };
    const answer = { 'dynamodb:GetItemCommand': 2, 'dynamodb:PutItemCommand': 1, 'dynamodb:BatchGetItemCommand': 1, 'management:PostToConnectionCommand': 1 };
    assert.deepEqual(sweep.calls, { ...retry, ...answer, 'dynamodb:GetItemCommand': 3 }, JSON.stringify(sweep.calls));
  });

  test('an IQ cannot wait minutes: after the inline attempts, a dead letter and service-unavailable; nothing kept', async () => {
    hook.answer = () => ({ status: 503 });
    const err = alice.waitFor(byName('iq', { type: 'error', id: 'iq-down' }));
    await alice.send(xml('iq', { to: HOOK, type: 'get', id: 'iq-down' }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })));
    assert.equal(stanzaErrorOf(await err), 'service-unavailable');
    assert.equal(hook.received.length, 3);
    const store = new WebhookStore(s.server.db, s.server.table, 'local');
    assert.deepEqual(await store.due('component', s.clock.now() + 3_600_000), []);
    const letter = (await store.deadLetters(D)).items.find((d) => d.body.includes('iq-down'));
    assert.ok(letter, 'dead letter kept');
    assert.equal(letter.attempts, 3);
  });

  test('down for good: 8 attempts over about half an hour, then a dead letter and the message bounced with remote-server-timeout', async () => {
    hook.answer = () => ({ status: 500 });
    const err = alice.waitFor(byName('message', { type: 'error', from: HOOK }));
    await alice.send(xml('message', { to: HOOK, type: 'chat', id: 'lost1' }, xml('body', {}, 'lost?')));
    await alice.roundTrip();
    const store = new WebhookStore(s.server.db, s.server.table, 'local');
    const start = s.clock.now();
    for (let attempt = 4; attempt <= 8; attempt++) {
      const [p] = await store.due('component', s.clock.now() + 3_600_000);
      s.clock.advance(p.dueAt - s.clock.now());
      // The module's sweep step (the whole sweep would also end alice's session, whose pings nobody answers).
      await api.webhooks.retry(s.server);
    }
    const minutes = (s.clock.now() - start) / 60_000;
    assert.ok(minutes > 15 && minutes <= 31, `${minutes} minutes`);
    const bounced = await err;
    assert.equal(stanzaErrorOf(bounced), 'remote-server-timeout');
    assert.equal(bounced.attrs.id, 'lost1');
    assert.equal(hook.received.length, 8);
    assert.deepEqual(await store.due('component', s.clock.now() + 3_600_000), []);
    const letter = (await store.deadLetters(D, { now: s.clock.now() })).items.find((d) => d.body.includes('lost?'));
    assert.ok(letter, 'dead letter kept');
    assert.equal(letter.source, `component:${HOOK}`);
    assert.equal(letter.attempts, 8);
  });

  test('a kept message whose component is disabled before its retry is dropped, and its sender gets service-unavailable', async () => {
    hook.answer = () => ({ status: 503 });
    await alice.send(xml('message', { to: `echo@${HOOK}`, type: 'chat', id: 'gone1' }, xml('body', {}, 'for a component going away')));
    await alice.roundTrip();
    const store = new WebhookStore(s.server.db, s.server.table, 'local');
    assert.equal((await store.due('component', s.clock.now() + 3_600_000)).length, 1);
    const tenant = (await s.server.tenants.get(D, 0))!;
    const list = tenant.components as { domain: string; enabled: boolean }[];
    await s.server.tenants.put({ ...tenant, components: list.map((c) => (c.domain === HOOK ? { ...c, enabled: false } : c)) });
    try {
      s.clock.advance(61_000);
      const err = alice.waitFor(byName('message', { type: 'error', id: 'gone1' }));
      assert.deepEqual(await api.webhooks.retry(s.server), { delivered: 0, rescheduled: 0, dead: 0, dropped: 1 });
      assert.equal(stanzaErrorOf(await err), 'service-unavailable');
      assert.equal(hook.received.length, 3, 'no attempt to a disabled component');
      assert.deepEqual(await store.due('component', s.clock.now() + 3_600_000), []);
    } finally {
      await s.server.tenants.put(tenant);
      s.clock.advance(5_000);
    }
  });

  test('a request signed with the wrong secret is refused by the receiver (401): not retried, dead letter, service-unavailable', async () => {
    const err = alice.waitFor(byName('message', { type: 'error', from: `badsig.${D}` }));
    await alice.send(xml('message', { to: `badsig.${D}`, type: 'chat' }, xml('body', {}, 'forged')));
    assert.equal(stanzaErrorOf(await err), 'service-unavailable');
    assert.equal(hook.received.length, 1);
    assert.equal(hook.received[0].verified.ok, false);
    assert.equal(hook.accepted.filter((r) => r.body.includes('forged')).length, 0);
  });

  test('cost: a message to a webhook component costs no DynamoDB call and no post', async () => {
    await alice.send(xml('message', { to: HOOK, type: 'chat' }, xml('body', {}, 'warm')));
    await alice.roundTrip();
    const cost = await s.cost(async () => {
      await alice.send(xml('message', { to: HOOK, type: 'chat' }, xml('body', {}, 'cost')));
      await alice.roundTrip();
    });
    // The ping round trip itself is one post.
    assert.deepEqual([cost.reads, cost.writes, cost.posts], [0, 0, 1], JSON.stringify(cost.calls));
    assert.equal(hook.received.length, 2);
  });
});
