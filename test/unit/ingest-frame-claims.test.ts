// The redelivery guard's DynamoDB store against dynalite: one conditional write claims a frame, a
// second claim of the same frame fails, a release or an expired claim lets it be claimed again.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CallCounter, summarize } from '../../lib/store/call-counter.ts';
import { startDynalite, type LocalDynamo } from '../../lib/local/dynamo-local.ts';
import { createDynamoClient } from '../../lib/store/dynamo.ts';
import { FRAME_CLAIM_TTL_MS, FrameClaimStore, frameClaimsTableDefinition } from '../../lib/store/frame-dedup.ts';

describe('FrameClaimStore on dynalite', () => {
  let dynamo: LocalDynamo;
  const counter = new CallCounter();
  let db: ReturnType<typeof createDynamoClient>;
  let now = 1_764_086_400_000;
  let claims: FrameClaimStore;

  before(async () => {
    dynamo = await startDynalite({ port: 0 });
    const admin = new DynamoDBClient({ endpoint: dynamo.endpoint, region: 'local', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
    await admin.send(new CreateTableCommand(frameClaimsTableDefinition('frame-claims')));
    admin.destroy();
    db = createDynamoClient({ endpoint: dynamo.endpoint, localCredentials: true, counter });
    claims = new FrameClaimStore(db, 'frame-claims', FRAME_CLAIM_TTL_MS, () => now);
  });
  after(async () => {
    db.destroy();
    await dynamo.close();
  });

  it('claims a frame once, with one write', async () => {
    const before = counter.snapshot();
    assert.equal(await claims.claim('conn1', 'msg1'), true);
    assert.deepEqual(summarize(counter.since(before)), { reads: 0, writes: 1, posts: 0 });
    assert.equal(await claims.claim('conn1', 'msg1'), false);
  });

  it('keys claims by connection and message: the same message id on another connection is another frame', async () => {
    assert.equal(await claims.claim('conn1', 'msg2'), true);
    assert.equal(await claims.claim('conn2', 'msg2'), true);
  });

  it('lets a released frame be claimed again (the retry after a failure)', async () => {
    assert.equal(await claims.claim('conn3', 'msg1'), true);
    await claims.release('conn3', 'msg1');
    assert.equal(await claims.claim('conn3', 'msg1'), true);
    assert.equal(await claims.claim('conn3', 'msg1'), false);
  });

  it('treats an expired claim as none (TTL deletion lags; dynalite never deletes)', async () => {
    assert.equal(await claims.claim('conn4', 'msg1'), true);
    now += FRAME_CLAIM_TTL_MS - 1000;
    assert.equal(await claims.claim('conn4', 'msg1'), false);
    now += 2000;
    assert.equal(await claims.claim('conn4', 'msg1'), true);
  });
});
