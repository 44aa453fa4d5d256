// Short-lived TURN credentials in the shared-secret scheme of the TURN REST API draft
// (draft-uberti-behave-turn-rest-00 §2.2), which coturn checks with `use-auth-secret`: the username
// is "<expiry in Unix seconds>:<user id>", the password base64(HMAC-SHA1(secret, username)). The
// TURN server needs no call back to us: it recomputes the password and refuses expired usernames.
import { createHmac } from 'node:crypto';

export interface TurnCredentials {
  username: string;
  password: string;
  /** Unix seconds after which the TURN server refuses the username. */
  expiresAt: number;
}

/** §2.2: temporary-password = base64_encode(hmac-sha1(shared-secret, temporary-username)). */
export function turnPassword(secret: string, username: string): string {
  return createHmac('sha1', Buffer.from(secret, 'utf8')).update(username, 'utf8').digest('base64');
}

/** Credentials for `userId` (the bare JID) valid `ttlSeconds` from `nowMs`. */
export function turnCredentials(secret: string, userId: string, nowMs: number, ttlSeconds: number): TurnCredentials {
  const expiresAt = Math.floor(nowMs / 1000) + ttlSeconds;
  const username = `${expiresAt}:${userId}`;
  return { username, password: turnPassword(secret, username), expiresAt };
}

/** XEP-0082 §3.2 DateTime in UTC, whole seconds (XEP-0215 §2: `expires` "MUST be expressed in UTC"). */
export function xep0082DateTime(unixSeconds: number): string {
  return new Date(unixSeconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}
