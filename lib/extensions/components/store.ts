// Where a connected XEP-0114 component is: one item per component domain, `component#<domain>`,
// naming the connection that completed the handshake (docs/architecture.md "Components"). Stanzas to
// the domain read it (one read) and are posted to that connection.
import { DeleteCommand, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import type { ModuleStore } from '../../core/modules.ts';
import type { ConnectionTarget } from '../../core/management-api.ts';
import { TTL_ATTRIBUTE, isConditionFailure, ttlFrom } from '../../store/dynamo.ts';

export const COMPONENT_PREFIX = 'component';

export interface ComponentRegistration extends ConnectionTarget {
  domain: string;
  tenant: string;
  since: number;
  /** The connection's own end of life: an item past it is ignored. */
  expiresAt: number;
}

export class ComponentRegistry {
  constructor(private readonly store: ModuleStore) {}

  private key(domain: string) {
    return { pk: this.store.pk(COMPONENT_PREFIX, domain), sk: 'conn' };
  }

  async get(domain: string, now: number): Promise<ComponentRegistration | undefined> {
    const res = await this.store.db.send(new GetCommand({ TableName: this.store.table, Key: this.key(domain) }));
    const item = res.Item as (ComponentRegistration & Record<string, unknown>) | undefined;
    if (!item || item.expiresAt <= now) return undefined;
    return { domain: item.domain, tenant: item.tenant, connectionId: item.connectionId, endpoint: item.endpoint, since: item.since, expiresAt: item.expiresAt };
  }

  /**
   * Records `reg` unless another live connection holds the domain: `replacing` is the connection id
   * of a registration the caller found dead (its connection item is gone), which may be overwritten.
   */
  async claim(reg: ComponentRegistration, now: number, replacing?: string): Promise<boolean> {
    try {
      await this.store.db.send(
        new PutCommand({
          TableName: this.store.table,
          Item: { ...this.key(reg.domain), ...reg, [TTL_ATTRIBUTE]: ttlFrom(reg.expiresAt) },
          ConditionExpression: replacing ? 'attribute_not_exists(pk) OR expiresAt <= :now OR connectionId = :old' : 'attribute_not_exists(pk) OR expiresAt <= :now',
          ExpressionAttributeValues: { ':now': now, ...(replacing ? { ':old': replacing } : {}) },
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw err;
    }
  }

  /** Removes the registration if it still names `connectionId`. */
  async release(domain: string, connectionId: string): Promise<void> {
    try {
      await this.store.db.send(
        new DeleteCommand({ TableName: this.store.table, Key: this.key(domain), ConditionExpression: 'connectionId = :c', ExpressionAttributeValues: { ':c': connectionId } }),
      );
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
    }
  }
}
