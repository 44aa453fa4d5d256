// RFC 6121 §4: presence. Initial presence (broadcast, probes, pending requests, then "presence/initial"
// for what waited, e.g. offline messages),
// updates, unavailable, directed presence, and the unavailable broadcast when a session ends for
// any reason (§4.5.2). Subscription stanzas go to subscriptions.ts.
import { randomUUID } from 'node:crypto';
import { routeStanza } from '../../core/router.ts';
import { StanzaError } from '../../xmpp/errors.ts';
import { parseJID } from '../../xmpp/jid.ts';
import { NS } from '../../xmpp/namespaces.ts';
import { type Element, clone, parseFrame, xml } from '../../xmpp/xml.ts';
import type { RosterItem } from './store.ts';
import type { SessionEntry } from '../../store/sessions.ts';
import type { Session, StanzaEvent } from '../../core/events.ts';
import type { ModuleContext } from '../../core/modules.ts';
import type { XmppServer } from '../../core/server.ts';
import { isSubscriptionType, receivesPresenceFrom, sendsPresenceTo } from './subscription-states.ts';
import { processComponentSubscription, processOutboundSubscription } from './subscriptions.ts';
import { rosterOf } from './store.ts';

/** §4.7.2.3: priority is an integer from -128 to 127, 0 when absent. */
function priorityOf(stanza: Element): number {
  const text = stanza.getChildText('priority');
  if (text === null || text === undefined) return 0;
  const n = Number(text.trim());
  if (!Number.isInteger(n) || n < -128 || n > 127) throw new StanzaError('bad-request', 'priority must be an integer from -128 to 127');
  return n;
}

interface Audience {
  /** The user's roster, as read for this broadcast (so nothing else needs to read it again). */
  items: RosterItem[];
  /** Contacts subscribed to the user's presence (from/both), with their sessions. */
  subscribers: Map<string, SessionEntry[]>;
  /** Contacts whose presence the user receives (to/both), with their sessions. */
  publishers: Map<string, SessionEntry[]>;
  own: SessionEntry[];
}

/** One roster Query and one BatchGetItem per 100 accounts: everything a broadcast needs. */
async function audienceOf(server: XmppServer, bare: string, withPublishers: boolean): Promise<Audience> {
  const items = await rosterOf(server).list(bare);
  const subscriberJids = items.filter((i) => sendsPresenceTo(i)).map((i) => i.jid);
  const publisherJids = withPublishers ? items.filter((i) => receivesPresenceFrom(i)).map((i) => i.jid) : [];
  const sessions = await server.sessions.listMany([bare, ...subscriberJids, ...publisherJids]);
  const pick = (jids: string[]) => new Map(jids.map((j) => [j, sessions.get(j) ?? []]));
  return { items, subscribers: pick(subscriberJids), publishers: pick(publisherJids), own: sessions.get(bare) ?? [] };
}

/** Sends `presence` (from the user) to each available resource of each account, addressed to its bare JID. */
async function broadcast(server: XmppServer, presence: Element, targets: Map<string, SessionEntry[]>): Promise<void> {
  const deliveries: (SessionEntry & { to: string })[] = [];
  for (const [bare, sessions] of targets) for (const s of sessions) if (s.available) deliveries.push({ ...s, to: bare });
  await server.sendMany(deliveries, (d) => {
    const copy = clone(presence);
    copy.attrs.to = d.to;
    return copy;
  });
}

async function onOwnPresence(ctx: ModuleContext, event: StanzaEvent): Promise<true> {
  const { server, origin, stanza } = event;
  const type = stanza.attrs.type as string | undefined;
  const bare = origin.jid.bare().toString();
  if (type === undefined) return onAvailable(ctx, server, origin, stanza, bare);
  if (type === 'unavailable') {
    const sessions = await server.sessions.list(bare);
    const entry = sessions.find((s) => s.connectionId === origin.connectionId);
    // Others (MUC: leave every room, XEP-0045 §7.14) act on the same entry, so it is read once.
    if (entry) await ctx.fireAll('unavailable', { server, origin, entry, stanza });
    await server.sessions.update(bare, origin.jid.resource, origin.connectionId, { available: false, presence: undefined, directed: undefined });
    if (entry) await broadcastUnavailable(server, origin, entry, stanza);
    return true;
  }
  // probe, error, or a subscription stanza with no contact: nothing to do (§4.3: clients do not probe).
  return true;
}

async function onAvailable(ctx: ModuleContext, server: XmppServer, origin: Session, stanza: Element, bare: string): Promise<true> {
  const priority = priorityOf(stanza);
  const audience = await audienceOf(server, bare, true);
  const self = audience.own.find((s) => s.connectionId === origin.connectionId);
  const initial = !self?.available;
  stanza.attrs.from = origin.jid.toString();
  delete stanza.attrs.to;
  await server.sessions.update(bare, origin.jid.resource, origin.connectionId, { available: true, priority, presence: stanza.toString() });
  if (self) Object.assign(self, { available: true, priority });

  // §4.2.2 / §4.4.2: to every subscriber, and to all of the user's available resources (this one included).
  await broadcast(server, stanza, new Map([...audience.subscribers, [bare, audience.own]]));
  if (!initial) return true;

  // §4.2.2: probe the contacts the user is subscribed to, and the user's other resources.
  await answerProbes(server, origin, audience);
  // §3.1.3: subscription requests that arrived while the user was offline (the roster read above has them).
  for (const item of audience.items) {
    if (item.pendingIn && item.pendingInStanza) await server.send(origin, item.pendingInStanza);
  }
  // What waited for this session (XEP-0160 offline messages) comes last.
  await ctx.fireAll('presence/initial', { server, origin, priority, stanza, publishers: [...audience.publishers.keys()] });
  return true;
}

/**
 * §4.3.2: the probes of an initial presence, answered at once for local accounts from their session
 * items: the latest presence of each available resource of the contacts the user is subscribed to,
 * and of the user's other resources.
 */
async function answerProbes(server: XmppServer, origin: Session, audience: Audience): Promise<void> {
  const answers: Element[] = [];
  for (const [, sessions] of audience.publishers) for (const s of sessions) if (s.available && s.presence) answers.push(parseFrame(s.presence));
  for (const s of audience.own) if (s.connectionId !== origin.connectionId && s.available && s.presence) answers.push(parseFrame(s.presence));
  for (const p of answers) {
    p.attrs.to = origin.jid.toString();
    if (!(await server.send(origin, p))) return;
  }
}

/** What the presence module offers other modules (ctx.depends('presence')). */
export interface PresenceApi {
  /**
   * Sends a session the current presence of its contacts and its own other resources, as the answers
   * to the probes of an initial presence (§4.3.2): one roster Query, one BatchGetItem per 100
   * accounts, one post per available resource. XEP-0352 uses it when a client becomes active again.
   */
  sendCurrentPresence(server: XmppServer, session: Session): Promise<void>;
}

const presenceApi: PresenceApi = {
  async sendCurrentPresence(server, session) {
    await answerProbes(server, session, await audienceOf(server, session.jid.bare().toString(), true));
  },
};

/**
 * §4.5.2 / §4.6.3: unavailable presence from a resource that goes away (explicit unavailable or session end).
 * If it was available: to every subscriber and to the user's own available resources. In any case: to every
 * entity that got directed available presence from it and no directed unavailable since (a full JID gets it
 * at that resource only, a bare JID at each available resource of the account).
 */
async function broadcastUnavailable(server: XmppServer, session: Session, entry: SessionEntry, original?: Element): Promise<void> {
  const bare = session.jid.bare().toString();
  const presence = xml('presence', { xmlns: NS.CLIENT, type: 'unavailable', from: session.jid.toString() });
  for (const c of original?.children ?? []) if (typeof c !== 'string' && c.name === 'status') presence.cnode(clone(c));
  const directed = entry.directed ?? [];
  if (!entry.available && !directed.length) return;
  const targets = new Map<string, SessionEntry[]>();
  if (entry.available) {
    const audience = await audienceOf(server, bare, false);
    for (const [j, sessions] of [...audience.subscribers, [bare, audience.own] as const]) targets.set(j, sessions);
  }
  await broadcast(server, presence, targets);
  const extra = directed.filter((j) => !targets.has(j.split('/')[0]));
  if (!extra.length) return;
  const sessions = await server.sessions.listMany(extra.map((j) => j.split('/')[0]));
  const deliveries: (SessionEntry & { to: string })[] = [];
  for (const to of extra) {
    const [account, resource] = [to.split('/')[0], to.includes('/') ? to.slice(to.indexOf('/') + 1) : undefined];
    for (const s of sessions.get(account) ?? []) {
      if (resource === undefined ? s.available : s.resource === resource) deliveries.push({ ...s, to });
    }
  }
  await server.sendMany(deliveries, (d) => {
    const copy = clone(presence);
    copy.attrs.to = d.to;
    return copy;
  });
}

/** §4.6: directed presence to another account (available or unavailable), remembered for the end. */
async function onDirectedPresence(event: StanzaEvent): Promise<true> {
  const { server, origin, stanza, to } = event;
  const type = stanza.attrs.type as string | undefined;
  // An XEP-0114 component's JID (its session acts for a tenant whose domain is not its own) is no account:
  // it keeps its own roster and presence, so nothing is written or read under its JID.
  const component = origin.tenant !== undefined && origin.tenant !== origin.jid.domain;
  if (isSubscriptionType(type)) {
    if (component) await processComponentSubscription(server, origin, type, to, stanza, (answer) => routeAs(server, answer));
    else await processOutboundSubscription(server, origin, type, to, stanza);
    return true;
  }
  if (type === 'probe') return true;
  const sessions = await server.sessions.list(to.bare().toString());
  // RFC 6121 §8.5.2.1.2: presence to a bare JID goes to every available resource (negative priority only
  // keeps bare-JID messages away, §4.7.2.3); §8.5.3.1: to a full JID, to that resource.
  const targets = to.resource ? sessions.filter((s) => s.resource === to.resource) : sessions.filter((s) => s.available);
  await server.sendMany(targets, stanza);
  if (!component && (type === undefined || type === 'unavailable')) {
    const bare = origin.jid.bare().toString();
    const own = (await server.sessions.list(bare)).find((s) => s.connectionId === origin.connectionId);
    if (own) {
      const directed = new Set(own.directed ?? []);
      if (type === undefined) directed.add(to.toString());
      else directed.delete(to.toString());
      await server.sessions.update(bare, origin.jid.resource, origin.connectionId, { directed: [...directed] });
    }
  }
  return true;
}

/**
 * Routes what a local account answers a component (RFC 6121 §3 auto-replies, its presence) as from that
 * account, through the router to the component's connection or webhook; an error the router answers
 * with has no session to go to and is logged.
 */
async function routeAs(server: XmppServer, stanza: Element): Promise<void> {
  const from = parseJID(stanza.attrs.from);
  const sink = `roster-${randomUUID()}`;
  const close = server.openSink(sink, (frame) => server.log.info({ from: stanza.attrs.from, to: stanza.attrs.to, frame }, 'answer to a presence routed for an account'));
  try {
    await routeStanza(server, { connectionId: sink, endpoint: 'roster', jid: from, expiresAt: server.clock.now() + 60_000 }, stanza);
  } finally {
    close();
  }
}

/** RFC 6121 §4 on the server: the presence module's hooks (index.ts). */
export function installPresence(ctx: ModuleContext): PresenceApi {
  // RFC 6121 §3.4.1: pre-approval is announced as a stream feature.
  ctx.addStreamFeature({ stage: 'post-auth', element: () => xml('sub', { xmlns: NS.PRE_APPROVAL }) });
  ctx.hook('presence/self', (e) => (e.stanza.attrs.to ? onDirectedToSelf(ctx, e) : onOwnPresence(ctx, e)));
  ctx.hook('presence/host', () => true);
  ctx.hook('presence/bare', onDirectedPresence);
  ctx.hook('presence/full', onDirectedPresence);
  ctx.hook('session-ended', async ({ server, session, entry }) => {
    // §4.6.3: also a resource that never sent initial presence owes unavailable to its directed-presence targets.
    await broadcastUnavailable(server, session, entry);
  });
  return presenceApi;
}

/** Presence addressed to one's own bare JID: subscription stanzas to oneself are meaningless; others act as broadcast. */
function onDirectedToSelf(ctx: ModuleContext, event: StanzaEvent): Promise<true> | true {
  if (isSubscriptionType(event.stanza.attrs.type)) return true;
  return onOwnPresence(ctx, event);
}
