// Webhook components (README "Components"): a component domain served by an HTTPS endpoint. Each
// stanza addressed to the domain is POSTed as XML (Content-Type application/xmpp+xml, the stanza
// qualified by jabber:component:accept), signed by lib/webhooks (X-XMPP-Edge-Timestamp and
// X-XMPP-Edge-Signature over "timestamp.body" with the component's signingSecret). A 2xx answer may
// carry stanzas to send back, from the component's domain only, whenever it comes.
//
// A component is like a server (XEP-0114 §1): what is addressed to it is queued while it is down, not
// bounced. So, per stanza kind (docs/architecture.md "Components"):
// - message and presence: 3 inline attempts; if they fail in a way that may pass, the stanza waits for
//   the sweeper's attempts (the "component" channel of lib/webhooks: 1, 2, 4, 8, 16 minutes later, about
//   half an hour) and the sender hears nothing meanwhile. After the last attempt, a dead letter, and a
//   message is bounced to its sender with remote-server-timeout (RFC 6120 §8.3.3.16); presence never is
//   (RFC 6120 §8.3.1). An answer that retrying cannot change (4xx, a refused URL) is a dead letter at once
//   and the message is answered service-unavailable.
// - iq: the sender's client waits for the answer (RFC 6120 §8.2.3) and gives up long before minutes, so
//   only the inline attempts; then a dead letter and service-unavailable.
import { randomUUID } from 'node:crypto';
import type { ModuleContext } from '../../core/modules.ts';
import { routeStanza } from '../../core/router.ts';
import type { XmppServer } from '../../core/server.ts';
import { StanzaError, errorReply } from '../../xmpp/errors.ts';
import { tryParseJID } from '../../xmpp/jid.ts';
import { type Element, parseFrame } from '../../xmpp/xml.ts';
import { type DeliveryPolicy, WebhookDelivery } from '../../webhooks/delivery.ts';
import { type StoredRequest, WebhookStore } from '../../webhooks/store.ts';
import type { ComponentDeclaration } from './settings.ts';

export const WEBHOOK_CONTENT_TYPE = 'application/xmpp+xml';
/** The channel of webhook components' deferred requests (source `component:<domain>`). */
export const COMPONENT_CHANNEL = 'component';

/**
 * 3 inline attempts, each with a 2 s timeout, 125–250 ms then 250–500 ms apart (equal jitter), under
 * 7 s at worst, well within the ingest's 20 s; then (messages and presence) 5 more from the sweeper
 * 1, 2, 4, 8 and 16 minutes later (jittered): 8 attempts over about half an hour; then a dead letter.
 */
export const COMPONENT_WEBHOOK_POLICY: Partial<DeliveryPolicy> = {
  timeoutMs: 2_000,
  maxInlineAttempts: 3,
  maxAttempts: 8,
  inlineBaseDelayMs: 250,
  inlineBudgetMs: 7_000,
  maxResponseBytes: 256 * 1024,
};
/** An IQ: the inline attempts only. */
export const COMPONENT_IQ_POLICY: Partial<DeliveryPolicy> = { ...COMPONENT_WEBHOOK_POLICY, maxAttempts: 3 };

/** The most stanzas one webhook answer may send. */
export const MAX_REPLY_STANZAS = 20;

/** delivered: taken (2xx), its answer routed; kept: waiting for the sweeper's attempts; failed: given up now. */
export type WebhookComponentOutcome = 'delivered' | 'kept' | 'failed';

export interface WebhookComponents {
  deliver(server: XmppServer, tenant: string, component: ComponentDeclaration, stanza: Element): Promise<WebhookComponentOutcome>;
  /** The sweep step: due requests of the component channel, with each component's URL and secret as they are now. */
  retry(server: XmppServer, now?: number): Promise<{ delivered: number; rescheduled: number; dead: number; dropped: number }>;
  /** How delivery waits between attempts; tests replace it to move their clock instead of waiting. */
  sleep: (ms: number) => Promise<void>;
}

/** The webhook component serving `domain` now, if an enabled tenant declares one that is enabled. */
export type FindWebhook = (server: XmppServer, domain: string) => Promise<{ tenant: string; declaration: ComponentDeclaration } | undefined>;

export function createWebhookComponents(ctx: ModuleContext, find: FindWebhook): WebhookComponents {
  const deliveries = new Map<XmppServer, { stanzas: WebhookDelivery; iqs: WebhookDelivery }>();
  const deliveriesOf = (server: XmppServer) => {
    let d = deliveries.get(server);
    if (!d) {
      const deps = {
        clock: server.clock,
        sleep: (ms: number) => api.sleep(ms),
        store: new WebhookStore(server.db, server.table, server.connections.region),
        // http://127.0.0.1 only where no Lambda runs: the local server and its tests.
        allowLoopbackHttp: !process.env.AWS_LAMBDA_FUNCTION_NAME,
        log: ctx.log,
      };
      d = { stanzas: new WebhookDelivery({ ...deps, policy: COMPONENT_WEBHOOK_POLICY }), iqs: new WebhookDelivery({ ...deps, policy: COMPONENT_IQ_POLICY }) };
      deliveries.set(server, d);
    }
    return d;
  };
  const api: WebhookComponents = {
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    async deliver(server, tenant, component, stanza) {
      const d = deliveriesOf(server);
      const outcome = await (stanza.name === 'iq' ? d.iqs : d.stanzas).deliver({
        tenant,
        source: `${COMPONENT_CHANNEL}:${component.domain}`,
        url: component.url!,
        body: stanza.toString(),
        contentType: WEBHOOK_CONTENT_TYPE,
        secret: component.signingSecret,
      });
      if (outcome.status === 'delivered') {
        await routeAsComponent(server, ctx, tenant, component.domain, replies(ctx, tenant, component.domain, outcome.response.body));
        return 'delivered';
      }
      const kept = outcome.status === 'scheduled';
      ctx.log.warn({ tenant, domain: component.domain, element: stanza.name, attempts: outcome.attempts, error: outcome.lastError, ...(kept ? { retryAt: new Date(outcome.dueAt).toISOString() } : {}) }, kept ? 'webhook component failed; the stanza waits for a retry' : 'webhook component failed: dead letter');
      return kept ? 'kept' : 'failed';
    },
    async retry(server, now = server.clock.now()) {
      const resolve = async (_tenant: string, source: string) => {
        const found = source.startsWith(`${COMPONENT_CHANNEL}:`) ? await find(server, source.slice(COMPONENT_CHANNEL.length + 1)) : undefined;
        return found && { url: found.declaration.url!, secret: found.declaration.signingSecret };
      };
      return deliveriesOf(server).stanzas.retryDue(COMPONENT_CHANNEL, resolve, now, async (req, outcome) => {
        const domain = req.source.slice(COMPONENT_CHANNEL.length + 1);
        // A late answer's stanzas are routed as an inline one's are.
        if (outcome.status === 'delivered') return routeAsComponent(server, ctx, req.tenant, domain, replies(ctx, req.tenant, domain, outcome.response.body));
        // Given up after the last attempt (or the component went away meanwhile): the message's sender hears it.
        const bounce = bounceOf(req, outcome.status === 'dead' ? 'remote-server-timeout' : 'service-unavailable', server.clock.now());
        if (bounce) await routeAsComponent(server, ctx, req.tenant, domain, [bounce]);
      });
    },
  };
  return api;
}

/**
 * The error a kept message's sender gets when it is given up: from the component's address it was sent
 * to (RFC 6120 §8.3.1); none for presence or an error (never answered with an error).
 */
export function bounceOf(req: StoredRequest, condition: 'remote-server-timeout' | 'service-unavailable', now: number): Element | undefined {
  let stanza: Element;
  try {
    stanza = parseFrame(req.body);
  } catch {
    return undefined;
  }
  if (stanza.name !== 'message' || stanza.attrs.type === 'error' || !stanza.attrs.from || !stanza.attrs.to) return undefined;
  const text = condition === 'remote-server-timeout' ? `${stanza.attrs.to} did not take the message within ${Math.round((now - req.firstAttemptAt) / 60_000)} minutes` : `${stanza.attrs.to} is no longer available`;
  return errorReply(stanza, new StanzaError(condition, text, 'wait'));
}

/** The stanzas of a webhook's answer: zero or more, one after another, at the top level of the body. */
export function replyStanzas(body: string): Element[] {
  if (!body.trim()) return [];
  const root = parseFrame(`<replies xmlns="jabber:component:accept">${body}</replies>`);
  return root.children.filter((c): c is Element => typeof c !== 'string');
}

/** The stanzas of an answer body, or none (with a log line) if it is not XML stanzas. */
function replies(ctx: ModuleContext, tenant: string, domain: string, body: string): Element[] {
  try {
    return replyStanzas(body).slice(0, MAX_REPLY_STANZAS);
  } catch (err) {
    ctx.log.warn({ tenant, domain, err: (err as Error).message }, 'webhook component answer is not XML stanzas; ignored');
    return [];
  }
}

/**
 * Routes stanzas as from the component. One whose `from` is not at the component's domain is dropped
 * with a log line (there is no stream to answer with invalid-from); a missing `from` is the component's
 * domain. Errors the router answers them with go to the log.
 */
async function routeAsComponent(server: XmppServer, ctx: ModuleContext, tenant: string, domain: string, stanzas: Element[]): Promise<void> {
  if (!stanzas.length) return;
  const sinkId = `webhook-${randomUUID()}`;
  const close = server.openSink(sinkId, (frame) => ctx.log.info({ tenant, domain, frame }, 'answer to a webhook component stanza'));
  try {
    for (const stanza of stanzas) {
      if (!['message', 'presence', 'iq'].includes(stanza.name)) continue;
      stanza.attrs.from ??= domain;
      const from = tryParseJID(stanza.attrs.from);
      if (!from || from.domain !== domain || !stanza.attrs.to) {
        ctx.log.warn({ tenant, domain, from: stanza.attrs.from, to: stanza.attrs.to }, 'webhook component stanza dropped: from must be at its domain, to is required');
        continue;
      }
      await routeStanza(server, { connectionId: sinkId, endpoint: 'webhook', jid: from, expiresAt: server.clock.now() + 60_000, tenant }, stanza);
    }
  } finally {
    close();
  }
}
