// The core over real WebSockets: login with each SASL mechanism, chat, ordering, offline storage,
// stream and stanza errors, session replacement, shutdown, and the cost of the hot paths.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { RawClient, type TestServer, byName, connectClient, startTestServer, until, xml, type Element, WAIT_MS } from '../support/harness.ts';
import { offlineOf } from '../../lib/extensions/offline/index.ts';

const STREAMS = 'urn:ietf:params:xml:ns:xmpp-streams';
const STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas';
const streamErrorCondition = (el: Element) => el.children.find((c) => typeof c !== 'string' && (c as Element).attrs.xmlns === STREAMS) as Element | undefined;
const stanzaErrorCondition = (el: Element) => el.getChild('error')?.children.find((c) => typeof c !== 'string' && (c as Element).attrs.xmlns === STANZAS) as Element | undefined;

let s: TestServer;
let n = 0;
/** A fresh account per test. */
async function user(prefix: string): Promise<string> {
  const name = `${prefix}${++n}`;
  await s.addUser(`${name}@localhost`, `pw-${name}`);
  return name;
}
const login = (name: string, extra: Parameters<typeof connectClient>[1] extends infer O ? Partial<O> : never = {}) =>
  connectClient(s.url, { username: name, password: `pw-${name}`, ...extra });

/** Sends initial presence and waits for its reflection, so the session is "available". */
async function available(c: Awaited<ReturnType<typeof login>>, priority?: number) {
  const presence = xml('presence');
  if (priority !== undefined) presence.c('priority').t(String(priority));
  await c.send(presence);
  await c.waitFor((el) => el.name === 'presence' && el.attrs.from === c.jid);
}

before(async () => {
  s = await startTestServer({ limits: { maxStanzaBytes: 10_000 } });
});
after(async () => {
  await s.stop();
});

describe('SASL authentication (RFC 6120 §6)', () => {
  for (const mechanism of ['PLAIN', 'SCRAM-SHA-1', 'SCRAM-SHA-256'] as const) {
    it(`logs in with ${mechanism} and binds the requested resource`, async () => {
      const name = await user('mech');
      const c = await login(name, { mechanism, resource: 'desk' });
      assert.equal(c.jid, `${name}@localhost/desk`);
      await c.stop();
    });
  }

  for (const mechanism of ['PLAIN', 'SCRAM-SHA-1', 'SCRAM-SHA-256'] as const) {
    it(`refuses a wrong password with ${mechanism} as not-authorized`, async () => {
      const name = await user('wrong');
      await assert.rejects(connectClient(s.url, { username: name, password: 'nope', mechanism }), (err: Error & { condition?: string }) => {
        assert.equal(err.condition, 'not-authorized');
        return true;
      });
    });
  }

  it('refuses an unknown account exactly like a wrong password (SCRAM reveals nothing)', async () => {
    await assert.rejects(connectClient(s.url, { username: 'nobody-here', password: 'x', mechanism: 'SCRAM-SHA-256' }), (err: Error & { condition?: string }) => err.condition === 'not-authorized');
  });

  it('gives an unknown account the same SCRAM salt from every server of a deployment', async () => {
    const salt = async (url: string) => {
      const raw = await RawClient.connect(url);
      raw.send('<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="localhost" version="1.0"/>');
      await raw.next(byName('stream:features'));
      raw.send(`<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="SCRAM-SHA-256">${Buffer.from('n,,n=nobody-at-all,r=abcdefgh').toString('base64')}</auth>`);
      const challenge = Buffer.from((await raw.next(byName('challenge'))).text(), 'base64').toString();
      raw.ws.close();
      return /,s=([^,]+),/.exec(challenge)![1];
    };
    const other = await startTestServer({ dynamoEndpoint: s.dynamoEndpoint });
    try {
      const first = await salt(s.url);
      assert.equal(await salt(s.url), first);
      assert.equal(await salt(other.url), first, 'a second handler on the same table derives the same fake salt');
    } finally {
      await other.stop();
    }
  });

  it('answers an unknown mechanism with invalid-mechanism and bad base64 with incorrect-encoding', async () => {
    const raw = await RawClient.connect(s.url);
    raw.send('<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="localhost" version="1.0"/>');
    const features = await raw.next(byName('stream:features'));
    const offered = features.getChild('mechanisms')!.getChildren('mechanism').map((m) => m.text());
    assert.deepEqual(offered, ['SCRAM-SHA-256', 'SCRAM-SHA-1', 'PLAIN']);
    raw.send('<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="DIGEST-MD5"/>');
    assert.ok((await raw.next(byName('failure'))).getChild('invalid-mechanism'));
    raw.send('<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="PLAIN">!!notbase64</auth>');
    assert.ok((await raw.next(byName('failure'))).getChild('incorrect-encoding'));
    raw.ws.close();
  });

  it('closes the stream with policy-violation after three failed attempts', async () => {
    const name = await user('brute');
    const raw = await RawClient.connect(s.url);
    raw.send('<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="localhost" version="1.0"/>');
    await raw.next(byName('stream:features'));
    const bad = Buffer.from(`\0${name}\0guess`).toString('base64');
    for (let i = 0; i < 3; i++) {
      raw.send(`<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="PLAIN">${bad}</auth>`);
      assert.ok((await raw.next(byName('failure'))).getChild('not-authorized'));
    }
    const err = await raw.next(byName('stream:error'));
    assert.equal(streamErrorCondition(err)?.name, 'policy-violation');
    assert.ok(await raw.next(byName('close')));
    assert.equal(typeof (await raw.closed).code, 'number');
  });
});

describe('messages (RFC 6121 §5, §8)', () => {
  it('delivers chat both ways with the sender full JID stamped', async () => {
    const [a, b] = [await user('a'), await user('b')];
    const ca = await login(a, { resource: 'r1' });
    const cb = await login(b, { resource: 'r2' });
    await available(ca);
    await available(cb);
    await ca.send(xml('message', { to: `${b}@localhost`, type: 'chat', id: 'm1' }, xml('body', {}, 'hello b')));
    const got = await cb.waitFor(byName('message', { id: 'm1' }));
    assert.equal(got.attrs.from, `${a}@localhost/r1`);
    assert.equal(got.getChildText('body'), 'hello b');
    await cb.send(xml('message', { to: `${a}@localhost/r1`, type: 'chat', id: 'm2' }, xml('body', {}, 'hello a')));
    const back = await ca.waitFor(byName('message', { id: 'm2' }));
    assert.equal(back.attrs.from, `${b}@localhost/r2`);
    await ca.stop();
    await cb.stop();
  });

  it('keeps the order of 50 rapid messages', async () => {
    const [a, b] = [await user('fast'), await user('recv')];
    const ca = await login(a);
    const cb = await login(b);
    await available(cb);
    for (let i = 0; i < 50; i++) void ca.send(xml('message', { to: `${b}@localhost`, type: 'chat', id: `seq${i}` }, xml('body', {}, String(i))));
    await cb.waitFor(byName('message', { id: 'seq49' }), WAIT_MS);
    const ids = cb.received.filter((el) => el.name === 'message').map((el) => el.attrs.id);
    assert.deepEqual(ids, Array.from({ length: 49 }, (_, i) => `seq${i}`));
    await ca.stop();
    await cb.stop();
  });

  it('stores a message for an offline user and delivers it with a delay stamp at next initial presence', async () => {
    const [a, b] = [await user('sender'), await user('sleeper')];
    const ca = await login(a);
    await ca.send(xml('message', { to: `${b}@localhost`, type: 'chat', id: 'off1' }, xml('body', {}, 'while you were out')));
    await ca.send(xml('message', { to: `${b}@localhost`, type: 'chat', id: 'off2' }, xml('body', {}, 'second')));
    await ca.roundTrip(); // both messages were handled (stored) before the pong
    const cb = await login(b);
    await cb.expectNothing(s, byName('message')); // not before initial presence (XEP-0160 §4)
    await cb.send(xml('presence'));
    const first = await cb.waitFor(byName('message', { id: 'off1' }));
    const delay = first.getChild('delay', 'urn:xmpp:delay');
    assert.ok(delay, 'XEP-0203 delay stamp');
    assert.equal(delay.attrs.from, 'localhost');
    assert.ok(!Number.isNaN(Date.parse(delay.attrs.stamp)));
    assert.equal(first.attrs.from, `${a}@localhost/${ca.jid.split('/')[1]}`);
    const second = await cb.waitFor(byName('message', { id: 'off2' }));
    assert.equal(second.getChildText('body'), 'second');
    await cb.stop();
    // Delivered once: a new session does not get them again.
    const again = await login(b);
    await available(again);
    await again.expectNothing(s, byName('message'));
    await again.stop();
    await ca.stop();
  });

  it('answers a message to a nonexistent account with service-unavailable', async () => {
    const c = await login(await user('lonely'));
    await c.send(xml('message', { to: 'ghost@localhost', type: 'chat', id: 'g1' }, xml('body', {}, 'boo')));
    const err = await c.waitFor(byName('message', { id: 'g1', type: 'error' }));
    assert.equal(stanzaErrorCondition(err)?.name, 'service-unavailable');
    assert.equal(err.attrs.from, 'ghost@localhost');
    await c.stop();
  });

  it('answers a message to a domain that is not served here with remote-server-not-found', async () => {
    const c = await login(await user('far'));
    await c.send(xml('message', { to: 'someone@elsewhere.example', type: 'chat', id: 'r1' }, xml('body', {}, 'hi')));
    assert.equal(stanzaErrorCondition(await c.waitFor(byName('message', { id: 'r1', type: 'error' })))?.name, 'remote-server-not-found');
    await c.stop();
  });

  it('never lets a spoofed from reach anyone', async () => {
    const [a, b, victim] = [await user('spoofer'), await user('target'), await user('victim')];
    const ca = await login(a, { resource: 'x' });
    const cb = await login(b);
    await available(cb);
    await ca.send(xml('message', { to: `${b}@localhost`, from: `${victim}@localhost/home`, type: 'chat', id: 'sp1' }, xml('body', {}, 'trust me')));
    const got = await cb.waitFor(byName('message', { id: 'sp1' }));
    assert.equal(got.attrs.from, `${a}@localhost/x`);
    await ca.stop();
    await cb.stop();
  });

  it('does not deliver bare-JID chat to a resource with negative priority, but stores it', async () => {
    const [a, b] = [await user('prio'), await user('neg')];
    const ca = await login(a);
    const cb = await login(b);
    await available(cb, -1);
    await ca.send(xml('message', { to: `${b}@localhost`, type: 'chat', id: 'np1' }, xml('body', {}, 'x')));
    await cb.expectNothing(s, byName('message', { id: 'np1' }), ca);
    assert.equal((await offlineOf(s.server).list(`${b}@localhost`)).length, 1);
    await ca.stop();
    await cb.stop();
  });
});

describe('message types and error loops (RFC 6121 §8.5, RFC 6120 §8.3.1)', () => {
  it('delivers to the bare JID by type (§8.5.2.1.1): chat and headline to every non-negative resource, normal to the highest, error to none', async () => {
    const [a, b] = [await user('bare'), await user('three')];
    const ca = await login(a);
    const [top, low, neg] = [await login(b, { resource: 'top' }), await login(b, { resource: 'low' }), await login(b, { resource: 'neg' })];
    await available(top, 5);
    await available(low, 0);
    await available(neg, -1);
    const to = `${b}@localhost`;
    await ca.send(xml('message', { to, type: 'chat', id: 'bc' }, xml('body', {}, 'chat')));
    await ca.send(xml('message', { to, type: 'headline', id: 'bh' }, xml('body', {}, 'news')));
    await ca.send(xml('message', { to, id: 'bn' }, xml('body', {}, 'normal')));
    await ca.send(xml('message', { to, type: 'error', id: 'be' }, xml('error', { type: 'cancel' }, xml('item-not-found', { xmlns: STANZAS }))));
    for (const id of ['bc', 'bh', 'bn']) await top.waitFor(byName('message', { id }));
    for (const id of ['bc', 'bh']) await low.waitFor(byName('message', { id }));
    await low.expectNothing(s, (el) => el.name === 'message' && (el.attrs.id === 'bn' || el.attrs.id === 'be'), ca);
    await top.expectNothing(s, byName('message', { id: 'be' }));
    await neg.expectNothing(s, byName('message'));
    // Two resources share the highest priority: a normal message goes to both (§8.5.2.1.1 "one or more").
    await available(low, 5);
    await ca.send(xml('message', { to, id: 'bn2' }, xml('body', {}, 'normal')));
    for (const c of [top, low]) await c.waitFor(byName('message', { id: 'bn2' }));
    assert.equal((await offlineOf(s.server).list(to)).length, 0, 'nothing went to offline storage');
    for (const c of [ca, top, low, neg]) await c.stop();
  });

  it('never answers an error with an error', async () => {
    const c = await login(await user('looper'));
    await c.send(xml('message', { to: 'ghost2@localhost', type: 'error', id: 'e1' }, xml('error', { type: 'cancel' }, xml('item-not-found', { xmlns: STANZAS }))));
    await c.send(xml('iq', { to: 'localhost', type: 'error', id: 'e2' }, xml('error', { type: 'cancel' }, xml('item-not-found', { xmlns: STANZAS }))));
    await c.expectNothing(s, (el) => el.attrs.id === 'e1' || el.attrs.id === 'e2');
    await c.stop();
  });

  it('answers groupchat to a bare JID with service-unavailable and drops headlines for offline users', async () => {
    const [a, b] = [await user('types'), await user('typeb')];
    const c = await login(a);
    await c.send(xml('message', { to: `${b}@localhost`, type: 'groupchat', id: 'gc1' }, xml('body', {}, 'x')));
    assert.equal(stanzaErrorCondition(await c.waitFor(byName('message', { id: 'gc1', type: 'error' })))?.name, 'service-unavailable');
    await c.send(xml('message', { to: `${b}@localhost`, type: 'headline', id: 'hl1' }, xml('body', {}, 'news')));
    await c.expectNothing(s, byName('message', { id: 'hl1' }));
    assert.equal((await offlineOf(s.server).list(`${b}@localhost`)).length, 0);
    await c.stop();
  });

  it('stores a message whose recipient connection vanished (410 Gone) and ends that session', async () => {
    const own = await startTestServer({ dropDisconnect: true });
    await own.addUser('ghostly@localhost', 'pw');
    await own.addUser('caller@localhost', 'pw');
    const gone = await RawClient.connect(own.url);
    await gone.login('ghostly', 'pw', 'lost');
    gone.send('<presence xmlns="jabber:client"/>');
    await gone.next(byName('presence'));
    gone.ws.terminate(); // no $disconnect will come
    await gone.closed;
    const caller = await connectClient(own.url, { username: 'caller', password: 'pw' });
    await caller.send(xml('message', { to: 'ghostly@localhost', type: 'chat', id: 'v1' }, xml('body', {}, 'are you there')));
    await caller.roundTrip(); // the message was handled (post refused, stored) before the pong
    assert.equal((await offlineOf(own.server).list('ghostly@localhost')).length, 1);
    assert.deepEqual(await own.server.sessions.list('ghostly@localhost'), []);
    await caller.stop();
    await own.stop();
  });
});

describe('IQs and discovery', () => {
  it('answers an IQ nobody handles with service-unavailable and the session carries on', async () => {
    const c = await login(await user('iq'));
    await assert.rejects(c.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: 'urn:example:unknown' }))), (err: Error & { condition?: string }) => err.condition === 'service-unavailable');
    await c.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
    await c.stop();
  });

  it('answers an IQ to an absent resource with service-unavailable', async () => {
    const [a, b] = [await user('iqa'), await user('iqb')];
    const c = await login(a);
    await assert.rejects(c.iq(xml('iq', { type: 'get', to: `${b}@localhost/nope` }, xml('ping', { xmlns: 'urn:xmpp:ping' }))), (err: Error & { condition?: string }) => err.condition === 'service-unavailable');
    await c.stop();
  });

  it('routes an IQ to another full JID and the result back', async () => {
    const [a, b] = [await user('pinger'), await user('pingee')];
    const ca = await login(a);
    const cb = await login(b, { resource: 'tab' });
    cb.xmpp.on('stanza', (el: Element) => {
      if (el.name === 'iq' && el.attrs.type === 'get' && el.getChild('ping')) void cb.send(xml('iq', { type: 'result', id: el.attrs.id, to: el.attrs.from }));
    });
    const res = await ca.iq(xml('iq', { type: 'get', to: `${b}@localhost/tab` }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
    assert.equal(res.attrs.from, `${b}@localhost/tab`);
    await ca.stop();
    await cb.stop();
  });

  it('advertises features in disco#info and its version (XEP-0030, XEP-0092)', async () => {
    const c = await login(await user('disco'));
    const info = await c.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })));
    const q = info.getChild('query')!;
    assert.deepEqual(q.getChild('identity')!.attrs, { category: 'server', type: 'im', name: 'xmpp-edge' });
    const features = q.getChildren('feature').map((f) => f.attrs.var);
    for (const f of ['http://jabber.org/protocol/disco#info', 'urn:xmpp:ping', 'jabber:iq:version', 'msgoffline']) assert.ok(features.includes(f), f);
    const version = await c.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: 'jabber:iq:version' })));
    assert.equal(version.getChild('query')!.getChildText('name'), 'xmpp-edge');
    await c.stop();
  });
});

describe('stream errors (RFC 6120 §4.9) while other sessions carry on', () => {
  let watcher: Awaited<ReturnType<typeof login>>;
  let watcherName: string;
  before(async () => {
    watcherName = await user('watcher');
    watcher = await login(watcherName);
  });
  after(() => watcher.stop());

  async function expectStreamError(raw: RawClient, condition: string) {
    const err = await raw.next(byName('stream:error'));
    assert.equal(streamErrorCondition(err)?.name, condition);
    await raw.next(byName('close'));
    await raw.closed;
    // Another session is unaffected.
    await watcher.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
  }

  it('malformed XML → not-well-formed', async () => {
    const name = await user('mal');
    const raw = await RawClient.connect(s.url);
    await raw.login(name, `pw-${name}`);
    raw.send('<message to="x@localhost"><body>unclosed</message>');
    await expectStreamError(raw, 'not-well-formed');
  });

  it('an oversized stanza → policy-violation', async () => {
    const name = await user('big');
    const raw = await RawClient.connect(s.url);
    await raw.login(name, `pw-${name}`);
    raw.send(`<message xmlns="jabber:client" to="${watcherName}@localhost"><body>${'x'.repeat(12_000)}</body></message>`);
    await expectStreamError(raw, 'policy-violation');
  });

  it('a frame over API Gateway\'s 32 KB is closed with 1009 by the gateway', async () => {
    const raw = await RawClient.connect(s.url);
    raw.send(`<message xmlns="jabber:client"><body>${'x'.repeat(40_000)}</body></message>`);
    assert.equal((await raw.closed).code, 1009);
  });

  it('an unknown domain → host-unknown, after the stream header', async () => {
    const raw = await RawClient.connect(s.url);
    raw.send('<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="unknown.example" version="1.0"/>');
    await raw.next(byName('open'));
    await expectStreamError(raw, 'host-unknown');
  });

  it('a stanza in the wrong namespace → invalid-namespace', async () => {
    const name = await user('ns');
    const raw = await RawClient.connect(s.url);
    await raw.login(name, `pw-${name}`);
    raw.send('<message xmlns="jabber:server" to="x@localhost"/>');
    await expectStreamError(raw, 'invalid-namespace');
  });

  it('an unknown top-level element → unsupported-stanza-type', async () => {
    const name = await user('unk');
    const raw = await RawClient.connect(s.url);
    await raw.login(name, `pw-${name}`);
    raw.send('<foo xmlns="urn:example:foo"/>');
    await expectStreamError(raw, 'unsupported-stanza-type');
  });

  it('a stanza before authentication → not-authorized', async () => {
    const raw = await RawClient.connect(s.url);
    raw.send('<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="localhost" version="1.0"/>');
    await raw.next(byName('stream:features'));
    raw.send('<message xmlns="jabber:client" to="a@localhost"><body>x</body></message>');
    await expectStreamError(raw, 'not-authorized');
  });

  it('a second session with the same full JID replaces the first, which gets conflict', async () => {
    const name = await user('twin');
    const first = await RawClient.connect(s.url);
    await first.login(name, `pw-${name}`, 'same');
    const second = await RawClient.connect(s.url);
    await second.login(name, `pw-${name}`, 'same');
    await expectStreamError(first, 'conflict');
    const sessions = await s.server.sessions.list(`${name}@localhost`);
    assert.equal(sessions.length, 1);
    second.ws.close();
  });

  it('a client <close/> is answered with <close/> and the socket closes', async () => {
    const name = await user('closer');
    const raw = await RawClient.connect(s.url);
    await raw.login(name, `pw-${name}`);
    raw.send('<close xmlns="urn:ietf:params:xml:ns:xmpp-framing"/>');
    await raw.next(byName('close'));
    await raw.closed;
    await s.gateway.idle();
    assert.deepEqual(await s.server.sessions.list(`${name}@localhost`), []);
  });
});

describe('cost per operation (DynamoDB calls and management-API posts)', () => {
  it('a 1:1 chat message between two online users: 2 reads, 1 write, 1 post', async () => {
    const [a, b] = [await user('costa'), await user('costb')];
    const ca = await login(a);
    const cb = await login(b);
    await available(cb);
    const cost = await s.cost(async () => {
      await ca.send(xml('message', { to: `${b}@localhost`, type: 'chat', id: 'c1' }, xml('body', {}, 'cheap')));
      await cb.waitFor(byName('message', { id: 'c1' }));
    });
    // Delivery: 1 read (the recipient's sessions) and 1 post. The archive (XEP-0313), after the post:
    // 1 read (both accounts' archive preferences) and 1 write (both archive items in one BatchWriteItem).
    assert.deepEqual({ reads: cost.reads, writes: cost.writes, posts: cost.posts }, { reads: 2, writes: 1, posts: 1 }, JSON.stringify(cost.calls));
    assert.equal(cost.calls['dynamodb:BatchWriteItemCommand'], 1, JSON.stringify(cost.calls));
    await ca.stop();
    await cb.stop();
  });

  it('a chat to a bare JID with two available resources: 2 posts (RFC 6121 §8.5.2.1.1), reads and writes as for one', async () => {
    const [a, b] = [await user('bcost'), await user('bcost')];
    const ca = await login(a);
    const [b1, b2] = [await login(b, { resource: 'one' }), await login(b, { resource: 'two' })];
    await available(b1, 1);
    await available(b2, 0);
    const cost = await s.cost(async () => {
      await ca.send(xml('message', { to: `${b}@localhost`, type: 'chat', id: 'bc1' }, xml('body', {}, 'both')));
      for (const c of [b1, b2]) await c.waitFor(byName('message', { id: 'bc1' }));
    });
    // The sessions read and the archive (preferences read, one write of both archive items) as for one resource.
    assert.deepEqual({ reads: cost.reads, writes: cost.writes, posts: cost.posts }, { reads: 2, writes: 1, posts: 2 }, JSON.stringify(cost.calls));
    for (const c of [ca, b1, b2]) await c.stop();
  });

  it('a message to an offline user: 3 reads (sessions, account, archive preferences), 2 writes (offline item, both archive items in one call), no post', async () => {
    const [a, b] = [await user('offa'), await user('offb')];
    const ca = await login(a);
    const cost = await s.cost(async () => {
      await ca.send(xml('message', { to: `${b}@localhost`, type: 'chat', id: 'o1' }, xml('body', {}, 'later')));
      await until('the offline message stored', async () => (await offlineOf(s.server).list(`${b}@localhost`)).length);
    });
    // The polling list() calls above are counted too; subtract them.
    const polls = cost.calls['dynamodb:QueryCommand'] ?? 0;
    assert.deepEqual({ reads: cost.reads - polls, writes: cost.writes, posts: cost.posts }, { reads: 3, writes: 2, posts: 0 }, JSON.stringify(cost.calls));
    await ca.stop();
  });

  it('a login (connect, open, PLAIN, restart, bind) has a fixed cost', async () => {
    const name = await user('logincost');
    // The very first login of an account also creates its session item (one more write); measure a later one.
    const first = await RawClient.connect(s.url);
    await first.login(name, `pw-${name}`, 'first');
    first.ws.close();
    await first.closed;
    let raw: RawClient | undefined;
    const cost = await s.cost(async () => {
      raw = await RawClient.connect(s.url);
      await raw.login(name, `pw-${name}`);
    });
    // connect: 1 put; open: 1 read + 1 write; auth: 1 read conn + 1 read of the failed-login locks + 1 read user
    // + 1 write; restart: 1 read + 1 write; bind: 1 read conn + 1 session write + 1 conn write.
    // Posts: header+features, success, header+features, bind result.
    assert.deepEqual({ reads: cost.reads, writes: cost.writes, posts: cost.posts }, { reads: 6, writes: 6, posts: 6 }, JSON.stringify(cost.calls));
    raw!.ws.close();
  });
});

describe('shutdown', () => {
  it('sends system-shutdown to every connection when the server stops', async () => {
    const own = await startTestServer();
    await own.addUser('stopper@localhost', 'pw');
    const raw = await RawClient.connect(own.url);
    await raw.login('stopper', 'pw');
    await own.stop();
    const err = await raw.next(byName('stream:error'));
    assert.equal(streamErrorCondition(err)?.name, 'system-shutdown');
  });
});
