// Webhook components (README "Components"): a component domain served by an HTTPS endpoint. Each
// stanza addressed to the domain is POSTed as XML (Content-Type application/xmpp+xml, the stanza
// qualified by jabber:component:accept), signed by lib/webhooks (X-XMPP-Edge-Timestamp and
// X-XMPP-Edge-Signature over "timestamp.body" with the component's signingSecret). A 2xx answer may
// carry stanzas to send back, from the component's domain only. Failures are retried inline with
// backoff; after the last attempt the request becomes a dead letter and the sender hears
// service-unavailable (docs/architecture.md "Components").
import { randomUUID } from 'node:crypto';
import type { ModuleContext } from '../../core/modules.ts';
import { routeStanza } from '../../core/router.ts';
import type { XmppServer } from '../../core/server.ts';
import { tryParseJID } from '../../xmpp/jid.ts';
import { type Element, parseFrame } from '../../xmpp/xml.ts';
import { type DeliveryPolicy, WebhookDelivery } from '../../webhooks/delivery.ts';
import { WebhookStore } from '../../webhooks/store.ts';
import type { ComponentDeclaration } from './settings.ts';

export const WEBHOOK_CONTENT_TYPE = 'application/xmpp+xml';

/**
 * A stanza is for a conversation: its sender waits. So every attempt happens while the stanza is
 * routed (none is deferred to the sweeper): 3 attempts, each with a 2 s timeout, 125–250 ms then
 * 250–500 ms apart (equal jitter), under 7 s at worst, well within the ingest's 20 s; then a dead letter.
 */
export const COMPONENT_WEBHOOK_POLICY: Partial<DeliveryPolicy> = {
  timeoutMs: 2_000,
  maxInlineAttempts: 3,
  maxAttempts: 3,
  inlineBaseDelayMs: 250,
  inlineBudgetMs: 7_000,
  maxResponseBytes: 256 * 1024,
};

/** The most stanzas one webhook answer may send. */
export const MAX_REPLY_STANZAS = 20;

export interface WebhookComponents {
  /** True if the webhook took the stanza (2xx); its answer's stanzas are routed before this returns. */
  deliver(server: XmppServer, tenant: string, component: ComponentDeclaration, stanza: Element): Promise<boolean>;
  /** How delivery waits between attempts; tests replace it to move their clock instead of waiting. */
  sleep: (ms: number) => Promise<void>;
}

export function createWebhookComponents(ctx: ModuleContext): WebhookComponents {
  let delivery: WebhookDelivery | undefined;
  const api: WebhookComponents = {
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    async deliver(server, tenant, component, stanza) {
      delivery ??= new WebhookDelivery({
        clock: server.clock,
        sleep: (ms) => api.sleep(ms),
        policy: COMPONENT_WEBHOOK_POLICY,
        store: new WebhookStore(server.db, server.table, server.connections.region),
        // http://127.0.0.1 only where no Lambda runs: the local server and its tests.
        allowLoopbackHttp: !process.env.AWS_LAMBDA_FUNCTION_NAME,
        log: ctx.log,
      });
      const outcome = await delivery.deliver({
        tenant,
        source: `component:${component.domain}`,
        url: component.url!,
        body: stanza.toString(),
        contentType: WEBHOOK_CONTENT_TYPE,
        secret: component.signingSecret,
      });
      if (outcome.status !== 'delivered') {
        ctx.log.warn({ tenant, domain: component.domain, attempts: outcome.attempts, error: outcome.lastError }, 'webhook component failed');
        return false;
      }
      await routeReplies(server, ctx, tenant, component.domain, outcome.response.body);
      return true;
    },
  };
  return api;
}

/** The stanzas of a webhook's answer: zero or more, one after another, at the top level of the body. */
export function replyStanzas(body: string): Element[] {
  if (!body.trim()) return [];
  const root = parseFrame(`<replies xmlns="jabber:component:accept">${body}</replies>`);
  return root.children.filter((c): c is Element => typeof c !== 'string');
}

/**
 * Routes a webhook's reply stanzas as from the component. One whose `from` is not at the component's
 * domain is dropped with a log line (there is no stream to answer with invalid-from); a missing
 * `from` is the component's domain. Errors the router answers them with go to the log.
 */
async function routeReplies(server: XmppServer, ctx: ModuleContext, tenant: string, domain: string, body: string): Promise<void> {
  let stanzas: Element[];
  try {
    stanzas = replyStanzas(body);
  } catch (err) {
    ctx.log.warn({ tenant, domain, err: (err as Error).message }, 'webhook component answer is not XML stanzas; ignored');
    return;
  }
  const sinkId = `webhook-${randomUUID()}`;
  const close = server.openSink(sinkId, (frame) => ctx.log.info({ tenant, domain, frame }, 'answer to a webhook component stanza'));
  try {
    for (const stanza of stanzas.slice(0, MAX_REPLY_STANZAS)) {
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
