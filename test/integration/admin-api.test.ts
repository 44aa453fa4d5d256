// The admin HTTP API over the local gateway's port, with a real client on the other side.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { RawClient, type TestServer, byName, connectClient, startTestServer, xml, WAIT_MS } from '../support/harness.ts';
import { createAdminApi } from '../../lib/admin/api.ts';
import { TenantPurger } from '../../lib/admin/purge.ts';

let s: TestServer;

async function call(method: string, path: string, body?: unknown, token: string | null = s.adminToken) {
  const res = await fetch(`${s.adminUrl}${path}`, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

before(async () => {
  s = await startTestServer({ adminToken: 'test-admin-token', tenantWatchMs: 300, tenantCacheMs: 3000 });
});
after(() => s.stop());

describe('admin API', () => {
  it('refuses requests without the bearer token, but serves its OpenAPI document', async () => {
    assert.equal((await call('GET', '/tenants', undefined, null)).status, 401);
    assert.equal((await call('GET', '/tenants', undefined, 'wrong')).status, 401);
    const doc = await call('GET', '/openapi.json', undefined, null);
    assert.equal(doc.status, 200);
    assert.equal(doc.body.openapi, '3.1.0');
  });

  it('creates a tenant and a user that can log in; lists them; rejects bad input clearly', async () => {
    const created = await call('POST', '/tenants', { domain: 'api.example', labels: { plan: 'gold' } });
    assert.equal(created.status, 201);
    assert.equal(created.body.enabled, true);
    assert.equal(created.body.labels.plan, 'gold');
    assert.equal((await call('POST', '/tenants', { domain: 'api.example' })).status, 409);
    const unknown = await call('POST', '/tenants', { domain: 'x.example', colour: 'red' });
    assert.equal(unknown.body.error.code, 'invalid-tenant');
    assert.deepEqual(unknown.body.error.fields, [{ path: 'colour', message: 'unknown field' }]);
    assert.equal((await call('POST', '/tenants', '{not json')).body.error.code, 'invalid-json');
    assert.ok((await call('GET', '/tenants')).body.tenants.includes('api.example'));
    assert.equal((await call('POST', '/tenants/api.example/users', { username: 'Zed', password: 'pw1' })).status, 201);
    assert.equal((await call('POST', '/tenants/api.example/users', { username: 'zed', password: 'pw1' })).status, 409);
    assert.deepEqual((await call('GET', '/tenants/api.example/users')).body.users, ['zed']);
    assert.equal((await call('GET', '/tenants/none.example/users')).status, 404);
    const c = await connectClient(s.url, { username: 'zed', password: 'pw1', domain: 'api.example' });
    assert.equal((await call('PUT', '/tenants/api.example/users/zed/password', { password: 'pw2' })).status, 204);
    await c.stop();
    await assert.rejects(connectClient(s.url, { username: 'zed', password: 'pw1', domain: 'api.example' }));
    const again = await connectClient(s.url, { username: 'zed', password: 'pw2', domain: 'api.example' });
    const sessions = await call('GET', '/tenants/api.example/sessions');
    assert.ok(sessions.body.sessions.some((x: { jid?: string }) => x.jid === again.jid));
    await again.stop();
  });

  it('sends a message as a user and as the server, and returns error replies to the caller', async () => {
    await call('POST', '/tenants', { domain: 'send.example' });
    await call('POST', '/tenants/send.example/users', { username: 'bob', password: 'pw' });
    const bob = await connectClient(s.url, { username: 'bob', password: 'pw', domain: 'send.example' });
    await bob.send(xml('presence'));
    await bob.waitFor(byName('presence'));
    const asUser = await call('POST', '/tenants/send.example/stanzas', { from: 'backend@send.example', stanza: '<message to="bob@send.example" type="chat" id="b1"><body>from the backend</body></message>' });
    assert.equal(asUser.status, 200);
    const got = await bob.waitFor(byName('message', { id: 'b1' }));
    assert.equal(got.attrs.from, 'backend@send.example/admin-api');
    await call('POST', '/tenants/send.example/stanzas', { stanza: '<message to="bob@send.example" type="headline" id="b2"><body>maintenance at 5</body></message>' });
    assert.equal((await bob.waitFor(byName('message', { id: 'b2' }))).attrs.from, 'send.example');
    const bounced = await call('POST', '/tenants/send.example/stanzas', { stanza: '<message to="nobody@send.example" type="chat" id="b3"><body>?</body></message>' });
    assert.equal(bounced.body.replies.length, 1);
    assert.match(bounced.body.replies[0], /service-unavailable/);
    assert.equal((await call('POST', '/tenants/send.example/stanzas', { from: 'x@other.example', stanza: '<message/>' })).body.error.code, 'invalid-jid');
    assert.equal((await call('POST', '/tenants/send.example/stanzas', { stanza: '<message' })).body.error.code, 'invalid-xml');
    await bob.stop();
  });

  it('kicks a user, disables a tenant (host-gone) and deletes it with a purge', async () => {
    await call('POST', '/tenants', { domain: 'kick.example' });
    await call('POST', '/tenants/kick.example/users', { username: 'kim', password: 'pw' });
    const raw = await RawClient.connect(s.url);
    await raw.login('kim', 'pw', 'r', 'kick.example');
    assert.deepEqual((await call('DELETE', '/tenants/kick.example/users/kim/sessions')).body, { closed: 1 });
    assert.ok((await raw.next(byName('stream:error'))).getChild('policy-violation'));

    const raw2 = await RawClient.connect(s.url);
    await raw2.login('kim', 'pw', 'r', 'kick.example');
    assert.equal((await call('POST', '/tenants/kick.example/disable')).body.enabled, false);
    assert.ok((await raw2.next(byName('stream:error'), WAIT_MS)).getChild('host-gone'));

    const del = await call('DELETE', '/tenants/kick.example?purge=true');
    assert.equal(del.status, 202);
    assert.equal((await call('GET', '/tenants/kick.example')).status, 404);
    assert.equal((await call('GET', '/tenants/kick.example/purge')).body.state, 'pending');
  });

  it('revokes refresh tokens by bumping the account\'s sequence number', async () => {
    await call('POST', '/tenants', { domain: 'tok.example' });
    await call('POST', '/tenants/tok.example/users', { username: 'tia', password: 'pw' });
    const before = await s.server.users.get('tok.example', 'tia');
    assert.equal((await call('POST', '/tenants/tok.example/users/tia/tokens/revoke')).status, 204);
    const after = await s.server.users.get('tok.example', 'tia');
    assert.ok((after!.tokenSeq ?? 0) > (before!.tokenSeq ?? before!.createdAt));
    assert.equal((await call('POST', '/tenants/tok.example/users/nobody/tokens/revoke')).status, 404);
  });

  it('refuses a tenant with a bad field, naming each one, and writes nothing', async () => {
    // The stanza limit given as text used to be stored, and the tenant then had no limit at all.
    const bad = await call('POST', '/tenants', { domain: 'bad.example', limits: { maxStanzaBytes: '1k' }, loginMethods: 'password' });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.code, 'invalid-tenant');
    assert.deepEqual(bad.body.error.fields.map((f: { path: string }) => f.path).sort(), ['limits.maxStanzaBytes', 'loginMethods']);
    assert.match(bad.body.error.message, /limits\.maxStanzaBytes: expected integer/);
    const method = await call('POST', '/tenants', { domain: 'bad.example', loginMethods: ['password', 'magic'] });
    assert.equal(method.status, 400);
    assert.deepEqual(method.body.error.fields, [{ path: 'loginMethods.1', message: 'must be one of "password", "jwt", "token"' }]);
    assert.equal((await call('POST', '/tenants', { domain: 'bad.example', muc: { maxOccupants: 0 } })).body.error.fields[0].path, 'muc.maxOccupants');
    assert.equal((await call('POST', '/tenants', { domain: 'bad.example', enabled: 'yes' })).body.error.fields[0].path, 'enabled');
    assert.equal((await call('GET', '/tenants/bad.example')).status, 404);
  });

  it('PATCH checks the changed item whole, rejects unknown fields, and a null removes a field', async () => {
    await call('POST', '/tenants', { domain: 'patch.example', limits: { maxStanzaBytes: 20000 }, labels: { plan: 'gold' } });
    const bad = await call('PATCH', '/tenants/patch.example', { limits: { maxStanzaBytes: '1k' } });
    assert.equal(bad.status, 400);
    assert.deepEqual(bad.body.error.fields, [{ path: 'limits.maxStanzaBytes', message: 'expected integer' }]);
    assert.equal((await call('PATCH', '/tenants/patch.example', { colour: 'red' })).body.error.fields[0].path, 'colour');
    assert.equal((await call('PATCH', '/tenants/patch.example', { domain: 'other.example' })).status, 400);
    assert.equal((await call('GET', '/tenants/patch.example')).body.limits.maxStanzaBytes, 20000, 'nothing written');
    const ok = await call('PATCH', '/tenants/patch.example', { registration: 'open', labels: null, muc: { subdomain: 'rooms' } });
    assert.equal(ok.status, 200);
    assert.equal(ok.body.registration, 'open');
    assert.equal(ok.body.labels, undefined);
    assert.equal(ok.body.muc.subdomain, 'rooms');
    assert.equal(ok.body.limits.maxStanzaBytes, 20000);
  });

  it('documents every route it serves in the OpenAPI document, with the tenant schema it enforces', async () => {
    const api = createAdminApi(s.server, { purger: new TenantPurger(s.server.connections as never, s.table) });
    const doc = (await call('GET', '/openapi.json', undefined, null)).body;
    const paths = doc.paths as Record<string, Record<string, unknown>>;
    for (const { method, pattern } of api.routes) {
      if (pattern === '/openapi.json') continue;
      assert.ok(paths[pattern]?.[method.toLowerCase()], `${method} ${pattern} is documented`);
    }
    assert.ok(api.routes.length >= 15);
    const tenant = doc.components.schemas.Tenant;
    assert.deepEqual(tenant.required, ['domain', 'enabled']);
    assert.equal(tenant.additionalProperties, false);
    assert.equal(tenant.properties.limits.properties.maxStanzaBytes.type, 'integer');
    assert.equal(tenant.properties.muc.properties.roomCreation.anyOf.length, 2, "the MUC module's block is included");
    assert.equal(doc.components.schemas.TenantPatch.required, undefined);
  });
});
