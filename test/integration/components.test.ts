// XEP-0114 components (README "Components"): a real @xmpp/component over TCP on the local listener,
// the same protocol over the WebSocket API (subprotocol xmpp-component, RFC 7395 framing), and the
// refusals: wrong secret, unknown domain, disabled component, a stanza from another tenant's domain,
// a component that is not connected.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createRequire } from 'node:module';
import WebSocket from 'ws';
import { type TestClient, type TestServer, byName, connectClient, startTestServer, until } from '../support/harness.ts';
import { handshakeDigest } from '../../lib/extensions/components/handshake.ts';
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
    waitFor: (pred) => until('a stanza at the component', () => received.find(pred), () => received.map(String)),
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
    }, () => this.frames.map(String));
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

const streamErrorOf = (el: Element) => el.children.find((c): c is Element => typeof c !== 'string' && c.attrs.xmlns === 'urn:ietf:params:xml:ns:xmpp-streams' && c.name !== 'text')?.name;
const stanzaErrorOf = (el: Element) => el.getChild('error')?.children.find((c): c is Element => typeof c !== 'string')?.name;

describe('XEP-0114 components', () => {
  let s: TestServer;
  let alice: TestClient;
  before(async () => {
    s = await startTestServer({ seedDomains: [D, OTHER] });
    await s.server.tenants.put({
      domain: D,
      enabled: true,
      components: [
        { domain: BOT, kind: 'connected', enabled: true, secret: BOT_SECRET },
        { domain: `off.${D}`, kind: 'connected', enabled: false, secret: 'off-secret-123' },
        { domain: `idle.${D}`, kind: 'connected', enabled: true, secret: 'idle-secret-123' },
      ],
    });
    await s.server.tenants.put({ domain: OTHER, enabled: true, components: [{ domain: `bot.${OTHER}`, kind: 'connected', enabled: true, secret: 'other-secret-1' }] });
    await s.addUser(`alice@${D}`);
    alice = await connectClient(s.url, { username: 'alice' });
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
});
