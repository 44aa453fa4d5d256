// The core: one object per deployment (or per local gateway) that owns the core stores (connections,
// sessions, accounts, tenants, the server secret), the management API, the module registry, and the
// life cycle of connections and sessions. Transports call connect / frame / disconnect; modules hook
// events through their ModuleContext (lib/core/modules.ts). docs/architecture.md "Inside lib/".
import { type Clock, systemClock } from '../store/clock.ts';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { Logger } from 'pino';
import { StreamError } from '../xmpp/errors.ts';
import { type JID, makeJID, tryParseJID } from '../xmpp/jid.ts';
import { NS } from '../xmpp/namespaces.ts';
import { type Element, parseFrame, xml } from '../xmpp/xml.ts';
import { ConnectionStore, type ConnectionRecord, TOMBSTONE_MS } from '../store/connections.ts';
import { ServerSecretStore } from '../store/server-secret.ts';
import { SessionStore } from '../store/sessions.ts';
import { TenantStore, type TenantRecord } from '../store/tenants.ts';
import { UserStore } from '../store/users.ts';
import type { Session, SessionEndedEvent } from './events.ts';
import type { ConnectionTarget, ManagementApi } from './management-api.ts';
import { type Component, Registry, type XmppModule, installModules, settingBlocksOf } from './modules.ts';
import { TokenBuckets } from './rate-limit.ts';
import { Metrics, NO_TENANT, type FrameScope } from '../metrics/metrics.ts';
import { UsageStore } from '../store/usage.ts';
import { handleFrame } from './stream.ts';

export interface Limits {
  /** Largest stanza accepted, in bytes of UTF-8 (RFC 6120 §13.12: policy-violation above it). */
  maxStanzaBytes: number;
  /** Failed SASL attempts allowed on one stream (RFC 6120 §6.4.5 asks for 2 to 5). */
  maxAuthFailures: number;
  /** How often the sweeper asks the gateway whether a connection still lives (API Gateway idles at 10 min). */
  connectionCheckMs: number;
  /**
   * The least time a client gets to answer the server's XEP-0199 ping before a check ends its
   * connection (docs/architecture.md "Connections die silently"); with the default check interval
   * the answer has until the next check.
   */
  pingAnswerMs: number;
  /** API Gateway's maximum connection duration (2 h); a session never outlives it. */
  maxConnectionMs: number;
  /** Concurrent management-API posts in one fan-out. */
  fanOutConcurrency: number;
  /**
   * New WebSocket connections accepted from one source address per `connectWindowMs` (0: no cap); one
   * conditional write per $connect while on (docs/architecture.md "Metrics and usage").
   */
  connectsPerAddress: number;
  connectWindowMs: number;
}

export const DEFAULT_LIMITS: Limits = {
  maxStanzaBytes: 65536,
  maxAuthFailures: 3,
  connectionCheckMs: 10 * 60_000,
  pingAnswerMs: 60_000,
  maxConnectionMs: 2 * 60 * 60_000,
  fanOutConcurrency: 16,
  connectsPerAddress: 0,
  connectWindowMs: 60_000,
};

export type { Component, XmppModule } from './modules.ts';
export type { IqEvent, Session, SessionEndedEvent, SessionEvent, StanzaEvent, TargetKind, UnavailableEvent } from './events.ts';

export interface ServerOptions {
  db: DynamoDBDocumentClient;
  table: string;
  management: ManagementApi;
  logger: Logger;
  limits?: Partial<Limits>;
  tenantCacheMs?: number;
  /** The features, in install order (each after those it depends on). */
  modules: readonly XmppModule[];
  version: string;
  /** The region this process serves: its sweeper checks only this region's connections. */
  region?: string;
  /** Time source (default the system clock); tests inject one to move time without sleeping. */
  clock?: Clock;
  /** The per-tenant counters (default a new registry); give the same one to createDynamoClient to count its calls. */
  metrics?: Metrics;
  /**
   * Traces each frame (and $disconnect) as a span of its own, annotated with the frame's tenant and
   * kind when it ends (docs/architecture.md "Tracing"); none by default.
   */
  tracer?: FrameTracer;
}

/** What the core needs of a tracer: a span around some work, annotated from its scope when it ends. */
export interface FrameTracer {
  trace<T>(name: string, scope: FrameScope, fn: () => Promise<T>): Promise<T>;
}

export class XmppServer {
  readonly limits: Limits;
  readonly log: Logger;
  readonly management: ManagementApi;
  readonly connections: ConnectionStore;
  readonly sessions: SessionStore;
  readonly users: UserStore;
  readonly tenants: TenantStore;
  /** Keys the fake SCRAM salts for unknown accounts; one per deployment, kept in the table. */
  readonly serverSecret: ServerSecretStore;
  readonly version: string;
  readonly clock: Clock;
  /** The table and its client (modules reach them through ctx.openStore()). */
  readonly db: DynamoDBDocumentClient;
  readonly table: string;
  /** Per-tenant counters and usage, in memory (docs/architecture.md "Metrics and usage"). */
  readonly metrics: Metrics;
  /** Usage records, the tenant's live-session count and the per-address connect counters. */
  readonly usage: UsageStore;
  private readonly tracer?: FrameTracer;

  /**
   * What the modules added: hooks, filters, features, mechanisms, components, routes. Core-internal:
   * modules add to it only through their ModuleContext (lib/core/modules.ts).
   */
  readonly registry = new Registry();

  /** Bound sessions by connection id. Binding never changes afterwards, so this cache is safe. */
  private readonly bound = new Map<string, Session>();
  readonly rates = new TokenBuckets();
  /** Per-session message buckets of quotas.messagesPerMinute (in memory, soft, like `rates`). */
  readonly messageQuota = new TokenBuckets();
  private readonly sinks = new Map<string, (frame: string) => void>();
  /** Connections this process ended lately, so their trailing $disconnect costs nothing. */
  private readonly recentlyEnded = new Set<string>();
  /** Connections whose socket this process knows is gone (a fact that never changes): nothing is posted to them. */
  private readonly socketsGone = new Set<string>();
  /** Domain of each stream this process opened (for the local tenant watcher). */
  private readonly streamDomains = new Map<string, string>();

  constructor(opts: ServerOptions) {
    this.limits = { ...DEFAULT_LIMITS, ...opts.limits };
    this.log = opts.logger;
    this.management = opts.management;
    this.db = opts.db;
    this.table = opts.table;
    this.clock = opts.clock ?? systemClock;
    this.metrics = opts.metrics ?? new Metrics(this.clock);
    this.tracer = opts.tracer;
    this.usage = new UsageStore(opts.db, opts.table);
    this.connections = new ConnectionStore(opts.db, opts.table, opts.region ?? process.env.AWS_REGION ?? 'local');
    this.sessions = new SessionStore(opts.db, opts.table);
    this.users = new UserStore(opts.db, opts.table);
    this.tenants = new TenantStore(opts.db, opts.table, { cacheMs: opts.tenantCacheMs, blocks: settingBlocksOf(opts.modules), log: opts.logger, clock: this.clock });
    this.serverSecret = new ServerSecretStore(opts.db, opts.table);
    this.version = opts.version;
    installModules(this, this.registry, opts.modules);
    // A session counted in its tenant's quotas.connections gives its place back when it ends, for
    // whatever reason (lowest priority: after every module has seen it).
    this.registry.events.on(
      'session-ended',
      async (e) => {
        const { entry, session } = e as SessionEndedEvent;
        if (entry.quota) await this.usage.releaseSession(session.jid.domain);
      },
      -1000,
    );
  }

  // ---- transport entry points -------------------------------------------------------------------

  /**
   * $connect. RFC 7395 §3.3: the client offers the "xmpp" subprotocol; we accept only that. Returns
   * the subprotocol to echo, undefined to refuse the connection, or 'too-many' when its address
   * opened `connectsPerAddress` connections in this window already.
   */
  async connect(c: { connectionId: string; endpoint: string; connectedAt: number; sourceIp?: string; protocols: string[] }): Promise<string | 'too-many' | undefined> {
    // A module's own subprotocol (XEP-0114 components: docs/architecture.md "Components") only when
    // the client does not offer "xmpp".
    const protocol = c.protocols.includes('xmpp') ? 'xmpp' : c.protocols.find((p) => this.registry.streamProtocols.has(p));
    if (!protocol) {
      this.log.info({ connectionId: c.connectionId, protocols: c.protocols }, 'refused: no xmpp subprotocol');
      return undefined;
    }
    const now = Date.now();
    const cap = this.limits.connectsPerAddress;
    if (cap > 0 && c.sourceIp && !(await this.usage.admitConnect(c.sourceIp, cap, this.limits.connectWindowMs, this.clock.now()))) {
      this.metrics.count('ConnectRefusals', 1, NO_TENANT);
      this.log.info({ connectionId: c.connectionId, sourceIp: c.sourceIp, max: cap, windowMs: this.limits.connectWindowMs }, 'refused: too many new connections from this address');
      return 'too-many';
    }
    await this.connections.create({
      id: c.connectionId,
      endpoint: c.endpoint,
      connectedAt: c.connectedAt,
      expiresAt: c.connectedAt + this.limits.maxConnectionMs + 60_000,
      checkAt: now + this.limits.connectionCheckMs,
      sourceIp: c.sourceIp,
      stage: 'connected',
      ...(protocol === 'xmpp' ? {} : { protocol }),
    });
    this.log.info({ connectionId: c.connectionId, sourceIp: c.sourceIp, ...(protocol === 'xmpp' ? {} : { protocol }) }, 'connected');
    return protocol;
  }

  /** $default: one WebSocket message, processed in order per connection by the transport. */
  async frame(connectionId: string, endpoint: string, body: string): Promise<void> {
    const started = performance.now();
    const scope: FrameScope = { tenant: this.bound.get(connectionId)?.jid.domain };
    try {
      await this.inScope('frame', scope, () => handleFrame(this, { connectionId, endpoint }, body));
    } catch (err) {
      scope.outcome = 'failed';
      this.metrics.count('Errors', 1, scope.tenant ?? NO_TENANT);
      throw err;
    } finally {
      // One line per frame outcome (docs/architecture.md "Metrics and usage"): never the frame itself,
      // which may hold a password, a token or a message body.
      this.log.info({ tenant: scope.tenant, connectionId, kind: scope.kind, ms: Math.round((performance.now() - started) * 10) / 10, outcome: scope.outcome ?? 'ok' }, 'frame handled');
    }
  }

  /** $disconnect (best effort: it may never come; the sweeper and 410s cover that). */
  async disconnect(connectionId: string, reason = 'disconnect'): Promise<void> {
    // After a <close/> or a stream error this process already ended it: save the second delete.
    if (this.recentlyEnded.has(connectionId)) return;
    // Its own metrics scope: what ending the session costs is counted to the connection's tenant.
    await this.inScope('disconnect', { kind: '$disconnect' }, () => this.endConnection(connectionId, reason, { socketClosed: true }));
  }

  /** Runs work as the current frame's (metrics scope) and, with a tracer, in a span of its own. */
  private inScope<T>(name: string, scope: FrameScope, fn: () => Promise<T>): Promise<T> {
    const run = () => this.metrics.run(scope, fn);
    return this.tracer ? this.tracer.trace(name, scope, run) : run();
  }

  // ---- sessions ---------------------------------------------------------------------------------

  cachedSession(connectionId: string): Session | undefined {
    return this.bound.get(connectionId);
  }

  /**
   * The session a tombstone's trailing frames are processed as (docs/architecture.md "Connections die
   * silently"): the JID it had, posting nothing. Undefined if the connection never bound.
   */
  goneSession(rec: ConnectionRecord): Session | undefined {
    if (rec.stage !== 'gone' || !rec.username || !rec.domain || rec.resource === undefined) return undefined;
    this.markSocketGone(rec.id);
    return sessionOf(rec, rec.resource);
  }

  /** Is this connection's socket known to be gone? Then replies to it are dropped, not posted. */
  isSocketGone(connectionId: string): boolean {
    return this.socketsGone.has(connectionId);
  }

  private markSocketGone(connectionId: string): void {
    if (this.socketsGone.size > 10_000) this.socketsGone.delete(this.socketsGone.values().next().value as string);
    this.socketsGone.add(connectionId);
  }

  /** The bound session of a connection, from memory or (another container's) table record. */
  async boundSession(connectionId: string, rec?: ConnectionRecord): Promise<Session | undefined> {
    const hit = this.bound.get(connectionId);
    if (hit) return hit;
    rec ??= await this.connections.get(connectionId);
    if (!rec || rec.stage !== 'bound' || !rec.username || !rec.domain || rec.resource === undefined) return undefined;
    return this.cacheIfSettled(sessionOf(rec, rec.resource));
  }

  /**
   * Keeps a bound session in memory, unless a module's per-stream state may still change
   * (SessionCacheCheck: then every frame reads the connection item until it is settled).
   */
  async cacheIfSettled(session: Session): Promise<Session> {
    const now = this.clock.now();
    for (const check of this.registry.sessionCacheChecks) if (!(await check(session, now))) return session;
    return this.remember(session);
  }

  /**
   * Sets a module's per-stream state (Session.streamData) in the connection item, one write, and in
   * this process's cached session. Other processes load it with the session: a module whose state
   * may change after binding keeps sessions out of the caches until it is settled (SessionCacheCheck).
   */
  async setStreamData(session: Session, module: string, value: unknown): Promise<boolean> {
    const streamData = { ...session.streamData, [module]: value };
    if (value === undefined) delete streamData[module];
    if (!(await this.connections.update(session.connectionId, { streamData }))) return false;
    session.streamData = streamData;
    const cached = this.bound.get(session.connectionId);
    if (cached && cached !== session) cached.streamData = streamData;
    else if (!cached) await this.cacheIfSettled(session);
    return true;
  }

  /**
   * An in-process receiver for what the server sends to a pseudo-session (the admin API sending a
   * stanza as a user collects the replies this way). Returns the function that removes it.
   */
  openSink(connectionId: string, receive: (frame: string) => void): () => void {
    this.sinks.set(connectionId, receive);
    return () => this.sinks.delete(connectionId);
  }

  /** Records the domain a stream was opened for. */
  streamOpened(connectionId: string, domain: string): void {
    // In Lambda another container usually ends the connection, so entries are capped like `bound`.
    if (this.streamDomains.size > 50_000) this.streamDomains.delete(this.streamDomains.keys().next().value as string);
    this.streamDomains.set(connectionId, domain);
  }

  /** Tenants with streams opened by this process and not yet ended. */
  domainsInUse(): Iterable<string> {
    return this.streamDomains.values();
  }

  remember(session: Session): Session {
    if (this.bound.size > 50_000) this.bound.delete(this.bound.keys().next().value as string);
    this.bound.set(session.connectionId, session);
    return session;
  }

  /**
   * Ends a connection for any reason: client close, stream error, $disconnect, 410 Gone, sweeper,
   * replaced session. Idempotent: the conditional writes make exactly one caller do the work, so the
   * unavailable broadcast (RFC 6121 §4.5.2) goes out once. When the socket is gone, frames the client
   * sent before may still be queued, so the record becomes a tombstone rather than disappearing
   * (docs/architecture.md "Connections die silently").
   */
  async endConnection(
    connectionId: string,
    reason: string,
    opts: { socketClosed?: boolean; streamError?: StreamError; closeStream?: boolean; endpoint?: string } = {},
  ): Promise<'ended' | 'detached' | undefined> {
    this.bound.delete(connectionId);
    this.streamDomains.delete(connectionId);
    this.recentlyEnded.add(connectionId);
    if (this.recentlyEnded.size > 10_000) this.recentlyEnded.delete(this.recentlyEnded.values().next().value as string);
    this.rates.forget(connectionId);
    this.messageQuota.forget(connectionId);
    if (opts.socketClosed) this.markSocketGone(connectionId);
    const rec = await this.connections.remove(connectionId, opts.socketClosed ? { tombstoneUntil: this.clock.now() + TOMBSTONE_MS } : {});
    // Usage: the connection's minutes, from the item's start time, counted by the one caller that ended it.
    const scope = this.metrics.scope();
    if (scope && rec?.domain) scope.tenant ??= rec.domain;
    if (rec?.domain && rec.stage !== 'gone') this.metrics.use(rec.domain, 'connectionMinutes', Math.max(0, this.clock.now() - rec.connectedAt) / 60_000);
    // The session ends before the last frames go out, so nothing (a room message, a presence) is
    // routed to this connection after its <close/> (RFC 7395 §3.6: nothing follows the close).
    let outcome: 'ended' | 'detached' | undefined = rec ? 'ended' : undefined;
    if (rec && opts.socketClosed && (await this.detach(rec))) outcome = 'detached';
    else if (rec) await this.endSession(rec, reason);
    const endpoint = rec?.endpoint ?? opts.endpoint;
    if (!opts.socketClosed && endpoint && !this.isSocketGone(connectionId)) {
      const target = { connectionId, endpoint };
      if (opts.streamError) await this.send(target, opts.streamError.toElement());
      if (opts.streamError || opts.closeStream) await this.send(target, xml('close', { xmlns: NS.FRAMING }));
      await this.management.close(target);
    }
    return outcome;
  }

  /**
   * A bound session whose socket went without a </close>: a module may keep it (XEP-0198 §5: it
   * stays for resumption; docs/architecture.md "Stream management"). True if one did.
   */
  private async detach(rec: ConnectionRecord): Promise<boolean> {
    if (rec.stage !== 'bound' || !rec.username || !rec.domain || rec.resource === undefined) return false;
    const session = sessionOf(rec, rec.resource);
    const kept = (await this.registry.events.fire('session-detach', { server: this, session })) === true;
    if (kept) this.log.info({ connectionId: rec.id, jid: session.jid.toString() }, 'session detached');
    return kept;
  }

  /**
   * Ends a session that has no connection any more (a detached one whose resumption time ran out):
   * removes its entry if it still belongs to `connectionId` and fires session-ended.
   */
  async endDetachedSession(jid: JID, connectionId: string, reason: string): Promise<boolean> {
    const entry = await this.sessions.remove(jid.bare().toString(), jid.resource, connectionId);
    if (!entry) return false;
    this.log.info({ connectionId, jid: jid.toString(), reason }, 'detached session ended');
    const session: Session = { connectionId, endpoint: entry.endpoint, jid, expiresAt: entry.expiresAt };
    await this.registry.events.fireAll('session-ended', { server: this, session, entry, reason });
    return true;
  }

  private async endSession(rec: ConnectionRecord, reason: string): Promise<void> {
    this.log.info({ connectionId: rec.id, reason, jid: rec.username ? `${rec.username}@${rec.domain}/${rec.resource ?? ''}` : undefined }, 'connection ended');
    if (rec.stage !== 'bound' || !rec.username || !rec.domain || rec.resource === undefined) return;
    const jid = makeJID(rec.username, rec.domain, rec.resource);
    const entry = await this.sessions.remove(jid.bare().toString(), rec.resource, rec.id);
    if (!entry) return;
    const session: Session = { connectionId: rec.id, endpoint: rec.endpoint, jid, expiresAt: rec.expiresAt };
    await this.registry.events.fireAll('session-ended', { server: this, session, entry, reason });
  }


  /**
   * Runs the modules' flush steps (ctx.addFlushStep): what they deferred while frames were handled
   * (event push publishes here). Every Lambda invocation ends with it (docs/architecture.md "The end of
   * an invocation"); the local ingest runs it after each batch, and the $disconnect handler, the
   * sweep and the admin API before they return (they run locally too). A failing step is logged, never thrown: the
   * frames it followed are done.
   */
  async flush(): Promise<void> {
    for (const step of this.registry.flushSteps) {
      try {
        await step(this);
      } catch (err) {
        this.log.error({ err }, 'flush step failed');
      }
    }
  }

  /**
   * Checks connections whose check time has come: asks the gateway if each is alive, ends those that
   * are gone (their $disconnect was lost), and pushes the next check out for the others.
   */
  async sweep(now = this.clock.now()): Promise<{ checked: number; ended: number }> {
    const due = await this.connections.dueForCheck(now);
    let ended = 0;
    for (const rec of due) {
      const alive = rec.expiresAt > now && (await this.management.isAlive({ connectionId: rec.id, endpoint: rec.endpoint }));
      if (!alive) {
        await this.metrics.run({ kind: 'sweep' }, () => this.endConnection(rec.id, 'expired', { socketClosed: true }));
        ended++;
      } else if (rec.pingSentAt !== undefined && now - rec.pingSentAt >= this.limits.pingAnswerMs) {
        // XEP-0199 §4.2: no answer to our ping. The gateway still holds the socket, but the client is
        // not there (a half-open connection): RFC 6120 §4.9.3.4 connection-timeout.
        this.log.info({ connectionId: rec.id, pingSentAt: rec.pingSentAt }, 'no answer to the server ping');
        await this.endConnection(rec.id, 'ping unanswered', { streamError: new StreamError('connection-timeout', 'no answer to a ping'), endpoint: rec.endpoint });
        ended++;
      } else await this.checkLater(rec, now);
    }
    for (const step of this.registry.sweepSteps) await step(this, now);
    await this.flush();
    return { checked: due.length, ended };
  }

  /**
   * Schedules the next check of a live connection. A bound one also gets a ping (XEP-0199 §4.2,
   * server-to-client), recorded in the same write, unless its last one may still be answered.
   */
  private async checkLater(rec: ConnectionRecord, now: number): Promise<void> {
    const checkAt = now + this.limits.connectionCheckMs;
    const session = rec.stage === 'bound' && rec.pingSentAt === undefined ? await this.boundSession(rec.id, rec) : undefined;
    if (!session) {
      await this.connections.update(rec.id, { checkAt });
      return;
    }
    if (!(await this.connections.update(rec.id, { checkAt, pingSentAt: now }))) return;
    const ping = xml('iq', { xmlns: NS.CLIENT, type: 'get', id: serverPingId(now), from: session.jid.domain, to: session.jid.toString() }, xml('ping', { xmlns: NS.PING }));
    await this.send(session, ping);
    await this.registry.events.fireAll('connection-check', { server: this, session });
  }

  /**
   * An IQ result or error from a client to the server: if it answers one of our pings (any answer,
   * even an error, proves the client is there: XEP-0199 §4.2), clears pingSentAt with one write. Only
   * one ping is out at a time, and a client that answers an older one is there all the same.
   */
  async answeredPing(session: Session, id: string | undefined): Promise<boolean> {
    if (!id?.startsWith(SERVER_PING_PREFIX)) return false;
    return this.connections.update(session.connectionId, { pingSentAt: undefined });
  }

  /**
   * Writes the usage counted in memory since the last flush: one UpdateItem ADD per tenant and day
   * (docs/architecture.md "Metrics and usage"). What fails to be written is kept for the next flush.
   * `store` lets the local server write through a client of its own, outside the measured costs.
   */
  async flushUsage(store: UsageStore = this.usage): Promise<number> {
    const entries = this.metrics.takeUsage();
    let written = 0;
    for (const [i, e] of entries.entries()) {
      try {
        const counts = Object.fromEntries(Object.entries(e.counts).map(([k, v]) => [k, k === 'connectionMinutes' ? Math.round(v * 1000) / 1000 : v]));
        this.metrics.wrote(e.tenant, e.day, await store.add(e.tenant, e.day, counts));
        written++;
      } catch (err) {
        this.log.error({ err, tenant: e.tenant, day: e.day }, 'usage not written; kept for the next flush');
        this.metrics.giveBack(entries.slice(i));
        break;
      }
    }
    return written;
  }

  /** system-shutdown (RFC 6120 §4.9.3.20) to every given connection, e.g. on Ctrl-C. */
  async shutdown(connectionIds: string[]): Promise<void> {
    await Promise.all(
      connectionIds.map((id) => this.endConnection(id, 'shutdown', { streamError: new StreamError('system-shutdown') })),
    );
  }

  // ---- output -----------------------------------------------------------------------------------

  /**
   * Sends one frame. Returns false if the connection is gone; that connection's session is ended
   * here (docs/architecture.md "Connections die silently"), so callers only decide what happens to the stanza.
   */
  async send(target: ConnectionTarget, data: Element | string, opts: { unfiltered?: boolean } = {}): Promise<boolean> {
    const gone = this.isSocketGone(target.connectionId);
    let text: string;
    // Filters run even for a gone socket: stream management keeps stanzas for a detached session.
    if (this.registry.outboundFilters.length && !opts.unfiltered && isStanza(data)) {
      // Modules see every stanza on its way out (stream management counts, carbons copy, …).
      let stanza: Element | null = typeof data === 'string' ? parseFrame(data) : data;
      for (const { filter } of this.registry.outboundFilters) {
        stanza = await filter(stanza, target);
        if (!stanza) return true;
      }
      text = stanza.toString();
    } else text = typeof data === 'string' ? data : data.toString();
    // A tombstone's trailing frames are still processed; what they answer has no one to go to.
    if (gone) {
      this.log.debug({ connectionId: target.connectionId }, 'not sent: the socket is gone');
      return this.keptWhenGone(target, text);
    }
    if (isStanza(text)) this.metrics.count('StanzasOut');
    const sink = this.sinks.get(target.connectionId);
    if (sink) {
      sink(text);
      return true;
    }
    this.metrics.count('Posts');
    if (await this.management.post(target, text)) return true;
    this.log.info({ connectionId: target.connectionId }, 'gone on post');
    // A session kept for resumption already holds the stanza (its filter queued it): not lost.
    if ((await this.endConnection(target.connectionId, 'gone', { socketClosed: true })) === 'detached' && isStanza(text)) return true;
    return this.keptWhenGone(target, text);
  }

  /** Whether a module keeps a stanza whose connection is gone (the outbound/gone event). */
  private async keptWhenGone(target: ConnectionTarget, text: string): Promise<boolean> {
    if (!isStanza(text) || !this.registry.events.has('outbound/gone')) return false;
    const stanza = parseFrame(text);
    const to = typeof stanza.attrs.to === 'string' ? tryParseJID(stanza.attrs.to) ?? undefined : undefined;
    return (await this.registry.events.fire('outbound/gone', { server: this, target, stanza, to })) === true;
  }

  /** Sends to many connections at once with bounded concurrency; returns those that were gone. */
  async sendMany<T extends ConnectionTarget>(targets: T[], data: Element | string | ((t: T) => Element | string)): Promise<T[]> {
    const gone: T[] = [];
    let next = 0;
    const worker = async () => {
      while (next < targets.length) {
        const t = targets[next++];
        const payload = typeof data === 'function' ? data(t) : data;
        if (!(await this.send(t, payload))) gone.push(t);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.limits.fanOutConcurrency, targets.length) }, worker));
    return gone;
  }

  /** Is this domain a tenant that is switched on (cached a few seconds)? */
  async hosts(domain: string): Promise<boolean> {
    const tenant = await this.tenants.get(domain);
    return !!tenant?.enabled;
  }

  /**
   * May users of tenant `a` exchange stanzas with tenant `b`? Only if both are enabled and each lists
   * the other in `federation` (off by default: tenants never see each other).
   */
  async mayExchange(a: string, b: string): Promise<boolean> {
    if (a === b) return true;
    const [ta, tb] = [await this.tenants.get(a), await this.tenants.get(b)];
    return !!(ta?.enabled && tb?.enabled && ta.federation?.includes(b) && tb.federation?.includes(a));
  }

  /** The addresses the components serve for a tenant item (conference.<domain>), each with its component's name. */
  componentDomainsOf(tenant: TenantRecord): { domain: string; component: string }[] {
    return this.registry.components.flatMap((c) => c.domainsOf(tenant).map((domain) => ({ domain, component: c.name })));
  }

  /** The component serving `domain`, and its tenant. */
  async componentFor(domain: string): Promise<{ component: Component; tenant: string } | undefined> {
    for (const component of this.registry.components) {
      const tenant = await component.tenantOf(this, domain);
      if (tenant) return { component, tenant };
    }
    return undefined;
  }

  /** The stanza size limit for a tenant: its own, else the server's. */
  async maxStanzaBytes(domain: string | undefined): Promise<number> {
    const own = domain ? (await this.tenants.get(domain))?.limits?.maxStanzaBytes : undefined;
    return own ?? this.limits.maxStanzaBytes;
  }
}

/** The session of a bound connection item (or a tombstone) with the given resource. */
function sessionOf(rec: ConnectionRecord, resource: string): Session {
  const session: Session = { connectionId: rec.id, endpoint: rec.endpoint, jid: makeJID(rec.username!, rec.domain!, resource), expiresAt: rec.expiresAt, boundAt: rec.boundAt };
  if (rec.streamData) session.streamData = rec.streamData;
  return session;
}

/** The server's own pings are known by their id's prefix, so an answer needs no read to be matched. */
const SERVER_PING_PREFIX = 'xe-ping-';
const serverPingId = (sentAt: number) => `${SERVER_PING_PREFIX}${sentAt}`;

const STANZA_NAMES = new Set(['message', 'presence', 'iq']);

/** A stanza (RFC 6120 §8), as opposed to stream-level elements (open, features, SASL, errors). */
function isStanza(data: Element | string): boolean {
  if (typeof data !== 'string') return STANZA_NAMES.has(data.name);
  return /^<(message|presence|iq)[\s/>]/.test(data);
}
