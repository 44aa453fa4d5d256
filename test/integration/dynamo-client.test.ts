// createDynamoClient's handler cache (lib/store/dynamo.ts withHandlerCache): the middleware stack of each Document
// command class is resolved once, and every call still gets its own input, its own answer and every middleware.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DescribeTableCommand, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { ensureTable, startDynalite } from '../../lib/local/dynamo-local.ts';
import { createDynamoClient } from '../../lib/store/dynamo.ts';
import { CallCounter } from '../../lib/store/call-counter.ts';
import { until } from '../support/harness.ts';

test('the Document client resolves each command class once; concurrent calls keep their own inputs; a middleware added later sees later calls', async (t) => {
  const dynamo = await startDynalite({ port: 0 });
  t.after(() => dynamo.close());
  await ensureTable(dynamo.endpoint, 'cache');
  const counter = new CallCounter();
  const db = createDynamoClient({ endpoint: dynamo.endpoint, localCredentials: true, counter, requestHandler: dynamo.requestHandler });
  t.after(() => db.destroy());
  await until('the table is active', async () => (await db.send(new DescribeTableCommand({ TableName: 'cache' }))).Table?.TableStatus === 'ACTIVE');

  const resolve = GetItemCommand.prototype.resolveMiddleware;
  let resolved = 0;
  GetItemCommand.prototype.resolveMiddleware = function (this: GetItemCommand, ...args: Parameters<typeof resolve>) {
    resolved++;
    return resolve.apply(this, args);
  };
  t.after(() => (GetItemCommand.prototype.resolveMiddleware = resolve));

  const keys = Array.from({ length: 20 }, (_, i) => `u${i}`);
  await Promise.all(keys.map((pk, i) => db.send(new PutCommand({ TableName: 'cache', Item: { pk, sk: 's', i, tags: new Set([pk]) } }))));
  const got = await Promise.all(keys.map((pk) => db.send(new GetCommand({ TableName: 'cache', Key: { pk, sk: 's' } }))));
  assert.deepEqual(
    got.map((r) => r.Item),
    keys.map((pk, i) => ({ pk, sk: 's', i, tags: new Set([pk]) })),
  );
  assert.equal(resolved, 1, 'one GetItem middleware stack for 20 calls');
  assert.equal(counter.snapshot()['dynamodb:GetItemCommand'], 20, 'the call counter saw every call');

  // A middleware added after the first calls (as the cost tests add theirs) sees the next call.
  const seen: string[] = [];
  (db.middlewareStack as unknown as { add: Function }).add(
    (next: (a: unknown) => Promise<unknown>) => async (args: { input: { Key: { pk: { S: string } } } }) => (seen.push(args.input.Key.pk.S), next(args)),
    { step: 'build', name: 'testLateMiddleware' },
  );
  const late = await db.send(new GetCommand({ TableName: 'cache', Key: { pk: 'u7', sk: 's' } }));
  assert.equal(late.Item?.i, 7);
  assert.deepEqual(seen, ['u7']);
  assert.equal(resolved, 2, 'the stack changed, so it was resolved again');
});
