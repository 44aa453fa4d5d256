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
import { HOST_META_PATH, hostMetaHttpRoute } from '../gateway/host-meta.ts';
import { DEMO_PATH, demoHttpRoute } from './demo-app.ts';
import { eventPushOf } from '../extensions/event-push/index.ts';
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
  /** Time source of the XMPP core (default the system clock); tests inject one to move time. */
  clock?: Clock;
  /** TCP port of the XEP-0114 component listener on `host` (README "Components"); default 5347, 0 picks a free one, false: none. */
  componentPort?: number | false;
  /** How often the usage counted in memory is written to the usage records (default 10 s). */
  usageFlushMs?: number;
  /**
   * A tracer of the frames and of the AWS calls they make (the X-Ray one of lib/runtime/xray-tracing.ts);
   * it traces work only inside a segment of the caller's (docs/architecture.md "Tracing").
   */
  tracer?: FrameTracer & { attach(client: unknown, service: string): void };
}

export interface LocalServer {
  url: string;
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
  /** The ingest handler behind $default: what the gateway hands each connection's SQS batches to. */
  ingest: (event: SqsEvent) => Promise<SqsBatchResponse>;
  counter: CallCounter;
  /** The per-tenant counters, served at /api/metrics (Prometheus text). */
  metrics: Metrics;
  /** Writes the usage counted so far now (the timer does it every usageFlushMs), outside the measured costs. */
  flushUsage(): Promise<number>;
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

  const counter = new CallCounter();
  const metrics = new Metrics(opts.clock);
  const db = createDynamoClient({ endpoint: dynamoEndpoint, localCredentials: true, counter, metrics, tracer: opts.tracer });
  // Background work (tenant watch, purges) gets its own client, so the call counter measures what
  // stanzas cost and nothing else.
  const backgroundDb = createDynamoClient({ endpoint: dynamoEndpoint, localCredentials: true });
  // The frame claims too: in AWS they are one conditional write per frame to a separate regional
  // table (README "Cost per operation"), not part of what a stanza costs in the main table.
  const claimsDb = createDynamoClient({ endpoint: dynamoEndpoint, localCredentials: true });
  const modules = [...defaultModules, ...(opts.extraModules ?? [])];
  const tenants = new TenantStore(db, table, { blocks: settingBlocksOf(modules), log });
  for (const domain of opts.seedDomains ?? ['localhost']) {
    if (!(await tenants.get(domain))) await tenants.put({ domain, enabled: true, createdAt: Date.now(), ...(opts.seedFeatures?.length ? { features: opts.seedFeatures } : {}) });
  }

  const server = new XmppServer({
    db,
    table,
    management: new ManagementApi({ localCredentials: true, counter, tracer: opts.tracer }),
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
  const purger = new TenantPurger(backgroundDb, table, purgePlanOf(server));
  const adminToken = opts.adminToken ?? process.env.XMPP_EDGE_ADMIN_TOKEN ?? randomBytes(18).toString('base64url');
  const adminRoutes = nodeHttpRoutes(createAdminApi(server, { token: adminToken, purger, metrics }));
  // XEP-0156 discovery next to the admin API, as on the deployed HTTP API; the URL is known once listening.
  let url = '';
  const hostMetaRoutes = hostMetaHttpRoute(() => ({ websocket: url }));
  const demoRoutes = demoHttpRoute(log);
  const gateway = new LocalGateway({
    host: opts.host ?? '127.0.0.1',
    port: opts.port ?? 5280,
    handlers,
    ingest,
    limits: opts.gatewayLimits,
    dropDisconnect: opts.dropDisconnect,
    httpRoutes: async (req, res) => hostMetaRoutes(req, res) || (await demoRoutes(req, res)) || adminRoutes(req, res),
    logger: log,
  });
  const startedAt = Date.now();
  const address = await gateway.start();
  url = address.url;
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
  // dynalite has no streams: poll the tenants in use so a disabled one is closed within seconds.
  const watcher = new TenantWatcher(server, new TenantStore(backgroundDb, table, { cacheMs: 0, blocks: settingBlocksOf(modules), log }), () => server.domainsInUse(), opts.tenantWatchMs ?? 1000);
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
    ingest,
    counter,
    metrics,
    flushUsage,
    async stop() {
      clearInterval(sweepTimer);
      clearInterval(usageTimer);
      clearInterval(purgeTimer);
      await sweeping;
      await watcher.stop();
      // RFC 6120 §4.9.3.20: tell clients the server is going away, then let $disconnect clean up.
      await server.shutdown(gateway.connectionIds());
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
