// Test harness: a real local server (dynalite in memory, the local gateway on an ephemeral port,
// the real handlers) and real XMPP clients (xmpp.js over WebSocket, or a raw `ws` socket for
// malformed input).
import { pino } from 'pino';
import WebSocket from 'ws';
import { client, type XmppClient } from '@xmpp/client';
import { addUser } from '../../lib/core/accounts.ts';
import { summarize } from '../../lib/store/call-counter.ts';
import type { Clock } from '../../lib/store/clock.ts';
import { type LocalServer, type LocalServerOptions, startLocalServer } from '../../lib/local/local-server.ts';
import { type Element, parseFrame, xml } from '../../lib/xmpp/xml.ts';
import { type MechanismName, authenticateWith, useScramSha256 } from './sasl-scram-sha-256.ts';

// Node 20 has no global WebSocket; xmpp.js's websocket transport expects the browser API.
(globalThis as { WebSocket?: unknown }).WebSocket ??= WebSocket;

export { xml };
export type { Element };

/**
 * Bounds a wait for something that should happen (a stanza, a frame, a condition). Only a failing
 * test ever waits this long, so it is generous: a loaded CI machine must not fail a passing test.
 */
export const WAIT_MS = 30_000;

/** The system clock plus an offset tests move forward, instead of sleeping until time has passed. */
export class TestClock implements Clock {
  private offset = 0;
  private frozenAt?: number;
  now(): number {
    return this.frozenAt ?? Date.now() + this.offset;
  }
  advance(ms: number): void {
    if (this.frozenAt !== undefined) this.frozenAt += ms;
    else this.offset += ms;
  }
  /** Stops time until thaw(): only advance() moves it. */
  freeze(): void {
    this.frozenAt = this.now();
  }
  thaw(): void {
    if (this.frozenAt === undefined) return;
    this.offset = this.frozenAt - Date.now();
    this.frozenAt = undefined;
  }
}

/**
 * Polls `count` until it reaches `target`, failing only when it has not grown for `stallMs`: for bursts
 * whose total time depends on how busy the machine is, while a stall (a lost stanza) still fails fast.
 */
export async function untilCount(what: string, count: () => number, target: number, stallMs = WAIT_MS): Promise<void> {
  let last = -1;
  let deadline = 0;
  for (let delay = 5; ; delay = Math.min(delay * 2, 100)) {
    const n = count();
    if (n >= target) return;
    if (n > last) [last, deadline] = [n, Date.now() + stallMs];
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${n} of ${target}, none more in ${stallMs} ms`);
    await new Promise((r) => setTimeout(r, delay));
  }
}

/**
 * Polls `check` until it returns a truthy value (for conditions that have no event to wait for); on
 * the deadline, fails with what `seen` (default: the last value of `check`) shows.
 */
export async function until<T>(what: string, check: () => Promise<T> | T, seen?: () => unknown, timeoutMs = WAIT_MS): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 5; ; delay = Math.min(delay * 2, 100)) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last seen: ${JSON.stringify(seen ? await seen() : value)}`);
    await new Promise((r) => setTimeout(r, delay));
  }
}

/** What expectNothing needs of a server: its gateway, to know when nothing is being processed. */
export interface Settles {
  gateway: { idle(): Promise<void> };
}

export interface TestServer extends LocalServer {
  /** The server's clock (see TestClock); advance it to let caches, history and checks age. */
  clock: TestClock;
  addUser(jid: string, password?: string): Promise<void>;
  /** Adds an account `<prefix><n>@<domain>` (password "secret") with a number no other call used; returns its local part. */
  freshUser(prefix: string, domain?: string): Promise<string>;
  /**
   * DynamoDB reads/writes and management posts made while `fn` ran: measured once the tenant watcher has
   * caught up and the gateway is idle, and until the gateway is idle again.
   */
  cost(fn: () => Promise<unknown>): Promise<{ reads: number; writes: number; posts: number; calls: Record<string, number> }>;
}

export async function startTestServer(opts: LocalServerOptions = {}): Promise<TestServer> {
  const clock = new TestClock();
  const local = await startLocalServer({
    clock,
    port: 0,
    dynamoPort: 0,
    logger: pino({ level: process.env.TEST_LOG ?? 'silent' }),
    // The sweeper uses the counted client; tests that need it set their own interval.
    sweepIntervalMs: 3_600_000,
    // Tenant reads are cached (3 s in production) and refreshed now and then on the stanza path;
    // a long cache keeps those refreshes out of measured costs. Tests of tenant changes set 3000.
    tenantCacheMs: 60_000,
    // The XEP-0114 listener on a free port: tests run side by side.
    componentPort: 0,
    ...opts,
  });
  let users = 0;
  return Object.assign(local, {
    clock,
    addUser: (jid: string, password = 'secret') => addUser(local.server.users, jid, password),
    async freshUser(prefix: string, domain = 'localhost') {
      const name = `${prefix}${++users}`;
      await addUser(local.server.users, `${name}@${domain}`, 'secret');
      return name;
    },
    async cost(fn: () => Promise<unknown>) {
      // What earlier steps left to the background is done before the measure: the tenant watcher's
      // reaction to a change (a deleted tenant's sessions closed), then the frames it caused.
      await local.tenantWatcher.catchUp();
      await local.gateway.idle();
      const before = local.counter.snapshot();
      await fn();
      await local.gateway.idle();
      const calls = local.counter.since(before);
      return { ...summarize(calls), calls };
    },
  });
}

/** An xmpp.js client that records every stanza it receives. */
export class TestClient {
  readonly received: Element[] = [];
  private waiters: { pred: (el: Element) => boolean; resolve: (el: Element) => void }[] = [];
  jid = '';

  constructor(readonly xmpp: XmppClient) {
    xmpp.on('stanza', (el: Element) => {
      this.received.push(el);
      for (const w of [...this.waiters]) {
        if (w.pred(el)) {
          this.waiters.splice(this.waiters.indexOf(w), 1);
          w.resolve(el);
        }
      }
    });
    xmpp.on('error', () => {});
  }

  /** Resolves with the first stanza (already received or future) matching `pred`. */
  waitFor(pred: (el: Element) => boolean, timeoutMs = WAIT_MS, what = 'stanza'): Promise<Element> {
    const seen = this.received.find(pred);
    if (seen) {
      this.received.splice(this.received.indexOf(seen), 1);
      return Promise.resolve(seen);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.resolve !== done);
        reject(new Error(`${this.jid}: timed out waiting for ${what}; received: ${this.received.map(String).join('\n')}`));
      }, timeoutMs);
      const done = (el: Element) => {
        clearTimeout(timer);
        const i = this.received.indexOf(el);
        if (i >= 0) this.received.splice(i, 1);
        resolve(el);
      };
      this.waiters.push({ pred, resolve: done });
    });
  }

  /**
   * Asserts nothing matching arrived once everything sent so far was processed: a ping round trip
   * (XEP-0199) on each of `senders` proves the server handled what they sent before it, the gateway
   * then idle proves no handler is still running or queued, and a last round trip on this client
   * proves every frame written to it before the pong arrived (one WebSocket delivers in order).
   */
  async expectNothing(s: Settles, pred: (el: Element) => boolean, ...senders: TestClient[]): Promise<void> {
    for (const c of senders) await c.roundTrip();
    await s.gateway.idle();
    await this.roundTrip();
    await s.gateway.idle();
    const hit = this.received.find(pred);
    if (hit) throw new Error(`${this.jid}: unexpected ${hit.toString()}`);
  }

  /** A ping to this client's server (XEP-0199 §4), answered after everything sent before it. */
  async roundTrip(): Promise<void> {
    const domain = this.jid.split('/')[0].split('@').pop()!;
    await this.iq(xml('iq', { type: 'get', to: domain }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
  }

  send(el: Element): Promise<void> {
    return this.xmpp.send(el);
  }

  iq(el: Element): Promise<Element> {
    return this.xmpp.iqCaller.request(el, WAIT_MS);
  }

  async stop(): Promise<void> {
    if (this.xmpp.status !== 'offline') await this.xmpp.stop().catch(() => {});
  }
}

export async function connectClient(
  url: string,
  opts: { username: string; password?: string; domain?: string; resource?: string; mechanism?: MechanismName },
): Promise<TestClient> {
  const domain = opts.domain ?? 'localhost';
  const credentials = { username: opts.username, password: opts.password ?? 'secret' };
  const xmpp = client({
    service: url,
    domain,
    resource: opts.resource,
    ...(opts.mechanism ? { credentials: authenticateWith(opts.mechanism, credentials) } : credentials),
  });
  useScramSha256(xmpp as never);
  xmpp.reconnect.stop();
  const c = new TestClient(xmpp);
  await xmpp.start();
  c.jid = xmpp.jid!.toString();
  return c;
}

export const byName = (name: string, attrs: Record<string, string> = {}) => (el: Element) =>
  el.name === name && Object.entries(attrs).every(([k, v]) => el.attrs[k] === v);

/** A raw RFC 7395 WebSocket client: for malformed input and for watching exact frames. */
export class RawClient {
  readonly frames: string[] = [];
  closed: Promise<{ code: number }>;
  private listeners: (() => void)[] = [];

  constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      this.frames.push(data.toString());
      for (const l of this.listeners) l();
    });
    this.closed = new Promise((resolve) => ws.on('close', (code) => resolve({ code })));
  }

  /** `localAddress` (any of 127.0.0.0/8 on Linux) gives the connection its own source address. */
  static async connect(url: string, opts: { localAddress?: string } = {}): Promise<RawClient> {
    const ws = new WebSocket(url, 'xmpp', opts.localAddress ? { localAddress: opts.localAddress } : {});
    const c = new RawClient(ws);
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    return c;
  }

  /**
   * A raw client of `s` logged in as `user` (4 frames: open, auth, open, bind), and the connection id the
   * gateway gave it: the one id new since just before it connected.
   */
  static async loggedIn(s: Pick<TestServer, 'url' | 'gateway'>, user: string): Promise<{ c: RawClient; id: string }> {
    const known = new Set(s.gateway.connectionIds());
    const c = await RawClient.connect(s.url);
    const id = s.gateway.connectionIds().find((x) => !known.has(x));
    if (!id) throw new Error('the gateway does not know the new connection');
    await c.login(user);
    return { c, id };
  }

  send(text: string): void {
    this.ws.send(text);
  }

  /** Frames before this index were consumed by next(). */
  private cursor = 0;

  /** Waits for the next frame (after those already consumed) matching `pred`, parsed. */
  next(pred: (el: Element) => boolean, timeoutMs = WAIT_MS): Promise<Element> {
    return new Promise((resolve, reject) => {
      const check = () => {
        for (; this.cursor < this.frames.length; this.cursor++) {
          const el = parseFrame(this.frames[this.cursor]);
          if (pred(el)) {
            this.cursor++;
            this.listeners = this.listeners.filter((l) => l !== check);
            clearTimeout(timer);
            resolve(el);
            return;
          }
        }
      };
      const timer = setTimeout(() => {
        this.listeners = this.listeners.filter((l) => l !== check);
        reject(new Error(`timed out; frames: ${this.frames.join('\n')}`));
      }, timeoutMs);
      this.listeners.push(check);
      check();
    });
  }

  /** Opens the stream and logs in with PLAIN, then binds `resource`. */
  async login(username: string, password = 'secret', resource = 'raw', domain = 'localhost'): Promise<void> {
    const open = `<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="${domain}" version="1.0"/>`;
    this.send(open);
    await this.next((el) => el.name === 'stream:features');
    this.send(`<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="PLAIN">${Buffer.from(`\0${username}\0${password}`).toString('base64')}</auth>`);
    await this.next((el) => el.name === 'success');
    this.send(open);
    await this.next((el) => el.name === 'stream:features');
    this.send(`<iq xmlns="jabber:client" type="set" id="bind"><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"><resource>${resource}</resource></bind></iq>`);
    const bound = await this.next((el) => el.name === 'iq' && el.attrs.id === 'bind');
    if (bound.attrs.type !== 'result') throw Object.assign(new Error(`bind failed: ${bound.toString()}`), { element: bound });
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
