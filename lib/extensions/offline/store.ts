// Offline message storage (XEP-0160): messages for an account with no available resource, one item
// each in `offline#<bare JID>`, sorted by arrival, delivered in order at its next initial presence.
import { randomBytes } from 'node:crypto';
import { BatchWriteCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import type { ModuleStore } from '../../core/modules.ts';
import { TTL_ATTRIBUTE, partitionItems, ttlFrom } from '../../store/dynamo.ts';

export interface OfflineMessage {
  id: string;
  storedAt: number;
  xml: string;
}

export const OFFLINE_PREFIX = 'offline';

/** How long an offline message is kept before its expiry attribute lets it go. */
export const OFFLINE_RETENTION_MS = 30 * 24 * 60 * 60_000;

export class OfflineStore {
  private readonly db: ModuleStore['db'];
  private readonly table: string;
  private readonly pk: (bare: string) => string;

  constructor(
    store: ModuleStore,
    private readonly retentionMs = OFFLINE_RETENTION_MS,
  ) {
    this.db = store.db;
    this.table = store.table;
    this.pk = (bare) => store.pk(OFFLINE_PREFIX, bare);
  }

  /** Messages this process stored in the same millisecond, so that they keep their order. */
  private lastAt = 0;
  private sameMs = 0;

  async store(bare: string, xml: string, now = Date.now()): Promise<void> {
    // Sort key: time first so a Query returns messages in arrival order; then a counter, so that
    // messages stored in one millisecond (a stream-managed session's kept queue) keep theirs too.
    this.sameMs = now === this.lastAt ? this.sameMs + 1 : 0;
    this.lastAt = now;
    const id = `${now.toString().padStart(15, '0')}#${this.sameMs.toString(36).padStart(4, '0')}${randomBytes(3).toString('hex')}`;
    const expiresAt = now + this.retentionMs;
    await this.db.send(
      new PutCommand({
        TableName: this.table,
        Item: { pk: this.pk(bare), sk: id, storedAt: now, xml, expiresAt, [TTL_ATTRIBUTE]: ttlFrom(expiresAt) },
      }),
    );
  }

  async list(bare: string, now = Date.now()): Promise<OfflineMessage[]> {
    return (await partitionItems(this.db, this.table, this.pk(bare)))
      .filter((item) => (item.expiresAt as number) > now)
      .map((item) => ({ id: item.sk as string, storedAt: item.storedAt as number, xml: item.xml as string }));
  }

  async remove(bare: string, ids: string[]): Promise<void> {
    for (let i = 0; i < ids.length; i += 25) {
      let requests: Record<string, unknown>[] = ids.slice(i, i + 25).map((id) => ({ DeleteRequest: { Key: { pk: this.pk(bare), sk: id } } }));
      for (let attempt = 0; requests.length && attempt < 5; attempt++) {
        const res = await this.db.send(new BatchWriteCommand({ RequestItems: { [this.table]: requests as never } }));
        requests = (res.UnprocessedItems?.[this.table] ?? []) as Record<string, unknown>[];
        if (requests.length) await new Promise((r) => setTimeout(r, 20 * 2 ** attempt));
      }
    }
  }
}
