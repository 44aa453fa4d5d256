// `npm start` in one process: dynalite, the table and default tenant, the XMPP core and the local
// API Gateway emulation in front of the same handlers the Lambda functions use (DESIGN.md "Local runtime").
import { readFileSync } from 'node:fs';
import { pino, type Logger } from 'pino';
import { CallCounter } from '../core/call-counter.ts';
import { ManagementApi } from '../core/management-api.ts';
import { type Limits, XmppServer } from '../core/server.ts';
import { randomBytes } from 'node:crypto';
import { createAdminApi, nodeHttpRoutes } from '../admin/api.ts';
import { TenantPurger } from '../admin/purge.ts';
import { TenantWatcher } from '../core/tenant-lifecycle.ts';
import { defaultExtensions, settingBlocks } from '../extensions/index.ts';
import { HOST_META_PATH, hostMetaHttpRoute } from '../gateway/host-meta.ts';
import { LocalGateway, type LocalGatewayOptions } from '../gateway/local-gateway.ts';
import { createWebSocketHandlers } from '../gateway/websocket-handlers.ts';
import { createDynamoClient } from '../store/dynamo.ts';
import { TenantStore } from '../store/tenants.ts';
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
  /** Tenants to create at start if missing. */
  seedDomains?: string[];
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
}

export interface LocalServer {
  url: string;
  /** http://host:port/api */
  adminUrl: string;
  /** http://host:port/.well-known/host-meta (XEP-0156) */
  hostMetaUrl: string;
  /** The gateway's @connections endpoint, which this server's sessions record. */
  managementEndpoint: string;
  adminToken: string;
  dynamoEndpoint: string;
  table: string;
  server: XmppServer;
  gateway: LocalGateway;
  counter: CallCounter;
  stop(): Promise<void>;
}

export async function startLocalServer(opts: LocalServerOptions = {}): Promise<LocalServer> {
  const log = opts.logger ?? pino({ level: process.env.LOG_LEVEL ?? 'info' });
  const table = opts.table ?? 'xmpp-edge';
  const dynamo = opts.dynamoEndpoint ? undefined : await startDynalite({ host: opts.dynamoHost, port: opts.dynamoPort ?? 8000, path: opts.dataDir });
  const dynamoEndpoint = opts.dynamoEndpoint ?? dynamo!.endpoint;
  await ensureTable(dynamoEndpoint, table);

  const counter = new CallCounter();
  const db = createDynamoClient({ endpoint: dynamoEndpoint, localCredentials: true, counter });
  // Background work (tenant watch, purges) gets its own client, so the call counter measures what
  // stanzas cost and nothing else.
  const backgroundDb = createDynamoClient({ endpoint: dynamoEndpoint, localCredentials: true });
  const tenants = new TenantStore(db, table, { blocks: settingBlocks, log });
  for (const domain of opts.seedDomains ?? ['localhost']) {
    if (!(await tenants.get(domain))) await tenants.put({ domain, enabled: true, createdAt: Date.now() });
  }

  const server = new XmppServer({
    db,
    table,
    management: new ManagementApi({ localCredentials: true, counter }),
    logger: log,
    limits: opts.limits,
    tenantCacheMs: opts.tenantCacheMs,
    extensions: defaultExtensions,
    settingBlocks,
    version: PACKAGE_VERSION,
    region: opts.region,
  });
  const handlers = createWebSocketHandlers(server, (ctx) => `http://${ctx.domainName}/${ctx.stage}`);
  const purger = new TenantPurger(backgroundDb, table);
  const adminToken = opts.adminToken ?? process.env.XMPP_EDGE_ADMIN_TOKEN ?? randomBytes(18).toString('base64url');
  const adminRoutes = nodeHttpRoutes(createAdminApi(server, { token: adminToken, purger }));
  // XEP-0156 discovery next to the admin API, as on the deployed HTTP API; the URL is known once listening.
  let url = '';
  const hostMetaRoutes = hostMetaHttpRoute(() => ({ websocket: url }));
  const gateway = new LocalGateway({
    host: opts.host ?? '127.0.0.1',
    port: opts.port ?? 5280,
    handlers,
    limits: opts.gatewayLimits,
    dropDisconnect: opts.dropDisconnect,
    httpRoutes: async (req, res) => hostMetaRoutes(req, res) || adminRoutes(req, res),
    logger: log,
  });
  const address = await gateway.start();
  url = address.url;

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
  const watcher = new TenantWatcher(server, new TenantStore(backgroundDb, table, { cacheMs: 0, blocks: settingBlocks, log }), () => server.domainsInUse(), opts.tenantWatchMs ?? 1000);
  watcher.start();

  return {
    url,
    adminUrl: `http://${gateway.domainName}/api`,
    hostMetaUrl: `http://${gateway.domainName}${HOST_META_PATH}`,
    managementEndpoint: address.managementEndpoint,
    adminToken,
    dynamoEndpoint,
    table,
    server,
    gateway,
    counter,
    async stop() {
      clearInterval(sweepTimer);
      clearInterval(purgeTimer);
      await sweeping;
      await watcher.stop();
      // RFC 6120 §4.9.3.20: tell clients the server is going away, then let $disconnect clean up.
      await server.shutdown(gateway.connectionIds());
      await gateway.stop();
      db.destroy();
      backgroundDb.destroy();
      await dynamo?.close();
    },
  };
}
