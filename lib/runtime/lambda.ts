// The Lambda side of the wiring (DESIGN.md "The path of one frame"): each entry point in functions/
// builds one XmppServer per container from its environment (the WebSocket routes at module scope, the
// others at their first event so tests can import them) and exports a handler that delegates to it. Nothing here survives an invocation that must (DESIGN.md "State").
//
// Environment: TABLE_NAME (required), MANAGEMENT_ENDPOINT (optional: the @connections endpoint of a
// custom domain; default https://{domainName}/{stage} of each event), LOG_LEVEL (default info).
import { pino } from 'pino';
import pkg from '../../package.json' with { type: 'json' };
import { ManagementApi } from '../core/management-api.ts';
import { XmppServer } from '../core/server.ts';
import { defaultExtensions, settingBlocks } from '../extensions/index.ts';
import { awsEndpointOf, createWebSocketHandlers, type EndpointOf, type WebSocketHandlers } from '../gateway/websocket-handlers.ts';
import { createDynamoClient } from '../store/dynamo.ts';

export const VERSION: string = pkg.version;

export interface LambdaRuntime {
  server: XmppServer;
  handlers: WebSocketHandlers;
  endpointOf: EndpointOf;
  table: string;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export function createLambdaRuntime(env: Record<string, string | undefined> = process.env): LambdaRuntime {
  const table = env.TABLE_NAME?.trim();
  if (!table) throw new Error('TABLE_NAME is not set: the function needs the name of the DynamoDB table in its environment');
  const level = env.LOG_LEVEL?.trim() || 'info';
  if (!LOG_LEVELS.includes(level)) throw new Error(`LOG_LEVEL "${level}" is not one of ${LOG_LEVELS.join(', ')}`);
  const managementEndpoint = env.MANAGEMENT_ENDPOINT?.trim();
  const endpointOf: EndpointOf = managementEndpoint ? () => managementEndpoint : awsEndpointOf;

  const server = new XmppServer({
    // No endpoint and no credentials: the Lambda role's, through the default provider chain.
    db: createDynamoClient({ region: env.AWS_REGION }),
    table,
    management: new ManagementApi(),
    // Synchronous writes: a container may be frozen right after the handler returns.
    logger: pino({ level }, pino.destination({ dest: 1, sync: true })),
    extensions: defaultExtensions,
    settingBlocks,
    version: VERSION,
  });
  return { server, handlers: createWebSocketHandlers(server, endpointOf), endpointOf, table };
}
