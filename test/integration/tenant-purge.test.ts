// Deleting a tenant can purge all of its data in the background, resumably, without touching
// another tenant's data.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { QueryCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { TenantPurger, purgePlanOf } from '../../lib/admin/purge.ts';
import { createDynamoClient } from '../../lib/store/dynamo.ts';
import { type TestServer, startTestServer } from '../support/harness.ts';
import { rosterOf } from '../../lib/extensions/roster/index.ts';
import { offlineOf } from '../../lib/extensions/offline/index.ts';

let s: TestServer;
let db: ReturnType<typeof createDynamoClient>;

/** Every key in the table that mentions `domain`. */
async function keysMentioning(domain: string): Promise<string[]> {
  const res = await db.send(new ScanCommand({ TableName: s.table, ProjectionExpression: 'pk, sk' }));
  return (res.Items ?? []).map((i) => `${i.pk}|${i.sk}`).filter((k) => k.includes(domain));
}

async function seed(domain: string, users: number) {
  await s.server.tenants.put({ domain, enabled: true });
  for (let i = 0; i < users; i++) {
    const name = `u${String(i).padStart(2, '0')}`;
    await s.server.users.create({ domain, username: name, createdAt: Date.now() });
    await rosterOf(s.server).put(`${name}@${domain}`, { jid: `friend@${domain}`, groups: [], subscription: 'both', pendingIn: false, pendingOut: false, approved: false, inRoster: true });
    await offlineOf(s.server).store(`${name}@${domain}`, '<message xmlns="jabber:client"><body>x</body></message>');
  }
}

before(async () => {
  s = await startTestServer({ purgeIntervalMs: 60_000 });
  db = createDynamoClient({ endpoint: s.dynamoEndpoint, localCredentials: true });
});
after(async () => {
  db.destroy();
  await s.stop();
});

describe('tenant purge', () => {
  it('removes users, rosters, offline messages and the tenant, and resumes after an interruption', async () => {
    await seed('purged.example', 30);
    await seed('kept.example', 2);
    const before = await keysMentioning('kept.example');
    assert.ok((await keysMentioning('purged.example')).length >= 91);

    const purger = new TenantPurger(db, s.table, purgePlanOf(s.server));
    await s.server.tenants.remove('purged.example');
    await purger.request('purged.example');
    // A deadline already past: one page of 25 accounts, then the job stops and records its place.
    await purger.runPending(Date.now() - 1);
    const job = await purger.status('purged.example');
    assert.equal(job?.usersPurged, 25);
    assert.equal(job?.afterUser, 'u24');
    assert.equal((await s.server.users.list('purged.example')).length, 5);

    await purger.runPending();
    assert.equal(await purger.status('purged.example'), undefined);
    assert.deepEqual(await keysMentioning('purged.example'), []);
    assert.deepEqual(await keysMentioning('kept.example'), before);
    const jobs = await db.send(new QueryCommand({ TableName: s.table, KeyConditionExpression: 'pk = :p', ExpressionAttributeValues: { ':p': 'purge' } }));
    assert.equal(jobs.Items?.length, 0);
  });
});
