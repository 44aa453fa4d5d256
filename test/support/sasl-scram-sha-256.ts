// Client side of SCRAM-SHA-256 (RFC 7677, the SHA-256 instance of RFC 5802) for xmpp.js 0.14 tests.
//
// xmpp.js 0.14 ships PLAIN, SCRAM-SHA-1 and ANONYMOUS only. This is an independent client implementation
// (it shares no code with lib/auth/scram.ts) in the shape the `saslmechanisms` factory expects, the same
// shape as the `sasl-scram-sha-1` package: `name`, `clientFirst`, `response(cred)`, `challenge(chal)`.
//
// How xmpp.js chooses a mechanism (node_modules/@xmpp/sasl/index.js, @xmpp/client/lib/createOnAuthenticate.js):
// - getAvailableMechanisms() keeps the mechanisms that are both offered by the server and registered in
//   `xmpp.saslFactory`, in the factory's order (SCRAM-SHA-1, PLAIN, ANONYMOUS), not the server's.
// - With `{ username, password }` credentials, getMechanism() takes the first of those on a secure transport
//   (wss://) and the first that is not PLAIN otherwise, so PLAIN is never chosen over ws:// when SCRAM is
//   offered; if PLAIN is the only choice on ws://, it picks nothing and authentication throws.
// - With `credentials` given as a function, xmpp.js calls it as `credentials(authenticate, mechanisms, fast,
//   entity)` on every (re)connect (for SASL and SASL2 alike) and skips getMechanism(): the function picks
//   the mechanism itself by calling `authenticate({ username, password }, mechanismName)`.
// So a test forces one mechanism with the credentials function that authenticateWith() builds:
//
//   const xmpp = client({ service, domain, credentials: authenticateWith('SCRAM-SHA-256', { username, password }) });
//   useScramSha256(xmpp); // only needed for SCRAM-SHA-256
//
// This works for PLAIN over ws:// too, and fails clearly when the server does not offer the mechanism.
// (Filtering `xmpp.saslFactory._mechs` after construction cannot force PLAIN over ws://, see above.)

import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import saslprep from '@mongodb-js/saslprep';

export type MechanismName = 'PLAIN' | 'SCRAM-SHA-1' | 'SCRAM-SHA-256';

interface Credentials {
  username: string;
  password: string;
  authzid?: string;
}

/** The part of an xmpp.js client this file touches: its `saslmechanisms` factory. */
export interface XmppClientWithSasl {
  saslFactory: { _mechs: Array<{ name: string; mech: unknown }> };
}

const NAME = 'SCRAM-SHA-256';

export class ScramSha256Mechanism {
  readonly name = NAME;
  readonly clientFirst = true;

  #stage: 'initial' | 'challenge' | 'final' | 'done' = 'initial';
  #clientNonce: string;
  #gs2Header = '';
  #clientFirstBare = '';
  #serverFirst = '';
  #serverSignature: Buffer | null = null;

  /** `nonce` fixes the client nonce, for replaying RFC 7677 §3; it is random otherwise. */
  constructor(options: { nonce?: string } = {}) {
    this.#clientNonce = options.nonce ?? randomBytes(18).toString('base64');
  }

  // xmpp.js base64-encodes what we return with btoa(), which takes a "binary string" (one char per byte), and
  // hands us atob() output: UTF-8 goes through latin1 in both directions.
  response(cred: Credentials): string {
    if (this.#stage === 'initial') return toBinary(this.#first(cred));
    if (this.#stage === 'final') return toBinary(this.#final(cred));
    return '';
  }

  challenge(chal: string): this {
    const message = fromBinary(chal);
    if (this.#stage === 'challenge') {
      this.#serverFirst = message;
      this.#stage = 'final';
    } else if (this.#stage === 'done') {
      // Some servers send server-final as a <challenge> rather than inside <success> (RFC 6120 §6.4.6).
      this.verifyServerFinal(message);
    }
    return this;
  }

  /** Checks server-final-message "v=..." (RFC 5802 §3); throws if the server does not know the password. */
  verifyServerFinal(message: string): void {
    const attrs = attributes(message);
    const v = attrs.get('v');
    if (attrs.has('e')) throw new Error(`SCRAM: server error ${attrs.get('e')}`);
    if (this.#serverSignature === null || v === undefined) throw new Error(`SCRAM: unexpected server-final ${message}`);
    const got = Buffer.from(v, 'base64');
    if (got.length !== this.#serverSignature.length || !timingSafeEqual(got, this.#serverSignature)) {
      throw new Error('SCRAM: server signature mismatch');
    }
  }

  // RFC 5802 §7: client-first-message = gs2-header client-first-message-bare.
  #first(cred: Credentials): string {
    this.#gs2Header = cred.authzid ? `n,a=${saslname(cred.authzid)},` : 'n,,';
    this.#clientFirstBare = `n=${saslname(cred.username)},r=${this.#clientNonce}`;
    this.#stage = 'challenge';
    return this.#gs2Header + this.#clientFirstBare;
  }

  // RFC 5802 §3: ClientProof = ClientKey XOR HMAC(H(ClientKey), AuthMessage).
  #final(cred: Credentials): string {
    const attrs = attributes(this.#serverFirst);
    const nonce = attrs.get('r') ?? '';
    const salt = Buffer.from(attrs.get('s') ?? '', 'base64');
    const iterations = Number(attrs.get('i'));
    if (!nonce.startsWith(this.#clientNonce) || nonce === this.#clientNonce) throw new Error('SCRAM: bad server nonce');
    if (!Number.isInteger(iterations) || iterations < 1 || salt.length === 0) throw new Error('SCRAM: bad server-first');

    // RFC 5802 §2.2: Normalize(password) is SASLprep (RFC 4013).
    const saltedPassword = pbkdf2Sync(saslprep(cred.password), salt, iterations, 32, 'sha256');
    const clientKey = hmac(saltedPassword, 'Client Key');
    const withoutProof = `c=${Buffer.from(this.#gs2Header).toString('base64')},r=${nonce}`;
    const authMessage = `${this.#clientFirstBare},${this.#serverFirst},${withoutProof}`;
    const clientSignature = hmac(createHash('sha256').update(clientKey).digest(), authMessage);
    const proof = Buffer.from(clientKey.map((b, i) => b ^ clientSignature[i]));
    this.#serverSignature = hmac(hmac(saltedPassword, 'Server Key'), authMessage);
    this.#stage = 'done';
    return `${withoutProof},p=${proof.toString('base64')}`;
  }
}

/** Registers SCRAM-SHA-256 on an xmpp.js client, ahead of SCRAM-SHA-1 as current clients prefer it. */
export function useScramSha256(xmpp: XmppClientWithSasl): void {
  // saslFactory.use() appends; xmpp.js ranks by factory order (@xmpp/sasl getAvailableMechanisms reads _mechs).
  const mechs = xmpp.saslFactory._mechs;
  if (!mechs.some((m) => m.name === NAME)) mechs.unshift({ name: NAME, mech: ScramSha256Mechanism });
}

type Authenticate = (credentials: Credentials, mechanism: string) => Promise<void>;

/**
 * A `credentials` function for `client({ credentials })` that authenticates with exactly `mechanism`, and
 * fails with a clear message when the server (or the client's factory) does not offer it.
 */
export function authenticateWith(mechanism: MechanismName, credentials: Credentials) {
  return async (authenticate: Authenticate, mechanisms: string[]): Promise<void> => {
    if (!mechanisms.includes(mechanism)) {
      throw new Error(`SASL: ${mechanism} not available (offered and supported: ${mechanisms.join(', ') || 'none'})`);
    }
    await authenticate(credentials, mechanism);
  };
}

function hmac(key: Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

// RFC 5802 §5.1: "," and "=" in names are sent as "=2C" and "=3D".
function saslname(s: string): string {
  return s.replaceAll('=', '=3D').replaceAll(',', '=2C');
}

function attributes(message: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const part of message.split(',')) {
    const eq = part.indexOf('=');
    if (eq > 0) map.set(part.slice(0, eq), part.slice(eq + 1));
  }
  return map;
}

function toBinary(s: string): string {
  return Buffer.from(s, 'utf8').toString('latin1');
}

function fromBinary(s: string): string {
  return Buffer.from(s, 'latin1').toString('utf8');
}
