// The redelivery guard of the ordered ingest (docs/architecture.md "Order"): SQS delivers a frame at least once,
// so before a frame is processed it is claimed with one conditional write keyed by connection id and
// API Gateway message id. A second delivery of a claimed frame finds the claim and is skipped; a frame
// whose processing failed has its claim released, so the retry processes it. One write per frame is
// the price; the trade-off is that a container killed in the middle of a frame (timeout, crash) leaves
// that one frame claimed, so it is not processed again: at most once for that frame, rather than a
// repeated SASL step or a duplicated message. The frames after it are unclaimed and are processed.
//
// Claims live in a small regional table of their own, not in the global table: a claim only matters
// in the region whose queue delivered the frame, and a write to a global table is paid again in every
// replica region. The table is declared here once, for dynalite in tests and for the CDK stack.
import type { CreateTableCommandInput } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, PutCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { TTL_ATTRIBUTE, isConditionFailure, ttlFrom } from './dynamo.ts';

/**
 * How long a claim is kept. A frame is redelivered at most `maxReceiveCount` times, one visibility
 * timeout apart, and the queue drops frames after its retention period (2 h, API Gateway's longest
 * connection); a claim must outlive all of that.
 */
export const FRAME_CLAIM_TTL_MS = 3 * 60 * 60_000;

export function frameClaimsTableDefinition(tableName: string): CreateTableCommandInput {
  return {
    TableName: tableName,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [
      { AttributeName: 'pk', AttributeType: 'S' },
      { AttributeName: 'sk', AttributeType: 'S' },
    ],
    KeySchema: [
      { AttributeName: 'pk', KeyType: 'HASH' },
      { AttributeName: 'sk', KeyType: 'RANGE' },
    ],
  };
}

/** What the ingest needs from a guard; the DynamoDB one below, or a fake in unit tests. */
export interface FrameClaims {
  /** True if this delivery may process the frame; false if an earlier delivery claimed it. */
  claim(connectionId: string, messageId: string): Promise<boolean>;
  /** Gives a claim back after a failed attempt so the redelivery processes the frame. */
  release(connectionId: string, messageId: string): Promise<void>;
}

const key = (connectionId: string, messageId: string) => ({ pk: `frame#${connectionId}`, sk: messageId });

export class FrameClaimStore implements FrameClaims {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    private readonly table: string,
    private readonly ttlMs = FRAME_CLAIM_TTL_MS,
    private readonly now: () => number = Date.now,
  ) {}

  async claim(connectionId: string, messageId: string): Promise<boolean> {
    const now = this.now();
    try {
      await this.db.send(
        new PutCommand({
          TableName: this.table,
          Item: { ...key(connectionId, messageId), claimedAt: now, [TTL_ATTRIBUTE]: ttlFrom(now + this.ttlMs) },
          // TTL deletion in AWS lags by up to days (and never happens in dynalite): an expired claim counts as none.
          ConditionExpression: 'attribute_not_exists(#pk) OR #ttl < :nowSeconds',
          ExpressionAttributeNames: { '#pk': 'pk', '#ttl': TTL_ATTRIBUTE },
          ExpressionAttributeValues: { ':nowSeconds': Math.floor(now / 1000) },
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw err;
    }
  }

  async release(connectionId: string, messageId: string): Promise<void> {
    await this.db.send(new DeleteCommand({ TableName: this.table, Key: key(connectionId, messageId) }));
  }
}
