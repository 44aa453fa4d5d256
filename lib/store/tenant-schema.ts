// The tenant item's one schema (README "The tenant item"): the TypeScript types, the checks of what is
// read from DynamoDB and of what an admin writes, and the OpenAPI document's Tenant component all come
// from it. The schemas are JSON Schema (TypeBox), so the admin API serves them as they are.
//
// Feature modules declare their own block of the item (the MUC service's `muc`) as a SettingBlock;
// tenantItemSchema composes the core fields with the blocks a server runs.
import { isIP } from 'node:net';
import { domainToASCII } from 'node:url';
import { type Static, type TObject, type TSchema, Type } from '@sinclair/typebox';
import { Check } from '@sinclair/typebox/value';
import { Errors } from '@sinclair/typebox/errors';
import { JIDError, prepareDomainpart } from '../xmpp/jid.ts';

/** A feature module's block of the tenant item: its top-level key and the schema of its value. */
export interface SettingBlock {
  key: string;
  schema: TSchema;
}

/** What parseTenantItem logs to; a pino logger fits. */
export interface TenantLog {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/**
 * Marks a field whose value is never logged nor shown (x- keywords are allowed in OpenAPI 3.1
 * schemas): spread it into the field's options, `Type.String({ ...SECRET })`. A module's block marks
 * its own secrets the same way.
 */
export const SECRET = { 'x-secret': true } as const;

/** What the admin API and the CLI show instead of a secret's value; written back, it keeps the value. */
export const REDACTED = '(set)';

/** The largest tenant item an admin may write, as JSON: a tenant is read at every login. */
export const MAX_TENANT_ITEM_BYTES = 64 * 1024;

/** The longest tenant domain, in octets of its DNS (A-label) form (RFC 1035 §2.3.4). */
export const MAX_DOMAIN_OCTETS = 253;

const seconds = (description: string, minimum = 1) => Type.Integer({ minimum, description });

export const LoginMethodSchema = Type.Union([Type.Literal('password'), Type.Literal('jwt'), Type.Literal('token')], {
  description: 'password: SCRAM-SHA-256, SCRAM-SHA-1, PLAIN; jwt: PLAIN or OAUTHBEARER with a JWT; token: X-OAUTH with server-issued tokens',
});

export const JwtSettingsSchema = Type.Object(
  {
    secret: Type.Optional(Type.String({ minLength: 1, description: 'Shared secret for HS256/384/512, as UTF-8 text.', ...SECRET })),
    keys: Type.Optional(Type.Array(Type.Union([Type.String({ minLength: 1 }), Type.Record(Type.String(), Type.Unknown())]), {
      description: 'Verification keys: PEM public keys or JWK objects (RS*, PS*, ES*, EdDSA).',
      ...SECRET,
    })),
    jwksUrl: Type.Optional(Type.String({ pattern: '^https?://', description: 'A JWKS URL, fetched with a 3 s timeout, cached, refetched on an unknown `kid`.' })),
    jwksCooldownSeconds: Type.Optional(seconds('Least time between two JWKS fetches caused by tokens with an unknown `kid`, in seconds. Default 10.', 0)),
    jwksCacheSeconds: Type.Optional(seconds('Longest time fetched JWKS keys are used before the JWKS is fetched again, in seconds. Default 600.')),
    algorithms: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { description: 'Accepted `alg` values; by default those the configured keys can verify. `none` never.' })),
    issuer: Type.Optional(Type.String({ description: 'Required `iss`.' })),
    audience: Type.Optional(Type.Union([Type.String(), Type.Array(Type.String())], { description: 'Required `aud` (one of them).' })),
    usernameClaim: Type.Optional(Type.String({ minLength: 1, description: 'The claim that names the user (its local part or bare JID). Default `sub`.' })),
    clockToleranceSeconds: Type.Optional(seconds('Clock tolerance for exp/nbf/iat, in seconds. Default 30.', 0)),
  },
  { additionalProperties: false, description: 'JWT login (README "Logging in with tokens").' },
);

export const TokenSettingsSchema = Type.Object(
  {
    secret: Type.String({ minLength: 1, description: 'HMAC key for server-issued tokens (MongooseIM token format, HMAC-SHA-384), as UTF-8 text.', ...SECRET }),
    accessValiditySeconds: Type.Optional(seconds('Lifetime of an access token, in seconds. Default 3600 (1 hour, as MongooseIM).')),
    refreshValiditySeconds: Type.Optional(seconds('Lifetime of a refresh token, in seconds. Default 2160000 (25 days, as MongooseIM).')),
  },
  { additionalProperties: false, description: 'Server-issued tokens (X-OAUTH). `secret` is required.' },
);

export const TenantLimitsSchema = Type.Object(
  {
    sessionsPerUser: Type.Optional(Type.Integer({ minimum: 1, description: 'Simultaneous sessions (resources) per account.' })),
    // RFC 6120 §13.12: a server must not set its largest stanza below 10000 bytes.
    maxStanzaBytes: Type.Optional(Type.Integer({ minimum: 10000, description: "Largest stanza, in bytes (stream error policy-violation above it). Default: the server's (65536). At least 10000 (RFC 6120 §13.12)." })),
    stanzasPerSecond: Type.Optional(Type.Number({ exclusiveMinimum: 0, description: 'Sustained stanzas per second per connection (bursts of twice that are allowed); a client over it is slowed, then answered resource-constraint.' })),
    roomsPerUser: Type.Optional(Type.Integer({ minimum: 0, description: "Rooms a user may create in the tenant's MUC service (beyond it, entering a new room gets not-allowed)." })),
  },
  { additionalProperties: false, description: 'Per-tenant limits; an absent one is not limited or takes the server default.' },
);

/**
 * Quotas that bound what one tenant can cost (README "Metrics and usage"); an absent one is unlimited.
 * A refusal is an XMPP error the client sees and a counted metric.
 */
export const TenantQuotasSchema = Type.Object(
  {
    connections: Type.Optional(Type.Integer({ minimum: 1, description: "Bound sessions of the whole tenant at once; one more gets the stream error policy-violation at resource binding. Costs one write at each bind and session end while set." })),
    messagesPerMinute: Type.Optional(Type.Integer({ minimum: 1, description: 'Messages per minute per session (a bucket of this size refilled over a minute, in memory); one more is answered resource-constraint (wait).' })),
    archiveBytes: Type.Optional(Type.Integer({ minimum: 1, description: "Bytes the tenant's message archives (MAM) may hold: what was archived within the retention (archive.days), from the usage records; beyond it, messages are delivered but not archived." })),
  },
  { additionalProperties: false, description: 'Per-tenant quotas; an absent one is unlimited.' },
);

/** The core fields of the tenant item, without any module's block. */
export const TenantCoreSchema = Type.Object(
  {
    domain: Type.String({
      minLength: 1,
      maxLength: MAX_DOMAIN_OCTETS,
      description: 'The XMPP domain in its normal form (acme.example): letters, digits and "-" in labels of 1 to 63 octets, at most 253 octets, lower case, no trailing dot, no port, no IP address (README "The tenant item").',
    }),
    enabled: Type.Boolean({ description: 'false: logins are refused with host-unknown and live sessions are closed with host-gone.' }),
    createdAt: Type.Optional(Type.Integer({ minimum: 0, description: 'Epoch milliseconds, set by the tools.' })),
    updatedAt: Type.Optional(Type.Integer({ minimum: 0, description: 'Epoch milliseconds, set by the tools.' })),
    loginMethods: Type.Optional(Type.Array(LoginMethodSchema, { minItems: 1, uniqueItems: true, description: "How users may log in. Default ['password']." })),
    jwt: Type.Optional(JwtSettingsSchema),
    tokens: Type.Optional(TokenSettingsSchema),
    registration: Type.Optional(Type.Union([Type.Literal('open'), Type.Literal('closed')], { description: "XEP-0077 in-band registration. Default 'closed'." })),
    limits: Type.Optional(TenantLimitsSchema),
    quotas: Type.Optional(TenantQuotasSchema),
    features: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { description: 'Optional features switched on for this tenant (extension names).' })),
    federation: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { description: 'Other tenants this one may exchange stanzas with; both sides must list each other. Default none.' })),
    labels: Type.Optional(Type.Record(Type.String(), Type.String(), { description: 'Free-form labels for the operator (owner, plan, …).' })),
  },
  { additionalProperties: false },
);

export type LoginMethod = Static<typeof LoginMethodSchema>;
export type JwtSettings = Static<typeof JwtSettingsSchema>;
export type TokenSettings = Static<typeof TokenSettingsSchema>;
export type TenantLimits = Static<typeof TenantLimitsSchema>;
export type TenantQuotas = Static<typeof TenantQuotasSchema>;
/** A tenant item: the core fields, and the blocks of feature modules under their keys (e.g. `muc`). */
export type TenantRecord = Static<typeof TenantCoreSchema> & { [block: string]: unknown };

/** The whole tenant item: core fields and each block (optional), nothing else. */
export function tenantItemSchema(blocks: readonly SettingBlock[]): TObject {
  const properties: Record<string, TSchema> = { ...TenantCoreSchema.properties };
  for (const b of blocks) {
    if (b.key in properties) throw new Error(`tenant setting block "${b.key}" clashes with a field of the tenant item`);
    properties[b.key] = Type.Optional(b.schema);
  }
  return Type.Object(properties, { additionalProperties: false, description: 'A tenant (XMPP domain): README "The tenant item".' });
}

export interface FieldError {
  /** Dotted path of the field, e.g. limits.maxStanzaBytes; '' for the item itself. */
  path: string;
  message: string;
}

const schemaCache = new WeakMap<readonly SettingBlock[], TObject>();
function cachedSchema(blocks: readonly SettingBlock[]): TObject {
  let s = schemaCache.get(blocks);
  if (!s) schemaCache.set(blocks, (s = tenantItemSchema(blocks)));
  return s;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isObjectSchema = (s: TSchema): s is TObject => s.type === 'object' && isObject(s.properties);
const holdsSecret = (s: TSchema) => JSON.stringify(s).includes('"x-secret":true');

/** A readable reason: the allowed values of an enumeration rather than TypeBox's "Expected union value". */
function reason(schema: TSchema, fallback: string): string {
  const anyOf = schema.anyOf as TSchema[] | undefined;
  if (anyOf?.length && anyOf.every((s) => 'const' in s)) return `must be one of ${anyOf.map((s) => JSON.stringify(s.const)).join(', ')}`;
  if (anyOf?.length) return `expected ${anyOf.map((s) => (s.type === 'array' && s.items?.type ? `a list of ${s.items.type}` : (s.type ?? 'a value'))).join(' or ')}`;
  if (fallback === 'Unexpected property') return 'unknown field';
  if (fallback === 'Expected required property') return 'is required';
  return fallback.charAt(0).toLowerCase() + fallback.slice(1);
}

/** Every reason `value` does not fit `schema`, one per field path. */
export function schemaErrors(schema: TSchema, value: unknown, prefix = ''): FieldError[] {
  const out: FieldError[] = [];
  const seen = new Set<string>();
  for (const e of Errors(schema, value)) {
    const path = [prefix, ...e.path.split('/').filter(Boolean).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))].filter(Boolean).join('.');
    // A union reports its own failure and each member's: the first, outermost error says it best.
    if ([...seen].some((p) => path === p || path.startsWith(`${p}.`))) continue;
    seen.add(path);
    out.push({ path, message: reason(e.schema, e.message) });
  }
  return out;
}

// ---- the tenant domain ----------------------------------------------------------------------------

export type TenantDomain = { domain: string; error?: undefined } | { domain?: undefined; error: string };

// RFC 1035 §2.3.1 (LDH), as RFC 5890 §2.3.1 keeps it for the A-labels of IDNA2008.
const LDH_LABEL = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/;
const MAX_LABEL_OCTETS = 63;

/** Characters that end the domainpart of a JID or add a port: named, since "invalid character" would not help. */
const NOT_IN_A_DOMAIN: [string, string][] = [
  ['@', '"@" separates the localpart of a JID: a domain cannot contain it'],
  ['/', '"/" starts the resourcepart of a JID: a domain cannot contain it'],
  [':', 'a port (":") does not belong in a tenant domain'],
];

/**
 * The normal form of a tenant domain an admin wrote, or why it cannot be one. The only rule for
 * tenant domains: the admin API, the CLI and the tenant schema (so hand-edited items too) use it.
 *
 * An XMPP domainpart (RFC 7622 §3.2) normalised as every JID is (lower case, NFC, A-labels read as
 * U-labels, lib/xmpp/jid.ts), so a stream's `to` finds the tenant; and, stricter than a JID, a DNS
 * host name clients can resolve: LDH labels in A-label form (IDNA2008, RFC 5890), each 1 to 63
 * octets, at most 253 octets in all. No trailing dot (RFC 7622 §3.2 strips it from a JID; a tenant
 * is written without it), no port, and no IP literal (RFC 7622 §3.2.1 allows one in a JID, but a
 * tenant is a named domain: a server with an address does not make it a tenant).
 */
export function tenantDomain(input: string): TenantDomain {
  const refuse = (error: string): TenantDomain => ({ error });
  // Refused before normalising: four UTF-8 octets per character is the most a domain could need.
  if (input.length > 4 * MAX_DOMAIN_OCTETS) return refuse(`longer than ${MAX_DOMAIN_OCTETS} octets`);
  if (input === '') return refuse('is empty');
  if (input.endsWith('.')) return refuse('must not end with a dot');
  if (input.startsWith('[') || isIP(input)) return refuse('an IP address cannot be a tenant: use a domain name');
  for (const [c, why] of NOT_IN_A_DOMAIN) if (input.includes(c)) return refuse(why);
  let domain: string;
  try {
    domain = prepareDomainpart(input);
  } catch (err) {
    if (err instanceof JIDError) return refuse(err.message);
    throw err;
  }
  const ascii = domainToASCII(domain);
  if (!ascii) return refuse('is not a valid internationalised domain name (IDNA2008, RFC 5890)');
  for (const label of ascii.split('.')) {
    if (label.length > MAX_LABEL_OCTETS) return refuse(`label "${label.slice(0, 20)}…" is longer than ${MAX_LABEL_OCTETS} octets`);
    if (!LDH_LABEL.test(label)) return refuse(`label "${label}" may contain only letters, digits and "-" (not at either end)`);
  }
  if (ascii.length > MAX_DOMAIN_OCTETS) return refuse(`longer than ${MAX_DOMAIN_OCTETS} octets (${ascii.length})`);
  return { domain };
}

/** Why `domain`, as written in an item, is not a tenant domain in its normal form; undefined if it is. */
function domainProblem(domain: string): string | undefined {
  const t = tenantDomain(domain);
  if (t.error !== undefined) return t.error;
  return t.domain === domain ? undefined : `must be written in its normal form "${t.domain}"`;
}

// ---- secrets -----------------------------------------------------------------------------------------

const secretPathCache = new WeakMap<readonly SettingBlock[], string[]>();

/** Dotted paths of the fields marked SECRET in the item's schema: jwt.secret, jwt.keys, tokens.secret, modules' own. */
export function secretPaths(blocks: readonly SettingBlock[]): string[] {
  let paths = secretPathCache.get(blocks);
  if (!paths) secretPathCache.set(blocks, (paths = secretPathsIn(cachedSchema(blocks), '')));
  return paths;
}

/**
 * A list of maps that each name themselves by a field (a module's components, by `domain`) marks it
 * `x-key`, so a secret inside is kept by that name when an admin writes the list back in another order:
 * spread `listKey('domain')` into the list's options. Its secrets' paths read `components[domain].secret`.
 */
export const listKey = (field: string) => ({ 'x-key': field }) as const;

function secretPathsIn(schema: TSchema, prefix: string): string[] {
  if (!isObjectSchema(schema)) return [];
  return Object.entries(schema.properties).flatMap(([k, s]) => {
    const path = prefix ? `${prefix}.${k}` : k;
    if (s['x-secret'] === true) return [path];
    const keyField = s['x-key'];
    if (s.type === 'array' && typeof keyField === 'string' && s.items) return secretPathsIn(s.items as TSchema, '').map((inner) => `${path}[${keyField}].${inner}`);
    return secretPathsIn(s, path);
  });
}

/** `components[domain].secret` → the list's path, the key field, the path inside each entry. */
const LIST_PATH = /^([^[]+)\[([^\]]+)\]\.(.+)$/;

function valueAt(item: Record<string, unknown>, path: string): unknown {
  let v: unknown = item;
  for (const k of path.split('.')) v = isObject(v) ? v[k] : undefined;
  return v;
}

/** Each entry of the list at a `list[key].inner` path, changed by `fn`; `item` is left as it was. */
function mapListAt(item: Record<string, unknown>, path: string, fn: (entry: Record<string, unknown>, keyField: string, inner: string) => Record<string, unknown>): Record<string, unknown> {
  const [, listPath, keyField, inner] = LIST_PATH.exec(path)!;
  const list = valueAt(item, listPath);
  if (!Array.isArray(list)) return item;
  return withValueAt(item, listPath, list.map((e) => (isObject(e) ? fn(e, keyField, inner) : e)));
}

/** A copy of `item` with `value` at `path`; the maps on the way are copied, `item` is left as it was. */
function withValueAt(item: Record<string, unknown>, path: string, value: unknown): Record<string, unknown> {
  const [k, ...rest] = path.split('.');
  const inner = item[k];
  return { ...item, [k]: rest.length && isObject(inner) ? withValueAt(inner, rest.join('.'), value) : value };
}

/** The item as the admin API and the CLI show it: each secret that is set reads REDACTED. */
export function redactSecrets<T extends Record<string, unknown>>(item: T, blocks: readonly SettingBlock[]): T {
  let out: Record<string, unknown> = item;
  for (const path of secretPaths(blocks)) {
    if (LIST_PATH.test(path)) out = mapListAt(out, path, (e, _, inner) => (valueAt(e, inner) !== undefined ? withValueAt(e, inner, REDACTED) : e));
    else if (valueAt(out, path) !== undefined) out = withValueAt(out, path, REDACTED);
  }
  return out as T;
}

/**
 * What an admin writes back after reading it: a secret that reads REDACTED keeps the value `current`
 * has, so a read-modify-write never stores the placeholder. REDACTED where nothing is kept is an
 * error (InvalidTenantError): the admin meant a value the server does not have.
 */
export function restoreSecrets(written: Record<string, unknown>, current: Record<string, unknown> | undefined, blocks: readonly SettingBlock[]): Record<string, unknown> {
  let out = written;
  const errors: FieldError[] = [];
  for (const path of secretPaths(blocks)) {
    if (LIST_PATH.test(path)) {
      const [, listPath] = LIST_PATH.exec(path)!;
      const kept = current && valueAt(current, listPath);
      out = mapListAt(out, path, (e, keyField, inner) => {
        if (valueAt(e, inner) !== REDACTED) return e;
        const same = Array.isArray(kept) ? kept.find((k) => isObject(k) && k[keyField] === e[keyField]) : undefined;
        const value = isObject(same) ? valueAt(same, inner) : undefined;
        if (value === undefined) errors.push({ path: `${listPath}[${String(e[keyField])}].${inner}`, message: `"${REDACTED}" stands for the value kept on the server, but none is set` });
        return value === undefined ? e : withValueAt(e, inner, value);
      });
      continue;
    }
    if (valueAt(out, path) !== REDACTED) continue;
    const kept = current && valueAt(current, path);
    if (kept === undefined) errors.push({ path, message: `"${REDACTED}" stands for the value kept on the server, but none is set` });
    else out = withValueAt(out, path, kept);
  }
  if (errors.length) throw new InvalidTenantError(errors);
  return out;
}

// ---- checking items ----------------------------------------------------------------------------------

/** An error listing every bad field of what an admin tried to write; nothing was written. */
export class InvalidTenantError extends Error {
  constructor(readonly fields: FieldError[]) {
    super(`invalid tenant: ${fields.map((f) => (f.path ? `${f.path}: ${f.message}` : f.message)).join('; ')}`);
    this.name = 'InvalidTenantError';
  }
}

/**
 * Strict check of a tenant item an admin writes (admin API bodies, CLI flags): any bad or unknown
 * field throws InvalidTenantError naming each one, so nothing half-valid is ever written.
 */
export function validateTenantItem(value: unknown, blocks: readonly SettingBlock[]): TenantRecord {
  let errors = schemaErrors(cachedSchema(blocks), value);
  const domain = isObject(value) && typeof value.domain === 'string' ? domainProblem(value.domain) : undefined;
  // The domain rule says more than the schema's length check: its reason replaces the schema's.
  if (domain) errors = [{ path: 'domain', message: domain }, ...errors.filter((e) => e.path !== 'domain')];
  const bytes = Buffer.byteLength(JSON.stringify(value) ?? '');
  if (bytes > MAX_TENANT_ITEM_BYTES) errors.push({ path: '', message: `the item takes ${bytes} bytes as JSON, more than the ${MAX_TENANT_ITEM_BYTES} bytes allowed` });
  if (errors.length) throw new InvalidTenantError(errors);
  return value as TenantRecord;
}

export type ParsedTenant = { tenant: TenantRecord; error?: undefined } | { tenant: undefined; error: string };

/**
 * Lenient parse of a tenant item read from DynamoDB, where admins edit items by hand (README
 * "Tenants"). A field that does not fit is logged at warn and dropped, so its documented default
 * applies (README "The tenant item"); the rest of the tenant keeps working. Inside a map (limits,
 * jwt, tokens, a module's block) a bad entry drops only itself, unless what is left no longer fits
 * (tokens without its secret): then the whole map goes. Lists, `labels` and unions are checked
 * whole. Unknown fields are dropped with one warning naming them (never their values, which may be a
 * misspelt secret). An item without a string `domain` and a boolean `enabled`, or no object at all,
 * cannot be served, nor one whose domain breaks the tenant domain rule (tenantDomain): it is logged
 * at error and the result says why (the tenant reads as absent).
 * Values of secret fields (jwt.secret, jwt.keys, tokens.secret) are never logged.
 */
export function parseTenantItem(raw: unknown, blocks: readonly SettingBlock[], log: TenantLog, domainHint?: string): ParsedTenant {
  const tenant = domainHint ?? (isObject(raw) && typeof raw.domain === 'string' ? raw.domain : undefined);
  const refuse = (error: string): ParsedTenant => {
    log.error({ tenant, error }, `tenant refused: ${error}`);
    return { tenant: undefined, error };
  };
  if (!isObject(raw)) return refuse('the tenant item is not a map');
  if (typeof raw.domain !== 'string' || !raw.domain) return refuse('domain is missing or not a string');
  // No client can address such a tenant, and the admin tools would refuse to write it.
  const domain = domainProblem(raw.domain);
  if (domain) return refuse(`domain: ${domain}`);
  if (typeof raw.enabled !== 'boolean') return refuse('enabled is missing or not a boolean (true or false)');

  const unknown: string[] = [];
  const parsed = parseObject(cachedSchema(blocks), raw, '', {
    unknown: (path) => unknown.push(path),
    bad: (path, schema, error, value) => {
      const shown = value !== undefined && !holdsSecret(schema);
      log.warn({ tenant, field: path, ...(shown ? { value } : {}), error }, `tenant field ignored: ${path}: ${error}`);
    },
  });
  if (unknown.length) log.warn({ tenant, fields: unknown }, `tenant fields ignored: unknown field${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}`);
  return { tenant: parsed as TenantRecord };
}

interface Report {
  unknown(path: string): void;
  /** `value` is left out where the whole map was dropped (its bad entries were reported already). */
  bad(path: string, schema: TSchema, error: string, value?: unknown): void;
}

function parseObject(schema: TObject, raw: Record<string, unknown>, prefix: string, report: Report): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw)) {
    const path = prefix ? `${prefix}.${k}` : k;
    const prop = schema.properties[k];
    if (!prop) {
      report.unknown(path);
      continue;
    }
    if (v === undefined || v === null) continue;
    if (isObjectSchema(prop) && isObject(v)) {
      const inner = parseObject(prop, v, path, report);
      // A map left empty by dropped entries reads as absent, like the entries themselves.
      if (!Object.keys(inner).length && Object.keys(v).length) continue;
      if (Check(prop, inner)) out[k] = inner;
      else report.bad(path, prop, schemaErrors(prop, inner, path).map((e) => `${e.path}: ${e.message}`).join('; '));
      continue;
    }
    if (Check(prop, v)) out[k] = v;
    else report.bad(path, prop, schemaErrors(prop, v).map((e) => (e.path ? `${e.path}: ${e.message}` : e.message)).join('; '), v);
  }
  return out;
}
