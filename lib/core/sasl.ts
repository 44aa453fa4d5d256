// SASL negotiation (RFC 6120 §6) and the password mechanisms: PLAIN (RFC 4616), SCRAM-SHA-1
// (RFC 5802) and SCRAM-SHA-256 (RFC 7677). Mechanisms are registered items, so token mechanisms
// can be added the same way. State between steps lives in the connection item (frames of one
// stream may reach different Lambda containers).
import { StreamError } from '../xmpp/errors.ts';
import { JIDError, makeJID } from '../xmpp/jid.ts';
import { NS } from '../xmpp/namespaces.ts';
import { type Element, xml } from '../xmpp/xml.ts';
import {
  ScramError,
  type ScramHash,
  createServerFirst,
  fakeScramSalt,
  parseClientFirst,
  parsePlainMessage,
  verifyClientFinal,
  verifyPassword,
} from '../auth/scram.ts';
import type { ConnectionRecord } from '../store/connections.ts';
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
  | { kind: 'failure'; condition: SaslCondition; text?: string };

export interface SaslContext {
  server: XmppServer;
  domain: string;
}

export interface SaslMechanism {
  name: string;
  start(ctx: SaslContext, initial: Buffer | undefined): Promise<SaslStep>;
  step?(ctx: SaslContext, state: Record<string, string>, response: Buffer): Promise<SaslStep>;
}

export async function handleSasl(server: XmppServer, rec: ConnectionRecord, el: Element): Promise<void> {
  const target = { connectionId: rec.id, endpoint: rec.endpoint };
  if (rec.stage !== 'opened') throw new StreamError('policy-violation', 'already authenticated');
  const ctx: SaslContext = { server, domain: rec.domain! };
  let step: SaslStep;
  let mechanism: SaslMechanism | undefined;

  if (el.name === 'auth') {
    mechanism = server.saslMechanisms.get(el.attrs.mechanism);
    const initial = decode(el.text());
    if (!mechanism) step = { kind: 'failure', condition: 'invalid-mechanism' };
    else if (initial === 'invalid') step = { kind: 'failure', condition: 'incorrect-encoding' };
    else step = await guard(() => mechanism!.start(ctx, initial));
  } else if (el.name === 'response') {
    mechanism = rec.sasl ? server.saslMechanisms.get(rec.sasl.mechanism) : undefined;
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
    await server.connections.update(rec.id, { sasl: { mechanism: mechanism!.name, data: step.state } });
    await server.send(target, xml('challenge', { xmlns: NS.SASL }, step.data.toString('base64')));
  } else if (step.kind === 'success') {
    await server.connections.update(rec.id, { stage: 'authenticated', username: step.username, sasl: undefined });
    server.log.info({ connectionId: rec.id, user: `${step.username}@${rec.domain}`, mechanism: mechanism!.name }, 'authenticated');
    // RFC 6120 §6.4.6: additional data with success (SCRAM's server signature) goes in <success/>.
    const success = xml('success', { xmlns: NS.SASL });
    if (step.data?.length) success.t(step.data.toString('base64'));
    await server.send(target, success);
  } else {
    const failures = (rec.authFailures ?? 0) + (step.condition === 'aborted' ? 0 : 1);
    server.log.info({ connectionId: rec.id, condition: step.condition, text: step.text, failures }, 'authentication failed');
    await server.connections.update(rec.id, { sasl: undefined, authFailures: failures });
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

async function guard(fn: () => Promise<SaslStep>): Promise<SaslStep> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ScramError) return { kind: 'failure', condition: err.condition };
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

/** RFC 4616: PLAIN, checked against the stored SCRAM-SHA-256 keys. */
export const plainMechanism: SaslMechanism = {
  name: 'PLAIN',
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
  const { authzid, authcid, password } = parsePlainMessage(message);
  const username = localpartOf(authcid, ctx.domain);
  if (!username) return { kind: 'failure', condition: 'not-authorized' };
  if (authzid && authzid !== `${username}@${ctx.domain}`) return { kind: 'failure', condition: 'invalid-authzid' };
  const user = await ctx.server.users.get(ctx.domain, username);
  const creds = user?.scram?.['SHA-256'];
  if (!creds || !verifyPassword('SHA-256', creds, password)) return { kind: 'failure', condition: 'not-authorized' };
  return { kind: 'success', username };
}

export function scramMechanism(hash: ScramHash): SaslMechanism {
  return {
    name: `SCRAM-${hash}`,
    async start(ctx, initial) {
      if (!initial?.length) return { kind: 'failure', condition: 'malformed-request', text: 'initial response required' };
      const first = parseClientFirst(initial.toString('utf8'));
      const username = localpartOf(first.username, ctx.domain);
      if (first.authzid && username && first.authzid !== `${username}@${ctx.domain}`) return { kind: 'failure', condition: 'invalid-authzid' };
      const user = username ? await ctx.server.users.get(ctx.domain, username) : undefined;
      const creds = user?.scram?.[hash];
      // Unknown accounts get a stable fake salt and fail at the proof, so SCRAM does not reveal
      // which accounts exist (RFC 5802 §9).
      const salt = creds ?? { salt: fakeScramSalt(ctx.server.serverSecret, `${hash}:${first.username}@${ctx.domain}`), iterations: 4096 };
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
        response.toString('utf8'),
        { gs2Header: state.gs2Header, clientFirstBare: state.clientFirstBare, serverFirstMessage: state.serverFirstMessage, nonce: state.nonce },
        creds,
      );
      return { kind: 'success', username: state.username, data: Buffer.from(serverFinalMessage, 'utf8') };
    },
  };
}
