// One item per BOSH session (XEP-0124), `bosh#<connection id>` / `bosh`: the HTTP binding's state
// between requests and the session's outbound queue (docs/architecture.md "BOSH"). The connection id
// is derived from the sid (connectionIdOfSid in lib/gateway/bosh/protocol.ts), so logs never show
// the sid. Fields:
//   lastRid   the highest rid processed in order (§14.1); the rid window is lastRid+1 … lastRid+requests
//   key       the hex SHA-1 the next request's key must hash to (§15), when the client uses keys
//   q         frames posted to the session by any process, oldest first, waiting for a request
//   rsp       the non-empty responses of the last `requests` rids, for a repeated rid (§14.3), and
//             sent_<rid> when each was sent, for a report of one missing (§9.2)
//   pauseRid  a pause (§10) releases every request up to this rid
//   arrivals  when each request of the rid window arrived (server clock, ms), and lastEmpty: whether
//             the last one carried nothing; for the overactivity and polling checks (§11, §12)
//   ended     the XMPP session is over: stanzas are refused, stream errors and <close/> still queued
//   sweep / checkAt  in the table's bySweep index under `bosh#<region>`: when inactivity ends it
// Every write here also wakes this process's requests waiting on the item (BoshWaiters); requests in
// other processes poll it (strongly consistent GetItem).
import { DeleteCommand, GetCommand, PutCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { TTL_ATTRIBUTE, dueInSweep, isConditionFailure, ttlFrom } from './dynamo.ts';

/** The attribute holding when the response to `rid` (one with payloads) was sent (XEP-0124 §9.2). */
export const sentAttr = (rid: number) => `sent_${rid}`;

export const BOSH_PREFIX = 'bosh';

/**
 * What the server grants a session (XEP-0124 §7.1; grantSession in lib/gateway/bosh/protocol.ts), kept
 * in its item. Declared here, as a store imports no transport.
 */
export interface SessionGrant {
  /** Seconds, as every duration here. */
  wait: number;
  hold: number;
  requests: number;
  inactivity: number;
  /** The shortest interval between empty requests (§7.1 `polling`). */
  polling: number;
  maxpause: number;
  /** `ver` as granted, e.g. "1.11". */
  ver: string;
  /** The Content-Type of every response (the session request's `content`). */
  content: string;
  /** Whether responses carry `ack` (§9.1). */
  ack: boolean;
}

export interface BoshItem extends SessionGrant {
  connectionId: string;
  /** The tenant (the stream's `to`): its CORS origins, its restart's `to`. */
  domain: string;
  region: string;
  lang?: string;
  lastRid: number;
  key?: string;
  q?: string[];
  rsp?: Record<string, string[]>;
  pauseRid?: number;
  /** When the requests of the window arrived (server clock, ms), by rid (§11, §12). */
  arrivals?: Record<string, number>;
  /** Whether the request lastRid was empty (§12). */
  lastEmpty?: boolean;
  ended?: boolean;
  /** Why the transport ended it (XEP-0124 §17.2), for the requests that come after. */
  endCondition?: string;
  /** Hard end of life, as the connection item's (API Gateway's 2 hours do not apply, the core's limit does). */
  expiresAt: number;
  checkAt: number;
}

/** Frames queued for one session before posts are refused (the session is then treated as gone). */
export const MAX_QUEUED_FRAMES = 500;
/** How long an ended session's item stays, so its waiting requests and a late one learn it ended. */
export const ENDED_KEEP_MS = 2 * 60_000;

const key = (connectionId: string) => ({ pk: `${BOSH_PREFIX}#${connectionId}`, sk: BOSH_PREFIX });
const sweepOf = (region: string) => `${BOSH_PREFIX}#${region}`;

/** Requests of this process waiting for a session's item to change. */
export class BoshWaiters {
  private readonly waiting = new Map<string, Set<(changed: boolean) => void>>();

  /** Resolves true at the next change of the item, or false after `ms`. */
  next(connectionId: string, ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      let set = this.waiting.get(connectionId);
      if (!set) this.waiting.set(connectionId, (set = new Set()));
      const done = (changed: boolean) => {
        clearTimeout(timer);
        set!.delete(done);
        if (!set!.size) this.waiting.delete(connectionId);
        resolve(changed);
      };
      const timer = setTimeout(() => done(false), Math.max(0, ms));
      set.add(done);
    });
  }

  notify(connectionId: string): void {
    for (const done of [...(this.waiting.get(connectionId) ?? [])]) done(true);
  }

  count(connectionId: string): number {
    return this.waiting.get(connectionId)?.size ?? 0;
  }

  /** Wakes every waiting request (the server is stopping). */
  notifyAll(): void {
    for (const id of [...this.waiting.keys()]) this.notify(id);
  }
}

export class BoshSessionStore {
  readonly waiters = new BoshWaiters();

  constructor(
    private readonly db: DynamoDBDocumentClient,
    private readonly table: string,
    /** The table's client in another region, for a post to a session held there. */
    private readonly dbOfRegion: (region: string) => DynamoDBDocumentClient = () => db,
  ) {}

  async create(item: BoshItem): Promise<void> {
    await this.db.send(
      new PutCommand({
        TableName: this.table,
        Item: { ...key(item.connectionId), ...item, rsp: {}, sweep: sweepOf(item.region), [TTL_ATTRIBUTE]: ttlFrom(item.expiresAt) },
        ConditionExpression: 'attribute_not_exists(pk)',
      }),
    );
  }

  async get(connectionId: string, now: number): Promise<BoshItem | undefined> {
    const res = await this.db.send(new GetCommand({ TableName: this.table, Key: key(connectionId), ConsistentRead: true }));
    const item = res.Item as (BoshItem & Record<string, unknown>) | undefined;
    if (!item || item.expiresAt <= now) return undefined;
    return strip(item);
  }

  /**
   * Records `rid` as processed (§14.1), conditional on `prevRid` still being the last and the session
   * not ended; sets the next key (§15), when inactivity ends it, when the requests of the window
   * arrived and whether this one was empty (§11, §12), and drops the cached response that leaves the
   * window. Returns the item as it is now, or undefined if the condition failed.
   */
  async accept(
    connectionId: string,
    a: { prevRid: number; rid: number; checkAt: number; key?: string; pauseRid?: number; forget?: number; arrivals: Record<string, number>; empty: boolean },
  ): Promise<BoshItem | undefined> {
    const names: Record<string, string> = { '#last': 'lastRid', '#checkAt': 'checkAt', '#ended': 'ended', '#arrivals': 'arrivals', '#empty': 'lastEmpty' };
    const values: Record<string, unknown> = { ':prev': a.prevRid, ':rid': a.rid, ':checkAt': a.checkAt, ':arrivals': a.arrivals, ':empty': a.empty };
    // arrivals is written whole: only the write that moves lastRid from prevRid succeeds, so no other
    // write of it is lost.
    const sets = ['#last = :rid', '#checkAt = :checkAt', '#arrivals = :arrivals', '#empty = :empty'];
    if (a.key !== undefined) {
      names['#key'] = 'key';
      values[':key'] = a.key;
      sets.push('#key = :key');
    }
    if (a.pauseRid !== undefined) {
      names['#pause'] = 'pauseRid';
      values[':pause'] = a.pauseRid;
      sets.push('#pause = :pause');
    }
    let remove = '';
    if (a.forget !== undefined) {
      names['#rsp'] = 'rsp';
      names['#old'] = String(a.forget);
      names['#oldSent'] = sentAttr(a.forget);
      remove = ' REMOVE #rsp.#old, #oldSent';
    }
    try {
      const res = await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: key(connectionId),
          UpdateExpression: `SET ${sets.join(', ')}${remove}`,
          ConditionExpression: '#last = :prev AND attribute_not_exists(#ended)',
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
          ReturnValues: 'ALL_NEW',
        }),
      );
      return strip(res.Attributes as BoshItem & Record<string, unknown>);
    } catch (err) {
      if (isConditionFailure(err)) return undefined;
      throw err;
    } finally {
      this.waiters.notify(connectionId);
    }
  }

  /**
   * Queues one frame for the session (the transport's post). A stanza is refused once the session
   * ended (it takes the undeliverable path instead); its stream error and <close/> are not. False if
   * refused, or if the queue is full (the client stopped polling: the session is treated as gone).
   */
  async append(connectionId: string, region: string, frame: string, stanza: boolean): Promise<boolean> {
    try {
      await this.dbOfRegion(region).send(
        new UpdateCommand({
          TableName: this.table,
          Key: key(connectionId),
          UpdateExpression: 'SET #q = list_append(if_not_exists(#q, :empty), :frame)',
          ConditionExpression: `attribute_exists(pk) AND (attribute_not_exists(#q) OR size(#q) < :max)${stanza ? ' AND attribute_not_exists(#ended)' : ''}`,
          ExpressionAttributeNames: { '#q': 'q', ...(stanza ? { '#ended': 'ended' } : {}) },
          ExpressionAttributeValues: { ':empty': [], ':frame': [frame], ':max': MAX_QUEUED_FRAMES },
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw err;
    } finally {
      this.waiters.notify(connectionId);
    }
  }

  /**
   * Takes the queue and keeps it, after it the frames `inline` (what this process's own handling of
   * the request produced), as the response to `rid`, in one UpdateItem. Returns the response's frames.
   */
  async drain(connectionId: string, rid: number, inline: string[], now: number): Promise<string[]> {
    try {
      const res = await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: key(connectionId),
          // When it was sent, for a report of it missing (§9.2); a top-level attribute, as it is removed
          // with the response when the rid leaves the window.
          UpdateExpression: 'SET #rsp.#rid = list_append(if_not_exists(#q, :empty), :inline), #sent = :now REMOVE #q',
          ConditionExpression: 'attribute_exists(pk)',
          ExpressionAttributeNames: { '#rsp': 'rsp', '#rid': String(rid), '#q': 'q', '#sent': sentAttr(rid) },
          ExpressionAttributeValues: { ':empty': [], ':inline': inline, ':now': now },
          ReturnValues: 'UPDATED_NEW',
        }),
      );
      return ((res.Attributes?.rsp as Record<string, string[]> | undefined)?.[String(rid)]) ?? inline;
    } catch (err) {
      if (isConditionFailure(err)) return inline;
      throw err;
    }
  }

  /**
   * The XMPP session ended: marks the item ended (kept a little while, out of the sweep index) and
   * takes the frames still queued, for the caller to send stanzas to offline storage.
   */
  async end(connectionId: string, now: number): Promise<string[] | undefined> {
    const old = await this.markEnded(this.db, connectionId, now, { takeQueue: true });
    return old && ((old.q as string[] | undefined) ?? []);
  }

  /**
   * Marks the session ended without taking its queue (the core closed the connection, or the transport
   * ended it: then with the terminal condition later requests get).
   */
  async close(connectionId: string, region: string, now: number, condition?: string): Promise<boolean> {
    return (await this.markEnded(this.dbOfRegion(region), connectionId, now, { condition })) !== undefined;
  }

  /** One UpdateItem for end and close: the attributes it replaced, or undefined if there is no item. */
  private async markEnded(db: DynamoDBDocumentClient, connectionId: string, now: number, opts: { takeQueue?: boolean; condition?: string }): Promise<Record<string, unknown> | undefined> {
    const until = now + ENDED_KEEP_MS;
    const names: Record<string, string> = { '#ended': 'ended', '#exp': 'expiresAt', '#ttl': TTL_ATTRIBUTE, '#sweep': 'sweep', '#checkAt': 'checkAt' };
    const values: Record<string, unknown> = { ':true': true, ':until': until, ':ttl': ttlFrom(until) };
    const sets = ['#ended = :true', '#exp = :until', '#ttl = :ttl'];
    const removes = ['#sweep', '#checkAt'];
    if (opts.condition) {
      names['#cond'] = 'endCondition';
      values[':cond'] = opts.condition;
      sets.push('#cond = :cond');
    }
    if (opts.takeQueue) {
      names['#q'] = 'q';
      removes.unshift('#q');
    }
    try {
      const res = await db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: key(connectionId),
          UpdateExpression: `SET ${sets.join(', ')} REMOVE ${removes.join(', ')}`,
          ConditionExpression: 'attribute_exists(pk)',
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
          ...(opts.takeQueue ? { ReturnValues: 'UPDATED_OLD' as const } : {}),
        }),
      );
      return res.Attributes ?? {};
    } catch (err) {
      if (isConditionFailure(err)) return undefined;
      throw err;
    } finally {
      this.waiters.notify(connectionId);
    }
  }

  /** Records why the transport is ending the session, before it ends (read once it has). */
  async condemn(connectionId: string, condition: string): Promise<void> {
    try {
      await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: key(connectionId),
          UpdateExpression: 'SET #cond = :cond',
          ConditionExpression: 'attribute_exists(pk)',
          ExpressionAttributeNames: { '#cond': 'endCondition' },
          ExpressionAttributeValues: { ':cond': condition },
        }),
      );
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
    }
  }

  async remove(connectionId: string): Promise<void> {
    await this.db.send(new DeleteCommand({ TableName: this.table, Key: key(connectionId) }));
    this.waiters.notify(connectionId);
  }

  /** This region's sessions whose inactivity time has run out (§7.1 `inactivity`). */
  async inactive(region: string, now: number, limit = 100): Promise<BoshItem[]> {
    return (await dueInSweep(this.db, this.table, sweepOf(region), now, limit)).map((i) => strip(i as BoshItem & Record<string, unknown>));
  }
}

function strip(item: BoshItem & Record<string, unknown>): BoshItem {
  const { pk: _pk, sk: _sk, sweep: _sweep, [TTL_ATTRIBUTE]: _ttl, ...rest } = item;
  return rest as BoshItem;
}
