// The stream over WebSocket (RFC 7395) and its negotiation (RFC 6120 §4-7): open, features, SASL,
// restart, resource binding, then stanzas to the router. Every frame runs through handleFrame.
import { randomBytes } from 'node:crypto';
import { StanzaError, StreamError, errorReply } from '../xmpp/errors.ts';
import { JIDError, makeJID, tryParseJID } from '../xmpp/jid.ts';
import { NS } from '../xmpp/namespaces.ts';
import { type Element, FrameError, parseFrame, xml } from '../xmpp/xml.ts';
import type { ConnectionRecord } from '../store/connections.ts';
import { SessionLimitError } from '../store/sessions.ts';
import type { ConnectionTarget } from './management-api.ts';
import type { Session } from './events.ts';
import { routeStanza } from './router.ts';
import { handleSasl } from './sasl.ts';
import type { XmppServer } from './server.ts';

const STANZAS = new Set(['message', 'presence', 'iq']);
/** Longest a frame is held back to respect a rate limit before the sender is told instead. */
const MAX_RATE_WAIT_MS = 250;

export async function handleFrame(server: XmppServer, target: ConnectionTarget, body: string): Promise<void> {
  const { connectionId } = target;
  // Bound sessions are cached: a stanza from one costs no read of its own state.
  const session = server.cachedSession(connectionId);
  // A connection of a module's own subprotocol (docs/modules.md "What else a module can add").
  for (const { protocol } of server.registry.streamProtocols.values()) if (protocol.knows(connectionId)) return protocol.frame(server, target, undefined, body);
  const rec = session ? undefined : await server.connections.get(connectionId);
  const own = rec?.protocol ? server.registry.streamProtocols.get(rec.protocol) : undefined;
  if (own) return own.protocol.frame(server, target, rec, body);
  if (!session && !rec) {
    // The stream was closed (RFC 7395 §3.6) or failed, or its tombstone expired: nothing more is read.
    server.log.warn({ connectionId }, 'frame for an unknown connection; closing it');
    if (!server.isSocketGone(connectionId)) await server.management.close(target);
    return;
  }
  if (rec?.stage === 'gone') return handleTrailingFrame(server, rec, body);
  const fail = (err: StreamError) => streamError(server, connectionId, target.endpoint, err);

  const scope = server.metrics.scope();
  if (scope) scope.tenant ??= rec?.domain;
  const el = await parseWithinLimits(server, body, session?.jid.domain ?? rec?.domain);
  if (el instanceof StreamError) return fail(el);
  const ns = el.attrs.xmlns as string | undefined;
  if (scope) scope.kind = STANZAS.has(el.name) && typeof el.attrs.type === 'string' ? `${el.name}:${el.attrs.type}` : el.name;

  try {
    if (ns === NS.FRAMING && el.name === 'open') return await openStream(server, rec ?? (await server.connections.get(connectionId)), el, target);
    // RFC 6120 §4.9.3.10: a stream header in a namespace other than the stream's (RFC 7395 §3.3.2: the
    // framing namespace; an RFC 6120 <stream:stream> header is this case too).
    if (el.name === 'open' || el.name === 'stream:stream') return fail(new StreamError('invalid-namespace', `<${el.name}/> must be qualified by ${NS.FRAMING}`));
    if (ns === NS.FRAMING && el.name === 'close') {
      // RFC 7395 §3.6: answer <close/>, then the server closes the WebSocket.
      await server.endConnection(connectionId, 'closed by client', { closeStream: true, endpoint: target.endpoint });
      return;
    }
    if (session) return await onBoundElement(server, session, el);
    if (!rec || rec.stage === 'connected') return fail(new StreamError('not-authorized', 'open the stream first'));
    if (ns === NS.SASL) return await handleSasl(server, rec, el);
    if (rec.stage === 'bound' && !STANZAS.has(el.name)) {
      // A nonza (CSI, XEP-0198) reaching a container that has not cached the session yet.
      const bound = await server.boundSession(connectionId, rec);
      if (bound) return await onBoundElement(server, bound, el);
    }
    if (rec.stage === 'authenticated' && !STANZAS.has(el.name) && (await unboundElement(server, rec, el))) return;
    if (STANZAS.has(el.name) && (ns === undefined || ns === NS.CLIENT)) {
      if (rec.stage === 'authenticated' && el.name === 'iq') return await bindResource(server, rec, el);
      if (rec.stage === 'opened' && el.name === 'iq' && (await preAuthIq(server, rec, el))) return;
      if (rec.stage === 'bound') {
        const bound = await server.boundSession(connectionId, rec);
        if (bound) return await onBoundElement(server, bound, el);
      }
      // RFC 6120 §6.4.6 / §7.2: no stanzas before authentication and binding.
      return fail(new StreamError('not-authorized', 'authenticate and bind a resource first'));
    }
    return onUnknownElement(server, el, fail);
  } catch (err) {
    if (err instanceof StreamError) return fail(err);
    if (isTransient(err)) throw err;
    return answerFailure(server, target, el, err, fail);
  }
}

/**
 * Whether a frame that failed should be tried again: the store or the gateway throttled, timed out or
 * failed on its side, or the network did. The ingest hands such a frame back to its queue, in order
 * (docs/architecture.md "Order").
 */
function isTransient(err: unknown): boolean {
  const e = err as { $metadata?: unknown; $retryable?: unknown; $fault?: string; name?: string; code?: string };
  if (e?.$metadata) return !!e.$retryable || e.$fault === 'server' || !['ValidationException', 'SerializationException'].includes(e.name ?? '');
  return ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN'].includes(e?.code ?? '') || e?.name === 'TimeoutError';
}

/**
 * Any other failure is a fault of ours that a retry would only repeat, and a retried frame would
 * hold up (and, at the dead-letter queue, take along) every frame behind it. So it is logged and the
 * sender told: internal-server-error for a stanza (RFC 6120 §8.3.3.6), a stream error otherwise
 * (§4.9.3.9). Nothing is lost silently.
 */
async function answerFailure(server: XmppServer, target: ConnectionTarget, el: Element, err: unknown, fail: (e: StreamError) => Promise<void>): Promise<void> {
  server.metrics.count('Errors');
  const scope = server.metrics.scope();
  if (scope) scope.outcome = 'error';
  server.log.error({ err, connectionId: target.connectionId, element: el.name }, 'frame failed; answered internal-server-error');
  const type = el.attrs.type;
  if (!STANZAS.has(el.name)) return fail(new StreamError('internal-server-error'));
  if (type === 'error' || (el.name === 'iq' && type === 'result')) return;
  const reply = errorReply(el, new StanzaError('internal-server-error'));
  delete reply.attrs.to;
  await server.send(target, reply);
}

/**
 * One frame as an element, or the stream error it earns: RFC 6120 §13.12 item 4 lets a server limit
 * stanza size, and the parser bounds nesting depth (lib/xmpp/xml.ts); both are policy-violation
 * (RFC 6120 §4.9.3.18). RFC 6120 §11 restrictions and well-formedness come from the parser too.
 */
async function parseWithinLimits(server: XmppServer, body: string, domain: string | undefined): Promise<Element | StreamError> {
  const maxBytes = await server.maxStanzaBytes(domain);
  if (Buffer.byteLength(body, 'utf8') > maxBytes) return new StreamError('policy-violation', `stanza larger than ${maxBytes} bytes`);
  try {
    return parseFrame(body);
  } catch (err) {
    if (err instanceof FrameError) return new StreamError(err.condition, err.message);
    throw err;
  }
}

/** Presence types that act on the account's subscriptions (RFC 6121 §3), not on a session's availability. */
const SUBSCRIPTION_TYPES = new Set(['subscribe', 'subscribed', 'unsubscribe', 'unsubscribed']);

/**
 * A frame the client sent before its socket went away, found behind the connection's tombstone
 * (docs/architecture.md "Connections die silently"). Its stanzas are still the client's: they are
 * processed as from the JID the connection had, and what they would send back to it is dropped
 * (server.send knows the socket is gone). Presence that is about the session (available, directed,
 * probes, unavailable) is dropped: the session is over and its unavailable went out when it ended
 * (RFC 6121 §4.5.2), so an available now would announce a resource nobody can reach. Subscription
 * requests and approvals belong to the account (RFC 6121 §3) and are processed.
 */
async function handleTrailingFrame(server: XmppServer, rec: ConnectionRecord, body: string): Promise<void> {
  const session = server.goneSession(rec);
  if (!session) {
    server.log.info({ connectionId: rec.id }, 'frame after the socket went, before binding; dropped');
    return;
  }
  const fail = (err: StreamError) => streamError(server, rec.id, rec.endpoint, err);
  const el = await parseWithinLimits(server, body, session.jid.domain);
  if (el instanceof StreamError) return fail(el);
  const ns = el.attrs.xmlns as string | undefined;
  try {
    if (ns === NS.FRAMING && el.name === 'close') {
      await server.endConnection(rec.id, 'closed by client', { closeStream: true });
      return;
    }
    if (ns === NS.FRAMING || (el.name === 'presence' && !SUBSCRIPTION_TYPES.has(el.attrs.type as string))) {
      server.log.info({ connectionId: rec.id, jid: session.jid.toString(), element: el.name, type: el.attrs.type }, 'after the socket went: not processed');
      return;
    }
    return await onBoundElement(server, session, el);
  } catch (err) {
    if (err instanceof StreamError) return fail(err);
    throw err;
  }
}

async function onBoundElement(server: XmppServer, session: Session, el: Element): Promise<void> {
  const ns = el.attrs.xmlns as string | undefined;
  if (STANZAS.has(el.name) && (ns === undefined || ns === NS.CLIENT)) {
    if (!(await withinRate(server, session, el))) return;
    server.metrics.count('StanzasIn', 1, session.jid.domain);
    server.metrics.use(session.jid.domain, 'stanzas', 1);
    // XEP-0198 counts what the client sent; nothing else is read or written for it here. A handler
    // that returns true takes the stanza out of routing (stream management: a stanza of a connection
    // its session has left, which the client sends again). A message refused by the quota below was
    // still handled (answered with an error), so it is counted first.
    if ((await server.registry.events.fire('stanza/in', { server, origin: session, stanza: el })) === true) return;
    if (el.name === 'message') {
      if (!(await withinMessageQuota(server, session, el))) return;
      server.metrics.use(session.jid.domain, 'messages', 1);
    }
    return routeStanza(server, session, el);
  }
  const fail = (err: StreamError) => streamError(server, session.connectionId, session.endpoint, err);
  const handled = await server.registry.events.fire(`stream-element/${ns}:${el.name}`, {
    server,
    origin: session,
    stanza: el,
    to: session.jid,
    kind: 'self',
  });
  if (handled === undefined) return onUnknownElement(server, el, fail);
}

/**
 * The tenant's stanzas-per-second limit: a short wait slows the client (its frames queue behind this
 * one, in order); a longer one is answered with resource-constraint, so nothing is dropped silently.
 */
async function withinRate(server: XmppServer, session: Session, el: Element): Promise<boolean> {
  return withinStanzaRate(server, session, el, (await server.tenants.get(session.jid.domain))?.limits?.stanzasPerSecond);
}

/**
 * The per-connection stanza rate (the token bucket of `server.rates`, by connection id) at `rate` per
 * second, for any stream that sends stanzas (clients above; XEP-0114 components with their own rate):
 * true if the stanza may go on. Counted and answered as withinRate says.
 */
export async function withinStanzaRate(server: XmppServer, session: Session, el: Element, rate: number | undefined): Promise<boolean> {
  if (!rate) return true;
  const tenant = session.tenant ?? session.jid.domain;
  const wait = server.rates.take(session.connectionId, rate, server.clock.now());
  if (wait === 0) return true;
  if (wait <= MAX_RATE_WAIT_MS) {
    await new Promise((r) => setTimeout(r, wait));
    server.rates.take(session.connectionId, rate, server.clock.now());
    return true;
  }
  server.log.info({ jid: session.jid.toString(), rate }, 'stanza rate exceeded');
  server.metrics.count('Throttles', 1, tenant);
  refused(server);
  const type = el.attrs.type;
  if (type !== 'error' && !(el.name === 'iq' && type === 'result')) {
    el.attrs.from = session.jid.toString();
    await server.send(session, errorReply(el, new StanzaError('resource-constraint', `more than ${rate} stanzas per second`, 'wait')));
  }
  return false;
}

/**
 * The tenant's quotas.messagesPerMinute, per session: a bucket of that many messages refilled over a
 * minute, in memory (soft, as the stanza rate is: docs/architecture.md "Metrics and usage"). A message
 * over it is answered resource-constraint of type wait (RFC 6120 §8.3.3.18), counted and logged.
 */
async function withinMessageQuota(server: XmppServer, session: Session, el: Element): Promise<boolean> {
  const perMinute = (await server.tenants.get(session.jid.domain))?.quotas?.messagesPerMinute;
  if (!perMinute || server.messageQuota.take(session.connectionId, perMinute / 60, server.clock.now(), perMinute) === 0) return true;
  server.log.info({ tenant: session.jid.domain, jid: session.jid.toString(), messagesPerMinute: perMinute }, 'message quota exceeded');
  server.metrics.count('MessageQuotaRefusals', 1, session.jid.domain);
  refused(server);
  // RFC 6120 §8.3.1: never answer an error with an error.
  if (el.attrs.type !== 'error') {
    el.attrs.from = session.jid.toString();
    await server.send(session, errorReply(el, new StanzaError('resource-constraint', `more than ${perMinute} messages per minute (the tenant's quota)`, 'wait')));
  }
  return false;
}

/** Marks the current frame's outcome as refused by a limit or quota (its log line). */
function refused(server: XmppServer): void {
  const scope = server.metrics.scope();
  if (scope) scope.outcome = 'refused';
}

function onUnknownElement(server: XmppServer, el: Element, fail: (e: StreamError) => Promise<void>): Promise<void> {
  const ns = el.attrs.xmlns as string | undefined;
  // RFC 6120 §4.9.3.10: a stanza in a namespace other than jabber:client.
  if (STANZAS.has(el.name)) return fail(new StreamError('invalid-namespace', `${el.name} must be qualified by jabber:client`));
  // RFC 6120 §4.9.3.23: a first-level child the server does not support.
  return fail(new StreamError('unsupported-stanza-type', `<${el.name}${ns ? ` xmlns='${ns}'` : ''}/> is not supported`));
}

async function streamError(server: XmppServer, connectionId: string, endpoint: string, err: StreamError): Promise<void> {
  const scope = server.metrics.scope();
  if (scope) scope.outcome = `stream-error:${err.condition}`;
  server.log.info({ connectionId, condition: err.condition, text: err.text }, 'stream error');
  await server.endConnection(connectionId, `stream error ${err.condition}`, { streamError: err, endpoint });
}

/**
 * IQs an extension answers before authentication (XEP-0077 registration). Returns false when no
 * extension handles it, so the stream error for early stanzas applies.
 */
async function preAuthIq(server: XmppServer, rec: ConnectionRecord, iq: Element): Promise<boolean> {
  const child = iq.children.find((c): c is Element => typeof c !== 'string');
  const entry = child && server.registry.preAuthIq.get(`${iq.attrs.type}/${child.attrs.xmlns}:${child.name}`);
  if (!entry || iq.attrs.id === undefined) return false;
  const tenant = rec.domain ? await server.tenants.get(rec.domain) : undefined;
  if (!server.registry.isEnabled(entry.module, tenant)) return false;
  const handler = entry.handler;
  const target = { connectionId: rec.id, endpoint: rec.endpoint };
  iq.attrs.xmlns = NS.CLIENT;
  try {
    const result = await handler(server, rec, iq, child);
    const reply = xml('iq', { xmlns: NS.CLIENT, type: 'result', id: iq.attrs.id });
    if (result !== true) reply.cnode(result);
    await server.send(target, reply);
  } catch (err) {
    if (!(err instanceof StanzaError)) throw err;
    await server.send(target, errorReply(iq, err));
  }
  return true;
}

/**
 * A nonza a module answers between authentication and binding (XEP-0198 <resume/>, docs/modules.md
 * "What else a module can add"). False when no enabled module takes it.
 */
async function unboundElement(server: XmppServer, rec: ConnectionRecord, el: Element): Promise<boolean> {
  const entry = server.registry.unboundElements.get(`${el.attrs.xmlns}:${el.name}`);
  if (!entry || !rec.domain) return false;
  if (!server.registry.isEnabled(entry.module, await server.tenants.get(rec.domain))) return false;
  await entry.handler(server, rec, el);
  return true;
}

/** RFC 7395 §3.4 (opening) and §3.5 (restart after SASL); RFC 6120 §4.7 attributes. */
async function openStream(server: XmppServer, rec: ConnectionRecord | undefined, el: Element, target: ConnectionTarget): Promise<void> {
  if (!rec) return;
  const domain = tryParseJID(el.attrs.to)?.domain;
  const streamId = randomBytes(12).toString('hex');
  const header = xml('open', {
    xmlns: NS.FRAMING,
    id: streamId,
    version: '1.0',
    'xml:lang': 'en',
    ...(domain ? { from: domain } : {}),
  });
  // RFC 6120 §4.9.1.2: a stream error during the opening is sent after our own stream header.
  const fail = async (err: StreamError) => {
    await server.send(target, header);
    await streamError(server, rec.id, rec.endpoint, err);
  };
  if (!domain || !(await server.hosts(domain))) return fail(new StreamError('host-unknown', `${el.attrs.to ?? '(no to)'} is not served here`));
  if (rec.domain && rec.domain !== domain) return fail(new StreamError('host-unknown', 'the restarted stream names another domain'));
  if (el.attrs.version !== '1.0') return fail(new StreamError('unsupported-version', 'version 1.0 is required'));

  const authenticated = rec.stage === 'authenticated' || rec.stage === 'bound';
  if (rec.stage === 'connected') server.metrics.count('Connections', 1, domain);
  const scope = server.metrics.scope();
  if (scope) scope.tenant = domain;
  const next: Partial<ConnectionRecord> = { stage: authenticated ? rec.stage : 'opened', domain, tenant: domain, streamId, sasl: undefined };
  await server.connections.update(rec.id, next);
  server.streamOpened(rec.id, domain);
  const updated = { ...rec, ...next };
  const features = xml('stream:features', { 'xmlns:stream': NS.STREAMS });
  const tenant = await server.tenants.get(domain);
  for (const { module, feature: f } of server.registry.streamFeatures) {
    if ((f.stage === 'post-auth') !== authenticated || !server.registry.isEnabled(module, tenant)) continue;
    const child = await f.element(server, updated);
    if (child) features.cnode(child);
  }
  await server.send(target, header);
  await server.send(target, features);
}

/** RFC 6120 §7: resource binding, the last step before the session can send stanzas. */
async function bindResource(server: XmppServer, rec: ConnectionRecord, iq: Element): Promise<void> {
  const target = { connectionId: rec.id, endpoint: rec.endpoint };
  const bind = iq.getChild('bind', NS.BIND);
  if (iq.attrs.type !== 'set' || !bind) {
    // Only binding is possible here (RFC 6120 §7.1); answer IQs rather than killing the stream.
    if (iq.attrs.type === 'get' || iq.attrs.type === 'set') await server.send(target, errorReply(iq, new StanzaError('not-authorized', 'bind a resource first')));
    return;
  }
  const requested = bind.getChildText('resource')?.trim();
  let jid;
  try {
    jid = makeJID(rec.username!, rec.domain!, requested || `${randomBytes(6).toString('hex')}`);
  } catch (err) {
    if (!(err instanceof JIDError)) throw err;
    // RFC 6120 §7.7.2.1: a resource that cannot be processed.
    await server.send(target, errorReply(iq, new StanzaError('bad-request', 'invalid resource')));
    return;
  }
  const session: Session = { connectionId: rec.id, endpoint: rec.endpoint, jid, expiresAt: rec.expiresAt, boundAt: server.clock.now() };
  const tenant = await server.tenants.get(jid.domain);
  const maxSessions = tenant?.limits?.sessionsPerUser;
  const quota = tenant?.quotas?.connections;
  // The tenant's quotas.connections: one conditional write takes a place among its live sessions
  // (docs/architecture.md "Metrics and usage"); the session entry records it, so its end gives it back.
  if (quota && !(await server.usage.acquireSession(jid.domain, quota))) {
    server.log.info({ tenant: jid.domain, connectionId: rec.id, quota }, 'connection quota reached');
    server.metrics.count('ConnectionQuotaRefusals', 1, jid.domain);
    // RFC 6120 §4.9.3.18: a local service policy (the tenant's quota) refuses the session.
    throw new StreamError('policy-violation', `the tenant ${jid.domain} has reached its quota of ${quota} connections`);
  }
  let replaced;
  try {
    replaced = await server.sessions.bind(
      jid.bare().toString(),
      { resource: jid.resource, connectionId: rec.id, endpoint: rec.endpoint, boundAt: Date.now(), expiresAt: rec.expiresAt, available: false, priority: 0, ...sessionDataMaps(server), ...(quota ? { quota: true } : {}) },
      maxSessions,
    );
  } catch (err) {
    if (quota) await server.usage.releaseSession(jid.domain);
    if (!(err instanceof SessionLimitError)) throw err;
    // RFC 6120 §7.6.2.1: the account has reached its limit of connected resources.
    await server.send(target, errorReply(iq, new StanzaError('resource-constraint', `at most ${maxSessions} sessions per account`, 'wait')));
    return;
  }
  await server.connections.update(rec.id, { stage: 'bound', resource: jid.resource, sasl: undefined, boundAt: session.boundAt });
  await server.cacheIfSettled(session);
  server.log.info({ connectionId: rec.id, jid: jid.toString() }, 'bound');
  await server.send(
    target,
    xml('iq', { xmlns: NS.CLIENT, type: 'result', id: iq.attrs.id }, xml('bind', { xmlns: NS.BIND }, xml('jid', {}, jid.toString()))),
  );
  if (replaced) {
    // RFC 6120 §7.7.2.2 option 1: the new session wins; the old one gets a conflict stream error.
    server.log.info({ jid: jid.toString(), old: replaced.connectionId }, 'session replaced');
    await server.endConnection(replaced.connectionId, 'replaced', { streamError: new StreamError('conflict', 'replaced by a new session'), endpoint: replaced.endpoint });
    // The session map entry already belongs to the new session, so endConnection cannot find the
    // old one to end: its end (unavailable to contacts, leaving rooms) is announced here.
    await server.registry.events.fireAll('session-ended', {
      server,
      session: { connectionId: replaced.connectionId, endpoint: replaced.endpoint, jid, expiresAt: replaced.expiresAt },
      entry: replaced,
      reason: 'replaced',
    });
  }
  await server.registry.events.fireAll('session-bound', { server, origin: session });
}

/** Empty per-module maps for a new session entry (lib/core/modules.ts SessionData); none if no module keeps any. */
function sessionDataMaps(server: XmppServer): { data?: Record<string, Record<string, unknown>> } {
  const names = server.registry.sessionDataModules();
  return names.length ? { data: Object.fromEntries(names.map((n) => [n, {}])) } : {};
}
