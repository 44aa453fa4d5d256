// An in-process emulation of an API Gateway WebSocket API, so the deployed handlers run unchanged on a laptop.
// - $connect and $disconnect go to Lambda proxy handlers with the Lambda proxy event shape:
//   https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-websocket-api-mapping-template-reference.html
// - $default takes the deployed path (README "Local gateway"): each inbound message becomes the SQS message the
//   route's mapping template renders (frame-envelope.ts frameEnvelopeBody), delivered as an SQS record of a FIFO
//   queue whose message group is the connection id, to the same ingest handler as the ingest Lambda (ingest.ts):
//   https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html
// - subprotocol negotiation by $connect's Sec-WebSocket-Protocol response header (RFC 7395 §3.3 asks for "xmpp"):
//   https://docs.aws.amazon.com/apigateway/latest/developerguide/websocket-connect-route-subprotocol.html
// - the @connections management API (PostToConnection, GetConnection, DeleteConnection), spoken to by the real
//   @aws-sdk/client-apigatewaymanagementapi client;
// - the service quotas: 32 KB frames, 128 KB messages, 10 min idle, 2 h per connection:
//   https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html#apigateway-execution-service-websocket-limits-table
//
// Differences: outbound posts go out as one text frame (API Gateway may split them into 32 KB frames; clients
// reassemble either way), the management API accepts any credentials (no SigV4 check) but answers only requests
// from this machine (managementAllowedFrom), and there are no authorizers. A post is queued on the socket and
// answered at once; a connection that leaves more than maxOutboundBufferBytes unsent is dropped (AWS documents
// no such limit). The gateway pings every connection and drops one that misses its pong (pingIntervalMs,
// pongTimeoutMs); AWS documents no pings of its own, and there the sweeper finds dead connections. The queue in front of the ingest is in-process, one per connection (conn.tail): a connection's
// frames are handed over in arrival order, one batch at a time (up to INGEST_BATCH_SIZE frames, all of that
// connection: a local batch never mixes connections, an AWS batch may), which is the order an SQS FIFO message
// group gives. A record the ingest hands back (batchItemFailures) is redelivered at once with its receive count
// raised, not after the queue's visibility timeout, and after LOCAL_MAX_RECEIVE_COUNT deliveries (AWS: the
// queue's maxReceiveCount, 5) it is logged as dead-lettered and dropped, as the dead-letter queue would take it
// (the frames behind it in its batch were handed back with it and share its receive count, as in AWS); the
// connection's later frames then go on. An ingest that throws counts as every record of its batch failing,
// as in AWS. A binary message closes the connection with 1003 and is not handed over, as API Gateway does with
// binary frames on an API without binary media types:
// https://docs.aws.amazon.com/apigateway/latest/developerguide/websocket-api-develop-binary-media-types.html
import { createServer, STATUS_CODES } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { randomFillSync, randomUUID } from 'node:crypto';
import { WebSocketServer } from 'ws';
import type { RawData, WebSocket } from 'ws';
import { pino } from 'pino';
import { frameEnvelopeBody } from './frame-envelope.ts';
import { FrameSizeGuard } from './frame-size-guard.ts';
import type { SqsBatchResponse, SqsEvent, SqsRecord } from './ingest.ts';
import type { InProcessConnections } from '../core/management-api.ts';
import type {
  EventType,
  RouteKey,
  WebSocketEvent,
  WebSocketHandler,
  WebSocketRequestContext,
  WebSocketResult,
} from './events.ts';

export interface GatewayLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}

export interface LocalGatewayLimits {
  /** One WebSocket frame's payload. API Gateway: 32 KB. */
  maxFrameBytes?: number;
  /** One whole message, inbound or posted through @connections. API Gateway: 128 KB. */
  maxMessageBytes?: number;
  /** Close with 1001 when the client has sent no message for this long. API Gateway: 10 minutes. */
  idleTimeoutMs?: number;
  /** Close with 1001 this long after the connection opened. API Gateway: 2 hours. */
  maxDurationMs?: number;
  /**
   * Whether a WebSocket ping from the client counts as activity for the idle timeout. AWS does not document
   * this, so the default is the strict reading (false): only data messages keep a connection alive, and a
   * client that relies on pings alone fails here rather than only after deploy. Checked on first deploy (README).
   */
  pingResetsIdle?: boolean;
  /**
   * Unsent bytes a connection may hold beyond the OS socket buffers before the gateway drops it as a reader too
   * slow to keep up (posts to it then get 410). AWS documents no such limit; default 1 MiB.
   */
  maxOutboundBufferBytes?: number;
  /** How often the gateway pings each connection (RFC 6455 §5.5.2) to find half-open ones. Default 30 s. */
  pingIntervalMs?: number;
  /** How long a ping may go unanswered before the connection is dropped as dead. Default 30 s. */
  pongTimeoutMs?: number;
}

export interface LocalGatewayOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 5280; 0 picks a free port. */
  port?: number;
  /** WebSocket path, default '/xmpp-websocket'. */
  path?: string;
  /** Default 'local'. */
  stage?: string;
  /** The Lambda proxy handlers of $connect and $disconnect. */
  handlers: { connect: WebSocketHandler; disconnect: WebSocketHandler };
  /**
   * The $default route's consumer: the ingest Lambda's handler (createIngestHandler), invoked with SQS FIFO
   * batches of one connection's frames, in order.
   */
  ingest: (event: SqsEvent) => Promise<SqsBatchResponse>;
  limits?: LocalGatewayLimits;
  /**
   * The latency model (README "Latency model"): how long a frame takes from the socket to the ingest, standing
   * for SQS FIFO and Lambda's poller. Default 0.
   */
  fifoDelayMs?: number;
  /** Never invoke $disconnect, to exercise code that must survive API Gateway's best-effort $disconnect. */
  dropDisconnect?: boolean;
  /** Other HTTP on the same port (BOSH, admin API, static page); resolve true when the request was handled. */
  httpRoutes?: (req: IncomingMessage, res: ServerResponse) => Promise<boolean> | boolean;
  logger?: GatewayLogger;
}

export interface LocalGatewayAddress {
  /** ws://host:port/path */
  url: string;
  /** http://host:port/stage — the `endpoint` for ApiGatewayManagementApiClient. */
  managementEndpoint: string;
  port: number;
}

const KiB = 1024;
const DEFAULT_LIMITS: Required<LocalGatewayLimits> = {
  maxFrameBytes: 32 * KiB,
  maxMessageBytes: 128 * KiB,
  idleTimeoutMs: 10 * 60_000,
  maxDurationMs: 2 * 60 * 60_000,
  pingResetsIdle: false,
  maxOutboundBufferBytes: 1024 * KiB,
  pingIntervalMs: 30_000,
  pongTimeoutMs: 30_000,
};
/** setTimeout's ceiling (~24.8 days); longer delays would fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** How long a server-initiated close waits for the client's close frame before dropping the TCP connection. */
const CLOSE_GRACE_MS = 1000;

/** Frames per ingest invocation: what the deployed event source mapping asks for (a FIFO queue's maximum). */
export const INGEST_BATCH_SIZE = 10;
/** Deliveries of one frame before it is dead-lettered: the first and one retry (see Differences above). */
export const LOCAL_MAX_RECEIVE_COUNT = 2;
/** The ARN the local queue's records carry (eventSourceARN). */
export const LOCAL_QUEUE_ARN = 'arn:aws:sqs:local:000000000000:xmpp-edge-frames.fifo';

const GOING_AWAY = { code: 1001, reason: 'Going away' } as const;
const MESSAGE_TOO_BIG = { code: 1009, reason: 'Message too big' } as const;
// AWS does not document the close code a DeleteConnection sends; 1000 is an assumption (README first-deploy check).
const DELETED = { code: 1000, reason: 'Connection deleted' } as const;
// What API Gateway does with a binary frame (see the header).
const UNSUPPORTED_DATA = { code: 1003, reason: 'Unsupported data' } as const;
// Dropped without a close handshake (a close frame would not get through): reported as an abnormal closure.
const SLOW_READER = { code: 1006, reason: 'Outbound buffer full' } as const;
const NO_PONG = { code: 1006, reason: 'Ping timeout' } as const;

type ConnectionState = 'connecting' | 'open' | 'closing' | 'closed';

interface Connection {
  readonly id: string;
  state: ConnectionState;
  ws?: WebSocket;
  readonly connectedAt: number;
  lastActiveAt: number;
  readonly sourceIp: string;
  readonly userAgent?: string;
  /** Sec-WebSocket-Protocol value returned by $connect, echoed verbatim in the 101 response. */
  protocol?: string;
  /** Tail of this connection's promise chain: ingest batches, then $disconnect. */
  tail: Promise<void>;
  /** Frames (as SQS records) waiting for the ingest, oldest first: this connection's FIFO message group. */
  queued: SqsRecord[];
  /** Messages received from ws so far, and how many of them may still be handled (set when a close begins). */
  received: number;
  acceptUpTo: number;
  /** Set when the gateway starts the close: reported as disconnectStatusCode instead of the client's echo. */
  closeCode?: number;
  closeReason?: string;
  idleTimer?: NodeJS.Timeout;
  /** Set while a ping of the gateway waits for its pong: fires the verdict. */
  pongTimer?: NodeJS.Timeout;
  timers: NodeJS.Timeout[];
  readonly closed: Promise<void>;
  markClosed: () => void;
}

export class LocalGateway {
  private readonly host: string;
  private readonly requestedPort: number;
  private readonly path: string;
  private readonly stage: string;
  private readonly limits: Required<LocalGatewayLimits>;
  private readonly logger: GatewayLogger;
  private readonly connections = new Map<string, Connection>();
  private readonly byRequest = new WeakMap<IncomingMessage, Connection>();
  private readonly wss: WebSocketServer;
  private server?: Server;
  private port: number;
  private stopping = false;
  private inflight = 0;
  private idleWaiters: Array<() => void> = [];

  constructor(private readonly opts: LocalGatewayOptions) {
    this.host = opts.host ?? '127.0.0.1';
    this.requestedPort = opts.port ?? 5280;
    this.port = this.requestedPort;
    this.path = opts.path ?? '/xmpp-websocket';
    this.stage = opts.stage ?? 'local';
    this.limits = { ...DEFAULT_LIMITS, ...definedOnly(opts.limits ?? {}) };
    this.logger = opts.logger ?? pino({ name: 'local-gateway', level: process.env.LOG_LEVEL ?? 'info' });
    this.wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      perMessageDeflate: false, // API Gateway does not negotiate extensions
      maxPayload: this.limits.maxMessageBytes,
      verifyClient: (info, done) => void this.onConnect(info.req, done),
      // The 101 response carries exactly what $connect returned (added in 'headers'), never ws's own choice.
      handleProtocols: () => false,
    });
    this.wss.on('headers', (headers, req) => {
      const protocol = this.byRequest.get(req)?.protocol;
      if (protocol) headers.push(`Sec-WebSocket-Protocol: ${protocol}`);
    });
  }

  /** host:port, as API Gateway's requestContext.domainName. */
  get domainName(): string {
    return `${urlHost(this.host)}:${this.port}`;
  }

  async start(): Promise<LocalGatewayAddress> {
    if (this.server) throw new Error('LocalGateway already started');
    const server = createServer((req, res) => void this.onRequest(req, res));
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.onUpgrade(req, socket, head));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.requestedPort, this.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
    this.stopping = false;
    this.port = (server.address() as AddressInfo).port;
    const url = `ws://${this.domainName}${this.path}`;
    const managementEndpoint = `http://${this.domainName}/${this.stage}`;
    this.logger.info({ url, managementEndpoint }, 'local gateway listening');
    return { url, managementEndpoint, port: this.port };
  }

  /** Stops accepting, closes every socket with 1001, runs their $disconnect, waits for all queues, closes the server. */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.stopping = true;
    const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
    // Connections still in $connect either get refused (503) or open and are closed by onOpen; a few rounds settle it.
    for (let round = 0; this.connections.size > 0 && round < 10; round++) {
      for (const conn of this.connections.values()) this.beginClose(conn, GOING_AWAY);
      await Promise.all([...this.connections.values()].map((conn) => conn.closed));
      await this.idle();
    }
    await this.idle();
    server.closeAllConnections();
    await serverClosed;
    this.server = undefined;
    this.logger.info({}, 'local gateway stopped');
  }

  /**
   * Stops as a process that is killed would: no $disconnect for its connections, so their items and
   * sessions stay behind for a restart (or the sweeper) to end. Frames already queued are still handed
   * over first; the clients see the socket close with 1001.
   */
  async crash(): Promise<void> {
    this.opts.dropDisconnect = true;
    await this.stop();
  }

  /** Ids of the connections that are open (a POST to them would be delivered). */
  connectionIds(): string[] {
    return [...this.connections.values()].filter((c) => c.state === 'open').map((c) => c.id);
  }

  /** Resolves when no handler or ingest invocation is running or queued, on any connection. */
  idle(): Promise<void> {
    if (this.inflight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  // ---- WebSocket: $connect ----

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', (err) => this.logger.debug({ err }, 'upgrade socket error'));
    if (requestPath(req) !== this.path) return rejectUpgrade(socket, 404);
    if (this.stopping) return rejectUpgrade(socket, 503);
    // ws validates the handshake first (method, key, version, subprotocol syntax), then calls verifyClient → $connect.
    this.wss.handleUpgrade(req, socket, head, (ws) => this.onOpen(ws, req, socket));
  }

  private async onConnect(
    req: IncomingMessage,
    done: (ok: boolean, code?: number, message?: string, headers?: Record<string, string>) => void,
  ): Promise<void> {
    if (this.stopping) return done(false, 503);
    const conn = this.newConnection(sourceIp(req), req.headers['user-agent']);
    this.connections.set(conn.id, conn);
    this.byRequest.set(req, conn);
    const event: WebSocketEvent = {
      requestContext: this.requestContext(conn, '$connect', 'CONNECT'),
      ...connectHeaders(req, conn.sourceIp),
      ...queryParameters(req),
      isBase64Encoded: false,
    };
    this.inflight++;
    let result: WebSocketResult | void;
    try {
      result = await this.opts.handlers.connect(event);
    } catch (err) {
      this.logger.error({ err, connectionId: conn.id, routeKey: '$connect' }, 'handler failed');
      result = { statusCode: 500, body: JSON.stringify({ message: 'Internal server error' }) };
    } finally {
      this.settle();
    }

    const status = result?.statusCode;
    if (typeof status !== 'number' || !Number.isInteger(status) || status < 200 || status > 599) {
      // A Lambda proxy integration must return { statusCode }; API Gateway answers 502 otherwise.
      this.logger.warn({ connectionId: conn.id, result }, '$connect returned no valid statusCode, refusing with 502');
      return this.refuse(conn, done, 502, JSON.stringify({ message: 'Internal server error' }));
    }
    if (status >= 300) return this.refuse(conn, done, status, result?.body);

    const protocol = headerValue(result?.headers, 'sec-websocket-protocol');
    if (protocol !== undefined) conn.protocol = protocol.replace(/[\r\n]/g, '');
    if (this.stopping) {
      done(false, 503);
      return this.closed(conn, GOING_AWAY.code, GOING_AWAY.reason);
    }
    done(true); // ws completes the upgrade synchronously and calls onOpen, unless the client already hung up
    if (conn.state === 'connecting') this.closed(conn, 1006, 'Connection closed before the upgrade completed');
  }

  private refuse(conn: Connection, done: (ok: boolean, code?: number, message?: string) => void, status: number, body?: string): void {
    this.connections.delete(conn.id);
    conn.state = 'closed';
    conn.markClosed();
    this.logger.info({ connectionId: conn.id, status }, 'connect refused');
    done(false, status, body || STATUS_CODES[status] || 'Error');
  }

  private onOpen(ws: WebSocket, req: IncomingMessage, socket: Duplex): void {
    const conn = this.byRequest.get(req);
    if (!conn) return void ws.terminate(); // cannot happen: verifyClient always registers first
    // Per-frame limit: see frame-size-guard.ts. Messages that ended before the oversized frame are still handled.
    const guard = new FrameSizeGuard(this.limits.maxFrameBytes, ({ frameBytes, completedMessages }) => {
      this.logger.warn({ connectionId: conn.id, frameBytes, limit: this.limits.maxFrameBytes }, 'frame too large');
      this.beginClose(conn, MESSAGE_TOO_BIG, completedMessages);
    });
    socket.prependListener('data', (chunk: Buffer) => guard.push(chunk));
    this.attach(conn, ws);
  }

  /**
   * A connection that is not a WebSocket: the local XEP-0114 TCP listener (lib/local/component-listener.ts)
   * translates its XML stream into RFC 7395 frames. It goes through $connect offering `protocol`, its messages
   * through the same queue and ingest, posts to it through @connections, exactly as a WebSocket's; `socket`
   * offers the part of a ws WebSocket the gateway uses (send, close, terminate, ping with a pong event, and
   * 'message' and 'close' events). Returns the connection id, or undefined when $connect refused it.
   */
  async attachStream(socket: WebSocket, opts: { sourceIp: string; protocol: string }): Promise<string | undefined> {
    if (this.stopping) return undefined;
    const conn = this.newConnection(opts.sourceIp);
    this.connections.set(conn.id, conn);
    const event: WebSocketEvent = {
      requestContext: this.requestContext(conn, '$connect', 'CONNECT'),
      headers: { 'Sec-WebSocket-Protocol': opts.protocol },
      multiValueHeaders: { 'Sec-WebSocket-Protocol': [opts.protocol] },
      isBase64Encoded: false,
    };
    this.inflight++;
    let result: WebSocketResult | void = undefined;
    try {
      result = await this.opts.handlers.connect(event);
    } catch (err) {
      this.logger.error({ err, connectionId: conn.id, routeKey: '$connect' }, 'handler failed');
    } finally {
      this.settle();
    }
    const status = result?.statusCode;
    if (typeof status !== 'number' || status < 200 || status >= 300 || this.stopping) {
      this.connections.delete(conn.id);
      conn.state = 'closed';
      conn.markClosed();
      this.logger.info({ connectionId: conn.id, status }, 'connect refused');
      return undefined;
    }
    conn.protocol = headerValue(result?.headers, 'sec-websocket-protocol');
    this.attach(conn, socket);
    return conn.id;
  }

  private attach(conn: Connection, ws: WebSocket): void {
    conn.ws = ws;
    conn.state = 'open';
    conn.lastActiveAt = Date.now();

    ws.on('message', (data, isBinary) => this.onMessage(conn, data, isBinary));
    // ws answers pings with pongs itself. A ping counts as activity only with limits.pingResetsIdle (default
    // off): AWS does not document it, so the strict reading is the default — see LocalGatewayLimits.
    ws.on('ping', () => {
      if (this.limits.pingResetsIdle) this.touch(conn);
    });
    ws.on('error', (err: Error & { code?: string }) => {
      // ws has already started the close with the matching code (1009 for maxPayload, 1007 bad UTF-8, 1002 …).
      const code = err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' ? MESSAGE_TOO_BIG.code : err.code === 'WS_ERR_INVALID_UTF8' ? 1007 : 1002;
      if (conn.closeCode === undefined) {
        conn.closeCode = code;
        conn.closeReason = code === MESSAGE_TOO_BIG.code ? MESSAGE_TOO_BIG.reason : err.message;
      }
      conn.acceptUpTo = Math.min(conn.acceptUpTo, conn.received);
      if (conn.state === 'open') {
        conn.state = 'closing';
        conn.timers.push(setTimeout(() => ws.terminate(), CLOSE_GRACE_MS));
      }
      this.logger.warn({ connectionId: conn.id, err: err.message }, 'websocket protocol error');
    });
    ws.on('close', (code, reason) => {
      this.closed(conn, conn.closeCode ?? code, conn.closeReason ?? (reason.toString() || describeClose(code)));
    });

    const idleMs = Math.min(this.limits.idleTimeoutMs, MAX_TIMER_MS);
    const lifetimeMs = Math.min(this.limits.maxDurationMs, MAX_TIMER_MS);
    conn.idleTimer = setTimeout(() => this.beginClose(conn, GOING_AWAY, undefined, 'idle timeout'), idleMs);
    const lifetime = setTimeout(() => this.beginClose(conn, GOING_AWAY, undefined, 'maximum duration'), lifetimeMs);
    conn.timers.push(conn.idleTimer, lifetime);
    this.startHeartbeat(conn, ws);

    this.logger.info({ connectionId: conn.id, sourceIp: conn.sourceIp, protocol: conn.protocol }, 'connect');
    if (this.stopping) this.beginClose(conn, GOING_AWAY);
  }

  /**
   * A connection whose network froze (half-open: no FIN, no RST) looks open until a write times out, which TCP
   * takes many minutes to notice. The gateway pings it (RFC 6455 §5.5.2) and drops it when no pong (§5.5.3)
   * comes back in time (docs/architecture.md "Connections die silently").
   */
  private startHeartbeat(conn: Connection, ws: WebSocket): void {
    ws.on('pong', () => {
      clearTimeout(conn.pongTimer);
      conn.pongTimer = undefined;
    });
    const pinger = setInterval(() => this.ping(conn, ws), Math.min(this.limits.pingIntervalMs, MAX_TIMER_MS));
    conn.timers.push(pinger);
  }

  private ping(conn: Connection, ws: WebSocket): void {
    if (conn.state !== 'open' || conn.pongTimer) return; // one ping in flight at a time
    ws.ping();
    // The verdict waits for setImmediate: after a stalled event loop the timer fires before pending socket
    // reads, and a pong that did arrive in time must be read before the connection is judged dead.
    conn.pongTimer = setTimeout(() => setImmediate(() => this.judgePong(conn, ws)), Math.min(this.limits.pongTimeoutMs, MAX_TIMER_MS));
  }

  private judgePong(conn: Connection, ws: WebSocket): void {
    if (!conn.pongTimer) return; // the pong came
    conn.pongTimer = undefined;
    this.drop(conn, ws, NO_PONG, `no pong within ${this.limits.pongTimeoutMs} ms`);
  }

  /**
   * Ends a connection that cannot take a close handshake (frozen, or not reading): the socket is destroyed at
   * once, and $disconnect follows as for any close. Nothing it sent after this point is handled.
   */
  private drop(conn: Connection, ws: WebSocket, how: { code: number; reason: string }, why: string): void {
    if (conn.state === 'closed') return;
    conn.state = 'closing';
    conn.closeCode ??= how.code;
    conn.closeReason ??= how.reason;
    conn.acceptUpTo = Math.min(conn.acceptUpTo, conn.received);
    this.logger.warn({ connectionId: conn.id, code: how.code, why }, 'dropping connection');
    ws.terminate();
  }

  // ---- WebSocket: $default ----

  private onMessage(conn: Connection, data: RawData, isBinary: boolean): void {
    const index = conn.received++;
    if (index >= conn.acceptUpTo) {
      this.logger.debug({ connectionId: conn.id }, 'frame dropped: connection closing');
      return;
    }
    if (isBinary) {
      // RFC 7395 §3.2: XMPP over WebSocket uses text messages. API Gateway closes a binary one with 1003; neither
      // it nor anything after it is handled (messages before it are).
      this.logger.warn({ connectionId: conn.id }, 'binary frame refused');
      return this.beginClose(conn, UNSUPPORTED_DATA, index, 'binary frame');
    }
    this.touch(conn);
    const bytes = toBuffer(data);
    const context = { ...this.requestContext(conn, '$default', 'MESSAGE'), messageId: apiGatewayId() };
    // What the $default integration sends to SQS (frame-envelope.ts), as Lambda's SQS event source hands it over.
    const record: SqsRecord = {
      messageId: randomUUID(),
      receiptHandle: randomUUID(),
      body: frameEnvelopeBody(context, bytes.toString('utf8')),
      attributes: {
        ApproximateReceiveCount: '1',
        SentTimestamp: String(context.requestTimeEpoch),
        SenderId: 'local',
        ApproximateFirstReceiveTimestamp: String(Date.now()),
        MessageGroupId: conn.id,
        MessageDeduplicationId: context.messageId,
      },
      messageAttributes: {},
      eventSource: 'aws:sqs',
      eventSourceARN: LOCAL_QUEUE_ARN,
      awsRegion: 'local',
    };
    this.logger.debug({ connectionId: conn.id, messageId: context.messageId, bytes: bytes.length }, 'frame');
    conn.queued.push(record);
    // One task per frame; a task takes whatever is queued then (up to a batch), so later tasks may find
    // nothing left. $disconnect, queued behind them all, runs after the last frame.
    this.enqueue(conn, '$default', () => this.deliver(conn));
  }

  /** Hands the connection's oldest queued frames to the ingest, redelivering what it hands back (see header). */
  private async deliver(conn: Connection): Promise<void> {
    // Latency model: the oldest frame reaches the ingest fifoDelayMs after it arrived (frames behind it meanwhile too).
    const due = this.opts.fifoDelayMs && conn.queued.length ? Number(conn.queued[0].attributes.SentTimestamp) + this.opts.fifoDelayMs - Date.now() : 0;
    if (due > 0) await new Promise((resolve) => setTimeout(resolve, due));
    let batch = conn.queued.splice(0, INGEST_BATCH_SIZE);
    while (batch.length > 0) {
      let failures: Set<string>;
      try {
        const res = await this.opts.ingest({ Records: batch });
        failures = new Set(res.batchItemFailures.map((f) => f.itemIdentifier));
      } catch (err) {
        this.logger.error({ err, connectionId: conn.id, routeKey: '$default' }, 'ingest failed: the whole batch is redelivered');
        failures = new Set(batch.map((r) => r.messageId));
      }
      const retry: SqsRecord[] = [];
      for (const record of batch) {
        if (!failures.has(record.messageId)) continue;
        const received = Number(record.attributes.ApproximateReceiveCount ?? '1');
        if (received >= LOCAL_MAX_RECEIVE_COUNT) {
          this.logger.error(
            { connectionId: conn.id, sqsMessageId: record.messageId, receiveCount: received, routeKey: '$default' },
            'frame dead-lettered',
          );
        } else {
          this.logger.warn({ connectionId: conn.id, sqsMessageId: record.messageId, receiveCount: received }, 'frame redelivered');
          retry.push({ ...record, attributes: { ...record.attributes, ApproximateReceiveCount: String(received + 1) } });
        }
      }
      batch = retry;
    }
  }

  private touch(conn: Connection): void {
    conn.lastActiveAt = Date.now();
    conn.idleTimer?.refresh();
  }

  // ---- WebSocket: close and $disconnect ----

  /** Starts a gateway-initiated close. `acceptUpTo` caps how many received messages are still handled. */
  private beginClose(conn: Connection, how: { code: number; reason: string }, acceptUpTo = conn.received, why?: string): void {
    if (conn.state !== 'open' || !conn.ws) return;
    conn.state = 'closing';
    conn.closeCode = how.code;
    conn.closeReason = how.reason;
    conn.acceptUpTo = Math.min(conn.acceptUpTo, acceptUpTo);
    if (why) this.logger.info({ connectionId: conn.id, code: how.code, why }, 'closing connection');
    const ws = conn.ws;
    ws.close(how.code, how.reason);
    conn.timers.push(setTimeout(() => ws.terminate(), CLOSE_GRACE_MS));
  }

  /** The connection is gone (any cause): forget it and queue $disconnect behind its pending frames. */
  private closed(conn: Connection, code: number, reason: string): void {
    if (conn.state === 'closed') return;
    conn.state = 'closed';
    for (const timer of conn.timers) clearTimeout(timer);
    clearTimeout(conn.pongTimer);
    conn.pongTimer = undefined;
    this.connections.delete(conn.id);
    this.logger.info({ connectionId: conn.id, code, reason }, 'disconnect');
    if (!this.opts.dropDisconnect) {
      const event: WebSocketEvent = {
        requestContext: {
          ...this.requestContext(conn, '$disconnect', 'DISCONNECT'),
          disconnectStatusCode: code,
          disconnectReason: reason,
        },
        isBase64Encoded: false,
      };
      this.enqueue(conn, '$disconnect', () => this.opts.handlers.disconnect(event));
    }
    void conn.tail.then(conn.markClosed);
  }

  // ---- per-connection queue ----

  private enqueue(conn: Connection, routeKey: RouteKey, invoke: () => Promise<unknown>): void {
    this.inflight++;
    conn.tail = conn.tail
      .then(invoke)
      .then(
        () => undefined,
        // On AWS the frame is simply lost when the integration fails; the client hears nothing.
        (err: unknown) => this.logger.error({ err, connectionId: conn.id, routeKey }, 'handler failed'),
      )
      .finally(() => this.settle());
  }

  private settle(): void {
    if (--this.inflight > 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }

  // ---- HTTP: @connections management API, then httpRoutes ----

  private async onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const id = this.managementTarget(requestPath(req));
      if (id !== undefined) {
        if (!managementAllowedFrom(req.socket.remoteAddress, req.socket.localAddress)) return this.refuseManagement(req, res);
        return await this.onManagement(req, res, id);
      }
      if (this.opts.httpRoutes && (await this.opts.httpRoutes(req, res))) return;
      if (!res.headersSent) {
        res.writeHead(404, { 'Content-Type': 'text/plain' });
        res.end('Not Found');
      }
    } catch (err) {
      this.logger.error({ err, url: req.url }, 'http request failed');
      if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain' });
      res.end();
    }
  }

  /** The connection id of `/{stage}/@connections/{id}` or `/@connections/{id}`; undefined for other paths. */
  private managementTarget(path: string): string | undefined {
    const m = /^(?:\/([^/]+))?\/@connections\/([^/]+)$/.exec(path);
    if (!m || (m[1] !== undefined && m[1] !== this.stage)) return undefined;
    try {
      return decodeURIComponent(m[2]);
    } catch {
      return undefined;
    }
  }

  /** See managementAllowedFrom: the API has no credentials, so only this machine may use it. */
  private refuseManagement(req: IncomingMessage, res: ServerResponse): void {
    req.resume();
    this.logger.warn({ sourceIp: sourceIp(req), method: req.method, path: requestPath(req) }, '@connections request from another host refused');
    awsError(res, 403, 'ForbiddenException', 'The @connections API answers only this machine');
  }

  /** The connection if it accepts posts: not before $connect has finished, nor once a close has begun (AWS: 410). */
  private live(id: string): Connection | undefined {
    const conn = this.connections.get(id);
    return conn?.state === 'open' && conn.ws ? conn : undefined;
  }

  /**
   * The @connections API for a server in this process (ManagementApi.serveInProcess): the same answers as the
   * HTTP API below, without loopback HTTP. Only this process can call it, so managementAllowedFrom holds.
   */
  inProcessConnections(): InProcessConnections {
    return {
      post: (id, data) => {
        if (data.length > this.limits.maxMessageBytes) {
          throw Object.assign(new Error('Request entity too large'), { name: 'PayloadTooLargeException', $metadata: { httpStatusCode: 413 } });
        }
        const live = this.live(id);
        if (!live?.ws || !this.queueOutbound(live, live.ws, data)) return false;
        this.logger.debug({ connectionId: id, bytes: data.length }, 'post to connection');
        return true;
      },
      close: (id) => {
        const live = this.live(id);
        if (!live) return false;
        this.beginClose(live, DELETED, undefined, 'deleted through @connections');
        return true;
      },
      isAlive: (id) => this.live(id) !== undefined,
    };
  }

  private async onManagement(req: IncomingMessage, res: ServerResponse, id: string): Promise<void> {
    res.setHeader('x-amzn-RequestId', randomUUID());
    const live = this.live(id);
    switch (req.method) {
      case 'POST': {
        const data = await readBody(req, this.limits.maxMessageBytes);
        if (data === undefined) return awsError(res, 413, 'PayloadTooLargeException', 'Request entity too large');
        if (!live?.ws || !this.queueOutbound(live, live.ws, data)) return gone(res);
        this.logger.debug({ connectionId: id, bytes: data.length }, 'post to connection');
        res.writeHead(200, { 'Content-Length': '0' });
        return void res.end();
      }
      case 'GET': {
        req.resume();
        if (!live) return gone(res);
        const body = JSON.stringify({
          connectedAt: new Date(live.connectedAt).toISOString(),
          identity: { sourceIp: live.sourceIp, userAgent: live.userAgent ?? null },
          lastActiveAt: new Date(live.lastActiveAt).toISOString(),
        });
        res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
        return void res.end(body);
      }
      case 'DELETE': {
        req.resume();
        if (!live) return gone(res);
        this.beginClose(live, DELETED, undefined, 'deleted through @connections');
        res.writeHead(204);
        return void res.end();
      }
      default:
        req.resume();
        return awsError(res, 403, 'ForbiddenException', 'Forbidden');
    }
  }

  /**
   * Queues one post on the connection's socket and returns at once: a post never waits for the recipient to read,
   * so a client that reads slowly or not at all cannot hold up the frames of those who send to it. A connection
   * whose unsent bytes would pass maxOutboundBufferBytes is dropped instead, and false (410 Gone) tells the server
   * to end its session, so this stanza and later ones take the undeliverable path.
   */
  private queueOutbound(conn: Connection, ws: WebSocket, data: Buffer): boolean {
    if (ws.readyState !== ws.OPEN) return false; // the client has begun a close
    if (ws.bufferedAmount + data.length > this.limits.maxOutboundBufferBytes) {
      this.drop(conn, ws, SLOW_READER, `${ws.bufferedAmount} bytes unsent, limit ${this.limits.maxOutboundBufferBytes}`);
      return false;
    }
    ws.send(data, { binary: false });
    return true;
  }

  // ---- event shape ----

  private newConnection(ip: string, userAgent?: string): Connection {
    let id = apiGatewayId();
    while (this.connections.has(id)) id = apiGatewayId();
    const now = Date.now();
    let markClosed!: () => void;
    const closed = new Promise<void>((resolve) => (markClosed = resolve));
    return {
      id,
      state: 'connecting',
      connectedAt: now,
      lastActiveAt: now,
      sourceIp: ip,
      userAgent,
      tail: Promise.resolve(),
      queued: [],
      received: 0,
      acceptUpTo: Infinity,
      timers: [],
      closed,
      markClosed,
    };
  }

  private requestContext(conn: Connection, routeKey: RouteKey, eventType: EventType): WebSocketRequestContext {
    const now = Date.now();
    return {
      routeKey,
      eventType,
      connectionId: conn.id,
      messageDirection: 'IN',
      requestId: apiGatewayId(),
      extendedRequestId: apiGatewayId(),
      requestTime: apiGatewayTime(now),
      requestTimeEpoch: now,
      connectedAt: conn.connectedAt,
      domainName: this.domainName,
      stage: this.stage,
      apiId: 'local',
      identity: conn.userAgent === undefined ? { sourceIp: conn.sourceIp } : { sourceIp: conn.sourceIp, userAgent: conn.userAgent },
    };
  }
}

// ---- helpers ----

const ALPHANUMERIC = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/**
 * Random bytes for ids, drawn from a pool filled 4 KiB at a time: three ids per frame each asking the system
 * for 11 bytes was about 1% of the local server's CPU per 1:1 message (README "Against Prosody and ejabberd").
 */
const idPool = { bytes: Buffer.alloc(4096), at: 4096 };
function poolBytes(n: number): Buffer {
  if (idPool.at + n > idPool.bytes.length) (randomFillSync(idPool.bytes), (idPool.at = 0));
  return idPool.bytes.subarray(idPool.at, (idPool.at += n));
}

/** An id shaped like API Gateway's connection, request and message ids: 16 chars, e.g. 'L0SM9cOFvHcCIhw='. */
export function apiGatewayId(): string {
  let id = '';
  // 15 letters and digits (a byte modulo 62: the slight bias does not matter for ids that are not secrets).
  for (const b of poolBytes(15)) id += ALPHANUMERIC[b % ALPHANUMERIC.length];
  return id + '=';
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** requestContext.requestTime, e.g. '25/Nov/2026:16:28:04 +0000'. */
export function apiGatewayTime(epochMs: number): string {
  const d = new Date(epochMs);
  const p = (n: number) => String(n).padStart(2, '0');
  return (
    `${p(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:` +
    `${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`
  );
}

/** 'sec-websocket-protocol' → 'Sec-WebSocket-Protocol', 'x-amzn-trace-id' → 'X-Amzn-Trace-Id'. */
function canonicalHeaderName(name: string): string {
  return name
    .toLowerCase()
    .split('-')
    .map((part) => (part === 'websocket' ? 'WebSocket' : part.charAt(0).toUpperCase() + part.slice(1)))
    .join('-');
}

function connectHeaders(req: IncomingMessage, ip: string): Pick<WebSocketEvent, 'headers' | 'multiValueHeaders'> {
  const multiValueHeaders: Record<string, string[]> = {};
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    (multiValueHeaders[canonicalHeaderName(req.rawHeaders[i])] ??= []).push(req.rawHeaders[i + 1]);
  }
  // What API Gateway's edge adds for the integration.
  const forwarded = multiValueHeaders['X-Forwarded-For'];
  multiValueHeaders['X-Forwarded-For'] = [forwarded ? `${forwarded.join(', ')}, ${ip}` : ip];
  multiValueHeaders['X-Forwarded-Port'] = [String(req.socket.localPort ?? '')];
  multiValueHeaders['X-Forwarded-Proto'] = ['http'];
  const headers: Record<string, string> = {};
  for (const [name, values] of Object.entries(multiValueHeaders)) headers[name] = values[values.length - 1];
  return { headers, multiValueHeaders };
}

function queryParameters(req: IncomingMessage): Pick<WebSocketEvent, 'queryStringParameters' | 'multiValueQueryStringParameters'> {
  const q = (req.url ?? '').indexOf('?');
  if (q < 0 || q === (req.url ?? '').length - 1) return {};
  const params = new URLSearchParams((req.url ?? '').slice(q + 1));
  const multi: Record<string, string[]> = {};
  for (const [name, value] of params) (multi[name] ??= []).push(value);
  const single: Record<string, string> = {};
  for (const [name, values] of Object.entries(multi)) single[name] = values[values.length - 1];
  return { queryStringParameters: single, multiValueQueryStringParameters: multi };
}

function headerValue(headers: Record<string, string> | undefined, lowerName: string): string | undefined {
  if (!headers) return undefined;
  for (const [name, value] of Object.entries(headers)) if (name.toLowerCase() === lowerName) return String(value);
  return undefined;
}

function requestPath(req: IncomingMessage): string {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

function sourceIp(req: IncomingMessage): string {
  return unmapIPv4(req.socket.remoteAddress ?? '');
}

/**
 * Whether an @connections request may be served. The local management API checks no credentials (see the header),
 * so it answers only requests from this machine, whatever address the gateway listens on: from a loopback address,
 * or from the address the request arrived at (the server posting to its own gateway on `--host <LAN address>`).
 */
export function managementAllowedFrom(remoteAddress: string | undefined, localAddress: string | undefined): boolean {
  if (!remoteAddress) return false;
  const remote = unmapIPv4(remoteAddress);
  if (remote === '::1' || /^127\.\d+\.\d+\.\d+$/.test(remote)) return true;
  return localAddress !== undefined && remote === unmapIPv4(localAddress);
}

/** '::ffff:10.0.0.5' → '10.0.0.5' (an IPv4 peer on a dual-stack socket). */
function unmapIPv4(addr: string): string {
  return addr.startsWith('::ffff:') ? addr.slice(7) : addr;
}

function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '::') return 'localhost';
  return host.includes(':') ? `[${host}]` : host;
}

function describeClose(code: number): string {
  switch (code) {
    case 1005:
      return 'Client-side close frame status not set';
    case 1006:
      return 'Connection closed abnormally';
    default:
      return STATUS_CODES_WS[code] ?? '';
  }
}

const STATUS_CODES_WS: Record<number, string> = {
  1000: 'Normal closure',
  1001: 'Going away',
  1002: 'Protocol error',
  1003: 'Unsupported data',
  1007: 'Invalid frame payload data',
  1008: 'Policy violation',
  1009: 'Message too big',
  1011: 'Internal error',
};

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

function rejectUpgrade(socket: Duplex, status: number): void {
  const text = STATUS_CODES[status] ?? 'Error';
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`);
}

/** The request body, or undefined once it exceeds `limit` bytes (the rest is drained and discarded). */
async function readBody(req: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size <= limit) chunks.push(chunk);
  }
  return size > limit ? undefined : Buffer.concat(chunks);
}

/** An error the SDK's rest-json protocol maps by x-amzn-errortype (GoneException → err.name 'GoneException'). */
function awsError(res: ServerResponse, status: number, type: string, message: string | null): void {
  const body = JSON.stringify({ message });
  res.writeHead(status, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(body),
    'x-amzn-errortype': type,
  });
  res.end(body);
}

function gone(res: ServerResponse): void {
  awsError(res, 410, 'GoneException', null);
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
