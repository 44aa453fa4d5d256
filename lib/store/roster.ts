// Rosters (RFC 6121 §2): one item per (owner, contact), queried whole by owner.
import { DeleteCommand, GetCommand, PutCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { partitionItems } from './dynamo.ts';
import type { SubscriptionState } from '../extensions/subscription-states.ts';

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

const key = (owner: string, contact: string) => ({ pk: `roster#${owner}`, sk: contact });

export class RosterStore {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  async list(owner: string): Promise<RosterItem[]> {
    return (await partitionItems(this.db, this.table, `roster#${owner}`)).map(strip);
  }

  async get(owner: string, contact: string): Promise<RosterItem | undefined> {
    const res = await this.db.send(new GetCommand({ TableName: this.table, Key: key(owner, contact) }));
    return res.Item ? strip(res.Item) : undefined;
  }

  async put(owner: string, item: RosterItem): Promise<void> {
    await this.db.send(new PutCommand({ TableName: this.table, Item: { ...key(owner, item.jid), ...item } }));
  }

  async remove(owner: string, contact: string): Promise<void> {
    await this.db.send(new DeleteCommand({ TableName: this.table, Key: key(owner, contact) }));
  }
}

function strip(item: Record<string, unknown>): RosterItem {
  const { pk: _pk, sk: _sk, ...rec } = item;
  return rec as unknown as RosterItem;
}
