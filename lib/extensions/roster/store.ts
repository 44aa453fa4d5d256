// Rosters (RFC 6121 §2): one item per (owner, contact) in the partition `roster#<owner>`, queried
// whole by owner. The roster module declares the `roster` prefix (index.ts), so a purge finds it.
//
// Roster versioning (RFC 6121 §2.6): the same partition holds one more item, sort key `@ver` (no bare
// JID starts with '@', RFC 7622 §3.3), a counter that each change the owner sees (each roster push) bumps
// with one UpdateItem, before the change is written: a crash in between costs clients a full roster, never
// a missed change. The changed item records the counter value (`ver`) in its own write, and a removal
// records it in the counter item (`removedAt`), so the roster get's one Query, which returns the counter
// with the items, also tells which items changed since a version the client knows. A version is
// `<epoch>-<counter>`, the epoch drawn when the counter item is created, so an account deleted and made
// again never repeats a version of its predecessor; a roster that never changed has version `0`.
import { randomBytes } from 'node:crypto';
import { DeleteCommand, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { ModuleStore } from '../../core/modules.ts';
import { partitionItems } from '../../store/dynamo.ts';
import type { SubscriptionState } from './subscription-states.ts';
import { type RosterVersion, versionString } from './roster-version.ts';

export interface RosterItem extends SubscriptionState {
  /** The contact's bare JID. */
  jid: string;
  name?: string;
  groups: string[];
  /** The subscribe request waiting for the owner's answer (RFC 6121 §3.1.3), redelivered at login. */
  pendingInStanza?: string;
  /**
   * Part of the roster the owner sees. False for an item that only tracks an inbound request the
   * owner has not answered (RFC 6121 §3.1.3: no roster item is created for it).
   */
  inRoster: boolean;
  /** The roster version counter when this item last changed visibly (RFC 6121 §2.6); absent before versioning. */
  ver?: number;
}

export const ROSTER_PREFIX = 'roster';
const VERSION_SK = '@ver';
/** The version of a roster that has never changed (RFC 6121 §2.6.1: any string the server chooses). */
export const INITIAL_VERSION = '0';

export class RosterStore {
  private readonly db: ModuleStore['db'];
  private readonly table: string;

  constructor(private readonly store: ModuleStore) {
    this.db = store.db;
    this.table = store.table;
  }

  private key(owner: string, contact: string) {
    return { pk: this.store.pk(ROSTER_PREFIX, owner), sk: contact };
  }

  async list(owner: string): Promise<RosterItem[]> {
    return (await this.listVersioned(owner)).items;
  }

  /** The items and the roster's version (RFC 6121 §2.6), from one Query; no counter: the roster never changed. */
  async listVersioned(owner: string): Promise<{ items: RosterItem[]; ver: string; counter?: RosterVersion }> {
    const all = await partitionItems(this.db, this.table, this.store.pk(ROSTER_PREFIX, owner));
    const found = all.find((i) => i.sk === VERSION_SK);
    const counter = found && { epoch: found.epoch as string, n: found.n as number, ...(found.removedAt !== undefined ? { removedAt: found.removedAt as number } : {}) };
    return { items: all.filter((i) => i.sk !== VERSION_SK).map(strip), ver: counter ? versionString(counter) : INITIAL_VERSION, counter };
  }

  /**
   * A new version of the owner's roster (RFC 6121 §2.6.1) for a change about to be written, one UpdateItem;
   * `removal` records it as the latest removal. Returns the version string and the counter value.
   */
  async bumpVersion(owner: string, removal = false): Promise<{ ver: string; n: number }> {
    const res = await this.db.send(
      new UpdateCommand({
        TableName: this.table,
        Key: { pk: this.store.pk(ROSTER_PREFIX, owner), sk: VERSION_SK },
        // Operands are read before the update, so both SETs of #n's successor see the same old value.
        UpdateExpression: `SET #epoch = if_not_exists(#epoch, :epoch), #n = if_not_exists(#n, :zero) + :one${removal ? ', #rm = if_not_exists(#n, :zero) + :one' : ''}`,
        ExpressionAttributeNames: { '#epoch': 'epoch', '#n': 'n', ...(removal ? { '#rm': 'removedAt' } : {}) },
        ExpressionAttributeValues: { ':epoch': randomBytes(6).toString('hex'), ':zero': 0, ':one': 1 },
        ReturnValues: 'ALL_NEW',
      }),
    );
    const a = res.Attributes!;
    return { ver: versionString({ epoch: a.epoch as string, n: a.n as number }), n: a.n as number };
  }

  async get(owner: string, contact: string): Promise<RosterItem | undefined> {
    const res = await this.db.send(new GetCommand({ TableName: this.table, Key: this.key(owner, contact) }));
    return res.Item ? strip(res.Item) : undefined;
  }

  async put(owner: string, item: RosterItem): Promise<void> {
    await this.db.send(new PutCommand({ TableName: this.table, Item: { ...this.key(owner, item.jid), ...item } }));
  }

  async remove(owner: string, contact: string): Promise<void> {
    await this.db.send(new DeleteCommand({ TableName: this.table, Key: this.key(owner, contact) }));
  }
}

function strip(item: Record<string, unknown>): RosterItem {
  const { pk: _pk, sk: _sk, ...rec } = item;
  return rec as unknown as RosterItem;
}

const stores = new WeakMap<object, RosterStore>();

/** The roster store of a server, set up by the roster module (index.ts). */
export function rosterOf(server: object): RosterStore {
  const store = stores.get(server);
  if (!store) throw new Error('the roster module is not installed on this server');
  return store;
}

export function setRosterStore(server: object, store: RosterStore): void {
  stores.set(server, store);
}
