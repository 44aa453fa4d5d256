// Private XML storage (XEP-0049), one partition per account, `private#<bare JID>`:
//   ns#<namespace>   what the account stored under that namespace (its XML)
//   @count           how many namespaces it has used, for the tenant's limit
// XEP-0049 has no removal: a namespace once used stays counted until the account's data is purged.
import { GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { ModuleStore } from '../../core/modules.ts';
import { isConditionFailure } from '../../store/dynamo.ts';

export const PRIVATE_PREFIX = 'private';

export class TooManyNamespacesError extends Error {
  constructor(readonly max: number) {
    super(`at most ${max} namespaces`);
    this.name = 'TooManyNamespacesError';
  }
}

export class PrivateStore {
  private readonly db: ModuleStore['db'];
  private readonly table: string;

  constructor(private readonly store: ModuleStore) {
    this.db = store.db;
    this.table = store.table;
  }

  private key(bare: string, sk: string) {
    return { pk: this.store.pk(PRIVATE_PREFIX, bare), sk };
  }

  /** The XML stored under a namespace; one GetItem (strongly consistent: a set reads back at once). */
  async get(bare: string, namespace: string): Promise<string | undefined> {
    const res = await this.db.send(new GetCommand({ TableName: this.table, Key: this.key(bare, `ns#${namespace}`), ConsistentRead: true }));
    return res.Item?.xml as string | undefined;
  }

  /**
   * Stores the XML of a namespace. Replacing: one conditional PutItem. A new namespace: that put
   * fails its condition, one UpdateItem counts the namespace (refused past `maxItems`), and a
   * second PutItem stores it.
   */
  async put(bare: string, namespace: string, xml: string, maxItems: number, now: number): Promise<void> {
    const Item = { ...this.key(bare, `ns#${namespace}`), namespace, xml, updatedAt: now };
    try {
      await this.db.send(new PutCommand({ TableName: this.table, Item, ConditionExpression: 'attribute_exists(pk)' }));
      return;
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
    }
    try {
      await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: this.key(bare, '@count'),
          UpdateExpression: 'SET #n = if_not_exists(#n, :zero) + :one',
          ConditionExpression: 'attribute_not_exists(#n) OR #n < :max',
          ExpressionAttributeNames: { '#n': 'n' },
          ExpressionAttributeValues: { ':zero': 0, ':one': 1, ':max': maxItems },
        }),
      );
    } catch (err) {
      if (isConditionFailure(err)) throw new TooManyNamespacesError(maxItems);
      throw err;
    }
    await this.db.send(new PutCommand({ TableName: this.table, Item }));
  }
}
