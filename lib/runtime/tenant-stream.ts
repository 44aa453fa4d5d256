// Tenant changes in AWS (issue 3: a disabled or deleted tenant's sessions close with host-gone within
// seconds, in every region): each region's replica of the global table has a DynamoDB stream, and a
// Lambda on it closes the tenant's sessions in that region. This file is the pure part, free of CDK
// and SDK imports so the function's bundle can include it: which stream records mean "stop serving
// this domain", and the event filter that keeps every other write of the table from invoking the
// function at all. Locally (dynalite has no streams) TenantWatcher polls instead. It lives here, outside
// lib/infra, because both the CDK app (the filter) and the Lambda (functions/tenant-changes.ts) use it.
// https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Streams.Lambda.html
// https://docs.aws.amazon.com/lambda/latest/dg/with-ddb-filtering.html

/** A DynamoDB AttributeValue as stream records carry it (the shapes read here). */
export type AttributeValue =
  | { S: string }
  | { N: string }
  | { BOOL: boolean }
  | { NULL: true }
  | { [type: string]: unknown };

export interface StreamRecord {
  eventID?: string;
  eventName?: 'INSERT' | 'MODIFY' | 'REMOVE' | string;
  dynamodb?: {
    Keys?: Record<string, AttributeValue>;
    NewImage?: Record<string, AttributeValue>;
    OldImage?: Record<string, AttributeValue>;
    SequenceNumber?: string;
  };
  eventSourceARN?: string;
}

export interface StreamEvent {
  Records: StreamRecord[];
}

/** lib/store/tenants.ts keeps a tenant as { pk: 'tenant#<domain>', sk: 'tenant' }. */
const TENANT_PK_PREFIX = 'tenant#';
const TENANT_SK = 'tenant';

export interface TenantClosing {
  domain: string;
  why: 'tenant disabled' | 'tenant deleted';
  /** The record's sequence number: what to report as a batch item failure if closing fails. */
  sequenceNumber?: string;
}

const stringOf = (v: AttributeValue | undefined): string | undefined => (v && 'S' in v && typeof v.S === 'string' ? v.S : undefined);

/**
 * Whether a tenant item's `enabled` attribute serves the tenant, as the handlers read it: the tenant
 * schema (lib/store/tenant-schema.ts) refuses an item whose `enabled` is not a boolean, so only BOOL
 * true is served; a string, a number, NULL or a missing attribute closes the tenant's sessions
 * (README "The tenant item").
 */
export function truthy(v: AttributeValue | undefined): boolean {
  return !!v && 'BOOL' in v && v.BOOL === true;
}

/** The domain of a tenant item's keys, or undefined for any other item of the table. */
export function tenantDomainOf(keys: Record<string, AttributeValue> | undefined): string | undefined {
  const pk = stringOf(keys?.pk);
  if (!pk?.startsWith(TENANT_PK_PREFIX) || stringOf(keys?.sk) !== TENANT_SK) return undefined;
  return pk.slice(TENANT_PK_PREFIX.length) || undefined;
}

/**
 * What one stream record asks for: a deleted tenant item, or a tenant item written with `enabled`
 * not true (whatever it was before: closing is idempotent and costs one Query when nothing is open).
 */
export function closingOf(record: StreamRecord): TenantClosing | undefined {
  const domain = tenantDomainOf(record.dynamodb?.Keys);
  if (!domain) return undefined;
  const sequenceNumber = record.dynamodb?.SequenceNumber;
  if (record.eventName === 'REMOVE') return { domain, why: 'tenant deleted', sequenceNumber };
  if (record.eventName === 'INSERT' || record.eventName === 'MODIFY') {
    if (!truthy(record.dynamodb?.NewImage?.enabled)) return { domain, why: 'tenant disabled', sequenceNumber };
  }
  return undefined;
}

/** The domains to close for a batch, each once, in stream order (the first record of each domain). */
export function tenantsToClose(records: readonly StreamRecord[]): TenantClosing[] {
  const out = new Map<string, TenantClosing>();
  for (const r of records) {
    const c = closingOf(r);
    if (c && !out.has(c.domain)) out.set(c.domain, c);
  }
  return [...out.values()];
}

/** A tenant item's change as the modules' "tenant/changed" event tells it (lib/core/events.ts). */
export interface TenantChange {
  domain: string;
  before?: Record<string, unknown>;
  after?: Record<string, unknown>;
  sequenceNumber?: string;
}

/** A stream image's attribute as the document client reads it (S, N, BOOL, NULL, L, M, SS, NS). */
export function plain(v: AttributeValue): unknown {
  const a = v as Record<string, unknown>;
  if ('S' in a) return a.S;
  if ('N' in a) return Number(a.N);
  if ('BOOL' in a) return a.BOOL;
  if ('NULL' in a) return null;
  if ('L' in a) return (a.L as AttributeValue[]).map(plain);
  if ('M' in a) return plainItem(a.M as Record<string, AttributeValue>);
  if ('SS' in a) return new Set(a.SS as string[]);
  if ('NS' in a) return new Set((a.NS as string[]).map(Number));
  return undefined;
}

export const plainItem = (image: Record<string, AttributeValue>): Record<string, unknown> => Object.fromEntries(Object.entries(image).map(([k, v]) => [k, plain(v)]));

/** A tenant item that was changed or deleted, with its images (an INSERT has no before: nothing to compare). */
export function changeOf(record: StreamRecord): TenantChange | undefined {
  const domain = tenantDomainOf(record.dynamodb?.Keys);
  if (!domain || (record.eventName !== 'MODIFY' && record.eventName !== 'REMOVE')) return undefined;
  const { OldImage, NewImage, SequenceNumber } = record.dynamodb ?? {};
  if (!OldImage) return undefined;
  return { domain, before: plainItem(OldImage), ...(record.eventName === 'MODIFY' && NewImage ? { after: plainItem(NewImage) } : {}), sequenceNumber: SequenceNumber };
}

const TENANT_KEYS = { Keys: { pk: { S: [{ prefix: TENANT_PK_PREFIX }] }, sk: { S: [TENANT_SK] } } };

/**
 * Lambda event filter patterns (OR-ed): only tenant items that were deleted, or written with `enabled`
 * false or not a boolean, or changed while they declared a connected component, invoke the function. The filter is a cost measure (every write of the
 * table goes through the stream); closingOf() decides, so a pattern that lets a record too many
 * through costs one invocation and nothing else.
 */
export const TENANT_CHANGE_FILTERS: Record<string, unknown>[] = [
  { eventName: ['REMOVE'], dynamodb: TENANT_KEYS },
  { eventName: ['INSERT', 'MODIFY'], dynamodb: { ...TENANT_KEYS, NewImage: { enabled: { BOOL: [false] } } } },
  // `enabled` missing or of another type (hand-edited): closingOf() reads it as the handlers do.
  { eventName: ['INSERT', 'MODIFY'], dynamodb: { ...TENANT_KEYS, NewImage: { enabled: { BOOL: [{ exists: false }] } } } },
  // A tenant that had a connected XEP-0114 component (a pattern on an array of objects matches if any
  // element does): the components module ends one that was disabled or removed ("tenant/changed").
  { eventName: ['MODIFY'], dynamodb: { ...TENANT_KEYS, OldImage: { components: { L: { M: { kind: { S: ['connected'] } } } } } } },
];
