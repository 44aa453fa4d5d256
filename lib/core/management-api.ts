// Pushes frames to WebSocket connections through the API Gateway Management API, in whichever
// region the connection lives (a session records its endpoint). Locally the gateway serves the same
// API, so the real client is used in both places.
import {
  ApiGatewayManagementApiClient,
  DeleteConnectionCommand,
  GetConnectionCommand,
  PostToConnectionCommand,
} from '@aws-sdk/client-apigatewaymanagementapi';
import type { CallCounter } from './call-counter.ts';

/** Where a frame goes: a connection id and the management endpoint of its region. */
export interface ConnectionTarget {
  connectionId: string;
  endpoint: string;
}

export interface ManagementApiOptions {
  /** Local gateways accept any credentials; in AWS the Lambda role's are used. */
  localCredentials?: boolean;
  counter?: CallCounter;
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

  /** Sends one text frame. Returns false if the connection is gone (410). */
  async post(target: ConnectionTarget, data: string): Promise<boolean> {
    try {
      await this.client(target.endpoint).send(
        new PostToConnectionCommand({ ConnectionId: target.connectionId, Data: Buffer.from(data, 'utf8') }),
      );
      return true;
    } catch (err) {
      if (isGone(err)) return false;
      throw err;
    }
  }

  /** Closes the connection; false if it was already gone. */
  async close(target: ConnectionTarget): Promise<boolean> {
    try {
      await this.client(target.endpoint).send(new DeleteConnectionCommand({ ConnectionId: target.connectionId }));
      return true;
    } catch (err) {
      if (isGone(err)) return false;
      throw err;
    }
  }

  /** Asks the gateway whether the connection is still open. */
  async isAlive(target: ConnectionTarget): Promise<boolean> {
    try {
      await this.client(target.endpoint).send(new GetConnectionCommand({ ConnectionId: target.connectionId }));
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
