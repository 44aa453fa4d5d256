// `npm start` in one process: dynalite, the tables and default tenant, the XMPP core and the local
// API Gateway emulation in front of the same handlers the Lambda functions use (docs/architecture.md
// "Local runtime"): $connect and $disconnect as Lambda proxies, $default through the ingest with its
// frame claims, as deployed (README "Local gateway").
import { readFileSync } from 'node:fs';
import { pino, type Logger } from 'pino';
import { CallCounter } from '../store/call-counter.ts';
import type { Clock } from '../store/clock.ts';
import { ManagementApi } from '../core/management-api.ts';
import { type FrameTracer, type Limits, XmppServer } from '../core/server.ts';
import type { XmppModule } from '../core/modules.ts';
import { randomBytes } from 'node:crypto';
import { createAdminApi, nodeHttpRoutes } from '../admin/api.ts';
import { TenantPurger, purgePlanOf } from '../admin/purge.ts';
import { TenantWatcher } from '../core/tenant-lifecycle.ts';
import { defaultModules } from '../extensions/index.ts';
import { settingBlocksOf } from '../core/modules.ts';
import { BOSH_PATH, BOSH_SCHEME, BoshEndpoint, BoshTransport, boshEndpointOf, boshHttpRoute } from '../gateway/bosh/endpoint.ts';
import { boshModule } from '../gateway/bosh/module.ts';
import type { BoshLimits } from '../gateway/bosh/protocol.ts';
import { HOST_META_PATH, hostMetaHttpRoute } from '../gateway/host-meta.ts';
import { DEMO_PATH, demoHttpRoute } from './demo-app.ts';
import { eventPushOf } from '../extensions/event-push/index.ts';
import { BoshSessionStore } from '../store/bosh-sessions.ts';
import { createIngestHandler, type SqsBatchResponse, type SqsEvent } from '../gateway/ingest.ts';
import { LocalGateway, type LocalGatewayOptions } from '../gateway/local-gateway.ts';
import { createWebSocketHandlers } from '../gateway/websocket-handlers.ts';
import { createDynamoClient } from '../store/dynamo.ts';
import { FrameClaimStore, frameClaimsTableDefinition } from '../store/frame-dedup.ts';
import type { ConnectionRecord } from '../store/connections.ts';
import { TenantStore } from '../store/tenants.ts';
import { startComponentListener } from './component-listener.ts';
import { UsageStore } from '../store/usage.ts';
import { Metrics } from '../metrics/metrics.ts';
import { ensureTable, startDynalite } from './dynamo-local.ts';

export const PACKAGE_VERSION: string = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version;

export interface LocalServerOptions {
  host?: string;
  port?: number;
  /** Folder for dynalite's files; undefined keeps everything in memory. */
  dataDir?: string;
  dynamoHost?: string;
  /** dynalite's port; 0 picks a free one. */
  dynamoPort?: number;
  /** Use an already running DynamoDB (e.g. another process's dynalite) instead of starting one. */
  dynamoEndpoint?: string;
  table?: string;
  /** The ingest's frame claims table; default `<table>-frame-claims`. */
  claimsTable?: string;
  /** Tenants to create at start if missing. */
  seedDomains?: string[];
  /** The optional modules (`features`) the tenants created at start have; none by default. */
  seedFeatures?: string[];
  limits?: Partial<Limits>;
  gatewayLimits?: LocalGatewayOptions['limits'];
  dropDisconnect?: boolean;
  /** How often to look for connections whose $disconnect never came. */
  sweepIntervalMs?: number;
  tenantCacheMs?: number;
  /** Bearer token for the admin API; default XMPP_EDGE_ADMIN_TOKEN or a random one (printed at start). */
  adminToken?: string;
  /** How often pending tenant purges are worked on. */
  purgeIntervalMs?: number;
  /** How often the tenants in use are re-read to close disabled or deleted ones. */
  tenantWatchMs?: number;
  /**
   * The region this server plays (default 'local'): its sweeper and tenant watcher act only on the
   * connections it holds. Two local servers on one DynamoDB (dynamoEndpoint) are two regions.
   */
  region?: string;
  logger?: Logger;
  /** Modules installed after the default ones (tests add their own probes this way). */
  extraModules?: readonly XmppModule[];
  /**
   * Reach the embedded dynalite and this gateway's @connections API over loopback HTTP with the SDK's own
   * handlers, as before they were called in-process; the benchmark uses it to measure what that costs.
   */
  loopbackHttp?: boolean;
  /**
   * The latency model (README "Latency model"): delays added to each DynamoDB call, each @connections call and
   * each frame's hop through the queue, so the effect of every call on what a user waits for shows locally.
   * In-process paths only (not with loopbackHttp).
   */
  latency?: LatencyModel;
  /** Time source of the XMPP core (default the system clock); tests inject one to move time. */
  clock?: Clock;
  /** TCP port of the XEP-0114 component listener on `host` (README "Components"); default 5347, 0 picks a free one, false: none. */
  componentPort?: number | false;
  /** How often the usage counted in memory is written to the usage records (default 10 s). */
  usageFlushMs?: number;
  /** What BOSH sessions are granted (wait, hold, inactivity, …; docs/architecture.md "BOSH"). */
  boshLimits?: Partial<BoshLimits>;
  /**
   * How often a waiting BOSH request reads its session's item, ms. Unset: never (every post to a session
   * of this server is made in this process, which wakes the request). Two local servers on one table
   * (two regions) post to each other's sessions: set it there, as the Lambda does.
   */
  boshPollMs?: number;
  /**
   * A tracer of the frames and of the AWS calls they make (the X-Ray one of lib/runtime/xray-tracing.ts);
   * it traces work only inside a segment of the caller's (docs/architecture.md "Tracing").
   */
  tracer?: FrameTracer & { attach(client: unknown, service: string): void };
}

export interface LatencyModel {
  dynamoMs: number;
  postMs: number;
  fifoMs: number;
}

/**
 * Defaults of the latency model, from what AWS publishes: DynamoDB "single-digit millisecond" reads and writes
 * (5 ms a call); SQS send and receive "in the tens or low hundreds of milliseconds" (30 ms for the FIFO hop to the
 * ingest, the low end); no published figure for PostToConnection (10 ms assumed, one in-region HTTPS call).
 */
export const AWS_LATENCY: LatencyModel = { dynamoMs: 5, postMs: 10, fifoMs: 30 };

export interface LocalServer {
  url: string;
  /** http://host:port/http-bind (XEP-0206) */
  boshUrl: string;
  /** http://host:port/api */
  adminUrl: string;
  /** http://host:port/.well-known/host-meta (XEP-0156) */
  hostMetaUrl: string;
  /** http://host:port/demo/, the call demo (README "Call demo") */
  demoUrl: string;
  /** The XEP-0114 component listener's TCP port (README "Components"), if it runs. */
  componentPort?: number;
  /** The gateway's @connections endpoint, which this server's sessions record. */
  managementEndpoint: string;
  adminToken: string;
  dynamoEndpoint: string;
  table: string;
  /** The frame claims table the ingest writes to (one item per frame handled). */
  claimsTable: string;
  server: XmppServer;
  gateway: LocalGateway;
  bosh: BoshEndpoint;
  /** The ingest handler behind $default: what the gateway hands each connection's SQS batches to. */
  ingest: (event: SqsEvent) => Promise<SqsBatchResponse>;
  counter: CallCounter;
  /** The per-tenant counters, served at /api/metrics (Prometheus text). */
  metrics: Metrics;
  /** Writes the usage counted so far now (the timer does it every usageFlushMs), outside the measured costs. */
  flushUsage(): Promise<number>;
  /** The local tenant watcher (polls every tenantWatchMs); catchUp() acts on every change written so far. */
  tenantWatcher: TenantWatcher;
  stop(): Promise<void>;
}

export async function startLocalServer(opts: LocalServerOptions = {}): Promise<LocalServer> {
  const log = opts.logger ?? pino({ level: process.env.LOG_LEVEL ?? 'info' });
  const table = opts.table ?? 'xmpp-edge';
  const dynamo = opts.dynamoEndpoint ? undefined : await startDynalite({ host: opts.dynamoHost, port: opts.dynamoPort ?? 8000, path: opts.dataDir });
  const dynamoEndpoint = opts.dynamoEndpoint ?? dynamo!.endpoint;
  const claimsTable = opts.claimsTable ?? `${table}-frame-claims`;
  await ensureTable(dynamoEndpoint, table);
  await ensureTable(dynamoEndpoint, claimsTable, frameClaimsTableDefinition);

  if (dynamo && opts.latency) dynamo.requestHandler.delayMs = opts.latency.dynamoMs;
  const counter = new CallCounter();
  const metrics = new Metrics(opts.clock);
  // The embedded dynalite is reached in-process (no loopback HTTP, no signing); one of another process over HTTP.
  const dynamoClient = { endpoint: dynamoEndpoint, localCredentials: true, requestHandler: opts.loopbackHttp ? undefined : dynamo?.requestHandler };
  const db = createDynamoClient({ ...dynamoClient, counter, metrics, tracer: opts.tracer });
  // Background work (tenant watch, purges) gets its own client, so the call counter measures what
  // stanzas cost and nothing else.
  const backgroundDb = createDynamoClient(dynamoClient);
  // The frame claims too: in AWS they are one conditional write per frame to a separate regional
  // table (README "Cost per operation"), not part of what a stanza costs in the main table.
  const claimsDb = createDynamoClient(dynamoClient);
  // BOSH sessions' items and queues (docs/architecture.md "BOSH"): posts to a `bosh:` endpoint go there.
  const boshStore = new BoshSessionStore(db, table);
  const modules = [...defaultModules, boshModule(boshStore), ...(opts.extraModules ?? [])];
  const tenants = new TenantStore(db, table, { blocks: settingBlocksOf(modules), log });
  for (const domain of opts.seedDomains ?? ['localhost']) {
    if (!(await tenants.get(domain))) await tenants.put({ domain, enabled: true, createdAt: Date.now(), ...(opts.seedFeatures?.length ? { features: opts.seedFeatures } : {}) });
  }

  const management = new ManagementApi({
    localCredentials: true,
    counter,
    tracer: opts.tracer,
    inProcessDelayMs: opts.latency?.postMs,
    transports: { [BOSH_SCHEME]: new BoshTransport(boshStore, (): number => server.clock.now()) },
  });
  const server: XmppServer = new XmppServer({
    db,
    table,
    management,
    logger: log,
    limits: opts.limits,
    tenantCacheMs: opts.tenantCacheMs,
    modules,
    version: PACKAGE_VERSION,
    region: opts.region,
    clock: opts.clock,
    metrics,
    tracer: opts.tracer,
  });
  // Webhooks to http://127.0.0.1 are for a receiver on this machine: allowed here, never when deployed.
  eventPushOf(server).configure({ allowLoopbackHttp: true });
  const endpointOf = (ctx: { domainName: string; stage: string }) => `http://${ctx.domainName}/${ctx.stage}`;
  const handlers = createWebSocketHandlers(server, endpointOf);
  // $default: the ingest Lambda's handler, fed by the gateway's per-connection FIFO queue. Its metrics
  // line (CloudWatch EMF in AWS) is a debug log line here.
  /** Flushes running beside the frames (event push): a stop waits for them. */
  const flushing = new Set<Promise<void>>();
  const ingest = createIngestHandler(
    {
      processor: server,
      claims: new FrameClaimStore(claimsDb, claimsTable),
      endpointOf,
      log,
      // The process outlives the batch here, so deferred work (event push) runs beside the connection's
      // next frames instead of in front of them; in Lambda the ingest awaits it (functions/ingest.ts).
      afterBatch: async () => {
        const work = server.flush().finally(() => flushing.delete(work));
        flushing.add(work);
      },
    },
    (metrics) => log.debug({ metrics }, 'ingest batch'),
  );
  // BOSH requests take the same ingest path, in rid order (lib/gateway/bosh/endpoint.ts).
  const boshIngest = createIngestHandler(
    { processor: server, claims: new FrameClaimStore(claimsDb, claimsTable), endpointOf: () => boshEndpointOf(server.connections.region), log },
    (metrics) => log.debug({ metrics }, 'BOSH ingest'),
  );
  const bosh = new BoshEndpoint({ server, store: boshStore, ingest: boshIngest, limits: opts.boshLimits, pollMs: opts.boshPollMs });
  const boshRoute = boshHttpRoute(bosh);
  const purger = new TenantPurger(backgroundDb, table, purgePlanOf(server));
  const adminToken = opts.adminToken ?? process.env.XMPP_EDGE_ADMIN_TOKEN ?? randomBytes(18).toString('base64url');
  const adminRoutes = nodeHttpRoutes(createAdminApi(server, { token: adminToken, purger, metrics }));
  // XEP-0156 discovery next to the admin API, as on the deployed HTTP API; the URL is known once listening.
  let url = '';
  let boshUrl = '';
  const hostMetaRoutes = hostMetaHttpRoute(() => ({ websocket: url, bosh: boshUrl }));
  const demoRoutes = demoHttpRoute(log);
  const gateway = new LocalGateway({
    host: opts.host ?? '127.0.0.1',
    port: opts.port ?? 5280,
    handlers,
    ingest,
    limits: opts.gatewayLimits,
    dropDisconnect: opts.dropDisconnect,
    fifoDelayMs: opts.latency?.fifoMs,
    httpRoutes: async (req, res) => hostMetaRoutes(req, res) || (await boshRoute(req, res)) || (await demoRoutes(req, res)) || adminRoutes(req, res),
    logger: log,
  });
  const startedAt = Date.now();
  const address = await gateway.start();
  url = address.url;
  boshUrl = `http://${gateway.domainName}${BOSH_PATH}`;
  // Posts to this gateway's own connections go in-process; other endpoints (another local region) over HTTP.
  if (!opts.loopbackHttp) management.serveInProcess(address.managementEndpoint, gateway.inProcessConnections());
  // After the gateway is listening, so that posts to this region's old connections get 410 (see the function).
  await endConnectionsOfPreviousRun(server, address.managementEndpoint, startedAt, log);
  // XEP-0114 over TCP, through the same gateway and handlers as components over WebSocket.
  const components = opts.componentPort === false ? undefined : await startComponentListener({ host: opts.host ?? '127.0.0.1', port: opts.componentPort ?? 5347, gateway, logger: log });

  let sweeping: Promise<unknown> = Promise.resolve();
  const sweepTimer = setInterval(() => {
    sweeping = sweeping.then(() => server.sweep()).catch((err) => log.error({ err }, 'sweep failed'));
  }, opts.sweepIntervalMs ?? 60_000);
  sweepTimer.unref();
  // Deleted tenants' data, purged in the background (the sweeper Lambda does this in AWS).
  const purgeTimer = setInterval(() => {
    sweeping = sweeping.then(() => purger.runPending(Date.now() + 5000)).catch((err) => log.error({ err }, 'purge failed'));
  }, opts.purgeIntervalMs ?? 5000);
  purgeTimer.unref();
  // dynalite has no streams: poll the tenants in use so a disabled one is closed within seconds. A
  // change is told against what the handlers last read (lastServed) when a domain's first stream opens.
  const watcher = new TenantWatcher(
    server,
    new TenantStore(backgroundDb, table, { cacheMs: 0, blocks: settingBlocksOf(modules), log }),
    () => server.domainsInUse(),
    opts.tenantWatchMs ?? 1000,
    (domain) => server.tenants.lastServed(domain),
  );
  watcher.start();
  // Usage records: written every usageFlushMs through the background client, so that the call counter
  // measures what stanzas cost (in AWS each invocation's flush does this: README "Metrics and usage").
  const usageStore = new UsageStore(backgroundDb, table);
  let usageFlushing: Promise<unknown> = Promise.resolve();
  const flushUsage = (): Promise<number> => {
    const run = usageFlushing.then(() => server.flushUsage(usageStore));
    usageFlushing = run.catch((err) => log.error({ err }, 'usage flush failed'));
    return run;
  };
  const usageTimer = setInterval(() => void flushUsage().catch(() => {}), opts.usageFlushMs ?? 10_000);
  usageTimer.unref();

  return {
    url,
    boshUrl,
    adminUrl: `http://${gateway.domainName}/api`,
    hostMetaUrl: `http://${gateway.domainName}${HOST_META_PATH}`,
    demoUrl: `http://${gateway.domainName}${DEMO_PATH}`,
    managementEndpoint: address.managementEndpoint,
    ...(components ? { componentPort: components.port } : {}),
    adminToken,
    dynamoEndpoint,
    table,
    claimsTable,
    server,
    gateway,
    bosh,
    ingest,
    counter,
    metrics,
    flushUsage,
    tenantWatcher: watcher,
    async stop() {
      clearInterval(sweepTimer);
      clearInterval(usageTimer);
      clearInterval(purgeTimer);
      await sweeping;
      await watcher.stop();
      // RFC 6120 §4.9.3.20: tell clients the server is going away, then let $disconnect clean up.
      await server.shutdown(gateway.connectionIds());
      bosh.stop();
      await gateway.stop();
      await Promise.all(flushing);
      await components?.stop();
      await flushUsage().catch(() => {});
      db.destroy();
      backgroundDb.destroy();
      claimsDb.destroy();
      await dynamo?.close();
    },
  };
}

/**
 * A local server that starts knows that the connections of its region's previous run are gone: the process that
 * held them crashed or was killed without a clean stop, and its gateway with them. Their sessions would otherwise
 * stay listed, and take messages meant for offline storage, until the sweeper checks them (docs/architecture.md
 * "Connections die silently"). So they are ended now: contacts get unavailable presence (RFC 6121 §4.5.2) and the
 * sessions are removed. A connection recorded at this gateway's own endpoint cannot exist (the gateway just
 * started) and is ended at once; one at another endpoint of the region (an old run on another port, or another
 * live server playing the same region on the same table) is ended only if that gateway says it is gone or does
 * not answer. Costs at start: one Query per sweep shard, plus what ending each connection costs.
 */
export async function endConnectionsOfPreviousRun(server: XmppServer, ownEndpoint: string, startedAt: number, log: Logger): Promise<number> {
  let ended = 0;
  for (const rec of await server.connections.ofRegion()) {
    if (rec.connectedAt >= startedAt) continue; // opened on this run's gateway
    try {
      if (rec.endpoint !== ownEndpoint && (await stillOpen(server, rec))) continue;
      await server.endConnection(rec.id, 'restart', { socketClosed: true });
      ended++;
    } catch (err) {
      log.warn({ err, connectionId: rec.id }, 'could not end a connection of the previous run; left for the sweeper');
    }
  }
  if (ended > 0) log.info({ ended }, 'ended the connections of the previous run');
  return ended;
}

async function stillOpen(server: XmppServer, rec: ConnectionRecord): Promise<boolean> {
  try {
    return await server.management.isAlive({ connectionId: rec.id, endpoint: rec.endpoint });
  } catch {
    return false; // nothing listens at that endpoint: the gateway that held it is gone
  }
}
