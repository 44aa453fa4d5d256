// The Lambda side of the wiring (docs/architecture.md "The path of one frame"): each entry point in
// functions/ builds one XmppServer per container from its environment ($connect and $disconnect at
// module scope, the others at their first event so tests can import them) and exports a handler that
// delegates to it. Nothing here survives an invocation that must (docs/architecture.md "State").
//
// Environment: TABLE_NAME (required), MANAGEMENT_ENDPOINT (optional: the @connections endpoint of a
// custom domain; default https://{domainName}/{stage} of each event), LOG_LEVEL (default info),
// CONNECTS_PER_ADDRESS and CONNECT_WINDOW_SECONDS (the $connect cap per source address: default 60 per
// 60 s; 0 turns it off), USAGE_FLUSH_SECONDS (how often usage records are written, default 10; 0: at
// the end of every invocation), TRACING (true: X-Ray subsegments per frame and per AWS call; the CDK
// context flag tracing sets it with active tracing). The per-tenant metrics are written as EMF log
// lines at the end of every invocation (docs/architecture.md "Metrics and usage").
//
// The end of an invocation is one mechanism (docs/architecture.md "The end of an invocation"): every
// handler ends with server.flush(), which runs the modules' flush steps (event push) and then this
// runtime's own step, installed last: the EMF lines and, every USAGE_FLUSH_SECONDS, the usage records.
import { type Logger, pino } from 'pino';
import pkg from '../../package.json' with { type: 'json' };
import { ManagementApi } from '../core/management-api.ts';
import type { XmppModule } from '../core/modules.ts';
import { type FrameTracer, XmppServer } from '../core/server.ts';
import { components } from '../extensions/components/index.ts';
import { defaultModules } from '../extensions/index.ts';
import { BOSH_SCHEME, BoshTransport } from '../gateway/bosh/endpoint.ts';
import { boshModule } from '../gateway/bosh/module.ts';
import { BoshSessionStore } from '../store/bosh-sessions.ts';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { awsEndpointOf, createWebSocketHandlers, type EndpointOf, type WebSocketHandlers } from '../gateway/websocket-handlers.ts';
import { createDynamoClient } from '../store/dynamo.ts';
import { type FrameScope, Metrics } from '../metrics/metrics.ts';
import type { XRayTracer } from './xray-tracing.ts';

export const VERSION: string = pkg.version;

export interface LambdaRuntime {
  server: XmppServer;
  handlers: WebSocketHandlers;
  /** BOSH sessions' items (docs/architecture.md "BOSH"); posts to `bosh:` endpoints go there. */
  boshStore: BoshSessionStore;
  endpointOf: EndpointOf;
  table: string;
  /**
   * To call at the end of every invocation: server.flush(), whose last step writes the metrics counted
   * since the last call as EMF lines on stdout, and the usage records if USAGE_FLUSH_SECONDS have
   * passed since they were last written.
   */
  flush(): Promise<void>;
  /**
   * Resolves once the tracer is loaded (TRACING=true), at once otherwise; rejects with a clear error
   * if it cannot be loaded. Every handler awaits it before its first frame.
   */
  ready: Promise<void>;
  /** A handler that awaits `ready`, runs, and flushes whatever its outcome: how every entry point is wrapped. */
  invocation<A extends unknown[], R>(handler: (...args: A) => Promise<R>): (...args: A) => Promise<R>;
  /** With TRACING=true: instruments another AWS SDK client of the function (the ingest's frame claims). */
  tracer?: { attach(client: unknown, service: string): void };
}

/** EMF records must be whole JSON lines on stdout, which Lambda sends to CloudWatch Logs. */
const toStdout = (record: Record<string, unknown>) => void process.stdout.write(JSON.stringify(record) + '\n');

/** A whole number from the environment, or a clear error naming the variable. */
function envInteger(env: Record<string, string | undefined>, name: string, fallback: number): number {
  const raw = env[name]?.trim();
  if (!raw) return fallback;
  if (!/^\d+$/.test(raw)) throw new Error(`${name} "${raw}" is not a whole number of 0 or more`);
  return Number(raw);
}

/** Wraps a handler so that the runtime's flush runs after every invocation, whatever its outcome. */
export function flushingAfter<A extends unknown[], R>(flush: () => Promise<void>, handler: (...args: A) => Promise<R>): (...args: A) => Promise<R> {
  return async (...args: A) => {
    try {
      return await handler(...args);
    } finally {
      await flush();
    }
  };
}

/**
 * The X-Ray tracer, loaded with a dynamic import on the first use of the runtime (TRACING=true only:
 * without it the SDK is never evaluated). Until it is there, work runs untraced and the AWS clients
 * made meanwhile are instrumented when it arrives; the handlers await `ready` first anyway.
 */
class LazyTracer implements FrameTracer {
  private impl?: XRayTracer;
  private waiting: [unknown, string][] = [];
  readonly ready: Promise<void>;

  constructor(load: () => Promise<XRayTracer>) {
    this.ready = load().then(
      (tracer) => {
        this.impl = tracer;
        for (const [client, service] of this.waiting) tracer.attach(client, service);
        this.waiting = [];
      },
      (err: Error) => {
        throw new Error(`TRACING=true but the X-Ray SDK could not be loaded: ${err.message}`);
      },
    );
    // Awaited by every handler; not an unhandled rejection at load time.
    this.ready.catch(() => {});
  }

  attach(client: unknown, service: string): void {
    if (this.impl) this.impl.attach(client, service);
    else this.waiting.push([client, service]);
  }

  trace<T>(name: string, scope: FrameScope, fn: () => Promise<T>): Promise<T> {
    return this.impl ? this.impl.trace(name, scope, fn) : fn();
  }
}

/**
 * Set by the bundler (lib/infra/bundling.ts): in a deployed bundle the X-Ray part is its own file beside
 * index.mjs, fetched only with TRACING=true, so it is neither in every bundle nor parsed at every cold start.
 */
declare const XMPP_EDGE_XRAY_CHUNK: string | undefined;

/** The X-Ray part: from its own file in a bundle, from source otherwise. */
function loadXRayModule(): Promise<typeof import('./xray-tracing.ts')> {
  return typeof XMPP_EDGE_XRAY_CHUNK === 'string' ? import(new URL(XMPP_EDGE_XRAY_CHUNK, import.meta.url).href) : import('./xray-tracing.ts');
}

/**
 * The functions' logger: JSON lines on stdout, which Lambda sends to the function's log group. Synchronous
 * writes, since a container may be frozen right after the handler returns; no transport and no redaction,
 * which the bundles carry only as stubs (lib/infra/bundling.ts, BUNDLE_ALIAS).
 */
export function createLambdaLogger(level: string): Logger {
  return pino({ level }, pino.destination({ dest: 1, sync: true }));
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** The runtime of every function but $connect: all the modules (docs/modules.md). */
export function createLambdaRuntime(env: Record<string, string | undefined> = process.env, write: (record: Record<string, unknown>) => void = toStdout): LambdaRuntime {
  return createLambdaRuntimeOf(defaultModules, env, write);
}

/**
 * The modules the $connect function loads (functions/connect.ts). XmppServer.connect fires no hook and no
 * event; of the registry it reads only the subprotocols modules add (addStreamProtocol), and the end of its
 * invocation runs the flush steps, which have nothing to do when no event was fired. So $connect behaves the
 * same with only the modules that add a subprotocol, and its bundle leaves out the rest (README "Bundle
 * sizes"). test/integration/connect-modules.test.ts fails if connect reads more of the registry or a module
 * outside this list adds a subprotocol.
 */
export const CONNECT_MODULES: readonly XmppModule[] = [components];

/**
 * The runtime with the given modules (the BOSH module and the runtime's own last flush step are added).
 * A function that imports only this (not createLambdaRuntime) leaves the other modules out of its bundle.
 */
export function createLambdaRuntimeOf(modules: readonly XmppModule[], env: Record<string, string | undefined> = process.env, write: (record: Record<string, unknown>) => void = toStdout): LambdaRuntime {
  const table = env.TABLE_NAME?.trim();
  if (!table) throw new Error('TABLE_NAME is not set: the function needs the name of the DynamoDB table in its environment');
  const level = env.LOG_LEVEL?.trim() || 'info';
  if (!LOG_LEVELS.includes(level)) throw new Error(`LOG_LEVEL "${level}" is not one of ${LOG_LEVELS.join(', ')}`);
  const managementEndpoint = env.MANAGEMENT_ENDPOINT?.trim();
  const endpointOf: EndpointOf = managementEndpoint ? () => managementEndpoint : awsEndpointOf;

  const connectsPerAddress = envInteger(env, 'CONNECTS_PER_ADDRESS', 60);
  const connectWindowMs = envInteger(env, 'CONNECT_WINDOW_SECONDS', 60) * 1000;
  if (connectWindowMs === 0) throw new Error('CONNECT_WINDOW_SECONDS must be at least 1');
  const usageFlushMs = envInteger(env, 'USAGE_FLUSH_SECONDS', 10) * 1000;
  const tracing = env.TRACING?.trim() || 'false';
  if (tracing !== 'true' && tracing !== 'false') throw new Error(`TRACING "${tracing}" is not true or false`);

  const logger = createLambdaLogger(level);
  const tracer = tracing === 'true' ? new LazyTracer(async () => (await loadXRayModule()).createXRayTracer(logger.child({ component: 'xray' }))) : undefined;
  const metrics = new Metrics();
  let usageWrittenAt = 0;
  // The last flush step (installed after every module): what the invocation counted goes out after
  // the modules' deferred work has counted too (event push failures).
  const invocationEnd: XmppModule = {
    name: 'lambda-invocation-end',
    install(ctx) {
      ctx.addFlushStep(async (server) => {
        for (const record of metrics.takeEmf()) write(record);
        if (Date.now() - usageWrittenAt < usageFlushMs) return;
        usageWrittenAt = Date.now();
        await server.flushUsage();
      });
    },
  };
  // No endpoint and no credentials: the Lambda role's, through the default provider chain.
  const db = createDynamoClient({ region: env.AWS_REGION, metrics, tracer });
  // A post to a BOSH session held in another region writes its queue in that region's replica.
  const regional = new Map<string, DynamoDBDocumentClient>();
  const dbOfRegion = (region: string) => {
    if (region === env.AWS_REGION || !/^[a-z]{2}(-[a-z]+)+-\d$/.test(region)) return db;
    let client = regional.get(region);
    if (!client) regional.set(region, (client = createDynamoClient({ region, metrics, tracer })));
    return client;
  };
  const boshStore = new BoshSessionStore(db, table, dbOfRegion);
  const server: XmppServer = new XmppServer({
    db,
    metrics,
    tracer,
    limits: { connectsPerAddress, connectWindowMs },
    table,
    management: new ManagementApi({ tracer, transports: { [BOSH_SCHEME]: new BoshTransport(boshStore, (): number => server.clock.now()) } }),
    logger,
    modules: [...modules, boshModule(boshStore), invocationEnd],
    version: VERSION,
    // The region a BOSH session records (bosh:<region>) and the sweeper's partitions: the given env's.
    region: env.AWS_REGION,
  });
  const flush = () => server.flush();
  const ready = tracer?.ready ?? Promise.resolve();
  const invocation = <A extends unknown[], R>(handler: (...args: A) => Promise<R>) =>
    flushingAfter(flush, async (...args: A) => {
      await ready;
      return handler(...args);
    });
  const ws = createWebSocketHandlers(server, endpointOf);
  const handlers = { connect: invocation(ws.connect), disconnect: invocation(ws.disconnect) };
  return { server, boshStore, handlers, endpointOf, table, flush, ready, invocation, tracer };
}
