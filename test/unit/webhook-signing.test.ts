// Webhook signatures (lib/webhooks/signing.ts): what a receiver accepts and refuses.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { test } from 'node:test';
import { SIGNATURE_HEADER, TIMESTAMP_HEADER, signature, signedHeaders, verify } from '../../lib/webhooks/signing.ts';

const SECRET = 'whsec-test';
const NOW = 1_780_000_000_000;
const BODY = '{"events":[{"kind":"message/sent"}]}';

test('the signature is sha256= and the hex HMAC-SHA256 of "<timestamp>.<body>" (documented for receivers)', () => {
  const expected = createHmac('sha256', SECRET).update(`1780000000.${BODY}`).digest('hex');
  assert.equal(signature(SECRET, 1780000000, BODY), `sha256=${expected}`);
  assert.deepEqual(signedHeaders(SECRET, BODY, NOW), { [TIMESTAMP_HEADER]: '1780000000', [SIGNATURE_HEADER]: `sha256=${expected}` });
});

test('a signed request verifies, with header names in any case (Node lower-cases them)', () => {
  const h = signedHeaders(SECRET, BODY, NOW);
  const lower = Object.fromEntries(Object.entries(h).map(([k, v]) => [k.toLowerCase(), v]));
  assert.deepEqual(verify(SECRET, h, BODY, { nowMs: NOW }), { ok: true, timestamp: 1780000000 });
  assert.deepEqual(verify(SECRET, lower, Buffer.from(BODY), { nowMs: NOW + 1000 }), { ok: true, timestamp: 1780000000 });
});

test('a changed body, another secret or a changed timestamp is a mismatch', () => {
  const h = signedHeaders(SECRET, BODY, NOW);
  assert.deepEqual(verify(SECRET, h, BODY.replace('sent', 'sen'), { nowMs: NOW }), { ok: false, reason: 'mismatch' });
  assert.deepEqual(verify('other', h, BODY, { nowMs: NOW }), { ok: false, reason: 'mismatch' });
  assert.deepEqual(verify(SECRET, { ...h, [TIMESTAMP_HEADER]: '1780000001' }, BODY, { nowMs: NOW }), { ok: false, reason: 'mismatch' });
});

test('a replay outside the tolerance window (default 5 minutes, either way) is refused', () => {
  const h = signedHeaders(SECRET, BODY, NOW);
  assert.equal(verify(SECRET, h, BODY, { nowMs: NOW + 300_000 }).ok, true);
  assert.deepEqual(verify(SECRET, h, BODY, { nowMs: NOW + 301_000 }), { ok: false, reason: 'expired' });
  assert.deepEqual(verify(SECRET, h, BODY, { nowMs: NOW - 301_000 }), { ok: false, reason: 'expired' });
  assert.equal(verify(SECRET, h, BODY, { nowMs: NOW + 3_600_000, toleranceSeconds: 3600 }).ok, true);
});

test('missing or malformed headers are refused before any comparison', () => {
  const h = signedHeaders(SECRET, BODY, NOW);
  assert.deepEqual(verify(SECRET, {}, BODY, { nowMs: NOW }), { ok: false, reason: 'missing' });
  assert.deepEqual(verify(SECRET, { [TIMESTAMP_HEADER]: h[TIMESTAMP_HEADER] }, BODY, { nowMs: NOW }), { ok: false, reason: 'missing' });
  assert.deepEqual(verify(SECRET, { ...h, [SIGNATURE_HEADER]: h[SIGNATURE_HEADER].slice(0, -2) }, BODY, { nowMs: NOW }), { ok: false, reason: 'malformed' });
  assert.deepEqual(verify(SECRET, { ...h, [SIGNATURE_HEADER]: h[SIGNATURE_HEADER].replace('sha256=', 'sha1=') }, BODY, { nowMs: NOW }), { ok: false, reason: 'malformed' });
  assert.deepEqual(verify(SECRET, { ...h, [TIMESTAMP_HEADER]: '17e8' }, BODY, { nowMs: NOW }), { ok: false, reason: 'malformed' });
});
