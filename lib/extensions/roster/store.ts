// Rosters (RFC 6121 §2): one item per (owner, contact) in the partition `roster#<owner>`, queried
// whole by owner. The roster module declares the `roster` prefix (index.ts), so a purge finds it.
import { DeleteCommand, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import type { ModuleStore } from '../../core/modules.ts';
import { partitionItems } from '../../store/dynamo.ts';
import type { SubscriptionState } from './subscription-states.ts';

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
}

export const ROSTER_PREFIX = 'roster';

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
    return (await partitionItems(this.db, this.table, this.store.pk(ROSTER_PREFIX, owner))).map(strip);
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
