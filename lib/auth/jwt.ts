// JWT login (RFC 7519 tokens signed per RFC 7515/7518, verified with `jose`): a tenant's backend or
// identity provider signs a token naming the user, and the user logs in with it (as the SASL PLAIN
// password, or with OAUTHBEARER, RFC 7628). Keys come from the tenant item (a shared secret, PEM or
// JWK public keys) or from a JWKS URL, which is fetched with a timeout, cached per URL and refetched
// when a token names an unknown `kid`, so an identity provider can rotate its keys.
//
// What is refused (always as SASL not-authorized, the reason only in the log): `alg: none`; an
// algorithm the tenant does not allow (by default: what its configured key types can verify, so an
// HS256 token "signed" with an RSA public key never meets an HMAC key: HMAC only ever uses the
// tenant's `secret`); a bad signature; no `exp`, an expired or not-yet-valid token (beyond the clock
// tolerance); a wrong `iss` or `aud`; a username claim that is missing or names another user.
import { createPublicKey, type KeyObject } from 'node:crypto';
import { createRemoteJWKSet, decodeProtectedHeader, errors, jwtVerify, type JWTPayload, type JWTVerifyOptions } from 'jose';
import type { JwtSettings } from '../store/tenants.ts';
import { JIDError, makeJID, parseJID } from '../xmpp/jid.ts';

export const DEFAULT_CLOCK_TOLERANCE_SECONDS = 30;
export const DEFAULT_USERNAME_CLAIM = 'sub';
/** How long a JWKS fetch may take. */
export const JWKS_TIMEOUT_MS = 3000;
/** Default least time between two fetches of one JWKS URL caused by unknown `kid`s. */
export const DEFAULT_JWKS_COOLDOWN_SECONDS = 10;
/** Default longest time fetched keys are used without fetching the JWKS again. */
export const DEFAULT_JWKS_CACHE_SECONDS = 600;

const HMAC_ALGS = ['HS256', 'HS384', 'HS512'];
const RSA_ALGS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'];
const EC_ALGS: Record<string, string> = { 'P-256': 'ES256', prime256v1: 'ES256', 'P-384': 'ES384', secp384r1: 'ES384', 'P-521': 'ES512', secp521r1: 'ES512' };
/** What a JWKS can hold keys for: every asymmetric algorithm, never HMAC. */
const ASYMMETRIC_ALGS = [...RSA_ALGS, 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];

export type JwtFailure = 'not-authorized' | 'temporary-auth-failure';

export class JwtError extends Error {
  constructor(
    readonly condition: JwtFailure,
    message: string,
  ) {
    super(message);
    this.name = 'JwtError';
  }
}

export interface JwtLogin {
  /** The account's local part, normalized. */
  username: string;
  claims: JWTPayload;
}

export interface VerifyOptions {
  /** The local part the client logs in as (PLAIN authcid, OAUTHBEARER authzid); the claim must name it. */
  expectedUsername?: string;
  /** The time to check `exp`/`nbf` against (tests). */
  currentDate?: Date;
}

/** A JWT is three base64url parts; `alg: none` tokens have an empty third part. */
export function looksLikeJwt(s: string): boolean {
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(s);
}

/**
 * Verifies `token` for tenant `domain` and returns the user it names. Throws JwtError: not-authorized
 * for any bad token, temporary-auth-failure when the JWKS cannot be fetched.
 */
export async function verifyJwt(token: string, settings: JwtSettings, domain: string, opts: VerifyOptions = {}): Promise<JwtLogin> {
  if (!looksLikeJwt(token)) throw new JwtError('not-authorized', 'not a JWT in compact form');
  let header;
  try {
    header = decodeProtectedHeader(token);
  } catch {
    throw new JwtError('not-authorized', 'unreadable JWT header');
  }
  const alg = typeof header.alg === 'string' ? header.alg : '';
  const kid = typeof header.kid === 'string' ? header.kid : undefined;
  const local = localKeys(settings);
  const allowed = allowedAlgorithms(settings, local);
  if (!allowed.includes(alg)) throw new JwtError('not-authorized', `algorithm ${alg || '(none)'} is not allowed`);

  const verifyOptions: JWTVerifyOptions = {
    algorithms: allowed,
    clockTolerance: settings.clockToleranceSeconds ?? DEFAULT_CLOCK_TOLERANCE_SECONDS,
    requiredClaims: ['exp'],
    ...(settings.issuer !== undefined ? { issuer: settings.issuer } : {}),
    ...(settings.audience !== undefined ? { audience: settings.audience } : {}),
    ...(opts.currentDate ? { currentDate: opts.currentDate } : {}),
  };

  let payload: JWTPayload | undefined;
  let lastError: unknown;
  // Configured keys first: each that could have made this signature (algorithm and kid fit).
  for (const key of local) {
    if (!key.algs.includes(alg) || (kid !== undefined && key.kid !== undefined && key.kid !== kid)) continue;
    try {
      payload = (await jwtVerify(token, key.key, verifyOptions)).payload;
      break;
    } catch (err) {
      // Another key may fit; anything but a signature mismatch is final (expired, audience, …).
      if (!(err instanceof errors.JWSSignatureVerificationFailed)) throw refusal(err);
      lastError = err;
    }
  }
  if (!payload && settings.jwksUrl && ASYMMETRIC_ALGS.includes(alg)) {
    try {
      payload = (await jwtVerify(token, remoteJwks(settings), verifyOptions)).payload;
    } catch (err) {
      throw refusal(err);
    }
  }
  if (!payload) throw lastError ? refusal(lastError) : new JwtError('not-authorized', `no key for alg ${alg}${kid ? ` kid ${kid}` : ''}`);

  // jose checks nbf; a token issued in the future is not valid yet either.
  const nowSeconds = Math.floor((opts.currentDate?.getTime() ?? Date.now()) / 1000);
  if (typeof payload.iat === 'number' && payload.iat > nowSeconds + (verifyOptions.clockTolerance as number)) {
    throw new JwtError('not-authorized', 'token issued in the future');
  }
  const claimName = settings.usernameClaim ?? DEFAULT_USERNAME_CLAIM;
  const username = usernameFromClaim(payload[claimName], domain);
  if (!username) throw new JwtError('not-authorized', `claim ${claimName} does not name a user of ${domain}`);
  if (opts.expectedUsername !== undefined && opts.expectedUsername !== username) {
    throw new JwtError('not-authorized', `token is for ${username}, not ${opts.expectedUsername}`);
  }
  return { username, claims: payload };
}

/** The local part a claim names: a local part, or a bare JID of this domain. */
export function usernameFromClaim(value: unknown, domain: string): string | undefined {
  if (typeof value !== 'string' || value === '') return undefined;
  try {
    if (value.includes('@')) {
      const jid = parseJID(value);
      if (jid.resource || !jid.local || jid.domain !== makeJID('', domain).domain) return undefined;
      return jid.local;
    }
    return makeJID(value, domain).local || undefined;
  } catch (err) {
    if (err instanceof JIDError) return undefined;
    throw err;
  }
}

function refusal(err: unknown): JwtError {
  if (err instanceof JwtError) return err;
  // The JWKS could not be had: not the client's fault (RFC 6120 §6.5.12).
  if (err instanceof errors.JWKSTimeout || err instanceof errors.JWKSInvalid) return new JwtError('temporary-auth-failure', err.message);
  if (err instanceof errors.JOSEError) {
    if (err.code === 'ERR_JOSE_GENERIC' && /JSON Web Key Set/i.test(err.message)) return new JwtError('temporary-auth-failure', err.message);
    return new JwtError('not-authorized', `${err.code}: ${err.message}`);
  }
  // fetch() failures (connection refused, DNS) surface as TypeError.
  if (err instanceof TypeError || (err instanceof Error && err.name === 'AbortError')) return new JwtError('temporary-auth-failure', err.message);
  return new JwtError('not-authorized', err instanceof Error ? err.message : String(err));
}

// ---- keys -------------------------------------------------------------------------------------------

interface LocalKey {
  key: KeyObject | Uint8Array;
  /** Algorithms this key may verify. */
  algs: string[];
  kid?: string;
}

const parsedKeys = new Map<string, LocalKey[]>();

/** The tenant's configured keys, parsed once per distinct configuration. */
export function localKeys(settings: JwtSettings): LocalKey[] {
  const id = JSON.stringify([settings.secret ?? null, settings.keys ?? []]);
  const hit = parsedKeys.get(id);
  if (hit) return hit;
  const out: LocalKey[] = [];
  if (settings.secret) out.push({ key: new TextEncoder().encode(settings.secret), algs: HMAC_ALGS });
  for (const k of settings.keys ?? []) {
    const parsed = parseKey(k);
    if (parsed) out.push(parsed);
  }
  if (parsedKeys.size > 200) parsedKeys.clear();
  parsedKeys.set(id, out);
  return out;
}

function parseKey(k: string | Record<string, unknown>): LocalKey | undefined {
  try {
    if (typeof k === 'string') {
      // PEM: SPKI or PKCS#1 public key, an X.509 certificate, or a private key (its public half is used).
      const key = createPublicKey(k);
      return { key, algs: algsForKey(key) };
    }
    const kid = typeof k.kid === 'string' ? k.kid : undefined;
    const only = typeof k.alg === 'string' ? [k.alg] : undefined;
    if (k.use !== undefined && k.use !== 'sig') return undefined;
    if (k.kty === 'oct') {
      if (typeof k.k !== 'string') return undefined;
      return { key: Buffer.from(k.k, 'base64url'), algs: (only ?? HMAC_ALGS).filter((a) => HMAC_ALGS.includes(a)), kid };
    }
    // Only the public members are kept: a JWK pasted with its private part still verifies.
    const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, oth: _oth, ...pub } = k;
    const key = createPublicKey({ key: pub as never, format: 'jwk' });
    const algs = algsForKey(key);
    return { key, algs: only ? algs.filter((a) => only.includes(a)) : algs, kid };
  } catch {
    // An unusable key is skipped: tokens it would verify are refused, others still work.
    return undefined;
  }
}

function algsForKey(key: KeyObject): string[] {
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return RSA_ALGS;
    case 'rsa-pss':
      return RSA_ALGS.filter((a) => a.startsWith('PS'));
    case 'ec': {
      const alg = EC_ALGS[key.asymmetricKeyDetails?.namedCurve ?? ''];
      return alg ? [alg] : [];
    }
    case 'ed25519':
      return ['EdDSA', 'Ed25519'];
    case 'ed448':
      return ['EdDSA'];
    default:
      return [];
  }
}

/** The tenant's `algorithms` (never `none`), else those its keys can verify. */
export function allowedAlgorithms(settings: JwtSettings, local = localKeys(settings)): string[] {
  if (settings.algorithms?.length) return settings.algorithms.filter((a) => a.toLowerCase() !== 'none');
  const set = new Set<string>();
  for (const k of local) for (const a of k.algs) set.add(a);
  if (settings.jwksUrl) for (const a of ASYMMETRIC_ALGS) set.add(a);
  return [...set];
}

// ---- JWKS -------------------------------------------------------------------------------------------

const remoteSets = new Map<string, ReturnType<typeof createRemoteJWKSet>>();

/**
 * One key set per URL (and cache settings) per process: fetched on first use, kept for
 * `jwksCacheSeconds`, and fetched again when a token's `kid` is not in it (at most once per
 * `jwksCooldownSeconds`), which is how a key rotation at the identity provider is picked up.
 */
function remoteJwks(settings: JwtSettings): ReturnType<typeof createRemoteJWKSet> {
  const cooldown = (settings.jwksCooldownSeconds ?? DEFAULT_JWKS_COOLDOWN_SECONDS) * 1000;
  const maxAge = (settings.jwksCacheSeconds ?? DEFAULT_JWKS_CACHE_SECONDS) * 1000;
  const id = `${settings.jwksUrl}\n${cooldown}\n${maxAge}`;
  let set = remoteSets.get(id);
  if (!set) {
    set = createRemoteJWKSet(new URL(settings.jwksUrl!), { timeoutDuration: JWKS_TIMEOUT_MS, cooldownDuration: cooldown, cacheMaxAge: maxAge });
    if (remoteSets.size > 200) remoteSets.clear();
    remoteSets.set(id, set);
  }
  return set;
}

/** Forgets every fetched JWKS (tests). */
export function clearJwksCache(): void {
  remoteSets.clear();
}
