// Tenants (XMPP domains) are items an admin can edit by hand in the console; handlers cache them
// for a few seconds only, so a change takes effect without a deploy or restart (docs/architecture.md "Data").
// Every field is documented in the README ("The tenant item").
import { type Clock, systemClock } from './clock.ts';
import { BatchGetCommand, DeleteCommand, GetCommand, PutCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { partitionItems } from './dynamo.ts';
import { type SettingBlock, type TenantLog, type TenantRecord, parseTenantItem } from './tenant-schema.ts';

// The types come from the schema (tenant-schema.ts), so they cannot drift from what is checked.
export type { JwtSettings, LoginMethod, SettingBlock, TenantLimits, TenantLog, TenantRecord, TokenSettings } from './tenant-schema.ts';

export interface TenantStoreOptions {
  /** How long a read is reused, in milliseconds. Default 3000. */
  cacheMs?: number;
  /** Setting blocks of the feature modules the server runs (the MUC service's `muc`, …). */
  blocks?: readonly SettingBlock[];
  /** Where fields ignored and items refused are reported (README "The tenant item"). Default: nowhere. */
  log?: TenantLog;
  /** Time source of the cache (tests move it). Default the system clock. */
  clock?: Clock;
}

const SILENT: TenantLog = { warn() {}, error() {} };

const key = (domain: string) => ({ pk: `tenant#${domain}`, sk: 'tenant' });
const LIST_PK = 'tenants';
const MAX_CACHED_TENANTS = 10_000;

export class TenantStore {
  private cache = new Map<string, { at: number; value: TenantRecord | undefined }>();
  /**
   * The last item read per domain, kept when `put` drops it from the cache: what this process's
   * handlers last acted on, the tenant watcher's baseline for a domain it starts to watch (lastServed).
   */
  private served = new Map<string, { tenant: TenantRecord | undefined }>();
  /** The last item reported per domain: an unchanged bad item is logged once, not at every re-read. */
  private reported = new Map<string, string>();
  readonly cacheMs: number;
  readonly blocks: readonly SettingBlock[];
  private readonly log: TenantLog;
  private readonly clock: Clock;

  /** `options` may be the cache time alone (in milliseconds), as before setting blocks existed. */
  constructor(
    private readonly db: DynamoDBDocumentClient,
    private readonly table: string,
    options: number | TenantStoreOptions = {},
  ) {
    const o = typeof options === 'number' ? { cacheMs: options } : options;
    this.cacheMs = o.cacheMs ?? 3000;
    this.blocks = o.blocks ?? [];
    this.log = o.log ?? SILENT;
    this.clock = o.clock ?? systemClock;
  }

  /**
   * Every item read is parsed (README "The tenant item"): a bad field is logged and dropped so its
   * default applies; an item that cannot be served at all (no domain, no boolean enabled) reads as
   * no tenant, so its streams get host-unknown and its live sessions host-gone.
   */
  private parse(domain: string, item: Record<string, unknown>): TenantRecord | undefined {
    const raw = strip(item);
    const seen = JSON.stringify(raw);
    const quiet = this.reported.get(domain) === seen;
    if (!quiet) {
      if (this.reported.size >= MAX_CACHED_TENANTS) this.reported.delete(this.reported.keys().next().value as string);
      this.reported.set(domain, seen);
    }
    return parseTenantItem(raw, this.blocks, quiet ? SILENT : this.log, domain).tenant;
  }

  /** The tenant, from a cache no older than `cacheMs`. */
  async get(domain: string, now = this.clock.now()): Promise<TenantRecord | undefined> {
    const hit = this.cache.get(domain);
    if (hit && now - hit.at < this.cacheMs) return hit.value;
    const res = await this.db.send(new GetCommand({ TableName: this.table, Key: key(domain) }));
    const value = res.Item ? this.parse(domain, res.Item) : undefined;
    // Any domain a client names (a stream's `to`, a stanza's address) is looked up here, so the cache
    // of misses would grow without end in a long-lived process: drop the oldest entry beyond a cap.
    if (this.cache.size >= MAX_CACHED_TENANTS) this.cache.delete(this.cache.keys().next().value as string);
    this.cache.set(domain, { at: now, value });
    this.serve(domain, value);
    return value;
  }

  /** The item this store last read for `domain` (undefined: never read, or forgotten beyond the cap). */
  lastServed(domain: string): { tenant: TenantRecord | undefined } | undefined {
    return this.served.get(domain);
  }

  private serve(domain: string, tenant: TenantRecord | undefined): void {
    this.served.delete(domain);
    if (this.served.size >= MAX_CACHED_TENANTS) this.served.delete(this.served.keys().next().value as string);
    this.served.set(domain, { tenant });
  }

  /**
   * Fresh reads of several tenants (the watcher's poll), refreshing the cache. A key DynamoDB leaves
   * unprocessed is retried, never reported as a deleted tenant (whose sessions would be closed).
   */
  async getMany(domains: string[], now = this.clock.now()): Promise<Map<string, TenantRecord | undefined>> {
    const out = new Map<string, TenantRecord | undefined>(domains.map((d) => [d, undefined]));
    for (let i = 0; i < domains.length; i += 100) {
      let keys: Record<string, unknown>[] = domains.slice(i, i + 100).map(key);
      for (let attempt = 0; keys.length && attempt < 5; attempt++) {
        const res = await this.db.send(new BatchGetCommand({ RequestItems: { [this.table]: { Keys: keys } } }));
        // Keyed by the item's key, not its `domain` field, which a hand edit may have changed or removed.
        for (const item of res.Responses?.[this.table] ?? []) {
          const domain = (item.pk as string).slice('tenant#'.length);
          out.set(domain, this.parse(domain, item));
        }
        keys = (res.UnprocessedKeys?.[this.table]?.Keys ?? []) as Record<string, unknown>[];
        if (keys.length) await new Promise((r) => setTimeout(r, 20 * 2 ** attempt));
      }
      if (keys.length) throw new Error(`BatchGetItem left ${keys.length} tenant keys unprocessed`);
    }
    for (const [d, t] of out) {
      this.cache.set(d, { at: now, value: t });
      this.serve(d, t);
    }
    return out;
  }

  async put(tenant: TenantRecord): Promise<void> {
    await this.db.send(new PutCommand({ TableName: this.table, Item: { ...key(tenant.domain), ...tenant, updatedAt: Date.now() } }));
    // An index item lets `list` run as a Query rather than a Scan.
    await this.db.send(new PutCommand({ TableName: this.table, Item: { pk: LIST_PK, sk: tenant.domain } }));
    this.cache.delete(tenant.domain);
  }

  /**
   * Switches a tenant on or off without rewriting the rest of its item (fields this process does not
   * know, such as another module's block, stay). False if there is no such tenant.
   */
  async setEnabled(domain: string, enabled: boolean): Promise<boolean> {
    try {
      await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: key(domain),
          UpdateExpression: 'SET enabled = :e, updatedAt = :now',
          ConditionExpression: 'attribute_exists(pk)',
          ExpressionAttributeValues: { ':e': enabled, ':now': Date.now() },
        }),
      );
    } catch (err) {
      if ((err as Error).name === 'ConditionalCheckFailedException') return false;
      throw err;
    } finally {
      this.cache.delete(domain);
    }
    return true;
  }

  async remove(domain: string): Promise<boolean> {
    const res = await this.db.send(new DeleteCommand({ TableName: this.table, Key: key(domain), ReturnValues: 'ALL_OLD' }));
    await this.db.send(new DeleteCommand({ TableName: this.table, Key: { pk: LIST_PK, sk: domain } }));
    this.cache.delete(domain);
    return !!res.Attributes;
  }

  /** Domains created through our tools (items added by hand in the console are found by `get`). */
  async list(): Promise<string[]> {
    return (await partitionItems(this.db, this.table, LIST_PK, 'sk')).map((i) => i.sk as string);
  }
}

function strip(item: Record<string, unknown>): Record<string, unknown> {
  const { pk: _pk, sk: _sk, ...rec } = item;
  return rec;
}
