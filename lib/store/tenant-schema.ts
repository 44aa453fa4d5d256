// The tenant item's one schema (README "The tenant item"): the TypeScript types, the checks of what is
// read from DynamoDB and of what an admin writes, and the OpenAPI document's Tenant component all come
// from it. The schemas are JSON Schema (TypeBox), so the admin API serves them as they are.
//
// Feature modules declare their own block of the item (the MUC service's `muc`) as a SettingBlock;
// tenantItemSchema composes the core fields with the blocks a server runs.
import { type Static, type TObject, type TSchema, Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';

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

/** Marks a field whose value must never be logged (x- keywords are allowed in OpenAPI 3.1 schemas). */
const SECRET = { 'x-secret': true } as const;

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

/** The core fields of the tenant item, without any module's block. */
export const TenantCoreSchema = Type.Object(
  {
    domain: Type.String({ minLength: 1, maxLength: 1023, description: 'The XMPP domain, lower case (acme.example).' }),
    enabled: Type.Boolean({ description: 'false: logins are refused with host-unknown and live sessions are closed with host-gone.' }),
    createdAt: Type.Optional(Type.Integer({ minimum: 0, description: 'Epoch milliseconds, set by the tools.' })),
    updatedAt: Type.Optional(Type.Integer({ minimum: 0, description: 'Epoch milliseconds, set by the tools.' })),
    loginMethods: Type.Optional(Type.Array(LoginMethodSchema, { minItems: 1, uniqueItems: true, description: "How users may log in. Default ['password']." })),
    jwt: Type.Optional(JwtSettingsSchema),
    tokens: Type.Optional(TokenSettingsSchema),
    registration: Type.Optional(Type.Union([Type.Literal('open'), Type.Literal('closed')], { description: "XEP-0077 in-band registration. Default 'closed'." })),
    limits: Type.Optional(TenantLimitsSchema),
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
  for (const e of Value.Errors(schema, value)) {
    const path = [prefix, ...e.path.split('/').filter(Boolean).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))].filter(Boolean).join('.');
    // A union reports its own failure and each member's: the first, outermost error says it best.
    if ([...seen].some((p) => path === p || path.startsWith(`${p}.`))) continue;
    seen.add(path);
    out.push({ path, message: reason(e.schema, e.message) });
  }
  return out;
}

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
  const errors = schemaErrors(cachedSchema(blocks), value);
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
 * cannot be served: it is logged at error and the result says why (the tenant reads as absent).
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
      if (Value.Check(prop, inner)) out[k] = inner;
      else report.bad(path, prop, schemaErrors(prop, inner, path).map((e) => `${e.path}: ${e.message}`).join('; '));
      continue;
    }
    if (Value.Check(prop, v)) out[k] = v;
    else report.bad(path, prop, schemaErrors(prop, v).map((e) => (e.path ? `${e.path}: ${e.message}` : e.message)).join('; '), v);
  }
  return out;
}
