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

export interface ManagementApiOptions {
  /** Local gateways accept any credentials; in AWS the Lambda role's are used. */
  localCredentials?: boolean;
  counter?: CallCounter;
  /** A tracer of every call (X-Ray when TRACING is on: a subsegment per post). */
  tracer?: { attach(client: unknown, service: string): void };
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
      this.opts.tracer?.attach(client, 'management');
      this.clients.set(endpoint, client);
    }
    return client;
  }

  /** Sends one text frame. Returns false if the connection is gone (410). */
  post(target: ConnectionTarget, data: string): Promise<boolean> {
    return this.unlessGone(target, (c) => c.send(new PostToConnectionCommand({ ConnectionId: target.connectionId, Data: Buffer.from(data, 'utf8') })));
  }

  /** Closes the connection; false if it was already gone. */
  close(target: ConnectionTarget): Promise<boolean> {
    return this.unlessGone(target, (c) => c.send(new DeleteConnectionCommand({ ConnectionId: target.connectionId })));
  }

  /** Asks the gateway whether the connection is still open. */
  isAlive(target: ConnectionTarget): Promise<boolean> {
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
