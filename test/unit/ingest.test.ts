// The ingest Lambda on SQS-shaped events (test/fixtures/sqs-*.json): order per connection, redelivered
// frames skipped, a failure handed back with the rest of its connection's frames and nothing else.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import {
  type FrameProcessor,
  type IngestDeps,
  type SqsEvent,
  batchItemFailures,
  createIngestHandler,
  groupInOrder,
  ingestBatch,
} from '../../lib/gateway/ingest.ts';
import { INGEST_METRICS } from '../../lib/gateway/frame-envelope.ts';
import type { FrameClaims } from '../../lib/store/frame-dedup.ts';

const fixture = (name: string): SqsEvent => JSON.parse(readFileSync(new URL(`../fixtures/${name}`, import.meta.url), 'utf8'));
const A = 'Ab1CdEfGhIkCFwA=';
const B = 'Zy9XwVuTsRoCFxQ=';

interface Call {
  connectionId: string;
  endpoint: string;
  body: string;
}

/** Records frames; fails those `fails` picks; takes a while on the first frames so groups interleave. */
class FakeProcessor implements FrameProcessor {
  calls: Call[] = [];
  constructor(private readonly fails: (body: string) => boolean = () => false) {}
  async frame(connectionId: string, endpoint: string, body: string): Promise<void> {
    await new Promise((r) => setTimeout(r, this.calls.length < 2 ? 15 : 1));
    if (this.fails(body)) throw new Error('DynamoDB said no');
    this.calls.push({ connectionId, endpoint, body });
  }
  bodiesOf(connectionId: string): string[] {
    return this.calls.filter((c) => c.connectionId === connectionId).map((c) => c.body);
  }
}

class MemoryClaims implements FrameClaims {
  claimed = new Set<string>();
  released: string[] = [];
  async claim(connectionId: string, messageId: string) {
    const key = `${connectionId} ${messageId}`;
    if (this.claimed.has(key)) return false;
    this.claimed.add(key);
    return true;
  }
  async release(connectionId: string, messageId: string) {
    this.claimed.delete(`${connectionId} ${messageId}`);
    this.released.push(messageId);
  }
}

const silent = pino({ level: 'silent' });
const deps = (processor: FrameProcessor, claims: FrameClaims = new MemoryClaims()): IngestDeps => ({
  processor,
  claims,
  endpointOf: (e) => `https://${e.domainName}/${e.stage}`,
  log: silent,
});

const framesOf = (event: SqsEvent, connectionId: string) =>
  event.Records.filter((r) => r.attributes.MessageGroupId === connectionId).map((r) => Buffer.from(JSON.parse(r.body).body64, 'base64').toString('utf8'));
const sqsIds = (event: SqsEvent, ...indexes: number[]) => indexes.map((i) => ({ itemIdentifier: event.Records[i].messageId }));

describe('ingest: SQS FIFO batch → frames in order', () => {
  it('hands every frame to the server once, each connection in order, with its endpoint', async () => {
    const event = fixture('sqs-two-connections.json');
    const processor = new FakeProcessor();
    const res = await ingestBatch(event, deps(processor));
    assert.deepEqual(res.batchItemFailures, []);
    assert.deepEqual(res.counts, { processed: 5, redelivered: 0, failed: 0 });
    assert.deepEqual(processor.bodiesOf(A), framesOf(event, A));
    assert.deepEqual(processor.bodiesOf(B), framesOf(event, B));
    assert.match(processor.bodiesOf(B)[1], /café ☕ &amp; "quotes"/);
    for (const c of processor.calls) assert.equal(c.endpoint, 'https://abc123defg.execute-api.eu-west-1.amazonaws.com/xmpp');
  });

  it('skips frames that were processed before, when SQS delivers the batch again', async () => {
    const event = fixture('sqs-two-connections.json');
    const claims = new MemoryClaims();
    await ingestBatch(event, deps(new FakeProcessor(), claims));
    const again = new FakeProcessor();
    const res = await ingestBatch(event, deps(again, claims));
    assert.deepEqual(res.batchItemFailures, []);
    assert.deepEqual(res.counts, { processed: 0, redelivered: 5, failed: 0 });
    assert.deepEqual(again.calls, []);
  });

  it('on a failure, hands back that frame and the later frames of its connection; other connections go on', async () => {
    const event = fixture('sqs-two-connections.json');
    const claims = new MemoryClaims();
    const processor = new FakeProcessor((body) => body.startsWith('<auth'));
    const res = await ingestBatch(event, deps(processor, claims));
    // A2 (the <auth/>) failed: A2 and A3 go back to SQS; A3 was not processed out of order.
    assert.deepEqual(res.batchItemFailures, sqsIds(event, 2, 4));
    assert.deepEqual(res.counts, { processed: 3, redelivered: 0, failed: 1 });
    assert.deepEqual(processor.bodiesOf(A), framesOf(event, A).slice(0, 1));
    assert.deepEqual(processor.bodiesOf(B), framesOf(event, B));
    // The failed frame's claim is given back, so its redelivery is processed, not skipped.
    assert.deepEqual(claims.released, ['MsgA2aaaaaaaaA=']);

    const redelivered = fixture('sqs-redelivered.json');
    const retry = new FakeProcessor();
    const again = await ingestBatch(redelivered, deps(retry, claims));
    assert.deepEqual(again.batchItemFailures, []);
    assert.deepEqual(again.counts, { processed: 2, redelivered: 0, failed: 0 });
    assert.deepEqual(retry.bodiesOf(A), framesOf(event, A).slice(1));
  });

  it('hands back a frame whose claim cannot be written, unprocessed', async () => {
    const event = fixture('sqs-two-connections.json');
    const claims = new MemoryClaims();
    const flaky: FrameClaims = {
      claim: async (c, m) => {
        if (m === 'MsgB1bbbbbbbbA=') throw Object.assign(new Error('throttled'), { name: 'ProvisionedThroughputExceededException' });
        return claims.claim(c, m);
      },
      release: (c, m) => claims.release(c, m),
    };
    const processor = new FakeProcessor();
    const res = await ingestBatch(event, deps(processor, flaky));
    assert.deepEqual(res.batchItemFailures, sqsIds(event, 1, 3));
    assert.deepEqual(processor.bodiesOf(B), []);
    assert.deepEqual(processor.bodiesOf(A), framesOf(event, A));
  });

  it('hands back an unreadable envelope with the rest of its connection (to the dead-letter queue in time)', async () => {
    const event = fixture('sqs-unreadable-envelope.json');
    const processor = new FakeProcessor();
    const res = await ingestBatch(event, deps(processor));
    assert.deepEqual(res.batchItemFailures, sqsIds(event, 0, 2));
    assert.deepEqual(processor.bodiesOf(A), []);
    assert.deepEqual(processor.bodiesOf(B), ["<presence xmlns='jabber:client'/>"]);
  });

  it('writes the batch counts as one CloudWatch embedded-metric record', async () => {
    const lines: Record<string, unknown>[] = [];
    const handler = createIngestHandler(deps(new FakeProcessor((b) => b.startsWith('<iq'))), (r) => lines.push(r));
    const res = await handler(fixture('sqs-two-connections.json'));
    assert.equal(res.batchItemFailures.length, 1);
    assert.equal(lines.length, 1);
    const [line] = lines;
    assert.equal(line[INGEST_METRICS.processed], 4);
    assert.equal(line[INGEST_METRICS.failed], 1);
    assert.equal(line[INGEST_METRICS.redelivered], 0);
    assert.equal(line.Service, 'ingest');
    const emf = (line._aws as { CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string }[] }[] }).CloudWatchMetrics[0];
    assert.equal(emf.Namespace, INGEST_METRICS.namespace);
    assert.deepEqual(emf.Dimensions, [['Service']]);
    assert.deepEqual(emf.Metrics.map((m) => m.Name).sort(), ['FramesFailed', 'FramesProcessed', 'FramesRedelivered']);
  });
});

describe('ingest: work after the batch (XmppServer.flush: event push)', () => {
  it('runs once, after every frame of the batch, before the handler returns', async () => {
    const processor = new FakeProcessor();
    const seen: number[] = [];
    const handler = createIngestHandler({ ...deps(processor), afterBatch: async () => void seen.push(processor.calls.length) }, () => {});
    await handler(fixture('sqs-two-connections.json'));
    assert.deepEqual(seen, [5]);
  });

  it('a failure there is logged and fails no frame', async () => {
    const errors: unknown[] = [];
    const log = { info() {}, warn() {}, error: (o: unknown) => void errors.push(o) };
    const handler = createIngestHandler({ ...deps(new FakeProcessor()), log: log as never, afterBatch: async () => Promise.reject(new Error('SNS said no')) }, () => {});
    const res = await handler(fixture('sqs-two-connections.json'));
    assert.deepEqual(res.batchItemFailures, []);
    assert.equal(errors.length, 1);
  });
});

describe('ingest: failure propagation (pure)', () => {
  const rec = (id: string, group?: string) => ({ messageId: id, body: '', attributes: group ? { MessageGroupId: group } : {} });
  const records = [rec('a1', 'A'), rec('b1', 'B'), rec('a2', 'A'), rec('c1', 'C'), rec('b2', 'B'), rec('a3', 'A'), rec('x')];

  it('groups records by message group, each in delivery order', () => {
    assert.deepEqual(
      groupInOrder(records).map((g) => g.map((r) => r.messageId)),
      [['a1', 'a2', 'a3'], ['b1', 'b2'], ['c1'], ['x']],
    );
  });

  it('reports a failed record and every later record of its group, in batch order', () => {
    const ids = (failed: string[]) => batchItemFailures(records, new Set(failed)).batchItemFailures.map((f) => f.itemIdentifier);
    assert.deepEqual(ids([]), []);
    assert.deepEqual(ids(['a2']), ['a2', 'a3']);
    assert.deepEqual(ids(['a1', 'b2']), ['a1', 'a2', 'b2', 'a3']);
    assert.deepEqual(ids(['x']), ['x']);
    assert.deepEqual(ids(['c1']), ['c1']);
  });
});

describe('ingest: the deployed handler', () => {
  it('says which setting is missing instead of failing on the first frame', async () => {
    const { handler } = await import('../../functions/ingest.ts');
    const saved = { ...process.env };
    try {
      process.env.TABLE_NAME = 'xmpp-edge';
      delete process.env.FRAME_CLAIMS_TABLE;
      await assert.rejects(handler(fixture('sqs-two-connections.json')), /FRAME_CLAIMS_TABLE is not set/);
    } finally {
      process.env = saved;
    }
  });
});
