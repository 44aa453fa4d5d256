// Where a flush of events goes (README "Event push"): one signed webhook POST with all of them, or SNS
// PublishBatch / EventBridge PutEvents, 10 entries per call (each service's maximum) and under 256 KB.
// A publisher never throws: it reports how many events went and how many did not.
//
// The SNS and EventBridge clients are imported when a tenant's target first needs one, not at load: most
// functions and most tenants never publish there, and a deployed bundle leaves both packages to the
// runtime's own AWS SDK (lib/infra/bundling.ts).
import type { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import type { SNSClient } from '@aws-sdk/client-sns';
import type { PushEvent } from './schema.ts';

export interface PublishResult {
  published: number;
  failed: number;
  /** Why the failed ones failed (first error), for the log line. */
  error?: string;
}

/** PublishBatch and PutEvents take at most 10 entries and 256 KB per call; keep well under the latter. */
export const MAX_ENTRIES = 10;
const MAX_BATCH_BYTES = 200 * 1024;

/** A webhook POST carries at most this many events (and about 200 KB: its retry item must fit DynamoDB's 400 KB). */
export const MAX_WEBHOOK_EVENTS = 100;

/** Splits events into calls of at most `maxEntries` (default 10) and about 200 KB. */
export function batches(events: PushEvent[], maxEntries = MAX_ENTRIES): PushEvent[][] {
  const out: PushEvent[][] = [];
  let current: PushEvent[] = [];
  let bytes = 0;
  for (const e of events) {
    const size = Buffer.byteLength(JSON.stringify(e));
    if (current.length && (current.length >= maxEntries || bytes + size > MAX_BATCH_BYTES)) {
      out.push(current);
      current = [];
      bytes = 0;
    }
    current.push(e);
    bytes += size;
  }
  if (current.length) out.push(current);
  return out;
}

/** The region an ARN names (arn:aws:sns:<region>:…), where its client must send. */
export function regionOfArn(arn: string): string {
  return arn.split(':')[3];
}

export async function publishSns(client: SNSClient | Promise<SNSClient>, topicArn: string, events: PushEvent[]): Promise<PublishResult> {
  const fifo = topicArn.endsWith('.fifo');
  const result: PublishResult = { published: 0, failed: 0 };
  for (const batch of batches(events)) {
    try {
      const { PublishBatchCommand } = await import('@aws-sdk/client-sns');
      const res = await (await client).send(
        new PublishBatchCommand({
          TopicArn: topicArn,
          PublishBatchRequestEntries: batch.map((e, i) => ({
            Id: String(i),
            Message: JSON.stringify(e),
            // Subscribers filter on these (SNS subscription filter policies) without parsing the message.
            MessageAttributes: { kind: { DataType: 'String', StringValue: e.kind }, tenant: { DataType: 'String', StringValue: e.tenant } },
            // A FIFO topic keeps a tenant's events in order and drops a duplicate of one it has.
            ...(fifo ? { MessageGroupId: e.tenant, MessageDeduplicationId: e.id } : {}),
          })),
        }),
      );
      const failed = res.Failed?.length ?? 0;
      result.failed += failed;
      result.published += batch.length - failed;
      if (failed) result.error ??= `${res.Failed![0].Code}: ${res.Failed![0].Message ?? ''}`.trim();
    } catch (err) {
      result.failed += batch.length;
      result.error ??= (err as Error).name + ': ' + (err as Error).message;
    }
  }
  return result;
}

export async function publishEventBridge(client: EventBridgeClient | Promise<EventBridgeClient>, busArn: string, events: PushEvent[]): Promise<PublishResult> {
  const result: PublishResult = { published: 0, failed: 0 };
  for (const batch of batches(events)) {
    try {
      const { PutEventsCommand } = await import('@aws-sdk/client-eventbridge');
      const res = await (await client).send(
        new PutEventsCommand({
          Entries: batch.map((e) => ({ EventBusName: busArn, Source: 'xmpp-edge', DetailType: e.kind, Detail: JSON.stringify(e), Time: new Date(e.time) })),
        }),
      );
      const failed = res.FailedEntryCount ?? 0;
      result.failed += failed;
      result.published += batch.length - failed;
      if (failed) {
        const first = res.Entries?.find((x) => x.ErrorCode);
        result.error ??= `${first?.ErrorCode ?? 'failed'}: ${first?.ErrorMessage ?? ''}`.trim();
      }
    } catch (err) {
      result.failed += batch.length;
      result.error ??= (err as Error).name + ': ' + (err as Error).message;
    }
  }
  return result;
}

/** The AWS clients, one per region, made when first needed (tests put SDK-level doubles in their place). */
export interface AwsClients {
  sns(region: string): SNSClient | Promise<SNSClient>;
  eventBridge(region: string): EventBridgeClient | Promise<EventBridgeClient>;
}

export function defaultAwsClients(): AwsClients {
  const sns = new Map<string, Promise<SNSClient>>();
  const eb = new Map<string, Promise<EventBridgeClient>>();
  const snsClient = async (region: string) => new (await import('@aws-sdk/client-sns')).SNSClient({ region, maxAttempts: 3 });
  const ebClient = async (region: string) => new (await import('@aws-sdk/client-eventbridge')).EventBridgeClient({ region, maxAttempts: 3 });
  return {
    sns: (region) => sns.get(region) ?? sns.set(region, snsClient(region)).get(region)!,
    eventBridge: (region) => eb.get(region) ?? eb.set(region, ebClient(region)).get(region)!,
  };
}
