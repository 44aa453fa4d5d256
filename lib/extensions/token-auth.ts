// MongooseIM-compatible token login (mod_auth_token + cyrsasl_oauth; token format in
// lib/auth/access-tokens.ts), for tenants whose `loginMethods` include 'token' and that have
// `tokens.secret`:
// - a logged-in user asks for tokens with <iq type='get'><query xmlns='erlang-solutions.com:xmpp:token-auth:0'/></iq>
//   (addressed to its own bare JID, as MongooseIM's docs show, or to nobody) and gets
//   <items xmlns='…'><access_token>…</access_token><refresh_token>…</refresh_token></items>;
// - SASL X-OAUTH with either token logs in; with a refresh token, <success/> carries a new access
//   token (the same base64 text the IQ gives);
// - refresh tokens are revoked by bumping the user's sequence number (revokeTokens in
//   lib/auth/access-tokens.ts). The account must still exist for any token to log in.
import {
  DEFAULT_ACCESS_VALIDITY_SECONDS,
  DEFAULT_REFRESH_VALIDITY_SECONDS,
  TokenError,
  currentSequenceNo,
  encodeToken,
  isRevoked,
  issueAccessToken,
  issueRefreshToken,
  verifyToken,
} from '../auth/access-tokens.ts';
import type { SaslContext, SaslMechanism, SaslStep } from '../core/sasl.ts';
import type { IqEvent } from '../core/events.ts';
import type { XmppModule } from '../core/modules.ts';
import { loginMethodsOf } from '../core/sasl.ts';
import { StanzaError } from '../xmpp/errors.ts';
import { xml } from '../xmpp/xml.ts';

export const NS_TOKEN_AUTH = 'erlang-solutions.com:xmpp:token-auth:0';

/** SASL X-OAUTH: the initial response is a token's bytes (the client sends the IQ's base64 text). */
export const xOauthMechanism: SaslMechanism = {
  name: 'X-OAUTH',
  loginMethods: ['token'],
  async start(ctx, initial) {
    if (initial === undefined) return { kind: 'challenge', data: Buffer.alloc(0), state: {} };
    return xOauthStep(ctx, initial);
  },
  async step(ctx, _state, response) {
    return xOauthStep(ctx, response);
  },
};

async function xOauthStep({ server, domain, tenant }: SaslContext, raw: Buffer): Promise<SaslStep> {
  const settings = tenant?.tokens;
  const refuse = (reason: string): SaslStep => ({ kind: 'failure', condition: 'not-authorized', reason });
  if (!settings?.secret) return refuse('the tenant has no tokens.secret');
  let token;
  try {
    token = verifyToken(raw, settings.secret);
  } catch (err) {
    if (err instanceof TokenError) return refuse(`${err.problem}: ${err.message}`);
    throw err;
  }
  if (token.domain !== domain) return refuse(`token for ${token.domain}`);
  // One read: the account still exists, and its sequence number for refresh tokens.
  const user = await server.users.get(domain, token.local);
  if (!user) return refuse(`no account ${token.local}@${domain}`);
  if (isRevoked(token, user)) return refuse('refresh token revoked');
  if (token.type === 'access') return { kind: 'success', username: token.local };
  const access = issueAccessToken(`${token.local}@${domain}`, settings.secret, { validitySeconds: settings.accessValiditySeconds });
  return { kind: 'success', username: token.local, data: access };
}

async function issueTokens({ server, origin }: IqEvent) {
  const domain = origin.jid.domain;
  const tenant = await server.tenants.get(domain);
  const secret = tenant?.tokens?.secret;
  if (!secret || !loginMethodsOf(tenant).includes('token')) throw new StanzaError('service-unavailable', 'token login is not enabled for this domain');
  const user = await server.users.get(domain, origin.jid.local);
  if (!user) throw new StanzaError('item-not-found', 'no such account');
  const bare = origin.jid.bare().toString();
  const access = issueAccessToken(bare, secret, { validitySeconds: tenant.tokens!.accessValiditySeconds ?? DEFAULT_ACCESS_VALIDITY_SECONDS });
  const refresh = issueRefreshToken(bare, secret, currentSequenceNo(user), {
    validitySeconds: tenant.tokens!.refreshValiditySeconds ?? DEFAULT_REFRESH_VALIDITY_SECONDS,
  });
  return xml('items', { xmlns: NS_TOKEN_AUTH }, xml('access_token', {}, encodeToken(access)), xml('refresh_token', {}, encodeToken(refresh)));
}

export const tokenAuth: XmppModule = {
  name: 'token-auth',
  install(ctx) {
    ctx.addSaslMechanism(xOauthMechanism);
    ctx.addFeature(NS_TOKEN_AUTH);
    // MongooseIM registers the IQ on the session manager (the user's bare JID) and answers get or set.
    for (const type of ['get', 'set'] as const) {
      ctx.hook(`iq-${type}/self/${NS_TOKEN_AUTH}:query`, issueTokens);
    }
  },
};
