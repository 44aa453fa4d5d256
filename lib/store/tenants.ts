// Tenants (XMPP domains) are items an admin can edit by hand in the console; handlers cache them
// for a few seconds only, so a change takes effect without a deploy or restart (DESIGN.md "Data").
// Every field is documented in the README ("The tenant item").
import { type Clock, systemClock } from './clock.ts';
import { BatchGetCommand, DeleteCommand, GetCommand, PutCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { partitionItems } from './dynamo.ts';

export type LoginMethod = 'password' | 'jwt' | 'token';

export interface JwtSettings {
  /** Shared secret for HS256/384/512, as UTF-8 text. */
  secret?: string;
  /** Verification keys: PEM public keys or JWK objects (RS*, PS*, ES*, EdDSA). */
  keys?: (string | Record<string, unknown>)[];
  /** A JWKS URL, fetched with a timeout, cached, refetched on an unknown `kid`. */
  jwksUrl?: string;
  /** Least time between two JWKS fetches caused by tokens with an unknown `kid`, in seconds. Default 10. */
  jwksCooldownSeconds?: number;
  /** Longest time fetched JWKS keys are used before the JWKS is fetched again, in seconds. Default 600. */
  jwksCacheSeconds?: number;
  /** Accepted `alg` values; by default those the configured keys can verify. `none` never. */
  algorithms?: string[];
  issuer?: string;
  audience?: string | string[];
  /** The claim that names the user (its local part or bare JID). Default `sub`. */
  usernameClaim?: string;
  /** Clock tolerance for exp/nbf/iat, in seconds. Default 30. */
  clockToleranceSeconds?: number;
}

export interface TokenSettings {
  /** HMAC key for server-issued tokens (MongooseIM token format, HMAC-SHA-384), as UTF-8 text. */
  secret: string;
  /** Lifetime of an access token, in seconds. Default 3600 (1 hour, as MongooseIM). */
  accessValiditySeconds?: number;
  /** Lifetime of a refresh token, in seconds. Default 2160000 (25 days, as MongooseIM). */
  refreshValiditySeconds?: number;
}

export interface TenantLimits {
  /** Simultaneous sessions (resources) per account. */
  sessionsPerUser?: number;
  /** Largest stanza, in bytes. */
  maxStanzaBytes?: number;
  /** Sustained stanzas per second per connection (bursts of twice that are allowed). */
  stanzasPerSecond?: number;
  /** Rooms a user may create in the tenant's MUC service (beyond it, entering a new room gets not-allowed). */
  roomsPerUser?: number;
}

/** The tenant's Multi-User Chat service (XEP-0045), at `<subdomain>.<domain>`. */
export interface MucSettings {
  /** false: no MUC service for this tenant (its address is not served). Default true. */
  enabled?: boolean;
  /** The first label of the service's address: `<subdomain>.<domain>`. One DNS label. Default 'conference'. */
  subdomain?: string;
  /** The service's name in service discovery. Default 'Chatrooms'. */
  name?: string;
  /** Who may create a room by entering one that does not exist: 'anyone' (default) or 'admins' (admin API and CLI only; users get not-allowed). */
  roomCreation?: 'anyone' | 'admins';
  /** The most occupants a room may have (its muc#roomconfig_maxusers may not exceed it). Default 200, at most 500 (one item holds a room). */
  maxOccupants?: number;
  /** Messages kept for discussion history and the most a new occupant gets (muc#maxhistoryfetch may not exceed it). Default 50. */
  historyLength?: number;
  /** How long discussion history is kept, in seconds. Default 604800 (7 days). */
  historyRetentionSeconds?: number;
  /** Users with a reserved nickname (member list) always get it, whatever they ask for (status 210). Default false. */
  enforceReservedNicks?: boolean;
}

export interface TenantRecord {
  domain: string;
  /** false: logins are refused with host-unknown and live sessions are closed with host-gone. */
  enabled: boolean;
  createdAt?: number;
  updatedAt?: number;
  /** How users may log in. Default ['password']. */
  loginMethods?: LoginMethod[];
  jwt?: JwtSettings;
  tokens?: TokenSettings;
  /** XEP-0077 in-band registration. Default 'closed'. */
  registration?: 'open' | 'closed';
  limits?: TenantLimits;
  /** Optional features switched on for this tenant (extension names). */
  features?: string[];
  /** Multi-User Chat service settings; absent: the service runs at conference.<domain> with the defaults. */
  muc?: MucSettings;
  /** Other tenants this one may exchange stanzas with; both sides must list each other. Default none. */
  federation?: string[];
  /** Free-form labels for the operator (owner, plan, …). */
  labels?: Record<string, string>;
}

const key = (domain: string) => ({ pk: `tenant#${domain}`, sk: 'tenant' });
const LIST_PK = 'tenants';
const MAX_CACHED_TENANTS = 10_000;

export class TenantStore {
  private cache = new Map<string, { at: number; value: TenantRecord | undefined }>();

  constructor(
    private readonly db: DynamoDBDocumentClient,
    private readonly table: string,
    readonly cacheMs = 3000,
    private readonly clock: Clock = systemClock,
  ) {}

  /** The tenant, from a cache no older than `cacheMs`. */
  async get(domain: string, now = this.clock.now()): Promise<TenantRecord | undefined> {
    const hit = this.cache.get(domain);
    if (hit && now - hit.at < this.cacheMs) return hit.value;
    const res = await this.db.send(new GetCommand({ TableName: this.table, Key: key(domain) }));
    const value = res.Item ? (strip(res.Item) as unknown as TenantRecord) : undefined;
    // Any domain a client names (a stream's `to`, a stanza's address) is looked up here, so the cache
    // of misses would grow without end in a long-lived process: drop the oldest entry beyond a cap.
    if (this.cache.size >= MAX_CACHED_TENANTS) this.cache.delete(this.cache.keys().next().value as string);
    this.cache.set(domain, { at: now, value });
    return value;
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
        for (const item of res.Responses?.[this.table] ?? []) out.set((item.pk as string).slice('tenant#'.length), strip(item) as unknown as TenantRecord);
        keys = (res.UnprocessedKeys?.[this.table]?.Keys ?? []) as Record<string, unknown>[];
        if (keys.length) await new Promise((r) => setTimeout(r, 20 * 2 ** attempt));
      }
      if (keys.length) throw new Error(`BatchGetItem left ${keys.length} tenant keys unprocessed`);
    }
    for (const [d, t] of out) this.cache.set(d, { at: now, value: t });
    return out;
  }

  async put(tenant: TenantRecord): Promise<void> {
    await this.db.send(new PutCommand({ TableName: this.table, Item: { ...key(tenant.domain), ...tenant, updatedAt: Date.now() } }));
    // An index item lets `list` run as a Query rather than a Scan.
    await this.db.send(new PutCommand({ TableName: this.table, Item: { pk: LIST_PK, sk: tenant.domain } }));
    this.cache.delete(tenant.domain);
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
