// Pushes frames to WebSocket connections through the API Gateway Management API, in whichever
// region the connection lives (a session records its endpoint). Locally the gateway serves the same
// API over HTTP, and the real client is used for every endpoint but the local gateway's own: that one is
// answered in-process (inProcess), as its HTTP API would answer, with no loopback HTTP or signing
// (docs/architecture.md "Local runtime").
import {
  ApiGatewayManagementApiClient,
  DeleteConnectionCommand,
  GetConnectionCommand,
  PostToConnectionCommand,
} from '@aws-sdk/client-apigatewaymanagementapi';
import type { CallCounter } from '../store/call-counter.ts';

/** Where a frame goes: a connection id and the management endpoint of its region. */
export interface ConnectionTarget {
  connectionId: string;
  endpoint: string;
}

/**
 * Another transport's connections (BOSH: docs/architecture.md "BOSH"), reached by the same three calls
 * as a WebSocket connection; its targets' endpoints start with the scheme it is registered under.
 */
export interface ConnectionTransport {
  post(target: ConnectionTarget, data: string): Promise<boolean>;
  close(target: ConnectionTarget): Promise<boolean>;
  isAlive(target: ConnectionTarget): Promise<boolean>;
}

/**
 * The @connections operations of a gateway in this process (the local gateway's own endpoint): what its HTTP API
 * answers, called directly. Each returns false where the HTTP API answers 410 Gone.
 */
export interface InProcessConnections {
  /** Throws a PayloadTooLargeException (as the HTTP API's 413) for a frame over the message limit. */
  post(connectionId: string, data: Buffer): boolean;
  close(connectionId: string): boolean;
  isAlive(connectionId: string): boolean;
}

export interface ManagementApiOptions {
  /** Local gateways accept any credentials; in AWS the Lambda role's are used. */
  localCredentials?: boolean;
  counter?: CallCounter;
  /** Transports other than API Gateway's @connections, by endpoint scheme ('bosh:'). */
  transports?: Record<string, ConnectionTransport>;
  /** The latency model (README "Latency model"): added to each in-process call, standing for API Gateway. */
  inProcessDelayMs?: number;
  /** A tracer of every call (X-Ray when TRACING is on: a subsegment per post). */
  tracer?: { attach(client: unknown, service: string): void };
}

const isGone = (err: unknown) => (err as { name?: string })?.name === 'GoneException';

export class ManagementApi {
  private clients = new Map<string, ApiGatewayManagementApiClient>();
  private inProcess = new Map<string, InProcessConnections>();

  constructor(private readonly opts: ManagementApiOptions = {}) {}

  /**
   * Answers `endpoint` in-process from now on (the local server's own gateway, once its address is known).
   * The call counter still counts each call under the command the SDK would have sent, so costs stay the same.
   */
  serveInProcess(endpoint: string, connections: InProcessConnections): void {
    this.inProcess.set(endpoint, connections);
  }

  private client(endpoint: string): ApiGatewayManagementApiClient {
    let client = this.clients.get(endpoint);
    if (!client) {
      client = new ApiGatewayManagementApiClient({
        endpoint,
        region: regionOf(endpoint),
        ...(this.opts.localCredentials ? { credentials: { accessKeyId: 'local', secretAccessKey: 'local' } } : {}),
      });
      this.opts.counter?.attach(client, 'management');
      this.opts.tracer?.attach(client, 'management');
      this.clients.set(endpoint, client);
    }
    return client;
  }

  /** The transport of a target whose endpoint is not an @connections URL. */
  private transportOf(target: ConnectionTarget): ConnectionTransport | undefined {
    const scheme = /^[a-z]+:/.exec(target.endpoint)?.[0];
    return scheme ? this.opts.transports?.[scheme] : undefined;
  }

  /** Sends one text frame. Returns false if the connection is gone (410). */
  post(target: ConnectionTarget, data: string): Promise<boolean> {
    const other = this.transportOf(target);
    if (other) return other.post(target, data);
    const local = this.inProcess.get(target.endpoint);
    if (local) return this.locally('PostToConnectionCommand', () => local.post(target.connectionId, Buffer.from(data, 'utf8')));
    return this.unlessGone(target, (c) => c.send(new PostToConnectionCommand({ ConnectionId: target.connectionId, Data: Buffer.from(data, 'utf8') })));
  }

  /** Closes the connection; false if it was already gone. */
  close(target: ConnectionTarget): Promise<boolean> {
    const other = this.transportOf(target);
    if (other) return other.close(target);
    const local = this.inProcess.get(target.endpoint);
    if (local) return this.locally('DeleteConnectionCommand', () => local.close(target.connectionId));
    return this.unlessGone(target, (c) => c.send(new DeleteConnectionCommand({ ConnectionId: target.connectionId })));
  }

  /** Asks the gateway whether the connection is still open. */
  isAlive(target: ConnectionTarget): Promise<boolean> {
    const other = this.transportOf(target);
    if (other) return other.isAlive(target);
    const local = this.inProcess.get(target.endpoint);
    if (local) return this.locally('GetConnectionCommand', () => local.isAlive(target.connectionId));
    return this.unlessGone(target, (c) => c.send(new GetConnectionCommand({ ConnectionId: target.connectionId })));
  }

  /** One in-process call, counted as the SDK command it stands for; a throw becomes a rejection. */
  private async locally(command: string, call: () => boolean): Promise<boolean> {
    this.opts.counter?.count('management', command);
    if (this.opts.inProcessDelayMs) await new Promise((resolve) => setTimeout(resolve, this.opts.inProcessDelayMs));
    return call();
  }

  /** Runs one command against the connection's endpoint: true if it succeeded, false on 410 Gone. */
  private async unlessGone(target: ConnectionTarget, call: (client: ApiGatewayManagementApiClient) => Promise<unknown>): Promise<boolean> {
    try {
      await call(this.client(target.endpoint));
      return true;
    } catch (err) {
      if (isGone(err)) return false;
      throw err;
    }
  }
}

/** execute-api endpoints name their region (https://id.execute-api.eu-west-1.amazonaws.com/stage). */
function regionOf(endpoint: string): string {
  return /execute-api\.([a-z0-9-]+)\.amazonaws\.com/.exec(endpoint)?.[1] ?? process.env.AWS_REGION ?? 'local';
}
