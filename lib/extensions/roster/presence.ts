// RFC 6121 §4: presence. Initial presence (broadcast, probes, pending requests, then "presence/initial"
// for what waited, e.g. offline messages),
// updates, unavailable, directed presence, and the unavailable broadcast when a session ends for
// any reason (§4.5.2). Subscription stanzas go to subscriptions.ts.
import { StanzaError } from '../../xmpp/errors.ts';
import { type JID, parseJID } from '../../xmpp/jid.ts';
import { NS } from '../../xmpp/namespaces.ts';
import { type Element, clone, parseFrame, xml } from '../../xmpp/xml.ts';
import type { RosterItem } from './store.ts';
import type { SessionEntry } from '../../store/sessions.ts';
import type { Session, StanzaEvent } from '../../core/events.ts';
import type { ModuleContext } from '../../core/modules.ts';
import type { XmppServer } from '../../core/server.ts';
import { isSubscriptionType, receivesPresenceFrom, sendsPresenceTo } from './subscription-states.ts';
import { processComponentSubscription, processOutboundSubscription, sendToComponent } from './subscriptions.ts';
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
  /** Local contacts subscribed to the user's presence (from/both), with their sessions. */
  subscribers: Map<string, SessionEntry[]>;
  /** Local contacts whose presence the user receives (to/both), with their sessions. */
  publishers: Map<string, SessionEntry[]>;
  own: SessionEntry[];
  /**
   * Contacts at components (docs/architecture.md "Components"), which RFC 6121 treats as contacts on
   * another server: presence goes to them through the router (§4.2.2, §4.4.2), probes too (§4.3.1).
   */
  remote: { subscribers: string[]; publishers: string[] };
}

/** One roster Query and one BatchGetItem per 100 accounts: everything a broadcast needs. */
async function audienceOf(server: XmppServer, bare: string, withPublishers: boolean): Promise<Audience> {
  const items = await rosterOf(server).list(bare);
  const atComponents = await componentContacts(server, parseJID(bare), items.filter((i) => sendsPresenceTo(i) || receivesPresenceFrom(i)).map((i) => i.jid));
  const local = (i: RosterItem) => !atComponents.has(i.jid);
  const subscriberJids = items.filter((i) => sendsPresenceTo(i) && local(i)).map((i) => i.jid);
  const publisherJids = withPublishers ? items.filter((i) => receivesPresenceFrom(i) && local(i)).map((i) => i.jid) : [];
  const sessions = await server.sessions.listMany([bare, ...subscriberJids, ...publisherJids]);
  const pick = (jids: string[]) => new Map(jids.map((j) => [j, sessions.get(j) ?? []]));
  const remote = {
    subscribers: items.filter((i) => sendsPresenceTo(i) && !local(i)).map((i) => i.jid),
    publishers: withPublishers ? items.filter((i) => receivesPresenceFrom(i) && !local(i)).map((i) => i.jid) : [],
  };
  return { items, subscribers: pick(subscriberJids), publishers: pick(publisherJids), own: sessions.get(bare) ?? [], remote };
}

/**
 * The contacts among `jids` whose address a component serves (XEP-0114 components, MUC): no session
 * item can exist for them. Only domains other than the user's are asked, and tenant reads are cached.
 */
export async function componentContacts(server: XmppServer, user: JID, jids: string[]): Promise<Set<string>> {
  const byDomain = new Map<string, boolean>();
  const out = new Set<string>();
  for (const j of jids) {
    const domain = parseJID(j).domain;
    if (domain === user.domain) continue;
    if (!byDomain.has(domain)) byDomain.set(domain, (await server.componentFor(domain)) !== undefined);
    if (byDomain.get(domain)) out.add(j);
  }
  return out;
}

/** `presence` (from the user) to each contact at a component, through the router (routeToComponent). */
async function sendToComponents(server: XmppServer, origin: Session, presence: Element, jids: string[]): Promise<void> {
  for (const to of jids) {
    const copy = clone(presence);
    copy.attrs.to = to;
    await sendToComponent(server, origin, copy);
  }
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
  await sendToComponents(server, origin, stanza, audience.remote.subscribers);
  if (!initial) return true;

  // §4.2.2: probe the contacts the user is subscribed to, and the user's other resources. §4.3.1: a
  // contact elsewhere (at a component) gets a probe from the user's bare JID and answers it itself.
  await answerProbes(server, origin, audience);
  await sendToComponents(server, origin, xml('presence', { xmlns: NS.CLIENT, type: 'probe', from: bare }), audience.remote.publishers);
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
  let remote: string[] = [];
  if (entry.available) {
    const audience = await audienceOf(server, bare, false);
    for (const [j, sessions] of [...audience.subscribers, [bare, audience.own] as const]) targets.set(j, sessions);
    remote = audience.remote.subscribers;
  }
  await broadcast(server, presence, targets);
  await sendToComponents(server, session, presence, remote);
  const pending = directed.filter((j) => !targets.has(j.split('/')[0]) && !remote.includes(j.split('/')[0]));
  if (!pending.length) return;
  // Addresses at components get it through the router, as a roster contact there does.
  const atComponents = await componentContacts(server, session.jid, pending.map((j) => j.split('/')[0]));
  await sendToComponents(server, session, presence, pending.filter((j) => atComponents.has(j.split('/')[0])));
  const extra = pending.filter((j) => !atComponents.has(j.split('/')[0]));
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
  if (type === 'probe') {
    if (component) await answerComponentProbe(server, origin, to);
    return true;
  }
  const sessions = await server.sessions.list(to.bare().toString());
  // RFC 6121 §8.5.2.1.2: presence to a bare JID goes to every available resource (negative priority only
  // keeps bare-JID messages away, §4.7.2.3); §8.5.3.1: to a full JID, to that resource.
  const targets = to.resource ? sessions.filter((s) => s.resource === to.resource) : sessions.filter((s) => s.available);
  await server.sendMany(targets, stanza);
  if (!component) await rememberDirected(server, origin, type, to);
  return true;
}

/**
 * §4.6.3: directed available presence is remembered in the session entry, for the unavailable owed at the
 * end; directed unavailable presence forgets it. One read and one write.
 */
async function rememberDirected(server: XmppServer, origin: Session, type: string | undefined, to: JID): Promise<void> {
  if (type !== undefined && type !== 'unavailable') return;
  const bare = origin.jid.bare().toString();
  const own = (await server.sessions.list(bare)).find((s) => s.connectionId === origin.connectionId);
  if (!own) return;
  const directed = new Set(own.directed ?? []);
  if (type === undefined) directed.add(to.toString());
  else directed.delete(to.toString());
  await server.sessions.update(bare, origin.jid.resource, origin.connectionId, { directed: [...directed] });
}

/**
 * RFC 6121 §4.3.2: a probe from a component (as from another server) about a local account. Subscribed
 * (from/both): the presence of each available resource, else unavailable from the bare JID; not
 * subscribed: unsubscribed, and nothing of the account's presence is revealed.
 */
async function answerComponentProbe(server: XmppServer, origin: Session, to: JID): Promise<void> {
  const user = to.bare().toString();
  const prober = origin.jid.bare().toString();
  const item = await rosterOf(server).get(user, prober);
  if (!item || !sendsPresenceTo(item)) return routeAs(server, xml('presence', { xmlns: NS.CLIENT, type: 'unsubscribed', from: user, to: prober }));
  const available = (await server.sessions.list(user)).filter((s) => s.available && s.presence);
  if (!available.length) return routeAs(server, xml('presence', { xmlns: NS.CLIENT, type: 'unavailable', from: user, to: prober }));
  for (const s of available) {
    const p = parseFrame(s.presence!);
    p.attrs.to = prober;
    await routeAs(server, p);
  }
}

/**
 * Sends what the server sends for a local account to a component (RFC 6121 §3 auto-replies, its
 * presence) as from that account, through the router to the component's connection or webhook.
 */
async function routeAs(server: XmppServer, stanza: Element): Promise<void> {
  const from = parseJID(stanza.attrs.from);
  await sendToComponent(server, { connectionId: 'roster', endpoint: 'roster', jid: from, expiresAt: server.clock.now() + 60_000 }, stanza);
}

/**
 * §3.1.2, §3.2.2, §3.3.2, §3.4: a user's subscription stanza to a contact at a component (like one on
 * another server): the user's side is processed (roster item, ask, push), then the stanza, stamped with
 * the user's bare JID, goes on to the component; the presence that follows an approval too.
 */
async function onSubscriptionToComponent(event: StanzaEvent): Promise<true | undefined> {
  const { server, origin, stanza, to } = event;
  const type = stanza.attrs.type as string | undefined;
  // A component's own stanzas to another component pass as they are: it keeps its own roster.
  if (origin.tenant !== undefined && origin.tenant !== origin.jid.domain) return undefined;
  // §4.6.3: directed presence to an address at an XEP-0114 or webhook component (an entity elsewhere) is
  // remembered as to an account, so it gets unavailable when the session ends; then it is routed on. Rooms
  // are not: the MUC service ends an occupant's presence itself when the session ends.
  // ('components': the XEP-0114 and webhook components' service, docs/modules.md "Hooks").
  if (event.component === 'components') await rememberDirected(server, origin, type, to);
  if (!isSubscriptionType(type)) return undefined;
  await processOutboundSubscription(server, origin, type, to, stanza, (s) => sendToComponent(server, origin, s));
  return true;
}

/** RFC 6121 §4 on the server: the presence module's hooks (index.ts). */
export function installPresence(ctx: ModuleContext): PresenceApi {
  // RFC 6121 §3.4.1: pre-approval is announced as a stream feature.
  ctx.addStreamFeature({ stage: 'post-auth', element: () => xml('sub', { xmlns: NS.PRE_APPROVAL }) });
  ctx.hook('presence/self', (e) => (e.stanza.attrs.to ? onDirectedToSelf(ctx, e) : onOwnPresence(ctx, e)));
  ctx.hook('presence/host', () => true);
  ctx.hook('presence/bare', onDirectedPresence);
  ctx.hook('presence/full', onDirectedPresence);
  ctx.hook('presence/component', onSubscriptionToComponent);
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
