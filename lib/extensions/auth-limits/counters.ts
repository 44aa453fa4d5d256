// The failure counters and locks of accounts and source addresses, in the module's partitions
// (docs/architecture.md "Data"): `authfail#<bare JID>` per account, `authaddr#<tenant>#<address>` per
// address. In each, `w#<window>` counts the failures of one window and `lock` holds the last lock
// (when, and how many in a row). Every item expires (`ttl`); reads enforce it, as TTL deletes late.
import { BatchGetCommand, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { ModuleStore } from '../../core/modules.ts';
import { TTL_ATTRIBUTE, isConditionFailure, ttlFrom } from '../../store/dynamo.ts';

export interface Lock {
  lockedAt: number;
  level: number;
}

/** Whose failures: an account or a source address, within a tenant. */
export type Subject = { kind: 'account'; tenant: string; account: string } | { kind: 'address'; tenant: string; address: string };

export class AuthCounters {
  constructor(private readonly store: ModuleStore) {}

  private pk(s: Subject): string {
    return s.kind === 'account' ? this.store.pk('authfail', `${s.account}@${s.tenant}`) : this.store.pk('authaddr', `${s.tenant}#${s.address}`);
  }

  /** The live locks of these subjects, in order (undefined: none), in one read. */
  async locksOf(subjects: Subject[], now: number): Promise<(Lock | undefined)[]> {
    const keys = subjects.map((s) => ({ pk: this.pk(s), sk: 'lock' }));
    let items: Record<string, unknown>[];
    if (keys.length === 1) {
      const res = await this.store.db.send(new GetCommand({ TableName: this.store.table, Key: keys[0] }));
      items = res.Item ? [res.Item] : [];
    } else {
      const res = await this.store.db.send(new BatchGetCommand({ RequestItems: { [this.store.table]: { Keys: keys } } }));
      items = res.Responses?.[this.store.table] ?? [];
      // Two small keys are never left unprocessed but under throttling; then they count as unlocked
      // rather than refusing a login, and the next attempt reads them again.
    }
    const alive = new Map(items.filter((i) => (i[TTL_ATTRIBUTE] as number) * 1000 > now).map((i) => [i.pk as string, i]));
    return keys.map((k) => {
      const item = alive.get(k.pk);
      return item ? { lockedAt: item.lockedAt as number, level: item.level as number } : undefined;
    });
  }

  /** Counts one failure in the subject's window and returns the window's count (one atomic write). */
  async addFailure(s: Subject, window: number, windowEndsAt: number): Promise<number> {
    const res = await this.store.db.send(
      new UpdateCommand({
        TableName: this.store.table,
        Key: { pk: this.pk(s), sk: `w#${window}` },
        UpdateExpression: 'ADD failures :one SET #ttl = :ttl',
        ExpressionAttributeNames: { '#ttl': TTL_ATTRIBUTE },
        ExpressionAttributeValues: { ':one': 1, ':ttl': ttlFrom(windowEndsAt) },
        ReturnValues: 'UPDATED_NEW',
      }),
    );
    return res.Attributes?.failures as number;
  }

  /**
   * Locks the subject from `now`, one level above its last lock if that is still remembered, and
   * returns the new lock. One write; two when there is no remembered lock (an expired item that TTL
   * has not deleted yet must start again at level 1, not continue its old count).
   */
  async lock(s: Subject, now: number, rememberUntil: number): Promise<Lock> {
    const key = { pk: this.pk(s), sk: 'lock' };
    const ttl = ttlFrom(rememberUntil);
    try {
      const res = await this.store.db.send(
        new UpdateCommand({
          TableName: this.store.table,
          Key: key,
          UpdateExpression: 'SET lockedAt = :now, #ttl = :ttl ADD #level :one',
          ConditionExpression: '#ttl > :nowSeconds',
          ExpressionAttributeNames: { '#ttl': TTL_ATTRIBUTE, '#level': 'level' },
          ExpressionAttributeValues: { ':now': now, ':ttl': ttl, ':one': 1, ':nowSeconds': Math.floor(now / 1000) },
          ReturnValues: 'UPDATED_NEW',
        }),
      );
      return { lockedAt: now, level: res.Attributes?.level as number };
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
    }
    await this.store.db.send(new PutCommand({ TableName: this.store.table, Item: { ...key, lockedAt: now, level: 1, [TTL_ATTRIBUTE]: ttl } }));
    return { lockedAt: now, level: 1 };
  }
}
