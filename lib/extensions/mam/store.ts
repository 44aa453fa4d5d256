// The message archive (XEP-0313) in the table. One item per message per archive owner:
//   pk `mam#<bare JID>`, sk <archive id> (time-ordered, see query.ts), with the other party (`peer`,
//   `peerFull`), the message as XML, and the expiry of the tenant's retention (`expiresAt`, and `ttl`
//   for DynamoDB's TTL in AWS). A page is one Query on the sort key range, in either direction.
//   pk `mamprefs#<bare JID>`, sk `prefs`: the account's archiving preferences (XEP-0441), when set.
// Expired items are ignored on read (TTL deletes late, dynalite never: docs/architecture.md "Data").
import { BatchGetCommand, BatchWriteCommand, GetCommand, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import type { ModuleStore } from '../../core/modules.ts';
import { TTL_ATTRIBUTE, ttlFrom } from '../../store/dynamo.ts';
import { type ArchivedRef, type PagePlan, inRange, matchesWith, takePage } from './query.ts';

export const ARCHIVE_PREFIX = 'mam';
export const PREFS_PREFIX = 'mamprefs';

export interface ArchivedMessage extends ArchivedRef {
  xml: string;
  expiresAt: number;
}

export type DefaultPref = 'always' | 'never' | 'roster';

/** XEP-0441: the default, and JIDs always or never archived (bare JIDs). */
export interface ArchivePrefs {
  default: DefaultPref;
  always: string[];
  never: string[];
}

export const DEFAULT_PREFS: ArchivePrefs = { default: 'always', always: [], never: [] };

/** One archive's copy of a message. */
export interface ArchiveCopy {
  owner: string;
  message: ArchivedMessage;
}

/** DynamoDB's limit of requests in one BatchWriteItem. */
const BATCH_WRITE_LIMIT = 25;
/** BatchWriteItem calls per batch at most: the first and the re-sends of what it left unprocessed. */
export const BATCH_WRITE_ATTEMPTS = 4;
/** The pause before the first re-send, doubled before each next one (25, 50, 100 ms). */
const BATCH_WRITE_BACKOFF_MS = 25;

/** Copies of a message that could not be written: `unwritten` names their owners, `written` the others. */
export class ArchiveWriteError extends Error {
  constructor(
    readonly unwritten: string[],
    readonly written: string[],
    cause?: unknown,
  ) {
    super(cause ? `archive write failed: ${(cause as Error).message ?? cause}` : `archive write left ${unwritten.length} item(s) unprocessed`, { cause });
    this.name = 'ArchiveWriteError';
  }
}

/** The answer to a page query; `missingAnchor` when an after/before id is not in the archive. */
export type PageRead = { page: ArchivedMessage[]; complete: boolean } | { missingAnchor: string };

const toMessage = (item: Record<string, unknown>): ArchivedMessage => ({
  id: item.sk as string,
  peer: item.peer as string,
  ...(item.peerFull ? { peerFull: item.peerFull as string } : {}),
  xml: item.xml as string,
  expiresAt: item.expiresAt as number,
});

/** Reads archive items in a sort-key range (inclusive) in one direction; `next` continues. */
export type RangeReader = (
  from: string,
  to: string,
  forward: boolean,
  limit: number,
  start?: Record<string, unknown>,
) => Promise<{ items: ArchivedMessage[]; next?: Record<string, unknown> }>;

/**
 * One page of any archive (a user's, a room's): reads the plan's range in its direction, max + 2
 * items a call (the anchor and one more, to know whether more follow), until max + 1 matching items
 * are read or the range ends. Without `with` that is one call; with `with`, items of other parties
 * are read and skipped (they cost read units). An anchor not met on the way costs one `exists`.
 */
export async function readPage(read: RangeReader, exists: (id: string) => Promise<boolean>, plan: PagePlan, now: number): Promise<PageRead> {
  const got: ArchivedMessage[] = [];
  const seen = new Set<string>();
  let matching = 0;
  let start: Record<string, unknown> | undefined;
  if (plan.from <= plan.to) {
    do {
      const res = await read(plan.from, plan.to, plan.forward, plan.max + 2, start);
      for (const m of res.items) {
        if (m.expiresAt <= now) continue;
        seen.add(m.id);
        got.push(m);
        if (inRange(plan, m.id) && matchesWith(m, plan.with)) matching++;
      }
      start = res.next;
    } while (start && matching <= plan.max);
  }
  for (const anchor of plan.anchors) {
    if (seen.has(anchor)) continue;
    if (!(await exists(anchor))) return { missingAnchor: anchor };
  }
  return takePage(plan, got);
}

export class ArchiveStore {
  private readonly db: ModuleStore['db'];
  private readonly table: string;
  private readonly archivePk: (owner: string) => string;
  private readonly prefsPk: (owner: string) => string;

  constructor(store: ModuleStore) {
    this.db = store.db;
    this.table = store.table;
    this.archivePk = (owner) => store.pk(ARCHIVE_PREFIX, owner);
    this.prefsPk = (owner) => store.pk(PREFS_PREFIX, owner);
  }

  private item(owner: string, message: ArchivedMessage): Record<string, unknown> {
    return {
      pk: this.archivePk(owner),
      sk: message.id,
      peer: message.peer,
      ...(message.peerFull ? { peerFull: message.peerFull } : {}),
      xml: message.xml,
      expiresAt: message.expiresAt,
      [TTL_ATTRIBUTE]: ttlFrom(message.expiresAt),
    };
  }

  /** One PutItem. */
  async append(owner: string, message: ArchivedMessage): Promise<void> {
    await this.db.send(new PutCommand({ TableName: this.table, Item: this.item(owner, message) }));
  }

  /**
   * One message into several archives, one item each (as `append` writes it), in one call: a PutItem
   * for one archive, a BatchWriteItem for more (25 a call). DynamoDB may leave some of a batch
   * unprocessed (throttling): those are sent again, BATCH_WRITE_ATTEMPTS calls at most, after a short
   * pause. Copies still unwritten then, or whose call failed, are an ArchiveWriteError that names
   * their owners and the owners written; nothing is dropped without one.
   */
  async appendToAll(copies: ArchiveCopy[]): Promise<void> {
    if (copies.length === 1) {
      const [{ owner, message }] = copies;
      try {
        await this.append(owner, message);
      } catch (err) {
        throw new ArchiveWriteError([owner], [], err);
      }
      return;
    }
    const written: string[] = [];
    const unwritten: string[] = [];
    let failure: unknown;
    const ownerOf = (request: { PutRequest?: { Item?: Record<string, unknown> } }) => (request.PutRequest?.Item?.pk as string).slice(ARCHIVE_PREFIX.length + 1);
    for (let i = 0; i < copies.length; i += BATCH_WRITE_LIMIT) {
      let requests = copies.slice(i, i + BATCH_WRITE_LIMIT).map((c) => ({ PutRequest: { Item: this.item(c.owner, c.message) } }));
      try {
        for (let attempt = 1; requests.length; attempt++) {
          const res = await this.db.send(new BatchWriteCommand({ RequestItems: { [this.table]: requests } }));
          const left = (res.UnprocessedItems?.[this.table] ?? []) as typeof requests;
          const pending = new Set(left.map(ownerOf));
          written.push(...requests.map(ownerOf).filter((o) => !pending.has(o)));
          requests = left;
          if (!requests.length || attempt >= BATCH_WRITE_ATTEMPTS) break;
          await new Promise((resolve) => setTimeout(resolve, BATCH_WRITE_BACKOFF_MS * 2 ** (attempt - 1)));
        }
      } catch (err) {
        failure ??= err;
      }
      unwritten.push(...requests.map(ownerOf));
    }
    if (unwritten.length) throw new ArchiveWriteError(unwritten, written, failure);
  }

  /** One page of this account's archive (see readPage): without `with`, one Query. */
  async page(owner: string, plan: PagePlan, now: number): Promise<PageRead> {
    if (plan.ids) return this.byIds(owner, plan, now);
    const read: RangeReader = async (from, to, forward, limit, start) => {
      const res = await this.db.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: 'pk = :pk AND sk BETWEEN :from AND :to',
          ExpressionAttributeValues: { ':pk': this.archivePk(owner), ':from': from, ':to': to },
          ScanIndexForward: forward,
          Limit: limit,
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      );
      return { items: (res.Items ?? []).map(toMessage), next: res.LastEvaluatedKey };
    };
    return readPage(read, (id) => this.exists(owner, id, now), plan, now);
  }

  private async byIds(owner: string, plan: PagePlan, now: number): Promise<PageRead> {
    const ids = [...new Set(plan.ids)].slice(0, 100);
    const found: ArchivedMessage[] = [];
    let keys: Record<string, unknown>[] = ids.map((sk) => ({ pk: this.archivePk(owner), sk }));
    for (let attempt = 0; keys.length && attempt < 5; attempt++) {
      const res = await this.db.send(new BatchGetCommand({ RequestItems: { [this.table]: { Keys: keys } } }));
      found.push(...(res.Responses?.[this.table] ?? []).map(toMessage).filter((m) => m.expiresAt > now));
      keys = (res.UnprocessedKeys?.[this.table]?.Keys ?? []) as Record<string, unknown>[];
    }
    // §4.1.3: an id that is not in the archive is item-not-found.
    const missing = ids.find((id) => !found.some((m) => m.id === id));
    if (missing) return { missingAnchor: missing };
    found.sort((a, b) => (a.id < b.id ? -1 : 1));
    if (!plan.forward) found.reverse();
    return takePage(plan, found);
  }

  async exists(owner: string, id: string, now: number): Promise<boolean> {
    const res = await this.db.send(new GetCommand({ TableName: this.table, Key: { pk: this.archivePk(owner), sk: id }, ProjectionExpression: 'expiresAt' }));
    return !!res.Item && (res.Item.expiresAt as number) > now;
  }

  /** The oldest and newest unexpired ids (XEP-0313 §5 metadata): two Queries of one item each. */
  async bounds(owner: string, oldestId: string): Promise<{ first?: string; last?: string }> {
    const edge = async (forward: boolean) => {
      const res = await this.db.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: 'pk = :pk AND sk >= :from',
          ExpressionAttributeValues: { ':pk': this.archivePk(owner), ':from': oldestId },
          ScanIndexForward: forward,
          Limit: 1,
          ProjectionExpression: 'sk',
        }),
      );
      return res.Items?.[0]?.sk as string | undefined;
    };
    const [first, last] = await Promise.all([edge(true), edge(false)]);
    return { first, last };
  }

  async prefs(owner: string): Promise<ArchivePrefs> {
    const res = await this.db.send(new GetCommand({ TableName: this.table, Key: { pk: this.prefsPk(owner), sk: 'prefs' } }));
    return res.Item ? { default: res.Item.default as DefaultPref, always: res.Item.always as string[], never: res.Item.never as string[] } : DEFAULT_PREFS;
  }

  /** The preferences of several accounts in one BatchGetItem. */
  async prefsOf(owners: string[]): Promise<Map<string, ArchivePrefs>> {
    const out = new Map(owners.map((o) => [o, DEFAULT_PREFS]));
    let keys: Record<string, unknown>[] = [...new Set(owners)].map((o) => ({ pk: this.prefsPk(o), sk: 'prefs' }));
    for (let attempt = 0; keys.length && attempt < 5; attempt++) {
      const res = await this.db.send(new BatchGetCommand({ RequestItems: { [this.table]: { Keys: keys } } }));
      for (const item of res.Responses?.[this.table] ?? []) {
        out.set((item.pk as string).slice(PREFS_PREFIX.length + 1), { default: item.default as DefaultPref, always: item.always as string[], never: item.never as string[] });
      }
      keys = (res.UnprocessedKeys?.[this.table]?.Keys ?? []) as Record<string, unknown>[];
    }
    return out;
  }

  async setPrefs(owner: string, prefs: ArchivePrefs): Promise<void> {
    await this.db.send(new PutCommand({ TableName: this.table, Item: { pk: this.prefsPk(owner), sk: 'prefs', ...prefs } }));
  }
}
