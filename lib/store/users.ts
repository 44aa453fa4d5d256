// Accounts of a tenant. Passwords are kept only as SCRAM salted keys for SHA-1 and SHA-256
// (RFC 5802 §3, RFC 7677), never in clear (docs/architecture.md "Data").
import { DeleteCommand, GetCommand, PutCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { isConditionFailure, partitionItems } from './dynamo.ts';

export interface UserRecord {
  domain: string;
  username: string;
  createdAt: number;
  scram?: { 'SHA-1': ScramCredentials; 'SHA-256': ScramCredentials };
  /**
   * How an account without a password came to be: 'jwt' for one created at its first JWT login
   * (the JWT issuer is the source of truth for who exists; such an item has no `scram`).
   */
  origin?: 'jwt';
  /** Refresh-token sequence number (lib/auth/access-tokens.ts); absent until the first revocation. */
  tokenSeq?: number;
}

/** One hash's SCRAM keys (RFC 5802 §3): what verifies a password without keeping it. */
export interface ScramCredentials {
  salt: string; // base64
  iterations: number;
  storedKey: string; // base64
  serverKey: string; // base64
}

const key = (domain: string, username: string) => ({ pk: `user#${domain}`, sk: username });

export class UserExistsError extends Error {
  constructor(jid: string) {
    super(`user ${jid} already exists`);
    this.name = 'UserExistsError';
  }
}

export class UserStore {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  async get(domain: string, username: string): Promise<UserRecord | undefined> {
    const res = await this.db.send(new GetCommand({ TableName: this.table, Key: key(domain, username) }));
    return res.Item ? strip(res.Item) : undefined;
  }

  async exists(domain: string, username: string): Promise<boolean> {
    // An empty localpart names no account (RFC 7622 §3.3: a localpart has at least one character), and
    // DynamoDB refuses an empty key.
    if (!username) return false;
    const res = await this.db.send(
      new GetCommand({ TableName: this.table, Key: key(domain, username), ProjectionExpression: 'pk' }),
    );
    return !!res.Item;
  }

  async create(user: UserRecord): Promise<void> {
    try {
      await this.db.send(
        new PutCommand({
          TableName: this.table,
          Item: { ...key(user.domain, user.username), ...user },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
    } catch (err) {
      if (isConditionFailure(err)) throw new UserExistsError(`${user.username}@${user.domain}`);
      throw err;
    }
  }

  /**
   * The account, created as `fields` describe if it does not exist yet (a JWT user's first login).
   * Costs one read when the account exists.
   */
  async getOrCreate(domain: string, username: string, fields: Partial<UserRecord> = {}): Promise<{ user: UserRecord; created: boolean }> {
    const existing = await this.get(domain, username);
    if (existing) return { user: existing, created: false };
    const user: UserRecord = { ...fields, domain, username, createdAt: Date.now() };
    try {
      await this.create(user);
      return { user, created: true };
    } catch (err) {
      if (!(err instanceof UserExistsError)) throw err;
      const raced = await this.get(domain, username);
      if (!raced) throw err;
      return { user: raced, created: false };
    }
  }

  /**
   * Sets the refresh-token sequence number if it is still `expected` (undefined: not set yet).
   * Returns false if the user does not exist or the number changed meanwhile.
   */
  async setTokenSequence(domain: string, username: string, value: number, expected: number | undefined): Promise<boolean> {
    try {
      await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: key(domain, username),
          UpdateExpression: 'SET tokenSeq = :v',
          ConditionExpression: expected === undefined ? 'attribute_exists(pk) AND attribute_not_exists(tokenSeq)' : 'attribute_exists(pk) AND tokenSeq = :e',
          ExpressionAttributeValues: { ':v': value, ...(expected === undefined ? {} : { ':e': expected }) },
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw err;
    }
  }

  /** Returns false if the user does not exist. */
  async setCredentials(domain: string, username: string, scram: NonNullable<UserRecord['scram']>): Promise<boolean> {
    try {
      await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: key(domain, username),
          UpdateExpression: 'SET scram = :s',
          ConditionExpression: 'attribute_exists(pk)',
          ExpressionAttributeValues: { ':s': scram },
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw err;
    }
  }

  /** Returns false if there was no such user. */
  async remove(domain: string, username: string): Promise<boolean> {
    const res = await this.db.send(new DeleteCommand({ TableName: this.table, Key: key(domain, username), ReturnValues: 'ALL_OLD' }));
    return !!res.Attributes;
  }

  async list(domain: string): Promise<string[]> {
    return (await partitionItems(this.db, this.table, `user#${domain}`, 'sk')).map((item) => item.sk as string);
  }
}

function strip(item: Record<string, unknown>): UserRecord {
  const { pk: _pk, sk: _sk, ...rec } = item;
  return rec as unknown as UserRecord;
}
