// The HTTP API functions on API Gateway HTTP API (payload 2.0) events: the admin function adapts an
// event to the framework-neutral admin API and back (test/fixtures/http-api-*.json), the host-meta
// function answers XEP-0156 lookups.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { serveAdmin } from '../../functions/admin.ts';
import { serveHostMeta } from '../../functions/host-meta.ts';
import type { AdminApi, ApiRequest } from '../../lib/admin/api.ts';
import { type HttpApiEvent, pathOf, toApiRequest } from '../../lib/runtime/http-api.ts';

const fixture = (name: string): HttpApiEvent => JSON.parse(readFileSync(new URL(`../fixtures/${name}`, import.meta.url), 'utf8'));
const event = (method: string, rawPath: string, extra: Partial<HttpApiEvent> = {}): HttpApiEvent => ({
  version: '2.0',
  routeKey: '$default',
  rawPath,
  rawQueryString: '',
  headers: {},
  isBase64Encoded: false,
  requestContext: { http: { method, path: rawPath }, stage: '$default' },
  ...extra,
});

/** An admin API that records what it was asked and answers `out`. */
const recording = (out = { status: 201, body: { jid: 'alice@acme.example' } as unknown }) => {
  const seen: ApiRequest[] = [];
  const api = Object.assign(async (req: ApiRequest) => (seen.push(req), out), { routes: [], refuseBeforeBody: () => undefined }) as AdminApi;
  return { api, seen };
};

describe('admin function (HTTP API payload 2.0 → admin API)', () => {
  it('hands the admin API the path below /api, the method, headers, query and the decoded body', async () => {
    const { api, seen } = recording();
    const result = await serveAdmin(api, fixture('http-api-admin-create-user.json'));
    assert.equal(seen.length, 1);
    assert.equal(seen[0].method, 'POST');
    assert.equal(seen[0].path, '/tenants/acme.example/users');
    assert.deepEqual(JSON.parse(seen[0].body), { username: 'alice', password: 'correct horse battery staple' });
    assert.equal(seen[0].headers['content-type'], 'application/json');
    // SigV4 was API Gateway's to check; the admin API gets no bearer token to compare it with.
    assert.match(seen[0].headers.authorization!, /^AWS4-HMAC-SHA256 /);
    assert.deepEqual(result, { statusCode: 201, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jid: 'alice@acme.example' }, null, 2) });
  });

  it('keeps percent-encoding and the query string as the local gateway does', async () => {
    const { api, seen } = recording({ status: 202, body: {} });
    await serveAdmin(api, event('DELETE', '/api/tenants/acme%2Eexample', { rawQueryString: 'purge=true' }));
    assert.equal(seen[0].path, '/tenants/acme%2Eexample');
    assert.equal(seen[0].query.get('purge'), 'true');
  });

  it('answers a response without a body with no body, and a path outside /api with 404 without calling the API', async () => {
    const { api, seen } = recording({ status: 204, body: undefined });
    assert.deepEqual(await serveAdmin(api, event('PUT', '/api/tenants/a/users/b/password', { body: '{}' })), { statusCode: 204 });
    const outside = await serveAdmin(api, event('GET', '/apix/tenants'));
    assert.equal(outside.statusCode, 404);
    assert.equal(seen.length, 1);
  });

  it('strips a named stage from the path (HTTP APIs put it in rawPath), not the $default stage', () => {
    assert.equal(pathOf(event('GET', '/prod/api/tenants', { requestContext: { http: { method: 'GET', path: '/prod/api/tenants' }, stage: 'prod' } })), '/api/tenants');
    assert.equal(pathOf(event('GET', '/prod/api/tenants')), '/prod/api/tenants');
    assert.equal(toApiRequest(event('GET', '/api'))?.path, '/');
  });
});

describe('host-meta function', () => {
  it('answers both documents with the WebSocket URL it was deployed with', () => {
    const env = { WEBSOCKET_URL: 'wss://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com/xmpp' };
    const xrd = serveHostMeta(event('GET', '/.well-known/host-meta'), env);
    assert.equal(xrd.statusCode, 200);
    assert.equal(xrd.headers!['content-type'], 'application/xrd+xml; charset=utf-8');
    assert.ok(xrd.body!.includes(`<Link rel="urn:xmpp:alt-connections:websocket" href="${env.WEBSOCKET_URL}"/>`));
    const jrd = serveHostMeta(event('GET', '/.well-known/host-meta.json'), env);
    assert.deepEqual(JSON.parse(jrd.body!), { links: [{ rel: 'urn:xmpp:alt-connections:websocket', href: env.WEBSOCKET_URL }] });
    assert.equal(serveHostMeta(event('GET', '/.well-known/other'), env).statusCode, 404);
  });
});
