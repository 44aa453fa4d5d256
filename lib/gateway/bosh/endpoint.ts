// The BOSH connection manager (XEP-0124, XEP-0206): one HTTP request in, one response out, over the same
// core as WebSocket (docs/architecture.md "BOSH"). A BOSH session is a connection of the core whose
// endpoint is `bosh:<region>`: the core posts to it through ManagementApi, which hands such posts to
// the BoshTransport below (they are queued in the session's item), and its inbound frames go through
// the ingest (claims, order) like a WebSocket connection's, in rid order. The local gateway (at
// /http-bind) and the BOSH Lambda behind the region's HTTP API (functions/bosh.ts) both run handle().
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { XmppServer } from '../../core/server.ts';
import type { ConnectionTarget, ConnectionTransport } from '../../core/management-api.ts';
import { type BoshItem, type BoshSessionStore, sentAttr } from '../../store/bosh-sessions.ts';
import type { Element } from '../../xmpp/xml.ts';
import { frameEnvelopeBody } from '../frame-envelope.ts';
import type { SqsBatchResponse, SqsEvent, SqsRecord } from '../ingest.ts';
import {
  BoshError,
  type BoshLimits,
  DEFAULT_BOSH_LIMITS,
  DEFAULT_CONTENT,
  NS_XBOSH,
  connectionIdOfSid,
  framesOf,
  grantSession,
  newSid,
  nextKey,
  openFrame,
  parseRequestBody,
  placeOfRid,
  readOutgoing,
  repeatKeyValid,
  responseBody,
  type TerminalCondition,
  ridOf,
  terminateBody,
  intAttr,
  aheadKeyValid,
  isEmptyRequest,
  tooFrequent,
  tooManyRequests,
  reportOf,
} from './protocol.ts';
import { tryParseJID } from '../../xmpp/jid.ts';
import { NS } from '../../xmpp/namespaces.ts';

export const BOSH_PATH = '/http-bind';
export const BOSH_SCHEME = 'bosh:';

export interface BoshRequest {
  method: string;
  /** Lower-case names. */
  headers: Record<string, string | undefined>;
  body: string;
  sourceIp?: string;
}

export interface BoshResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export interface BoshOptions {
  server: XmppServer;
  store: BoshSessionStore;
  /** The ingest handler (createIngestHandler) whose endpointOf names this transport's endpoint. */
  ingest: (event: SqsEvent) => Promise<SqsBatchResponse>;
  limits?: Partial<BoshLimits>;
  /**
   * How often a waiting request reads its session's item, ms. Undefined: never, only this process's
   * own writes wake it (the local server, where every post is made in the same process). In Lambda
   * posts come from other containers, so the request polls (docs/architecture.md "BOSH").
   */
  pollMs?: number;
}

/** The core's endpoint for the BOSH sessions of a region. */
export const boshEndpointOf = (region: string) => `${BOSH_SCHEME}${region}`;

/** The tenant item's `bosh` block (lib/gateway/bosh/module.ts). */
interface BoshTenantSettings {
  allowOrigins?: string[];
}

export class BoshEndpoint {
  readonly limits: BoshLimits;
  readonly endpoint: string;
  private stopping = false;

  constructor(private readonly opts: BoshOptions) {
    this.limits = { ...DEFAULT_BOSH_LIMITS, ...opts.limits };
    this.endpoint = boshEndpointOf(opts.server.connections.region);
  }

  private get server() {
    return this.opts.server;
  }
  private get store() {
    return this.opts.store;
  }

  /** Answers every waiting request at once (the server is stopping). */
  stop(): void {
    this.stopping = true;
    this.store.waiters.notifyAll();
  }

  async handle(req: BoshRequest): Promise<BoshResponse> {
    const origin = req.headers.origin;
    if (req.method === 'OPTIONS') return this.preflight(origin);
    if (req.method !== 'POST') {
      return { status: 405, headers: { allow: 'POST, OPTIONS', 'content-type': 'text/plain; charset=utf-8', ...(origin ? { 'access-control-allow-origin': '*' } : {}) }, body: 'XEP-0124: POST a <body/> here\n' };
    }
    let domain: string | undefined;
    let content = DEFAULT_CONTENT;
    try {
      if (Buffer.byteLength(req.body, 'utf8') > this.limits.maxBodyBytes) throw new BoshError('policy-violation', `request larger than ${this.limits.maxBodyBytes} bytes`, 413);
      const body = parseRequestBody(req.body);
      const rid = ridOf(body);
      const sid = body.attrs.sid as string | undefined;
      const answer = sid === undefined ? await this.create(body, rid, req) : await this.continue(body, sid, rid);
      domain = answer.domain;
      content = answer.content ?? content;
      return await this.reply(200, answer.body, content, origin, domain);
    } catch (err) {
      if (err instanceof BoshRetry) {
        this.server.log.warn({ reason: err.message }, 'BOSH request to be repeated');
        return { status: 503, headers: { 'content-type': 'text/plain; charset=utf-8', 'retry-after': '1', ...(origin ? { 'access-control-allow-origin': '*' } : {}) }, body: 'try the same request again\n' };
      }
      if (!(err instanceof BoshError)) throw err;
      this.server.log.info({ condition: err.condition, reason: err.message }, 'BOSH request refused');
      return this.reply(err.status, terminateBody(err.condition), content, origin, domain);
    }
  }

  // ---- session creation (§7) ------------------------------------------------------------------

  private async create(body: Element, rid: number, req: BoshRequest): Promise<Answer> {
    const raw = typeof body.attrs.to === 'string' ? body.attrs.to.trim() : '';
    // §7.1: the stream's `to` is required (improper-addressing without it).
    if (!raw) throw new BoshError('improper-addressing', 'the session request needs to');
    // The tenant as the core names it (RFC 7622 normal form), for CORS and the restarts' `to`.
    const to = tryParseJID(raw)?.domain ?? raw;
    const grant = grantSession(body, this.limits);
    const now = this.server.clock.now();
    const sid = newSid();
    const connectionId = connectionIdOfSid(sid);
    const lang = typeof body.attrs['xml:lang'] === 'string' ? body.attrs['xml:lang'] : undefined;
    const expiresAt = now + this.server.limits.maxConnectionMs + 60_000;
    await this.store.create({
      connectionId,
      domain: to,
      region: this.server.connections.region,
      ...grant,
      lang,
      lastRid: rid,
      // §15.1: the client starts key sequencing with newkey in its session request.
      ...(typeof body.attrs.newkey === 'string' ? { key: body.attrs.newkey } : {}),
      expiresAt,
      checkAt: now + (grant.wait + grant.inactivity) * 1000,
    });
    await this.server.connect({ connectionId, endpoint: this.endpoint, connectedAt: now, sourceIp: req.sourceIp, protocols: ['xmpp'] });
    this.server.log.info({ connectionId, domain: to, wait: grant.wait, hold: grant.hold }, 'BOSH session created');
    // XEP-0206 §4: the stream opens with the session; its features come back in the response.
    const produced = await this.process(connectionId, rid, [openFrame(to, lang)]);
    const out = readOutgoing(produced);
    const attrs = {
      sid,
      wait: grant.wait,
      requests: grant.requests,
      hold: grant.hold,
      inactivity: grant.inactivity,
      polling: grant.polling,
      maxpause: grant.maxpause,
      ver: grant.ver,
      from: out.from ?? to,
      authid: out.streamId,
      ...(grant.ack ? { ack: rid } : {}),
      'xmpp:version': '1.0',
      'xmpp:restartlogic': 'true',
      'xmlns:xmpp': NS_XBOSH,
      'xmlns:stream': NS.STREAMS,
    };
    if (out.terminate) return { body: terminateBody(out.terminate.condition, out.payload), domain: to, content: grant.content };
    return { body: responseBody(attrs, out.payload), domain: to, content: grant.content };
  }

  // ---- a request of a session (§8-§15) --------------------------------------------------------

  private async continue(body: Element, sid: string, rid: number): Promise<Answer> {
    const connectionId = connectionIdOfSid(sid);
    const arrivedAt = this.server.clock.now();
    let item = await this.store.get(connectionId, arrivedAt);
    // §14.4 (and §17.2): an unknown or expired sid.
    if (!item) throw new BoshError('item-not-found', 'no such session');
    const session = { domain: item.domain, content: item.content };
    if (item.ended) return { ...session, body: await this.endedBody(connectionId, item, rid) };
    const place = placeOfRid(rid, item.lastRid, item.requests);
    if (place === 'repeat') {
      // §15: a repeat carries the key its first copy carried.
      if (!repeatKeyValid(item.key, body, item.lastRid - rid)) throw new BoshError('item-not-found', 'invalid key');
      // §14.3: the same response as the first time (an empty one is not kept: it is the default).
      return { ...session, body: this.okBody(item, rid, item.rsp?.[String(rid)] ?? []) };
    }
    if (place === 'outside') {
      // §14.2: a rid outside the window ends the session; with keys in use, only if the key is right
      // (a forged request must not end someone's session).
      nextKey(item.key, body);
      await this.end(connectionId, `rid ${rid} outside the window after ${item.lastRid}`, 'item-not-found');
      throw new BoshError('item-not-found', `rid ${rid} is outside the window`);
    }
    if (place === 'ahead') {
      // §11: the client keeps more requests open than `requests` (none of those before this one has
      // had its response). With keys in use, only a request whose key chains to the session's ends it.
      if (tooManyRequests(item, body, rid, arrivedAt) && aheadKeyValid(item.key, body, rid - item.lastRid)) {
        await this.end(connectionId, `more than ${item.requests} requests open at rid ${rid}`, 'policy-violation');
        throw new BoshError('policy-violation', `at most ${item.requests} requests may be open at once`);
      }
      // §14.2: held until the requests before it have been processed, then processed in rid order.
      item = await this.waitFor(connectionId, item, (i) => i.ended === true || i.lastRid >= rid - 1);
      if (!item) throw new BoshError('item-not-found', 'no such session');
      if (item.ended) return { ...session, body: await this.endedBody(connectionId, item, rid) };
      if (item.lastRid !== rid - 1) {
        if (placeOfRid(rid, item.lastRid, item.requests) === 'repeat') return { ...session, body: this.okBody(item, rid, item.rsp?.[String(rid)] ?? []) };
        await this.end(connectionId, `rid ${rid - 1} never came`, 'item-not-found');
        throw new BoshError('item-not-found', `the requests before rid ${rid} never came`);
      }
    }
    // §15.3: checked against the key of the request just before, once that one has been processed.
    const key = nextKey(item.key, body);
    // §11 (an empty request while the ones before it are all still open) and §12 (a polling session's
    // empty requests): more often than `polling` seconds ends the session.
    if (tooFrequent(item, body, rid, arrivedAt)) {
      await this.end(connectionId, `empty requests more often than every ${item.polling} s`, 'policy-violation');
      throw new BoshError('policy-violation', `empty requests at most every ${item.polling} s`);
    }
    // §10: a pause longer than maxpause is refused.
    const pause = intAttr(body, 'pause');
    if (pause !== undefined && pause > item.maxpause) {
      await this.end(connectionId, `pause ${pause} over maxpause ${item.maxpause}`, 'policy-violation');
      throw new BoshError('policy-violation', `pause is at most ${item.maxpause}`);
    }

    const frames = framesOf(body, item.domain, item.lang);
    const produced = frames.length ? await this.process(connectionId, rid, frames) : [];
    const out = readOutgoing(produced);
    if (body.attrs.type === 'terminate' || out.terminate) {
      // The stream ended while this request was processed (the client's terminate, a stream error):
      // the session is over, nothing more to record.
      if (body.attrs.type === 'terminate') this.server.log.info({ connectionId }, 'BOSH session terminated by the client');
      return { ...session, body: terminateBody(out.terminate?.condition, out.payload) };
    }
    const now = this.server.clock.now();
    const accepted = await this.store.accept(connectionId, {
      prevRid: rid - 1,
      rid,
      // Inactivity counts from when this request is answered, at the latest after `wait` (§7.1).
      checkAt: now + (pause !== undefined ? pause : item.wait + item.inactivity) * 1000,
      key,
      pauseRid: pause !== undefined ? rid : undefined,
      forget: rid - item.requests > 0 ? rid - item.requests : undefined,
      arrivals: arrivalsAfter(item, rid, arrivedAt),
      empty: isEmptyRequest(body),
    });
    if (!accepted) {
      // Ended meanwhile, or the same rid processed by a concurrent copy of this request.
      const now2 = await this.store.get(connectionId, this.server.clock.now());
      if (!now2) throw new BoshError('item-not-found', 'no such session');
      if (now2.ended) return { ...session, body: await this.endedBody(connectionId, now2, rid) };
      return { ...session, body: this.okBody(now2, rid, now2.rsp?.[String(rid)] ?? []) };
    }
    // §9.2: the client has not had a response sent before this request came: it learns at once.
    const before = item;
    const report = item.ack ? reportOf(body, rid, (k) => (before as unknown as Record<string, number | undefined>)[sentAttr(k)], arrivedAt) : undefined;
    item = accepted;
    if (out.payload.length || item.q?.length) return { ...session, body: await this.respond(connectionId, item, rid, out.payload, report) };
    // §10: a pause is answered at once; with hold 0 nothing is held (polling).
    if (pause !== undefined || item.hold === 0 || report) return { ...session, body: this.okBody(item, rid, [], report) };
    return { ...session, body: await this.hold(connectionId, rid, item) };
  }

  /**
   * Holds the request until something is queued for the session, a later request makes this one
   * surplus (§7.1 `hold`), a pause releases it, or `wait` runs out (§8: an empty body then).
   */
  private async hold(connectionId: string, rid: number, item: BoshItem): Promise<string> {
    const latest = await this.waitFor(connectionId, item, (i) => i.ended === true || !!i.q?.length || i.lastRid - rid >= i.hold || (i.pauseRid ?? 0) > rid);
    if (!latest) return terminateBody(this.stopping ? 'system-shutdown' : undefined);
    if (latest.ended) return this.endedBody(connectionId, latest, rid);
    if (latest.q?.length) return this.respond(connectionId, latest, rid, []);
    return this.okBody(latest, rid, []);
  }

  /**
   * Waits until `done` holds for the session's item (re-read after each change this process makes,
   * and every pollMs), for at most the session's `wait`; returns the last item read (undefined if
   * gone, or if the server is stopping).
   */
  private async waitFor(connectionId: string, since: BoshItem, done: (item: BoshItem) => boolean): Promise<BoshItem | undefined> {
    const deadline = Date.now() + since.wait * 1000;
    let item: BoshItem | undefined = since;
    for (;;) {
      const left = deadline - Date.now();
      // When wait runs out the item as last read answers (§8: an empty body): no read for it.
      if (left <= 0) return item;
      if (this.stopping) return undefined;
      const woken = await this.store.waiters.next(connectionId, Math.min(left, this.opts.pollMs ?? left));
      if (!woken && !this.opts.pollMs) continue;
      item = await this.store.get(connectionId, this.server.clock.now());
      if (!item || done(item)) return item;
    }
  }

  /** Requests of a session waiting in this process (tests wait for a request to be held). */
  waiting(sid: string): number {
    return this.store.waiters.count(connectionIdOfSid(sid));
  }

  /** Takes the queue (after it what this request produced), keeps it for a repeat of `rid`, answers. */
  private async respond(connectionId: string, item: BoshItem, rid: number, inline: string[], report?: Report): Promise<string> {
    const frames = await this.store.drain(connectionId, rid, inline, this.server.clock.now());
    const out = readOutgoing(frames);
    if (out.terminate) return terminateBody(out.terminate.condition, out.payload);
    return this.okBody(item, rid, out.payload, report);
  }

  /**
   * The session is over: what is still queued (its stream error, its close) in a terminate body, with
   * the condition it ended with. Ended with neither (its XMPP stream is gone at the core, without a
   * close): remote-connection-failed (§17.2).
   */
  private async endedBody(connectionId: string, item: BoshItem, rid: number): Promise<string> {
    const frames = item.q?.length ? await this.store.drain(connectionId, rid, [], this.server.clock.now()) : [];
    const out = readOutgoing(frames);
    const condition = out.terminate?.condition ?? item.endCondition ?? (out.terminate ? undefined : 'remote-connection-failed');
    return terminateBody(condition as TerminalCondition | undefined, out.payload);
  }

  /** A body of a live session; with §9.1 `ack` when the client asked for acknowledgements. */
  private okBody(item: BoshItem, rid: number, payload: readonly string[], report?: Report): string {
    const ack = item.ack && item.lastRid !== rid ? item.lastRid : undefined;
    const streams = payload.some((f) => f.startsWith('<stream:')) ? { 'xmlns:stream': NS.STREAMS } : {};
    return responseBody({ ...(ack !== undefined ? { ack } : {}), ...(report ?? {}), ...streams }, payload);
  }

  /**
   * Hands the request's frames to the core through the ingest, as SQS records of the connection's
   * message group (claimed per rid and position, so a copy of the request processed concurrently
   * does not process them twice), and returns what the core posted to this session meanwhile in
   * this process (XmppServer.openSink): the response needs no write and no read for it.
   */
  private async process(connectionId: string, rid: number, frames: string[]): Promise<string[]> {
    const produced: string[] = [];
    const closeSink = this.server.openSink(connectionId, (frame) => produced.push(frame));
    try {
      const now = Date.now();
      const records: SqsRecord[] = frames.map((frame, i) => {
        const messageId = `${rid}.${i}`;
        return {
          messageId: `${connectionId}.${messageId}`,
          body: frameEnvelopeBody({ connectionId, messageId, requestId: randomUUID(), requestTimeEpoch: now, domainName: 'bosh', stage: this.server.connections.region }, frame),
          attributes: { MessageGroupId: connectionId, ApproximateReceiveCount: '1' },
        };
      });
      const res = await this.opts.ingest({ Records: records });
      if (res.batchItemFailures.length) {
        // A frame failed for a passing reason (the ingest hands back only those, docs/architecture.md
        // "Order") and its claim was released; its rid is not recorded. §14.3: the client sends the
        // same request again, whose frames already processed are then skipped (their claims stand).
        throw new BoshRetry(`frame ${res.batchItemFailures[0].itemIdentifier} failed`);
      }
      return produced;
    } finally {
      closeSink();
    }
  }

  /** Ends the session from the transport's side (as a socket gone); later requests get `condition`. */
  private async end(connectionId: string, reason: string, condition: TerminalCondition): Promise<void> {
    this.server.log.info({ connectionId, reason }, 'BOSH session ended');
    // The condition first: ending the connection wakes the requests held for the session, which
    // answer with it (queued stanzas go to offline storage then, not into a terminate body).
    await this.store.condemn(connectionId, condition);
    await this.server.endConnection(connectionId, reason, { socketClosed: true });
    await this.store.close(connectionId, this.server.connections.region, this.server.clock.now(), condition);
  }

  // ---- HTTP ------------------------------------------------------------------------------------

  /** CORS preflight: any origin may send; whether it may read the response is the tenant's (allowOrigin). */
  private preflight(origin: string | undefined): BoshResponse {
    return {
      status: 204,
      headers: {
        'access-control-allow-origin': origin ?? '*',
        'access-control-allow-methods': 'POST, OPTIONS',
        'access-control-allow-headers': 'content-type',
        'access-control-max-age': '86400',
        vary: 'Origin',
      },
      body: '',
    };
  }

  private async reply(status: number, body: string, content: string, origin: string | undefined, domain: string | undefined): Promise<BoshResponse> {
    const headers: Record<string, string> = { 'content-type': content, 'cache-control': 'no-store', vary: 'Origin' };
    const allowed = await this.allowOrigin(origin, domain);
    if (allowed) headers['access-control-allow-origin'] = allowed;
    return { status, headers, body };
  }

  /** The Access-Control-Allow-Origin of a response: the tenant's `bosh.allowOrigins` (default any). */
  private async allowOrigin(origin: string | undefined, domain: string | undefined): Promise<string | undefined> {
    if (!origin) return undefined;
    const tenant = domain ? await this.server.tenants.get(domain) : undefined;
    const allowed = (tenant as { bosh?: BoshTenantSettings } | undefined)?.bosh?.allowOrigins;
    if (!allowed || allowed.includes('*')) return '*';
    return allowed.includes(origin) ? origin : undefined;
  }
}

/** The arrivals of the rid window once `rid` is processed: the last `requests` rids (§11, §12). */
function arrivalsAfter(item: BoshItem, rid: number, arrivedAt: number): Record<string, number> {
  const kept: Record<string, number> = {};
  for (const [k, at] of Object.entries(item.arrivals ?? {})) if (Number(k) > rid - item.requests && Number(k) < rid) kept[k] = at;
  kept[String(rid)] = arrivedAt;
  return kept;
}

/** A request that failed for a passing reason: answered 503, to be sent again with the same rid. */
class BoshRetry extends Error {}

/** §9.2 `report` and `time`. */
type Report = { report: number; time: number };

interface Answer {
  body: string;
  domain?: string;
  content?: string;
}

/** What the core's ManagementApi calls for a `bosh:` endpoint: the session's queue in its item. */
export class BoshTransport implements ConnectionTransport {
  constructor(
    private readonly store: BoshSessionStore,
    private readonly now: () => number,
  ) {}

  post(target: ConnectionTarget, data: string): Promise<boolean> {
    return this.store.append(target.connectionId, regionOf(target), data, /^<(message|presence|iq)[\s/>]/.test(data));
  }

  close(target: ConnectionTarget): Promise<boolean> {
    return this.store.close(target.connectionId, regionOf(target), this.now());
  }

  /** Alive while inactivity has not ended it (the core's sweep asks, every connectionCheckMs). */
  async isAlive(target: ConnectionTarget): Promise<boolean> {
    const item = await this.store.get(target.connectionId, this.now());
    return !!item && !item.ended && item.checkAt > this.now();
  }
}

const regionOf = (target: ConnectionTarget) => target.endpoint.slice(BOSH_SCHEME.length);

/** The endpoint as a route of the local gateway's HTTP server (LocalGatewayOptions.httpRoutes). */
export function boshHttpRoute(bosh: BoshEndpoint) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<boolean> => {
    if (new URL(req.url ?? '/', 'http://localhost').pathname !== BOSH_PATH) return false;
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      // Past the limit the rest is read and dropped; handle() answers policy-violation.
      if (size <= bosh.limits.maxBodyBytes + 1) chunks.push(chunk);
    }
    const headers: Record<string, string | undefined> = {};
    for (const [k, v] of Object.entries(req.headers)) headers[k] = Array.isArray(v) ? v.join(', ') : v;
    const sourceIp = (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
    const out = await bosh.handle({ method: req.method ?? 'GET', headers, body: Buffer.concat(chunks).toString('utf8'), sourceIp });
    res.writeHead(out.status, { ...out.headers, 'content-length': Buffer.byteLength(out.body) });
    res.end(out.body);
    return true;
  };
}
