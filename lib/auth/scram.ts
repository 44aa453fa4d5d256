// Server side of SASL SCRAM (RFC 5802) for SCRAM-SHA-1 and SCRAM-SHA-256 (RFC 7677), and parsing of
// SASL PLAIN (RFC 4616) messages. Pure functions: the caller keeps the state between the two SCRAM round
// trips, decodes base64 and turns a ScramError into <failure><condition/></failure> (RFC 6120 §6.5).
//
// We advertise no -PLUS mechanism, so channel binding is never in use (RFC 5802 §6).

import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import saslprep from '@mongodb-js/saslprep';

export type ScramHash = 'SHA-1' | 'SHA-256';

export type { ScramCredentials } from '../store/users.ts';
import type { ScramCredentials } from '../store/users.ts';

/** The SASL failure conditions of RFC 6120 §6.5 that authentication code can report. */
export type ScramCondition =
  | 'malformed-request'
  | 'not-authorized'
  | 'invalid-authzid'
  | 'incorrect-encoding'
  | 'encryption-required'
  | 'temporary-auth-failure';

export class ScramError extends Error {
  override name = 'ScramError';
  constructor(
    readonly condition: ScramCondition,
    message: string = condition,
  ) {
    super(message);
  }
}

export interface ClientFirst {
  gs2Header: string;
  authzid?: string;
  username: string;
  clientNonce: string;
  clientFirstBare: string;
}

export interface ScramState {
  gs2Header: string;
  clientFirstBare: string;
  serverFirstMessage: string;
  nonce: string;
}

// RFC 7677 §4 recommends at least 4096 iterations.
export const DEFAULT_ITERATIONS = 4096;
const SALT_BYTES = 16;

const DIGEST = { 'SHA-1': 'sha1', 'SHA-256': 'sha256' } as const;
const DIGEST_BYTES = { 'SHA-1': 20, 'SHA-256': 32 } as const;

// --- credentials -------------------------------------------------------------------------------------------

/**
 * Derives what the server stores for a password (RFC 5802 §3): StoredKey = H(HMAC(SaltedPassword, "Client Key")),
 * ServerKey = HMAC(SaltedPassword, "Server Key"), SaltedPassword = Hi(Normalize(password), salt, i).
 */
export function deriveScramCredentials(
  hash: ScramHash,
  password: string,
  salt: Buffer = randomBytes(SALT_BYTES),
  iterations = DEFAULT_ITERATIONS,
): ScramCredentials {
  const normalized = normalizePassword(password);
  if (normalized === null || normalized === '') {
    throw new ScramError('malformed-request', 'password is empty or contains characters SASLprep prohibits');
  }
  const keys = scramKeys(hash, normalized, salt, iterations);
  return {
    salt: salt.toString('base64'),
    iterations,
    storedKey: keys.storedKey.toString('base64'),
    serverKey: keys.serverKey.toString('base64'),
  };
}

/** Checks a cleartext password (SASL PLAIN) against stored SCRAM credentials, in constant time. */
export function verifyPassword(hash: ScramHash, creds: ScramCredentials, password: string): boolean {
  const normalized = normalizePassword(password);
  if (normalized === null || normalized === '') return false;
  const { storedKey } = scramKeys(hash, normalized, Buffer.from(creds.salt, 'base64'), creds.iterations);
  return safeEqual(storedKey, Buffer.from(creds.storedKey, 'base64'));
}

/**
 * A salt for a user that does not exist, the same on every attempt, so that the server-first message does not
 * tell an attacker which accounts exist (RFC 5802 §9 "Security Considerations"). Use it with the default
 * iteration count and random keys: the proof then fails with not-authorized like a wrong password.
 */
export function fakeScramSalt(serverSecret: Buffer, username: string): string {
  return createHmac('sha256', serverSecret)
    .update(`scram-fake-salt\0${username}`)
    .digest()
    .subarray(0, SALT_BYTES)
    .toString('base64');
}

// RFC 5802 §2.2 Normalize(): SASLprep (RFC 4013) treating the string as a "query", so unassigned code points
// are allowed. Returns null when SASLprep refuses the string (prohibited characters, bidi rules).
function normalizePassword(password: string): string | null {
  try {
    return saslprep(password, { allowUnassigned: true });
  } catch {
    return null;
  }
}

function scramKeys(hash: ScramHash, password: string, salt: Buffer, iterations: number) {
  // RFC 5802 §2.2: Hi() is PBKDF2 with HMAC as the PRF and the hash's output length.
  const saltedPassword = pbkdf2Sync(password, salt, iterations, DIGEST_BYTES[hash], DIGEST[hash]);
  const clientKey = hmac(hash, saltedPassword, 'Client Key');
  return {
    clientKey,
    storedKey: createHash(DIGEST[hash]).update(clientKey).digest(),
    serverKey: hmac(hash, saltedPassword, 'Server Key'),
  };
}

// --- the exchange ------------------------------------------------------------------------------------------

/**
 * Parses client-first-message by the grammar of RFC 5802 §7 and refuses what it forbids:
 *   client-first-message = gs2-header client-first-message-bare
 *   gs2-header           = gs2-cbind-flag "," [ "a=" saslname ] ","
 *   client-first-message-bare = [reserved-mext ","] "n=" saslname "," "r=" c-nonce ["," extensions]
 *   extensions           = attr-val *("," attr-val);  attr-val = ALPHA "=" 1*value-char
 * The username comes back as sent; in XMPP it is a localpart, which the caller prepares as one
 * (RFC 6120 §6.3.7, RFC 7622 §3.3) before looking the account up.
 */
export function parseClientFirst(message: string): ClientFirst {
  const first = message.indexOf(',');
  const second = message.indexOf(',', first + 1);
  if (first === -1 || second === -1) throw malformed('missing GS2 header');
  const cbindFlag = message.slice(0, first);
  const authzidField = message.slice(first + 1, second);
  const gs2Header = message.slice(0, second + 1);
  const clientFirstBare = message.slice(second + 1);

  // RFC 5802 §6: "n" (no channel binding) and "y" (client could bind but thinks we cannot) are fine since
  // we offer no -PLUS mechanism; "p=" asks for binding on a mechanism that has none.
  if (cbindFlag.startsWith('p=')) throw malformed('channel binding requested but no -PLUS mechanism was offered');
  if (cbindFlag !== 'n' && cbindFlag !== 'y') throw malformed('invalid GS2 channel-binding flag');

  let authzid: string | undefined;
  if (authzidField !== '') {
    if (!authzidField.startsWith('a=')) throw malformed('invalid GS2 authzid');
    authzid = decodeSaslname(authzidField.slice(2));
  }

  const [usernameAttr, nonceAttr, ...extensions] = clientFirstBare.split(',');
  // RFC 5802 §5.1: "m" is reserved for mandatory extensions; its presence MUST fail the authentication.
  if (usernameAttr?.startsWith('m=')) throw extensionsNotSupported();
  if (!usernameAttr?.startsWith('n=')) throw malformed('missing username (n=)');
  if (!nonceAttr?.startsWith('r=')) throw malformed('missing nonce (r=)');
  const username = decodeSaslname(usernameAttr.slice(2));
  const clientNonce = nonceAttr.slice(2);
  if (!isPrintable(clientNonce)) throw malformed('invalid client nonce');
  for (const extension of extensions) checkOptionalExtension(extension);

  const parsed: ClientFirst = { gs2Header, username, clientNonce, clientFirstBare };
  if (authzid !== undefined) parsed.authzid = authzid;
  return parsed;
}

// The attributes RFC 5802 §5.1 defines: each has its fixed place, so none may appear as an extension.
const DEFINED_ATTRIBUTES = new Set(['a', 'n', 'm', 'r', 'c', 's', 'i', 'p', 'v', 'e']);

/**
 * One attr-val of the optional "extensions" (RFC 5802 §7): unrecognized ones MUST be ignored, but the
 * syntax must hold, and "m" anywhere fails the authentication (§5.1).
 */
function checkOptionalExtension(attrVal: string): void {
  const m = /^([A-Za-z])=(.+)$/s.exec(attrVal);
  if (!m || m[2].includes('\0')) throw malformed(`invalid extension attribute "${attrVal.slice(0, 20)}"`);
  if (m[1] === 'm') throw extensionsNotSupported();
  if (DEFINED_ATTRIBUTES.has(m[1])) throw malformed(`attribute ${m[1]}= out of its place`);
}

/**
 * RFC 5802 §7 names this case server-error "extensions-not-supported", a value of server-final-message,
 * which a failed client-first never reaches. RFC 6120 §6.5 has no SCRAM mapping; §6.5.8
 * <malformed-request/> ("the data sent violates the syntax for the specified SASL mechanism") fits a
 * message this version of SCRAM may not send, and unlike <not-authorized/> (§6.5.10) it says nothing
 * about credentials, so it is not counted as a guess. The SCRAM error name goes in the text.
 */
function extensionsNotSupported(): ScramError {
  return malformed('extensions-not-supported: mandatory extension (m=) is not supported (RFC 5802 §5.1)');
}

/**
 * Decodes a SCRAM message: RFC 5802 §7 defines the messages over UTF-8, and a lenient decoder would
 * turn bad bytes into U+FFFD, silently changing a username.
 */
export function decodeScramMessage(message: Buffer): string {
  try {
    return utf8.decode(message);
  } catch {
    throw malformed('SCRAM message is not UTF-8');
  }
}

/** Builds server-first-message (RFC 5802 §7): r=client-nonce+server-nonce,s=salt,i=iteration-count. */
export function createServerFirst(
  clientFirst: Pick<ClientFirst, 'clientNonce'>,
  creds: Pick<ScramCredentials, 'salt' | 'iterations'>,
  serverNonce: string = randomBytes(18).toString('base64'),
): { serverFirstMessage: string; nonce: string } {
  const nonce = clientFirst.clientNonce + serverNonce;
  return { serverFirstMessage: `r=${nonce},s=${creds.salt},i=${creds.iterations}`, nonce };
}

/**
 * Checks client-final-message (RFC 5802 §7: channel-binding "," nonce ["," extensions] "," proof) and
 * returns server-final-message "v=ServerSignature" (RFC 5802 §3).
 */
export function verifyClientFinal(
  hash: ScramHash,
  clientFinalMessage: string,
  state: ScramState,
  creds: ScramCredentials,
): { serverFinalMessage: string } {
  const proofAt = clientFinalMessage.lastIndexOf(',p=');
  if (proofAt === -1) throw malformed('missing proof (p=)');
  const withoutProof = clientFinalMessage.slice(0, proofAt);
  const [cbindAttr, nonceAttr] = withoutProof.split(',');

  // Without channel binding, c= carries the GS2 header back unchanged (RFC 5802 §7, cbind-input).
  if (!cbindAttr?.startsWith('c=')) throw malformed('missing channel binding (c=)');
  const cbind = decodeBase64(cbindAttr.slice(2));
  if (cbind === null || !safeEqual(cbind, Buffer.from(state.gs2Header, 'utf8'))) {
    throw malformed('channel binding does not match the GS2 header');
  }
  if (!nonceAttr?.startsWith('r=')) throw malformed('missing nonce (r=)');
  if (!safeEqual(Buffer.from(nonceAttr.slice(2), 'utf8'), Buffer.from(state.nonce, 'utf8'))) {
    throw malformed('nonce mismatch');
  }
  const proof = decodeBase64(clientFinalMessage.slice(proofAt + 3));
  if (proof === null || proof.length !== DIGEST_BYTES[hash]) throw malformed('invalid proof');

  // RFC 5802 §3: ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage); the proof is right when
  // H(ClientKey) equals StoredKey.
  const authMessage = `${state.clientFirstBare},${state.serverFirstMessage},${withoutProof}`;
  const storedKey = Buffer.from(creds.storedKey, 'base64');
  const clientSignature = hmac(hash, storedKey, authMessage);
  const clientKey = Buffer.alloc(proof.length);
  for (let i = 0; i < proof.length; i++) clientKey[i] = proof[i] ^ clientSignature[i];
  if (!safeEqual(createHash(DIGEST[hash]).update(clientKey).digest(), storedKey)) {
    throw new ScramError('not-authorized', 'invalid proof');
  }

  const serverSignature = hmac(hash, Buffer.from(creds.serverKey, 'base64'), authMessage);
  return { serverFinalMessage: `v=${serverSignature.toString('base64')}` };
}

// --- SASL PLAIN --------------------------------------------------------------------------------------------

// RFC 4616 §2 requires accepting at least 255 octets per field; we accept up to a JID part (RFC 7622 §3.1)
// and, for the authzid, a whole full JID.
const MAX_PLAIN_FIELD = 1023;
const MAX_PLAIN_AUTHZID = 3 * 1023 + 2;

/** Parses a SASL PLAIN message (RFC 4616 §2): [authzid] NUL authcid NUL passwd. */
export function parsePlainMessage(message: Buffer): { authzid: string; authcid: string; password: string } {
  const fields: Buffer[] = [];
  let start = 0;
  for (let nul = message.indexOf(0); nul !== -1; nul = message.indexOf(0, start)) {
    fields.push(message.subarray(start, nul));
    start = nul + 1;
  }
  fields.push(message.subarray(start));
  if (fields.length !== 3) throw malformed('PLAIN message must contain exactly two NUL separators');
  const [authzid, authcid, password] = fields as [Buffer, Buffer, Buffer];
  if (authcid.length === 0 || password.length === 0) throw malformed('empty PLAIN authcid or password');
  if (authcid.length > MAX_PLAIN_FIELD || password.length > MAX_PLAIN_FIELD || authzid.length > MAX_PLAIN_AUTHZID) {
    throw malformed('PLAIN field too long');
  }
  return { authzid: decodeUtf8(authzid), authcid: decodeUtf8(authcid), password: decodeUtf8(password) };
}

// --- helpers -----------------------------------------------------------------------------------------------

function malformed(message: string): ScramError {
  return new ScramError('malformed-request', message);
}

function hmac(hash: ScramHash, key: Buffer, data: string): Buffer {
  return createHmac(DIGEST[hash], key).update(data, 'utf8').digest();
}

// Constant time for equal lengths; a length difference is not secret here.
function safeEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

// RFC 5802 §5.1: in a saslname, "=2C" stands for "," and "=3D" for "="; any other "=" is an error.
function decodeSaslname(s: string): string {
  if (s === '' || s.includes('\0')) throw malformed('empty saslname or NUL in saslname');
  if (/=(?!2C|3D)/.test(s)) throw malformed('invalid "=" escape in saslname');
  return s.replaceAll('=2C', ',').replaceAll('=3D', '=');
}

// RFC 5802 §7: printable = %x21-2B / %x2D-7E (visible ASCII except ",").
function isPrintable(s: string): boolean {
  return /^[\x21-\x2B\x2D-\x7E]+$/.test(s);
}

function decodeBase64(s: string): Buffer | null {
  // Buffer.from() skips invalid characters silently, so check the syntax first (RFC 5802 §7 base64-char).
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(s)) return null;
  return Buffer.from(s, 'base64');
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
function decodeUtf8(b: Buffer): string {
  try {
    return utf8.decode(b);
  } catch {
    throw malformed('PLAIN message is not UTF-8');
  }
}
