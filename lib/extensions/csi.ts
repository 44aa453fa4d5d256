// XEP-0352 Client State Indication: a client tells the server it is <inactive/> (in the background,
// nobody looking) or <active/> again, with nonzas (stream-level elements, not stanzas, no answer:
// §4.2). While a session is inactive the server leaves out what the client need not act on at once
// (§3.2): available presence from contacts and from the account's other resources. Messages,
// subscription requests and answers, unavailable presence and errors always go through. When it
// becomes active again, it gets the current presence of each contact, as the answers to an initial
// presence's probes (RFC 6121 §4.3.2), so nothing it missed leaves it with a stale roster.
//
// The state is one field of the session entry (sessionData): presence fan-out reads the entries of
// every recipient anyway and posts to them, so the outbound filter sees the state at no cost
// (docs/architecture.md "Cost is a feature"; docs/modules.md "Outbound filters").
import type { XmppModule } from '../core/modules.ts';
import type { StanzaEvent } from '../core/events.ts';
import type { PresenceApi } from './roster/index.ts';
import { type Element, xml } from '../xmpp/xml.ts';

export const NS_CSI = 'urn:xmpp:csi:0';
const NS_MUC_USER = 'http://jabber.org/protocol/muc#user';

type CsiData = { inactive: boolean };

/**
 * What an inactive session does without (§3.2: the server may hold back or drop presence): an
 * available presence, unless it is the session's own presence reflected back (RFC 6121 §4.2.2, the
 * answer to its own action) or MUC presence (XEP-0045: a room's occupant list is not replayed on
 * activation). Pure.
 */
export function withheldWhileInactive(stanza: Element, target: { resource?: string }): boolean {
  if (stanza.name !== 'presence' || stanza.attrs.type !== undefined) return false;
  if (stanza.getChild('x', NS_MUC_USER)) return false;
  const own = target.resource !== undefined && stanza.attrs.to !== undefined && stanza.attrs.from === `${stanza.attrs.to.split('/')[0]}/${target.resource}`;
  return !own;
}

export const csi: XmppModule = {
  name: 'csi',
  depends: ['presence'],
  sessionData: true,
  install(ctx) {
    const data = ctx.sessionData<CsiData>();
    const presence = ctx.depends<PresenceApi>('presence');
    // §4.1: offered as a stream feature once the client is authenticated.
    ctx.addStreamFeature({ stage: 'post-auth', element: () => xml('csi', { xmlns: NS_CSI }) });

    // §4.2: the nonzas. Nothing is sent back; §5.1: handled in order with the stanzas around them.
    ctx.hook(`stream-element/${NS_CSI}:inactive`, async ({ origin }: StanzaEvent) => {
      await data.set(origin, 'inactive', true);
      return true;
    });
    ctx.hook(`stream-element/${NS_CSI}:active`, async ({ server, origin }: StanzaEvent) => {
      // The flag goes first: whatever is broadcast from now on reaches the client, and what was
      // withheld before is in the session items read next.
      await data.set(origin, 'inactive', false);
      await presence.sendCurrentPresence(server, origin);
      return true;
    });

    // Presence fan-out posts to the session entries it read; their csi field decides.
    ctx.filterOutbound((stanza, target) => {
      if (!target.data) return stanza;
      if (!(target.data.csi as Partial<CsiData> | undefined)?.inactive) return stanza;
      return withheldWhileInactive(stanza, target) ? null : stanza;
    });
  },
};
