// Per-tenant counters (docs/architecture.md "Metrics and usage"): one registry per process that the
// core counts into, written out as CloudWatch embedded metric format (EMF) log lines at the end of each
// Lambda invocation, served locally in the Prometheus text format, and the source of the daily usage
// records. Counting is in memory only: no call is made per event.
// EMF: https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
// Prometheus: https://prometheus.io/docs/instrumenting/exposition_formats/
import { AsyncLocalStorage } from 'node:async_hooks';

/** The counters, each with the tenant as its one dimension. */
export const METRICS = {
  Connections: 'streams opened for the tenant',
  Logins: 'successful SASL authentications',
  LoginFailures: 'failed SASL attempts',
  StanzasIn: 'stanzas received from bound sessions',
  StanzasOut: 'stanzas sent to connections',
  Posts: 'management API posts (PostToConnection)',
  DynamoDBCalls: 'DynamoDB commands made while handling the tenant',
  Errors: 'frames that failed with an internal error, and delivered messages whose archive copy was not written',
  Throttles: 'stanzas refused by the per-connection stanza rate (limits.stanzasPerSecond)',
  ConnectionQuotaRefusals: 'sessions refused by quotas.connections',
  MessageQuotaRefusals: 'messages refused by quotas.messagesPerMinute',
  ArchiveQuotaRefusals: 'messages not archived because of quotas.archiveBytes',
  ConnectRefusals: 'WebSocket connections refused by the per-address connect cap (no tenant yet: "-")',
  EventPushFailures: 'events whose publishing to the tenant\'s webhook, SNS topic or EventBridge bus failed',
} as const;
export type MetricName = keyof typeof METRICS;

/** The fields of a usage record (one per tenant per UTC day). */
export const USAGE_FIELDS = ['connectionMinutes', 'stanzas', 'messages', 'archiveBytes'] as const;
export type UsageField = (typeof USAGE_FIELDS)[number];
export type UsageCounts = Partial<Record<UsageField, number>>;

/**
 * Counters also written without the tenant dimension, as one deployment-wide series each: CloudWatch
 * alarms cannot watch a SEARCH over every tenant's series, so the alarms on errors, quota refusals and
 * event push failures watch these (docs/architecture.md "Metrics and usage"). Each is one more custom
 * metric per region, whatever the number of tenants.
 */
export const TOTALED_METRICS: readonly MetricName[] = ['Errors', 'ConnectionQuotaRefusals', 'MessageQuotaRefusals', 'ArchiveQuotaRefusals', 'EventPushFailures'];

/** The tenant of work that belongs to none (a $connect before any stream, the sweeper). */
export const NO_TENANT = '-';
/** The CloudWatch namespace and the dimension's name. */
export const METRICS_NAMESPACE = 'XmppEdge';
export const TENANT_DIMENSION = 'Tenant';

/** What the core knows about the frame being handled; the log line of its outcome is made from it. */
export interface FrameScope {
  tenant?: string;
  /** The stanza or element, e.g. message:chat, iq:get, open, auth. */
  kind?: string;
  /** ok unless something set it: refused, stream-error, error. */
  outcome?: string;
}

/** What the core and the handlers count through (a small interface; tests may pass their own). */
export interface MetricsSink {
  count(name: MetricName, n?: number, tenant?: string): void;
  use(tenant: string, field: UsageField, n: number): void;
  scope(): FrameScope | undefined;
}

/** YYYY-MM-DD (UTC) of an epoch time: the key of a usage record. */
export function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

interface MiddlewareHost {
  middlewareStack: {
    add(
      mw: (next: (args: unknown) => Promise<unknown>) => (args: unknown) => Promise<unknown>,
      opts: { step: 'initialize'; name: string },
    ): void;
  };
}

export class Metrics implements MetricsSink {
  private readonly als = new AsyncLocalStorage<FrameScope>();
  /** Since the process started (Prometheus counters). */
  private readonly totals = new Map<string, Map<MetricName, number>>();
  /** Since the last EMF flush. */
  private pending = new Map<string, Map<MetricName, number>>();
  /** Usage not yet written, by tenant and day. */
  private usage = new Map<string, { tenant: string; day: string; counts: UsageCounts }>();
  /** Today's usage totals as the last flush's write returned them, by tenant (archive quota). */
  private readonly written = new Map<string, { day: string; counts: UsageCounts }>();

  constructor(private readonly clock: { now(): number } = Date) {}

  /** Runs `fn` with `scope` as the current frame's: counts without a tenant go to its tenant. */
  run<T>(scope: FrameScope, fn: () => Promise<T>): Promise<T> {
    return this.als.run(scope, fn);
  }

  scope(): FrameScope | undefined {
    return this.als.getStore();
  }

  count(name: MetricName, n = 1, tenant = this.scope()?.tenant ?? NO_TENANT): void {
    for (const map of [this.totals, this.pending]) {
      let byName = map.get(tenant);
      if (!byName) map.set(tenant, (byName = new Map()));
      byName.set(name, (byName.get(name) ?? 0) + n);
    }
  }

  use(tenant: string, field: UsageField, n: number): void {
    if (n) this.useOn(tenant, utcDay(this.clock.now()), field, n);
  }

  /** Counts every command of an AWS SDK client (DynamoDBCalls) for the current frame's tenant. */
  attach(client: unknown, service: string): void {
    if (service !== 'dynamodb') return;
    (client as MiddlewareHost).middlewareStack.add(
      (next) => async (args) => {
        this.count('DynamoDBCalls');
        return next(args);
      },
      { step: 'initialize', name: 'xmppEdgeMetrics' },
    );
  }

  /** A counter's value since the process started (tests, operators). */
  total(name: MetricName, tenant: string): number {
    return this.totals.get(tenant)?.get(name) ?? 0;
  }

  /** One EMF record per tenant with counts since the last call, which are then cleared. */
  takeEmf(now = this.clock.now()): Record<string, unknown>[] {
    const records = [...this.pending].map(([tenant, byName]) => emfRecord(tenant, byName, now));
    this.pending = new Map();
    return records;
  }

  /** The usage counted and not yet written, cleared; hand back what could not be written with giveBack. */
  takeUsage(): { tenant: string; day: string; counts: UsageCounts }[] {
    const out = [...this.usage.values()];
    this.usage = new Map();
    return out;
  }

  giveBack(entries: { tenant: string; day: string; counts: UsageCounts }[]): void {
    for (const e of entries) for (const [field, n] of Object.entries(e.counts)) this.useOn(e.tenant, e.day, field as UsageField, n);
  }

  /** Records what the table holds for a tenant's day after a flush (the write returns it). */
  wrote(tenant: string, day: string, counts: UsageCounts): void {
    this.written.set(tenant, { day, counts });
  }

  /**
   * A tenant's usage of today as far as this process knows: the table's total at its last flush plus
   * what it counted since. Soft (other processes' counts arrive with their flushes), and free.
   */
  usageToday(tenant: string, field: UsageField): number {
    const day = utcDay(this.clock.now());
    const w = this.written.get(tenant);
    const flushed = w?.day === day ? (w.counts[field] ?? 0) : 0;
    return flushed + (this.usage.get(`${tenant}\t${day}`)?.counts[field] ?? 0);
  }

  /** Every counter in the Prometheus text format (version 0.0.4), with a `tenant` label. */
  prometheus(): string {
    const lines: string[] = [];
    for (const name of Object.keys(METRICS) as MetricName[]) {
      const metric = `xmpp_edge_${snake(name)}_total`;
      lines.push(`# HELP ${metric} ${METRICS[name]}`, `# TYPE ${metric} counter`);
      for (const [tenant, byName] of [...this.totals].sort(([a], [b]) => a.localeCompare(b))) {
        const v = byName.get(name);
        if (v !== undefined) lines.push(`${metric}{tenant="${escapeLabel(tenant)}"} ${v}`);
      }
    }
    return lines.join('\n') + '\n';
  }

  private useOn(tenant: string, day: string, field: UsageField, n: number): void {
    const key = `${tenant}\t${day}`;
    let entry = this.usage.get(key);
    if (!entry) this.usage.set(key, (entry = { tenant, day, counts: {} }));
    entry.counts[field] = (entry.counts[field] ?? 0) + n;
  }
}

/**
 * One EMF record: the tenant as the dimension, every counter it has as a metric of unit Count; the
 * TOTALED_METRICS among them also in a second directive without dimensions (the same values, summed by
 * CloudWatch over every tenant's records).
 */
export function emfRecord(tenant: string, counts: ReadonlyMap<MetricName, number>, now: number): Record<string, unknown> {
  const names = [...counts.keys()];
  const totaled = names.filter((n) => TOTALED_METRICS.includes(n));
  const metricsOf = (list: MetricName[]) => list.map((Name) => ({ Name, Unit: 'Count' }));
  return {
    _aws: {
      Timestamp: now,
      CloudWatchMetrics: [
        { Namespace: METRICS_NAMESPACE, Dimensions: [[TENANT_DIMENSION]], Metrics: metricsOf(names) },
        ...(totaled.length ? [{ Namespace: METRICS_NAMESPACE, Dimensions: [[]], Metrics: metricsOf(totaled) }] : []),
      ],
    },
    [TENANT_DIMENSION]: tenant,
    ...Object.fromEntries(counts),
  };
}

const snake = (name: string) => name.replace(/DynamoDB/g, 'Dynamodb').replace(/([a-z])([A-Z])/g, '$1_$2').toLowerCase();

/** Prometheus label values escape backslash, double quote and line feed. */
const escapeLabel = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
