// The block list of an account (XEP-0191): one item, `blocking#<bare JID>` / `list`, with the blocked
// JIDs as a string set. It is the source of truth (for new sessions, offline delivery and the
// sender's own check); each live session entry carries a copy (index.ts) for delivery.
import { GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { ModuleStore } from '../../core/modules.ts';

export const BLOCKING_PREFIX = 'blocking';
const SK = 'list';

export class BlockListStore {
  private readonly db: ModuleStore['db'];
  private readonly table: string;

  constructor(private readonly store: ModuleStore) {
    this.db = store.db;
    this.table = store.table;
  }

  private key(bare: string) {
    return { pk: this.store.pk(BLOCKING_PREFIX, bare), sk: SK };
  }

  /** One GetItem (strongly consistent: a list just changed is read back as changed). */
  async get(bare: string): Promise<string[]> {
    const res = await this.db.send(new GetCommand({ TableName: this.table, Key: this.key(bare), ConsistentRead: true }));
    return listOf(res.Item);
  }

  /** Adds JIDs; one UpdateItem that returns the new list. */
  async add(bare: string, jids: string[]): Promise<string[]> {
    const res = await this.db.send(
      new UpdateCommand({
        TableName: this.table,
        Key: this.key(bare),
        UpdateExpression: 'ADD #j :j',
        ExpressionAttributeNames: { '#j': 'jids' },
        ExpressionAttributeValues: { ':j': new Set(jids) },
        ReturnValues: 'ALL_NEW',
      }),
    );
    return listOf(res.Attributes);
  }

  /** Removes JIDs (all of them with `undefined`); one UpdateItem that returns the new list. */
  async remove(bare: string, jids: string[] | undefined): Promise<string[]> {
    const res = await this.db.send(
      new UpdateCommand({
        TableName: this.table,
        Key: this.key(bare),
        UpdateExpression: jids ? 'DELETE #j :j' : 'REMOVE #j',
        ExpressionAttributeNames: { '#j': 'jids' },
        ...(jids ? { ExpressionAttributeValues: { ':j': new Set(jids) } } : {}),
        ReturnValues: 'ALL_NEW',
      }),
    );
    return listOf(res.Attributes);
  }
}

function listOf(item: Record<string, unknown> | undefined): string[] {
  const set = item?.jids as Set<string> | undefined;
  return set ? [...set].sort() : [];
}
