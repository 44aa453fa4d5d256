// Rooms for operators and backend services: the admin API's room routes and the CLI's `room`
// commands (create, list, show, configure, destroy, set affiliations), each telling the occupants of a
// running server what changed exactly as the XMPP owner and admin use cases do; and a tenant purge
// removing its rooms.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { TenantPurger, purgePlanOf } from '../../lib/admin/purge.ts';
import { mucOf } from '../../lib/extensions/muc/service.ts';
import { type TestClient, type TestServer, startTestServer, xml } from '../support/harness.ts';
import { adminCall } from '../support/admin.ts';
import { MUC_USER, codes, connectMucClient, enter, errorCondition, item, join, presenceFrom } from '../support/muc.ts';

let s: TestServer;
let n = 0;
const clients: TestClient[] = [];

const call = (method: string, path: string, body?: unknown) => adminCall(s, method, path, body);
async function login(prefix: string, domain = 'localhost'): Promise<TestClient> {
  const name = `${prefix}${++n}`;
  await s.addUser(`${name}@${domain}`, 'pw');
  const c = await connectMucClient(s.url, { username: name, password: 'pw', domain });
  clients.push(c);
  return c;
}
const bare = (c: TestClient) => c.jid.split('/')[0];

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' };
  for (const k of ['AWS_REGION', 'AWS_DEFAULT_REGION', 'XMPP_EDGE_DYNAMODB_ENDPOINT', 'XMPP_EDGE_TABLE']) delete env[k];
  return new Promise((resolve) => {
    execFile(process.execPath, ['bin/xmpp-edge.js', 'room', ...args, '--endpoint', s.dynamoEndpoint, '--table', s.table], { cwd: ROOT, env, timeout: 30_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }),
    );
  });
}

before(async () => {
  s = await startTestServer({ adminToken: 'muc-admin-token', tenantCacheMs: 0 });
});
after(async () => {
  for (const c of clients) await c.stop();
  await s.stop();
});

describe('admin API: rooms', () => {
  it('creates a room (unlocked, persistent), lists and shows it; refuses duplicates and unknown settings', { timeout: 120_000 }, async () => {
    const created = await call('POST', '/tenants/localhost/rooms', { name: 'standup', owners: ['boss@localhost'], config: { name: 'Daily standup', moderated: true } });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.equal(created.body.jid, 'standup@conference.localhost');
    assert.equal(created.body.locked, false);
    assert.equal(created.body.config.persistent, true);
    assert.equal(created.body.config.moderated, true);
    assert.deepEqual(created.body.affiliations, [{ jid: 'boss@localhost', affiliation: 'owner' }]);
    assert.equal((await call('POST', '/tenants/localhost/rooms', { name: 'standup' })).status, 409);
    const bad = await call('POST', '/tenants/localhost/rooms', { name: 'x', config: { colour: 'red' } });
    assert.deepEqual([bad.status, bad.body.error.code], [400, 'invalid-room-setting']);
    const noPassword = await call('POST', '/tenants/localhost/rooms', { name: 'y', config: { passwordProtected: true } });
    assert.equal(noPassword.status, 400);
    assert.equal((await call('POST', '/tenants/localhost/rooms', { name: 'bad@name@x' })).body.error.code, 'invalid-room');
    const listed = await call('GET', '/tenants/localhost/rooms');
    assert.ok(listed.body.rooms.some((r: { jid: string; name: string }) => r.jid === 'standup@conference.localhost' && r.name === 'Daily standup'));
    const shown = await call('GET', '/tenants/localhost/rooms/standup');
    assert.equal(shown.body.config.name, 'Daily standup');
    assert.equal((await call('GET', '/tenants/localhost/rooms/nope')).status, 404);
    assert.equal((await call('GET', '/tenants/none.example/rooms')).status, 404);
  });

  it('configures, sets affiliations and destroys a room with occupants, who are told (104, affiliation presence, 301, destroy)', { timeout: 120_000 }, async () => {
    await call('POST', '/tenants/localhost/rooms', { name: 'ops', config: { name: 'Operations' } });
    const r = 'ops@conference.localhost';
    const [a, b] = [await login('occ'), await login('occ')];
    await enter(a, `${r}/a`);
    await enter(b, `${r}/b`);
    await a.waitFor(presenceFrom(`${r}/b`));

    const configured = await call('PATCH', '/tenants/localhost/rooms/ops', { description: 'for the on-call team', public: false });
    assert.equal(configured.status, 200);
    assert.equal(configured.body.config.public, false);
    assert.deepEqual(codes(await a.waitFor((el) => el.name === 'message' && el.attrs.from === r)), [104]);
    assert.equal((await call('PATCH', '/tenants/localhost/rooms/ops', { maxUsers: 'lots' })).status, 400);

    const member = await call('PUT', `/tenants/localhost/rooms/ops/affiliations/${encodeURIComponent(bare(a))}`, { affiliation: 'admin' });
    assert.equal(member.status, 200);
    const seen = await b.waitFor((el) => presenceFrom(`${r}/a`)(el) && item(el).affiliation === 'admin');
    assert.equal(item(seen).role, 'moderator');
    await call('PUT', `/tenants/localhost/rooms/ops/affiliations/${encodeURIComponent(bare(b))}`, { affiliation: 'outcast', reason: 'left the team' });
    const banned = await b.waitFor(presenceFrom(`${r}/b`, 'unavailable'));
    assert.deepEqual(codes(banned), [110, 301]);
    assert.equal(banned.getChild('x', MUC_USER)!.getChild('item')!.getChildText('reason'), 'left the team');
    assert.equal(errorCondition(await join(b, `${r}/b`)), 'forbidden');
    const affs = await call('GET', '/tenants/localhost/rooms/ops/affiliations');
    assert.deepEqual(
      affs.body.affiliations.map((x: { jid: string; affiliation: string }) => [x.jid, x.affiliation]).sort(),
      [[bare(a), 'admin'], [bare(b), 'outcast']].sort(),
    );
    assert.equal((await call('PUT', '/tenants/localhost/rooms/ops/affiliations/x@localhost', { affiliation: 'king' })).status, 400);

    const destroyed = await call('DELETE', '/tenants/localhost/rooms/ops?reason=moved&alternate=ops2%40conference.localhost');
    assert.equal(destroyed.status, 204);
    const gone = await a.waitFor(presenceFrom(`${r}/a`, 'unavailable'));
    const d = gone.getChild('x', MUC_USER)!.getChild('destroy')!;
    assert.deepEqual([d.attrs.jid, d.getChildText('reason')], ['ops2@conference.localhost', 'moved']);
    assert.equal((await call('GET', '/tenants/localhost/rooms/ops')).status, 404);
  });

  it('answers muc-disabled for a tenant without a MUC service; PATCH of the tenant accepts a muc block', async () => {
    await call('POST', '/tenants', { domain: 'plain.example', muc: { enabled: false } });
    assert.equal((await call('GET', '/tenants/plain.example/rooms')).body.error.code, 'muc-disabled');
    const patched = await call('PATCH', '/tenants/plain.example', { muc: { subdomain: 'rooms' } });
    assert.equal(patched.body.muc.subdomain, 'rooms');
    const created = await call('POST', '/tenants/plain.example/rooms', { name: 'lobby' });
    assert.equal(created.body.jid, 'lobby@rooms.plain.example');
  });
});

describe('CLI: xmpp-edge room', () => {
  it('create, list, show, configure, affiliation and destroy — a live occupant sees the changes', { timeout: 120_000 }, async () => {
    const owner = await login('cliowner');
    const r = 'retro@conference.localhost';
    let out = await cli('create', r, 'name=Retro', 'moderated=false', '--owner', bare(owner));
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, /created retro@conference\.localhost/);
    out = await cli('list', 'localhost');
    assert.match(out.stdout, /retro@conference\.localhost\tRetro\tpublic\tpersistent/);
    await enter(owner, `${r}/owner`);
    out = await cli('configure', r, 'whois=anyone');
    assert.equal(out.code, 0, out.stderr);
    assert.deepEqual(codes(await owner.waitFor((el) => el.name === 'message' && el.attrs.from === r)), [172]);
    out = await cli('affiliation', r, 'guest@localhost', 'member', '--nick', 'guesty');
    assert.equal(out.code, 0, out.stderr);
    const shown = JSON.parse((await cli('show', r)).stdout);
    assert.equal(shown.config.whois, 'anyone');
    assert.deepEqual(shown.affiliations.find((a: { jid: string }) => a.jid === 'guest@localhost'), { jid: 'guest@localhost', affiliation: 'member', nick: 'guesty' });
    assert.deepEqual(shown.occupants.map((o: { nick: string; role: string }) => [o.nick, o.role]), [['owner', 'moderator']]);
    // Errors are sentences and exit codes.
    out = await cli('configure', r, 'colour=red');
    assert.equal(out.code, 1);
    assert.match(out.stderr, /unknown room setting colour/);
    out = await cli('create', 'x@nowhere.example');
    assert.equal(out.code, 1);
    assert.match(out.stderr, /not a MUC service/);
    out = await cli('destroy', r, '--reason', 'done');
    assert.equal(out.code, 0, out.stderr);
    const gone = await owner.waitFor(presenceFrom(`${r}/owner`, 'unavailable'));
    assert.equal(gone.getChild('x', MUC_USER)!.getChild('destroy')!.getChildText('reason'), 'done');
    out = await cli('show', r);
    assert.equal(out.code, 1);
    assert.match(out.stderr, /no room retro@conference\.localhost/);
  });
});

describe('tenant purge', () => {
  it('removes the rooms of a deleted tenant: room items, history and index', { timeout: 120_000 }, async () => {
    await call('POST', '/tenants', { domain: 'gone.example' });
    const c = await login('doomed', 'gone.example');
    const r = 'talk@conference.gone.example';
    await enter(c, `${r}/me`);
    await c.iq(xml('iq', { type: 'set', to: r }, xml('query', { xmlns: 'http://jabber.org/protocol/muc#owner' }, xml('x', { xmlns: 'jabber:x:data', type: 'submit' }))));
    await c.send(xml('message', { to: r, type: 'groupchat', id: 'h' }, xml('body', {}, 'remember me')));
    await c.waitFor((el) => el.attrs.id === 'h');
    await call('POST', '/tenants/gone.example/rooms', { name: 'kept' });
    const rooms = mucOf(s.server)!.rooms;
    assert.equal((await rooms.list('gone.example')).length, 2);
    await c.stop();
    assert.equal((await call('DELETE', '/tenants/gone.example?purge=true')).status, 202);
    await new TenantPurger(s.server.db, s.table, purgePlanOf(s.server)).runPending();
    assert.deepEqual(await rooms.list('gone.example'), []);
    assert.equal(await rooms.get('gone.example', 'kept'), undefined);
    assert.deepEqual(await rooms.history('gone.example', 'talk', 10), []);
  });
});
