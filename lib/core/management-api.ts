// Pushes frames to WebSocket connections through the API Gateway Management API, in whichever
// region the connection lives (a session records its endpoint). Locally the gateway serves the same
// API, so the real client is used in both places.
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

export interface ManagementApiOptions {
  /** Local gateways accept any credentials; in AWS the Lambda role's are used. */
  localCredentials?: boolean;
  counter?: CallCounter;
  /** Transports other than API Gateway's @connections, by endpoint scheme ('bosh:'). */
  transports?: Record<string, ConnectionTransport>;
}

const isGone = (err: unknown) => (err as { name?: string })?.name === 'GoneException';

export class ManagementApi {
  private clients = new Map<string, ApiGatewayManagementApiClient>();

  constructor(private readonly opts: ManagementApiOptions = {}) {}

  private client(endpoint: string): ApiGatewayManagementApiClient {
    let client = this.clients.get(endpoint);
    if (!client) {
      client = new ApiGatewayManagementApiClient({
        endpoint,
        region: regionOf(endpoint),
        ...(this.opts.localCredentials ? { credentials: { accessKeyId: 'local', secretAccessKey: 'local' } } : {}),
      });
      this.opts.counter?.attach(client, 'management');
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
    return this.unlessGone(target, (c) => c.send(new PostToConnectionCommand({ ConnectionId: target.connectionId, Data: Buffer.from(data, 'utf8') })));
  }

  /** Closes the connection; false if it was already gone. */
  close(target: ConnectionTarget): Promise<boolean> {
    const other = this.transportOf(target);
    if (other) return other.close(target);
    return this.unlessGone(target, (c) => c.send(new DeleteConnectionCommand({ ConnectionId: target.connectionId })));
  }

  /** Asks the gateway whether the connection is still open. */
  isAlive(target: ConnectionTarget): Promise<boolean> {
    const other = this.transportOf(target);
    if (other) return other.isAlive(target);
    return this.unlessGone(target, (c) => c.send(new GetConnectionCommand({ ConnectionId: target.connectionId })));
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
