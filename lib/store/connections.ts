// One item per WebSocket connection: the stream state between frames (RFC 6120 §4-7 negotiation).
// Pre-binding state changes with every step and is always read from the table; once bound, the
// connection's JID never changes and handlers may cache it (docs/architecture.md "State").
import { DeleteCommand, GetCommand, PutCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { SWEEP_INDEX, SWEEP_SHARDS, TENANT_INDEX, TTL_ATTRIBUTE, dueInSweep, isConditionFailure, queryAll, ttlFrom } from './dynamo.ts';

/**
 * 'gone' is a tombstone: the socket is gone but frames the client sent before may still be queued
 * (docs/architecture.md "Connections die silently"); it keeps the JID so they can be processed.
 */
export type StreamStage = 'connected' | 'opened' | 'authenticated' | 'bound' | 'gone';

/**
 * How long a tombstone outlives its socket: long enough for an SQS FIFO group to drain, retries
 * included (5 receives × a 2-minute visibility timeout; docs/architecture.md "Order").
 */
export const TOMBSTONE_MS = 15 * 60_000;

/** What a tombstone drops: its sweep and tenant index keys, and the stream's negotiation state. */
const TOMBSTONE_REMOVES = ['sweep', 'tenant', 'checkAt', 'sasl', 'streamId', 'authFailures', 'pingSentAt'] as const;

export interface SaslProgress {
  mechanism: string;
  /** Mechanism-specific state between challenge and response (e.g. SCRAM nonces). */
  data: Record<string, string>;
  /** The account the client named in an earlier step, for the throttling of failed logins. */
  account?: string;
}

export interface ConnectionRecord {
  id: string;
  /** The management endpoint that reaches this connection (its region's API Gateway stage). */
  endpoint: string;
  connectedAt: number;
  /** Hard end of life: API Gateway's maximum connection duration plus a grace period. */
  expiresAt: number;
  /** When the sweeper next asks the gateway whether this connection is still alive. */
  checkAt: number;
  sourceIp?: string;
  stage: StreamStage;
  domain?: string;
  /** Set with `domain` once the stream is open: the key of the byTenant index. */
  tenant?: string;
  streamId?: string;
  username?: string;
  resource?: string;
  sasl?: SaslProgress;
  authFailures?: number;
  /** When the server's unanswered XEP-0199 ping went out (server.sweep); cleared by any answer. */
  pingSentAt?: number;
  /** When the stream bound a resource (the server's clock). */
  boundAt?: number;
  /**
   * The WebSocket subprotocol when it is not RFC 7395's "xmpp": a module's stream protocol
   * (docs/modules.md "What else a module can add"); its frames go to that module.
   */
  protocol?: string;
  /** Modules' per-stream state once bound (Session.streamData); a tombstone keeps it. */
  streamData?: Record<string, unknown>;
}

/**
 * Sweep partitions are per region: the table is global, and each region's sweeper must check only
 * the connections its own gateway holds.
 */
function shardOf(region: string, id: string): string {
  let h = 0;
  for (const c of id) h = (h * 31 + c.charCodeAt(0)) | 0;
  return `conn#${region}#${Math.abs(h) % SWEEP_SHARDS}`;
}

const key = (id: string) => ({ pk: `conn#${id}`, sk: 'conn' });

export class ConnectionStore {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    private readonly table: string,
    /** The region this process serves (AWS_REGION; 'local' on a laptop). */
    readonly region = 'local',
  ) {}

  async create(rec: ConnectionRecord): Promise<void> {
    await this.db.send(
      new PutCommand({
        TableName: this.table,
        Item: { ...key(rec.id), ...rec, sweep: shardOf(this.region, rec.id), [TTL_ATTRIBUTE]: ttlFrom(rec.expiresAt) },
      }),
    );
  }

  async get(id: string, now = Date.now()): Promise<ConnectionRecord | undefined> {
    const res = await this.db.send(new GetCommand({ TableName: this.table, Key: key(id), ConsistentRead: true }));
    const item = res.Item as (ConnectionRecord & Record<string, unknown>) | undefined;
    if (!item || item.expiresAt <= now) return undefined;
    return strip(item);
  }

  /** Sets the given fields (undefined removes one); fails quietly if the connection is gone. */
  async update(id: string, patch: Partial<Omit<ConnectionRecord, 'id'>>): Promise<boolean> {
    const names: Record<string, string> = {};
    const values: Record<string, unknown> = {};
    const sets: string[] = [];
    const removes: string[] = [];
    for (const [field, value] of Object.entries(patch)) {
      names[`#${field}`] = field;
      if (value === undefined) removes.push(`#${field}`);
      else {
        values[`:${field}`] = value;
        sets.push(`#${field} = :${field}`);
      }
    }
    const expression = [sets.length ? `SET ${sets.join(', ')}` : '', removes.length ? `REMOVE ${removes.join(', ')}` : '']
      .filter(Boolean)
      .join(' ');
    try {
      await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: key(id),
          UpdateExpression: expression,
          // A tombstone is not brought back to life (a late sweep, a late SASL step).
          ConditionExpression: 'attribute_exists(pk) AND #stage_ <> :gone_',
          ExpressionAttributeNames: { ...names, '#stage_': 'stage' },
          ExpressionAttributeValues: { ...values, ':gone_': 'gone' },
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw err;
    }
  }

  /**
   * Ends the item and returns what it held, or undefined if another path ended it first. With
   * `tombstoneUntil` (the socket is gone, frames may trail) the same single write turns it into a
   * tombstone instead: stage 'gone', out of both indexes, expiring then. Without it the item is
   * deleted (a closed or failed stream: later frames are refused, RFC 7395 §3.6); deleting a
   * tombstone returns it with stage 'gone'.
   */
  async remove(id: string, opts: { tombstoneUntil?: number } = {}): Promise<ConnectionRecord | undefined> {
    if (opts.tombstoneUntil === undefined) {
      const res = await this.db.send(new DeleteCommand({ TableName: this.table, Key: key(id), ReturnValues: 'ALL_OLD' }));
      return res.Attributes ? strip(res.Attributes as ConnectionRecord & Record<string, unknown>) : undefined;
    }
    try {
      const res = await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: key(id),
          UpdateExpression: `SET #stage = :gone, #expiresAt = :until, #ttl = :ttl REMOVE ${TOMBSTONE_REMOVES.map((f) => `#${f}`).join(', ')}`,
          ConditionExpression: 'attribute_exists(pk) AND #stage <> :gone',
          ExpressionAttributeNames: {
            '#stage': 'stage',
            '#expiresAt': 'expiresAt',
            '#ttl': TTL_ATTRIBUTE,
            ...Object.fromEntries(TOMBSTONE_REMOVES.map((f) => [`#${f}`, f])),
          },
          ExpressionAttributeValues: { ':gone': 'gone', ':until': opts.tombstoneUntil, ':ttl': ttlFrom(opts.tombstoneUntil) },
          ReturnValues: 'ALL_OLD',
        }),
      );
      return res.Attributes ? strip(res.Attributes as ConnectionRecord & Record<string, unknown>) : undefined;
    } catch (err) {
      if (isConditionFailure(err)) return undefined;
      throw err;
    }
  }

  /** Ids of this region's open connections of one tenant (the byTenant index). */
  async idsOfTenant(domain: string): Promise<string[]> {
    const items = await queryAll(this.db, {
      TableName: this.table,
      IndexName: TENANT_INDEX,
      KeyConditionExpression: '#t = :t AND begins_with(pk, :conn)',
      FilterExpression: 'begins_with(#s, :region)',
      ExpressionAttributeNames: { '#t': 'tenant', '#s': 'sweep' },
      ExpressionAttributeValues: { ':t': domain, ':conn': 'conn#', ':region': `conn#${this.region}#` },
    });
    return items.map((item) => (item.pk as string).slice('conn#'.length));
  }

  /** This region's connections whose liveness check is due, across all its sweep shards. */
  async dueForCheck(now: number, limitPerShard = 100): Promise<ConnectionRecord[]> {
    const out: ConnectionRecord[] = [];
    for (let shard = 0; shard < SWEEP_SHARDS; shard++) {
      for (const item of await dueInSweep(this.db, this.table, `conn#${this.region}#${shard}`, now, limitPerShard)) out.push(strip(item as ConnectionRecord & Record<string, unknown>));
    }
    return out;
  }

  /** Every connection item of this region, due or not (a restarted local server ends those of its old run). */
  async ofRegion(): Promise<ConnectionRecord[]> {
    const out: ConnectionRecord[] = [];
    for (let shard = 0; shard < SWEEP_SHARDS; shard++) {
      const items = await queryAll(this.db, {
        TableName: this.table,
        IndexName: SWEEP_INDEX,
        KeyConditionExpression: '#s = :s',
        ExpressionAttributeNames: { '#s': 'sweep' },
        ExpressionAttributeValues: { ':s': `conn#${this.region}#${shard}` },
      });
      for (const item of items) out.push(strip(item as ConnectionRecord & Record<string, unknown>));
    }
    return out;
  }
}

function strip(item: ConnectionRecord & Record<string, unknown>): ConnectionRecord {
  const { pk: _pk, sk: _sk, sweep: _sweep, [TTL_ATTRIBUTE]: _ttl, ...rec } = item;
  return rec as ConnectionRecord;
}
