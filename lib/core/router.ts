// Stanza routing for a client's stanzas: RFC 6120 §8.1.2.1 (the server stamps `from`), §10
// (handling by address) and RFC 6121 §8 (rules for local users). Like Prosody's stanza_router,
// each stanza becomes a coarse event ("message/bare"), IQs a fine one
// ("iq-get/host/urn:xmpp:ping:ping"); whatever nobody handles gets one generic answer.
import { StanzaError, errorReply } from '../xmpp/errors.ts';
import { type JID, tryParseJID } from '../xmpp/jid.ts';
import { NS } from '../xmpp/namespaces.ts';
import { type Element, xml } from '../xmpp/xml.ts';
import type { SessionEntry } from '../store/sessions.ts';
import type { IqEvent, Session, StanzaEvent, TargetKind } from './events.ts';
import type { XmppServer } from './server.ts';

export async function routeStanza(server: XmppServer, origin: Session, stanza: Element): Promise<void> {
  // RFC 7395 §3.3.2 framing: we always qualify what we send with jabber:client.
  stanza.attrs.xmlns = NS.CLIENT;
  const type = stanza.attrs.type as string | undefined;
  try {
    if (stanza.name === 'iq' && !['get', 'set', 'result', 'error'].includes(type ?? '')) throw new StanzaError('bad-request', 'IQ type must be get, set, result or error');
    if (stanza.name === 'iq' && (type === 'get' || type === 'set') && stanza.attrs.id === undefined) throw new StanzaError('bad-request', 'IQ requires an id');

    let to: JID | null = null;
    if (stanza.attrs.to !== undefined) {
      to = tryParseJID(stanza.attrs.to);
      // RFC 6120 §8.3.3.8.
      if (!to) throw new StanzaError('jid-malformed', `invalid address ${stanza.attrs.to}`);
      stanza.attrs.to = to.toString();
    }
    // RFC 6120 §8.1.2.1: the server MUST add or override `from` with the sender's full JID, so a
    // spoofed `from` never leaves the server.
    stanza.attrs.from = origin.jid.toString();

    // A component's stanzas act for its tenant (docs/architecture.md "Components").
    const home = origin.tenant ?? origin.jid.domain;
    const component = to && to.domain !== origin.jid.domain ? await server.componentFor(to.domain) : undefined;
    if (to && component) {
      const event = await componentEvent(server, origin, stanza, to, component);
      // Any module may act first on what a session sends to a component, as on what it sends to
      // another server (RFC 6121 §3.1.2: the user's server processes a subscription request before
      // routing it); it then sends it on itself (routeToComponent), or not.
      const taken = await server.registry.events.fire(`${stanza.name}/component`, event);
      if (taken === undefined) await fireComponent(event, component.component.name);
      return;
    }
    const kind = targetKind(origin, to);
    if (kind !== 'self' && to && to.domain !== origin.jid.domain && !(await server.mayExchange(home, to.domain))) {
      // No server-to-server, and tenants are isolated unless both allow each other: another
      // domain is unreachable from here, and the error does not say whether it is hosted.
      throw new StanzaError('remote-server-not-found', `${to.domain} is not reachable from ${origin.jid.domain}`);
    }
    const event: StanzaEvent = { server, origin, stanza, to: to ?? origin.jid.bare(), kind };
    if (stanza.name === 'iq') return await routeIq(event);
    const handled = await server.registry.events.fire(`${stanza.name}/${kind}`, event);
    if (handled !== undefined) return;
    if (stanza.name === 'message') {
      // RFC 6120 §10.3: the server handles what is addressed to its domain itself; a message to it that
      // no module takes is refused like a message to an account that cannot take it (RFC 6121 §8.5.1).
      if (kind === 'host') {
        if (type === 'error') return;
        throw new StanzaError('service-unavailable');
      }
      return await deliverMessage(server, origin, stanza, event.to);
    }
    // Presence nobody handled (the presence extension handles the ones that matter) is ignored,
    // as RFC 6121 §8.5 prescribes for presence to unknown or unavailable recipients.
  } catch (err) {
    if (!(err instanceof StanzaError)) throw err;
    if (type !== 'error' && !(stanza.name === 'iq' && type === 'result')) {
      stanza.attrs.from = origin.jid.toString();
      await server.send(origin, errorReply(stanza, err));
    }
  }
}

type Served = NonNullable<Awaited<ReturnType<XmppServer['componentFor']>>>;

async function componentEvent(server: XmppServer, origin: Session, stanza: Element, to: JID, component: Served): Promise<StanzaEvent> {
  if (!(await server.mayExchange(origin.tenant ?? origin.jid.domain, component.tenant))) throw new StanzaError('remote-server-not-found', `${to.domain} is not reachable from ${origin.jid.domain}`);
  return { server, origin, stanza, to, kind: 'component', tenant: component.tenant, component: component.component.name };
}

async function fireComponent(event: StanzaEvent, name: string): Promise<void> {
  const { server, stanza } = event;
  const type = stanza.attrs.type as string | undefined;
  const handled = await server.registry.events.fire(`${stanza.name}/component/${name}`, event);
  // A component answers what it understands; the rest gets the generic answer.
  if (handled === undefined && stanza.name !== 'presence' && type !== 'error' && type !== 'result') throw new StanzaError('service-unavailable');
}

/**
 * Sends `stanza` to the component that serves its `to` (docs/architecture.md "Components"), as
 * `origin` (or an address of its account: `from` is kept as the caller set it), straight to the
 * component's own event `<kind>/component/<name>`, past `<kind>/component`: for a module that took a
 * stanza there and now sends it on, or that sends for an account (RFC 6121 §4.2.2: presence to a
 * contact at a component). False if no component serves the address. Throws a StanzaError
 * (remote-server-not-found, service-unavailable) for the caller to answer or log.
 */
export async function routeToComponent(server: XmppServer, origin: Session, stanza: Element): Promise<boolean> {
  const to = tryParseJID(stanza.attrs.to);
  const component = to ? await server.componentFor(to.domain) : undefined;
  if (!to || !component) return false;
  stanza.attrs.xmlns = NS.CLIENT;
  await fireComponent(await componentEvent(server, origin, stanza, to, component), component.component.name);
  return true;
}

function targetKind(origin: Session, to: JID | null): TargetKind {
  if (!to) return 'self';
  if (!to.local) return 'host'; // the domain itself, or domain/resource
  if (to.domain === origin.jid.domain && to.local === origin.jid.local) return to.resource ? 'full' : 'self';
  return to.resource ? 'full' : 'bare';
}

async function routeIq(event: StanzaEvent): Promise<void> {
  const { server, origin, stanza, kind } = event;
  const type = stanza.attrs.type;
  if (type === 'result' || type === 'error') {
    // Replies go to full JIDs; anything else (replies to roster pushes, to the server) ends here,
    // after telling the server's liveness check about answers to its pings (XEP-0199 §4.2).
    if (kind === 'full') await deliverToFullJid(server, origin, event.to, stanza, () => undefined);
    else if (kind === 'host' || !stanza.attrs.to) await server.answeredPing(origin, stanza.attrs.id);
    return;
  }
  if (kind === 'full') {
    // RFC 6121 §8.5.3.1: an IQ to a resource goes to that resource; none → service-unavailable.
    await deliverToFullJid(server, origin, event.to, stanza, () => {
      throw new StanzaError('service-unavailable');
    });
    return;
  }
  const children = stanza.children.filter((c): c is Element => typeof c !== 'string');
  // RFC 6120 §8.2.3: a get or set carries exactly one payload.
  if (children.length !== 1) throw new StanzaError('bad-request', 'an IQ get or set carries exactly one child element');
  const child = children[0];
  const followUps: (() => Promise<void>)[] = [];
  const iqEvent: IqEvent = { ...event, child, afterReply: (then) => followUps.push(then) };
  const name = `iq-${type}/${kind}/${child.attrs.xmlns}:${child.name}`;
  let result: unknown;
  try {
    result = await server.registry.events.fire(name, iqEvent);
    // The account answers for itself what the server answers (ping, disco, version addressed to it).
    if (result === undefined && kind === 'self' && !stanza.attrs.to) result = await server.registry.events.fire(`iq-${type}/host/${child.attrs.xmlns}:${child.name}`, iqEvent);
  } catch (err) {
    if (!(err instanceof StanzaError)) throw err;
    await server.send(origin, errorReply(stanza, err));
    return;
  }
  // xmpp.js convention: an element is the payload of the result, true an empty result.
  if (result === undefined) throw new StanzaError('service-unavailable');
  const reply = xml('iq', { xmlns: NS.CLIENT, type: 'result', id: stanza.attrs.id, to: origin.jid.toString(), ...(stanza.attrs.to ? { from: stanza.attrs.to } : {}) });
  if (typeof result === 'object' && result !== null && 'name' in result) reply.cnode(result as Element);
  await server.send(origin, reply);
  for (const then of followUps) await then();
}

async function deliverToFullJid(server: XmppServer, origin: Session, to: JID, stanza: Element, otherwise: () => void): Promise<void> {
  const sessions = await server.sessions.list(to.bare().toString());
  if ((await server.registry.events.fire('stanza/deliver', { server, origin, stanza, to, sessions })) !== undefined) return;
  const target = sessions.find((s) => s.resource === to.resource);
  if (!target || !(await server.send(target, stanza))) otherwise();
}

/**
 * RFC 6121 §8.5.2 (bare JID) and §8.5.3 (full JID) for messages to a local account. An online
 * recipient costs exactly one read (its session item) and one post per receiving connection. The
 * sessions that took it are announced as "message/delivered"; a message nobody took goes to
 * "message/undeliverable" (offline storage hooks it), and if no module keeps it the sender hears so:
 * a StanzaError is thrown. `origin` is the sending session, none when the server itself sends (MUC
 * invitations).
 */
export async function deliverMessage(server: XmppServer, origin: Session | undefined, stanza: Element, to: JID): Promise<void> {
  const type = stanza.attrs.type ?? 'normal';
  const bare = to.bare().toString();
  const sessions = await server.sessions.list(bare);
  // A module may stop the delivery here, with the recipient's sessions in hand (XEP-0191 blocking).
  if ((await server.registry.events.fire('stanza/deliver', { server, origin, stanza, to, sessions })) !== undefined) return;
  const delivered = (recipients: SessionEntry[]) => server.registry.events.fireAll('message/delivered', { server, origin, stanza, to, recipients, sessions });

  if (to.resource) {
    const target = sessions.find((s) => s.resource === to.resource);
    if (target && (await server.send(target, stanza))) return delivered([target]);
    // §8.5.3.2.1: no such resource — groupchat gets an error, error is dropped, others go to the bare JID.
    if (type === 'groupchat') throw new StanzaError('service-unavailable');
    if (type === 'error') return;
  }
  // RFC 6121 §8.5.2.1.1 lets a normal message reach every non-negative resource, as chat does; a
  // module asks for it per message (XEP-0353: every device rings). In memory, no I/O.
  const everyResource = type === 'normal' && sessions.length > 0 && (await server.registry.events.fire('message/every-resource', { server, origin, stanza, to })) !== undefined;
  const recipients = await deliverToAvailable(server, sessions, stanza, everyResource ? 'chat' : type);
  if (recipients.length) return delivered(recipients);
  if (type === 'error') return;
  // §8.5.2.2 / §8.5.1: nobody online. Check the account exists (only now, so online delivery stays at one read).
  if (!sessions.length && !(await server.users.exists(to.domain, to.local))) throw new StanzaError('service-unavailable');
  if (type === 'groupchat') throw new StanzaError('service-unavailable');
  if (type === 'headline') return; // §8.5.2.2.1: headlines are not stored, and no error is owed.
  const kept = await server.registry.events.fire('message/undeliverable', { server, origin, stanza, to });
  // §8.5.2.2.1: "either (a) store the message offline … or (b) return a <service-unavailable/> error".
  if (kept === undefined) throw new StanzaError('service-unavailable');
}

/**
 * RFC 6121 §8.5.2.1.1, for a bare JID with at least one available resource of non-negative priority:
 * `normal` goes to the one(s) of highest priority; `chat` to every such resource (the option of
 * §8.5.2.1.1 that keeps all of the user's devices in the conversation); `headline` to every such
 * resource (§8.5.2.1.1 lets it reach all of them). `groupchat` reaches none (§8.5.2.1.1: error).
 * Returns the sessions that took the stanza.
 */
async function deliverToAvailable(server: XmppServer, sessions: SessionEntry[], stanza: Element, type: string): Promise<SessionEntry[]> {
  const targets = bareJidTargets(sessions, type);
  const gone = new Set(await server.sendMany(targets, stanza));
  return targets.filter((t) => !gone.has(t));
}

/** The sessions a message of `type` to the bare JID goes to (RFC 6121 §8.5.2.1.1); pure. */
export function bareJidTargets<S extends Pick<SessionEntry, 'available' | 'priority'>>(sessions: S[], type: string): S[] {
  const candidates = sessions.filter((s) => s.available && s.priority >= 0);
  if (!candidates.length || type === 'groupchat' || type === 'error') return [];
  if (type === 'chat' || type === 'headline') return candidates;
  const top = Math.max(...candidates.map((s) => s.priority));
  return candidates.filter((s) => s.priority === top);
}
