// XEP-0114 Jabber Component Protocol, and webhook components (README "Components";
// docs/architecture.md "Components"). A tenant declares its components in its item; each owns a
// subdomain of the tenant. A connected component opens a stream of the "xmpp-component" WebSocket
// subprotocol (locally also TCP 127.0.0.1:5347, the same frames through the local gateway), proves
// its secret with <handshake/> and then receives every stanza addressed to its domain and may send
// from any JID of it. A webhook component is an HTTPS endpoint that stanzas to its domain are POSTed to.
import { randomBytes } from 'node:crypto';
import type { ConnectionTarget } from '../../core/management-api.ts';
import type { ModuleContext, StreamProtocol, XmppModule } from '../../core/modules.ts';
import { routeStanza } from '../../core/router.ts';
import { withinStanzaRate } from '../../core/stream.ts';
import type { StanzaEvent } from '../../core/events.ts';
import type { XmppServer } from '../../core/server.ts';
import type { ConnectionRecord } from '../../store/connections.ts';
import type { TenantRecord } from '../../store/tenants.ts';
import { StanzaError, StreamError } from '../../xmpp/errors.ts';
import { tryParseJID } from '../../xmpp/jid.ts';
import { NS } from '../../xmpp/namespaces.ts';
import { type Element, FrameError, parseFrame, xml } from '../../xmpp/xml.ts';
import { componentAdminRoutes, componentCommands } from './admin.ts';
import { handshakeMatches } from './handshake.ts';
import { COMPONENTS_SERVICE, type ComponentDeclaration, ComponentsSchema, componentsProblems, declarationOf, parentDomains } from './settings.ts';
import { COMPONENT_PREFIX, ComponentRegistry } from './store.ts';
import { type WebhookComponents, createWebhookComponents } from './webhook.ts';

export const NS_COMPONENT = 'jabber:component:accept';
/** The WebSocket subprotocol of a component's connection (README "Components"). */
export const COMPONENT_SUBPROTOCOL = 'xmpp-component';

const STANZAS = new Set(['message', 'presence', 'iq']);

/** What this process knows of a component connection after its handshake (it never changes). */
interface ComponentStream extends ConnectionTarget {
  domain: string;
  tenant: string;
  expiresAt: number;
}

/** The declaration that serves `domain`, with its tenant, if an enabled tenant declares one. */
export async function findComponent(server: XmppServer, domain: string): Promise<{ tenant: TenantRecord; declaration: ComponentDeclaration } | undefined> {
  for (const parent of parentDomains(domain)) {
    const tenant = await server.tenants.get(parent);
    const declaration = tenant?.enabled ? declarationOf(tenant, domain) : undefined;
    if (tenant && declaration) return { tenant, declaration };
  }
  return undefined;
}

/** The connected components a tenant item declares (a raw stream image too: whatever is not a list reads as none). */
function connectedDomains(tenant: TenantRecord): string[] {
  const list = Array.isArray(tenant.components) ? (tenant.components as Partial<ComponentDeclaration>[]) : [];
  return list.filter((c) => c && typeof c.domain === 'string' && (c.kind ?? 'connected') === 'connected').map((c) => c.domain!);
}

/** Whether the handshake secret of the connected component at `domain` differs between two tenant items. */
function secretRotated(before: TenantRecord, after: TenantRecord, domain: string): boolean {
  return declarationOf(before, domain)?.secret !== declarationOf(after, domain)?.secret;
}

/** Whether `tenant` still serves the connected component at `domain`. */
function servesConnected(tenant: TenantRecord, domain: string): boolean {
  const d = declarationOf(tenant, domain);
  return !!d && d.kind === 'connected' && d.enabled === true;
}

export interface ComponentsApi {
  registry: ComponentRegistry;
  webhooks: WebhookComponents;
}

export const components: XmppModule<ComponentsApi> = {
  name: 'components',
  settings: { key: 'components', schema: ComponentsSchema },
  storage: { partitions: [COMPONENT_PREFIX] },
  cli: componentCommands,
  install(ctx) {
    for (const route of componentAdminRoutes(ctx.server)) ctx.addAdminRoute(route);
    const registry = new ComponentRegistry(ctx.openStore());
    const streams = new Map<string, ComponentStream>();
    const remember = (s: ComponentStream) => {
      if (streams.size > 10_000) streams.delete(streams.keys().next().value as string);
      streams.set(s.connectionId, s);
    };
    const webhooks = createWebhookComponents(ctx, async (server, domain) => {
      const found = await findComponent(server, domain);
      const d = found?.declaration;
      return found && d?.kind === 'webhook' && d.enabled ? { tenant: found.tenant.domain, declaration: d } : undefined;
    });
    // Webhook components' deferred stanzas (webhook.ts): one Query of the sweep index per sweep.
    ctx.addSweepStep(async (server, now) => {
      const counts = await webhooks.retry(server, now);
      if (counts.delivered + counts.rescheduled + counts.dead + counts.dropped) ctx.log.info({ ...counts }, 'webhook component retries');
    });

    const protocol: StreamProtocol = {
      knows: (id) => streams.has(id),
      frame: async (server, target, rec, body) => {
        const known = streams.get(target.connectionId);
        const fail = async (err: StreamError) => {
          ctx.log.info({ connectionId: target.connectionId, condition: err.condition, text: err.text }, 'component stream error');
          streams.delete(target.connectionId);
          await server.endConnection(target.connectionId, `stream error ${err.condition}`, { streamError: err, endpoint: target.endpoint });
        };
        let el: Element;
        try {
          const max = await server.maxStanzaBytes(known?.tenant ?? rec?.tenant);
          if (Buffer.byteLength(body, 'utf8') > max) return await fail(new StreamError('policy-violation', `stanza larger than ${max} bytes`));
          el = parseFrame(body);
        } catch (err) {
          if (err instanceof FrameError) return fail(new StreamError(err.condition, err.message));
          throw err;
        }
        const ns = el.attrs.xmlns as string | undefined;
        if (ns === NS.FRAMING && el.name === 'close') {
          // RFC 7395 §3.6: answered with <close/>, then the connection is closed.
          streams.delete(target.connectionId);
          const domain = known?.domain ?? rec?.domain;
          await server.endConnection(target.connectionId, 'closed by component', { closeStream: true, endpoint: target.endpoint });
          if (domain) await registry.release(domain, target.connectionId);
          return;
        }
        try {
          if (known) return await fromComponent(server, known, el, fail);
          if (!rec) return;
          if (rec.stage === 'connected') return await open(server, rec, el, target);
          if (rec.stage === 'opened') return await handshake(server, rec, el, fail);
          const stream = rec.domain ? await streamOf(server, rec) : undefined;
          if (!stream) return await fail(new StreamError('not-authorized', 'the component is no longer declared'));
          if (rec.stage !== 'gone') remember(stream);
          return await fromComponent(server, stream, el, fail);
        } catch (err) {
          if (err instanceof StreamError) return fail(err);
          throw err;
        }
      },
    };
    ctx.addStreamProtocol(COMPONENT_SUBPROTOCOL, protocol);

    /** A component connection's state rebuilt from its item, in a process that did not see its handshake. */
    async function streamOf(server: XmppServer, rec: ConnectionRecord): Promise<ComponentStream | undefined> {
      const found = await findComponent(server, rec.domain!);
      return found && { connectionId: rec.id, endpoint: rec.endpoint, domain: rec.domain!, tenant: found.tenant.domain, expiresAt: rec.expiresAt };
    }

    /** XEP-0114 §3 step 1: the stream header names the component's domain; no stream features follow. */
    async function open(server: XmppServer, rec: ConnectionRecord, el: Element, target: ConnectionTarget): Promise<void> {
      if (el.attrs.xmlns !== NS.FRAMING || el.name !== 'open') throw new StreamError('not-authorized', 'open the stream first');
      const domain = tryParseJID(el.attrs.to)?.toString();
      const streamId = randomBytes(12).toString('hex');
      const header = xml('open', { xmlns: NS.FRAMING, id: streamId, ...(domain ? { from: domain } : {}) });
      const found = domain ? await findComponent(server, domain) : undefined;
      if (!domain || !found || found.declaration.kind !== 'connected') {
        // RFC 6120 §4.9.1.2: a stream error during the opening follows our own header.
        ctx.log.info({ connectionId: rec.id, to: el.attrs.to }, 'component stream for an unknown domain');
        await server.send(target, header);
        throw new StreamError('host-unknown', `${el.attrs.to ?? '(no to)'} is not a component served here`);
      }
      // The tenant key puts the connection in its tenant's index, so disabling the tenant closes it.
      await server.connections.update(rec.id, { stage: 'opened', domain, tenant: found.tenant.domain, streamId });
      server.streamOpened(rec.id, found.tenant.domain);
      await server.send(target, header);
    }

    /** XEP-0114 §3 step 2: <handshake>hex SHA-1(stream id + secret)</handshake>, answered by an empty <handshake/>. */
    async function handshake(server: XmppServer, rec: ConnectionRecord, el: Element, fail: (e: StreamError) => Promise<void>): Promise<void> {
      if (el.name !== 'handshake' || (el.attrs.xmlns !== undefined && el.attrs.xmlns !== NS_COMPONENT)) throw new StreamError('not-authorized', 'send the handshake first');
      const domain = rec.domain!;
      const found = await findComponent(server, domain);
      const d = found?.declaration;
      if (!found || !d || d.kind !== 'connected' || !d.secret || !d.enabled || !handshakeMatches(rec.streamId ?? '', d.secret, el.text())) {
        ctx.log.warn({ connectionId: rec.id, domain, sourceIp: rec.sourceIp, enabled: d?.enabled }, 'component handshake refused');
        // XEP-0114 §3: a failed handshake is the stream error not-authorized.
        throw new StreamError('not-authorized', d && !d.enabled ? 'the component is disabled' : 'handshake failed');
      }
      const now = server.clock.now();
      const stream: ComponentStream = { connectionId: rec.id, endpoint: rec.endpoint, domain, tenant: found.tenant.domain, expiresAt: rec.expiresAt };
      const held = await registry.get(domain, now);
      let replacing: string | undefined;
      if (held && held.connectionId !== rec.id) {
        const old = await server.connections.get(held.connectionId);
        if (old && old.stage !== 'gone') {
          // RFC 6120 §4.9.3.3: a new stream that conflicts with an existing one is refused.
          return fail(new StreamError('conflict', `${domain} is already connected`));
        }
        replacing = held.connectionId;
      }
      if (!(await registry.claim({ ...stream, since: now }, now, replacing))) return fail(new StreamError('conflict', `${domain} is already connected`));
      await server.connections.update(rec.id, { stage: 'bound' });
      remember(stream);
      ctx.log.info({ connectionId: rec.id, domain, tenant: stream.tenant }, 'component connected');
      await server.send(stream, xml('handshake', { xmlns: NS_COMPONENT }));
    }

    /**
     * A stanza from a component: it must name a `from` at the component's domain and a `to` (XEP-0114
     * §2: stanzas carry both, as between servers), and is then routed as from that JID for the tenant.
     */
    async function fromComponent(server: XmppServer, stream: ComponentStream, el: Element, fail: (e: StreamError) => Promise<void>): Promise<void> {
      const ns = el.attrs.xmlns as string | undefined;
      if (!STANZAS.has(el.name)) throw new StreamError('unsupported-stanza-type', `<${el.name}/> is not supported on a component stream`);
      if (ns !== undefined && ns !== NS_COMPONENT && ns !== NS.CLIENT) throw new StreamError('invalid-namespace', `${el.name} must be qualified by ${NS_COMPONENT}`);
      const found = await findComponent(server, stream.domain);
      if (!found?.declaration.enabled || found.declaration.kind !== 'connected' || found.tenant.domain !== stream.tenant) {
        // Missed by the tenant/changed hook (a change within the tenant cache time): host-gone, as there.
        await registry.release(stream.domain, stream.connectionId);
        return fail(new StreamError('host-gone', `${stream.domain} is no longer served here`));
      }
      // RFC 6120 §4.9.3.7 improper-addressing: a stanza between domains lacks `to` or `from`.
      if (el.attrs.from === undefined || el.attrs.to === undefined) throw new StreamError('improper-addressing', 'a component stanza needs from and to');
      const from = tryParseJID(el.attrs.from);
      // RFC 6120 §4.9.3.9 invalid-from: the component may speak only for its own domain, never for
      // another tenant's or another component's.
      if (!from || from.domain !== stream.domain) {
        ctx.log.warn({ connectionId: stream.connectionId, domain: stream.domain, from: el.attrs.from }, 'component sent from a foreign address');
        throw new StreamError('invalid-from', `${el.attrs.from} is not an address of ${stream.domain}`);
      }
      const session = { connectionId: stream.connectionId, endpoint: stream.endpoint, jid: from, expiresAt: stream.expiresAt, tenant: stream.tenant };
      // A component is one connection speaking for many addresses, so it has a rate of its own; without
      // one, the tenant's per-connection rate applies, as to its clients (README "Components").
      if (!(await withinStanzaRate(server, session, el, found.declaration.stanzasPerSecond ?? found.tenant.limits?.stanzasPerSecond))) return;
      await routeStanza(server, session, el);
    }

    // A connected component disabled or removed is ended when its tenant item changes (seen within
    // seconds: docs/architecture.md "Components"), not only at its next stanza. A disabled or deleted
    // tenant's connections, components' included, were closed by the core already.
    // A rotated secret ends it too, so it proves the new one: the old one may be what leaked.
    ctx.hook('tenant/changed', async ({ server, before, after }) => {
      if (!before || !after?.enabled) return undefined;
      for (const domain of connectedDomains(before)) {
        const serves = servesConnected(after, domain);
        if (serves && !secretRotated(before, after, domain)) continue;
        const reg = await registry.get(domain, server.clock.now());
        if (!reg) continue;
        if (serves) await resetComponent(server, reg);
        else await endComponent(server, reg, 'the tenant item changed');
      }
      return undefined;
    });

    /**
     * Ends a component whose secret was changed, with RFC 6120 §4.9.3.16 reset: the server "is closing
     * the stream because ... the keys or certificates used to establish a secure context for the stream
     * have expired or have been revoked during the life of the stream", and the entity may reconnect at
     * once, here with the new secret. Not not-authorized (§4.9.3.12): the component broke no rule of the
     * negotiation it passed; nor host-gone: its domain is still served.
     */
    async function resetComponent(server: XmppServer, reg: ConnectionTarget & { domain: string; connectionId: string }): Promise<void> {
      ctx.log.info({ connectionId: reg.connectionId, domain: reg.domain }, 'component secret changed: disconnected to handshake again');
      await registry.release(reg.domain, reg.connectionId);
      streams.delete(reg.connectionId);
      await server.endConnection(reg.connectionId, 'component secret changed', { streamError: new StreamError('reset', `the secret of ${reg.domain} changed: handshake again`), endpoint: reg.endpoint });
    }

    /**
     * Ends a component whose declaration no longer serves: RFC 6120 §4.9.3.5 host-gone, "the value of the
     * 'to' attribute provided in the initial stream header corresponds to an FQDN that is no longer
     * serviced by the receiving entity" (its domain), rather than not-authorized (§4.9.3.12), which is
     * about stream negotiation: the component did nothing wrong, and may reconnect once it is back.
     */
    async function endComponent(server: XmppServer, reg: ConnectionTarget & { domain: string; connectionId: string }, why: string): Promise<void> {
      ctx.log.info({ connectionId: reg.connectionId, domain: reg.domain, why }, 'component disabled or removed: disconnected');
      await registry.release(reg.domain, reg.connectionId);
      streams.delete(reg.connectionId);
      await server.endConnection(reg.connectionId, 'component disabled', { streamError: new StreamError('host-gone', `${reg.domain} is no longer served here`), endpoint: reg.endpoint });
    }

    // What the server sends a component is qualified by its stream's namespace (XEP-0114 §3), not jabber:client.
    ctx.filterOutbound((stanza, target) => {
      if (!streams.has(target.connectionId) || stanza.attrs.xmlns === NS_COMPONENT) return stanza;
      const copy = parseFrame(stanza.toString());
      copy.attrs.xmlns = NS_COMPONENT;
      return copy;
    }, -1000);

    // Each stanza to a component's domain (and JIDs at it): the router's component event.
    const service = {
      name: COMPONENTS_SERVICE,
      tenantOf: async (server: XmppServer, domain: string) => (await findComponent(server, domain))?.tenant.domain,
      domainsOf: (tenant: TenantRecord) => ((tenant.components ?? []) as ComponentDeclaration[]).filter((c) => declarationOf(tenant, c.domain)).map((c) => c.domain),
      problemsOf: componentsProblems,
    };
    ctx.addComponent(service);
    for (const name of ['message', 'presence', 'iq'] as const) ctx.hook(`${name}/component/${COMPONENTS_SERVICE}`, (e: StanzaEvent) => toComponent(ctx, e));

    /** Delivers a stanza to its component, or answers service-unavailable (RFC 6120 §8.3.3.19) for it. */
    async function toComponent(ctx: ModuleContext, e: StanzaEvent): Promise<true> {
      const { server, stanza, to } = e;
      const type = stanza.attrs.type as string | undefined;
      const unavailable = (why: string): true => {
        ctx.log.info({ domain: to.domain, from: stanza.attrs.from, element: stanza.name, why }, 'stanza to a component not delivered');
        // Presence and errors are never answered with errors (RFC 6120 §8.3.1, RFC 6121 §8.5).
        if (stanza.name === 'presence' || type === 'error' || (stanza.name === 'iq' && type === 'result')) return true;
        throw new StanzaError('service-unavailable', `${to.domain} is not available`);
      };
      const found = await findComponent(server, to.domain);
      const d = found?.declaration;
      if (!found || !d) return unavailable('not declared');
      const copy = parseFrame(stanza.toString());
      copy.attrs.xmlns = NS_COMPONENT;
      if (d.kind === 'webhook') {
        if (!d.enabled) return unavailable('disabled');
        // 'kept': a message or presence waits for the sweeper's attempts, as a server queues for a peer (webhook.ts).
        if ((await webhooks.deliver(server, found.tenant.domain, d, copy)) === 'failed') return unavailable('webhook failed');
        return true;
      }
      const reg = await registry.get(to.domain, server.clock.now());
      if (!reg) return unavailable('not connected');
      if (!d.enabled) {
        // Disabled while connected and not yet ended by the tenant/changed hook: it goes now.
        await endComponent(server, reg, 'a stanza for a disabled component');
        return unavailable('disabled');
      }
      if (await server.send(reg, copy)) return true;
      await registry.release(to.domain, reg.connectionId);
      return unavailable('connection gone');
    }

    return { registry, webhooks };
  },
};
