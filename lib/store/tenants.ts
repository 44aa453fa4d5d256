// Tenants (XMPP domains) are items an admin can edit by hand; handlers cache them for a few seconds
// only, so a change takes effect without a deploy or restart (DESIGN.md "Data").
import { DeleteCommand, GetCommand, PutCommand, QueryCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

export interface TenantRecord {
  domain: string;
  enabled: boolean;
  createdAt?: number;
  labels?: Record<string, string>;
}

const key = (domain: string) => ({ pk: `tenant#${domain}`, sk: 'tenant' });
const LIST_PK = 'tenants';

export class TenantStore {
  private cache = new Map<string, { at: number; value: TenantRecord | undefined }>();

  constructor(
    private readonly db: DynamoDBDocumentClient,
    private readonly table: string,
    private readonly cacheMs = 3000,
  ) {}

  /** The tenant, from a cache no older than `cacheMs`. */
  async get(domain: string, now = Date.now()): Promise<TenantRecord | undefined> {
    const hit = this.cache.get(domain);
    if (hit && now - hit.at < this.cacheMs) return hit.value;
    const res = await this.db.send(new GetCommand({ TableName: this.table, Key: key(domain) }));
    const value = res.Item ? (strip(res.Item) as unknown as TenantRecord) : undefined;
    this.cache.set(domain, { at: now, value });
    return value;
  }

  async put(tenant: TenantRecord): Promise<void> {
    await this.db.send(new PutCommand({ TableName: this.table, Item: { ...key(tenant.domain), ...tenant } }));
    // An index item lets `list` run as a Query rather than a Scan.
    await this.db.send(new PutCommand({ TableName: this.table, Item: { pk: LIST_PK, sk: tenant.domain } }));
    this.cache.delete(tenant.domain);
  }

  async remove(domain: string): Promise<void> {
    await this.db.send(new DeleteCommand({ TableName: this.table, Key: key(domain) }));
    await this.db.send(new DeleteCommand({ TableName: this.table, Key: { pk: LIST_PK, sk: domain } }));
    this.cache.delete(domain);
  }

  async list(): Promise<string[]> {
    const res = await this.db.send(
      new QueryCommand({ TableName: this.table, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': LIST_PK } }),
    );
    return (res.Items ?? []).map((i) => i.sk as string);
  }
}

function strip(item: Record<string, unknown>): Record<string, unknown> {
  const { pk: _pk, sk: _sk, ...rec } = item;
  return rec;
}
