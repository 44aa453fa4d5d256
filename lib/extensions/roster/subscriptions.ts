// RFC 6121 §3: presence subscriptions between two local accounts. The state tables live in
// subscription-states.ts; this file performs what they decide: roster writes, routing, pushes,
// auto-replies and the presence the RFC makes the servers send.
import { routeToComponent } from '../../core/router.ts';
import { StanzaError } from '../../xmpp/errors.ts';
import { type JID, parseJID } from '../../xmpp/jid.ts';
import { NS } from '../../xmpp/namespaces.ts';
import { type Element, clone, parseFrame, xml } from '../../xmpp/xml.ts';
import type { RosterItem } from './store.ts';
import type { Session } from '../../core/events.ts';
import type { XmppServer } from '../../core/server.ts';
import { pushRosterItem, rosterItemElement } from './roster-push.ts';
import { rosterOf } from './store.ts';
import { NO_SUBSCRIPTION, type SubscriptionState, type SubscriptionType, inbound, needsRosterItem, outbound } from './subscription-states.ts';

function stateOf(item: RosterItem | undefined): SubscriptionState {
  if (!item) return NO_SUBSCRIPTION;
  return { subscription: item.subscription, pendingOut: item.pendingOut, pendingIn: item.pendingIn, approved: item.approved };
}

function subscriptionStanza(type: SubscriptionType, from: string, to: string, original?: Element): Element {
  const el = xml('presence', { xmlns: NS.CLIENT, type, from, to });
  // Keep what the sender attached (e.g. a <status/> or XEP-0172 nick with a subscribe request).
  for (const c of original?.children ?? []) if (typeof c !== 'string') el.cnode(clone(c));
  return el;
}

/**
 * The user (origin) sends a subscription stanza about `contact` (§3.1.2, §3.2.2, §3.3.2, §3.4).
 * Subscription stanzas are stamped with the user's bare JID and addressed to the contact's bare JID.
 * `remote`: the contact is no local account (an address at a component, which is like another
 * server): what the user's server routes to it goes through `remote` instead of being processed as
 * the contact's inbound stanzas; the user's side (roster item, push) is the same.
 */
export async function processOutboundSubscription(server: XmppServer, origin: Session, type: SubscriptionType, contactJid: JID, original?: Element, remote?: (stanza: Element) => Promise<void>): Promise<void> {
  const user = origin.jid.bare().toString();
  const contact = contactJid.bare().toString();
  const existing = await rosterOf(server).get(user, contact);
  const result = outbound(type, stateOf(existing));
  let item = existing;
  if (result.changed) {
    item = {
      ...(existing ?? { jid: contact, groups: [] }),
      ...result.state,
      inRoster: !!existing?.inRoster || needsRosterItem(result.state),
      ...(result.state.pendingIn ? {} : { pendingInStanza: undefined }),
    };
  }
  // RFC 6121 §2.6: a change the user sees (one that is pushed) gets a new roster version, before it is written.
  const bumped = result.rosterPush && item?.inRoster ? await rosterOf(server).bumpVersion(user) : undefined;
  if (bumped && item) item = { ...item, ver: bumped.n };
  const ver = bumped?.ver;
  if (result.changed && item) await rosterOf(server).put(user, item);
  const presenceTo = async (kind: 'available' | 'unavailable') => {
    if (!remote) return sendPresenceOfAccount(server, user, contact, kind);
    for (const p of await presenceOfAccount(server, user, kind)) {
      p.attrs.to = contact;
      await remote(p);
    }
  };
  // §3.2.2: unavailable presence goes out before the unsubscribed itself.
  if (result.sideEffect === 'send-unavailable-presence') await presenceTo('unavailable');
  // The push goes out before the stanza is routed, not after: for a local contact, routing runs the contact's
  // side at once, and its auto-reply (a pre-approval, an existing subscription, a nonexistent account) changes
  // this very item again and pushes that; a push after routing would carry the stale state and leave clients
  // with e.g. ask="subscribe" on a contact that already approved. For the user and a remote contact the two
  // orders cannot be told apart.
  if (ver && item) await pushRosterItem(server, user, rosterItemElement(item), ver);
  if (result.route) {
    const stanza = subscriptionStanza(type, user, contact, original);
    if (remote) await remote(stanza);
    else await processInboundSubscription(server, user, contact, type, stanza);
  }
  // §3.1.5: once approved, the contact gets the user's presence.
  if (result.sideEffect === 'send-available-presence') await presenceTo('available');
}

/** routeToComponent for presence: nobody is answered with an error about presence (RFC 6121 §4.3.1), so an error is logged. */
export async function sendToComponent(server: XmppServer, origin: Session, stanza: Element): Promise<void> {
  try {
    await routeToComponent(server, origin, stanza);
  } catch (err) {
    if (!(err instanceof StanzaError)) throw err;
    server.log.info({ from: stanza.attrs.from, to: stanza.attrs.to, condition: err.condition }, 'presence to a component not routed');
  }
}

/**
 * The `remote` of processOutboundSubscription for a contact at a component (a contact elsewhere, e.g.
 * when the user removes it from her roster, §2.5.2), undefined for a local account. A tenant read
 * (cached) only for a domain other than the user's.
 */
export async function componentRoute(server: XmppServer, origin: Session, contact: JID): Promise<((stanza: Element) => Promise<void>) | undefined> {
  if (contact.domain === origin.jid.domain || !(await server.componentFor(contact.domain))) return undefined;
  return (stanza) => sendToComponent(server, origin, stanza);
}

/**
 * A subscription stanza from an XEP-0114 component's JID to a local account. The component keeps its own
 * roster and presence (XEP-0114 §1: it is like a server), so the user's side of §3 (the sender's roster,
 * its pushes) does not run: it would write a roster under the component's JID. Only the contact's side
 * runs, and what it answers (auto-replies, the contact's presence) goes to the component through `send`.
 */
export async function processComponentSubscription(server: XmppServer, origin: Session, type: SubscriptionType, contactJid: JID, original: Element, send: (stanza: Element) => Promise<void>): Promise<void> {
  const from = origin.jid.bare().toString();
  const contact = contactJid.bare().toString();
  await processInboundSubscription(server, from, contact, type, subscriptionStanza(type, from, contact, original), send);
}

/**
 * A subscription stanza from `from` arrives for the local account `to` (§3.1.3, §3.1.6, §3.2.3, §3.3.3).
 * `remote`: `from` is not a local account (a component): the answers to it are sent there instead of
 * being processed as its inbound stanzas.
 */
export async function processInboundSubscription(server: XmppServer, from: string, to: string, type: SubscriptionType, stanza: Element, remote?: (stanza: Element) => Promise<void>): Promise<void> {
  const toJid = parseJID(to);
  const existing = await rosterOf(server).get(to, from);
  if (!existing && !(await server.users.exists(toJid.domain, toJid.local))) {
    // §3.1.3: a request to an account that does not exist is answered unsubscribed.
    if (type === 'subscribe') {
      if (remote) await remote(subscriptionStanza('unsubscribed', to, from));
      else await processInboundSubscription(server, to, from, 'unsubscribed', subscriptionStanza('unsubscribed', to, from));
    }
    return;
  }
  const result = inbound(type, stateOf(existing));
  let item = existing;
  if (result.changed) {
    item = {
      ...(existing ?? { jid: from, groups: [] }),
      ...result.state,
      inRoster: !!existing?.inRoster || needsRosterItem(result.state),
      // §3.1.3: keep the request until answered, to deliver at the next login.
      pendingInStanza: result.state.pendingIn ? (type === 'subscribe' ? stanza.toString() : existing?.pendingInStanza) : undefined,
    };
  }
  const push = result.rosterPush && item?.inRoster;
  // RFC 6121 §2.6: a pushed change gets a new roster version, before it is written.
  const bumped = push ? await rosterOf(server).bumpVersion(to) : undefined;
  if (bumped && item) item = { ...item, ver: bumped.n };
  const ver = bumped?.ver;
  if (result.changed && item) {
    if (!item.inRoster && !item.pendingIn && !item.approved) await rosterOf(server).remove(to, from);
    else await rosterOf(server).put(to, item);
  }
  // One read of the owner's sessions serves both the delivery and the push.
  const sessions = result.deliver || push ? await server.sessions.list(to) : [];
  if (result.deliver) {
    // §3.1.3: a request goes to the available resources (and is kept for later: pendingInStanza above);
    // §3.1.6, §3.2.3, §3.3.3: subscribed, unsubscribed and unsubscribe go to the interested resources, before the push.
    await server.sendMany(sessions.filter((s) => (type === 'subscribe' ? s.available : s.interested)), stanza);
  }
  if (ver && item) await pushRosterItem(server, to, rosterItemElement(item), ver, sessions);
  if (remote) {
    if (result.autoReply) await remote(subscriptionStanza(result.autoReply, to, from));
    if (result.sideEffect) {
      for (const p of await presenceOfAccount(server, to, result.sideEffect === 'send-available-presence' ? 'available' : 'unavailable')) {
        p.attrs.to = from;
        await remote(p);
      }
    }
    return;
  }
  if (result.autoReply) await processInboundSubscription(server, to, from, result.autoReply, subscriptionStanza(result.autoReply, to, from));
  if (result.sideEffect === 'send-available-presence') await sendPresenceOfAccount(server, to, from, 'available');
  if (result.sideEffect === 'send-unavailable-presence') await sendPresenceOfAccount(server, to, from, 'unavailable');
}

/** The presence of each available resource of `owner` (its last broadcast, or unavailable), not yet addressed. */
async function presenceOfAccount(server: XmppServer, owner: string, kind: 'available' | 'unavailable'): Promise<Element[]> {
  const mine = (await server.sessions.list(owner)).filter((s) => s.available && s.presence);
  return mine.map((s) => (kind === 'available' ? parseFrame(s.presence!) : xml('presence', { xmlns: NS.CLIENT, type: 'unavailable', from: `${owner}/${s.resource}` })));
}

/** Presence of each available resource of `owner`, to each available resource of `peer`. */
export async function sendPresenceOfAccount(server: XmppServer, owner: string, peer: string, kind: 'available' | 'unavailable'): Promise<void> {
  const all = await server.sessions.listMany([owner, peer]);
  const mine = (all.get(owner) ?? []).filter((s) => s.available && s.presence);
  const theirs = (all.get(peer) ?? []).filter((s) => s.available);
  if (!mine.length || !theirs.length) return;
  for (const s of mine) {
    const presence = kind === 'available' ? parseFrame(s.presence!) : xml('presence', { xmlns: NS.CLIENT, type: 'unavailable', from: `${owner}/${s.resource}` });
    presence.attrs.to = peer;
    await server.sendMany(theirs, presence);
  }
}
