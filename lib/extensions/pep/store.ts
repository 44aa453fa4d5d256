// PEP nodes (XEP-0163), one item per node: `pep#<owner bare JID>` / `node#<node>`, holding the
// node's configuration and its items, oldest first. One GetItem serves a publish, a retrieval or a
// configuration; the last items of many nodes are one BatchGetItem per 100 nodes. A DynamoDB item
// holds 400 KB, so a node holds at most NODE_BYTES of items (index.ts refuses more).
import { BatchGetCommand, DeleteCommand, GetCommand, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import type { ModuleStore } from '../../core/modules.ts';
import { isConditionFailure } from '../../store/dynamo.ts';

export const PEP_PREFIX = 'pep';
/** What a node's items may add up to, leaving room for the key and the configuration under 400 KB. */
export const NODE_BYTES = 380_000;

export type AccessModel = 'presence' | 'open' | 'roster' | 'whitelist';

export interface NodeConfig {
  accessModel: AccessModel;
  /** 'max': as many as the tenant allows (XEP-0060 §16.4.4, pubsub#max_items). */
  maxItems: number | 'max';
  persistItems: boolean;
  rosterGroups: string[];
  sendLastPublishedItem: 'never' | 'on_sub' | 'on_sub_and_presence';
  notifyRetract: boolean;
}

export interface PepItem {
  id: string;
  /** The <item/> as XML. */
  xml: string;
}

export interface PepNode {
  owner: string;
  node: string;
  config: NodeConfig;
  items: PepItem[];
  /** Bumped by each write; a write succeeds only over the version it read. */
  v: number;
}

export class PepStore {
  constructor(private readonly store: ModuleStore) {}

  private key(owner: string, node: string) {
    return { pk: this.store.pk(PEP_PREFIX, owner), sk: `node#${node}` };
  }

  /** One GetItem, strongly consistent (a write follows it). */
  async get(owner: string, node: string): Promise<PepNode | undefined> {
    const res = await this.store.db.send(new GetCommand({ TableName: this.store.table, Key: this.key(owner, node), ConsistentRead: true }));
    return res.Item ? fromItem(owner, res.Item) : undefined;
  }

  /** BatchGetItem per 100 (owner, node) pairs; nodes that do not exist are left out. */
  async getMany(keys: { owner: string; node: string }[]): Promise<PepNode[]> {
    const out: PepNode[] = [];
    const owners = new Map(keys.map((k) => [this.key(k.owner, k.node).pk, k.owner]));
    for (let i = 0; i < keys.length; i += 100) {
      let request: Record<string, { Keys: Record<string, unknown>[] }> | undefined = { [this.store.table]: { Keys: keys.slice(i, i + 100).map((k) => this.key(k.owner, k.node)) } };
      while (request && Object.keys(request).length) {
        const res = await this.store.db.send(new BatchGetCommand({ RequestItems: request }));
        for (const item of res.Responses?.[this.store.table] ?? []) out.push(fromItem(owners.get(item.pk as string)!, item));
        request = res.UnprocessedKeys as typeof request;
      }
    }
    return out;
  }

  /** How many nodes an account has: one Query of keys only (asked only when a node is created). */
  async count(owner: string): Promise<number> {
    const res = await this.store.db.send(
      new QueryCommand({ TableName: this.store.table, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': this.store.pk(PEP_PREFIX, owner) }, Select: 'COUNT' }),
    );
    return res.Count ?? 0;
  }

  /** One conditional PutItem over version `node.v` (0: the node must not exist). False if someone wrote first. */
  async put(node: PepNode): Promise<boolean> {
    try {
      await this.store.db.send(
        new PutCommand({
          TableName: this.store.table,
          Item: { ...this.key(node.owner, node.node), config: node.config, items: node.items, v: node.v + 1 },
          ConditionExpression: node.v === 0 ? 'attribute_not_exists(pk)' : 'v = :v',
          ...(node.v === 0 ? {} : { ExpressionAttributeValues: { ':v': node.v } }),
        }),
      );
      node.v += 1;
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw err;
    }
  }

  /** One DeleteItem. */
  async delete(owner: string, node: string): Promise<void> {
    await this.store.db.send(new DeleteCommand({ TableName: this.store.table, Key: this.key(owner, node) }));
  }
}

function fromItem(owner: string, item: Record<string, unknown>): PepNode {
  return { owner, node: String(item.sk).slice('node#'.length), config: item.config as NodeConfig, items: (item.items as PepItem[]) ?? [], v: Number(item.v ?? 0) };
}
