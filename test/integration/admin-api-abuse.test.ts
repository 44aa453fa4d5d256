// Hostile and broken input to the admin API (README "Admin API"), over real HTTP against the local
// server: every input gets a 4xx with a JSON error an operator can act on, never a 500, and nothing
// is written. Raw requests go through node:http so a path or body can be exactly what an attacker sends,
// and so a response can be awaited while the request body is still unsent.
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { type TestServer, WAIT_MS, startTestServer } from '../support/harness.ts';
import { serveAdmin } from '../../functions/admin.ts';
import { createAdminApi } from '../../lib/admin/api.ts';
import { TenantPurger } from '../../lib/admin/purge.ts';
import type { HttpApiEvent } from '../../lib/runtime/http-api.ts';

const TOKEN = 'abuse-admin-token';
let s: TestServer;

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: { error?: { code: string; message: string; fields?: { path: string; message: string }[] } } & Record<string, unknown>;
}

interface RawRequest {
  method?: string;
  /** Sent as is, after /api: no encoding is applied. */
  path: string;
  body?: string | Buffer;
  token?: string | null;
  headers?: Record<string, string | number>;
  /** Write only this part of the body and leave the request open: the answer must not wait for the rest. */
  partial?: boolean;
}

/** One request to the admin API, as raw as an attacker's; resolves with the answer (JSON parsed). */
function raw({ method = 'GET', path, body, token = TOKEN, headers = {}, partial = false }: RawRequest): Promise<Answer> {
  const url = new URL(s.adminUrl);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer to ${method} ${path.slice(0, 80)} within ${WAIT_MS} ms`)), WAIT_MS);
    const req = httpRequest(
      {
        host: url.hostname,
        port: url.port,
        method,
        path: `${url.pathname}${path}`,
        headers: {
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          ...(body !== undefined && !partial ? { 'content-length': Buffer.byteLength(body) } : {}),
          ...headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          clearTimeout(timer);
          req.destroy();
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text ? JSON.parse(text) : {} });
        });
      },
    );
    // The server may answer and close before a large body is all sent; that is the point of some tests.
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE' && err.code !== 'ECONNRESET') {
        clearTimeout(timer);
        reject(err);
      }
    });
    if (body !== undefined) req.write(body);
    if (!partial) req.end();
  });
}

const json = (method: string, path: string, value: unknown) => raw({ method, path, body: JSON.stringify(value), headers: { 'content-type': 'application/json' } });

/** The error of an answer, asserting its status and code first. */
function refused(answer: Answer, status: number, code: string) {
  assert.equal(answer.status, status, JSON.stringify(answer.body).slice(0, 500));
  assert.equal(answer.body.error?.code, code);
  assert.ok(answer.body.error?.message, 'the error says why');
  return answer.body.error!;
}

async function tenantList(): Promise<string[]> {
  return (await raw({ path: '/tenants' })).body.tenants as string[];
}

before(async () => {
  s = await startTestServer({ adminToken: TOKEN });
});
after(() => s.stop());

describe('admin API under hostile input', () => {
  it('answers a path with broken percent-encoding with 400 invalid-path', async () => {
    for (const path of ['/tenants/%', '/tenants/%E0%A4%A', '/tenants/localhost/users/%zz']) {
      const error = refused(await raw({ path }), 400, 'invalid-path');
      assert.match(error.message, /percent-encoding/);
    }
  });

  it('refuses a tenant domain that is not an XMPP domainpart, with the reason, and writes nothing', async () => {
    const cases: [string, RegExp][] = [
      [' ', /character/],
      ['a/b', /"\/"/],
      ['../x', /"\/"/],
      ['..x', /empty label/],
      ['a#b', /character/],
      ['tenant#x', /character/],
      ['\u0000', /character|U\+0000/],
      ['x'.repeat(300), /63 octets/],
      [`${'abcdefghi.'.repeat(26)}example`, /253/],
      ['x'.repeat(5000), /253|63/],
      ['localhost:5280', /port/],
      ['[::1]', /IP/],
      ['127.0.0.1', /IP/],
      ['a..b', /empty label/],
      ['.', /dot|empty/],
      ['acme.example.', /dot/],
      ['a@b', /"@"/],
      ['<script>', /character/],
      ['evil\u202Eelpmaxe.com', /U\+202E/],
      ['under_score.example', /letters, digits and "-"/],
      ['-lead.example', /starts or ends with/],
    ];
    for (const [domain, reason] of cases) {
      const error = refused(await json('POST', '/tenants', { domain }), 400, 'invalid-tenant');
      assert.equal(error.fields?.[0]?.path, 'domain', JSON.stringify(domain));
      assert.match(error.fields![0].message, reason, JSON.stringify(domain));
    }
    assert.deepEqual(await tenantList(), ['localhost'], 'nothing was written');
  });

  it('refuses a domain in the path that cannot be a tenant with 400 invalid-domain, on every route', async () => {
    for (const path of [`/tenants/${'x'.repeat(5000)}`, '/tenants/a%23b', '/tenants/a%40b/users', `/tenants/${'y'.repeat(5000)}/rooms`]) {
      const error = refused(await raw({ path }), 400, 'invalid-domain');
      assert.match(error.message, /cannot be a tenant domain: (longer than 253 octets|invalid character|"@")/);
    }
  });

  it('keeps a normalised domain: upper case and A-labels are stored as the JID layer reads them', async () => {
    const created = await json('POST', '/tenants', { domain: 'Upper.Example' });
    assert.equal(created.status, 201);
    assert.equal(created.body.domain, 'upper.example');
    assert.equal((await raw({ path: '/tenants/UPPER.example' })).body.domain, 'upper.example');
    const idn = await json('POST', '/tenants', { domain: 'xn--mnchen-3ya.example' });
    assert.equal(idn.status, 201);
    assert.equal(idn.body.domain, 'münchen.example');
  });

  it("refuses a tenant at another tenant's MUC service address, and a tenant whose MUC address is a tenant", async () => {
    // localhost's MUC service answers at conference.localhost: a tenant there would never get its stanzas.
    const taken = refused(await json('POST', '/tenants', { domain: 'conference.localhost' }), 409, 'domain-conflict');
    assert.match(taken.message, /conference\.localhost.*localhost/);
    // Also when the owner is disabled: enabling it must not take the address from under a tenant.
    assert.equal((await json('POST', '/tenants', { domain: 'sleepy.example', enabled: false })).status, 201);
    refused(await json('POST', '/tenants', { domain: 'conference.sleepy.example' }), 409, 'domain-conflict');
    // A service on another subdomain claims that one instead.
    assert.equal((await json('POST', '/tenants', { domain: 'rooms.example', muc: { subdomain: 'chat' } })).status, 201);
    refused(await json('POST', '/tenants', { domain: 'chat.rooms.example' }), 409, 'domain-conflict');
    assert.equal((await json('POST', '/tenants', { domain: 'conference.rooms.example', muc: { enabled: false } })).status, 201);

    // The reverse: the new tenant's own service would sit on an existing tenant.
    assert.equal((await json('POST', '/tenants', { domain: 'talk.owner.example' })).status, 201);
    const reverse = refused(await json('POST', '/tenants', { domain: 'owner.example', muc: { subdomain: 'talk' } }), 409, 'domain-conflict');
    assert.match(reverse.message, /talk\.owner\.example is a tenant/);
    assert.equal((await json('POST', '/tenants', { domain: 'owner.example' })).status, 201);
    refused(await json('PATCH', '/tenants/owner.example', { muc: { subdomain: 'talk' } }), 409, 'domain-conflict');
    refused(await json('PUT', '/tenants/owner.example', { domain: 'owner.example', enabled: true, muc: { subdomain: 'talk' } }), 409, 'domain-conflict');
    assert.equal((await raw({ path: '/tenants/owner.example' })).body.muc, undefined, 'nothing written');
    assert.ok(!(await tenantList()).includes('conference.localhost'));
  });

  it('answers a body over the limit with 413 before reading the rest, and writes nothing', async () => {
    const big = JSON.stringify({ domain: 'big.example', labels: { filler: 'x'.repeat(500_000) } });
    refused(await raw({ method: 'POST', path: '/tenants', body: big, headers: { 'content-type': 'application/json' } }), 413, 'payload-too-large');
    // Announced by Content-Length: the answer comes while the body is still unsent.
    refused(await raw({ method: 'POST', path: '/tenants', body: '{"domain":', partial: true, headers: { 'content-length': 1_000_000 } }), 413, 'payload-too-large');
    // Chunked, no length announced: cut off once it passes the limit.
    refused(await raw({ method: 'POST', path: '/tenants', body: big, partial: true, headers: { 'transfer-encoding': 'chunked' } }), 413, 'payload-too-large');
    assert.ok(!(await tenantList()).includes('big.example'));
  });

  it('refuses a tenant item over 64 KiB with 400, though the body fits', async () => {
    const error = refused(await json('POST', '/tenants', { domain: 'wide.example', labels: { filler: 'x'.repeat(100_000) } }), 400, 'invalid-tenant');
    assert.match(error.message, /65536 bytes/);
  });

  it('checks the bearer token before it reads the body', async () => {
    // A 1 MB body announced by an unauthenticated caller: 401 comes back at once, the body unsent.
    const answer = await raw({ method: 'POST', path: '/tenants', token: 'wrong', body: '{"domain":', partial: true, headers: { 'content-length': 1_000_000 } });
    refused(answer, 401, 'unauthorized');
    assert.match(String(answer.headers['www-authenticate']), /Bearer/);
    refused(await raw({ method: 'POST', path: '/tenants', token: null, body: 'x'.repeat(1_000_000) }), 401, 'unauthorized');
  });

  it('refuses JSON nested deeper than 32 levels with 400 json-too-deep', async () => {
    const nest = (depth: number) => `${'{"a":'.repeat(depth - 1)}{}${'}'.repeat(depth - 1)}`;
    const deep = `{"domain":"deep.example","labels":${nest(5000)}}`;
    const error = refused(await raw({ method: 'POST', path: '/tenants', body: deep }), 400, 'json-too-deep');
    assert.match(error.message, /32/);
    refused(await raw({ method: 'PATCH', path: '/tenants/localhost', body: `{"labels":${nest(32)}}` }), 400, 'json-too-deep');
    // At the limit the body is parsed, and the schema has its say.
    const fits = refused(await raw({ method: 'PATCH', path: '/tenants/localhost', body: `{"labels":${nest(31)}}` }), 400, 'invalid-tenant');
    assert.equal(fits.fields?.[0]?.path, 'labels.a');
    // Brackets inside strings are text, not nesting.
    const text = await json('PATCH', '/tenants/localhost', { labels: { note: '['.repeat(100) } });
    assert.equal(text.status, 200);
  });

  it('refuses passwords SASLprep prohibits and passwords over 1,024 characters, for new accounts and changes', async () => {
    assert.equal((await json('POST', '/tenants/localhost/users', { username: 'pat', password: 'fine' })).status, 201);
    for (const [password, reason] of [
      ['bell\u0007', /U\+0007.*SASLprep/],
      ['nul\u0000', /U\+0000.*SASLprep/],
      ['x'.repeat(1025), /1024 characters/],
    ] as const) {
      const create = refused(await json('POST', '/tenants/localhost/users', { username: 'mallory', password }), 400, 'invalid-password');
      assert.match(create.message, reason);
      const change = refused(await json('PUT', '/tenants/localhost/users/pat/password', { password }), 400, 'invalid-password');
      assert.match(change.message, reason);
    }
    // A 900 KB password does not even reach the password rule.
    refused(await json('POST', '/tenants/localhost/users', { username: 'mallory', password: 'p'.repeat(900_000) }), 413, 'payload-too-large');
    assert.equal((await json('POST', '/tenants/localhost/users', { username: 'max', password: '\u00e9'.repeat(1024) })).status, 201, '1024 characters, 2048 bytes, is allowed');
    assert.ok(!(await s.server.users.exists('localhost', 'mallory')));
  });

  it('never returns a secret; a PUT or PATCH of what it returned keeps the secrets', async () => {
    const secrets = { jwt: { secret: 'jwt-shared-secret', keys: ['-----BEGIN PUBLIC KEY-----\nMII\n-----END PUBLIC KEY-----'], issuer: 'idp' }, tokens: { secret: 'token-hmac-secret' } };
    const created = await json('POST', '/tenants', { domain: 'secret.example', loginMethods: ['password', 'jwt', 'token'], ...secrets });
    assert.equal(created.status, 201);
    const shown = await raw({ path: '/tenants/secret.example' });
    for (const answer of [created, shown]) {
      const text = JSON.stringify(answer.body);
      for (const secret of ['jwt-shared-secret', 'token-hmac-secret', 'BEGIN PUBLIC KEY']) assert.ok(!text.includes(secret), `${secret} not in ${text}`);
      assert.deepEqual(answer.body.jwt, { secret: '(set)', keys: '(set)', issuer: 'idp' });
      assert.deepEqual(answer.body.tokens, { secret: '(set)' });
    }

    // Read, modify, write back whole: the placeholders stand for the secrets kept.
    const edited = { ...shown.body, labels: { plan: 'gold' }, jwt: { ...(shown.body.jwt as object), issuer: 'idp2' } };
    const put = await json('PUT', '/tenants/secret.example', edited);
    assert.equal(put.status, 200, JSON.stringify(put.body));
    assert.equal(put.body.tokens && (put.body.tokens as { secret: string }).secret, '(set)');
    let stored = await s.server.tenants.get('secret.example', 0);
    assert.equal(stored?.jwt?.secret, 'jwt-shared-secret');
    assert.deepEqual(stored?.jwt?.keys, secrets.jwt.keys);
    assert.equal(stored?.jwt?.issuer, 'idp2');
    assert.equal(stored?.tokens?.secret, 'token-hmac-secret');
    assert.equal(stored?.labels?.plan, 'gold');

    const patched = await json('PATCH', '/tenants/secret.example', { tokens: { secret: '(set)', accessValiditySeconds: 60 } });
    assert.equal(patched.status, 200, JSON.stringify(patched.body));
    stored = await s.server.tenants.get('secret.example', 0);
    assert.equal(stored?.tokens?.secret, 'token-hmac-secret');
    assert.equal(stored?.tokens?.accessValiditySeconds, 60);

    // A new value replaces the secret; a placeholder with nothing behind it is refused.
    assert.equal((await json('PATCH', '/tenants/secret.example', { jwt: { secret: 'rotated' } })).status, 200);
    assert.equal((await s.server.tenants.get('secret.example', 0))?.jwt?.secret, 'rotated');
    const nothing = refused(await json('PATCH', '/tenants/secret.example', { jwt: { secret: '(set)', keys: '(set)' } }), 400, 'invalid-tenant');
    assert.deepEqual(nothing.fields, [{ path: 'jwt.keys', message: '"(set)" stands for the value kept on the server, but none is set' }]);
  });

  it('PUT replaces the item: the path names the tenant, createdAt stays, a missing tenant is 404', async () => {
    const created = await json('POST', '/tenants', { domain: 'whole.example', registration: 'open', labels: { a: 'b' } });
    const put = await json('PUT', '/tenants/whole.example', { enabled: true, registration: 'closed' });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    assert.equal(put.body.registration, 'closed');
    assert.equal(put.body.labels, undefined, 'a field left out is gone');
    assert.equal(put.body.createdAt, created.body.createdAt);
    refused(await json('PUT', '/tenants/whole.example', { domain: 'other.example', enabled: true }), 400, 'invalid-tenant');
    refused(await json('PUT', '/tenants/absent.example', { enabled: true }), 404, 'tenant-not-found');
  });

  it('applies the same limits behind the HTTP API in AWS (the Lambda path)', async () => {
    const api = createAdminApi(s.server, { purger: new TenantPurger(s.server.db, s.table) });
    const event = (method: string, rawPath: string, body?: string, isBase64Encoded = false): HttpApiEvent => ({
      version: '2.0',
      routeKey: 'ANY /api/{proxy+}',
      rawPath,
      rawQueryString: '',
      headers: { 'content-type': 'application/json' },
      body,
      isBase64Encoded,
      requestContext: { http: { method, path: rawPath }, stage: '$default' },
    });
    const answer = async (e: HttpApiEvent) => {
      const out = await serveAdmin(api, e);
      return { status: out.statusCode, code: JSON.parse(out.body ?? '{}').error?.code };
    };
    const big = JSON.stringify({ domain: 'lambda.example', labels: { filler: 'x'.repeat(500_000) } });
    assert.deepEqual(await answer(event('POST', '/api/tenants', big)), { status: 413, code: 'payload-too-large' });
    assert.deepEqual(await answer(event('POST', '/api/tenants', Buffer.from(big).toString('base64'), true)), { status: 413, code: 'payload-too-large' });
    assert.deepEqual(await answer(event('POST', '/api/tenants', `{"domain":"l.example","labels":${'['.repeat(5000)}${']'.repeat(5000)}}`)), { status: 400, code: 'json-too-deep' });
    assert.deepEqual(await answer(event('GET', '/api/tenants/%E0%A4%A')), { status: 400, code: 'invalid-path' });
    assert.deepEqual(await answer(event('POST', '/api/tenants', JSON.stringify({ domain: 'a/b' }))), { status: 400, code: 'invalid-tenant' });
  });
});
