// Event push at run time (README "Event push"): events are buffered per tenant while frames are handled
// and published by the flush step, after the frame's stanzas went out (docs/modules.md "Hooks",
// ctx.addFlushStep), so publishing never delays or fails a stanza. One tenant's flushes go one after
// another (in order); failures are counted and logged, a failed webhook POST is retried later by the
// sweeper (lib/webhooks/delivery.ts).
import type { XmppServer } from '../../core/server.ts';
import type { Clock } from '../../store/clock.ts';
import { type DeliveryPolicy, WebhookDelivery, urlProblem } from '../../webhooks/delivery.ts';
import { WebhookStore } from '../../webhooks/store.ts';
import { type AwsClients, MAX_WEBHOOK_EVENTS, type PublishResult, batches, defaultAwsClients, publishEventBridge, publishSns, regionOfArn } from './publishers.ts';
import { EVENT_VERSION, type EventTarget, type EventsSettings, type PushEvent } from './schema.ts';

/** The sender name of event push webhooks in retries and dead letters. */
export const EVENTS_SOURCE = 'events';

/** Counts since the process started; also in each failure's log line. */
export interface EventPushStats {
  /** Events accepted by their target. */
  published: number;
  /** Events whose publishing failed now (a webhook's are retried later; an SNS/EventBridge failure is final). */
  failed: number;
  /** Events refused before any attempt: target not allowed on this deployment. */
  refused: number;
}

export interface EventPushOptions {
  /** SNS topic and EventBridge bus ARNs tenants may name (CDK context eventTargetArns → EVENT_TARGET_ARNS). */
  allowedArns?: Iterable<string>;
  /** http://127.0.0.1 webhooks: the local server and tests only. */
  allowLoopbackHttp?: boolean;
  aws?: AwsClients;
  /** Webhook delivery beyond event push's own (one inline attempt); tests lengthen the timeout. */
  policy?: Partial<DeliveryPolicy>;
}

interface Log {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
  debug?(obj: object, msg: string): void;
}

export class EventPushRuntime {
  readonly stats: EventPushStats = { published: 0, failed: 0, refused: 0 };
  readonly store: WebhookStore;
  delivery: WebhookDelivery;
  private allowed: Set<string>;
  private aws: AwsClients;
  private allowLoopbackHttp = false;
  private policy: Partial<DeliveryPolicy> = {};
  private readonly buffers = new Map<string, PushEvent[]>();
  private readonly chains = new Map<string, Promise<void>>();

  constructor(
    private readonly server: XmppServer,
    private readonly clock: Clock,
    private readonly log: Log,
    env: Record<string, string | undefined> = process.env,
  ) {
    this.store = new WebhookStore(server.db, server.table, server.connections.region);
    this.allowed = new Set((env.EVENT_TARGET_ARNS ?? '').split(',').map((s) => s.trim()).filter(Boolean));
    this.aws = defaultAwsClients();
    this.delivery = this.makeDelivery();
  }

  /** What the wiring (local server, tests) sets beyond the environment. */
  configure(opts: EventPushOptions): void {
    if (opts.allowedArns) this.allowed = new Set(opts.allowedArns);
    if (opts.aws) this.aws = opts.aws;
    if (opts.allowLoopbackHttp !== undefined) this.allowLoopbackHttp = opts.allowLoopbackHttp;
    if (opts.policy) this.policy = opts.policy;
    this.delivery = this.makeDelivery();
  }

  private makeDelivery(): WebhookDelivery {
    // One inline attempt (in Lambda the ingest waits for the flush), then the sweeper's, 1, 2, 4, 8 and
    // 16 minutes later: 6 in all.
    return new WebhookDelivery({ clock: this.clock, store: this.store, allowLoopbackHttp: this.allowLoopbackHttp, policy: { maxInlineAttempts: 1, maxAttempts: 6, ...this.policy }, log: this.log });
  }

  /** Why this deployment will not publish to `target`, if it will not. */
  targetProblem(target: EventTarget): string | undefined {
    if (target.webhook) return urlProblem(target.webhook.url, this.allowLoopbackHttp);
    const arn = target.sns?.topicArn ?? target.eventbridge?.busArn ?? '';
    if (!this.allowed.has(arn)) return `${arn} is not on this deployment's list of event targets (CDK context eventTargetArns); its functions may publish only there`;
    return undefined;
  }

  add(event: PushEvent): void {
    const list = this.buffers.get(event.tenant);
    if (list) list.push(event);
    else this.buffers.set(event.tenant, [event]);
  }

  /** Publishes every buffered event; each tenant's after its previous flush. Never throws. */
  async flush(settingsOf: (tenant: string) => Promise<EventsSettings | undefined>): Promise<void> {
    const work: Promise<void>[] = [];
    for (const [tenant, events] of this.buffers) {
      this.buffers.delete(tenant);
      const next = (this.chains.get(tenant) ?? Promise.resolve()).then(() => this.publish(tenant, events, settingsOf));
      this.chains.set(tenant, next);
      work.push(
        next.finally(() => {
          if (this.chains.get(tenant) === next) this.chains.delete(tenant);
        }),
      );
    }
    await Promise.all(work);
  }

  private async publish(tenant: string, events: PushEvent[], settingsOf: (tenant: string) => Promise<EventsSettings | undefined>): Promise<void> {
    let result: PublishResult;
    let target: EventTarget | undefined;
    try {
      target = (await settingsOf(tenant))?.target;
      if (!target) return; // the block was removed since: nothing to send to
      const refusal = this.targetProblem(target);
      if (refusal && !target.webhook) {
        this.stats.refused += events.length;
        this.log.warn({ tenant, events: events.length, refused: this.stats.refused }, `events not published: ${refusal}`);
        return;
      }
      result = await this.publishTo(tenant, target, events);
    } catch (err) {
      result = { published: 0, failed: events.length, error: (err as Error).message };
    }
    this.stats.published += result.published;
    this.stats.failed += result.failed;
    if (result.failed) this.server.metrics.count('EventPushFailures', result.failed, tenant);
    if (result.failed) {
      this.log.warn({ tenant, target: target && Object.keys(target)[0], failedEvents: result.failed, eventsFailed: this.stats.failed, error: result.error }, 'event push failed');
    }
  }

  private async publishTo(tenant: string, target: EventTarget, events: PushEvent[]): Promise<PublishResult> {
    if (target.sns) return publishSns(this.aws.sns(regionOfArn(target.sns.topicArn)), target.sns.topicArn, events);
    if (target.eventbridge) return publishEventBridge(this.aws.eventBridge(regionOfArn(target.eventbridge.busArn)), target.eventbridge.busArn, events);
    if (!target.webhook) return { published: 0, failed: events.length, error: 'no target' };
    const result: PublishResult = { published: 0, failed: 0 };
    for (const chunk of batches(events, MAX_WEBHOOK_EVENTS)) {
      const body = JSON.stringify({ version: EVENT_VERSION, events: chunk });
      const out = await this.delivery.deliver({ tenant, source: EVENTS_SOURCE, url: target.webhook.url, body, contentType: 'application/json', secret: target.webhook.secret });
      if (out.status === 'delivered') {
        result.published += chunk.length;
        continue;
      }
      // Scheduled: the sweeper sends the same body again; dead: listed by the admin API. Both failed now.
      result.failed += chunk.length;
      result.error ??= `${out.lastError} (${out.status === 'scheduled' ? `retry at ${new Date(out.dueAt).toISOString()}` : 'dead letter'})`;
    }
    return result;
  }

  /** The sweeper's step: due webhook retries, with the tenant's current URL and secret. */
  async retry(settingsOf: (tenant: string) => Promise<EventsSettings | undefined>): Promise<void> {
    const counts = await this.delivery.retryDue(EVENTS_SOURCE, async (tenant, source) => {
      if (source !== EVENTS_SOURCE) return undefined;
      const target = (await settingsOf(tenant))?.target;
      return target?.webhook ? { url: target.webhook.url, secret: target.webhook.secret } : undefined;
    });
    if (counts.delivered + counts.rescheduled + counts.dead + counts.dropped) this.log.debug?.({ ...counts }, 'event push retries');
  }
}

export const runtimes = new WeakMap<XmppServer, EventPushRuntime>();

/** The event push runtime of a server: its counters, and configure() for the wiring and tests. */
export function eventPushOf(server: XmppServer): EventPushRuntime {
  const rt = runtimes.get(server);
  if (!rt) throw new Error('the event-push module is not installed on this server');
  return rt;
}
