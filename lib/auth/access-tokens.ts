// Server-issued tokens in MongooseIM's format (mod_auth_token; doc/modules/mod_auth_token.md), so
// clients written for MongooseIM's token reconnection work unchanged:
//
//   access:  'access'  \0 <BARE_JID> \0 <EXPIRES_AT> \0 <MAC>
//   refresh: 'refresh' \0 <BARE_JID> \0 <EXPIRES_AT> \0 <SEQUENCE_NO> \0 <MAC>
//
// - EXPIRES_AT is in Gregorian seconds (seconds since 0000-01-01T00:00Z, Erlang's
//   calendar:datetime_to_gregorian_seconds), i.e. Unix seconds + 62167219200; a token is valid
//   while now < EXPIRES_AT.
// - MAC is HMAC-SHA-384 over everything before the last \0, with the tenant's `tokens.secret`
//   (MongooseIM keeps one `token_secret` per host in mod_keystore), written as lowercase hex.
// - On the wire (the IQ's <access_token/>/<refresh_token/>, the X-OAUTH <auth/>, the new access
//   token in <success/>) a token is the base64 of these bytes; SASL's own base64 is that same text.
// - Default lifetimes as MongooseIM: access 1 hour, refresh 25 days.
// - Refresh tokens carry the user's token sequence number; a refresh token is valid while its
//   number is >= the user's current one, so bumping it (revokeTokens) revokes every refresh token
//   issued so far. Access tokens cannot be revoked (they are short-lived), as in MongooseIM.
//   The current number is kept on the user item (`tokenSeq`); before the first revocation it is the
//   account's creation time in ms, so tokens of a deleted account never open a later account of the
//   same name (MongooseIM starts every owner at 1).
// - Provision tokens (account creation from an external service) are not supported.
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { UserRecord, UserStore } from '../store/users.ts';
import { JIDError, parseJID } from '../xmpp/jid.ts';

export type TokenType = 'access' | 'refresh';

/** Seconds from 0000-01-01 to 1970-01-01 in the proleptic Gregorian calendar (Erlang's epoch). */
export const GREGORIAN_EPOCH_OFFSET = 62_167_219_200;
export const DEFAULT_ACCESS_VALIDITY_SECONDS = 60 * 60;
export const DEFAULT_REFRESH_VALIDITY_SECONDS = 25 * 24 * 60 * 60;
const SEP = 0;
const MAC_HEX_LENGTH = 96; // SHA-384

export interface TokenClaims {
  type: TokenType;
  /** The owner's bare JID, as written in the token. */
  jid: string;
  /** Expiry in Gregorian seconds, as written in the token. */
  expiresAt: number;
  /** Refresh tokens only. */
  sequenceNo?: number;
}

export interface VerifiedToken extends TokenClaims {
  local: string;
  domain: string;
}

export type TokenProblem = 'malformed' | 'bad-mac' | 'expired' | 'unsupported';

export class TokenError extends Error {
  constructor(
    readonly problem: TokenProblem,
    message: string,
  ) {
    super(message);
    this.name = 'TokenError';
  }
}

export function unixMsToGregorianSeconds(ms: number): number {
  return Math.floor(ms / 1000) + GREGORIAN_EPOCH_OFFSET;
}

export function gregorianSecondsToUnixMs(seconds: number): number {
  return (seconds - GREGORIAN_EPOCH_OFFSET) * 1000;
}

function mac(body: Buffer, secret: string): Buffer {
  return createHmac('sha384', Buffer.from(secret, 'utf8')).update(body).digest();
}

/** The token's bytes: its fields, then the hex MAC of those fields. */
export function serializeToken(claims: TokenClaims, secret: string): Buffer {
  const fields = [claims.type, claims.jid, String(claims.expiresAt)];
  if (claims.type === 'refresh') {
    if (!Number.isSafeInteger(claims.sequenceNo)) throw new Error('a refresh token needs a sequence number');
    fields.push(String(claims.sequenceNo));
  }
  const body = Buffer.from(fields.join('\0'), 'utf8');
  return Buffer.concat([body, Buffer.from([SEP]), Buffer.from(mac(body, secret).toString('hex'), 'ascii')]);
}

/** What a client is given: base64 of the token's bytes. */
export function encodeToken(raw: Buffer): string {
  return raw.toString('base64');
}

export interface IssueOptions {
  /** Unix ms. */
  now?: number;
  validitySeconds?: number;
}

export function issueAccessToken(bareJid: string, secret: string, opts: IssueOptions = {}): Buffer {
  const expiresAt = unixMsToGregorianSeconds(opts.now ?? Date.now()) + (opts.validitySeconds ?? DEFAULT_ACCESS_VALIDITY_SECONDS);
  return serializeToken({ type: 'access', jid: bareJid, expiresAt }, secret);
}

export function issueRefreshToken(bareJid: string, secret: string, sequenceNo: number, opts: IssueOptions = {}): Buffer {
  const expiresAt = unixMsToGregorianSeconds(opts.now ?? Date.now()) + (opts.validitySeconds ?? DEFAULT_REFRESH_VALIDITY_SECONDS);
  return serializeToken({ type: 'refresh', jid: bareJid, expiresAt, sequenceNo }, secret);
}

/** Splits a token's bytes into its fields, the signed body and the MAC; checks only the shape. */
export function parseToken(raw: Buffer): TokenClaims & { body: Buffer; mac: Buffer } {
  const last = raw.lastIndexOf(SEP);
  if (last <= 0) throw new TokenError('malformed', 'no MAC separator');
  const body = raw.subarray(0, last);
  const macHex = raw.subarray(last + 1).toString('latin1');
  if (macHex.length !== MAC_HEX_LENGTH || !/^[0-9a-fA-F]+$/.test(macHex)) throw new TokenError('malformed', 'MAC is not 48 bytes of hex');
  const fields = body.toString('utf8').split('\0');
  const [type, jid, expiry, seq] = fields;
  if (type === 'provision') throw new TokenError('unsupported', 'provision tokens are not supported');
  if (type !== 'access' && type !== 'refresh') throw new TokenError('malformed', `unknown token type ${JSON.stringify(type)}`);
  if (fields.length !== (type === 'access' ? 3 : 4)) throw new TokenError('malformed', `wrong number of fields for ${type}`);
  if (!/^\d{1,15}$/.test(expiry)) throw new TokenError('malformed', 'expiry is not an integer');
  if (type === 'refresh' && !/^\d{1,15}$/.test(seq)) throw new TokenError('malformed', 'sequence number is not an integer');
  return {
    type,
    jid,
    expiresAt: Number(expiry),
    ...(type === 'refresh' ? { sequenceNo: Number(seq) } : {}),
    body,
    mac: Buffer.from(macHex, 'hex'),
  };
}

/**
 * Checks a token's MAC with the tenant's secret and its expiry; returns its owner. Does not check
 * revocation (that needs the user's sequence number: isRevoked) nor that the owner is in the tenant.
 */
export function verifyToken(raw: Buffer, secret: string, now = Date.now()): VerifiedToken {
  const t = parseToken(raw);
  const expected = mac(t.body, secret);
  if (!timingSafeEqual(expected, t.mac)) throw new TokenError('bad-mac', 'MAC does not match');
  if (unixMsToGregorianSeconds(now) >= t.expiresAt) throw new TokenError('expired', `expired at ${new Date(gregorianSecondsToUnixMs(t.expiresAt)).toISOString()}`);
  let owner;
  try {
    // MongooseIM writes the bare JID; a resource, if some issuer added one, is ignored.
    owner = parseJID(t.jid);
  } catch (err) {
    if (err instanceof JIDError) throw new TokenError('malformed', `bad JID ${JSON.stringify(t.jid)}`);
    throw err;
  }
  if (!owner.local) throw new TokenError('malformed', 'the token names no user');
  const { body: _b, mac: _m, ...claims } = t;
  return { ...claims, local: owner.local, domain: owner.domain };
}

/** The user's current refresh-token sequence number (see the header). */
export function currentSequenceNo(user: Pick<UserRecord, 'tokenSeq' | 'createdAt'>): number {
  return user.tokenSeq ?? user.createdAt ?? 0;
}

/** Is a verified refresh token revoked for this user? (MongooseIM: TokenSeqNo < ValidSeqNo.) */
export function isRevoked(token: TokenClaims, user: Pick<UserRecord, 'tokenSeq' | 'createdAt'>): boolean {
  return token.type === 'refresh' && (token.sequenceNo ?? -1) < currentSequenceNo(user);
}

/**
 * Revokes every refresh token issued to user@domain so far (MongooseIM `revoke_token`): bumps the
 * user's sequence number. Access tokens stay valid until they expire. Returns false if there is no
 * such user. For the admin API and CLI.
 */
export async function revokeTokens(users: UserStore, domain: string, username: string): Promise<boolean> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const user = await users.get(domain, username);
    if (!user) return false;
    const next = currentSequenceNo(user) + 1;
    if (await users.setTokenSequence(domain, username, next, user.tokenSeq)) return true;
  }
  throw new Error(`could not revoke the tokens of ${username}@${domain}: concurrent updates`);
}
