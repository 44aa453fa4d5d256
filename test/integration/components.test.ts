// XEP-0114 components (README "Components"): a real @xmpp/component over TCP on the local listener,
// the same protocol over the WebSocket API (subprotocol xmpp-component, RFC 7395 framing), and the
// refusals: wrong secret, unknown domain, disabled component, a stanza from another tenant's domain,
// a component that is not connected.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createRequire } from 'node:module';
import { connect as tcpConnect } from 'node:net';
import WebSocket from 'ws';
import { type TestClient, type TestServer, byName, connectClient, startTestServer, until } from '../support/harness.ts';
import { handshakeDigest } from '../../lib/extensions/components/handshake.ts';
import type { TenantChangedEvent } from '../../lib/core/events.ts';
import type { XmppModule } from '../../lib/core/modules.ts';
import { type Element, parseFrame, xml } from '../../lib/xmpp/xml.ts';

const require = createRequire(import.meta.url);
const { component } = require('@xmpp/component') as { component: (o: { service: string; domain: string; password: string }) => XmppComponent };

interface XmppComponent {
  start(): Promise<unknown>;
  stop(): Promise<unknown>;
  send(el: Element): Promise<void>;
  on(event: string, fn: (arg: never) => void): void;
  reconnect: { stop(): void };
  iqCallee: { get(ns: string, name: string, fn: (ctx: { stanza: Element }) => Element): void };
  status: string;
}

const D = 'localhost';
const OTHER = 'other.example';
const BOT = `bot.${D}`;
const BOT_SECRET = 'bot-secret-123';

/** A @xmpp/component that records what it receives. */
async function startComponent(port: number, domain: string, password: string): Promise<{ xmpp: XmppComponent; received: Element[]; errors: Error[]; waitFor(pred: (el: Element) => boolean): Promise<Element> }> {
  const xmpp = component({ service: `xmpp://127.0.0.1:${port}`, domain, password });
  xmpp.reconnect.stop();
  const received: Element[] = [];
  const errors: Error[] = [];
  xmpp.on('stanza', (el: never) => received.push(el));
  xmpp.on('error', (err: never) => errors.push(err));
  await xmpp.start();
  return {
    xmpp,
    received,
    errors,
    waitFor: (pred) => until('a stanza at the component', () => received.find(pred), () => received.map(String)) as Promise<Element>,
  };
}

/** The component protocol over the WebSocket API: RFC 7395 frames, subprotocol xmpp-component. */
class WsComponent {
  readonly frames: Element[] = [];
  closed: Promise<number>;
  constructor(readonly ws: WebSocket) {
    ws.on('message', (d) => this.frames.push(parseFrame(d.toString())));
    this.closed = new Promise((resolve) => ws.on('close', (code) => resolve(code)));
  }
  static async connect(url: string): Promise<WsComponent> {
    const ws = new WebSocket(url, 'xmpp-component');
    const c = new WsComponent(ws);
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    return c;
  }
  send(el: Element | string) {
    this.ws.send(el.toString());
  }
  next(pred: (el: Element) => boolean): Promise<Element> {
    return until('a frame', () => {
      const i = this.frames.findIndex(pred);
      return i >= 0 ? this.frames.splice(i, 1)[0] : undefined;
    }, () => this.frames.map(String)) as Promise<Element>;
  }
  /** Opens the stream and shakes hands with `secret`; resolves with the server's answer. */
  async login(domain: string, secret: string): Promise<Element> {
    this.send(`<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="${domain}"/>`);
    const open = await this.next(byName('open'));
    assert.equal(this.ws.protocol, 'xmpp-component');
    this.send(xml('handshake', { xmlns: 'jabber:component:accept' }, handshakeDigest(String(open.attrs.id), secret)));
    return this.next((el) => el.name === 'handshake' || el.name === 'stream:error');
  }
}

const declaredSecret = (tenant: object | undefined, domain: string) => (((tenant as { components?: unknown } | undefined)?.components ?? []) as { domain: string; secret?: string }[]).find((c) => c.domain === domain)?.secret;
const streamErrorOf = (el: Element) => el.children.find((c): c is Element => typeof c !== 'string' && c.attrs.xmlns === 'urn:ietf:params:xml:ns:xmpp-streams' && c.name !== 'text')?.name;
const stanzaErrorOf = (el: Element) => el.getChild('error')?.children.find((c): c is Element => typeof c !== 'string')?.name;

describe('XEP-0114 components', () => {
  let s: TestServer;
  let alice: TestClient;
  /** The tenant changes as the tenant watcher reported them. */
  const changes: TenantChangedEvent[] = [];
  let marks = 0;
  /**
   * The watcher reports a change against its previous poll, so a change written before its first poll
   * of the tenant is never reported. Until it reports one, this writes a change of no consequence (the
   * secret of the disabled component); the next change is then reported.
   */
  async function watcherCaughtUp(): Promise<void> {
    const start = changes.length;
    await until('the tenant watcher to report a change', async () => {
      if (changes.length > start) return true;
      const t = (await s.server.tenants.get(D, 0))!;
      await s.server.tenants.put({ ...t, components: (t.components as { domain: string }[]).map((x) => (x.domain === `off.${D}` ? { ...x, secret: `off-secret-${++marks}00` } : x)) });
      return false;
    });
  }
  before(async () => {
    s = await startTestServer({ seedDomains: [D, OTHER] });
    await s.server.tenants.put({
      domain: D,
      enabled: true,
      components: [
        { domain: BOT, kind: 'connected', enabled: true, secret: BOT_SECRET },
        { domain: `off.${D}`, kind: 'connected', enabled: false, secret: 'off-secret-123' },
        { domain: `idle.${D}`, kind: 'connected', enabled: true, secret: 'idle-secret-123' },
        { domain: `fresh.${D}`, kind: 'connected', enabled: true, secret: 'fresh-secret-123' },
      ],
    });
    await s.server.tenants.put({ domain: OTHER, enabled: true, components: [{ domain: `bot.${OTHER}`, kind: 'connected', enabled: true, secret: 'other-secret-1' }] });
    await s.addUser(`alice@${D}`);
    alice = await connectClient(s.url, { username: 'alice' });
    s.server.registry.events.on('tenant/changed', (e) => void changes.push(e as TenantChangedEvent));
  });
  after(async () => {
    await alice?.stop();
    await s?.stop();
  });

  test('an unmodified @xmpp/component connects over TCP, receives a message for its domain and answers', async () => {
    const bot = await startComponent(s.componentPort!, BOT, BOT_SECRET);
    try {
      await alice.send(xml('message', { to: `echo@${BOT}`, type: 'chat', id: 'm1' }, xml('body', {}, 'hello bot')));
      const got = await bot.waitFor((el) => el.is('message'));
      assert.equal(got.attrs.from, alice.jid);
      assert.equal(got.attrs.to, `echo@${BOT}`);
      assert.equal(got.getChildText('body'), 'hello bot');
      await bot.xmpp.send(xml('message', { from: `echo@${BOT}/r`, to: alice.jid, type: 'chat' }, xml('body', {}, 'hello alice')));
      const reply = await alice.waitFor(byName('message', { from: `echo@${BOT}/r` }));
      assert.equal(reply.getChildText('body'), 'hello alice');
      // An IQ to the component, answered by the component library's own IQ handling.
      bot.xmpp.iqCallee.get('jabber:iq:version', 'query', () => xml('query', { xmlns: 'jabber:iq:version' }, xml('name', {}, 'bot')));
      const result = await alice.iq(xml('iq', { type: 'get', to: BOT }, xml('query', { xmlns: 'jabber:iq:version' })));
      assert.equal(result.getChild('query')?.getChildText('name'), 'bot');
    } finally {
      await bot.xmpp.stop();
    }
  });

  test('the same protocol over the WebSocket API: subprotocol xmpp-component, RFC 7395 frames', async () => {
    const c = await WsComponent.connect(s.url);
    try {
      const answer = await c.login(BOT, BOT_SECRET);
      assert.equal(answer.name, 'handshake');
      assert.equal(answer.attrs.xmlns, 'jabber:component:accept');
      await alice.send(xml('message', { to: `echo@${BOT}`, type: 'chat' }, xml('body', {}, 'over websocket')));
      const got = await c.next(byName('message'));
      assert.equal(got.attrs.xmlns, 'jabber:component:accept');
      assert.equal(got.attrs.from, alice.jid);
      assert.equal(got.getChildText('body'), 'over websocket');
      c.send(xml('message', { xmlns: 'jabber:component:accept', from: `echo@${BOT}`, to: alice.jid, type: 'chat' }, xml('body', {}, 'ws reply')));
      const reply = await alice.waitFor(byName('message', { from: `echo@${BOT}` }));
      assert.equal(reply.getChildText('body'), 'ws reply');
      c.send('<close xmlns="urn:ietf:params:xml:ns:xmpp-framing"/>');
      await c.next(byName('close'));
      await c.closed;
      // Gone: stanzas to it get service-unavailable again.
      const err = alice.waitFor(byName('message', { type: 'error', from: `echo@${BOT}` }));
      await alice.send(xml('message', { to: `echo@${BOT}`, type: 'chat' }, xml('body', {}, 'anyone?')));
      assert.equal(stanzaErrorOf(await err), 'service-unavailable');
    } finally {
      c.ws.terminate();
    }
  });

  test('a wrong secret is refused with not-authorized (XEP-0114 §3), over TCP and WebSocket', async () => {
    await assert.rejects(startComponent(s.componentPort!, BOT, 'not-the-secret'), (err: Error & { condition?: string }) => err.condition === 'not-authorized');
    const c = await WsComponent.connect(s.url);
    const answer = await c.login(BOT, 'not-the-secret');
    assert.equal(streamErrorOf(answer), 'not-authorized');
    await c.closed;
  });

  test('an unknown component domain is host-unknown; a disabled component is refused at its handshake', async () => {
    await assert.rejects(startComponent(s.componentPort!, `nobody.${D}`, BOT_SECRET), (err: Error & { condition?: string }) => err.condition === 'host-unknown');
    await assert.rejects(startComponent(s.componentPort!, `off.${D}`, 'off-secret-123'), (err: Error & { condition?: string }) => err.condition === 'not-authorized');
  });

  test("a component sending as another tenant (or another component) gets invalid-from and is disconnected", async () => {
    const c = await WsComponent.connect(s.url);
    assert.equal((await c.login(BOT, BOT_SECRET)).name, 'handshake');
    c.send(xml('message', { xmlns: 'jabber:component:accept', from: `bot.${OTHER}`, to: alice.jid, type: 'chat' }, xml('body', {}, 'spoofed')));
    const err = await c.next(byName('stream:error'));
    assert.equal(streamErrorOf(err), 'invalid-from');
    await c.closed;
    // Over TCP with the real library: the server ends its stream the same way.
    const bot = await startComponent(s.componentPort!, BOT, BOT_SECRET);
    await bot.xmpp.send(xml('message', { from: `someone@${D}`, to: alice.jid, type: 'chat' }, xml('body', {}, 'as a user')));
    await until('invalid-from at the component', () => bot.errors.find((e) => (e as Error & { condition?: string }).condition === 'invalid-from'));
    await bot.xmpp.stop().catch(() => {});
    await alice.expectNothing(s, (el) => /spoofed|as a user/.test(el.toString()));
  });

  test('a component stanza without from or to ends the stream with improper-addressing (RFC 6120 §4.9.3.7)', async () => {
    const c = await WsComponent.connect(s.url);
    assert.equal((await c.login(BOT, BOT_SECRET)).name, 'handshake');
    c.send(xml('message', { xmlns: 'jabber:component:accept', to: alice.jid }, xml('body', {}, 'no from')));
    assert.equal(streamErrorOf(await c.next(byName('stream:error'))), 'improper-addressing');
    await c.closed;
  });

  test('the TCP listener answers in the XEP-0114 form, and refuses a stream in another namespace', async () => {
    const talk = async (text: string) => {
      const sock = tcpConnect(s.componentPort!, '127.0.0.1');
      let got = '';
      sock.setEncoding('utf8');
      sock.on('data', (d: string) => (got += d));
      const ended = new Promise((resolve) => sock.on('close', resolve));
      sock.write(text);
      return { sock, ended, read: () => got };
    };
    const ok = await talk(`<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='${BOT}'>`);
    const header = (await until('the stream header', () => /<stream:stream [^>]*>/.exec(ok.read())?.[0]))!;
    assert.match(header, /xmlns='jabber:component:accept'/);
    assert.match(header, new RegExp(`from='${BOT}'`));
    assert.match(header, /id='[0-9a-f]{24}'/);
    ok.sock.write('<handshake>0000000000000000000000000000000000000000</handshake>');
    await ok.ended;
    assert.match(ok.read(), /<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/>|<stream:error><not-authorized xmlns="urn:ietf:params:xml:ns:xmpp-streams"\/>/);
    assert.match(ok.read(), /<\/stream:stream>$/);
    const client = await talk(`<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='${BOT}'>`);
    await client.ended;
    assert.match(client.read(), /<invalid-namespace /);
  });

  test('a declared component that is not connected answers service-unavailable (RFC 6120 §8.3.3.19)', async () => {
    const err = alice.waitFor(byName('message', { type: 'error', from: `idle.${D}` }));
    await alice.send(xml('message', { to: `idle.${D}`, type: 'chat' }, xml('body', {}, 'hello?')));
    assert.equal(stanzaErrorOf(await err), 'service-unavailable');
    await assert.rejects(alice.iq(xml('iq', { type: 'get', to: `idle.${D}` }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' }))), /service-unavailable/);
  });

  test('another tenant cannot reach a component of this tenant', async () => {
    await s.addUser(`olga@${OTHER}`);
    const olga = await connectClient(s.url, { username: 'olga', domain: OTHER });
    try {
      const err = olga.waitFor(byName('message', { type: 'error' }));
      await olga.send(xml('message', { to: `echo@${BOT}`, type: 'chat' }, xml('body', {}, 'cross-tenant')));
      assert.equal(stanzaErrorOf(await err), 'remote-server-not-found');
    } finally {
      await olga.stop();
    }
  });

  test('cost: a message to a connected component is one read and one post; its answer to a user costs what a 1:1 message to her does', async () => {
    const c = await WsComponent.connect(s.url);
    try {
      assert.equal((await c.login(BOT, BOT_SECRET)).name, 'handshake');
      // Steady state: one exchange first, so tenant lookups are cached as in a running server.
      await alice.send(xml('message', { to: `echo@${BOT}`, type: 'chat' }, xml('body', {}, 'warm')));
      await c.next(byName('message'));
      c.send(xml('message', { xmlns: 'jabber:component:accept', from: `echo@${BOT}`, to: alice.jid, type: 'chat' }, xml('body', {}, 'warm back')));
      await alice.waitFor(byName('message', { from: `echo@${BOT}` }));
      const toComponent = await s.cost(async () => {
        await alice.send(xml('message', { to: `echo@${BOT}`, type: 'chat' }, xml('body', {}, 'cost')));
        await c.next(byName('message'));
      });
      assert.deepEqual([toComponent.reads, toComponent.writes, toComponent.posts], [1, 0, 1], JSON.stringify(toComponent.calls));
      const fromComponent = await s.cost(async () => {
        c.send(xml('message', { xmlns: 'jabber:component:accept', from: `echo@${BOT}`, to: alice.jid, type: 'chat' }, xml('body', {}, 'cost back')));
        await alice.waitFor(byName('message', { from: `echo@${BOT}` }));
      });
      // The recipient's session item, then her archive (XEP-0313): its preferences, one PutItem. The
      // component's address has no archive.
      assert.deepEqual([fromComponent.reads, fromComponent.writes, fromComponent.posts], [2, 1, 1], JSON.stringify(fromComponent.calls));
    } finally {
      c.ws.terminate();
      await c.closed;
    }
  });

  test('cost: the handshake, and a stanza to a component that is not connected', async () => {
    const c = await WsComponent.connect(s.url);
    try {
      // The connection item at each of the two frames, the registration; the stream state, the
      // registration, the bound stage; the header and <handshake/>.
      const handshake = await s.cost(async () => assert.equal((await c.login(`fresh.${D}`, 'fresh-secret-123')).name, 'handshake'));
      assert.deepEqual([handshake.reads, handshake.writes, handshake.posts], [3, 3, 2], JSON.stringify(handshake.calls));
    } finally {
      c.ws.terminate();
      await c.closed;
    }
    const idle = await s.cost(async () => {
      const err = alice.waitFor(byName('message', { type: 'error', from: `idle.${D}` }));
      await alice.send(xml('message', { to: `idle.${D}`, type: 'chat' }, xml('body', {}, 'cost')));
      await err;
    });
    assert.deepEqual([idle.reads, idle.writes, idle.posts], [1, 0, 1], JSON.stringify(idle.calls));
  });

  test('disabling a connected component live disconnects it at once (host-gone, RFC 6120 §4.9.3.5), with no stanza; then stanzas to it get service-unavailable', async () => {
    const c = await WsComponent.connect(s.url);
    assert.equal((await c.login(BOT, BOT_SECRET)).name, 'handshake');
    await watcherCaughtUp();
    const tenant = (await s.server.tenants.get(D, 0))!;
    const list = tenant.components as { domain: string; enabled: boolean }[];
    await s.server.tenants.put({ ...tenant, components: list.map((x) => (x.domain === BOT ? { ...x, enabled: false } : x)) });
    try {
      // The tenant watcher sees the change within its poll: nothing is sent to or from the component.
      assert.equal(streamErrorOf(await c.next(byName('stream:error'))), 'host-gone');
      await c.closed;
      const err = alice.waitFor(byName('message', { type: 'error', from: `echo@${BOT}` }));
      await alice.send(xml('message', { to: `echo@${BOT}`, type: 'chat' }, xml('body', {}, 'after disable')));
      assert.equal(stanzaErrorOf(await err), 'service-unavailable');
      assert.ok(!c.frames.some((f) => f.name === 'message'));
    } finally {
      await s.server.tenants.put(tenant);
    }
  });

  test('removing a connected component from the item disconnects it the same way; the other components stay', async () => {
    const c = await WsComponent.connect(s.url);
    assert.equal((await c.login(BOT, BOT_SECRET)).name, 'handshake');
    const other = await WsComponent.connect(s.url);
    assert.equal((await other.login(`idle.${D}`, 'idle-secret-123')).name, 'handshake');
    await watcherCaughtUp();
    const tenant = (await s.server.tenants.get(D, 0))!;
    const list = tenant.components as { domain: string }[];
    await s.server.tenants.put({ ...tenant, components: list.filter((x) => x.domain !== BOT) });
    try {
      assert.equal(streamErrorOf(await c.next(byName('stream:error'))), 'host-gone');
      await c.closed;
      // The untouched component still gets its stanzas.
      await alice.send(xml('message', { to: `idle.${D}`, type: 'chat' }, xml('body', {}, 'still there?')));
      assert.equal((await other.next(byName('message'))).getChildText('body'), 'still there?');
    } finally {
      other.ws.terminate();
      await other.closed;
      await s.server.tenants.put(tenant);
    }
  });

  test('a rotated secret ends the live component with reset (RFC 6120 §4.9.3.16): the old secret is refused, the new one connects', async () => {
    const c = await WsComponent.connect(s.url);
    assert.equal((await c.login(BOT, BOT_SECRET)).name, 'handshake');
    const other = await WsComponent.connect(s.url);
    assert.equal((await other.login(`idle.${D}`, 'idle-secret-123')).name, 'handshake');
    const tenant = (await s.server.tenants.get(D, 0))!;
    const list = tenant.components as { domain: string; secret?: string }[];
    const rotated = 'bot-secret-456';
    try {
      // A change of another component's declaration (watcherCaughtUp) leaves it connected.
      await watcherCaughtUp();
      await s.server.tenants.put({ ...tenant, components: list.map((x) => (x.domain === BOT ? { ...x, secret: rotated } : x)) });
      const error = await c.next(byName('stream:error'));
      assert.equal(streamErrorOf(error), 'reset');
      // Nothing came before it: the change of the other declaration did not end the stream.
      assert.deepEqual(c.frames.filter((f) => f.name !== 'close').map(String), []);
      await c.closed;
      s.clock.advance(5_000); // past the tenant cache, as a reconnecting component would be
      const old = await WsComponent.connect(s.url);
      assert.equal(streamErrorOf(await old.login(BOT, BOT_SECRET)), 'not-authorized');
      await old.closed;
      const fresh = await WsComponent.connect(s.url);
      try {
        assert.equal((await fresh.login(BOT, rotated)).name, 'handshake');
        await alice.send(xml('message', { to: `echo@${BOT}`, type: 'chat' }, xml('body', {}, 'after rotation')));
        assert.equal((await fresh.next(byName('message'))).getChildText('body'), 'after rotation');
      } finally {
        fresh.ws.terminate();
        await fresh.closed;
      }
      // A component whose secret stayed the same is left alone.
      await alice.send(xml('message', { to: `idle.${D}`, type: 'chat' }, xml('body', {}, 'untouched')));
      assert.equal((await other.next(byName('message'))).getChildText('body'), 'untouched');
      assert.ok(!other.frames.some((f) => f.name === 'stream:error'));
    } finally {
      other.ws.terminate();
      await other.closed;
      const start = changes.length;
      await s.server.tenants.put(tenant);
      s.clock.advance(5_000);
      // The old secret back, reported before the next test connects with it (else that change would end it).
      await until('the restored secret reported', () => changes.slice(start).some((e) => declaredSecret(e.after, BOT) === BOT_SECRET));
    }
  });

  test("a component's stanza rate: the tenant's limits.stanzasPerSecond unless its own stanzasPerSecond; over it, resource-constraint", async () => {
    const tenant = (await s.server.tenants.get(D, 0))!;
    const list = tenant.components as { domain: string; stanzasPerSecond?: number }[];
    const burst = async (c: WsComponent, tag: string) => {
      for (let i = 0; i < 5; i++) c.send(xml('message', { from: `echo@${BOT}`, to: alice.jid, type: 'chat', id: `${tag}${i}` }, xml('body', {}, `${tag} ${i}`)));
      // A ping after them: its answer comes once all five were handled.
      c.send(xml('iq', { from: `echo@${BOT}`, to: D, type: 'get', id: `${tag}-ping` }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
      await c.next(byName('iq', { id: `${tag}-ping` }));
      return c.frames.filter((f) => f.name === 'message' && f.attrs.type === 'error' && String(f.attrs.id).startsWith(tag));
    };
    // 0.5 a second, bursts of 1: of five stanzas sent at once, at most the first few pass, whatever the load.
    await s.server.tenants.put({ ...tenant, limits: { stanzasPerSecond: 0.5 } });
    const c = await WsComponent.connect(s.url);
    try {
      assert.equal((await c.login(BOT, BOT_SECRET)).name, 'handshake');
      const refused = await burst(c, 'slow');
      assert.ok(refused.length >= 1, 'some refused');
      assert.deepEqual([...new Set(refused.map((e) => `${stanzaErrorOf(e)} ${e.getChild('error')?.attrs.type}`))], ['resource-constraint wait']);
      // Its own rate wins over the tenant's.
      await s.server.tenants.put({ ...tenant, limits: { stanzasPerSecond: 0.5 }, components: list.map((x) => (x.domain === BOT ? { ...x, stanzasPerSecond: 1000 } : x)) });
      s.clock.advance(5_000); // past the tenant cache
      assert.deepEqual(await burst(c, 'fast'), []);
      // Alice (under the same tenant limit until now) checks that what was refused never reached her.
      await s.server.tenants.put(tenant);
      s.clock.advance(5_000);
      await alice.roundTrip();
      for (const e of refused) await alice.expectNothing(s, (el) => el.attrs.id === e.attrs.id && el.attrs.type !== 'error');
      assert.ok((await alice.waitFor(byName('message', { id: 'fast4' }))).getChildText('body'), 'fast 4');
    } finally {
      c.ws.terminate();
      await c.closed;
      await s.server.tenants.put(tenant);
      s.clock.advance(5_000);
    }
  });

  test('a subscription request from a component writes no roster under its JID: the contact gets it, and the answers go to the component', async () => {
    const { rosterOf } = await import('../../lib/extensions/roster/store.ts');
    const c = await WsComponent.connect(s.url);
    try {
      assert.equal((await c.login(BOT, BOT_SECRET)).name, 'handshake');
      const bare = alice.jid.split('/')[0];
      // §3.1.3: a request goes to the contact's available resources.
      await alice.send(xml('presence'));
      await alice.roundTrip();
      const cost = await s.cost(async () => {
        c.send(xml('presence', { from: `gw@${BOT}/x`, to: bare, type: 'subscribe' }));
        const got = await alice.waitFor(byName('presence', { type: 'subscribe' }));
        // RFC 6121 §3.1.2: stamped with the sender's bare JID.
        assert.equal(got.attrs.from, `gw@${BOT}`);
      });
      assert.equal(await rosterOf(s.server).get(`gw@${BOT}`, bare), undefined);
      assert.equal((await rosterOf(s.server).get(bare, `gw@${BOT}`))?.pendingIn, true);
      // Only alice's side was written: her roster item (pending in) and nothing for the component.
      assert.equal(cost.calls['dynamodb:PutItemCommand'] ?? 0, 1, JSON.stringify(cost.calls));
      // A request to an account that does not exist is answered unsubscribed (§3.1.3), to the component.
      c.send(xml('presence', { from: `gw@${BOT}`, to: `nobody@${D}`, type: 'subscribe' }));
      const answer = await c.next(byName('presence', { type: 'unsubscribed' }));
      assert.deepEqual([answer.attrs.from, answer.attrs.to, answer.attrs.xmlns], [`nobody@${D}`, `gw@${BOT}`, 'jabber:component:accept']);
      assert.equal(await rosterOf(s.server).get(`gw@${BOT}`, `nobody@${D}`), undefined);
    } finally {
      c.ws.terminate();
      await c.closed;
    }
  });

  test('a user subscribes to a component as to a contact elsewhere (RFC 6121 §3.1): roster pushes, the answer, presence both ways', async () => {
    const ROSTER = 'jabber:iq:roster';
    await s.addUser(`carol@${D}`);
    const carol = await connectClient(s.url, { username: 'carol' });
    (carol.xmpp as unknown as { iqCallee: { set(ns: string, name: string, fn: () => boolean): void } }).iqCallee.set(ROSTER, 'query', () => true);
    const bot = await startComponent(s.componentPort!, BOT, BOT_SECRET);
    const bare = `carol@${D}`;
    const push = async (expected: Record<string, string>) => {
      const iq = await carol.waitFor((el) => el.name === 'iq' && el.attrs.type === 'set' && el.getChild('query', ROSTER)?.getChild('item')?.attrs.jid === BOT);
      const { subscription, ask } = iq.getChild('query', ROSTER)!.getChild('item')!.attrs as Record<string, string>;
      assert.deepEqual({ subscription, ...(ask ? { ask } : {}) }, expected);
    };
    /** The next stanza the component gets that matches (what it got before is forgotten). */
    const atBot = (pred: (el: Element) => boolean) => {
      bot.received.length = 0;
      return bot.waitFor(pred);
    };
    const presenceFrom = (from: string, type?: string) => (el: Element) => el.is('presence') && el.attrs.from === from && el.attrs.type === type;
    try {
      await carol.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: ROSTER })));
      await carol.send(xml('presence'));
      await carol.waitFor(byName('presence', { from: carol.jid }));
      // §3.1.2: the user's server pushes the item with ask, then routes the request stamped with her bare JID.
      // Steady state: the tenant lookups that find the component are cached, as in a running server, and no
      // change an earlier test made is still to be reported by the watcher (which would refresh them).
      await watcherCaughtUp();
      await carol.send(xml('message', { to: `echo@${BOT}`, type: 'chat' }, xml('body', {}, 'warm')));
      await bot.waitFor((el) => el.is('message') && el.attrs.from === carol.jid);
      let got = atBot(presenceFrom(bare, 'subscribe'));
      const request = await s.cost(async () => {
        await carol.send(xml('presence', { to: BOT, type: 'subscribe' }));
        await push({ subscription: 'none', ask: 'subscribe' });
        assert.equal((await got).attrs.to, BOT);
      });
      // Her roster item, her session items (the push), the component's registration; her roster version
      // and item; the push and the post to the component.
      assert.deepEqual([request.reads, request.writes, request.posts], [3, 2, 2], JSON.stringify(request.calls));
      // §3.1.5–§3.1.6: the component approves; the user gets the answer and a push without ask.
      await bot.xmpp.send(xml('presence', { from: BOT, to: bare, type: 'subscribed' }));
      await carol.waitFor(byName('presence', { from: BOT, type: 'subscribed' }));
      await push({ subscription: 'to' });
      // The component's presence reaches the user.
      await bot.xmpp.send(xml('presence', { from: BOT, to: bare }, xml('status', {}, 'ready')));
      assert.equal((await carol.waitFor((el) => presenceFrom(BOT)(el))).getChildText('status'), 'ready');
      // §4.2.2 / §4.3.1: her next initial presence probes the component, from her bare JID.
      got = atBot(presenceFrom(bare, 'probe'));
      await carol.send(xml('presence', { type: 'unavailable' }));
      await carol.send(xml('presence'));
      assert.equal((await got).attrs.to, BOT);
      // The component subscribes back and she approves (§3.1.5): both, and her presence goes to it.
      await bot.xmpp.send(xml('presence', { from: BOT, to: bare, type: 'subscribe' }));
      await carol.waitFor(byName('presence', { from: BOT, type: 'subscribe' }));
      got = atBot(presenceFrom(carol.jid));
      const approved = bot.waitFor(presenceFrom(bare, 'subscribed'));
      await carol.send(xml('presence', { to: BOT, type: 'subscribed' }));
      await push({ subscription: 'both' });
      await approved;
      await got;
      // §4.4.2: a presence update reaches the component as a subscriber (the first warms the tenant cache).
      await watcherCaughtUp();
      got = atBot((el) => presenceFrom(carol.jid)(el) && el.getChildText('show') === 'away');
      await carol.send(xml('presence', {}, xml('show', {}, 'away')));
      await got;
      const cost = await s.cost(async () => {
        got = atBot((el) => presenceFrom(carol.jid)(el) && el.getChildText('show') === 'dnd');
        await carol.send(xml('presence', {}, xml('show', {}, 'dnd')));
        await got;
        await carol.waitFor((el) => presenceFrom(carol.jid)(el) && el.getChildText('show') === 'dnd');
      });
      // Roster Query, her own session items (BatchGetItem), the component's registration; her session
      // entry; the reflection to her and the post to the component.
      assert.deepEqual([cost.reads, cost.writes, cost.posts], [3, 1, 2], JSON.stringify(cost.calls));
      // §4.3.2: a probe from the component is answered with her current presence.
      got = atBot((el) => presenceFrom(carol.jid)(el) && el.getChildText('show') === 'dnd');
      await bot.xmpp.send(xml('presence', { from: BOT, to: bare, type: 'probe' }));
      await got;
      // §4.5.2: her unavailable presence reaches it too.
      got = atBot(presenceFrom(carol.jid, 'unavailable'));
      await carol.send(xml('presence', { type: 'unavailable' }));
      await got;
      // Still unavailable, a probe is answered unavailable from her bare JID.
      got = atBot(presenceFrom(bare, 'unavailable'));
      await bot.xmpp.send(xml('presence', { from: BOT, to: bare, type: 'probe' }));
      await got;
      const { rosterOf } = await import('../../lib/extensions/roster/store.ts');
      assert.equal((await rosterOf(s.server).get(bare, BOT))?.subscription, 'both');
      // Nothing is kept under the component's address.
      assert.deepEqual(await rosterOf(s.server).list(BOT), []);
      // §2.5.2: removing the item cancels both subscriptions, and the component is told.
      const unsubscribe = atBot(presenceFrom(bare, 'unsubscribe'));
      const unsubscribed = bot.waitFor(presenceFrom(bare, 'unsubscribed'));
      await carol.iq(xml('iq', { type: 'set' }, xml('query', { xmlns: ROSTER }, xml('item', { jid: BOT, subscription: 'remove' }))));
      await unsubscribe;
      await unsubscribed;
      // Its pushes: from (unsubscribe), none (unsubscribed), then the removal.
      await push({ subscription: 'from' });
      await push({ subscription: 'none' });
      await push({ subscription: 'remove' });
      assert.equal(await rosterOf(s.server).get(bare, BOT), undefined);
    } finally {
      await bot.xmpp.stop();
      await carol.stop();
    }
  });

  test('directed presence to a component is remembered: its session end sends unavailable there, not where a directed unavailable went (RFC 6121 §4.6.3)', async () => {
    await s.addUser(`dave@${D}`);
    const dave = await connectClient(s.url, { username: 'dave' });
    const bot = await startComponent(s.componentPort!, BOT, BOT_SECRET);
    const at = (to: string, type?: string) => (el: Element) => el.is('presence') && el.attrs.from === dave.jid && el.attrs.to === to && el.attrs.type === type;
    try {
      // Warm: the tenant lookups that find the component are cached, as in a running server.
      await dave.send(xml('presence', { to: `warm@${BOT}` }));
      await bot.waitFor(at(`warm@${BOT}`));
      await dave.send(xml('presence', { to: `warm@${BOT}`, type: 'unavailable' }));
      await bot.waitFor(at(`warm@${BOT}`, 'unavailable'));
      // Forgotten (the first one remembered, so it would be sent first at the end), then remembered.
      await dave.send(xml('presence', { to: `left@${BOT}` }));
      await bot.waitFor(at(`left@${BOT}`));
      const cost = await s.cost(async () => {
        await dave.send(xml('presence', { to: `gw@${BOT}` }, xml('status', {}, 'here')));
        assert.equal((await bot.waitFor(at(`gw@${BOT}`))).getChildText('status'), 'here');
      });
      // Her session items and the component's registration; her session entry (what she sent presence to); the post.
      assert.deepEqual([cost.reads, cost.writes, cost.posts], [2, 1, 1], JSON.stringify(cost.calls));
      await dave.send(xml('presence', { to: `left@${BOT}`, type: 'unavailable' }));
      await bot.waitFor(at(`left@${BOT}`, 'unavailable'));
      bot.received.length = 0;
      await dave.stop();
      await bot.waitFor(at(`gw@${BOT}`, 'unavailable'));
      assert.deepEqual(bot.received.filter((el) => el.is('presence')).map((el) => el.attrs.to), [`gw@${BOT}`]);
    } finally {
      await bot.xmpp.stop();
    }
  });

  test('a probe from a component that the user does not share her presence with is answered unsubscribed (RFC 6121 §4.3.2)', async () => {
    const bot = await startComponent(s.componentPort!, BOT, BOT_SECRET);
    try {
      const bare = alice.jid.split('/')[0];
      await bot.xmpp.send(xml('presence', { from: `stranger@${BOT}`, to: bare, type: 'probe' }));
      const answer = await bot.waitFor((el) => el.is('presence') && el.attrs.from === bare);
      assert.deepEqual([answer.attrs.type, answer.attrs.to], ['unsubscribed', `stranger@${BOT}`]);
    } finally {
      await bot.xmpp.stop();
    }
  });

  test('disabling the tenant closes its connected components with host-gone, as its clients', async () => {
    const c = await WsComponent.connect(s.url);
    assert.equal((await c.login(`fresh.${D}`, 'fresh-secret-123')).name, 'handshake');
    await s.server.tenants.setEnabled(D, false);
    try {
      assert.equal(streamErrorOf(await c.next(byName('stream:error'))), 'host-gone');
      await c.closed;
    } finally {
      await s.server.tenants.setEnabled(D, true);
    }
  });
});

// In AWS no watcher polls: the tenant-changes function reads the table's stream. The same server code
// on a stream record built from the real items (the watcher switched off, so only the function acts).
describe('XEP-0114 components: a change from the table stream (AWS)', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer({ tenantWatchMs: 3_600_000 });
    await s.server.tenants.put({ domain: D, enabled: true, components: [{ domain: BOT, kind: 'connected', enabled: true, secret: BOT_SECRET }] });
  });
  after(async () => {
    await s?.stop();
  });

  test('the tenant-changes function ends a component disabled in the item with host-gone', async () => {
    const { marshall } = await import('@aws-sdk/util-dynamodb');
    const { closeTenantsOf } = await import('../../functions/tenant-changes.ts');
    const { TENANT_CHANGE_FILTERS } = await import('../../lib/runtime/tenant-stream.ts');
    const c = await WsComponent.connect(s.url);
    assert.equal((await c.login(BOT, BOT_SECRET)).name, 'handshake');
    const before = (await s.server.tenants.get(D, 0))!;
    const after = { ...before, components: [{ domain: BOT, kind: 'connected', enabled: false, secret: BOT_SECRET }] };
    await s.server.tenants.put(after);
    const image = (t: object) => marshall({ pk: `tenant#${D}`, sk: 'tenant', ...t }, { removeUndefinedValues: true });
    const record = { eventName: 'MODIFY', dynamodb: { Keys: marshall({ pk: `tenant#${D}`, sk: 'tenant' }), OldImage: image(before), NewImage: image(after), SequenceNumber: '7' } };
    // The stack's event filter lets it through (its last pattern: the old image had a connected component).
    assert.equal(JSON.stringify(TENANT_CHANGE_FILTERS.at(-1)), JSON.stringify({ eventName: ['MODIFY'], dynamodb: { Keys: { pk: { S: [{ prefix: 'tenant#' }] }, sk: { S: ['tenant'] } }, OldImage: { components: { L: { M: { kind: { S: ['connected'] } } } } } } }));
    assert.deepEqual(await closeTenantsOf({ Records: [record as never] }, s.server), { batchItemFailures: [] });
    assert.equal(streamErrorOf(await c.next(byName('stream:error'))), 'host-gone');
    await c.closed;
  });

  test('the tenant-changes function ends a component whose secret changed with reset', async () => {
    const { marshall } = await import('@aws-sdk/util-dynamodb');
    const { closeTenantsOf } = await import('../../functions/tenant-changes.ts');
    const before = { domain: D, enabled: true, components: [{ domain: BOT, kind: 'connected', enabled: true, secret: BOT_SECRET }] };
    await s.server.tenants.put(before);
    s.clock.advance(5_000); // past the tenant cache
    const c = await WsComponent.connect(s.url);
    assert.equal((await c.login(BOT, BOT_SECRET)).name, 'handshake');
    const after = { ...before, components: [{ ...before.components[0], secret: 'bot-secret-rotated' }] };
    await s.server.tenants.put(after);
    const image = (t: object) => marshall({ pk: `tenant#${D}`, sk: 'tenant', ...t }, { removeUndefinedValues: true });
    const record = { eventName: 'MODIFY', dynamodb: { Keys: marshall({ pk: `tenant#${D}`, sk: 'tenant' }), OldImage: image(before), NewImage: image(after), SequenceNumber: '8' } };
    assert.deepEqual(await closeTenantsOf({ Records: [record as never] }, s.server), { batchItemFailures: [] });
    assert.equal(streamErrorOf(await c.next(byName('stream:error'))), 'reset');
    await c.closed;
  });
});

// The local tenant watcher (dynalite has no stream), its polls run by the test (tenantWatchMs off): a
// change made between a component's handshake and the next poll, when no other stream of the tenant
// was open before (no earlier poll read the item), is told against the item the handshake read.
describe('XEP-0114 components: the local tenant watcher', () => {
  let s: TestServer;
  const changes: { tenant: string; before?: unknown; after?: unknown }[] = [];
  const observer: XmppModule = {
    name: 'test-tenant-changes',
    install(ctx) {
      ctx.hook('tenant/changed', ({ tenant, before, after }) => void changes.push({ tenant, before, after }));
    },
  };
  before(async () => {
    s = await startTestServer({ tenantWatchMs: 3_600_000, extraModules: [observer] });
    await s.server.tenants.put({ domain: D, enabled: true, components: [{ domain: BOT, kind: 'connected', enabled: true, secret: BOT_SECRET }] });
    await s.server.tenants.put({ domain: OTHER, enabled: true, components: [{ domain: `bot.${OTHER}`, kind: 'connected', enabled: true, secret: 'other-secret-1' }] });
  });
  after(async () => {
    await s?.stop();
  });

  test("a component disabled right after its tenant's first stream opened, before any poll, is ended at the next poll", async () => {
    const c = await WsComponent.connect(s.url);
    assert.equal((await c.login(BOT, BOT_SECRET)).name, 'handshake');
    const item = (await s.server.tenants.get(D, 0))!;
    const off = { ...item, components: [{ domain: BOT, kind: 'connected', enabled: false, secret: BOT_SECRET }] };
    await s.server.tenants.put(off);
    await s.tenantWatcher.catchUp();
    assert.equal(streamErrorOf(await c.next(byName('stream:error'))), 'host-gone');
    await c.closed;
    assert.deepEqual(changes.map((x) => x.tenant), [D]);
    const told = changes[0] as { before: { components: { enabled: boolean }[] }; after: { components: { enabled: boolean }[] } };
    assert.deepEqual([told.before.components[0].enabled, told.after.components[0].enabled], [true, false]);
    await s.server.tenants.put(item);
  });

  test("the first poll of a tenant that reads the item its handshake read tells no change: the component stays connected", async () => {
    const c = await WsComponent.connect(s.url);
    try {
      assert.equal((await c.login(`bot.${OTHER}`, 'other-secret-1')).name, 'handshake');
      await s.tenantWatcher.catchUp();
      await s.tenantWatcher.catchUp();
      assert.deepEqual(changes.filter((x) => x.tenant === OTHER), []);
      // Still served: the component's ping to its server is answered.
      c.send(xml('iq', { from: `bot.${OTHER}`, to: OTHER, type: 'get', id: 'still' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
      assert.equal((await c.next(byName('iq', { id: 'still' }))).attrs.type, 'result');
      assert.ok(!c.frames.some((f) => f.name === 'stream:error'));
    } finally {
      c.ws.terminate();
      await c.closed;
    }
  });
});

// XEP-0191 with a component's addresses, which RFC 6121 treats as entities elsewhere: the router hands what a
// user sends there to the component, so the blocking module checks it there too.
describe('XEP-0114 components: XEP-0191 blocking', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer({ seedDomains: [D] });
    await s.server.tenants.put({ domain: D, enabled: true, features: ['blocking'], components: [{ domain: BOT, kind: 'connected', enabled: true, secret: BOT_SECRET }] });
  });
  after(async () => {
    await s?.stop();
  });

  test('§3.6: to a blocked component address, a message or IQ gets <blocked/> and presence is dropped; §3.5: nothing from it arrives; §3.3: unavailable to it on the block, no broadcast after', async () => {
    const NS_BLOCKING = 'urn:xmpp:blocking';
    await s.addUser(`erin@${D}`);
    const erin = await connectClient(s.url, { username: 'erin' });
    const bot = await startComponent(s.componentPort!, BOT, BOT_SECRET);
    const bare = `erin@${D}`;
    const { rosterOf } = await import('../../lib/extensions/roster/store.ts');
    // The component is subscribed to her presence (from), as after RFC 6121 §3.1.
    await rosterOf(s.server).put(bare, { jid: `gw@${BOT}`, subscription: 'from', groups: [], inRoster: true, pendingOut: false, pendingIn: false, approved: false });
    const seen = (pred: (el: Element) => boolean) => bot.received.filter(pred).map(String);
    const fromErin = (name: string, to: string, type?: string) => (el: Element) => el.is(name) && String(el.attrs.from).startsWith(bare) && el.attrs.to === to && el.attrs.type === type;
    try {
      await erin.send(xml('presence'));
      await bot.waitFor(fromErin('presence', `gw@${BOT}`));
      bot.received.length = 0;
      // §3.3: blocking the component's domain covers every address at it; its subscribed contact gets unavailable.
      await erin.iq(xml('iq', { type: 'set' }, xml('block', { xmlns: NS_BLOCKING }, xml('item', { jid: BOT }))));
      await bot.waitFor(fromErin('presence', `gw@${BOT}`, 'unavailable'));
      // §3.6: a message and an IQ are refused with not-acceptable and <blocked/>.
      await erin.send(xml('message', { to: `gw@${BOT}`, type: 'chat', id: 'm1' }, xml('body', {}, 'blocked 1')));
      const error = await erin.waitFor((el) => el.is('message') && el.attrs.id === 'm1' && el.attrs.type === 'error');
      assert.equal(error.getChild('error')?.getChild('not-acceptable', 'urn:ietf:params:xml:ns:xmpp-stanzas')?.name, 'not-acceptable');
      assert.ok(error.getChild('error')?.getChild('blocked', 'urn:xmpp:blocking:errors'));
      await assert.rejects(erin.iq(xml('iq', { type: 'get', to: BOT }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' }))), (err: { condition?: string }) => err.condition === 'not-acceptable');
      // Presence is dropped without an answer: her update, and directed presence.
      await erin.send(xml('presence', {}, xml('show', {}, 'away')));
      await erin.send(xml('presence', { to: `other@${BOT}` }));
      // §3.5: what the component sends her does not arrive.
      await bot.xmpp.send(xml('message', { from: `gw@${BOT}`, to: bare, type: 'chat', id: 'c1' }, xml('body', {}, 'to a blocker')));
      await erin.expectNothing(s, (el) => el.is('message') && el.attrs.id === 'c1');
      // Unblocked: what follows flows both ways, and what was blocked never reached the component (one
      // connection delivers in order, so it would have come before this).
      await erin.iq(xml('iq', { type: 'set' }, xml('unblock', { xmlns: NS_BLOCKING }, xml('item', { jid: BOT }))));
      await erin.send(xml('message', { to: `gw@${BOT}`, type: 'chat', id: 'm2' }, xml('body', {}, 'open')));
      await bot.waitFor((el) => el.is('message') && el.attrs.id === 'm2');
      assert.deepEqual(seen((el) => el.is('message') || el.is('iq')), [seen((el) => el.is('message') && el.attrs.id === 'm2')[0]]);
      assert.deepEqual(seen((el) => el.is('presence') && el.attrs.type !== 'unavailable'), []);
      await bot.xmpp.send(xml('message', { from: `gw@${BOT}`, to: bare, type: 'chat', id: 'c2' }, xml('body', {}, 'again')));
      await erin.waitFor((el) => el.is('message') && el.attrs.id === 'c2');
    } finally {
      await bot.xmpp.stop();
      await erin.stop();
    }
  });
});
