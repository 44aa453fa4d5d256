// JWT verification (lib/auth/jwt.ts): every algorithm family with keys given as a secret, PEM or
// JWK; every bad-token case refused as not-authorized; a JWKS served from 127.0.0.1, across a key
// rotation.
import assert from 'node:assert/strict';
import { createHmac, createPrivateKey, type KeyObject } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { SignJWT, exportJWK, exportPKCS8, exportSPKI, generateKeyPair, type JWK } from 'jose';
import { JwtError, allowedAlgorithms, clearJwksCache, looksLikeJwt, usernameFromClaim, verifyJwt } from '../../lib/auth/jwt.ts';
import { parseOauthBearer } from '../../lib/core/sasl.ts';
import type { JwtSettings } from '../../lib/store/tenants.ts';

const DOMAIN = 'acme.example';
const SECRET = 'a shared secret that is long enough for HS512 use, 64 bytes long!';
const now = () => Math.floor(Date.now() / 1000);

interface Pair {
  alg: string;
  /** A Node key object, so one RSA key signs RS* and PS* alike (a WebCrypto key is bound to one alg). */
  privateKey: KeyObject;
  pem: string;
  jwk: JWK;
}

async function pair(alg: string, opts: Record<string, unknown> = {}): Promise<Pair> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true, ...opts });
  return { alg, privateKey: createPrivateKey(await exportPKCS8(privateKey)), pem: await exportSPKI(publicKey), jwk: await exportJWK(publicKey) };
}

function sign(key: KeyObject | Uint8Array, alg: string, claims: Record<string, unknown> = {}, header: Record<string, unknown> = {}) {
  return new SignJWT({ sub: 'alice', ...claims }).setProtectedHeader({ alg, ...header }).setIssuedAt().setExpirationTime(now() + 300).sign(key);
}

const secretKey = new TextEncoder().encode(SECRET);

async function refused(p: Promise<unknown>, condition = 'not-authorized'): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof JwtError, String(err));
    assert.equal(err.condition, condition, err.message);
    return true;
  });
}

/** A compact JWT from raw parts (for tokens jose refuses to make). */
function compact(header: object, payload: object, signature = ''): string {
  const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${b64(header)}.${b64(payload)}.${signature}`;
}

let rsa: Pair, ps: Pair, es256: Pair, es384: Pair, es512: Pair, ed: Pair, other: Pair;
before(async () => {
  [rsa, ps, es256, es384, es512, ed, other] = await Promise.all([
    pair('RS256'),
    pair('PS384'),
    pair('ES256'),
    pair('ES384'),
    pair('ES512'),
    pair('EdDSA', { crv: 'Ed25519' }),
    pair('RS256'),
  ]);
});

describe('algorithms', () => {
  for (const alg of ['HS256', 'HS384', 'HS512']) {
    it(`${alg} with the shared secret`, async () => {
      const token = await sign(secretKey, alg);
      assert.equal((await verifyJwt(token, { secret: SECRET }, DOMAIN)).username, 'alice');
    });
  }

  it('RS256/384/512 and PS256/384/512 with an RSA key as PEM and as JWK', async () => {
    for (const alg of ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512']) {
      const token = await sign(rsa.privateKey, alg);
      assert.equal((await verifyJwt(token, { keys: [rsa.pem] }, DOMAIN)).username, 'alice', alg);
      assert.equal((await verifyJwt(token, { keys: [rsa.jwk as Record<string, unknown>] }, DOMAIN)).username, 'alice', alg);
    }
  });

  it('ES256, ES384, ES512 with EC keys as PEM and JWK', async () => {
    for (const p of [es256, es384, es512]) {
      const token = await sign(p.privateKey, p.alg);
      assert.equal((await verifyJwt(token, { keys: [p.pem] }, DOMAIN)).username, 'alice', p.alg);
      assert.equal((await verifyJwt(token, { keys: [p.jwk as Record<string, unknown>] }, DOMAIN)).username, 'alice', p.alg);
    }
  });

  it('EdDSA with an Ed25519 key', async () => {
    const token = await sign(ed.privateKey, 'EdDSA');
    assert.equal((await verifyJwt(token, { keys: [ed.pem] }, DOMAIN)).username, 'alice');
    assert.equal((await verifyJwt(token, { keys: [ed.jwk as Record<string, unknown>] }, DOMAIN)).username, 'alice');
  });

  it('picks the right key among several, by kid when there is one', async () => {
    const settings: JwtSettings = {
      secret: SECRET,
      keys: [other.pem, { ...(rsa.jwk as Record<string, unknown>), kid: 'k-rsa' }, es256.pem, ps.pem],
    };
    assert.equal((await verifyJwt(await sign(rsa.privateKey, 'RS256', {}, { kid: 'k-rsa' }), settings, DOMAIN)).username, 'alice');
    assert.equal((await verifyJwt(await sign(rsa.privateKey, 'RS256'), settings, DOMAIN)).username, 'alice');
    assert.equal((await verifyJwt(await sign(es256.privateKey, 'ES256'), settings, DOMAIN)).username, 'alice');
    assert.equal((await verifyJwt(await sign(secretKey, 'HS256'), settings, DOMAIN)).username, 'alice');
    await refused(verifyJwt(await sign(rsa.privateKey, 'RS256', {}, { kid: 'unknown' }), { keys: [{ ...(rsa.jwk as Record<string, unknown>), kid: 'k-rsa' }] }, DOMAIN));
  });

  it('allows by default only what the configured keys can verify, and never none', () => {
    assert.deepEqual(allowedAlgorithms({ secret: 'x' }), ['HS256', 'HS384', 'HS512']);
    assert.deepEqual(allowedAlgorithms({ keys: [es384.pem] }), ['ES384']);
    assert.deepEqual(allowedAlgorithms({ keys: [ed.pem] }), ['EdDSA', 'Ed25519']);
    assert.ok(!allowedAlgorithms({ jwksUrl: 'http://127.0.0.1/jwks' }).some((a) => a.startsWith('HS')));
    assert.deepEqual(allowedAlgorithms({ secret: 'x', algorithms: ['HS256', 'none', 'NONE'] }), ['HS256']);
  });
});

describe('bad tokens are refused with not-authorized', () => {
  it('alg none, even with the secret or keys configured and none listed in algorithms', async () => {
    const token = compact({ alg: 'none', typ: 'JWT' }, { sub: 'alice', exp: now() + 300 });
    assert.ok(looksLikeJwt(token));
    await refused(verifyJwt(token, { secret: SECRET }, DOMAIN));
    await refused(verifyJwt(token, { keys: [rsa.pem] }, DOMAIN));
    await refused(verifyJwt(token, { secret: SECRET, algorithms: ['none', 'HS256'] }, DOMAIN));
  });

  it('algorithm confusion: HS256 with the RSA public key as the HMAC secret', async () => {
    const header = { alg: 'HS256', typ: 'JWT' };
    const payload = { sub: 'alice', exp: now() + 300 };
    const input = compact(header, payload).slice(0, -1);
    for (const secret of [rsa.pem, JSON.stringify(rsa.jwk)]) {
      const sig = createHmac('sha256', secret).update(input).digest('base64url');
      await refused(verifyJwt(`${input}.${sig}`, { keys: [rsa.pem] }, DOMAIN));
      // Even when the tenant lists HS256, the RSA key is never used as an HMAC secret.
      await refused(verifyJwt(`${input}.${sig}`, { keys: [rsa.pem], algorithms: ['HS256', 'RS256'] }, DOMAIN));
    }
  });

  it('a wrong key or secret', async () => {
    await refused(verifyJwt(await sign(other.privateKey, 'RS256'), { keys: [rsa.pem] }, DOMAIN));
    await refused(verifyJwt(await sign(new TextEncoder().encode('another secret'), 'HS256'), { secret: SECRET }, DOMAIN));
    // A tampered payload with the original signature.
    const [h, , s] = (await sign(secretKey, 'HS256')).split('.');
    const p = Buffer.from(JSON.stringify({ sub: 'mallory', exp: now() + 300 })).toString('base64url');
    await refused(verifyJwt(`${h}.${p}.${s}`, { secret: SECRET }, DOMAIN));
  });

  it('an algorithm outside the tenant list', async () => {
    await refused(verifyJwt(await sign(rsa.privateKey, 'PS256'), { keys: [rsa.pem], algorithms: ['RS256'] }, DOMAIN));
    await refused(verifyJwt(await sign(secretKey, 'HS512'), { secret: SECRET, algorithms: ['HS256'] }, DOMAIN));
  });

  it('expired beyond the clock tolerance; accepted within it', async () => {
    const expired = await new SignJWT({ sub: 'alice' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime(now() - 120).sign(secretKey);
    await refused(verifyJwt(expired, { secret: SECRET }, DOMAIN));
    const justExpired = await new SignJWT({ sub: 'alice' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime(now() - 10).sign(secretKey);
    assert.equal((await verifyJwt(justExpired, { secret: SECRET }, DOMAIN)).username, 'alice');
    await refused(verifyJwt(justExpired, { secret: SECRET, clockToleranceSeconds: 0 }, DOMAIN));
  });

  it('no exp at all', async () => {
    const token = await new SignJWT({ sub: 'alice' }).setProtectedHeader({ alg: 'HS256' }).sign(secretKey);
    await refused(verifyJwt(token, { secret: SECRET }, DOMAIN));
  });

  it('not yet valid (nbf, iat in the future)', async () => {
    await refused(verifyJwt(await sign(secretKey, 'HS256', { nbf: now() + 120 }), { secret: SECRET }, DOMAIN));
    assert.equal((await verifyJwt(await sign(secretKey, 'HS256', { nbf: now() + 10 }), { secret: SECRET }, DOMAIN)).username, 'alice');
    const future = await new SignJWT({ sub: 'alice' }).setProtectedHeader({ alg: 'HS256' }).setIssuedAt(now() + 600).setExpirationTime(now() + 900).sign(secretKey);
    await refused(verifyJwt(future, { secret: SECRET }, DOMAIN));
  });

  it('a wrong audience or issuer', async () => {
    const settings: JwtSettings = { secret: SECRET, issuer: 'https://idp.acme.example', audience: ['xmpp', 'chat'] };
    assert.equal((await verifyJwt(await sign(secretKey, 'HS256', { iss: 'https://idp.acme.example', aud: 'chat' }), settings, DOMAIN)).username, 'alice');
    await refused(verifyJwt(await sign(secretKey, 'HS256', { iss: 'https://idp.acme.example', aud: 'billing' }), settings, DOMAIN));
    await refused(verifyJwt(await sign(secretKey, 'HS256', { iss: 'https://idp.acme.example' }), settings, DOMAIN));
    await refused(verifyJwt(await sign(secretKey, 'HS256', { iss: 'https://evil.example', aud: 'xmpp' }), settings, DOMAIN));
  });

  it('a username claim that is missing, of another domain or another user', async () => {
    await refused(verifyJwt(await sign(secretKey, 'HS256', { sub: undefined }), { secret: SECRET }, DOMAIN));
    await refused(verifyJwt(await sign(secretKey, 'HS256', { sub: 'alice@other.example' }), { secret: SECRET }, DOMAIN));
    await refused(verifyJwt(await sign(secretKey, 'HS256'), { secret: SECRET }, DOMAIN, { expectedUsername: 'bob' }));
  });

  it('garbage', async () => {
    await refused(verifyJwt('not a jwt', { secret: SECRET }, DOMAIN));
    await refused(verifyJwt('a.b.c', { secret: SECRET }, DOMAIN));
    await refused(verifyJwt(await sign(secretKey, 'HS256'), {}, DOMAIN));
  });
});

describe('the username claim', () => {
  it('is sub by default and configurable; a local part or a bare JID of the tenant', async () => {
    assert.equal((await verifyJwt(await sign(secretKey, 'HS256', { sub: 'Alice@ACME.example' }), { secret: SECRET }, DOMAIN, { expectedUsername: 'alice' })).username, 'alice');
    const token = await sign(secretKey, 'HS256', { sub: 'user-id-17', preferred_username: 'carol' });
    assert.equal((await verifyJwt(token, { secret: SECRET, usernameClaim: 'preferred_username' }, DOMAIN)).username, 'carol');
    assert.equal(usernameFromClaim('bob', DOMAIN), 'bob');
    assert.equal(usernameFromClaim('bob@acme.example/phone', DOMAIN), undefined);
    assert.equal(usernameFromClaim(42, DOMAIN), undefined);
  });
});

describe('JWKS from a URL', () => {
  let server: Server;
  let url: string;
  let served: { keys: JWK[] } = { keys: [] };
  let fetches = 0;
  let k1: Pair, k2: Pair;

  before(async () => {
    [k1, k2] = await Promise.all([pair('RS256'), pair('ES256')]);
    served = { keys: [{ ...k1.jwk, kid: 'k1', alg: 'RS256', use: 'sig' }] };
    server = createServer((req, res) => {
      fetches++;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(served));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`;
    clearJwksCache();
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  it('verifies with a key from the JWKS, fetched once and then cached', async () => {
    const settings: JwtSettings = { jwksUrl: url, jwksCooldownSeconds: 0 };
    const before = fetches;
    assert.equal((await verifyJwt(await sign(k1.privateKey, 'RS256', {}, { kid: 'k1' }), settings, DOMAIN)).username, 'alice');
    assert.equal((await verifyJwt(await sign(k1.privateKey, 'RS256', {}, { kid: 'k1' }), settings, DOMAIN)).username, 'alice');
    assert.equal(fetches - before, 1);
    // An HS256 token is never checked against a JWKS.
    await refused(verifyJwt(await sign(secretKey, 'HS256', {}, { kid: 'k1' }), settings, DOMAIN));
    await refused(verifyJwt(await sign(other.privateKey, 'RS256', {}, { kid: 'k1' }), settings, DOMAIN));
  });

  it('key rotation: a token with a new kid is accepted once the JWKS has the new key; the old key is then refused', async () => {
    const settings: JwtSettings = { jwksUrl: url, jwksCooldownSeconds: 0 };
    assert.equal((await verifyJwt(await sign(k1.privateKey, 'RS256', {}, { kid: 'k1' }), settings, DOMAIN)).username, 'alice');
    // Not yet published: refused.
    await refused(verifyJwt(await sign(k2.privateKey, 'ES256', {}, { kid: 'k2' }), settings, DOMAIN));
    served = { keys: [{ ...k2.jwk, kid: 'k2', alg: 'ES256' }] };
    const before = fetches;
    assert.equal((await verifyJwt(await sign(k2.privateKey, 'ES256', {}, { kid: 'k2' }), settings, DOMAIN)).username, 'alice');
    assert.equal(fetches - before, 1, 'the unknown kid caused one fetch');
    await refused(verifyJwt(await sign(k1.privateKey, 'RS256', {}, { kid: 'k1' }), settings, DOMAIN));
  });

  it('an unknown kid within the cooldown does not cause a fetch', async () => {
    const settings: JwtSettings = { jwksUrl: url, jwksCooldownSeconds: 60 };
    assert.equal((await verifyJwt(await sign(k2.privateKey, 'ES256', {}, { kid: 'k2' }), settings, DOMAIN)).username, 'alice');
    const before = fetches;
    await refused(verifyJwt(await sign(k1.privateKey, 'RS256', {}, { kid: 'nope' }), settings, DOMAIN));
    assert.equal(fetches, before);
  });

  it('an unreachable JWKS is a temporary-auth-failure', async () => {
    const dead = createServer();
    await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r));
    const port = (dead.address() as AddressInfo).port;
    await new Promise<void>((r) => dead.close(() => r()));
    const token = await sign(k1.privateKey, 'RS256', {}, { kid: 'k1' });
    await refused(verifyJwt(token, { jwksUrl: `http://127.0.0.1:${port}/jwks` }, DOMAIN), 'temporary-auth-failure');
  });
});

describe('OAUTHBEARER client response (RFC 7628 §3.1)', () => {
  const msg = (s: string) => Buffer.from(s, 'utf8');
  it('yields the authzid and the bearer token', () => {
    assert.deepEqual(parseOauthBearer(msg('n,a=user@example.com,\x01host=server.example.com\x01port=143\x01auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01')), {
      authzid: 'user@example.com',
      token: 'vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==',
    });
    assert.deepEqual(parseOauthBearer(msg('n,,\x01auth=bearer a.b.c\x01\x01')), { authzid: undefined, token: 'a.b.c' });
    assert.deepEqual(parseOauthBearer(msg('y,a=a=2Cb=3Dc,\x01auth=Bearer t\x01\x01')), { authzid: 'a,b=c', token: 't' });
  });
  it('says what is wrong with a malformed one', () => {
    for (const bad of ['', 'n,,auth=Bearer x', 'n,,\x01auth=Bearer x\x01', 'p=tls-unique,,\x01auth=Bearer x\x01\x01', 'n,a=,\x01auth=Bearer x\x01\x01', 'n,a=x=41,\x01auth=Bearer x\x01\x01', 'n,,\x01host=h\x01\x01', 'n,,\x01auth=Basic x\x01\x01']) {
      assert.equal(typeof parseOauthBearer(msg(bad)), 'string', JSON.stringify(bad));
    }
  });
});
