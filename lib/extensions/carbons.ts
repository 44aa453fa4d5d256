// XEP-0280 Message Carbons (urn:xmpp:carbons:2, with the eligibility rules of urn:xmpp:carbons:rules:0):
// each resource that enables carbons also sees the messages its account's other resources receive
// (§7 "Receiving Messages": <received/> copies) and send (§8 "Sending Messages": <sent/> copies),
// wrapped in XEP-0297 <forwarded/>. XEP-0334 <no-copy/> and the carbons <private/> element keep a
// message out of it (§9).
//
// Cost (README "Cost per operation"): enable/disable is one write to the session entry (sessionData).
// A received copy costs no read: "message/delivered" hands over every session entry of the
// recipient, carbons flags included. A sent copy needs the sender's session item, which the message
// path does not read: one read per eligible message a client sends. No fact in memory can tell
// whether another resource enabled carbons since (docs/architecture.md "State": anything mutable is
// read), so the module is optional: a tenant that lists "carbons" in `features` pays that read.
import type { XmppModule } from '../core/modules.ts';
import type { StanzaEvent } from '../core/events.ts';
import type { SessionEntry } from '../store/sessions.ts';
import { jingleMessageAction } from '../xmpp/hints.ts';
import { type Element, clone, xml } from '../xmpp/xml.ts';

export const NS_CARBONS = 'urn:xmpp:carbons:2';
/** XEP-0280 §6 rules advertised as such (the rules of this file). */
export const NS_CARBONS_RULES = 'urn:xmpp:carbons:rules:0';
export const NS_FORWARD = 'urn:xmpp:forward:0'; // XEP-0297
export const NS_HINTS = 'urn:xmpp:hints'; // XEP-0334
const NS_CLIENT = 'jabber:client';
const NS_MUC_USER = 'http://jabber.org/protocol/muc#user';

type CarbonsData = { enabled: boolean };

/**
 * XEP-0280 §6 "Messages Eligible for Carbons Delivery": type chat; type normal with a <body/> or a
 * XEP-0353 call action (§6 lets a server add rules; XEP-0353 needs them copied); not an
 * error (copying errors needs correlation with the message they answer, which §6 calls unlikely to be
 * appropriate); not a message sent by a MUC room or service (XEP-0045 <x xmlns='…muc#user'/>), PMs
 * included. §9: never one with <private/>; XEP-0334 §4.3: never one with <no-copy/>. Pure.
 */
export function eligibleForCarbons(stanza: Element): boolean {
  if (stanza.name !== 'message') return false;
  if (stanza.getChild('private', NS_CARBONS) || stanza.getChild('no-copy', NS_HINTS)) return false;
  if (stanza.getChild('x', NS_MUC_USER)) return false;
  // A carbon is never copied again (§11 "Security Considerations": copies come only from the bare JID).
  if (stanza.getChild('sent', NS_CARBONS) || stanza.getChild('received', NS_CARBONS)) return false;
  const type = stanza.attrs.type ?? 'normal';
  if (type === 'chat') return true;
  // XEP-0353 §5 ("Participants MUST use XEP-0280"): a call answered on one device stops the others
  // ringing, whatever type an older client gave the message.
  return type === 'normal' && (!!stanza.getChild('body') || !!jingleMessageAction(stanza));
}

type Target = Pick<SessionEntry, 'connectionId' | 'data'>;

const carbonsOn = (s: Target) => (s.data?.carbons as Partial<CarbonsData> | undefined)?.enabled === true;

/**
 * §7: the recipient's carbons-enabled resources that did not get the message themselves under RFC
 * 6121 §8.5 (`recipients`), and never the sending connection itself (a message to one's own account).
 */
export function receivedCarbonTargets<S extends Target>(sessions: S[], recipients: Target[], sender?: string): S[] {
  const got = new Set(recipients.map((r) => r.connectionId));
  return sessions.filter((s) => carbonsOn(s) && !got.has(s.connectionId) && s.connectionId !== sender);
}

/** §8: the sender's carbons-enabled resources except the sending one, whether or not it enabled carbons. */
export function sentCarbonTargets<S extends Target>(sessions: S[], sender: string): S[] {
  return sessions.filter((s) => carbonsOn(s) && s.connectionId !== sender);
}

/**
 * §7/§8: the copy for one resource: same type as the original, from the account's bare JID, to the
 * resource's full JID, with <received/> or <sent/> holding the XEP-0297 <forwarded/> original.
 */
export function carbonCopy(direction: 'sent' | 'received', original: Element, ownerBare: string, toFull: string): Element {
  const inner = clone(original);
  inner.attrs.xmlns = NS_CLIENT;
  const attrs: Record<string, string> = { xmlns: NS_CLIENT, from: ownerBare, to: toFull };
  if (original.attrs.type) attrs.type = original.attrs.type;
  return xml('message', attrs, xml(direction, { xmlns: NS_CARBONS }, xml('forwarded', { xmlns: NS_FORWARD }, inner)));
}

export const carbons: XmppModule = {
  name: 'carbons',
  enabled: 'optional',
  sessionData: true,
  install(ctx) {
    const data = ctx.sessionData<CarbonsData>();
    ctx.addFeature(NS_CARBONS, NS_CARBONS_RULES);

    // §4 / §5: enable and disable for this session; repeated requests are answered alike (§10.1).
    const toggle = (enabled: boolean) => async ({ origin }: StanzaEvent) => {
      // false rather than removing the field: a SET also works on an entry bound before this module
      // existed (SessionData creates the map), a REMOVE there would fail.
      await data.set(origin, 'enabled', enabled);
      return true;
    };
    for (const kind of ['self', 'host'] as const) {
      ctx.hook(`iq-set/${kind}/${NS_CARBONS}:enable`, toggle(true));
      ctx.hook(`iq-set/${kind}/${NS_CARBONS}:disable`, toggle(false));
    }

    // Messages the client sent that get no copies: decided before <private/> is stripped.
    const noCopies = new WeakSet<Element>();

    // §8: a client's message to another account. Runs before routing (it passes the event on), so the
    // copies go out whatever becomes of the original, as they would from the sending client itself.
    const onSent = async ({ server, origin, stanza, to }: StanzaEvent) => {
      if (!eligibleForCarbons(stanza)) {
        noCopies.add(stanza);
        // §9: the receiving server SHOULD remove <private/> before delivering to the recipient.
        const priv = stanza.getChild('private', NS_CARBONS);
        if (priv) stanza.remove(priv);
        return undefined;
      }
      const bare = origin.jid.bare().toString();
      // A message to one's own account: the §7 received copies already reach the other resources.
      if (to.bare().toString() === bare) return undefined;
      const targets = sentCarbonTargets(await server.sessions.list(bare), origin.connectionId);
      if (targets.length) await server.sendMany(targets, (t) => carbonCopy('sent', stanza, bare, `${bare}/${t.resource}`));
      return undefined;
    };
    // Priority 50: a module that adds to the message what the sender's copy should carry (an archive's
    // stanza id) hooks these events above it.
    for (const kind of ['bare', 'full', 'self'] as const) ctx.hook(`message/${kind}`, onSent, 50);

    // §7: copies for the recipient's carbons-enabled resources that did not get it; the event carries
    // every session entry of the recipient, so this reads nothing.
    ctx.hook('message/delivered', async ({ server, origin, stanza, to, recipients, sessions }) => {
      if (noCopies.has(stanza) || !eligibleForCarbons(stanza)) return;
      const bare = to.bare().toString();
      const sender = origin?.connectionId;
      const targets = receivedCarbonTargets(sessions, recipients, sender);
      if (targets.length) await server.sendMany(targets, (t) => carbonCopy('received', stanza, bare, `${bare}/${t.resource}`));
    });
  },
};
