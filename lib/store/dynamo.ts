// The DynamoDB client and the single table's layout. Every key carries the tenant (the XMPP domain),
// directly or inside a bare JID, so no read can cross tenants (docs/architecture.md "Data").
import { DynamoDBClient, type CreateTableCommandInput, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, QueryCommand, type QueryCommandInput } from '@aws-sdk/lib-dynamodb';
import type { CallCounter } from './call-counter.ts';

export interface DynamoOptions {
  endpoint?: string;
  region?: string;
  /** Local dynalite accepts any credentials; in AWS the default provider chain is used. */
  localCredentials?: boolean;
  counter?: CallCounter;
  /** Another observer of every command (the metrics registry counts DynamoDB calls per tenant). */
  metrics?: { attach(client: unknown, service: string): void };
  /**
   * Where requests go instead of HTTPS: the local server's in-process dynalite (InProcessDynamoHandler). Requests
   * are then not signed (nothing checks a signature in-process); everything else is the SDK as in AWS.
   */
  requestHandler?: DynamoDBClientConfig['requestHandler'];
  /** A tracer of every command (X-Ray when TRACING is on: a subsegment per call). */
  tracer?: { attach(client: unknown, service: string): void };
}

export function createDynamoClient(opts: DynamoOptions = {}): DynamoDBDocumentClient {
  const client = new DynamoDBClient({
    region: opts.region ?? process.env.AWS_REGION ?? 'local',
    ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
    ...(opts.localCredentials ? { credentials: { accessKeyId: 'local', secretAccessKey: 'local' } } : {}),
    maxAttempts: 3,
    ...(opts.requestHandler ? { requestHandler: opts.requestHandler } : {}),
  });
  // In-process, the HTTP-only steps do nothing useful: no signature to check, no headers to carry.
  if (opts.requestHandler) for (const step of IN_PROCESS_NEEDLESS) client.middlewareStack.remove(step);
  opts.counter?.attach(client, 'dynamodb');
  opts.metrics?.attach(client, 'dynamodb');
  opts.tracer?.attach(client, 'dynamodb');
  return withHandlerCache(DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } }));
}

/** What withHandlerCache reads of a Document client command (its wrapped low-level command and marshalling step). */
interface DocumentCommand {
  clientCommand: { middlewareStack: unknown; resolveMiddleware(stack: unknown, config: unknown, options: undefined): Handler };
  middlewareStack: unknown;
  addMarshallingMiddleware(config: unknown): void;
}
type Handler = (command: unknown) => Promise<{ output: unknown }>;

/**
 * The SDK builds a command's middleware stack on every call (sorting, resolving relative steps, one closure per
 * middleware); its own cache (`cacheMiddleware`) is refused by the Document client, whose handler keeps the first
 * command's input. This caches, per Document command class, the handler of the low-level command it wraps (the
 * client's whole stack with the Document client's marshalling), built once as the Document client builds it each
 * time, and calls it with each command's own low-level command: the same middleware in the same order (call
 * counter, metrics, X-Ray, retries, serde), as the SDK's cache does for a low-level client. A change to the client's
 * middleware stack (a middleware added later) empties the cache; a call with options goes the SDK's way.
 */
function withHandlerCache(doc: DynamoDBDocumentClient): DynamoDBDocumentClient {
  const handlers = new Map<unknown, Handler>();
  const stack = doc.middlewareStack as unknown as Record<string, (...args: unknown[]) => unknown>;
  for (const method of ['add', 'addRelativeTo', 'remove', 'removeByTag', 'use']) {
    const original = stack[method].bind(stack);
    stack[method] = (...args: unknown[]) => {
      handlers.clear();
      return original(...args);
    };
  }
  const send = doc.send.bind(doc) as (...args: unknown[]) => unknown;
  (doc as { send: unknown }).send = (command: DocumentCommand, ...rest: unknown[]) => {
    if (rest.length || !command?.clientCommand || typeof command.addMarshallingMiddleware !== 'function') return send(command, ...rest);
    let handler = handlers.get(command.constructor);
    if (!handler) {
      command.addMarshallingMiddleware(doc.config);
      handler = command.clientCommand.resolveMiddleware(doc.middlewareStack.concat(command.middlewareStack as never), doc.config, undefined);
      handlers.set(command.constructor, handler);
    }
    return handler(command.clientCommand).then((result) => result.output);
  };
  return doc;
}

/**
 * Middleware of the SDK's client that only matter on the wire (removed for an in-process request handler). The
 * retry step too: the in-process dynalite neither throttles nor drops a connection, and the step's per-call work
 * (a retry token, an invocation id) was about 7% of a call's CPU (README "Against Prosody and ejabberd"); in AWS
 * the client keeps it (3 attempts).
 */
const IN_PROCESS_NEEDLESS = ['retryMiddleware', 'httpSigningMiddleware', 'getUserAgentMiddleware', 'hostHeaderMiddleware', 'recursionDetectionMiddleware', 'loggerMiddleware'];

/**
 * Index the sweeper reads (`sweep` / `checkAt`): connections whose liveness is due for a check, and every
 * other item with a due time (detached XEP-0198 sessions, webhook retries, inactive BOSH sessions).
 */
export const SWEEP_INDEX = 'bySweep';
/**
 * Index of items by tenant (sparse: only items that carry a `tenant` attribute, today the open
 * connections), so a tenant's live sessions can be found and closed when it is disabled or deleted.
 */
export const TENANT_INDEX = 'byTenant';
/** Connections are spread over a few sweep partitions so no GSI partition gets hot. */
export const SWEEP_SHARDS = 8;

/**
 * The table, declared once for dynalite and for the CDK stack. All indexes are declared here at
 * creation: dynalite cannot add a GSI later (docs/architecture.md "Data").
 */
export function tableDefinition(tableName: string): CreateTableCommandInput {
  return {
    TableName: tableName,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [
      { AttributeName: 'pk', AttributeType: 'S' },
      { AttributeName: 'sk', AttributeType: 'S' },
      { AttributeName: 'sweep', AttributeType: 'S' },
      { AttributeName: 'checkAt', AttributeType: 'N' },
      { AttributeName: 'tenant', AttributeType: 'S' },
    ],
    KeySchema: [
      { AttributeName: 'pk', KeyType: 'HASH' },
      { AttributeName: 'sk', KeyType: 'RANGE' },
    ],
    GlobalSecondaryIndexes: [
      {
        IndexName: SWEEP_INDEX,
        KeySchema: [
          { AttributeName: 'sweep', KeyType: 'HASH' },
          { AttributeName: 'checkAt', KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'ALL' },
      },
      {
        IndexName: TENANT_INDEX,
        KeySchema: [
          { AttributeName: 'tenant', KeyType: 'HASH' },
          { AttributeName: 'pk', KeyType: 'RANGE' },
        ],
        // `sweep` names the region holding a connection, so each region closes only its own.
        Projection: { ProjectionType: 'INCLUDE', NonKeyAttributes: ['sweep'] },
      },
    ],
  };
}

/** Expiry attribute: epoch seconds, the table's TTL attribute in AWS; reads also enforce it in code. */
export const TTL_ATTRIBUTE = 'ttl';

export function ttlFrom(expiresAtMs: number): number {
  return Math.ceil(expiresAtMs / 1000);
}

export function isConditionFailure(err: unknown): boolean {
  return (err as { name?: string })?.name === 'ConditionalCheckFailedException';
}

/**
 * Items of one partition of the sweep index whose `checkAt` is at or before `now`, earliest first: one
 * Query (of at most `limit` items; what is left waits for the next sweep).
 */
export async function dueInSweep(db: DynamoDBDocumentClient, table: string, partition: string, now: number, limit: number): Promise<Record<string, unknown>[]> {
  const res = await db.send(
    new QueryCommand({
      TableName: table,
      IndexName: SWEEP_INDEX,
      KeyConditionExpression: '#s = :s AND #c <= :now',
      ExpressionAttributeNames: { '#s': 'sweep', '#c': 'checkAt' },
      ExpressionAttributeValues: { ':s': partition, ':now': now },
      Limit: limit,
    }),
  );
  return res.Items ?? [];
}

/** Every item a Query returns, following LastEvaluatedKey through all pages. */
export async function queryAll(db: DynamoDBDocumentClient, input: Omit<QueryCommandInput, 'ExclusiveStartKey'>): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const res = await db.send(new QueryCommand({ ...input, ExclusiveStartKey: start }));
    items.push(...(res.Items ?? []));
    start = res.LastEvaluatedKey;
  } while (start);
  return items;
}

/** Every item of one partition (optionally only some attributes). */
export function partitionItems(db: DynamoDBDocumentClient, table: string, pk: string, projection?: string): Promise<Record<string, unknown>[]> {
  return queryAll(db, {
    TableName: table,
    KeyConditionExpression: 'pk = :pk',
    ExpressionAttributeValues: { ':pk': pk },
    ...(projection ? { ProjectionExpression: projection } : {}),
  });
}
