// Webhook request signatures (docs/architecture.md "Webhooks"): the scheme Stripe and Slack use. Every
// POST carries the time it was signed and an HMAC-SHA256 over that time and the exact body bytes:
//
//   X-XMPP-Edge-Timestamp: <unix seconds>
//   X-XMPP-Edge-Signature: sha256=<lower-case hex HMAC-SHA256(secret, timestamp + "." + body)>
//
// A receiver recomputes the HMAC with the shared secret, compares in constant time, and refuses a
// timestamp outside its tolerance window (default 5 minutes), so a captured request cannot be replayed
// later. Retries are signed again with their own timestamp.
import { createHmac, timingSafeEqual } from 'node:crypto';

export const TIMESTAMP_HEADER = 'X-XMPP-Edge-Timestamp';
export const SIGNATURE_HEADER = 'X-XMPP-Edge-Signature';
/** How far a signed timestamp may be from the receiver's clock, either way. */
export const DEFAULT_TOLERANCE_SECONDS = 300;

const PREFIX = 'sha256=';

/** The signature header value for `body` signed at `timestamp` (unix seconds). */
export function signature(secret: string, timestamp: number, body: string | Uint8Array): string {
  const mac = createHmac('sha256', secret);
  mac.update(`${timestamp}.`);
  mac.update(body);
  return PREFIX + mac.digest('hex');
}

/** The two headers to add to a POST of `body`, signed at `nowMs`. */
export function signedHeaders(secret: string, body: string | Uint8Array, nowMs: number): Record<string, string> {
  const timestamp = Math.floor(nowMs / 1000);
  return { [TIMESTAMP_HEADER]: String(timestamp), [SIGNATURE_HEADER]: signature(secret, timestamp, body) };
}

export type VerifyResult = { ok: true; timestamp: number } | { ok: false; reason: 'missing' | 'malformed' | 'expired' | 'mismatch' };

/**
 * Checks a request's signature. `headers` may be Node's IncomingHttpHeaders (lower-case names) or any
 * record; `body` must be the raw body bytes as received, not re-serialized JSON.
 */
export function verify(
  secret: string,
  headers: Record<string, string | string[] | undefined>,
  body: string | Uint8Array,
  opts: { nowMs?: number; toleranceSeconds?: number } = {},
): VerifyResult {
  const ts = header(headers, TIMESTAMP_HEADER);
  const sig = header(headers, SIGNATURE_HEADER);
  if (ts === undefined || sig === undefined) return { ok: false, reason: 'missing' };
  if (!/^\d{1,12}$/.test(ts) || !/^sha256=[0-9a-f]{64}$/.test(sig)) return { ok: false, reason: 'malformed' };
  const timestamp = Number(ts);
  const now = Math.floor((opts.nowMs ?? Date.now()) / 1000);
  if (Math.abs(now - timestamp) > (opts.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS)) return { ok: false, reason: 'expired' };
  const expected = Buffer.from(signature(secret, timestamp, body));
  const given = Buffer.from(sig);
  // Equal lengths are guaranteed by the format check above; timingSafeEqual needs them.
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) return { ok: false, reason: 'mismatch' };
  return { ok: true, timestamp };
}

function header(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const lower = name.toLowerCase();
  for (const [k, v] of Object.entries(headers)) {
    if (k.toLowerCase() !== lower) continue;
    return Array.isArray(v) ? v[0] : v;
  }
  return undefined;
}
