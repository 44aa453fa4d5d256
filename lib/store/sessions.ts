// The bound sessions (resources) of one account, kept as one item per bare JID with a map of resources,
// so routing a stanza to a user costs one read, and presence fan-out to N contacts costs N/100 batch
// reads (RFC 6121 §8.5 needs every resource of the recipient; docs/architecture.md "Cost is a feature").
import { BatchGetCommand, GetCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { isConditionFailure } from './dynamo.ts';

export interface SessionEntry {
  resource: string;
  connectionId: string;
  endpoint: string;
  boundAt: number;
  /** Hard end of life; every read ignores entries past it (a $disconnect may never come). */
  expiresAt: number;
  /** Has sent initial presence and not yet unavailable (RFC 6121 §4.2, "available resource"). */
  available: boolean;
  priority: number;
  /** The last available presence broadcast, as XML, for probes (RFC 6121 §4.3.2). */
  presence?: string;
  /** Requested the roster, so receives roster pushes (RFC 6121 §2.1.6 "interested resource"). */
  interested?: boolean;
  /** Bare or full JIDs that received directed presence (RFC 6121 §4.6.3), sent unavailable at the end. */
  directed?: string[];
  /**
   * Modules' own per-session fields, one map per module name (lib/core/modules.ts SessionData). The
   * maps are created empty at bind, so a module sets a field with one conditional update.
   */
  data?: Record<string, Record<string, unknown>>;
  /** Counted in its tenant's live sessions (quotas.connections), so its end gives the place back. */
  quota?: boolean;
}

export class SessionLimitError extends Error {
  constructor(bare: string, max: number) {
    super(`${bare} already has ${max} sessions`);
    this.name = 'SessionLimitError';
  }
}

const key = (bare: string) => ({ pk: `sessions#${bare}`, sk: 'sessions' });
const MAP = 'res';

function live(item: Record<string, unknown> | undefined, now: number): SessionEntry[] {
  const map = (item?.[MAP] ?? {}) as Record<string, SessionEntry>;
  return Object.values(map).filter((s) => s.expiresAt > now);
}

export class SessionStore {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  /** Every live session of one account: one GetItem. */
  async list(bare: string, now = Date.now()): Promise<SessionEntry[]> {
    const res = await this.db.send(new GetCommand({ TableName: this.table, Key: key(bare) }));
    return live(res.Item, now);
  }

  /** Live sessions of many accounts: one BatchGetItem per 100 accounts. */
  async listMany(bares: string[], now = Date.now()): Promise<Map<string, SessionEntry[]>> {
    const out = new Map<string, SessionEntry[]>();
    const unique = [...new Set(bares)];
    for (let i = 0; i < unique.length; i += 100) {
      let keys: Record<string, unknown>[] = unique.slice(i, i + 100).map(key);
      for (let attempt = 0; keys.length && attempt < 5; attempt++) {
        const res = await this.db.send(new BatchGetCommand({ RequestItems: { [this.table]: { Keys: keys } } }));
        for (const item of res.Responses?.[this.table] ?? []) {
          out.set((item.pk as string).slice('sessions#'.length), live(item, now));
        }
        keys = (res.UnprocessedKeys?.[this.table]?.Keys ?? []) as Record<string, unknown>[];
        if (keys.length) await new Promise((r) => setTimeout(r, 20 * 2 ** attempt));
      }
      if (keys.length) throw new Error(`BatchGetItem left ${keys.length} session keys unprocessed`);
    }
    return out;
  }

  /**
   * Adds or replaces the session for `entry.resource`. Returns the session it replaced, if any
   * (RFC 6120 §7.7.2.2: the server may terminate the older session with a conflict stream error).
   * With `maxSessions`, a new resource beyond that many live sessions throws SessionLimitError; the
   * check is part of the conditional write, so two logins at once cannot both slip past it.
   */
  async bind(bare: string, entry: SessionEntry, maxSessions?: number, now = Date.now()): Promise<SessionEntry | undefined> {
    for (let attempt = 0; attempt < 4; attempt++) {
      try {
        const res = await this.db.send(
          new UpdateCommand({
            TableName: this.table,
            Key: key(bare),
            UpdateExpression: 'SET #m.#r = :e',
            ConditionExpression: maxSessions ? 'attribute_exists(#m) AND (attribute_exists(#m.#r) OR size(#m) < :max)' : 'attribute_exists(#m)',
            ExpressionAttributeNames: { '#m': MAP, '#r': entry.resource },
            ExpressionAttributeValues: { ':e': entry, ...(maxSessions ? { ':max': maxSessions } : {}) },
            ReturnValues: 'UPDATED_OLD',
          }),
        );
        const old = (res.Attributes?.[MAP] as Record<string, SessionEntry> | undefined)?.[entry.resource];
        return old && old.connectionId !== entry.connectionId ? old : undefined;
      } catch (err) {
        if (!isConditionFailure(err)) throw err;
      }
      const current = maxSessions ? (await this.db.send(new GetCommand({ TableName: this.table, Key: key(bare), ConsistentRead: true }))).Item : undefined;
      if (current?.[MAP]) {
        // The limit was hit. Entries past their expiry do not count: drop them and try again.
        const all = Object.values(current[MAP] as Record<string, SessionEntry>);
        const expired = all.filter((e) => e.expiresAt <= now);
        if (all.length - expired.length >= maxSessions!) throw new SessionLimitError(bare, maxSessions!);
        for (const e of expired) await this.remove(bare, e.resource, e.connectionId);
        continue;
      }
      // First session ever for this account: create the map (the item is kept when it empties).
      try {
        await this.db.send(
          new UpdateCommand({
            TableName: this.table,
            Key: key(bare),
            UpdateExpression: 'SET #m = :m',
            ConditionExpression: 'attribute_not_exists(#m)',
            ExpressionAttributeNames: { '#m': MAP },
            ExpressionAttributeValues: { ':m': { [entry.resource]: entry } },
          }),
        );
        return undefined;
      } catch (err) {
        if (!isConditionFailure(err)) throw err;
      }
    }
    throw new Error(`could not bind ${bare}/${entry.resource}`);
  }

  /** Updates fields of a session only if it still belongs to `connectionId`. */
  async update(bare: string, resource: string, connectionId: string, patch: Partial<SessionEntry>): Promise<boolean> {
    const names: Record<string, string> = { '#m': MAP, '#r': resource, '#cid': 'connectionId' };
    const values: Record<string, unknown> = { ':cid': connectionId };
    const sets: string[] = [];
    const removes: string[] = [];
    for (const [field, value] of Object.entries(patch)) {
      names[`#f_${field}`] = field;
      if (value === undefined) removes.push(`#m.#r.#f_${field}`);
      else {
        values[`:v_${field}`] = value;
        sets.push(`#m.#r.#f_${field} = :v_${field}`);
      }
    }
    try {
      await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: key(bare),
          UpdateExpression: [sets.length ? `SET ${sets.join(', ')}` : '', removes.length ? `REMOVE ${removes.join(', ')}` : '']
            .filter(Boolean)
            .join(' '),
          ConditionExpression: '#m.#r.#cid = :cid',
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

  /**
   * Sets (value) or removes (undefined) `data.<module>.<field>` of a session that still belongs to
   * `connectionId`, and returns the entry as written (undefined if the session is not that
   * connection's). An entry bound before the module existed lacks the map: it is created then.
   */
  async updateData(bare: string, resource: string, connectionId: string, module: string, field: string, value: unknown): Promise<SessionEntry | undefined> {
    const names = { '#m': MAP, '#r': resource, '#cid': 'connectionId', '#d': 'data', '#mod': module, '#f': field };
    const path = '#m.#r.#d.#mod.#f';
    try {
      const res = await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: key(bare),
          UpdateExpression: value === undefined ? `REMOVE ${path}` : `SET ${path} = :v`,
          ConditionExpression: '#m.#r.#cid = :cid',
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: { ':cid': connectionId, ...(value === undefined ? {} : { ':v': value }) },
          // The entry as written comes back with the write, at no read cost.
          ReturnValues: 'ALL_NEW',
        }),
      );
      return (res.Attributes?.[MAP] as Record<string, SessionEntry> | undefined)?.[resource];
    } catch (err) {
      if (isConditionFailure(err)) return undefined;
      // "The document path provided in the update expression is invalid": no map for this module yet.
      if ((err as { name?: string }).name !== 'ValidationException' || value === undefined) throw err;
    }
    const entry = (await this.list(bare)).find((s) => s.resource === resource && s.connectionId === connectionId);
    if (!entry) return undefined;
    const data = { ...entry.data, [module]: { ...entry.data?.[module], [field]: value } };
    return (await this.update(bare, resource, connectionId, { data })) ? { ...entry, data } : undefined;
  }


  /** Removes the session if it still belongs to `connectionId`; returns it, or undefined if already gone. */
  async remove(bare: string, resource: string, connectionId: string): Promise<SessionEntry | undefined> {
    try {
      const res = await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: key(bare),
          UpdateExpression: 'REMOVE #m.#r',
          ConditionExpression: '#m.#r.#cid = :cid',
          ExpressionAttributeNames: { '#m': MAP, '#r': resource, '#cid': 'connectionId' },
          ExpressionAttributeValues: { ':cid': connectionId },
          ReturnValues: 'UPDATED_OLD',
        }),
      );
      return (res.Attributes?.[MAP] as Record<string, SessionEntry> | undefined)?.[resource];
    } catch (err) {
      if (isConditionFailure(err)) return undefined;
      throw err;
    }
  }
}
