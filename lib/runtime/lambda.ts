// The Lambda side of the wiring (docs/architecture.md "The path of one frame"): each entry point in
// functions/ builds one XmppServer per container from its environment ($connect and $disconnect at
// module scope, the others at their first event so tests can import them) and exports a handler that
// delegates to it. Nothing here survives an invocation that must (docs/architecture.md "State").
//
// Environment: TABLE_NAME (required), MANAGEMENT_ENDPOINT (optional: the @connections endpoint of a
// custom domain; default https://{domainName}/{stage} of each event), LOG_LEVEL (default info).
import { pino } from 'pino';
import pkg from '../../package.json' with { type: 'json' };
import { ManagementApi } from '../core/management-api.ts';
import { XmppServer } from '../core/server.ts';
import { defaultModules } from '../extensions/index.ts';
import { BOSH_SCHEME, BoshTransport } from '../gateway/bosh/endpoint.ts';
import { boshModule } from '../gateway/bosh/module.ts';
import { BoshSessionStore } from '../store/bosh-sessions.ts';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { awsEndpointOf, createWebSocketHandlers, type EndpointOf, type WebSocketHandlers } from '../gateway/websocket-handlers.ts';
import { createDynamoClient } from '../store/dynamo.ts';

export const VERSION: string = pkg.version;

export interface LambdaRuntime {
  server: XmppServer;
  handlers: WebSocketHandlers;
  /** BOSH sessions' items (docs/architecture.md "BOSH"); posts to `bosh:` endpoints go there. */
  boshStore: BoshSessionStore;
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

  // No endpoint and no credentials: the Lambda role's, through the default provider chain.
  const db = createDynamoClient({ region: env.AWS_REGION });
  // A post to a BOSH session held in another region writes its queue in that region's replica.
  const regional = new Map<string, DynamoDBDocumentClient>();
  const dbOfRegion = (region: string) => {
    if (region === env.AWS_REGION || !/^[a-z]{2}(-[a-z]+)+-\d$/.test(region)) return db;
    let client = regional.get(region);
    if (!client) regional.set(region, (client = createDynamoClient({ region })));
    return client;
  };
  const boshStore = new BoshSessionStore(db, table, dbOfRegion);
  const server: XmppServer = new XmppServer({
    db,
    table,
    management: new ManagementApi({ transports: { [BOSH_SCHEME]: new BoshTransport(boshStore, (): number => server.clock.now()) } }),
    // Synchronous writes: a container may be frozen right after the handler returns.
    logger: pino({ level }, pino.destination({ dest: 1, sync: true })),
    modules: [...defaultModules, boshModule(boshStore)],
    version: VERSION,
    // The region a BOSH session records (bosh:<region>) and the sweeper's partitions: the given env's.
    region: env.AWS_REGION,
  });
  return { server, boshStore, handlers: createWebSocketHandlers(server, endpointOf), endpointOf, table };
}
