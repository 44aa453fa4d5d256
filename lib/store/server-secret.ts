// A random secret shared by every handler of a deployment, created once in the table. It keys the
// fake SCRAM salts for unknown accounts: a per-container secret would give different salts from
// different containers and so reveal which accounts exist (RFC 5802 §9).
import { randomBytes } from 'node:crypto';
import { GetCommand, PutCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { isConditionFailure } from './dynamo.ts';

const KEY = { pk: 'config', sk: 'server-secret' };

export class ServerSecretStore {
  private cached?: Promise<Buffer>;

  constructor(
    private readonly db: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  /** The deployment's secret: read once per process, created by whichever handler needs it first. */
  get(): Promise<Buffer> {
    this.cached ??= this.load().catch((err) => {
      this.cached = undefined;
      throw err;
    });
    return this.cached;
  }

  private async load(): Promise<Buffer> {
    const existing = await this.db.send(new GetCommand({ TableName: this.table, Key: KEY, ConsistentRead: true }));
    if (existing.Item) return Buffer.from(existing.Item.secret as string, 'base64');
    const secret = randomBytes(32);
    try {
      await this.db.send(new PutCommand({ TableName: this.table, Item: { ...KEY, secret: secret.toString('base64') }, ConditionExpression: 'attribute_not_exists(pk)' }));
      return secret;
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
      return this.load(); // another handler created it first
    }
  }
}
