// BOSH (XEP-0124, XEP-0206) request by request, with a raw HTTP client that chooses its rids: session
// creation and its attributes, the rid window (out-of-order requests held and processed in rid order,
// a repeated rid answered as before, a rid outside the window ends the session), keys (§15), pause,
// terminate both ways, stream errors inside terminate, inactivity (TestClock and the sweeper), CORS,
// and what a request costs in DynamoDB calls. A WebSocket user (xmpp.js) is on the other end.
import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import type { XmppModule } from '../../lib/core/modules.ts';
import { offlineOf } from '../../lib/extensions/offline/index.ts';
import { BOSH_POLL_MS } from '../../functions/bosh.ts';
import { BoshEndpoint } from '../../lib/gateway/bosh/endpoint.ts';
import { connectionIdOfSid, sha1Hex } from '../../lib/gateway/bosh/protocol.ts';
import { BoshSessionStore } from '../../lib/store/bosh-sessions.ts';
import { createDynamoClient } from '../../lib/store/dynamo.ts';
import { type TestClient, type TestServer, byName, connectClient, startTestServer, until, xml } from '../support/harness.ts';
import { NS_HTTPBIND, RawBosh, postBody } from '../support/bosh.ts';
import { mutualSubscription } from '../support/roster.ts';

let s: TestServer;
let n = 0;
const clients: TestClient[] = [];

async function account(): Promise<string> {
  const name = `bo${++n}`;
  await s.addUser(`${name}@localhost`);
  return name;
}

async function ws(username: string, resource?: string): Promise<TestClient> {
  const c = await connectClient(s.url, { username, resource });
  clients.push(c);
  return c;
}

/**
 * A BOSH session of a new account `a`, available, and its mutually subscribed contact `bob` on WebSocket,
 * who has seen it come online.
 */
async function onlineWithContact(): Promise<{ a: string; bob: TestClient; bosh: RawBosh; jid: string }> {
  const [a, b] = [await account(), await account()];
  await mutualSubscription(s, `${a}@localhost`, `${b}@localhost`);
  const bob = await ws(b);
  await bob.send(xml('presence'));
  const bosh = new RawBosh(s.boshUrl);
  const jid = await bosh.login(a);
  await bosh.send('<presence xmlns="jabber:client"/>');
  await bob.waitFor((e) => e.name === 'presence' && e.attrs.from === jid && e.attrs.type === undefined);
  return { a, bob, bosh, jid };
}

const chat = (to: string, body: string) => `<message xmlns="jabber:client" to="${to}" type="chat" id="m-${body}"><body>${body}</body></message>`;
const bodiesOf = (reply: { body: import('../support/harness.ts').Element }) =>
  RawBosh.children(reply as never)
    .filter((e) => e.name === 'message')
    .map((e) => e.getChildText('body'));

/** Bodies of messages whose first processing fails as a throttled DynamoDB call would (retryable). */
const failNext = new Set<string>();
const flaky: XmppModule = {
  name: 'test-flaky',
  install(ctx) {
    ctx.hook('stanza/in', ({ stanza }) => {
      const body = stanza.getChildText('body');
      if (body && failNext.delete(body)) throw Object.assign(new Error('throttled'), { name: 'ThrottlingException', $metadata: {}, $retryable: { throttling: true } });
    });
  },
};

before(async () => {
  s = await startTestServer({ tenantWatchMs: 3_600_000, extraModules: [flaky] });
});
after(async () => {
  for (const c of clients) await c.stop();
  await s.stop();
});

describe('session creation (XEP-0124 §7, XEP-0206 §4)', () => {
  it('grants wait (capped), hold, requests = hold + 1, ver, inactivity, polling, maxpause; names the stream (authid, from); the stream features come in the same response as text/xml; charset=utf-8', async () => {
    const b = new RawBosh(s.boshUrl);
    const reply = await b.create({ wait: 600, hold: 3, ver: '1.6' });
    assert.equal(reply.status, 200);
    assert.equal(reply.headers.get('content-type'), 'text/xml; charset=utf-8');
    const a = reply.body.attrs;
    assert.equal(a.xmlns, NS_HTTPBIND);
    assert.match(a.sid, /^[A-Za-z0-9_-]{24}$/);
    assert.deepEqual(
      { wait: a.wait, hold: a.hold, requests: a.requests, ver: a.ver, inactivity: a.inactivity, polling: a.polling, maxpause: a.maxpause, from: a.from },
      { wait: '60', hold: '1', requests: '2', ver: '1.6', inactivity: '60', polling: '2', maxpause: '120', from: 'localhost' },
    );
    assert.equal(a['xmpp:version'], '1.0');
    assert.equal(a['xmpp:restartlogic'], 'true');
    assert.match(a.authid, /^[0-9a-f]{24}$/);
    const features = RawBosh.children(reply).find((e) => e.name === 'stream:features');
    assert.equal(features?.getChild('mechanisms')?.attrs.xmlns, 'urn:ietf:params:xml:ns:xmpp-sasl', reply.text);
  });

  it('grants the lower version, uses the content type asked for, and acknowledges rids when asked (§9.1)', async () => {
    const b = new RawBosh(s.boshUrl);
    const reply = await b.create({ ver: '1.99', content: 'application/xml; charset=utf-8', ack: 1 });
    assert.equal(reply.body.attrs.ver, '1.11');
    // §7.1: the Content-Type of every response of the session.
    assert.equal(reply.headers.get('content-type'), 'application/xml; charset=utf-8');
    assert.equal(reply.body.attrs.ack, String(b.rid - 1));
    // A held request released by the next one acknowledges that later rid (§9.1); a request
    // answered as the last one received needs no ack.
    const held = b.send('');
    await until('the request to be held', () => s.bosh.waiting(b.sid) > 0);
    const next = b.rid;
    const paused = await b.send('', { pause: 1 });
    assert.equal(paused.body.attrs.ack, undefined);
    assert.equal(paused.headers.get('content-type'), 'application/xml; charset=utf-8');
    assert.equal((await held).body.attrs.ack, String(next));
  });

  it('refuses a request without to (improper-addressing), an unknown domain (host-unknown), a body that is not XML or not a BOSH body (bad-request, 400)', async () => {
    const noTo = await new RawBosh(s.boshUrl).create({ to: undefined });
    assert.deepEqual([noTo.body.attrs.type, noTo.body.attrs.condition], ['terminate', 'improper-addressing']);
    const unknown = await new RawBosh(s.boshUrl).create({ to: 'nowhere.example' });
    assert.deepEqual([unknown.body.attrs.type, unknown.body.attrs.condition], ['terminate', 'host-unknown']);
    const junk = await postBody(s.boshUrl, '<body xmlns="http://jabber.org/protocol/httpbind" rid="1"');
    assert.deepEqual([junk.status, junk.body.attrs.type, junk.body.attrs.condition], [400, 'terminate', 'bad-request']);
    const other = await postBody(s.boshUrl, '<message xmlns="jabber:client"/>');
    assert.deepEqual([other.status, other.body.attrs.condition], [400, 'bad-request']);
    const noRid = await postBody(s.boshUrl, `<body xmlns="${NS_HTTPBIND}" to="localhost" wait="5" hold="1"/>`);
    assert.deepEqual([noRid.status, noRid.body.attrs.condition], [400, 'bad-request']);
    // §7.1: a session request needs wait and hold.
    const noWait = await new RawBosh(s.boshUrl).create({ wait: undefined });
    assert.deepEqual([noWait.status, noWait.body.attrs.condition], [400, 'bad-request']);
    const badHold = await new RawBosh(s.boshUrl).create({ hold: 'one' });
    assert.deepEqual([badHold.status, badHold.body.attrs.condition], [400, 'bad-request']);
  });

  it('answers a request for an unknown sid with item-not-found', async () => {
    const b = new RawBosh(s.boshUrl);
    b.sid = 'no-such-session-at-all';
    const reply = await b.send('');
    assert.deepEqual([reply.status, reply.body.attrs.type, reply.body.attrs.condition], [200, 'terminate', 'item-not-found']);
  });
});

describe('chat with a WebSocket user', () => {
  it('logs in (SASL, xmpp:restart, bind) and chats both ways; a waiting request is answered by the stanza, not when its wait runs out', async () => {
    const [a, b] = [await account(), await account()];
    const bosh = new RawBosh(s.boshUrl);
    const jid = await bosh.login(a, 'secret', 'web', { wait: 60 });
    assert.equal(jid, `${a}@localhost/web`);
    const bob = await ws(b);
    // BOSH → WebSocket (the request is then held, as nothing came back for it)
    const sending = bosh.send(chat(bob.jid, 'hello bob'));
    const got = await bob.waitFor(byName('message'));
    assert.equal(got.getChildText('body'), 'hello bob');
    assert.equal(got.attrs.from, jid);
    // WebSocket → BOSH, to the request waiting since (a client keeps one request open, and sends no
    // empty one beside it: XEP-0124 §11).
    await until('the request to be held', () => s.bosh.waiting(bosh.sid) > 0);
    const sentAt = Date.now();
    await bob.send(xml('message', { to: jid, type: 'chat' }, xml('body', {}, 'hello alice')));
    const reply = await sending;
    const latency = Date.now() - sentAt;
    assert.deepEqual(bodiesOf(reply), ['hello alice']);
    // Pushed to the held request: a server that looked only when the wait (60 s) ran out would take
    // about a minute. The bound is half of that, so no load on the machine reaches it.
    assert.ok(latency < 30_000, `delivered in ${latency} ms`);
  });

  it('50 messages each way arrive in order', async () => {
    const [a, b] = [await account(), await account()];
    const bosh = new RawBosh(s.boshUrl);
    const jid = await bosh.login(a);
    const bob = await ws(b);
    // Several stanzas per request, as clients batch them; as a client does, each request goes out
    // while the one before is still held (requests = 2), which it releases.
    let held = bosh.send(Array.from({ length: 5 }, (_, k) => chat(bob.jid, `to-bob-${k}`)).join(''));
    for (let i = 5; i < 50; i += 5) {
      const next = bosh.send(Array.from({ length: 5 }, (_, k) => chat(bob.jid, `to-bob-${i + k}`)).join(''));
      await held;
      held = next;
    }
    const atBob: string[] = [];
    for (let i = 0; i < 50; i++) atBob.push((await bob.waitFor(byName('message'))).getChildText('body')!);
    assert.deepEqual(atBob, Array.from({ length: 50 }, (_, i) => `to-bob-${i}`));
    for (let i = 0; i < 50; i++) await bob.send(xml('message', { to: jid, type: 'chat' }, xml('body', {}, `to-alice-${i}`)));
    // The request still held takes the first ones, then each poll what has come since, in rid order.
    const atAlice: string[] = [];
    atAlice.push(...(bodiesOf(await held) as string[]));
    let poll = bosh.send('');
    while (atAlice.length < 50) {
      const reply = await poll;
      atAlice.push(...(bodiesOf(reply) as string[]));
      if (atAlice.length < 50) poll = bosh.send('');
    }
    assert.deepEqual(atAlice, Array.from({ length: 50 }, (_, i) => `to-alice-${i}`));
  });
});

describe('request ids (XEP-0124 §14)', () => {
  it('holds a request that comes ahead of its turn and processes the requests in rid order', async () => {
    const [a, b] = [await account(), await account()];
    const bosh = new RawBosh(s.boshUrl);
    await bosh.login(a);
    const bob = await ws(b);
    const first = bosh.rid;
    const later = bosh.send(chat(bob.jid, 'second'), { rid: first + 1 });
    // The later one is held, not processed: nothing reaches bob until its predecessor comes.
    await bob.expectNothing(s, byName('message'));
    const earlier = bosh.send(chat(bob.jid, 'first'), { rid: first });
    bosh.rid = first + 2;
    assert.equal((await bob.waitFor(byName('message'))).getChildText('body'), 'first');
    assert.equal((await bob.waitFor(byName('message'))).getChildText('body'), 'second');
    await earlier;
    // A third request releases the one still held (hold = 1); empty, it comes no sooner than
    // `polling` seconds after the one held (§11).
    s.clock.advance(2000);
    const release = bosh.send('');
    assert.equal((await later).status, 200);
    await bob.send(xml('message', { to: `${a}@localhost/bosh`, type: 'chat' }, xml('body', {}, 'done')));
    assert.deepEqual(bodiesOf(await release), ['done']);
  });

  it('answers a repeated rid with the same response as the first time, without processing it again', async () => {
    const [a, b] = [await account(), await account()];
    const bosh = new RawBosh(s.boshUrl);
    await bosh.login(a);
    const bob = await ws(b);
    const rid = bosh.rid;
    const ping = `<iq xmlns="jabber:client" type="get" id="p1" to="localhost"><ping xmlns="urn:xmpp:ping"/></iq>${chat(bob.jid, 'once')}`;
    const firstTime = await bosh.send(ping, { rid });
    assert.ok(firstTime.body.getChild('iq'), firstTime.text);
    const again = await bosh.send(ping, { rid });
    assert.equal(again.text, firstTime.text);
    await bob.waitFor(byName('message'));
    await bob.expectNothing(s, byName('message'));
  });

  it('ends the session on a rid outside the window: item-not-found, and its contact sees it unavailable', async () => {
    const { bob, bosh, jid } = await onlineWithContact();
    const reply = await bosh.send('', { rid: bosh.rid + 5 });
    assert.deepEqual([reply.body.attrs.type, reply.body.attrs.condition], ['terminate', 'item-not-found']);
    await bob.waitFor((e) => e.name === 'presence' && e.attrs.from === jid && e.attrs.type === 'unavailable');
    const after = await bosh.send('');
    assert.equal(after.body.attrs.type, 'terminate');
  });
});

describe('keys (XEP-0124 §15)', () => {
  it('accepts the key chain, takes a new key, and refuses a wrong key with item-not-found', async () => {
    const keys = ['k0', 'k1', 'k2', 'k3'];
    // K(n) = hex(SHA-1(K(n-1))), used last to first.
    for (let i = 1; i < keys.length; i++) keys[i] = sha1Hex(keys[i - 1]);
    const bosh = new RawBosh(s.boshUrl);
    await bosh.create({ newkey: keys[3] });
    const first = await bosh.send('', { key: keys[2], pause: 1 });
    assert.equal(first.body.attrs.type, undefined);
    // §14.3 with §15: a repeat carries the key its first copy carried; another key is refused.
    assert.equal((await bosh.send('', { rid: bosh.rid - 1, key: keys[2], pause: 1 })).text, first.text);
    assert.equal((await bosh.send('', { rid: bosh.rid - 1, key: 'forged', pause: 1 })).body.attrs.condition, 'item-not-found');
    // A rid outside the window with a wrong key does not end the session (a forger cannot end it).
    assert.equal((await bosh.send('', { rid: bosh.rid + 10, key: 'forged', pause: 1 })).body.attrs.condition, 'item-not-found');
    const fresh = ['n0', 'n1'];
    fresh[1] = sha1Hex(fresh[0]);
    assert.equal((await bosh.send('', { key: keys[1], newkey: fresh[1], pause: 1 })).body.attrs.type, undefined);
    const wrong = await bosh.send('', { key: keys[0], pause: 1 });
    assert.deepEqual([wrong.body.attrs.type, wrong.body.attrs.condition], ['terminate', 'item-not-found']);
    bosh.rid--;
    assert.equal((await bosh.send('', { key: fresh[0], pause: 1 })).body.attrs.type, undefined);
  });
});

describe('failures', () => {
  it('a request whose frame failed for a passing reason is answered 503; sent again with the same rid, it is processed once', async () => {
    const [a, b] = [await account(), await account()];
    const bosh = new RawBosh(s.boshUrl);
    await bosh.login(a);
    const bob = await ws(b);
    const rid = bosh.rid++;
    failNext.add('flaky');
    const payload = chat(bob.jid, 'steady') + chat(bob.jid, 'flaky');
    const failed = await postBody(s.boshUrl, `<body xmlns="${NS_HTTPBIND}" rid="${rid}" sid="${bosh.sid}">${payload}</body>`);
    assert.equal(failed.status, 503, failed.text);
    const again = bosh.send(payload, { rid });
    const got = [(await bob.waitFor(byName('message'))).getChildText('body'), (await bob.waitFor(byName('message'))).getChildText('body')];
    assert.deepEqual(got, ['steady', 'flaky']);
    await bob.expectNothing(s, byName('message'));
    await bosh.send('', { pause: 1 });
    assert.equal((await again).status, 200);
  });

  it('a session whose XMPP stream the server ended without a stream error answers remote-connection-failed', async () => {
    const bosh = new RawBosh(s.boshUrl);
    await bosh.login(await account());
    // As the sweeper ends a connection past the core's maximum duration (2 hours): as a socket gone.
    await s.server.endConnection(connectionIdOfSid(bosh.sid), 'expired', { socketClosed: true });
    const reply = await bosh.send('<presence xmlns="jabber:client"/>');
    assert.deepEqual([reply.body.attrs.type, reply.body.attrs.condition], ['terminate', 'remote-connection-failed'], reply.text);
  });
});

describe('pause, wait and terminate (XEP-0124 §8, §10, §12; XEP-0206 §4.3)', () => {
  it('answers an empty body when wait runs out', async () => {
    const bosh = new RawBosh(s.boshUrl);
    await bosh.create({ wait: 1 });
    const started = Date.now();
    const reply = await bosh.send('');
    assert.equal(reply.text, `<body xmlns="${NS_HTTPBIND}"/>`);
    assert.ok(Date.now() - started >= 900);
  });

  it('a pause releases the waiting request and is answered at once; one over maxpause ends the session with policy-violation', async () => {
    const bosh = new RawBosh(s.boshUrl);
    await bosh.login(await account());
    const held = bosh.send('');
    const paused = await bosh.send('', { pause: 60 });
    assert.equal(paused.body.attrs.type, undefined);
    assert.equal((await held).body.attrs.type, undefined);
    const tooLong = await bosh.send('', { pause: 121 });
    assert.deepEqual([tooLong.body.attrs.type, tooLong.body.attrs.condition], ['terminate', 'policy-violation']);
  });

  it('the client terminates with its last stanza: the contact gets it, then sees the session unavailable', async () => {
    const { bob, bosh, jid } = await onlineWithContact();
    const reply = await bosh.send(chat(bob.jid, 'bye'), { type: 'terminate' });
    assert.equal(reply.body.attrs.type, 'terminate');
    assert.equal(reply.body.attrs.condition, undefined);
    assert.equal((await bob.waitFor(byName('message'))).getChildText('body'), 'bye');
    await bob.waitFor((e) => e.name === 'presence' && e.attrs.from === jid && e.attrs.type === 'unavailable');
    assert.equal((await bosh.send('')).body.attrs.type, 'terminate');
  });

  it('a stream error reaches the waiting request inside a terminate body (remote-stream-error with <conflict/>)', async () => {
    const a = await account();
    const bosh = new RawBosh(s.boshUrl);
    await bosh.login(a, 'secret', 'same');
    const held = bosh.send('');
    await s.gateway.idle();
    // RFC 6120 §7.7.2.2: a new session for the same resource replaces this one.
    await ws(a, 'same');
    const reply = await held;
    assert.deepEqual([reply.body.attrs.type, reply.body.attrs.condition], ['terminate', 'remote-stream-error'], reply.text);
    const error = RawBosh.children(reply).find((e) => e.name === 'stream:error');
    assert.equal(error?.getChild('conflict')?.attrs.xmlns, 'urn:ietf:params:xml:ns:xmpp-streams', reply.text);
  });
});

describe('response acknowledgements (XEP-0124 §9.2)', () => {
  beforeEach(() => s.clock.freeze());
  afterEach(() => s.clock.thaw());

  it("a request whose ack says a response sent earlier never came is answered at once with report and time; the client sends that request again and gets the response as before", async () => {
    const [a, b] = [await account(), await account()];
    const bosh = new RawBosh(s.boshUrl);
    const jid = await bosh.login(a, 'secret', 'acker', { ack: 1 });
    const bob = await ws(b);
    const held = bosh.send('');
    await until('the request to be held', () => s.bosh.waiting(bosh.sid) > 0);
    const lost = bosh.rid - 1;
    await bob.send(xml('message', { to: jid, type: 'chat' }, xml('body', {}, 'lost on the way')));
    const first = await held;
    assert.deepEqual(bodiesOf(first), ['lost on the way']);
    // The client never saw that response: its next request acknowledges only the one before.
    s.clock.advance(852);
    const reply = await bosh.send('', { ack: lost - 1 });
    assert.deepEqual([reply.body.attrs.report, reply.body.attrs.time], [String(lost), '852'], reply.text);
    assert.equal(s.bosh.waiting(bosh.sid), 0);
    // §14.3: the kept response (its ack now the highest rid received, §9.1).
    const again = await bosh.send('', { rid: lost });
    assert.deepEqual(bodiesOf(again), ['lost on the way']);
    assert.equal(again.body.attrs.ack, String(bosh.rid - 1));
    // Acknowledging everything: a request like any other (held).
    s.clock.advance(2000);
    const next = bosh.send('', { ack: bosh.rid - 1 });
    await until('the request to be held', () => s.bosh.waiting(bosh.sid) > 0);
    await bosh.send('', { pause: 1 });
    assert.equal((await next).body.attrs.report, undefined);
  });
});

describe('overactivity and polling sessions (XEP-0124 §11, §12): policy-violation', () => {
  // Time moves only with advance(), so "within `polling` seconds" does not depend on the machine's load.
  beforeEach(() => s.clock.freeze());
  afterEach(() => s.clock.thaw());

  it('too many simultaneous requests: a third request while the first is held and the second not yet processed ends the session; the held one learns it too', async () => {
    const { bob, bosh, jid } = await onlineWithContact();
    const held = bosh.send('');
    await until('the request to be held', () => s.bosh.waiting(bosh.sid) > 0);
    // requests = 2: the one held, the next one (in flight), and this one make three.
    const third = await bosh.send(chat(bob.jid, 'third'), { rid: bosh.rid + 1 });
    assert.deepEqual([third.body.attrs.type, third.body.attrs.condition], ['terminate', 'policy-violation'], third.text);
    assert.deepEqual([(await held).body.attrs.type, (await held).body.attrs.condition], ['terminate', 'policy-violation']);
    await bob.waitFor((e) => e.name === 'presence' && e.attrs.from === jid && e.attrs.type === 'unavailable');
    await bob.expectNothing(s, byName('message'));
  });

  it('too frequent: an empty request beside a held one within `polling` seconds ends the session; `polling` seconds later it is a request like any other', async () => {
    const bosh = new RawBosh(s.boshUrl);
    await bosh.login(await account());
    const polling = Number(bosh.created!.attrs.polling);
    assert.equal(polling, 2);
    const first = bosh.send('');
    await until('the request to be held', () => s.bosh.waiting(bosh.sid) > 0);
    s.clock.advance(polling * 1000);
    // It releases the first and is held in its place.
    const second = bosh.send('');
    assert.equal((await first).text, `<body xmlns="${NS_HTTPBIND}"/>`);
    await until('the second to be held', () => s.bosh.waiting(bosh.sid) > 0);
    s.clock.advance(polling * 1000 - 1);
    const third = await bosh.send('');
    assert.deepEqual([third.body.attrs.type, third.body.attrs.condition], ['terminate', 'policy-violation'], third.text);
    assert.deepEqual([(await second).body.attrs.type, (await second).body.attrs.condition], ['terminate', 'policy-violation']);
  });

  it('a polling session (hold 0): two empty requests within `polling` seconds, the first answered without payloads, end it; after a response with payloads, or `polling` seconds later, an empty request is fine', async () => {
    const [a, b] = [await account(), await account()];
    const bosh = new RawBosh(s.boshUrl);
    const jid = await bosh.login(a, 'secret', 'poller', { hold: 0 });
    assert.deepEqual([bosh.created!.attrs.hold, bosh.created!.attrs.requests], ['0', '1']);
    const bob = await ws(b);
    await bob.send(xml('message', { to: jid, type: 'chat' }, xml('body', {}, 'poll me')));
    await bob.roundTrip();
    await s.gateway.idle();
    // Polls are answered at once; this one carries bob's message, so the next may follow right away.
    assert.deepEqual(bodiesOf(await bosh.send('')), ['poll me']);
    assert.equal((await bosh.send('')).text, `<body xmlns="${NS_HTTPBIND}"/>`);
    s.clock.advance(2000);
    assert.equal((await bosh.send('')).text, `<body xmlns="${NS_HTTPBIND}"/>`);
    s.clock.advance(1999);
    const tooSoon = await bosh.send('');
    assert.deepEqual([tooSoon.body.attrs.type, tooSoon.body.attrs.condition], ['terminate', 'policy-violation'], tooSoon.text);
    assert.equal((await bosh.send('')).body.attrs.type, 'terminate');
  });
});

describe('inactivity (XEP-0124 §7.1)', () => {
  it('the sweeper ends a session without requests past wait + inactivity: its contact sees it unavailable and a message queued for it goes to offline storage', async () => {
    const { a, bob, bosh, jid } = await onlineWithContact();
    // The client stops polling; bob's message waits in the session's queue.
    await bob.send(xml('message', { to: jid, type: 'chat' }, xml('body', {}, 'are you there?')));
    await bob.roundTrip();
    await s.gateway.idle();
    const wait = Number(bosh.created!.attrs.wait);
    // Not yet: inactivity counts from when the last request was answered, at the latest after `wait`.
    s.clock.advance((wait + 59) * 1000);
    await s.server.sweep();
    await bob.expectNothing(s, (e) => e.name === 'presence' && e.attrs.type === 'unavailable');
    s.clock.advance(2000);
    await s.server.sweep();
    await bob.waitFor((e) => e.name === 'presence' && e.attrs.from === jid && e.attrs.type === 'unavailable');
    const kept = await offlineOf(s.server).list(`${a}@localhost`);
    assert.deepEqual(kept.map((m) => /<body>([^<]*)<\/body>/.exec(m.xml)?.[1]), ['are you there?']);
    const late = await bosh.send('');
    assert.equal(late.body.attrs.type, 'terminate');
  });
});

describe('CORS', () => {
  it('answers a preflight, and allows the origins the tenant lists (any by default)', async () => {
    const pre = await fetch(s.boshUrl, { method: 'OPTIONS', headers: { origin: 'https://app.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' } });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers.get('access-control-allow-origin'), 'https://app.example');
    assert.match(pre.headers.get('access-control-allow-methods')!, /POST/);
    assert.match(pre.headers.get('access-control-allow-headers')!, /content-type/);
    const any = await new RawBosh(s.boshUrl).create();
    void any;
    const open = await postBody(s.boshUrl, `<body xmlns="${NS_HTTPBIND}" rid="5" to="localhost" wait="5" hold="1" xmpp:version="1.0" xmlns:xmpp="urn:xmpp:xbosh"/>`, { origin: 'https://app.example' });
    assert.equal(open.headers.get('access-control-allow-origin'), '*');
    await s.server.tenants.put({ ...(await s.server.tenants.get('localhost'))!, bosh: { allowOrigins: ['https://app.example'] } } as never);
    s.clock.advance(61_000); // past the tenant cache
    const listed = await postBody(s.boshUrl, `<body xmlns="${NS_HTTPBIND}" rid="5" to="localhost" wait="5" hold="1" xmpp:version="1.0" xmlns:xmpp="urn:xmpp:xbosh"/>`, { origin: 'https://app.example' });
    assert.equal(listed.headers.get('access-control-allow-origin'), 'https://app.example');
    const other = await postBody(s.boshUrl, `<body xmlns="${NS_HTTPBIND}" rid="5" to="localhost" wait="5" hold="1" xmpp:version="1.0" xmlns:xmpp="urn:xmpp:xbosh"/>`, { origin: 'https://evil.example' });
    assert.equal(other.headers.get('access-control-allow-origin'), null);
    const t = (await s.server.tenants.get('localhost'))! as Record<string, unknown>;
    delete t.bosh;
    await s.server.tenants.put(t as never);
    s.clock.advance(61_000);
  });

  it('host-meta lists the BOSH URL beside the WebSocket one (XEP-0156)', async () => {
    const jrd = (await (await fetch(`${s.hostMetaUrl}.json`)).json()) as { links: { rel: string; href: string }[] };
    assert.deepEqual(jrd.links, [
      { rel: 'urn:xmpp:alt-connections:xbosh', href: s.boshUrl },
      { rel: 'urn:xmpp:alt-connections:websocket', href: s.url },
    ]);
  });
});

describe('what a BOSH request costs (README "Cost per operation")', () => {
  it('an empty poll that waits out `wait`: one GetItem and one UpdateItem (the rid), nothing more while it waits', async () => {
    const bosh = new RawBosh(s.boshUrl);
    await bosh.login(await account(), 'secret', 'bosh', { wait: 1 });
    const cost = await s.cost(async () => {
      const reply = await bosh.send('', { rid: bosh.rid++ });
      assert.equal(reply.text, `<body xmlns="${NS_HTTPBIND}"/>`);
    });
    assert.deepEqual(cost.calls, { 'dynamodb:GetItemCommand': 1, 'dynamodb:UpdateItemCommand': 1 });
  });

  it('a message from a WebSocket user to a waiting request: besides what a message costs, one UpdateItem to queue it instead of a post, and one GetItem and one UpdateItem to take it', async () => {
    const [a, b, c] = [await account(), await account(), await account()];
    const bosh = new RawBosh(s.boshUrl);
    const jid = await bosh.login(a);
    const bob = await ws(b);
    const carol = await ws(c);
    const message = (to: string) => xml('message', { to, type: 'chat' }, xml('body', {}, 'priced'));
    // The same message to a WebSocket user, for comparison.
    const toWebSocket = await s.cost(async () => {
      await bob.send(message(carol.jid));
      await carol.waitFor(byName('message'));
    });
    let poll!: ReturnType<RawBosh['send']>;
    const held = await s.cost(async () => {
      poll = bosh.send('');
      await until('the request to be held', () => s.bosh.waiting(bosh.sid) > 0);
    });
    assert.deepEqual(held.calls, { 'dynamodb:GetItemCommand': 1, 'dynamodb:UpdateItemCommand': 1 });
    const toBosh = await s.cost(async () => {
      await bob.send(message(jid));
      assert.deepEqual(bodiesOf(await poll), ['priced']);
    });
    const { 'management:PostToConnectionCommand': posts, ...rest } = toWebSocket.calls;
    assert.equal(posts, 1);
    const plus = (calls: Record<string, number>, name: string, k: number) => ({ ...calls, [name]: (calls[name] ?? 0) + k });
    assert.deepEqual(toBosh.calls, plus(plus(rest, 'dynamodb:UpdateItemCommand', 2), 'dynamodb:GetItemCommand', 1));
  });

  it('a request carrying a message to a WebSocket user: what the message costs, plus one GetItem and one UpdateItem', async () => {
    const [a, b, c] = [await account(), await account(), await account()];
    const bosh = new RawBosh(s.boshUrl);
    await bosh.login(a);
    const bob = await ws(b);
    const carol = await ws(c);
    const toWebSocket = await s.cost(async () => {
      await carol.send(xml('message', { to: bob.jid, type: 'chat' }, xml('body', {}, 'priced')));
      await bob.waitFor(byName('message'));
    });
    let sending!: ReturnType<RawBosh['send']>;
    const fromBosh = await s.cost(async () => {
      sending = bosh.send(chat(bob.jid, 'priced'));
      await bob.waitFor(byName('message'));
      await until('the request to be held', () => s.bosh.waiting(bosh.sid) > 0);
    });
    const plus = (calls: Record<string, number>, name: string, k: number) => ({ ...calls, [name]: (calls[name] ?? 0) + k });
    assert.deepEqual(fromBosh.calls, plus(plus(toWebSocket.calls, 'dynamodb:UpdateItemCommand', 1), 'dynamodb:GetItemCommand', 1));
    await bosh.send('', { pause: 1 });
    await sending;
  });
});

describe('long-polling across processes (docs/architecture.md "BOSH")', () => {
  it('a request waiting in another process (as in another Lambda container) learns of a stanza by reading its item every BOSH_POLL_MS (900 ms), not by a notification', async () => {
    const [a, b] = [await account(), await account()];
    const bosh = new RawBosh(s.boshUrl);
    const jid = await bosh.login(a, 'secret', 'bosh', { wait: 60 });
    const bob = await ws(b);
    // Another container: its own store (its own waiters: no write of this process wakes it), polling.
    const reads: string[] = [];
    const db = createDynamoClient({ endpoint: s.dynamoEndpoint, localCredentials: true });
    db.middlewareStack.add((next, ctx) => async (args) => (reads.push(ctx.commandName ?? '?'), next(args)), { step: 'initialize', name: 'pollCounter' });
    const elsewhere = new BoshEndpoint({
      server: s.server,
      store: new BoshSessionStore(db, s.table),
      ingest: async () => assert.fail('an empty request hands nothing to the ingest'),
      pollMs: BOSH_POLL_MS,
    });
    try {
      const waiting = elsewhere.handle({ method: 'POST', headers: {}, body: `<body xmlns="${NS_HTTPBIND}" rid="${bosh.rid++}" sid="${bosh.sid}"/>` });
      await until('the request to wait', () => reads.includes('UpdateItemCommand'));
      const sentAt = Date.now();
      await bob.send(xml('message', { to: jid, type: 'chat' }, xml('body', {}, 'polled')));
      const reply = await waiting;
      const latency = Date.now() - sentAt;
      assert.match(reply.body, /<body>polled<\/body>/);
      // Found by a poll: without polling it would come when the wait (60 s) ran out. The bound is half
      // of that, so no load on the machine reaches it; the reads show the polls.
      assert.ok(latency < 30_000, `delivered in ${latency} ms`);
      assert.ok(reads.filter((r) => r === 'GetItemCommand').length >= 2, `polled: ${reads.join(', ')}`);
    } finally {
      db.destroy();
    }
  });
});

describe('BOSH across regions (two local servers on one table)', () => {
  it('a BOSH user in one region and a WebSocket user in the other chat both ways; the BOSH session records its region', async () => {
    const quiet = { tenantWatchMs: 3_600_000, sweepIntervalMs: 3_600_000, purgeIntervalMs: 3_600_000 };
    const eu = await startTestServer({ region: 'eu-west-1', dynamoEndpoint: s.dynamoEndpoint, boshPollMs: 300, ...quiet });
    const us = await startTestServer({ region: 'us-east-1', dynamoEndpoint: s.dynamoEndpoint, ...quiet });
    let bob: TestClient | undefined;
    try {
      const [a, b] = [await account(), await account()];
      const bosh = new RawBosh(eu.boshUrl);
      const jid = await bosh.login(a);
      assert.equal((await s.server.sessions.list(`${a}@localhost`))[0].endpoint, 'bosh:eu-west-1');
      bob = await connectClient(us.url, { username: b });
      const sending = bosh.send(chat(bob.jid, 'from eu over BOSH'));
      assert.equal((await bob.waitFor(byName('message'))).getChildText('body'), 'from eu over BOSH');
      // us posts into the eu session's item; eu's waiting request finds it by polling (no shared process).
      await bob.send(xml('message', { to: jid, type: 'chat' }, xml('body', {}, 'from us over WebSocket')));
      assert.deepEqual(bodiesOf(await sending), ['from us over WebSocket']);
      await bosh.send('', { type: 'terminate' });
    } finally {
      await bob?.stop();
      await us.stop();
      await eu.stop();
    }
  });
});

describe('XEP-0198 resumption over BOSH', () => {
  it('a managed session that went inactive is detached, not ended; a new BOSH session resumes it and gets what was sent meanwhile', async () => {
    const tenant = (await s.server.tenants.get('localhost'))!;
    await s.server.tenants.put({ ...tenant, features: [...(tenant.features ?? []), 'sm'] });
    s.clock.advance(61_000); // past the tenant cache
    try {
      const [a, b] = [await account(), await account()];
      await mutualSubscription(s, `${a}@localhost`, `${b}@localhost`);
      const bob = await ws(b);
      await bob.send(xml('presence'));
      const first = new RawBosh(s.boshUrl);
      const jid = await first.login(a, 'secret', 'phone');
      const enabled = RawBosh.children(await first.send(`<enable xmlns="urn:xmpp:sm:3" resume="true"/><presence xmlns="jabber:client"/>`)).find((e) => e.name === 'enabled');
      assert.ok(enabled?.attrs.id, 'enabled with an id');
      await bob.waitFor((e) => e.name === 'presence' && e.attrs.from === jid && e.attrs.type === undefined);
      // The client goes away; the sweeper finds the session inactive. Resumption keeps it.
      s.clock.advance((Number(first.created!.attrs.wait) + Number(first.created!.attrs.inactivity) + 1) * 1000);
      await s.server.sweep();
      await bob.send(xml('message', { to: jid, type: 'chat' }, xml('body', {}, 'while detached')));
      await bob.expectNothing(s, (e) => e.name === 'presence' && e.attrs.from === jid && e.attrs.type === 'unavailable');
      // A new BOSH session: authenticate, restart, resume instead of binding.
      const second = new RawBosh(s.boshUrl);
      await second.create();
      const plain = Buffer.from(`\0${a}\0secret`).toString('base64');
      assert.ok((await second.send(`<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="PLAIN">${plain}</auth>`)).body.getChild('success'));
      await second.send('', { 'xmpp:restart': 'true' });
      let children = RawBosh.children(await second.send(`<resume xmlns="urn:xmpp:sm:3" previd="${enabled!.attrs.id}" h="0"/>`));
      assert.ok(children.some((e) => e.name === 'resumed'), children.map(String).join(''));
      // The message kept while detached comes right after <resumed/>, in this response or the next.
      if (!children.some((e) => e.name === 'message')) children = RawBosh.children(await second.send(''));
      assert.deepEqual(children.filter((e) => e.name === 'message').map((e) => e.getChildText('body')), ['while detached']);
      // The old BOSH session is over; the resumed one works.
      assert.equal((await first.send('')).body.attrs.type, 'terminate');
      const sending = second.send(chat(bob.jid, 'resumed over BOSH'));
      assert.equal((await bob.waitFor(byName('message'))).getChildText('body'), 'resumed over BOSH');
      await second.send('', { pause: 1 });
      await sending;
    } finally {
      await s.server.tenants.put(tenant);
      s.clock.advance(61_000);
    }
  });
});
