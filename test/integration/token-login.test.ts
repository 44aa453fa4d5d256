// Token login over the local gateway with real xmpp.js clients: a JWT as the PLAIN password,
// OAUTHBEARER, a JWKS across a key rotation, every bad-token case refused as not-authorized, the
// mechanisms each tenant's loginMethods allow, and MongooseIM's token-auth IQ with X-OAUTH access
// and refresh logins and revocation. Tenants are items written straight to DynamoDB.
import assert from 'node:assert/strict';
import { createHmac, createPrivateKey, type KeyObject } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { SignJWT, exportJWK, exportPKCS8, exportSPKI, generateKeyPair, type JWK } from 'jose';
import { revokeTokens } from '../../lib/auth/access-tokens.ts';
import { createDynamoClient } from '../../lib/store/dynamo.ts';
import { RawClient, type TestServer, byName, startTestServer, xml, type Element } from '../support/harness.ts';
import { type SaslTrace, connectWithToken } from '../support/sasl-token.ts';
import { offlineOf } from '../../lib/extensions/offline/index.ts';

const NS_TOKEN = 'erlang-solutions.com:xmpp:token-auth:0';
const STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas';
const SECRET = 'jwt secret of the jwt.example tenant, long enough';
const TOKEN_SECRET = 'token secret of tokens.example';
const ISSUER = 'https://idp.jwt.example';
const now = () => Math.floor(Date.now() / 1000);

let s: TestServer;
let db: ReturnType<typeof createDynamoClient>;
let rsa: { key: KeyObject; pem: string };
let other: { key: KeyObject };
let jwks: Server;
let served: { keys: JWK[] } = { keys: [] };
let jwksFetches = 0;
const k: Record<string, { key: KeyObject; jwk: JWK }> = {};

async function rsaPair() {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  return { key: createPrivateKey(await exportPKCS8(privateKey)), pem: await exportSPKI(publicKey), jwk: await exportJWK(publicKey) };
}

const putTenant = (domain: string, extra: Record<string, unknown>) =>
  db.send(new PutCommand({ TableName: s.table, Item: { pk: `tenant#${domain}`, sk: 'tenant', domain, enabled: true, ...extra } }));

/** A JWT for jwt.example: HS256 with the tenant's secret, issuer and audience, valid 5 minutes. */
function jwt(claims: Record<string, unknown> = {}, opts: { key?: KeyObject | Uint8Array; alg?: string; kid?: string; exp?: number } = {}) {
  return new SignJWT({ iss: ISSUER, aud: 'xmpp', ...claims })
    .setProtectedHeader({ alg: opts.alg ?? 'HS256', ...(opts.kid ? { kid: opts.kid } : {}) })
    .setExpirationTime(opts.exp ?? now() + 300)
    .sign(opts.key ?? new TextEncoder().encode(SECRET));
}

const condition = (err: unknown) => (err as { condition?: string }).condition;
async function refused(p: Promise<{ stop(): Promise<void> }>, expected = 'not-authorized') {
  await assert.rejects(
    p.then((c) => c.stop()),
    (err: unknown) => {
      assert.equal(condition(err), expected, String(err));
      return true;
    },
  );
}

async function offered(domain: string): Promise<string[]> {
  const raw = await RawClient.connect(s.url);
  raw.send(`<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="${domain}" version="1.0"/>`);
  const features = await raw.next(byName('stream:features'));
  raw.ws.close();
  return features.getChild('mechanisms')!.getChildren('mechanism').map((m) => m.text());
}

before(async () => {
  // No tenant is edited after setup: a long tenant cache and no watcher polls keep the cost counts exact.
  s = await startTestServer({ tenantCacheMs: 60_000, tenantWatchMs: 60_000 });
  db = createDynamoClient({ endpoint: s.dynamoEndpoint, localCredentials: true });
  rsa = await rsaPair();
  other = await rsaPair();
  const [k1, k2] = await Promise.all([rsaPair(), rsaPair()]);
  k.k1 = k1;
  k.k2 = k2;
  served = { keys: [{ ...k1.jwk, kid: 'k1', alg: 'RS256' }] };
  jwks = createServer((_req, res) => {
    jwksFetches++;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(served));
  });
  await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', r));
  const jwksUrl = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks.json`;

  await putTenant('jwt.example', { loginMethods: ['password', 'jwt'], jwt: { secret: SECRET, issuer: ISSUER, audience: 'xmpp' } });
  await putTenant('jwtonly.example', { loginMethods: ['jwt'], jwt: { keys: [rsa.pem] } });
  await putTenant('jwks.example', { loginMethods: ['jwt'], jwt: { jwksUrl, jwksCooldownSeconds: 0 } });
  await putTenant('tokens.example', { loginMethods: ['password', 'token'], tokens: { secret: TOKEN_SECRET } });
  await putTenant('othertokens.example', { loginMethods: ['password', 'token'], tokens: { secret: 'another secret' } });
  await s.addUser('pat@jwt.example', 'pw');
  await s.addUser('tim@tokens.example', 'pw');
  await s.addUser('tim@othertokens.example', 'pw');
});

after(async () => {
  db.destroy();
  await new Promise<void>((r) => jwks.close(() => r()));
  await s.stop();
});

describe('mechanisms per tenant', () => {
  it("lists only what the tenant's loginMethods allow", async () => {
    assert.deepEqual(await offered('localhost'), ['SCRAM-SHA-256', 'SCRAM-SHA-1', 'PLAIN']);
    assert.deepEqual(await offered('jwt.example'), ['SCRAM-SHA-256', 'SCRAM-SHA-1', 'PLAIN', 'OAUTHBEARER']);
    assert.deepEqual(await offered('jwtonly.example'), ['PLAIN', 'OAUTHBEARER']);
    assert.deepEqual(await offered('tokens.example'), ['SCRAM-SHA-256', 'SCRAM-SHA-1', 'PLAIN', 'X-OAUTH']);
  });

  it('refuses a mechanism the tenant does not offer with invalid-mechanism', async () => {
    const raw = await RawClient.connect(s.url);
    raw.send('<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="jwtonly.example" version="1.0"/>');
    await raw.next(byName('stream:features'));
    raw.send(`<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="SCRAM-SHA-256">${Buffer.from('n,,n=pat,r=abcdef').toString('base64')}</auth>`);
    assert.ok((await raw.next(byName('failure'))).getChild('invalid-mechanism'));
    raw.send(`<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="X-OAUTH">${Buffer.from('x').toString('base64')}</auth>`);
    assert.ok((await raw.next(byName('failure'))).getChild('invalid-mechanism'));
    raw.ws.close();
    // And a password is not accepted as PLAIN where only JWT login is allowed.
    await s.addUser('pam@jwtonly.example', 'pw');
    await refused(connectWithToken(s.url, { domain: 'jwtonly.example', username: 'pam', password: 'pw', mechanism: 'PLAIN' }));
  });
});

describe('JWT as the PLAIN password', () => {
  it('logs in a user with no account yet, who then has an account item without a password', async () => {
    assert.equal(await s.server.users.get('jwt.example', 'jane'), undefined);
    const c = await connectWithToken(s.url, { domain: 'jwt.example', username: 'jane', password: await jwt({ sub: 'jane' }), mechanism: 'PLAIN', resource: 'web' });
    assert.equal(c.jid, 'jane@jwt.example/web');
    const account = await s.server.users.get('jwt.example', 'jane');
    assert.equal(account?.origin, 'jwt');
    assert.equal(account?.scram, undefined);
    assert.ok((await s.server.users.list('jwt.example')).includes('jane'));
    await c.stop();
    // The second login finds the account.
    const again = await connectWithToken(s.url, { domain: 'jwt.example', username: 'jane', password: await jwt({ sub: 'jane@jwt.example' }), mechanism: 'PLAIN' });
    await again.stop();
  });

  it('a password user of a tenant that allows both still logs in with the password (PLAIN and SCRAM)', async () => {
    const plain = await connectWithToken(s.url, { domain: 'jwt.example', username: 'pat', password: 'pw', mechanism: 'PLAIN' });
    const scram = await connectWithToken(s.url, { domain: 'jwt.example', username: 'pat', password: 'pw', mechanism: 'SCRAM-SHA-256' });
    await plain.stop();
    await scram.stop();
    await refused(connectWithToken(s.url, { domain: 'jwt.example', username: 'pat', password: 'wrong', mechanism: 'PLAIN' }));
  });

  it('messages to an offline JWT user are stored, not bounced', async () => {
    const joe = await connectWithToken(s.url, { domain: 'jwt.example', username: 'joe', password: await jwt({ sub: 'joe' }), mechanism: 'PLAIN' });
    await joe.stop();
    const pat = await connectWithToken(s.url, { domain: 'jwt.example', username: 'pat', password: 'pw', mechanism: 'PLAIN' });
    await pat.send(xml('message', { to: 'joe@jwt.example', type: 'chat', id: 'm1' }, xml('body', {}, 'while you were out')));
    await pat.expectNothing(s, byName('message', { type: 'error' }));
    const stored = await offlineOf(s.server).list('joe@jwt.example');
    assert.equal(stored.length, 1);
    await pat.stop();
    const back = await connectWithToken(s.url, { domain: 'jwt.example', username: 'joe', password: await jwt({ sub: 'joe' }), mechanism: 'PLAIN' });
    await back.send(xml('presence'));
    const msg = await back.waitFor(byName('message', { id: 'm1' }));
    assert.equal(msg.getChildText('body'), 'while you were out');
    await back.stop();
  });

  it('costs what a password login costs; the first login writes the account item once', async () => {
    const measure = async (user: string, password: string) => {
      let raw: RawClient | undefined;
      const cost = await s.cost(async () => {
        raw = await RawClient.connect(s.url);
        await raw.login(user, password, 'r', 'jwt.example');
      });
      raw!.ws.close();
      await raw!.closed;
      return { reads: cost.reads, writes: cost.writes, posts: cost.posts };
    };
    await measure('pat', 'pw'); // the first login of an account also creates its session item
    const byPassword = await measure('pat', 'pw');
    assert.deepEqual(byPassword, { reads: 6, writes: 6, posts: 6 });
    const first = await measure('jill', await jwt({ sub: 'jill' }));
    assert.equal(first.writes, byPassword.writes + 2, 'account item and session item');
    assert.deepEqual(await measure('jill', await jwt({ sub: 'jill' })), byPassword);
  });

  it('an RSA-signed JWT on a tenant configured with a PEM key', async () => {
    const c = await connectWithToken(s.url, { domain: 'jwtonly.example', username: 'ria', password: await jwt({ sub: 'ria', iss: undefined, aud: undefined }, { key: rsa.key, alg: 'RS256' }), mechanism: 'PLAIN' });
    assert.equal(c.jid.split('/')[0], 'ria@jwtonly.example');
    await c.stop();
  });
});

describe('bad tokens are refused with not-authorized', () => {
  const cases: [string, () => Promise<string>][] = [
    ['alg none', async () => {
      const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
      return `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: 'jane', iss: ISSUER, aud: 'xmpp', exp: now() + 300 })}.`;
    }],
    ['a wrong secret', () => jwt({ sub: 'jane' }, { key: new TextEncoder().encode('not the secret') })],
    ['an RSA key the tenant does not know', () => jwt({ sub: 'jane' }, { key: other.key, alg: 'RS256' })],
    ['expired', () => jwt({ sub: 'jane' }, { exp: now() - 120 })],
    ['not yet valid', () => jwt({ sub: 'jane', nbf: now() + 120 })],
    ['a wrong audience', () => jwt({ sub: 'jane', aud: 'billing' })],
    ['a wrong issuer', () => jwt({ sub: 'jane', iss: 'https://evil.example' })],
    ['a token for another user', () => jwt({ sub: 'mallory' })],
    ['a token for another tenant', () => jwt({ sub: 'jane@jwtonly.example' })],
  ];
  for (const [name, make] of cases) {
    it(name, async () => {
      await refused(connectWithToken(s.url, { domain: 'jwt.example', username: 'jane', password: await make(), mechanism: 'PLAIN' }));
    });
  }

  it('algorithm confusion: HS256 with the RSA public key as the HMAC secret', async () => {
    const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const input = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub: 'ria', exp: now() + 300 })}`;
    const token = `${input}.${createHmac('sha256', rsa.pem).update(input).digest('base64url')}`;
    await refused(connectWithToken(s.url, { domain: 'jwtonly.example', username: 'ria', password: token, mechanism: 'PLAIN' }));
  });

  it('an RS256 token signed by another RSA key than the configured one', async () => {
    const token = await jwt({ sub: 'ria', iss: undefined, aud: undefined }, { key: other.key, alg: 'RS256' });
    await refused(connectWithToken(s.url, { domain: 'jwtonly.example', username: 'ria', password: token, mechanism: 'PLAIN' }));
  });
});

describe('OAUTHBEARER (RFC 7628)', () => {
  it('logs in with the authzid naming the user', async () => {
    const c = await connectWithToken(s.url, { domain: 'jwt.example', authzid: 'olga@jwt.example', password: await jwt({ sub: 'olga' }), mechanism: 'OAUTHBEARER' });
    assert.equal(c.jid.split('/')[0], 'olga@jwt.example');
    await c.stop();
  });

  it('logs in without an authzid: the token names the user', async () => {
    const c = await connectWithToken(s.url, { domain: 'jwtonly.example', password: await jwt({ sub: 'omar@jwtonly.example', iss: undefined, aud: undefined }, { key: rsa.key, alg: 'RS256' }), mechanism: 'OAUTHBEARER' });
    assert.equal(c.jid.split('/')[0], 'omar@jwtonly.example');
    await c.stop();
  });

  it('a bad token gets the JSON error challenge, then not-authorized after the client\'s \\x01', async () => {
    for (const token of [await jwt({ sub: 'olga' }, { exp: now() - 120 }), await jwt({ sub: 'olga' }, { key: new TextEncoder().encode('wrong') })]) {
      const trace: SaslTrace = { challenges: [] };
      await refused(connectWithToken(s.url, { domain: 'jwt.example', authzid: 'olga@jwt.example', password: token, mechanism: 'OAUTHBEARER' }, trace));
      assert.equal(trace.challenges.length, 1);
      assert.equal(JSON.parse(trace.challenges[0]).status, 'invalid_token');
    }
  });

  it('an authzid other than the user the token names is refused', async () => {
    await refused(connectWithToken(s.url, { domain: 'jwt.example', authzid: 'pat@jwt.example', password: await jwt({ sub: 'olga' }), mechanism: 'OAUTHBEARER' }));
    await refused(connectWithToken(s.url, { domain: 'jwt.example', authzid: 'olga@jwtonly.example', password: await jwt({ sub: 'olga' }), mechanism: 'OAUTHBEARER' }), 'invalid-authzid');
  });
});

describe('JWKS', () => {
  it('logs in with a key from the JWKS, then across a key rotation', async () => {
    const t1 = await jwt({ sub: 'kim', iss: undefined, aud: undefined }, { key: k.k1.key, alg: 'RS256', kid: 'k1' });
    const c1 = await connectWithToken(s.url, { domain: 'jwks.example', username: 'kim', password: t1, mechanism: 'PLAIN' });
    await c1.stop();
    // The identity provider rotates: k2 replaces k1.
    served = { keys: [{ ...k.k2.jwk, kid: 'k2', alg: 'RS256' }] };
    const fetches = jwksFetches;
    const t2 = await jwt({ sub: 'kim', iss: undefined, aud: undefined }, { key: k.k2.key, alg: 'RS256', kid: 'k2' });
    const c2 = await connectWithToken(s.url, { domain: 'jwks.example', authzid: 'kim@jwks.example', password: t2, mechanism: 'OAUTHBEARER' });
    assert.equal(c2.jid.split('/')[0], 'kim@jwks.example');
    assert.equal(jwksFetches - fetches, 1, 'the new kid made the server fetch the JWKS again');
    await c2.stop();
    await refused(connectWithToken(s.url, { domain: 'jwks.example', username: 'kim', password: t1, mechanism: 'PLAIN' }));
  });
});

describe('server-issued tokens (MongooseIM token-auth, X-OAUTH)', () => {
  async function requestTokens(domain = 'tokens.example', user = 'tim'): Promise<{ access: string; refresh: string }> {
    const c = await connectWithToken(s.url, { domain, username: user, password: 'pw', mechanism: 'SCRAM-SHA-256' });
    const res = await c.iq(xml('iq', { type: 'get', to: `${user}@${domain}` }, xml('query', { xmlns: NS_TOKEN })));
    await c.stop();
    assert.equal(res.attrs.from, `${user}@${domain}`);
    const items = res.getChild('items', NS_TOKEN)!;
    return { access: items.getChildText('access_token')!, refresh: items.getChildText('refresh_token')! };
  }

  it('the IQ returns an access and a refresh token in MongooseIM format', async () => {
    const { access, refresh } = await requestTokens();
    const a = Buffer.from(access, 'base64').toString('utf8').split('\0');
    const r = Buffer.from(refresh, 'base64').toString('utf8').split('\0');
    assert.deepEqual([a[0], a[1], a.length], ['access', 'tim@tokens.example', 4]);
    assert.deepEqual([r[0], r[1], r.length], ['refresh', 'tim@tokens.example', 5]);
    assert.match(a[3], /^[0-9a-f]{96}$/);
  });

  it('X-OAUTH with the access token logs in; with the refresh token it logs in and returns a new access token', async () => {
    const { access, refresh } = await requestTokens();
    const byAccess = await connectWithToken(s.url, { domain: 'tokens.example', password: access, mechanism: 'X-OAUTH', resource: 'a' });
    assert.equal(byAccess.jid, 'tim@tokens.example/a');
    assert.equal(byAccess.trace.success?.text() ?? '', '');
    await byAccess.stop();

    const byRefresh = await connectWithToken(s.url, { domain: 'tokens.example', password: refresh, mechanism: 'X-OAUTH', resource: 'r' });
    assert.equal(byRefresh.jid, 'tim@tokens.example/r');
    const renewed = byRefresh.trace.success!.text();
    assert.deepEqual(Buffer.from(renewed, 'base64').toString('utf8').split('\0').slice(0, 2), ['access', 'tim@tokens.example']);
    await byRefresh.stop();
    const byRenewed = await connectWithToken(s.url, { domain: 'tokens.example', password: renewed, mechanism: 'X-OAUTH' });
    await byRenewed.stop();
  });

  it('revocation: refresh tokens issued before are refused, access tokens live out their hour, new tokens work', async () => {
    const { access, refresh } = await requestTokens();
    assert.equal(await revokeTokens(s.server.users, 'tokens.example', 'tim'), true);
    await refused(connectWithToken(s.url, { domain: 'tokens.example', password: refresh, mechanism: 'X-OAUTH' }));
    const stillOk = await connectWithToken(s.url, { domain: 'tokens.example', password: access, mechanism: 'X-OAUTH' });
    await stillOk.stop();
    const fresh = await requestTokens();
    const byFresh = await connectWithToken(s.url, { domain: 'tokens.example', password: fresh.refresh, mechanism: 'X-OAUTH' });
    await byFresh.stop();
    assert.equal(await revokeTokens(s.server.users, 'tokens.example', 'nobody'), false);
  });

  it('refuses tampered tokens, another tenant\'s tokens, and tokens of a deleted account', async () => {
    const { access } = await requestTokens();
    const tampered = Buffer.from(Buffer.from(access, 'base64').toString('latin1').replace('tim@', 'tom@'), 'latin1').toString('base64');
    await refused(connectWithToken(s.url, { domain: 'tokens.example', password: tampered, mechanism: 'X-OAUTH' }));
    await refused(connectWithToken(s.url, { domain: 'othertokens.example', password: access, mechanism: 'X-OAUTH' }));
    const theirs = await requestTokens('othertokens.example');
    await refused(connectWithToken(s.url, { domain: 'tokens.example', password: theirs.access, mechanism: 'X-OAUTH' }));
    await s.addUser('tess@tokens.example', 'pw');
    const tess = await requestTokens('tokens.example', 'tess');
    await s.server.users.remove('tokens.example', 'tess');
    await refused(connectWithToken(s.url, { domain: 'tokens.example', password: tess.refresh, mechanism: 'X-OAUTH' }));
    await refused(connectWithToken(s.url, { domain: 'tokens.example', password: tess.access, mechanism: 'X-OAUTH' }));
  });

  it('a tenant without token login answers the IQ with service-unavailable', async () => {
    const c = await connectWithToken(s.url, { domain: 'jwt.example', username: 'pat', password: 'pw', mechanism: 'PLAIN' });
    await c.send(xml('iq', { type: 'get', id: 't1' }, xml('query', { xmlns: NS_TOKEN })));
    const err: Element = await c.waitFor(byName('iq', { id: 't1', type: 'error' }));
    assert.ok(err.getChild('error')!.getChild('service-unavailable', STANZAS));
    await c.stop();
  });
});
