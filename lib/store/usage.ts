// Usage metering and the quota counters that share its partition (docs/architecture.md "Metrics and
// usage"): one usage record per tenant per UTC day, written with ADD by each process's flush (never per
// stanza); the tenant's count of live sessions for quotas.connections; and the per-address connect
// counters of $connect.
import { QueryCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { Type } from '@sinclair/typebox';
import { Check } from '@sinclair/typebox/value';
import { Errors } from '@sinclair/typebox/errors';
import { isConditionFailure, ttlFrom } from './dynamo.ts';

/** The fields a usage record adds up (the metrics registry counts them in memory). */
export type UsageRecordCounts = Record<string, number>;

export interface UsageDay {
  day: string;
  counts: UsageRecordCounts;
}

/** Usage records are kept this long for billing (the TTL deletes them after). */
export const USAGE_RETENTION_DAYS = 400;
const DAY_MS = 86_400_000;

const usagePk = (tenant: string) => `usage#${tenant}`;

export class UsageStore {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  /** Adds counts to a tenant's day: one UpdateItem. Returns the day's totals after the write. */
  async add(tenant: string, day: string, counts: UsageRecordCounts): Promise<UsageRecordCounts> {
    const fields = Object.entries(counts).filter(([, n]) => n);
    const names: Record<string, string> = { '#ttl': 'ttl' };
    const values: Record<string, unknown> = { ':ttl': ttlFrom(Date.parse(`${day}T00:00:00Z`) + USAGE_RETENTION_DAYS * DAY_MS) };
    fields.forEach(([f, n], i) => {
      names[`#f${i}`] = f;
      values[`:f${i}`] = n;
    });
    const res = await this.db.send(
      new UpdateCommand({
        TableName: this.table,
        Key: { pk: usagePk(tenant), sk: `day#${day}` },
        UpdateExpression: `SET #ttl = :ttl${fields.length ? ` ADD ${fields.map((_, i) => `#f${i} :f${i}`).join(', ')}` : ''}`,
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
        ReturnValues: 'ALL_NEW',
      }),
    );
    return countsOf(res.Attributes ?? {});
  }

  /** The tenant's usage records from `from` to `to` (YYYY-MM-DD, inclusive): one Query. */
  async range(tenant: string, from: string, to: string): Promise<UsageDay[]> {
    const res = await this.db.send(
      new QueryCommand({
        TableName: this.table,
        KeyConditionExpression: 'pk = :pk AND sk BETWEEN :from AND :to',
        ExpressionAttributeValues: { ':pk': usagePk(tenant), ':from': `day#${from}`, ':to': `day#${to}` },
      }),
    );
    return (res.Items ?? []).map((item) => ({ day: String(item.sk).slice('day#'.length), counts: countsOf(item) }));
  }

  /**
   * Takes a place among the tenant's live sessions if fewer than `max` are taken: one conditional
   * UpdateItem. False when the quota is reached.
   */
  async acquireSession(tenant: string, max: number): Promise<boolean> {
    try {
      await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: usagePk(tenant), sk: 'live' },
          UpdateExpression: 'ADD #n :one',
          ConditionExpression: 'attribute_not_exists(#n) OR #n < :max',
          ExpressionAttributeNames: { '#n': 'sessions' },
          ExpressionAttributeValues: { ':one': 1, ':max': max },
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw err;
    }
  }

  /** Gives a place back (never below zero): one conditional UpdateItem. */
  async releaseSession(tenant: string): Promise<void> {
    try {
      await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: usagePk(tenant), sk: 'live' },
          UpdateExpression: 'ADD #n :minus',
          ConditionExpression: '#n > :zero',
          ExpressionAttributeNames: { '#n': 'sessions' },
          ExpressionAttributeValues: { ':minus': -1, ':zero': 0 },
        }),
      );
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
    }
  }

  /**
   * Counts a new connection from `address` in the current window of `windowMs`; false (and nothing
   * counted) once `max` came in this window. One conditional UpdateItem on an item that expires with
   * its window. The address is not tenant data: no tenant is known at $connect.
   */
  async admitConnect(address: string, max: number, windowMs: number, now: number): Promise<boolean> {
    const window = Math.floor(now / windowMs) * windowMs;
    address = connectCapKey(address);
    try {
      await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: `connaddr#${address}`, sk: `w#${window}` },
          UpdateExpression: 'ADD #n :one SET #ttl = :ttl',
          ConditionExpression: 'attribute_not_exists(#n) OR #n < :max',
          ExpressionAttributeNames: { '#n': 'n', '#ttl': 'ttl' },
          ExpressionAttributeValues: { ':one': 1, ':max': max, ':ttl': ttlFrom(window + 2 * windowMs) },
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw err;
    }
  }
}

/**
 * What the connect cap counts: an IPv4 address as it is, an IPv6 address by its /64 prefix (one host
 * or home usually has a whole /64 and can pick any address in it, RFC 4291 §2.5.4 and RFC 6177).
 */
export function connectCapKey(address: string): string {
  if (!address.includes(':')) return address;
  const [head, tail] = address.split('%')[0].toLowerCase().split('::');
  const left = head ? head.split(':') : [];
  const right = tail === undefined ? [] : tail ? tail.split(':') : [];
  // An embedded IPv4 tail (::ffff:1.2.3.4) counts as two groups; only the first four groups matter.
  const rightGroups = right.flatMap((g) => (g.includes('.') ? ['0', '0'] : [g]));
  const groups = tail === undefined ? left : [...left, ...Array(Math.max(0, 8 - left.length - rightGroups.length)).fill('0'), ...rightGroups];
  return `${groups.slice(0, 4).map((g) => Number.parseInt(g || '0', 16).toString(16)).join(':')}::/64`;
}

function countsOf(item: Record<string, unknown>): UsageRecordCounts {
  const out: UsageRecordCounts = {};
  for (const [k, v] of Object.entries(item)) if (typeof v === 'number' && k !== 'ttl') out[k] = v;
  return out;
}

/** The days of a usage report, as the admin API and the CLI take them (one schema for both). */
export const UsageRangeSchema = Type.Object(
  {
    from: Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}$', description: 'First UTC day, YYYY-MM-DD (default: today).' }),
    to: Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}$', description: 'Last UTC day, YYYY-MM-DD, inclusive (default: from).' }),
  },
  { additionalProperties: false },
);
/** A report covers at most this many days (one Query). */
export const MAX_USAGE_DAYS = 366;

export class UsageRangeError extends Error {}

/** Checks a report's days; `today` fills what is left out. Throws UsageRangeError with the reason. */
export function usageRange(given: { from?: string; to?: string }, today: string): { from: string; to: string } {
  const range = { from: given.from ?? today, to: given.to ?? given.from ?? today };
  if (!Check(UsageRangeSchema, range)) {
    const bad = [...Errors(UsageRangeSchema, range)][0];
    throw new UsageRangeError(`${bad.path.slice(1) || 'range'}: "${String(bad.value).slice(0, 40)}" is not a day of the form YYYY-MM-DD`);
  }
  for (const [name, day] of Object.entries(range)) {
    const t = Date.parse(`${day}T00:00:00Z`);
    if (Number.isNaN(t) || new Date(t).toISOString().slice(0, 10) !== day) throw new UsageRangeError(`${name}: ${day} is not a calendar day`);
  }
  const days = (Date.parse(range.to) - Date.parse(range.from)) / DAY_MS + 1;
  if (days < 1) throw new UsageRangeError(`from (${range.from}) is after to (${range.to})`);
  if (days > MAX_USAGE_DAYS) throw new UsageRangeError(`at most ${MAX_USAGE_DAYS} days at a time (asked for ${days})`);
  return range;
}

/** A tenant's usage over a range: each day that has a record, and their sums. */
export async function usageReport(store: UsageStore, domain: string, from: string, to: string): Promise<{ domain: string; from: string; to: string; days: UsageDay[]; total: UsageRecordCounts }> {
  const days = await store.range(domain, from, to);
  const total: UsageRecordCounts = {};
  for (const d of days) for (const [k, v] of Object.entries(d.counts)) total[k] = Math.round(((total[k] ?? 0) + v) * 1000) / 1000;
  return { domain, from, to, days, total };
}
