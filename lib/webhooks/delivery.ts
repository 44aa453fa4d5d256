// Webhook delivery (docs/architecture.md "Webhooks"): a signed POST with a timeout, retried with
// exponential backoff and jitter when the failure may pass (5xx, 408, 429, a timeout, a refused or reset
// connection), never for any other 4xx or a redirect; a dead letter after the last attempt.
//
// A Lambda must not sleep for minutes between attempts, so the attempts are split:
// - inline: the first attempts run in the caller's invocation, a short backoff apart, as long as the
//   next one still fits the inline budget (`maxInlineAttempts`, `inlineBudgetMs`);
// - deferred: after that the request is written to the table with its due time (one PutItem), and the
//   sweeper (every minute in AWS, the local server's sweep timer locally) sends it again, backing off
//   from one minute up to `deferredMaxDelayMs`, until `maxAttempts`; then it becomes a dead letter the
//   admin API lists (kept 14 days).
// Every attempt is signed afresh (lib/webhooks/signing.ts) and carries the same X-XMPP-Edge-Delivery id,
// so a receiver that answered too slowly can recognise the retry of a request it already took.
// Each attempt resolves the URL's name, refuses a private address and connects to the checked one
// (checkedAddress, docs/architecture.md "Webhooks").
import { randomUUID } from 'node:crypto';
import { lookup as dnsLookup } from 'node:dns/promises';
import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import type { Clock } from '../store/clock.ts';
import { signedHeaders } from './signing.ts';
import type { StoredRequest, WebhookStore } from './store.ts';

export const DELIVERY_HEADER = 'X-XMPP-Edge-Delivery';
export const ATTEMPT_HEADER = 'X-XMPP-Edge-Attempt';

export interface DeliveryPolicy {
  /** One attempt's limit, from sending to the whole response body read. */
  timeoutMs: number;
  /** Attempts made in the caller's invocation (at least 1). */
  maxInlineAttempts: number;
  /** No inline attempt starts unless it can finish (its backoff plus `timeoutMs`) within this, from the first. */
  inlineBudgetMs: number;
  /** Backoff before the second inline attempt; doubles for each next one. */
  inlineBaseDelayMs: number;
  /** All attempts, inline and deferred; after the last, a dead letter. */
  maxAttempts: number;
  /** Backoff before the first deferred attempt; doubles for each next one, up to `deferredMaxDelayMs`. */
  deferredBaseDelayMs: number;
  deferredMaxDelayMs: number;
  /** A longer response body is cut here (a webhook component's reply stanzas fit well within). */
  maxResponseBytes: number;
}

/** 3 inline attempts in at most 8 s; then 1, 2, 4, 8, 16 min later: 8 attempts over about 31 minutes. */
export const DEFAULT_POLICY: DeliveryPolicy = {
  timeoutMs: 5_000,
  maxInlineAttempts: 3,
  inlineBudgetMs: 8_000,
  inlineBaseDelayMs: 250,
  maxAttempts: 8,
  deferredBaseDelayMs: 60_000,
  deferredMaxDelayMs: 30 * 60_000,
  maxResponseBytes: 256 * 1024,
};

export interface WebhookRequest {
  tenant: string;
  /** Who sends it, resolved again for deferred attempts: `events`, `component:<domain>`. */
  source: string;
  url: string;
  body: string;
  contentType: string;
  /** Signs the request when set (lib/webhooks/signing.ts). */
  secret?: string;
}

export interface WebhookResponse {
  status: number;
  contentType?: string;
  body: string;
}

/** What one attempt came to; `refused`: the URL's name resolved to an address a webhook may not reach (never retried). */
export type AttemptResult = { kind: 'response'; response: WebhookResponse } | { kind: 'timeout' } | { kind: 'connection'; error: string } | { kind: 'refused'; error: string };

export type DeliveryOutcome =
  | { status: 'delivered'; id: string; attempts: number; response: WebhookResponse }
  /** Failed so far, written for a later attempt by the sweeper. */
  | { status: 'scheduled'; id: string; attempts: number; dueAt: number; lastError: string; response?: WebhookResponse }
  /** Given up: the last attempt failed, or the answer said retrying will not help; a dead letter is written. */
  | { status: 'dead'; id: string; attempts: number; lastError: string; response?: WebhookResponse };

/** Whether a failure may pass: timeouts, connection errors, 5xx, 408 Request Timeout, 429 Too Many Requests. */
export function retryable(result: AttemptResult): boolean {
  if (result.kind === 'refused') return false;
  if (result.kind !== 'response') return true;
  const s = result.response.status;
  return s >= 500 || s === 408 || s === 429;
}

export function succeeded(result: AttemptResult): result is { kind: 'response'; response: WebhookResponse } {
  return result.kind === 'response' && result.response.status >= 200 && result.response.status < 300;
}

export function describe(result: AttemptResult): string {
  if (result.kind === 'response') return `status ${result.response.status}`;
  if (result.kind === 'refused') return `refused URL: ${result.error}`;
  return result.kind === 'timeout' ? 'timeout' : `connection: ${result.error}`;
}

/** "Equal jitter": half the exponential delay fixed, half random, so retries of many requests spread out. */
export function backoff(base: number, n: number, cap: number, random: () => number): number {
  const d = Math.min(cap, base * 2 ** n);
  return Math.round(d / 2 + (random() * d) / 2);
}

/**
 * Which URLs a webhook may have: https anywhere; http only to the loopback address, and only where
 * `allowLoopbackHttp` (the local server and tests: a receiver on the same machine). The tenant schema
 * accepts both forms; a deployed server refuses the second at delivery.
 */
export function urlProblem(url: string, allowLoopbackHttp: boolean): string | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return 'not a URL';
  }
  if (u.protocol === 'https:') return privateAddress(u.hostname) && !(allowLoopbackHttp && isLoopback(u.hostname)) ? 'names a private, loopback or link-local address' : undefined;
  if (u.protocol === 'http:' && isLoopback(u.hostname)) return allowLoopbackHttp ? undefined : 'http to the loopback address is allowed on the local server only';
  return 'must be https (or http://127.0.0.1 on the local server)';
}

/**
 * An IP address (or literal) in a private, loopback, link-local, shared, unspecified or multicast range
 * (RFC 1918, RFC 6598, RFC 6890, RFC 4193, RFC 4291): a tenant's webhook must not reach into the
 * deployment's own network. A name is checked by resolving it at send time (checkedAddress).
 */
export function privateAddress(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const v4 = /^(\d{1,3})\.(\d{1,3})\.\d{1,3}\.\d{1,3}$/.exec(h);
  if (v4) {
    const [a, b] = [Number(v4[1]), Number(v4[2])];
    return a === 10 || a === 127 || a === 0 || a >= 224 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 169 && b === 254) || (a === 100 && b >= 64 && b <= 127);
  }
  if (!h.includes(':')) return h === 'localhost';
  // NAT64 (RFC 6052): the IPv4 address it carries decides.
  const nat64 = /^64:ff9b::([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(h);
  if (nat64) {
    const [hi, lo] = [parseInt(nat64[1], 16), parseInt(nat64[2], 16)];
    return privateAddress(`${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`);
  }
  return h === '::1' || h === '::' || /^f[cd]/.test(h) || /^fe[89ab]/.test(h) || /^ff/.test(h) || h.startsWith('::ffff:') || h.startsWith('64:ff9b:');
}

export function isLoopback(hostname: string): boolean {
  return hostname === '127.0.0.1' || hostname === 'localhost' || hostname === '[::1]';
}

const loopbackAddress = (a: string) => a === '::1' || /^127\./.test(a);

export interface ResolvedAddress {
  address: string;
  family: number;
}

/** Every address of a name (node:dns lookup with `all`); tests pass their own. */
export type AddressResolver = (hostname: string) => Promise<ResolvedAddress[]>;

export const systemResolver: AddressResolver = (hostname) => dnsLookup(hostname, { all: true, verbatim: true });

/**
 * The address a webhook request for `url` connects to, resolved now and checked: refused (a string) if
 * any address of the name is private, loopback or link-local, since a name an attacker controls may
 * answer with both a public and an internal address. Where `allowLoopbackHttp`, a loopback name
 * (localhost) must resolve to loopback addresses only. The request then connects to exactly this
 * address (connectTo), so a second DNS answer (DNS rebinding) cannot send it elsewhere.
 */
export async function checkedAddress(url: URL, allowLoopbackHttp: boolean, resolve: AddressResolver): Promise<ResolvedAddress | string> {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const family = isIP(host);
  // An IP literal was checked by urlProblem.
  if (family) return { address: host, family };
  const all = await resolve(host);
  if (!all.length) throw Object.assign(new Error(`${host} has no address`), { code: 'ENOTFOUND' });
  if (allowLoopbackHttp && isLoopback(url.hostname)) {
    const other = all.find((a) => !loopbackAddress(a.address));
    return other ? `${host} resolves to ${other.address}, not a loopback address` : all[0];
  }
  const inside = all.find((a) => privateAddress(a.address));
  return inside ? `${host} resolves to ${inside.address}, a private, loopback or link-local address` : all[0];
}

/** A `lookup` for node:http that answers every query with the checked address (Node 20 asks with `all`). */
function connectTo(checked: ResolvedAddress) {
  return (_host: string, opts: { all?: boolean }, cb: (err: Error | null, address: string | ResolvedAddress[], family?: number) => void) => {
    if (opts?.all) cb(null, [checked]);
    else cb(null, checked.address, checked.family);
  };
}

export interface DeliveryDeps {
  clock: Clock;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
  policy?: Partial<DeliveryPolicy>;
  /** Where deferred attempts and dead letters are kept; without it, the last inline failure is final (and only logged). */
  store?: WebhookStore;
  allowLoopbackHttp?: boolean;
  log?: { warn(obj: object, msg: string): void; info?(obj: object, msg: string): void };
  /** How a URL's name is resolved at send time (the system's resolver by default). */
  resolve?: AddressResolver;
}

/**
 * What became of a deferred request in a sweep, for its sender: delivered (with the answer: a webhook
 * component routes its stanzas), given up (a dead letter was written), or dropped (its owner has no
 * webhook any more). Called after the request's item is settled; a throw fails the sweep step.
 */
export type Settled = (req: StoredRequest, outcome: { status: 'delivered'; response: WebhookResponse } | { status: 'dead' } | { status: 'dropped' }) => Promise<void>;

/** For a deferred attempt: the secret (and the URL, which the tenant may have changed) as they are now. */
export type Resolve = (tenant: string, source: string) => Promise<{ url: string; secret?: string } | undefined> | { url: string; secret?: string } | undefined;

export class WebhookDelivery {
  readonly policy: DeliveryPolicy;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly random: () => number;
  private readonly resolve: AddressResolver;

  constructor(private readonly deps: DeliveryDeps) {
    this.policy = { ...DEFAULT_POLICY, ...deps.policy };
    this.sleep = deps.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    this.random = deps.random ?? Math.random;
    this.resolve = deps.resolve ?? systemResolver;
  }

  /** One signed POST. Never throws: a failure is a result. */
  async attempt(req: { url: string; body: string; contentType: string; secret?: string; id: string; attempt: number }): Promise<AttemptResult> {
    const headers: Record<string, string> = {
      'content-type': req.contentType,
      [DELIVERY_HEADER]: req.id,
      [ATTEMPT_HEADER]: String(req.attempt),
      ...(req.secret ? signedHeaders(req.secret, req.body, this.deps.clock.now()) : {}),
    };
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), this.policy.timeoutMs);
    try {
      const url = new URL(req.url);
      // Resolved at each attempt, checked, and connected to as checked (docs/architecture.md "Webhooks").
      const address = await checkedAddress(url, this.deps.allowLoopbackHttp ?? false, this.resolve);
      if (typeof address === 'string') return { kind: 'refused', error: address };
      const response = await post(url, headers, req.body, address, ac.signal, this.policy.maxResponseBytes);
      return { kind: 'response', response };
    } catch (err) {
      if (ac.signal.aborted) return { kind: 'timeout' };
      const e = err as { code?: string; cause?: { code?: string; message?: string }; message?: string };
      return { kind: 'connection', error: e.code ?? e.cause?.code ?? e.cause?.message ?? e.message ?? String(err) };
    } finally {
      clearTimeout(timer);
    }
  }

  /** Sends `req`: inline attempts, then a deferred one or a dead letter (see the file header). */
  async deliver(req: WebhookRequest): Promise<DeliveryOutcome> {
    const id = randomUUID();
    const start = this.deps.clock.now();
    const problem = urlProblem(req.url, this.deps.allowLoopbackHttp ?? false);
    if (problem) return this.giveUp({ ...req, id, attempts: 0, firstAttemptAt: start, lastError: `refused URL: ${problem}` });
    let attempts = 0;
    let last: AttemptResult;
    for (;;) {
      last = await this.attempt({ ...req, id, attempt: ++attempts });
      if (succeeded(last)) return { status: 'delivered', id, attempts, response: last.response };
      if (!retryable(last) || attempts >= this.policy.maxAttempts) break;
      if (attempts >= this.policy.maxInlineAttempts) return this.defer({ ...req, id, attempts, firstAttemptAt: start, lastError: describe(last) }, last);
      const delay = backoff(this.policy.inlineBaseDelayMs, attempts - 1, this.policy.inlineBudgetMs, this.random);
      if (this.deps.clock.now() - start + delay + this.policy.timeoutMs > this.policy.inlineBudgetMs) {
        return this.defer({ ...req, id, attempts, firstAttemptAt: start, lastError: describe(last) }, last);
      }
      await this.sleep(delay);
    }
    return this.giveUp({ ...req, id, attempts, firstAttemptAt: start, lastError: describe(last) }, last);
  }

  /**
   * The sweeper's step for one channel (the source up to its colon: `events`, `component`): each due
   * request of that channel and this region gets its next attempt, with the secret and URL `resolve`
   * gives now; a request whose owner is gone (`resolve` returns nothing) is dropped with a log line.
   */
  async retryDue(channel: string, resolve: Resolve, now = this.deps.clock.now(), settled?: Settled): Promise<{ delivered: number; rescheduled: number; dead: number; dropped: number }> {
    const counts = { delivered: 0, rescheduled: 0, dead: 0, dropped: 0 };
    const store = this.deps.store;
    if (!store) return counts;
    for (const p of await store.due(channel, now)) {
      if (!(await store.claim(p, now + this.policy.timeoutMs * 4))) continue;
      const target = await resolve(p.tenant, p.source);
      if (!target) {
        this.deps.log?.warn({ tenant: p.tenant, source: p.source, delivery: p.id }, 'webhook retry dropped: its sender no longer has a webhook');
        await store.unschedule(p.tenant, p.id);
        counts.dropped++;
        await settled?.(p, { status: 'dropped' });
        continue;
      }
      const req: StoredRequest = { ...p, url: target.url };
      const problem = urlProblem(req.url, this.deps.allowLoopbackHttp ?? false);
      const last: AttemptResult = problem ? { kind: 'connection', error: `refused URL: ${problem}` } : await this.attempt({ ...req, secret: target.secret, attempt: p.attempts + 1 });
      const next: StoredRequest = { ...req, attempts: p.attempts + 1, lastError: describe(last) };
      if (succeeded(last)) {
        await store.unschedule(p.tenant, p.id);
        counts.delivered++;
        await settled?.(next, { status: 'delivered', response: last.response });
      } else if (!problem && retryable(last) && next.attempts < this.policy.maxAttempts) {
        await this.defer(next, last); // the same key: the PutItem replaces the claimed item
        counts.rescheduled++;
      } else {
        await this.giveUp(next, last);
        await store.unschedule(p.tenant, p.id);
        counts.dead++;
        await settled?.(next, { status: 'dead' });
      }
    }
    return counts;
  }

  private async defer(req: StoredRequest, last: AttemptResult): Promise<DeliveryOutcome> {
    const response = last.kind === 'response' ? last.response : undefined;
    if (!this.deps.store) return this.giveUp(req, last);
    const n = req.attempts - Math.min(req.attempts, this.policy.maxInlineAttempts);
    const dueAt = this.deps.clock.now() + backoff(this.policy.deferredBaseDelayMs, n, this.policy.deferredMaxDelayMs, this.random);
    await this.deps.store.schedule(req, dueAt);
    this.deps.log?.warn({ tenant: req.tenant, source: req.source, delivery: req.id, attempts: req.attempts, error: req.lastError, dueAt }, 'webhook failed; retrying later');
    return { status: 'scheduled', id: req.id, attempts: req.attempts, dueAt, lastError: req.lastError, ...(response ? { response } : {}) };
  }

  private async giveUp(req: StoredRequest, last?: AttemptResult): Promise<DeliveryOutcome> {
    const response = last?.kind === 'response' ? last.response : undefined;
    this.deps.log?.warn({ tenant: req.tenant, source: req.source, delivery: req.id, attempts: req.attempts, error: req.lastError }, 'webhook given up: dead letter');
    await this.deps.store?.deadLetter(req, this.deps.clock.now());
    return { status: 'dead', id: req.id, attempts: req.attempts, lastError: req.lastError, ...(response ? { response } : {}) };
  }
}

/**
 * One POST to `url` over a connection to `address` (TLS still checks the certificate against the URL's
 * name). Redirects are not followed. The body is read up to `maxBytes`; the rest is cut off.
 */
function post(url: URL, headers: Record<string, string>, body: string, address: ResolvedAddress, signal: AbortSignal, maxBytes: number): Promise<WebhookResponse> {
  const client = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(new Error('aborted'));
    signal.addEventListener('abort', onAbort, { once: true });
    const done = (f: () => void) => {
      signal.removeEventListener('abort', onAbort);
      f();
    };
    const request = client.request(url, { method: 'POST', headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) }, lookup: connectTo(address) as never, signal }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      const answer = () => {
        const type = res.headers['content-type'];
        done(() => resolve({ status: res.statusCode ?? 0, ...(type ? { contentType: type } : {}), body: Buffer.concat(chunks).subarray(0, maxBytes).toString('utf8') }));
      };
      res.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        size += chunk.length;
        if (size >= maxBytes) {
          res.destroy();
          answer();
        }
      });
      res.on('end', answer);
      res.on('error', (err) => done(() => reject(err)));
      res.on('close', () => {
        if (!res.complete && size < maxBytes) done(() => reject(Object.assign(new Error('connection closed before the answer was complete'), { code: 'ECONNRESET' })));
      });
    });
    request.on('error', (err) => done(() => reject(err)));
    request.end(body);
  });
}
