// vCards (XEP-0054), two items per account under `vcard#<bare JID>`:
//   vcard   the vCard as stored (its XML) and its avatar hash
//   photo   the avatar hash alone (XEP-0153), so that stamping it on presence reads a few bytes, not
//           a vCard of up to 130 KB (a read costs by the size of the item, docs/architecture.md
//           "Cost is a feature")
// The photo item exists once a vCard was stored; '' then means "no image".
import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import type { ModuleStore } from '../../core/modules.ts';

export const VCARD_PREFIX = 'vcard';

export class VCardStore {
  private readonly db: ModuleStore['db'];
  private readonly table: string;

  constructor(private readonly store: ModuleStore) {
    this.db = store.db;
    this.table = store.table;
  }

  private key(bare: string, sk: 'vcard' | 'photo') {
    return { pk: this.store.pk(VCARD_PREFIX, bare), sk };
  }

  /** The stored vCard's XML; one GetItem (strongly consistent: a vCard just set reads back as set). */
  async get(bare: string): Promise<string | undefined> {
    const res = await this.db.send(new GetCommand({ TableName: this.table, Key: this.key(bare, 'vcard'), ConsistentRead: true }));
    return res.Item?.xml as string | undefined;
  }

  /**
   * Stores a vCard: one PutItem, which returns the old item; a second PutItem for the photo item
   * only when the avatar hash changed (or there was no vCard before).
   */
  async put(bare: string, xml: string, photo: string, now: number): Promise<void> {
    const res = await this.db.send(new PutCommand({ TableName: this.table, Item: { ...this.key(bare, 'vcard'), xml, photo, updatedAt: now }, ReturnValues: 'ALL_OLD' }));
    if (res.Attributes?.photo === photo) return;
    await this.db.send(new PutCommand({ TableName: this.table, Item: { ...this.key(bare, 'photo'), photo } }));
  }

  /** The avatar hash ('' for no image), undefined when no vCard was ever stored; one small GetItem. */
  async photo(bare: string): Promise<string | undefined> {
    const res = await this.db.send(new GetCommand({ TableName: this.table, Key: this.key(bare, 'photo'), ConsistentRead: true }));
    return res.Item?.photo as string | undefined;
  }
}
