// Client side of the token mechanisms for xmpp.js 0.14 tests, which ships neither:
// - OAUTHBEARER (RFC 7628 §3.1): GS2 header "n,a=<authzid>," (or "n,,"), then key=value pairs each
//   ended by \x01, "auth=Bearer <token>" among them, and a final \x01. On failure the server sends
//   a challenge with a JSON status; the client answers with a lone \x01 (§3.2.3) and gets <failure/>.
// - X-OAUTH (MongooseIM): the initial response is the token's bytes, i.e. the base64 text the
//   token-auth IQ returned is sent as the <auth/> body as is.
// Same shape as sasl-scram-sha-256.ts (name, clientFirst, response(cred), challenge(chal)), forced
// with a `credentials` function as authenticateWith() there does.
import { client } from '@xmpp/client';
import { TestClient, type Element } from './harness.ts';
import { useScramSha256 } from './sasl-scram-sha-256.ts';

export type TokenMechanismName = 'OAUTHBEARER' | 'X-OAUTH' | 'PLAIN' | 'SCRAM-SHA-256' | 'SCRAM-SHA-1';

interface Credentials {
  username: string;
  password: string;
  authzid?: string;
  host?: string;
}

/** What one login saw: challenges from the server, and the <success/> element. */
export interface SaslTrace {
  challenges: string[];
  success?: Element;
}

function toBinary(s: string): string {
  return Buffer.from(s, 'utf8').toString('latin1');
}

function fromBinary(s: string): string {
  return Buffer.from(s, 'latin1').toString('utf8');
}

function saslname(s: string): string {
  return s.replaceAll('=', '=3D').replaceAll(',', '=2C');
}

function oauthBearer(trace: SaslTrace) {
  return class OAuthBearerMechanism {
    readonly name = 'OAUTHBEARER';
    readonly clientFirst = true;
    #sent = false;

    response(cred: Credentials): string {
      if (this.#sent) return '\x01';
      this.#sent = true;
      const gs2 = cred.authzid ? `n,a=${saslname(cred.authzid)},` : 'n,,';
      return toBinary(`${gs2}\x01host=${cred.host ?? ''}\x01auth=Bearer ${cred.password}\x01\x01`);
    }

    challenge(chal: string): this {
      trace.challenges.push(fromBinary(chal));
      return this;
    }
  };
}

function xOauth(trace: SaslTrace) {
  return class XOAuthMechanism {
    readonly name = 'X-OAUTH';
    readonly clientFirst = true;

    /** `password` is the token as the IQ gave it (base64); xmpp.js base64-encodes what we return. */
    response(cred: Credentials): string {
      return Buffer.from(cred.password, 'base64').toString('latin1');
    }

    challenge(chal: string): this {
      trace.challenges.push(fromBinary(chal));
      return this;
    }
  };
}

type Authenticate = (credentials: Credentials, mechanism: string) => Promise<void>;

/**
 * Logs in with exactly `mechanism` (a token as `password` for OAUTHBEARER, X-OAUTH, or PLAIN with a
 * JWT) and binds a resource. Rejects with xmpp.js's SASLError (its `condition`) on failure.
 */
export async function connectWithToken(
  url: string,
  opts: { domain: string; username?: string; password: string; mechanism: TokenMechanismName; authzid?: string; resource?: string },
  trace: SaslTrace = { challenges: [] },
): Promise<TestClient & { trace: SaslTrace }> {
  const credentials: Credentials = { username: opts.username ?? '', password: opts.password, ...(opts.authzid ? { authzid: opts.authzid } : {}) };
  const xmpp = client({
    service: url,
    domain: opts.domain,
    resource: opts.resource,
    credentials: async (authenticate: Authenticate, mechanisms: string[]) => {
      if (!mechanisms.includes(opts.mechanism)) throw new Error(`SASL: ${opts.mechanism} not offered (${mechanisms.join(', ')})`);
      await authenticate(credentials, opts.mechanism);
    },
  });
  useScramSha256(xmpp as never);
  const mechs = (xmpp.saslFactory as { _mechs: { name: string; mech: unknown }[] })._mechs;
  mechs.unshift({ name: 'OAUTHBEARER', mech: oauthBearer(trace) }, { name: 'X-OAUTH', mech: xOauth(trace) });
  xmpp.on('nonza', (el: Element) => {
    if (el.name === 'success') trace.success = el;
  });
  xmpp.reconnect.stop();
  const c = new TestClient(xmpp);
  await xmpp.start();
  c.jid = xmpp.jid!.toString();
  return Object.assign(c, { trace });
}
