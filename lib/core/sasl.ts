// SASL negotiation (RFC 6120 §6) and the mechanisms: PLAIN (RFC 4616, with a password or, where
// the tenant allows JWT login, a JWT as the password, as ejabberd and MongooseIM do), SCRAM-SHA-1
// (RFC 5802), SCRAM-SHA-256 (RFC 7677) and OAUTHBEARER (RFC 7628, with a JWT). Mechanisms are
// registered items (X-OAUTH comes from lib/extensions/token-auth.ts); each names the tenant login
// methods that offer it, and a tenant is offered, and may use, only those its `loginMethods` allow.
// State between steps lives in the connection item (frames of one stream may reach different
// Lambda containers).
//
// Throttling of failed logins is a module's (lib/extensions/auth-limits.ts); the core gives it two
// events. A mechanism calls ctx.admit(account) once it knows which account the client names and
// before it checks any credential, which fires "auth/check": a refusal ends the attempt with
// <temporary-auth-failure/> (RFC 6120 §6.5.12) without the credentials being looked at, so a locked
// account cannot be guessed. Every <not-authorized/> (RFC 6120 §6.5.10: wrong credentials) fires
// "auth/failed" with the account and the client's address. Mechanisms that verify a signed token
// (X-OAUTH, OAUTHBEARER) need no admit: a signature cannot be guessed; their failures, and a JWT
// refused as a PLAIN password, count against the address only.
//
// Users who log in with a JWT need no password record. At their first JWT login an account item
// without SCRAM keys is created (origin 'jwt'), so they show in `user list` and admin listings,
// others can add them to rosters, and messages to them while offline are stored (the router's
// users.exists() check) rather than bounced. It costs one read per JWT login; the JWT issuer stays
// the source of truth (an account deleted by an admin comes back at the user's next JWT login).
import { StreamError } from '../xmpp/errors.ts';
import { JIDError, makeJID, tryParseJID } from '../xmpp/jid.ts';
import { NS } from '../xmpp/namespaces.ts';
import { type Element, xml } from '../xmpp/xml.ts';
import {
  DEFAULT_ITERATIONS,
  ScramError,
  type ScramHash,
  createServerFirst,
  decodeScramMessage,
  fakeScramSalt,
  parseClientFirst,
  parsePlainMessage,
  verifyClientFinal,
  verifyPassword,
} from '../auth/scram.ts';
import { JwtError, looksLikeJwt, verifyJwt } from '../auth/jwt.ts';
import { TokenError } from '../auth/access-tokens.ts';
import type { ConnectionRecord } from '../store/connections.ts';
import type { AuthAttemptEvent, AuthRefusal } from './events.ts';
import type { LoginMethod, TenantRecord } from '../store/tenants.ts';
import type { XmppServer } from './server.ts';

export type SaslCondition =
  | 'aborted'
  | 'account-disabled'
  | 'credentials-expired'
  | 'encryption-required'
  | 'incorrect-encoding'
  | 'invalid-authzid'
  | 'invalid-mechanism'
  | 'malformed-request'
  | 'mechanism-too-weak'
  | 'not-authorized'
  | 'temporary-auth-failure';

export type SaslStep =
  | { kind: 'challenge'; data: Buffer; state: Record<string, string> }
  | { kind: 'success'; username: string; data?: Buffer }
  /**
   * `text` goes to the client; `reason` only to the log. `badToken`: a token was refused, not a
   * password, so the failure counts against the client's address but not the account (see the header).
   */
  | { kind: 'failure'; condition: SaslCondition; text?: string; reason?: string; badToken?: boolean };

export interface SaslContext {
  server: XmppServer;
  domain: string;
  /** The tenant item, as cached (undefined only if it vanished mid-stream). */
  tenant: TenantRecord | undefined;
  /** What the tenant allows (loginMethodsOf). */
  loginMethods: LoginMethod[];
  /**
   * Call once the account the client names is known (its localpart; undefined if it names none
   * that is valid), before checking credentials: a failure step means the attempt is refused
   * (see the header) and must be returned as is.
   */
  admit(account: string | undefined): Promise<SaslStep | undefined>;
}

export interface SaslMechanism {
  name: string;
  /** The login methods that offer this mechanism: a tenant gets it if it allows any of them. */
  loginMethods: LoginMethod[];
  start(ctx: SaslContext, initial: Buffer | undefined): Promise<SaslStep>;
  step?(ctx: SaslContext, state: Record<string, string>, response: Buffer): Promise<SaslStep>;
}

export const DEFAULT_LOGIN_METHODS: readonly LoginMethod[] = ['password'];

/** The login methods a tenant allows (default: password only). */
export function loginMethodsOf(tenant: TenantRecord | undefined): LoginMethod[] {
  return tenant?.loginMethods?.length ? tenant.loginMethods : [...DEFAULT_LOGIN_METHODS];
}

/** The mechanisms offered to a tenant's streams, in the server's order (strongest first). */
export function mechanismsFor(server: XmppServer, tenant: TenantRecord | undefined): SaslMechanism[] {
  const allowed = loginMethodsOf(tenant);
  const out: SaslMechanism[] = [];
  for (const { module, mechanism } of server.registry.saslMechanisms.values()) {
    if (mechanism.loginMethods.some((l) => allowed.includes(l)) && server.registry.isEnabled(module, tenant)) out.push(mechanism);
  }
  return out;
}

export async function handleSasl(server: XmppServer, rec: ConnectionRecord, el: Element): Promise<void> {
  const target = { connectionId: rec.id, endpoint: rec.endpoint };
  if (rec.stage !== 'opened') throw new StreamError('policy-violation', 'already authenticated');
  const tenant = await server.tenants.get(rec.domain!);
  const attempt: AuthAttemptEvent = { server, tenant: rec.domain!, tenantItem: tenant, connectionId: rec.id, sourceIp: rec.sourceIp, mechanism: rec.sasl?.mechanism ?? el.attrs.mechanism ?? '', account: rec.sasl?.account };
  const ctx: SaslContext = { server, domain: rec.domain!, tenant, loginMethods: loginMethodsOf(tenant), admit: (account) => admit(attempt, account) };
  const offeredHere = mechanismsFor(server, tenant);
  const offered = (name: string | undefined) => offeredHere.find((m) => m.name === name);
  let step: SaslStep;
  let mechanism: SaslMechanism | undefined;

  if (el.name === 'auth') {
    // A mechanism the tenant does not offer is as unknown as one nobody implements.
    mechanism = offered(el.attrs.mechanism);
    const initial = decode(el.text());
    if (!mechanism) step = { kind: 'failure', condition: 'invalid-mechanism' };
    else if (initial === 'invalid') step = { kind: 'failure', condition: 'incorrect-encoding' };
    else step = await guard(() => mechanism!.start(ctx, initial));
  } else if (el.name === 'response') {
    mechanism = rec.sasl ? offered(rec.sasl.mechanism) : undefined;
    const response = decode(el.text()) ?? Buffer.alloc(0);
    if (!mechanism?.step || !rec.sasl) step = { kind: 'failure', condition: 'malformed-request', text: 'no authentication in progress' };
    else if (response === 'invalid') step = { kind: 'failure', condition: 'incorrect-encoding' };
    else step = await guard(() => mechanism!.step!(ctx, rec.sasl!.data, response));
  } else if (el.name === 'abort') {
    // RFC 6120 §6.4.4.
    await server.connections.update(rec.id, { sasl: undefined });
    await server.send(target, failure('aborted'));
    return;
  } else {
    throw new StreamError('unsupported-stanza-type', `<${el.name}/> is not a SASL element`);
  }

  if (step.kind === 'challenge') {
    await server.connections.update(rec.id, { sasl: { mechanism: mechanism!.name, data: step.state, account: attempt.account } });
    await server.send(target, xml('challenge', { xmlns: NS.SASL }, step.data.toString('base64')));
  } else if (step.kind === 'success') {
    await server.connections.update(rec.id, { stage: 'authenticated', username: step.username, sasl: undefined });
    server.log.info({ connectionId: rec.id, user: `${step.username}@${rec.domain}`, mechanism: mechanism!.name }, 'authenticated');
    server.metrics.count('Logins', 1, rec.domain);
    // RFC 6120 §6.4.6: additional data with success (SCRAM's server signature) goes in <success/>.
    const success = xml('success', { xmlns: NS.SASL });
    if (step.data?.length) success.t(step.data.toString('base64'));
    await server.send(target, success);
  } else {
    const failures = (rec.authFailures ?? 0) + (step.condition === 'aborted' ? 0 : 1);
    const user = attempt.account ? `${attempt.account}@${rec.domain}` : undefined;
    server.log.info({ connectionId: rec.id, sourceIp: rec.sourceIp, user, mechanism: mechanism?.name, condition: step.condition, text: step.text, reason: step.reason, failures }, 'authentication failed');
    await server.connections.update(rec.id, { sasl: undefined, authFailures: failures });
    if (step.condition !== 'aborted') server.metrics.count('LoginFailures', 1, rec.domain);
    // Only wrong credentials count as a guess; a malformed request or a refusal while locked does not.
    if (step.condition === 'not-authorized') await server.registry.events.fireAll('auth/failed', step.badToken ? { ...attempt, account: undefined } : attempt);
    await server.send(target, failure(step.condition, step.text));
    // RFC 6120 §6.4.5: a configurable, reasonable number of retries, then the stream is closed.
    if (failures >= server.limits.maxAuthFailures) throw new StreamError('policy-violation', 'too many failed authentication attempts');
  }
}

function failure(condition: SaslCondition, text?: string): Element {
  const el = xml('failure', { xmlns: NS.SASL }, xml(condition));
  if (text) el.c('text', { 'xml:lang': 'en' }).t(text);
  return el;
}

/** RFC 6120 §6.4.2: empty element = no initial response; "=" = an empty one; otherwise base64. */
function decode(text: string): Buffer | undefined | 'invalid' {
  const t = text.trim();
  if (t === '') return undefined;
  if (t === '=') return Buffer.alloc(0);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(t) || t.length % 4 !== 0) return 'invalid';
  return Buffer.from(t, 'base64');
}

const logOnly = (reason: string) => ({ reason });

/** Fires "auth/check" for the account (see the header); a refusal becomes temporary-auth-failure. */
async function admit(attempt: AuthAttemptEvent, account: string | undefined): Promise<SaslStep | undefined> {
  attempt.account = account;
  const refusal = (await attempt.server.registry.events.fire('auth/check', attempt)) as AuthRefusal | undefined;
  // RFC 6120 §6.5.12: temporary-auth-failure, "the initiating entity can try again later".
  return refusal ? { kind: 'failure', condition: 'temporary-auth-failure', text: refusal.text } : undefined;
}

async function guard(fn: () => Promise<SaslStep>): Promise<SaslStep> {
  try {
    return await fn();
  } catch (err) {
    // A malformed request is told what is wrong with it; a wrong proof only that it is wrong.
    if (err instanceof ScramError) return { kind: 'failure', condition: err.condition, ...(err.condition === 'malformed-request' ? { text: err.message } : {}), reason: err.message };
    if (err instanceof JwtError) return { kind: 'failure', condition: err.condition, ...logOnly(err.message) };
    if (err instanceof TokenError) return { kind: 'failure', condition: 'not-authorized', ...logOnly(err.message) };
    throw err;
  }
}

/** The account's local part from a SASL authentication identity, normalized like a JID. */
export function localpartOf(authcid: string, domain: string): string | undefined {
  try {
    return makeJID(authcid, domain).local || undefined;
  } catch (err) {
    if (err instanceof JIDError) return undefined;
    throw err;
  }
}

/**
 * RFC 4616: PLAIN. The password is checked against the stored SCRAM-SHA-256 keys where the tenant
 * allows password login; where it allows JWT login, a password that is a JWT is verified as one
 * (and must name the authcid), falling back to the password if both are allowed.
 */
export const plainMechanism: SaslMechanism = {
  name: 'PLAIN',
  loginMethods: ['password', 'jwt'],
  async start(ctx, initial) {
    // No initial response: an empty challenge asks for it (RFC 6120 §6.4.2).
    if (initial === undefined) return { kind: 'challenge', data: Buffer.alloc(0), state: {} };
    return plainStep(ctx, initial);
  },
  async step(ctx, _state, response) {
    return plainStep(ctx, response);
  },
};

async function plainStep(ctx: SaslContext, message: Buffer): Promise<SaslStep> {
  const jwtSettings = ctx.loginMethods.includes('jwt') ? ctx.tenant?.jwt : undefined;
  const passwordAllowed = ctx.loginMethods.includes('password');
  // A JWT can be longer than the 1023 octets parsePlainMessage allows a password.
  const { authzid, authcid, password } = jwtSettings ? parseLongPlain(message) : parsePlainMessage(message);
  const username = localpartOf(authcid, ctx.domain);
  if (!username) return { kind: 'failure', condition: 'not-authorized' };
  if (authzid && authzid !== `${username}@${ctx.domain}`) return { kind: 'failure', condition: 'invalid-authzid' };
  const refused = await ctx.admit(username);
  if (refused) return refused;
  let jwtFailure: JwtError | undefined;
  if (jwtSettings && looksLikeJwt(password)) {
    try {
      const login = await verifyJwt(password, jwtSettings, ctx.domain, { expectedUsername: username });
      await jwtAccount(ctx, login.username);
      return { kind: 'success', username: login.username };
    } catch (err) {
      if (!(err instanceof JwtError)) throw err;
      jwtFailure = err;
    }
  }
  const failed: SaslStep = jwtFailure ? { kind: 'failure', condition: jwtFailure.condition, reason: jwtFailure.message, badToken: true } : { kind: 'failure', condition: 'not-authorized' };
  if (!passwordAllowed || Buffer.byteLength(password) > 1023) return failed;
  const user = await ctx.server.users.get(ctx.domain, username);
  const creds = user?.scram?.['SHA-256'];
  if (!creds || !verifyPassword('SHA-256', creds, password)) return failed;
  return { kind: 'success', username };
}

/** parsePlainMessage's rules, with room for a JWT as the password (RFC 4616 sets no maximum). */
function parseLongPlain(message: Buffer): { authzid: string; authcid: string; password: string } {
  const first = message.indexOf(0);
  const second = first < 0 ? -1 : message.indexOf(0, first + 1);
  if (second < 0 || message.indexOf(0, second + 1) >= 0 || message.length - second - 1 > 16384) {
    throw new ScramError('malformed-request', 'PLAIN message must contain exactly two NUL separators');
  }
  const short = Buffer.concat([message.subarray(0, second + 1), Buffer.from('x')]);
  const { authzid, authcid } = parsePlainMessage(short);
  const password = message.subarray(second + 1);
  if (password.length === 0) throw new ScramError('malformed-request', 'empty PLAIN authcid or password');
  const text = new TextDecoder('utf-8', { fatal: true });
  try {
    return { authzid, authcid, password: text.decode(password) };
  } catch {
    throw new ScramError('malformed-request', 'PLAIN password is not UTF-8');
  }
}

/** A JWT user's account item, created at the first login (see the header). */
async function jwtAccount(ctx: SaslContext, username: string): Promise<void> {
  const { created } = await ctx.server.users.getOrCreate(ctx.domain, username, { origin: 'jwt' });
  if (created) ctx.server.log.info({ user: `${username}@${ctx.domain}` }, 'account created at first JWT login');
}

/**
 * RFC 7628: OAUTHBEARER with a JWT as the bearer token. The message is a GS2 header ("n,a=authzid,"),
 * then key=value pairs each ended by \x01, ending with \x01\x01; the token is in "auth=Bearer …".
 * The user is the authzid if given (the token must name it), else the one the token names. On a bad
 * token the server answers with a challenge holding the JSON error (§3.2.2); the client replies
 * \x01 and then gets the <failure/> (§3.2.3).
 */
export const oauthBearerMechanism: SaslMechanism = {
  name: 'OAUTHBEARER',
  loginMethods: ['jwt'],
  async start(ctx, initial) {
    if (initial === undefined) return { kind: 'challenge', data: Buffer.alloc(0), state: {} };
    return oauthBearerStep(ctx, initial);
  },
  async step(ctx, state, response) {
    // After our error challenge the client must send a lone \x01; the failure follows either way.
    if (state.failed) return { kind: 'failure', condition: state.failed as SaslCondition, reason: state.reason };
    return oauthBearerStep(ctx, response);
  },
};

async function oauthBearerStep(ctx: SaslContext, message: Buffer): Promise<SaslStep> {
  const parsed = parseOauthBearer(message);
  if (typeof parsed === 'string') return { kind: 'failure', condition: 'malformed-request', text: parsed };
  let expectedUsername: string | undefined;
  if (parsed.authzid) {
    const jid = tryParseJID(parsed.authzid);
    if (!jid?.local || jid.resource || jid.domain !== ctx.domain) return { kind: 'failure', condition: 'invalid-authzid' };
    expectedUsername = jid.local;
  }
  const settings = ctx.tenant?.jwt;
  try {
    if (!settings) throw new JwtError('not-authorized', 'the tenant has no JWT settings');
    const login = await verifyJwt(parsed.token, settings, ctx.domain, { expectedUsername });
    await jwtAccount(ctx, login.username);
    return { kind: 'success', username: login.username };
  } catch (err) {
    if (!(err instanceof JwtError)) throw err;
    const status = JSON.stringify({ status: 'invalid_token' });
    return { kind: 'challenge', data: Buffer.from(status, 'utf8'), state: { failed: err.condition, reason: err.message } };
  }
}

/** The authzid and bearer token of an OAUTHBEARER client response, or what is wrong with it. */
export function parseOauthBearer(message: Buffer): { authzid?: string; token: string } | string {
  const text = message.toString('utf8');
  // gs2-header: cbind flag "," [ "a=" saslname ] ","
  const m = /^([ny]),(?:a=([^,]*))?,/.exec(text);
  if (!m) return text.startsWith('p=') ? 'channel binding is not supported' : 'bad GS2 header';
  const authzid = m[2] === undefined ? undefined : decodeSaslname(m[2]);
  if (m[2] !== undefined && !authzid) return 'bad authzid';
  const rest = text.slice(m[0].length);
  if (!rest.startsWith('\x01') || !rest.endsWith('\x01\x01')) return 'key/value pairs must be separated by \\x01 and end with \\x01\\x01';
  let token: string | undefined;
  for (const pair of rest.slice(1, -2).split('\x01')) {
    const eq = pair.indexOf('=');
    if (eq <= 0) return 'bad key/value pair';
    if (pair.slice(0, eq) === 'auth') {
      const auth = /^bearer +([A-Za-z0-9\-._~+/]+=*)$/i.exec(pair.slice(eq + 1));
      if (!auth) return 'auth must be "Bearer <token>"';
      token = auth[1];
    }
  }
  if (!token) return 'no auth=Bearer token';
  return { authzid, token };
}

/** RFC 5801 §4 saslname: "=2C" is ",", "=3D" is "="; any other "=" is an error (undefined). */
function decodeSaslname(s: string): string | undefined {
  if (/=(?!2C|3D)/.test(s)) return undefined;
  return s.replaceAll('=2C', ',').replaceAll('=3D', '=');
}

export function scramMechanism(hash: ScramHash): SaslMechanism {
  return {
    name: `SCRAM-${hash}`,
    loginMethods: ['password'],
    async start(ctx, initial) {
      if (!initial?.length) return { kind: 'failure', condition: 'malformed-request', text: 'initial response required' };
      const first = parseClientFirst(decodeScramMessage(initial));
      const username = localpartOf(first.username, ctx.domain);
      if (first.authzid && username && first.authzid !== `${username}@${ctx.domain}`) return { kind: 'failure', condition: 'invalid-authzid' };
      // Refused before the challenge: a locked account gets no salt and no chance to send a proof.
      const refused = await ctx.admit(username);
      if (refused) return refused;
      const user = username ? await ctx.server.users.get(ctx.domain, username) : undefined;
      const creds = user?.scram?.[hash];
      // Unknown accounts get a stable fake salt and fail at the proof, so SCRAM does not reveal
      // which accounts exist (RFC 5802 §9).
      const salt = creds ?? { salt: fakeScramSalt(await ctx.server.serverSecret.get(), `${hash}:${first.username}@${ctx.domain}`), iterations: DEFAULT_ITERATIONS };
      const { serverFirstMessage, nonce } = createServerFirst(first, salt);
      return {
        kind: 'challenge',
        data: Buffer.from(serverFirstMessage, 'utf8'),
        state: {
          gs2Header: first.gs2Header,
          clientFirstBare: first.clientFirstBare,
          serverFirstMessage,
          nonce,
          username: creds && username ? username : '',
        },
      };
    },
    async step(ctx, state, response) {
      if (!state.username) {
        return { kind: 'failure', condition: 'not-authorized' };
      }
      const user = await ctx.server.users.get(ctx.domain, state.username);
      const creds = user?.scram?.[hash];
      if (!creds) return { kind: 'failure', condition: 'not-authorized' };
      const { serverFinalMessage } = verifyClientFinal(
        hash,
        decodeScramMessage(response),
        { gs2Header: state.gs2Header, clientFirstBare: state.clientFirstBare, serverFirstMessage: state.serverFirstMessage, nonce: state.nonce },
        creds,
      );
      return { kind: 'success', username: state.username, data: Buffer.from(serverFinalMessage, 'utf8') };
    },
  };
}
