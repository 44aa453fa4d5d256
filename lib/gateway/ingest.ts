// The ingest: WebSocket frames from the SQS FIFO queue the $default route writes to, in order per
// connection (MessageGroupId = connection id), at most once each (docs/architecture.md "Order"). The
// deployed ingest Lambda (functions/ingest.ts) and the local gateway (local-gateway.ts, which renders
// the same envelope and hands it over as an SQS record) both run createIngestHandler.
// https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html#services-sqs-batchfailurereporting
import type { Logger } from 'pino';
import type { FrameClaims } from '../store/frame-dedup.ts';
import { type FrameEnvelope, ingestMetricsRecord, type IngestCounts, parseFrameEnvelope } from './frame-envelope.ts';

// ---- the SQS event shapes Lambda hands over (the fields read here)

export interface SqsRecord {
  messageId: string;
  body: string;
  attributes: {
    MessageGroupId?: string;
    ApproximateReceiveCount?: string;
    [name: string]: string | undefined;
  };
  eventSourceARN?: string;
  [field: string]: unknown;
}

export interface SqsEvent {
  Records: SqsRecord[];
}

export interface SqsBatchResponse {
  batchItemFailures: { itemIdentifier: string }[];
}

// ---- pure parts

/** Records by message group, each group in delivery order (FIFO order within a group). */
export function groupInOrder(records: readonly SqsRecord[]): SqsRecord[][] {
  const groups = new Map<string, SqsRecord[]>();
  for (const r of records) {
    // A record without a group (never on a FIFO queue) is its own group.
    const group = r.attributes.MessageGroupId ?? `record#${r.messageId}`;
    const list = groups.get(group);
    if (list) list.push(r);
    else groups.set(group, [r]);
  }
  return [...groups.values()];
}

/**
 * The records to hand back to SQS: every failed record and every later record of the same message
 * group, processed or not, so that the group's order survives the retry. Other groups are unaffected.
 */
export function batchItemFailures(records: readonly SqsRecord[], failed: ReadonlySet<string>): SqsBatchResponse {
  const stalledGroups = new Set<string>();
  const out: SqsBatchResponse['batchItemFailures'] = [];
  for (const r of records) {
    const group = r.attributes.MessageGroupId ?? `record#${r.messageId}`;
    if (failed.has(r.messageId)) stalledGroups.add(group);
    if (stalledGroups.has(group)) out.push({ itemIdentifier: r.messageId });
  }
  return { batchItemFailures: out };
}

// ---- the batch

/** What processes one frame: XmppServer in production, a fake in unit tests. */
export interface FrameProcessor {
  frame(connectionId: string, endpoint: string, body: string): Promise<void>;
}

export interface IngestDeps {
  processor: FrameProcessor;
  claims: FrameClaims;
  /** The management endpoint that reaches the frame's connection. */
  endpointOf(envelope: FrameEnvelope): string;
  log: Pick<Logger, 'info' | 'warn' | 'error'>;
  /**
   * Run after each batch, before the handler returns (XmppServer.flush: the modules' deferred work, such
   * as event push): the local server's. In Lambda the invocation's own flush, after the handler, does it
   * (docs/architecture.md "The end of an invocation").
   */
  afterBatch?: () => Promise<void>;
}

type Outcome = 'processed' | 'redelivered' | 'failed';

async function processRecord(record: SqsRecord, deps: IngestDeps): Promise<Outcome> {
  const log = deps.log;
  let envelope: FrameEnvelope;
  try {
    envelope = parseFrameEnvelope(record.body);
  } catch (err) {
    // Only a broken integration template makes such a message; it goes to the dead-letter queue.
    log.error({ err, sqsMessageId: record.messageId }, 'frame envelope unreadable');
    return 'failed';
  }
  const { connectionId, messageId } = envelope;
  try {
    if (!(await deps.claims.claim(connectionId, messageId))) {
      log.info({ connectionId, messageId, receiveCount: record.attributes.ApproximateReceiveCount }, 'frame redelivered, skipped');
      return 'redelivered';
    }
  } catch (err) {
    log.error({ err, connectionId, messageId }, 'frame claim failed');
    return 'failed';
  }
  try {
    await deps.processor.frame(connectionId, deps.endpointOf(envelope), envelope.body);
    return 'processed';
  } catch (err) {
    log.error({ err, connectionId, messageId, receiveCount: record.attributes.ApproximateReceiveCount }, 'frame failed');
    try {
      await deps.claims.release(connectionId, messageId);
    } catch (releaseErr) {
      log.error({ err: releaseErr, connectionId, messageId }, 'frame claim not released: its retry will be skipped');
    }
    return 'failed';
  }
}

/**
 * Processes one batch: the groups side by side, each group's frames one after another, and a group
 * stops at its first failure (the rest of it is retried later, in order).
 */
export async function ingestBatch(event: SqsEvent, deps: IngestDeps): Promise<SqsBatchResponse & { counts: IngestCounts }> {
  const failed = new Set<string>();
  const counts: IngestCounts = { processed: 0, redelivered: 0, failed: 0 };
  await Promise.all(
    groupInOrder(event.Records).map(async (group) => {
      for (const record of group) {
        const outcome = await processRecord(record, deps);
        counts[outcome]++;
        if (outcome === 'failed') {
          failed.add(record.messageId);
          return;
        }
      }
    }),
  );
  return { ...batchItemFailures(event.Records, failed), counts };
}

/** EMF records must be whole JSON log lines: straight to stdout, not console.log (which adds a prefix). */
const toStdout = (record: Record<string, unknown>) => void process.stdout.write(JSON.stringify(record) + '\n');

/** The Lambda handler over given dependencies; writes the batch's metrics as one EMF log line. */
export function createIngestHandler(deps: IngestDeps, writeMetrics: (record: Record<string, unknown>) => void = toStdout) {
  return async (event: SqsEvent): Promise<SqsBatchResponse> => {
    const { batchItemFailures: failures, counts } = await ingestBatch(event, deps);
    if (deps.afterBatch) await deps.afterBatch().catch((err: unknown) => deps.log.error({ err }, 'after-batch work failed'));
    writeMetrics(ingestMetricsRecord(counts));
    return { batchItemFailures: failures };
  };
}
