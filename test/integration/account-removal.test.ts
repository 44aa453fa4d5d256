// Removing an account takes what it kept with it (README "Admin API"): the partitions its tenant's
// modules declare (roster, offline messages, archive, …), whether an admin removes it or the user
// cancels it in-band (XEP-0077 §3.2). A new account of the same name starts empty.
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { QueryCommand } from '@aws-sdk/lib-dynamodb';
import { rosterOf } from '../../lib/extensions/roster/index.ts';
import { offlineOf } from '../../lib/extensions/offline/index.ts';
import { RawClient, type TestServer, byName, connectClient, startTestServer, until, xml } from '../support/harness.ts';

let s: TestServer;
before(async () => {
  s = await startTestServer({ adminToken: 'removal-token' });
});
after(() => s.stop());

/** The partitions of `bare` that hold anything, by prefix (sessions aside: they end with the sessions). */
async function leftOf(bare: string): Promise<string[]> {
  const left: string[] = [];
  for (const prefix of s.server.registry.accountPartitions().filter((p) => p !== 'sessions')) {
    const res = await s.server.db.send(new QueryCommand({ TableName: s.table, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': `${prefix}#${bare}` }, Limit: 1 }));
    if (res.Items?.length) left.push(prefix);
  }
  return left;
}

/** An account with a roster item, an offline message and archive entries. */
async function accountWithData(name: string): Promise<void> {
  await s.addUser(`${name}@localhost`);
  const item = (jid: string) => ({ jid, groups: [], subscription: 'both' as const, pendingOut: false, pendingIn: false, approved: false, inRoster: true });
  await rosterOf(s.server).put(`${name}@localhost`, item('friend@localhost'));
  const friend = await connectClient(s.url, { username: 'friend' });
  await friend.send(xml('message', { to: `${name}@localhost`, type: 'chat', id: `for-${name}` }, xml('body', {}, 'while you were away')));
  await until('the message kept offline', async () => (await offlineOf(s.server).list(`${name}@localhost`)).length === 1);
  await friend.stop();
  assert.deepEqual((await leftOf(`${name}@localhost`)).sort(), ['mam', 'offline', 'roster'].filter((p) => s.server.registry.accountPartitions().includes(p)).sort());
}

it('an admin removing an account removes its roster, offline messages and archive', async () => {
  await s.addUser('friend@localhost');
  await accountWithData('gone');
  const res = await fetch(`${s.adminUrl}/tenants/localhost/users/gone`, { method: 'DELETE', headers: { authorization: 'Bearer removal-token' } });
  assert.equal(res.status, 204);
  assert.deepEqual(await leftOf('gone@localhost'), []);
  // The name can be taken again, and the new account inherits nothing.
  await s.addUser('gone@localhost');
  const again = await connectClient(s.url, { username: 'gone' });
  const roster = await again.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: 'jabber:iq:roster' })));
  assert.deepEqual(roster.getChild('query')?.getChildren('item'), []);
  await again.stop();
});

it('an account cancelled in-band (XEP-0077 §3.2) loses its data too', async () => {
  await accountWithData('leaver');
  // A raw client: the server ends the stream after the result (XEP-0077 §3.2), and xmpp.js throws on a
  // frame that arrives after it detached its parser.
  const c = await RawClient.connect(s.url);
  await c.login('leaver');
  c.send(`<iq type='set' id='bye'><query xmlns='jabber:iq:register'><remove/></query></iq>`);
  assert.equal((await c.next(byName('iq', { id: 'bye' }))).attrs.type, 'result');
  await until('the account and its data gone', async () => !(await s.server.users.exists('localhost', 'leaver')) && (await leftOf('leaver@localhost')).length === 0, async () => leftOf('leaver@localhost'));
  await c.closed;
});
