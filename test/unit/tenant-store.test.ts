// TenantStore.getMany, the tenant watcher's poll: a tenant is reported deleted only when its item is
// really missing, never because DynamoDB left its key unprocessed (that would close its sessions).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { TenantStore } from '../../lib/store/tenants.ts';

/** A client whose first BatchGetItem leaves every key unprocessed, and whose second answers. */
function throttledOnce(items: Record<string, unknown>[]): { db: DynamoDBDocumentClient; calls: () => number } {
  let calls = 0;
  const db = {
    async send(command: { input: { RequestItems: Record<string, { Keys: Record<string, unknown>[] }> } }) {
      calls++;
      const [table, { Keys }] = Object.entries(command.input.RequestItems)[0];
      if (calls === 1) return { Responses: { [table]: [] }, UnprocessedKeys: { [table]: { Keys } } };
      return { Responses: { [table]: items.filter((i) => Keys.some((k) => k.pk === i.pk)) } };
    },
  };
  return { db: db as unknown as DynamoDBDocumentClient, calls: () => calls };
}

test('getMany retries unprocessed keys instead of reporting the tenants as deleted', async () => {
  const { db, calls } = throttledOnce([{ pk: 'tenant#a.example', sk: 'tenant', domain: 'a.example', enabled: true }]);
  const tenants = await new TenantStore(db, 't').getMany(['a.example', 'gone.example']);
  assert.equal(calls(), 2);
  assert.equal(tenants.get('a.example')?.enabled, true);
  assert.equal(tenants.get('gone.example'), undefined);
  assert.equal(tenants.size, 2);
});

test('getMany keys a tenant by its item key, whatever its domain field says', async () => {
  const { db } = throttledOnce([{ pk: 'tenant#b.example', sk: 'tenant', domain: 'renamed.example', enabled: true }]);
  const tenants = await new TenantStore(db, 't').getMany(['b.example']);
  assert.equal(tenants.get('b.example')?.enabled, true);
  assert.deepEqual([...tenants.keys()], ['b.example']);
});
