// What webhook delivery keeps in the table (docs/architecture.md "Webhooks"): a request waiting for a
// later attempt, and a dead letter after the last one. Both are per tenant (the tenant is part of the
// key, docs/architecture.md "Data") and carry the expiry attribute, so the table's TTL removes them.
//
//   pk webhook-retry#<tenant>  sk <delivery id>            sweep webhook-retry#<channel>#<region>, checkAt = due time
//
// The channel is the source up to its first colon (`events`, `component`): each sender's sweep step
// retries its own requests only.
//   pk webhook-dead#<tenant>   sk <ISO time>#<delivery id> listed newest first by the admin API
import { DeleteCommand, PutCommand, QueryCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { TTL_ATTRIBUTE, dueInSweep, isConditionFailure, ttlFrom } from '../store/dynamo.ts';

export const RETRY_PREFIX = 'webhook-retry';
export const DEAD_PREFIX = 'webhook-dead';
/** How long a dead letter stays listable before the TTL removes it. */
export const DEAD_LETTER_TTL_MS = 14 * 24 * 3600_000;

/** A webhook request as kept between attempts; never the secret, which the owner resolves at each attempt. */
export interface StoredRequest {
  tenant: string;
  /** Who sent it and resolves its secret and URL again: `events`, or `component:<domain>`. */
  source: string;
  /** Stable across attempts, sent as X-XMPP-Edge-Delivery so a receiver can drop a retry it already took. */
  id: string;
  url: string;
  body: string;
  contentType: string;
  /** Attempts made so far. */
  attempts: number;
  firstAttemptAt: number;
  /** The last failure: `status 503`, `timeout`, `connection: ECONNREFUSED`. */
  lastError: string;
}

export interface PendingRetry extends StoredRequest {
  dueAt: number;
}

export interface DeadLetter extends StoredRequest {
  deadAt: number;
}

/** `component:bot.example.com` → `component`; `events` → `events`. */
export function channelOf(source: string): string {
  const i = source.indexOf(':');
  return i < 0 ? source : source.slice(0, i);
}

export class WebhookStore {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    private readonly table: string,
    /** This region's name: its sweeper retries the requests this region scheduled. */
    private readonly region: string,
  ) {}

  /** Schedules a later attempt: one PutItem. */
  async schedule(req: StoredRequest, dueAt: number): Promise<void> {
    await this.db.send(
      new PutCommand({
        TableName: this.table,
        Item: {
          pk: `${RETRY_PREFIX}#${req.tenant}`,
          sk: req.id,
          sweep: `${RETRY_PREFIX}#${channelOf(req.source)}#${this.region}`,
          checkAt: dueAt,
          ...fields(req),
          // Kept a day past its time in case no sweeper ran; then the TTL drops it.
          [TTL_ATTRIBUTE]: ttlFrom(dueAt + 24 * 3600_000),
        },
      }),
    );
  }

  /** Requests of one channel and this region due by `now`: one Query of the sweep index. */
  async due(channel: string, now: number, limit = 50): Promise<PendingRetry[]> {
    return (await dueInSweep(this.db, this.table, `${RETRY_PREFIX}#${channel}#${this.region}`, now, limit)).map((item) => ({ ...(fromItem(item) as StoredRequest), tenant: (item.pk as string).slice(RETRY_PREFIX.length + 1), id: item.sk as string, dueAt: item.checkAt as number }));
  }

  /**
   * Takes a due request for one attempt (one conditional UpdateItem): moves its due time to `leaseUntil`,
   * so an overlapping sweep does not send it twice, and a sweeper that dies mid-attempt leaves it to a
   * later one. False if another sweep took it first.
   */
  async claim(p: PendingRetry, leaseUntil: number): Promise<boolean> {
    try {
      await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: `${RETRY_PREFIX}#${p.tenant}`, sk: p.id },
          UpdateExpression: 'SET #c = :lease',
          ConditionExpression: '#c = :due',
          ExpressionAttributeNames: { '#c': 'checkAt' },
          ExpressionAttributeValues: { ':lease': leaseUntil, ':due': p.dueAt },
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw err;
    }
  }

  /** The request was delivered, given up, or rescheduled under the same key: one DeleteItem. */
  async unschedule(tenant: string, id: string): Promise<void> {
    await this.db.send(new DeleteCommand({ TableName: this.table, Key: { pk: `${RETRY_PREFIX}#${tenant}`, sk: id } }));
  }

  /** Records a request given up after its last attempt: one PutItem. */
  async deadLetter(req: StoredRequest, deadAt: number): Promise<void> {
    await this.db.send(
      new PutCommand({
        TableName: this.table,
        Item: {
          pk: `${DEAD_PREFIX}#${req.tenant}`,
          sk: `${new Date(deadAt).toISOString()}#${req.id}`,
          ...fields(req),
          deadAt,
          [TTL_ATTRIBUTE]: ttlFrom(deadAt + DEAD_LETTER_TTL_MS),
        },
      }),
    );
  }

  /** A tenant's dead letters, newest first, expired ones left out; `after` is the previous page's cursor. */
  async deadLetters(tenant: string, opts: { limit?: number; after?: string; now?: number } = {}): Promise<{ items: DeadLetter[]; next?: string }> {
    const now = opts.now ?? Date.now();
    const res = await this.db.send(
      new QueryCommand({
        TableName: this.table,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': `${DEAD_PREFIX}#${tenant}` },
        ScanIndexForward: false,
        Limit: opts.limit ?? 50,
        ...(opts.after ? { ExclusiveStartKey: { pk: `${DEAD_PREFIX}#${tenant}`, sk: opts.after } } : {}),
      }),
    );
    const items = (res.Items ?? [])
      .filter((item) => typeof item[TTL_ATTRIBUTE] !== 'number' || (item[TTL_ATTRIBUTE] as number) * 1000 > now)
      .map((item) => ({ ...(fromItem(item) as StoredRequest), tenant, id: (item.sk as string).split('#')[1], deadAt: item.deadAt as number }));
    return { items, ...(res.LastEvaluatedKey ? { next: res.LastEvaluatedKey.sk as string } : {}) };
  }
}

function fields(req: StoredRequest): Record<string, unknown> {
  return { source: req.source, url: req.url, body: req.body, contentType: req.contentType, attempts: req.attempts, firstAttemptAt: req.firstAttemptAt, lastError: req.lastError };
}

function fromItem(item: Record<string, unknown>): Omit<StoredRequest, 'tenant' | 'id'> {
  return {
    source: item.source as string,
    url: item.url as string,
    body: item.body as string,
    contentType: item.contentType as string,
    attempts: item.attempts as number,
    firstAttemptAt: item.firstAttemptAt as number,
    lastError: item.lastError as string,
  };
}
