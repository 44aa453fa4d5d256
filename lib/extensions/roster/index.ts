// RFC 6121 (XMPP IM) as two modules over one store: `roster` (§2 roster management, §3 presence
// subscriptions) and `presence` (§4 presence, which needs the roster to know who is subscribed).
//
//   store.ts                 roster items, one per (owner, contact) in `roster#<owner>`, and its version (§2.6)
//   roster.ts                roster get/set/remove (§2)
//   roster-push.ts           roster pushes to interested resources (§2.1.6)
//   subscriptions.ts         subscription requests and answers (§3), performed
//   subscription-states.ts   the state tables of Appendix A (pure)
//   presence.ts              initial, updated, unavailable and directed presence (§4)
import type { XmppModule } from '../../core/modules.ts';
import { NS } from '../../xmpp/namespaces.ts';
import { xml } from '../../xmpp/xml.ts';
import { type PresenceApi, installPresence } from './presence.ts';
import { installRosterIq } from './roster.ts';
import { ROSTER_PREFIX, RosterStore, setRosterStore } from './store.ts';
import { sendsPresenceTo } from './subscription-states.ts';

/** What the roster module offers other modules (ctx.depends('roster')). */
export interface RosterApi {
  store: RosterStore;
  /** Does `owner` share its presence with `contact` (subscription from or both)? One read. */
  sharesPresenceWith(owner: string, contact: string): Promise<boolean>;
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
