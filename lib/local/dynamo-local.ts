// The embedded DynamoDB for laptops and tests: dynalite on its own loopback port, on disk under
// .data/ or in memory, reached only through the real AWS SDK like DynamoDB itself.
import { mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { CreateTableCommand, type CreateTableCommandInput, DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import dynalite from 'dynalite';
import { tableDefinition } from '../store/dynamo.ts';

export interface LocalDynamo {
  endpoint: string;
  close(): Promise<void>;
}

/** Starts dynalite. `path` undefined = in memory. */
export async function startDynalite(opts: { host?: string; port?: number; path?: string }): Promise<LocalDynamo> {
  if (opts.path) mkdirSync(opts.path, { recursive: true });
  const server = dynalite({ path: opts.path, createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  const host = opts.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 8000, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://${host}:${port}`,
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
