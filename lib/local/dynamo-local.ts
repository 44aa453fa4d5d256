// The embedded DynamoDB for laptops and tests: dynalite on its own loopback port, on disk under
// .data/ or in memory, reached only through the real AWS SDK like DynamoDB itself. The server's own
// clients hand their requests to dynalite in-process (InProcessDynamoHandler): the SDK still builds,
// serializes and parses each call as in AWS, without loopback HTTP and signing (docs/architecture.md
// "Local runtime").
import { EventEmitter } from 'node:events';
import { mkdirSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CreateTableCommand, type CreateTableCommandInput, DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import dynalite from 'dynalite';
import { tableDefinition } from '../store/dynamo.ts';

export interface LocalDynamo {
  endpoint: string;
  /** A request handler for DynamoDBClient that reaches this dynalite in-process (InProcessDynamoHandler). */
  requestHandler: InProcessDynamoHandler;
  close(): Promise<void>;
}

/**
 * Starts dynalite. `path` undefined = in memory. `port` has no default: 0 (any free port) is what tests and
 * tools want, and only `npm start` listens on its fixed 8000 (a default here let a test take 8000 and collide).
 */
export async function startDynalite(opts: { host?: string; port: number; path?: string }): Promise<LocalDynamo> {
  if (opts.path) mkdirSync(opts.path, { recursive: true });
  const server = dynalite({ path: opts.path, createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  const host = opts.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const httpHandler = server.listeners('request')[0] as DynaliteHttpHandler;
  return {
    endpoint: `http://${host}:${port}`,
    requestHandler: new InProcessDynamoHandler(httpHandler),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/**
 * Creates a table if it is missing (the local equivalent of the CDK stack's table): by default the main
 * table; `define` gives another one, e.g. frameClaimsTableDefinition for the ingest's frame claims.
 */
export async function ensureTable(
  endpoint: string,
  tableName: string,
  define: (tableName: string) => CreateTableCommandInput = tableDefinition,
): Promise<void> {
  const client = new DynamoDBClient({ endpoint, region: 'local', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
  try {
    await client.send(new DescribeTableCommand({ TableName: tableName }));
  } catch (err) {
    if ((err as { name?: string }).name !== 'ResourceNotFoundException') throw err;
    try {
      await client.send(new CreateTableCommand(define(tableName)));
    } catch (createErr) {
      // Another process (a second local region on the same DynamoDB) created it in the meantime.
      if ((createErr as { name?: string }).name !== 'ResourceInUseException') throw createErr;
    }
  } finally {
    client.destroy();
  }
}

type DynaliteHttpHandler = (req: IncomingMessage, res: ServerResponse) => void;

/** The parts of a smithy HttpRequest this handler reads. */
interface SerializedRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: unknown;
}

/**
 * A smithy request handler (DynamoDBClient's `requestHandler`) that hands each serialized request to dynalite's
 * HTTP handler in the same process, with a request and response object of its own instead of a socket. The SDK
 * does everything else as against DynamoDB (serialization, retries, error parsing); the request is not signed
 * (createDynamoClient drops the signing middleware when given a request handler), and dynalite, which checks only that an
 * Authorization header is present and shaped like SigV4, gets a fixed one.
 */
export class InProcessDynamoHandler {
  readonly metadata = { handlerProtocol: 'in-process' };
  /** The latency model (README "Latency model"): added to each call, standing for the network and DynamoDB. */
  delayMs = 0;
  constructor(private readonly dynalite: DynaliteHttpHandler) {}

  async handle(request: SerializedRequest): Promise<{ response: { statusCode: number; headers: Record<string, string>; body: Buffer } }> {
    if (this.delayMs) await new Promise((resolve) => setTimeout(resolve, this.delayMs));
    return new Promise((resolve, reject) => {
      const req = new EventEmitter() as EventEmitter & Partial<IncomingMessage>;
      req.method = request.method;
      req.url = request.path || '/';
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(request.headers)) headers[name.toLowerCase()] = value;
      headers.authorization = UNSIGNED_AUTHORIZATION;
      headers['x-amz-date'] ??= '20000101T000000Z';
      req.headers = headers;
      const resHeaders: Record<string, string> = {};
      const res = {
        statusCode: 200,
        setHeader(name: string, value: string | number) {
          resHeaders[name.toLowerCase()] = String(value);
        },
        end(body?: string | Buffer) {
          const bytes = body === undefined ? Buffer.alloc(0) : Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8');
          resolve({ response: { statusCode: this.statusCode, headers: resHeaders, body: bytes } });
        },
      };
      try {
        this.dynalite(req as IncomingMessage, res as unknown as ServerResponse);
        const body = request.body;
        if (typeof body === 'string') req.emit('data', Buffer.from(body, 'utf8'));
        // A view on the same bytes (Buffer.from(typedArray) would call the SDK body's valueOf(), a string copy).
        else if (body instanceof Uint8Array) req.emit('data', Buffer.from(body.buffer, body.byteOffset, body.byteLength));
        req.emit('end');
      } catch (err) {
        reject(err);
      }
    });
  }

  updateHttpClientConfig(): void {}
  httpHandlerConfigs(): Record<string, never> {
    return {};
  }
  destroy(): void {}
}

const UNSIGNED_AUTHORIZATION = 'AWS4-HMAC-SHA256 Credential=local/20000101/local/dynamodb/aws4_request, SignedHeaders=host, Signature=unsigned';
