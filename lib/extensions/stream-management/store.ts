// The XEP-0198 state of one stream-managed session: one item per session, `sm#<bare JID>` / `<id>`
// (the id the client resumes with, so a resume names the account's partition and cannot reach
// another account's). It holds the counts and the unacknowledged stanzas (docs/architecture.md
// "Stream management"):
//   in      stanzas handled from the client (its <a h/> answers and <resumed h/> report it)
//   out     stanzas sent to the client; acked: how many of them it acknowledged
//   q       the unacknowledged stanzas, as XML, numbered acked+1 … out
// A stanza sent costs one UpdateItem (append and count together); an ack one GetItem and one
// UpdateItem that drops the acknowledged head. A detached session's item carries `sweep`/`checkAt`,
// which puts it in the table's bySweep index under `sm#<region>`, so the sweeper finds it when its
// resumption time runs out without an index of its own.
import { DeleteCommand, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { ModuleStore } from '../../core/modules.ts';
import { TTL_ATTRIBUTE, dueInSweep, isConditionFailure, ttlFrom } from '../../store/dynamo.ts';

export const SM_PREFIX = 'sm';

export interface SmItem {
  bare: string;
  id: string;
  resource: string;
  /** The connection the session is on now (after a resume, the new one). */
  connectionId: string;
  endpoint: string;
  resume: boolean;
  /** The resumption time granted, seconds (the `max` of <enabled/>). */
  max: number;
  in: number;
  out: number;
  acked: number;
  q: string[];
  /** Reads ignore the item past this; a detached session's is its resumption deadline. */
  expiresAt: number;
  /** Set while no connection holds the session: when its resumption time ends. */
  detachedUntil?: number;
  /**
   * Stanzas for the session are kept, not posted: from its detachment until a resume has resent
   * the queue. The append that counts a stanza returns it, so every sender knows without a read.
   */
  held?: boolean;
}

export class SmStore {
  constructor(private readonly store: ModuleStore) {}

  private key(bare: string, id: string) {
    return { pk: this.store.pk(SM_PREFIX, bare), sk: id };
  }

  async create(item: Omit<SmItem, 'in' | 'out' | 'acked' | 'q'>): Promise<void> {
    const { bare: _b, id, ...rest } = item;
    await this.store.db.send(
      new PutCommand({
        TableName: this.store.table,
        Item: { ...this.key(item.bare, id), ...rest, in: 0, out: 0, acked: 0, q: [], [TTL_ATTRIBUTE]: ttlFrom(item.expiresAt) },
      }),
    );
  }

  async get(bare: string, id: string, now: number): Promise<SmItem | undefined> {
    const res = await this.store.db.send(new GetCommand({ TableName: this.store.table, Key: this.key(bare, id), ConsistentRead: true }));
    const item = res.Item;
    if (!item || (item.expiresAt as number) <= now) return undefined;
    return { ...(item as Omit<SmItem, 'bare' | 'id'>), bare, id };
  }

  /**
   * One more stanza handled from the client (XEP-0198 §4), from `connectionId`, which must still hold
   * the session: 'moved' when a resume took it to another connection (the stanza is not counted:
   * the client resends it, docs/architecture.md "Stream management", "Resume"), 'gone' when the
   * session ended. Only those two cost a read more.
   */
  async countInbound(bare: string, id: string, connectionId: string): Promise<'counted' | 'moved' | 'gone'> {
    if (await this.update(bare, id, 'ADD #in :one', { '#in': 'in', '#cid': 'connectionId' }, { ':one': 1, ':cid': connectionId }, '#cid = :cid')) return 'counted';
    const res = await this.store.db.send(new GetCommand({ TableName: this.store.table, Key: this.key(bare, id), ConsistentRead: true, ProjectionExpression: 'pk' }));
    return res.Item ? 'moved' : 'gone';
  }

  /**
   * Appends a stanza to the queue and counts it, in one UpdateItem; returns the new `out`, the
   * current `acked` (for the ack request every N stanzas) and whether stanzas are held, or
   * undefined if the item is gone.
   */
  async enqueue(bare: string, id: string, xml: string): Promise<{ out: number; acked: number; held: boolean } | undefined> {
    try {
      const res = await this.store.db.send(
        new UpdateCommand({
          TableName: this.store.table,
          Key: this.key(bare, id),
          UpdateExpression: 'SET #q = list_append(#q, :x) ADD #out :one',
          ConditionExpression: 'attribute_exists(pk)',
          ExpressionAttributeNames: { '#q': 'q', '#out': 'out' },
          ExpressionAttributeValues: { ':x': [xml], ':one': 1 },
          // The whole item comes back (the queue too: bounded by the acks, and free of read units).
          ReturnValues: 'ALL_NEW',
        }),
      );
      const item = res.Attributes ?? {};
      return { out: item.out as number, acked: item.acked as number, held: item.held === true };
    } catch (err) {
      if (isConditionFailure(err)) return undefined;
      throw err;
    }
  }

  /**
   * Drops the acknowledged head of the queue: stanzas up to `h` (absolute), when `acked` is still
   * what the caller read (acks of one stream are processed in order; a lost race is retried by the
   * next ack).
   */
  async ack(bare: string, id: string, acked: number, h: number): Promise<boolean> {
    const n = h - acked;
    if (n <= 0) return true;
    // Highest index first: DynamoDB resolves every index against the list before the update,
    // dynalite one after another; in this order both remove the same elements.
    const removes = Array.from({ length: n }, (_, i) => `#q[${n - 1 - i}]`).join(', ');
    return this.update(bare, id, `SET #acked = :h REMOVE ${removes}`, { '#q': 'q', '#acked': 'acked' }, { ':h': h, ':old': acked }, '#acked = :old');
  }

  /** Marks the session detached until `until` (in the sweeper's index), if `connectionId` still holds it. */
  detach(bare: string, id: string, connectionId: string, until: number, region: string): Promise<boolean> {
    return this.update(
      bare,
      id,
      'SET #until = :until, #exp = :until, #ttl = :ttl, #sweep = :sweep, #checkAt = :until, #held = :true',
      { '#held': 'held', '#until': 'detachedUntil', '#exp': 'expiresAt', '#ttl': TTL_ATTRIBUTE, '#sweep': 'sweep', '#checkAt': 'checkAt', '#cid': 'connectionId' },
      { ':until': until, ':ttl': ttlFrom(until), ':sweep': `${SM_PREFIX}#${region}`, ':cid': connectionId, ':true': true },
      '#cid = :cid',
    );
  }

  /**
   * Moves the session to a new connection (XEP-0198 §5 resumption), if `previous` still holds it.
   * Stanzas stay held (kept, not posted) until release(): the resume resends the queue first.
   */
  attach(bare: string, id: string, previous: string, to: { connectionId: string; endpoint: string; expiresAt: number }): Promise<boolean> {
    return this.update(
      bare,
      id,
      'SET #cid = :cid, #ep = :ep, #exp = :exp, #ttl = :ttl, #held = :true REMOVE #until, #sweep, #checkAt',
      { '#held': 'held', '#cid': 'connectionId', '#ep': 'endpoint', '#exp': 'expiresAt', '#ttl': TTL_ATTRIBUTE, '#until': 'detachedUntil', '#sweep': 'sweep', '#checkAt': 'checkAt' },
      { ':cid': to.connectionId, ':ep': to.endpoint, ':exp': to.expiresAt, ':ttl': ttlFrom(to.expiresAt), ':prev': previous, ':true': true },
      '#cid = :prev',
    );
  }

  /**
   * Stanzas are posted again from now on, if no stanza was counted after the first `posted` (the
   * caller posted those): then later senders post their own, after everything before. 'more' when
   * some came meanwhile (the caller posts them and tries again). Without `posted`, released whatever
   * came: returns the item as this write left it, and the caller posts what is new.
   */
  async release(bare: string, id: string, posted?: number): Promise<SmItem | 'more' | undefined> {
    try {
      const res = await this.store.db.send(
        new UpdateCommand({
          TableName: this.store.table,
          Key: this.key(bare, id),
          UpdateExpression: 'REMOVE #held',
          ConditionExpression: posted === undefined ? 'attribute_exists(pk)' : 'attribute_exists(pk) AND #out = :posted',
          ExpressionAttributeNames: { '#held': 'held', ...(posted === undefined ? {} : { '#out': 'out' }) },
          ...(posted === undefined ? {} : { ExpressionAttributeValues: { ':posted': posted } }),
          ReturnValues: 'ALL_NEW',
        }),
      );
      return { ...(res.Attributes as Omit<SmItem, 'bare' | 'id'>), bare, id };
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
      if (posted === undefined) return undefined;
      const res = await this.store.db.send(new GetCommand({ TableName: this.store.table, Key: this.key(bare, id), ConsistentRead: true, ProjectionExpression: 'pk' }));
      return res.Item ? 'more' : undefined;
    }
  }

  /** Deletes the item; returns what it held (undefined if another caller deleted it first). */
  async remove(bare: string, id: string): Promise<SmItem | undefined> {
    const res = await this.store.db.send(new DeleteCommand({ TableName: this.store.table, Key: this.key(bare, id), ReturnValues: 'ALL_OLD' }));
    return res.Attributes ? { ...(res.Attributes as Omit<SmItem, 'bare' | 'id'>), bare, id } : undefined;
  }

  /** Detached sessions of this region whose resumption time is over: one Query. */
  async dueDetached(region: string, now: number, limit = 100): Promise<SmItem[]> {
    return (await dueInSweep(this.store.db, this.store.table, `${SM_PREFIX}#${region}`, now, limit)).map((item) => ({ ...(item as Omit<SmItem, 'bare' | 'id'>), bare: (item.pk as string).slice(SM_PREFIX.length + 1), id: item.sk as string }));
  }

  private async update(bare: string, id: string, expression: string, names: Record<string, string>, values: Record<string, unknown>, condition?: string): Promise<boolean> {
    try {
      await this.store.db.send(
        new UpdateCommand({
          TableName: this.store.table,
          Key: this.key(bare, id),
          UpdateExpression: expression,
          ConditionExpression: condition ? `attribute_exists(pk) AND ${condition}` : 'attribute_exists(pk)',
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw err;
    }
  }
}
