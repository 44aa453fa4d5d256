// Server-issued tokens in MongooseIM's format (lib/auth/access-tokens.ts): layout, round trip,
// tampering, expiry and the refresh-token sequence number.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  DEFAULT_ACCESS_VALIDITY_SECONDS,
  DEFAULT_REFRESH_VALIDITY_SECONDS,
  GREGORIAN_EPOCH_OFFSET,
  TokenError,
  currentSequenceNo,
  encodeToken,
  isRevoked,
  issueAccessToken,
  issueRefreshToken,
  parseToken,
  serializeToken,
  unixMsToGregorianSeconds,
  verifyToken,
} from '../../lib/auth/access-tokens.ts';

const SECRET = 'tenant token secret';
const NOW = Date.UTC(2026, 0, 1, 12, 0, 0);

function problem(fn: () => unknown, expected: string): void {
  assert.throws(fn, (err: unknown) => err instanceof TokenError && err.problem === expected);
}

describe('token format', () => {
  it('is MongooseIM\'s: fields separated by NUL, expiry in Gregorian seconds, hex HMAC-SHA-384 of the fields', () => {
    const raw = issueRefreshToken('alice@acme.example', SECRET, 7, { now: NOW, validitySeconds: 60 });
    const fields = raw.toString('utf8').split('\0');
    assert.equal(fields.length, 5);
    const [type, jid, expiry, seq, mac] = fields;
    assert.deepEqual([type, jid, seq], ['refresh', 'alice@acme.example', '7']);
    // Erlang's calendar:datetime_to_gregorian_seconds: 719528 days from 0000-01-01 to 1970-01-01, so
    // 2026-01-01T12:00:00Z is 63934488000.
    assert.equal(719_528 * 86_400, GREGORIAN_EPOCH_OFFSET);
    assert.equal(Number(expiry), 63_934_488_000 + 60);
    assert.equal(unixMsToGregorianSeconds(0), GREGORIAN_EPOCH_OFFSET);
    const body = fields.slice(0, 4).join('\0');
    assert.equal(mac, createHmac('sha384', SECRET).update(body).digest('hex'));

    const access = issueAccessToken('alice@acme.example', SECRET, { now: NOW }).toString('utf8').split('\0');
    assert.deepEqual(access.slice(0, 2), ['access', 'alice@acme.example']);
    assert.equal(access.length, 4);
  });

  it('has MongooseIM\'s default lifetimes: 1 hour access, 25 days refresh', () => {
    assert.equal(DEFAULT_ACCESS_VALIDITY_SECONDS, 3600);
    assert.equal(DEFAULT_REFRESH_VALIDITY_SECONDS, 25 * 86400);
    const a = parseToken(issueAccessToken('a@b.example', SECRET, { now: NOW }));
    const r = parseToken(issueRefreshToken('a@b.example', SECRET, 1, { now: NOW }));
    assert.equal(a.expiresAt - unixMsToGregorianSeconds(NOW), 3600);
    assert.equal(r.expiresAt - unixMsToGregorianSeconds(NOW), 25 * 86400);
  });

  it('round-trips through base64, as the IQ and X-OAUTH carry it', () => {
    const raw = issueRefreshToken('bob@acme.example', SECRET, 3, { now: NOW });
    const wire = encodeToken(raw);
    const back = verifyToken(Buffer.from(wire, 'base64'), SECRET, NOW + 1000);
    assert.deepEqual(back, { type: 'refresh', jid: 'bob@acme.example', expiresAt: unixMsToGregorianSeconds(NOW) + 25 * 86400, sequenceNo: 3, local: 'bob', domain: 'acme.example' });
    const access = verifyToken(issueAccessToken('bob@acme.example', SECRET, { now: NOW }), SECRET, NOW);
    assert.equal(access.type, 'access');
    assert.equal(access.sequenceNo, undefined);
  });

  it('accepts a MAC in upper-case hex and a JID with a resource (uses its bare part)', () => {
    const raw = serializeToken({ type: 'access', jid: 'bob@acme.example/phone', expiresAt: unixMsToGregorianSeconds(NOW) + 60 }, SECRET);
    const upper = Buffer.from(raw.toString('latin1').replace(/[0-9a-f]{96}$/, (h) => h.toUpperCase()), 'latin1');
    const t = verifyToken(upper, SECRET, NOW);
    assert.deepEqual([t.local, t.domain], ['bob', 'acme.example']);
  });
});

describe('token checks', () => {
  it('refuses a tampered body or MAC, and another tenant\'s secret', () => {
    const raw = issueAccessToken('alice@acme.example', SECRET, { now: NOW });
    problem(() => verifyToken(Buffer.from(raw.toString('latin1').replace('alice', 'mallo'), 'latin1'), SECRET, NOW), 'bad-mac');
    const flipped = Buffer.from(raw);
    flipped[flipped.length - 1] = flipped[flipped.length - 1] === 0x30 ? 0x31 : 0x30;
    problem(() => verifyToken(flipped, SECRET, NOW), 'bad-mac');
    problem(() => verifyToken(raw, 'another secret', NOW), 'bad-mac');
    // A refresh token's sequence number cannot be raised without the secret.
    const refresh = issueRefreshToken('alice@acme.example', SECRET, 1, { now: NOW });
    problem(() => verifyToken(Buffer.from(refresh.toString('latin1').replace('\x001\x00', '\x009\x00'), 'latin1'), SECRET, NOW), 'bad-mac');
    // Turning a refresh token into an access token by dropping the sequence number.
    const parts = refresh.toString('latin1').split('\0');
    problem(() => verifyToken(Buffer.from(['access', parts[1], parts[2], parts[4]].join('\0'), 'latin1'), SECRET, NOW), 'bad-mac');
  });

  it('refuses an expired token (valid while now < expiry)', () => {
    const raw = issueAccessToken('alice@acme.example', SECRET, { now: NOW, validitySeconds: 60 });
    assert.equal(verifyToken(raw, SECRET, NOW + 59_999).local, 'alice');
    problem(() => verifyToken(raw, SECRET, NOW + 60_000), 'expired');
    const refresh = issueRefreshToken('alice@acme.example', SECRET, 1, { now: NOW });
    problem(() => verifyToken(refresh, SECRET, NOW + 25 * 86400_000), 'expired');
  });

  it('refuses malformed tokens and provision tokens', () => {
    problem(() => verifyToken(Buffer.from('garbage'), SECRET, NOW), 'malformed');
    problem(() => verifyToken(Buffer.from(`access\0a@b\0x1\0${'0'.repeat(96)}`), SECRET, NOW), 'malformed');
    problem(() => verifyToken(Buffer.from(`access\0a@b\0${'1'.repeat(11)}\0${'0'.repeat(95)}`), SECRET, NOW), 'malformed');
    problem(() => verifyToken(Buffer.from(`refresh\0a@b\0${'1'.repeat(11)}\0${'0'.repeat(96)}`), SECRET, NOW), 'malformed');
    problem(() => verifyToken(Buffer.from(`provision\0a@b\0${'1'.repeat(11)}\0<vCard/>\0${'0'.repeat(96)}`), SECRET, NOW), 'unsupported');
    const noLocal = serializeToken({ type: 'access', jid: 'acme.example', expiresAt: unixMsToGregorianSeconds(NOW) + 60 }, SECRET);
    problem(() => verifyToken(noLocal, SECRET, NOW), 'malformed');
  });
});

describe('sequence numbers', () => {
  it('a refresh token is revoked once the user\'s number is above its own; access tokens never are', () => {
    const user = { createdAt: 1_700_000_000_000 };
    assert.equal(currentSequenceNo(user), 1_700_000_000_000);
    const t = verifyToken(issueRefreshToken('a@b.example', SECRET, currentSequenceNo(user), { now: NOW }), SECRET, NOW);
    assert.equal(isRevoked(t, user), false);
    const bumped = { ...user, tokenSeq: currentSequenceNo(user) + 1 };
    assert.equal(isRevoked(t, bumped), true);
    const fresh = verifyToken(issueRefreshToken('a@b.example', SECRET, currentSequenceNo(bumped), { now: NOW }), SECRET, NOW);
    assert.equal(isRevoked(fresh, bumped), false);
    const access = verifyToken(issueAccessToken('a@b.example', SECRET, { now: NOW }), SECRET, NOW);
    assert.equal(isRevoked(access, bumped), false);
  });

  it('a re-created account of the same name starts above every number the old one had', () => {
    const old = { createdAt: 1_700_000_000_000, tokenSeq: 1_700_000_000_005 };
    const recreated = { createdAt: 1_700_000_100_000 };
    const t = verifyToken(issueRefreshToken('a@b.example', SECRET, currentSequenceNo(old), { now: NOW }), SECRET, NOW);
    assert.equal(isRevoked(t, recreated), true);
  });
});
