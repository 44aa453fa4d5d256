// RFC 6121 (XMPP IM) as two modules over one store: `roster` (§2 roster management, §3 presence
// subscriptions) and `presence` (§4 presence, which needs the roster to know who is subscribed).
//
//   store.ts                 roster items, one per (owner, contact) in `roster#<owner>`, and its version (§2.6)
//   roster.ts                roster get/set/remove (§2)
//   roster-push.ts           roster pushes to interested resources (§2.1.6)
//   subscriptions.ts         subscription requests and answers (§3), performed
//   subscription-states.ts   the state tables of Appendix A (pure)
//   presence.ts              initial, updated, unavailable and directed presence (§4)
import type { Session } from '../../core/events.ts';
import type { XmppModule } from '../../core/modules.ts';
import type { JID } from '../../xmpp/jid.ts';
import { NS } from '../../xmpp/namespaces.ts';
import { type Element, xml } from '../../xmpp/xml.ts';
import { type PresenceApi, componentContacts, installPresence } from './presence.ts';
import { installRosterIq } from './roster.ts';
import { ROSTER_PREFIX, RosterStore, setRosterStore } from './store.ts';
import { sendsPresenceTo } from './subscription-states.ts';
import { sendToComponent } from './subscriptions.ts';

/** What the roster module offers other modules (ctx.depends('roster')). */
export interface RosterApi {
  store: RosterStore;
  /** Does `owner` share its presence with `contact` (subscription from or both)? One read. */
  sharesPresenceWith(owner: string, contact: string): Promise<boolean>;
  /** The contacts among `jids` at a component's address (entities elsewhere, RFC 6121): tenant reads, cached. */
  atComponents(user: JID, jids: string[]): Promise<Set<string>>;
  /** Presence from `origin`'s account to a contact at a component, through the router; a refusal is logged. */
  sendToComponent(origin: Session, presence: Element): Promise<void>;
}

export const roster: XmppModule<RosterApi> = {
  name: 'roster',
  storage: { accountPartitions: [ROSTER_PREFIX] },
  install(ctx) {
    const store = new RosterStore(ctx.openStore());
    setRosterStore(ctx.server, store);
    installRosterIq(ctx);
    // RFC 6121 §2.6.1: roster versioning is announced as a stream feature.
    ctx.addStreamFeature({ stage: 'post-auth', element: () => xml('ver', { xmlns: NS.ROSTER_VER }) });
    return {
      store,
      async sharesPresenceWith(owner, contact) {
        const item = await store.get(owner, contact);
        return !!item && sendsPresenceTo(item);
      },
      atComponents: (user, jids) => componentContacts(ctx.server, user, jids),
      sendToComponent: (origin, presence) => sendToComponent(ctx.server, origin, presence),
    };
  },
};

export const presence: XmppModule<PresenceApi> = {
  name: 'presence',
  depends: ['roster'],
  install: installPresence,
};

export { rosterOf } from './store.ts';
export type { RosterItem } from './store.ts';
export type { PresenceApi } from './presence.ts';
