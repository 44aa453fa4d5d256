// Event push to SNS and EventBridge (lib/extensions/event-push/publishers.ts) through the real SDK
// clients with their transport replaced (test/support/aws-doubles.ts): 10 entries per call, the
// message attributes and FIFO fields, partial failures and refused calls counted, never thrown.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pushEvent } from '../../lib/extensions/event-push/events.ts';
import { batches, publishEventBridge, publishSns, regionOfArn } from '../../lib/extensions/event-push/publishers.ts';
import type { PushEvent } from '../../lib/extensions/event-push/schema.ts';
import { type RecordedCall, eventBridgeDouble, snsDouble } from '../support/aws-doubles.ts';

const TOPIC = 'arn:aws:sns:eu-west-1:123456789012:xmpp-events';
const BUS = 'arn:aws:events:eu-west-1:123456789012:event-bus/xmpp';
const events = (n: number, tenant = 'a.example'): PushEvent[] => Array.from({ length: n }, (_, i) => pushEvent('session/opened', tenant, 1_780_000_000_000 + i, { jid: `u${i}@${tenant}/r` }));

describe('SNS', () => {
  it('23 events: PublishBatch calls of 10, 10 and 3, each entry the event as JSON with kind and tenant attributes', async () => {
    const calls: RecordedCall[] = [];
    const list = events(23);
    assert.deepEqual(await publishSns(snsDouble(calls), TOPIC, list), { published: 23, failed: 0 });
    assert.deepEqual(calls.map((c) => [c.command, c.input.TopicArn, c.input.PublishBatchRequestEntries.length]), [
      ['PublishBatchCommand', TOPIC, 10],
      ['PublishBatchCommand', TOPIC, 10],
      ['PublishBatchCommand', TOPIC, 3],
    ]);
    const first = calls[0].input.PublishBatchRequestEntries[0];
    assert.deepEqual(JSON.parse(first.Message), list[0]);
    assert.deepEqual(first.MessageAttributes, { kind: { DataType: 'String', StringValue: 'session/opened' }, tenant: { DataType: 'String', StringValue: 'a.example' } });
    assert.equal(first.MessageGroupId, undefined);
  });

  it('a FIFO topic: grouped by tenant (in order), deduplicated by event id', async () => {
    const calls: RecordedCall[] = [];
    const list = events(2);
    await publishSns(snsDouble(calls), `${TOPIC}.fifo`, list);
    assert.deepEqual(
      calls[0].input.PublishBatchRequestEntries.map((e: { MessageGroupId: string; MessageDeduplicationId: string }) => [e.MessageGroupId, e.MessageDeduplicationId]),
      list.map((e) => ['a.example', e.id]),
    );
  });

  it('entries SNS refuses and a refused call are counted as failed, with the first reason; nothing throws', async () => {
    const calls: RecordedCall[] = [];
    const partly = snsDouble(calls, (_c, input) => ({ Successful: [], Failed: [{ Id: input.PublishBatchRequestEntries[0].Id, Code: 'InternalError', Message: 'try later', SenderFault: false }] }));
    assert.deepEqual(await publishSns(partly, TOPIC, events(3)), { published: 2, failed: 1, error: 'InternalError: try later' });
    const denied = snsDouble(calls, () => {
      throw Object.assign(new Error('not authorized to perform: SNS:Publish'), { name: 'AuthorizationErrorException' });
    });
    assert.deepEqual(await publishSns(denied, TOPIC, events(12)), { published: 0, failed: 12, error: 'AuthorizationErrorException: not authorized to perform: SNS:Publish' });
  });
});

describe('EventBridge', () => {
  it('PutEvents by 10: source xmpp-edge, detail-type the kind, detail the event, on the named bus', async () => {
    const calls: RecordedCall[] = [];
    const list = events(11);
    assert.deepEqual(await publishEventBridge(eventBridgeDouble(calls), BUS, list), { published: 11, failed: 0 });
    assert.deepEqual(calls.map((c) => [c.command, c.input.Entries.length]), [
      ['PutEventsCommand', 10],
      ['PutEventsCommand', 1],
    ]);
    const e = calls[0].input.Entries[0];
    assert.deepEqual({ ...e, Detail: JSON.parse(e.Detail) }, { EventBusName: BUS, Source: 'xmpp-edge', DetailType: 'session/opened', Detail: list[0], Time: new Date(list[0].time) });
  });

  it('FailedEntryCount is counted', async () => {
    const calls: RecordedCall[] = [];
    const double = eventBridgeDouble(calls, () => ({ FailedEntryCount: 1, Entries: [{ EventId: 'x' }, { ErrorCode: 'ThrottlingException', ErrorMessage: 'slow down' }] }));
    assert.deepEqual(await publishEventBridge(double, BUS, events(2)), { published: 1, failed: 1, error: 'ThrottlingException: slow down' });
  });
});

it('batches stay under 10 entries and about 200 KB; the region comes from the ARN', () => {
  const big = events(5).map((e) => ({ ...e, body: 'x'.repeat(60 * 1024) }));
  assert.deepEqual(batches(big).map((b) => b.length), [3, 2]);
  assert.deepEqual(batches(events(20)).map((b) => b.length), [10, 10]);
  // Webhook bodies: up to 100 events, so a waiting retry always fits one DynamoDB item.
  assert.deepEqual(batches(events(250), 100).map((b) => b.length), [100, 100, 50]);
  assert.equal(regionOfArn(BUS), 'eu-west-1');
});
