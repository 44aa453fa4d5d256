/**
 * Presence subscription state machine: RFC 6121 §3 ("Managing Presence Subscriptions") and Appendix A
 * ("Subscription States"), as pure functions.
 *
 * Every state is seen from one roster owner: `state` is that owner's roster item for the other party (the
 * "peer"). The same functions serve both ends of an exchange:
 *
 *  - `outbound(type, state)`: the owner's own server processing a subscription stanza the owner sent to the peer
 *    (Appendix A.2, Tables 2–5). `state` is the sender's roster item for the recipient.
 *  - `inbound(type, state)`: the owner's server processing a subscription stanza that arrived from the peer
 *    (Appendix A.3, Tables 6–9). `state` is the recipient's roster item for the sender.
 *
 * So for "user subscribes to contact": `outbound('subscribe', userItemForContact)` at the user's server, then
 * `inbound('subscribe', contactItemForUser)` at the contact's server. When both are local, run both.
 *
 * The nine states of A.1 are the combinations of `subscription` with the `pendingOut` / `pendingIn` flags:
 *
 *   "None"                  none  -    -        "To"                 to    -    -
 *   "None + Pending Out"    none  out  -        "To + Pending In"    to    -    in
 *   "None + Pending In"     none  -    in       "From"               from  -    -
 *   "None + Pending Out+In" none  out  in       "From + Pending Out" from  out  -
 *                                               "Both"               both  -    -
 *
 * (`pendingOut` is impossible with to/both: the owner already has the subscription; `pendingIn` is impossible with
 * from/both: the peer already has it.) `approved` is the subscription pre-approval of §3.4; it only exists in
 * "None", "None + Pending Out" and "To" (the states where an outbound `subscribed` is not an answer to a pending
 * request), and is consumed when the pre-approved request arrives (see `inbound('subscribe')`).
 *
 * Nothing here performs I/O. The results tell the caller what to persist (`state` when `changed`), whether to
 * route/deliver the stanza, whether to push the roster item (`rosterPush`), which auto-reply to send, and which
 * presence broadcast the RFC mandates (`sideEffect`). The ordering rules of §3 are documented on each result type.
 */

export type Subscription = 'none' | 'to' | 'from' | 'both';

export interface SubscriptionState {
  /** RFC 6121 §2.1.2.5 value: does the owner receive the peer's presence ('to'), send its own ('from'), both, none. */
  subscription: Subscription;
  /** The owner asked the peer for a subscription and no answer arrived yet ("Pending Out"; ask='subscribe'). */
  pendingOut: boolean;
  /** The peer asked the owner for a subscription and the owner has not answered yet ("Pending In"). */
  pendingIn: boolean;
  /** §3.4 pre-approval: the owner sent `subscribed` before any request; the next request is auto-approved. */
  approved: boolean;
}

/** "None" with no flags: also what an absent roster item means (A.1, Implementation Note). */
export const NO_SUBSCRIPTION: SubscriptionState = Object.freeze({
  subscription: 'none',
  pendingOut: false,
  pendingIn: false,
  approved: false,
});

export type SubscriptionType = 'subscribe' | 'subscribed' | 'unsubscribe' | 'unsubscribed';

export const SUBSCRIPTION_TYPES: readonly SubscriptionType[] = Object.freeze([
  'subscribe',
  'subscribed',
  'unsubscribe',
  'unsubscribed',
]);

export function isSubscriptionType(type: string | undefined): type is SubscriptionType {
  return type === 'subscribe' || type === 'subscribed' || type === 'unsubscribe' || type === 'unsubscribed';
}

/**
 * A presence broadcast that the RFC requires of the roster owner's server, always *from each of the owner's
 * available resources* (full JIDs) *to the peer's bare JID*; with no available resources there is nothing to send.
 *
 * - `'send-available-presence'`: the owner just granted the peer a subscription (the owner's item gained 'from').
 *   RFC 6121 §3.1.5: "The contact's server MUST then also send current presence to the user from each of the
 *   contact's available resources." Sent after routing the approval (or the auto-reply `subscribed`) and after the
 *   roster push. Send each resource's last broadcast presence stanza, re-addressed to the peer.
 * - `'send-unavailable-presence'`: the peer's subscription to the owner ended (the owner's item lost 'from').
 *   For an outbound `unsubscribed` (§3.2.2) this MUST happen BEFORE routing the `unsubscribed` ("While the user is
 *   still subscribed to the contact's presence (i.e., before the contact's server routes or delivers the presence
 *   stanza of type "unsubscribed" to the user), the contact's server MUST send a presence stanza of type
 *   "unavailable" from all of the contact's online resources to the user"). For an inbound `unsubscribe` (§3.3.3
 *   step 3) it comes AFTER delivering the `unsubscribe` to the owner and after the roster push.
 */
export type SubscriptionSideEffect = 'send-available-presence' | 'send-unavailable-presence';

/**
 * Result of the owner's server processing a subscription stanza the owner sent (Appendix A.2).
 *
 * Caller order (RFC 6121 §3.1.2, §3.1.5, §3.2.2, §3.3.2, §3.4.2):
 *  1. if `sideEffect === 'send-unavailable-presence'` (outbound `unsubscribed`): send it now, before routing;
 *  2. if `route`: stamp the stanza with the owner's BARE JID (§3, Implementation Note: never a full JID; the
 *     'to' is likewise reduced to the peer's bare JID, §3.1.2) and route it / deliver it locally (for a local peer
 *     that means `inbound(type, peerItemForOwner)`);
 *  3. if `changed`: persist `state` (creating the roster item if there is none and `needsRosterItem(state)`);
 *  4. if `rosterPush` and the owner has a roster item: roster push to the owner's interested resources;
 *  5. if `sideEffect === 'send-available-presence'` (outbound `subscribed` approving a request): send it now.
 */
export interface OutboundResult {
  state: SubscriptionState;
  /** Any field of `state` differs from the input (persist it). */
  changed: boolean;
  /** Route the stanza to the peer. False = drop it silently (no error to the sender). */
  route: boolean;
  /**
   * Push the roster item to the owner's interested resources: its visible attributes (`rosterAttributes`) changed,
   * or the RFC explicitly demands a push (§3.2.2: an outbound `unsubscribed` that is routed). Skip it when the
   * owner has no roster item for the peer (possible in "None + Pending In": §3.1.3 forbids creating one before
   * approval).
   */
  rosterPush: boolean;
  sideEffect?: SubscriptionSideEffect;
}

/**
 * Result of the owner's server processing a subscription stanza that arrived from the peer (Appendix A.3).
 *
 * Caller order (RFC 6121 §3.1.3, §3.1.6, §3.2.3, §3.3.3, §3.4.2):
 *  1. if `changed`: persist `state`. A new pending-in request (§3.1.3) must be recorded WITHOUT creating a roster
 *     item ("Until and unless the contact approves the subscription request ... the contact's server MUST NOT add
 *     an item for the user to the contact's roster"), and the complete `subscribe` stanza must be kept to be
 *     redelivered whenever the owner next becomes available, until answered (at most one stored per peer);
 *  2. if `deliver`: deliver the stanza — `subscribe` to the owner's *available* resources (§3.1.3; store it if none
 *     is available); `subscribed` / `unsubscribed` / `unsubscribe` to the owner's *interested* resources, BEFORE the
 *     roster push (§3.1.6, §3.2.3, §3.3.3 step 1: "This MUST occur before sending the roster push");
 *  3. if `rosterPush` and the owner has a roster item: roster push;
 *  4. if `autoReply`: send a presence of that type from the owner's bare JID to the peer's bare JID. The state
 *     change it implies is ALREADY in `state`: do NOT run it through `outbound()` (for `unsubscribed` that would
 *     find the new state and drop it). For a local peer it is processed as `inbound(autoReply, peerItemForOwner)`;
 *  5. if `sideEffect`: send the presence broadcast (see `SubscriptionSideEffect`).
 */
export interface InboundResult {
  state: SubscriptionState;
  /** Any field of `state` differs from the input (persist it). */
  changed: boolean;
  /** Deliver the stanza to the owner. False = drop it silently (no error to the sender). */
  deliver: boolean;
  /** Push the roster item to the owner's interested resources: its visible attributes changed. */
  rosterPush: boolean;
  /** Answer on the owner's behalf (A.3.1 notes [1] [2], §3.1.3, §3.4.2; A.3.2 note [1], §3.3.3 prose). */
  autoReply?: 'subscribed' | 'unsubscribed';
  sideEffect?: SubscriptionSideEffect;
}

/** Does the owner receive the peer's presence (the owner is subscribed *to* the peer)? */
function hasTo(s: SubscriptionState): boolean {
  return s.subscription === 'to' || s.subscription === 'both';
}

/** Does the peer receive the owner's presence (the peer is subscribed *from* the owner's point of view)? */
function hasFrom(s: SubscriptionState): boolean {
  return s.subscription === 'from' || s.subscription === 'both';
}

function compose(to: boolean, from: boolean): Subscription {
  return to ? (from ? 'both' : 'to') : from ? 'from' : 'none';
}

function make(
  base: SubscriptionState,
  change: { to?: boolean; from?: boolean; pendingOut?: boolean; pendingIn?: boolean; approved?: boolean },
): SubscriptionState {
  return {
    subscription: compose(change.to ?? hasTo(base), change.from ?? hasFrom(base)),
    pendingOut: change.pendingOut ?? base.pendingOut,
    pendingIn: change.pendingIn ?? base.pendingIn,
    approved: change.approved ?? base.approved,
  };
}

function sameState(a: SubscriptionState, b: SubscriptionState): boolean {
  return (
    a.subscription === b.subscription &&
    a.pendingOut === b.pendingOut &&
    a.pendingIn === b.pendingIn &&
    a.approved === b.approved
  );
}

function sameRosterAttributes(a: SubscriptionState, b: SubscriptionState): boolean {
  return a.subscription === b.subscription && a.pendingOut === b.pendingOut && a.approved === b.approved;
}

function outboundResult(
  before: SubscriptionState,
  state: SubscriptionState,
  route: boolean,
  extra: { forcePush?: boolean; sideEffect?: SubscriptionSideEffect } = {},
): OutboundResult {
  const result: OutboundResult = {
    state,
    changed: !sameState(before, state),
    route,
    rosterPush: !sameRosterAttributes(before, state) || extra.forcePush === true,
  };
  if (extra.sideEffect) result.sideEffect = extra.sideEffect;
  return result;
}

function inboundResult(
  before: SubscriptionState,
  state: SubscriptionState,
  deliver: boolean,
  extra: { autoReply?: 'subscribed' | 'unsubscribed'; sideEffect?: SubscriptionSideEffect } = {},
): InboundResult {
  const result: InboundResult = {
    state,
    changed: !sameState(before, state),
    deliver,
    rosterPush: !sameRosterAttributes(before, state),
  };
  if (extra.autoReply) result.autoReply = extra.autoReply;
  if (extra.sideEffect) result.sideEffect = extra.sideEffect;
  return result;
}

/**
 * The owner's server processing a subscription stanza the owner sends to the peer (RFC 6121 Appendix A.2).
 * `state` is the owner's roster item for the peer (`NO_SUBSCRIPTION` if there is none).
 */
export function outbound(type: SubscriptionType, state: SubscriptionState): OutboundResult {
  switch (type) {
    case 'subscribe':
      // A.2.1 Table 2: ROUTE is MUST in every state, even when nothing changes (a resent request is still routed;
      // §3.1.2 also has the server resend unanswered requests). State change only where there is no 'to' yet:
      // "pending out" is added, which is ask='subscribe' in the roster (note [1]). An existing pre-approval is kept.
      if (hasTo(state)) return outboundResult(state, state, true);
      return outboundResult(state, make(state, { pendingOut: true }), true);

    case 'unsubscribe':
      // A.2.2 Table 3: ROUTE is MUST in every state, even "None", "None + Pending In" and "From" where nothing
      // changes. The owner's subscription to the peer ('to') and any pending request of the owner ("Pending Out")
      // end. §3.3.2: route, then roster push (subscription now "none" or "from"). No presence is generated by the
      // server here; the owner's clients must treat the peer's presence as void (§3.3.3, Implementation Note).
      return outboundResult(state, make(state, { to: false, pendingOut: false }), true);

    case 'subscribed':
      // A.2.3 Table 4 and §3.4.2.
      if (state.pendingIn) {
        // "None + Pending In" -> "From", "None + Pending Out+In" -> "From + Pending Out", "To + Pending In" ->
        // "Both": a normal approval, MUST route. §3.1.5: route, roster push, then send current presence from each
        // of the owner's available resources to the peer. The approval consumes any pre-approval flag.
        return outboundResult(state, make(state, { from: true, pendingIn: false, approved: false }), true, {
          sideEffect: 'send-available-presence',
        });
      }
      if (hasFrom(state)) {
        // "From", "From + Pending Out", "Both": MUST NOT route, no state change (§3.4.2: "silently ignore").
        return outboundResult(state, state, false);
      }
      // "None", "None + Pending Out", "To": pre-approval. MUST NOT route; set approved='true' and push the item
      // (§3.4.2). With no roster item the server MUST create one with state "None" (see needsRosterItem). If the
      // flag was already set nothing changes (changed = rosterPush = false).
      return outboundResult(state, make(state, { approved: true }), false);

    case 'unsubscribed':
      // A.2.4 Table 5 and §3.2.2.
      if (hasFrom(state) || state.pendingIn) {
        // MUST route. Cancels the peer's subscription ('from') and/or denies its pending request, and clears any
        // pre-approval. §3.2.2 "Otherwise" branch: MUST route and MUST send a roster push (forced even where the
        // visible attributes are unchanged, i.e. "None + Pending In" -> "None"). If the peer had a subscription,
        // unavailable presence from every available resource of the owner MUST be sent BEFORE routing.
        // (The literal §3.2.2 text also names the unavailable presence for the pure denial states, but its own
        // rationale is "while the user is still subscribed"; sending full-JID presence to an entity that was never
        // subscribed would disclose the owner's resources, so it is only done when 'from' is removed.)
        return outboundResult(state, make(state, { from: false, pendingIn: false, approved: false }), true, {
          forcePush: true,
          ...(hasFrom(state) ? { sideEffect: 'send-unavailable-presence' as const } : {}),
        });
      }
      // "None", "None + Pending Out", "To": SHOULD NOT route, no state change, MUST NOT send unavailable presence
      // (§3.2.2) — except note [1] / §3.2.2: if the approved flag is set, the pre-approval MUST be removed (and then
      // MUST NOT route); the roster push shows the item without 'approved' (§3.4.2, Implementation Note).
      return outboundResult(state, make(state, { approved: false }), false);
  }
}

/**
 * The owner's server processing a subscription stanza that arrived from the peer (RFC 6121 Appendix A.3).
 * `state` is the owner's roster item for the peer (`NO_SUBSCRIPTION` if there is none). The stanza's 'from'
 * should be treated as the peer's bare JID and its 'to' as the owner's bare JID (§3.1.3).
 */
export function inbound(type: SubscriptionType, state: SubscriptionState): InboundResult {
  switch (type) {
    case 'subscribe':
      // A.3.1 Table 6, §3.1.3, §3.4.2.
      if (hasFrom(state)) {
        // "From", "From + Pending Out", "Both": SHOULD NOT deliver, no state change, auto-reply "subscribed"
        // (note [2]; §3.1.3 makes it a MUST: "If the contact exists and the user already has a subscription to the
        // contact's presence, then the contact's server MUST auto-reply"). The auto-reply is a subscription approval
        // sent on the owner's behalf, so §3.1.5 applies: current presence goes to the peer as well (the peer is
        // typically re-subscribing because it lost its state and would otherwise see the owner offline).
        return inboundResult(state, state, false, {
          autoReply: 'subscribed',
          sideEffect: 'send-available-presence',
        });
      }
      if (state.pendingIn) {
        // "None + Pending In", "None + Pending Out+In", "To + Pending In": SHOULD NOT deliver, no state change.
        // (The stored request may be replaced by this one; only one is kept and redelivered, §3.1.3.)
        return inboundResult(state, state, false);
      }
      if (state.approved) {
        // Pre-approved (§3.4.2: "the user's server MUST NOT deliver a presence stanza of type "subscribe" from the
        // contact to the user, but instead MUST automatically respond ... "subscribed""; note [1] of Table 6). The
        // peer is now subscribed: "None" -> "From", "None + Pending Out" -> "From + Pending Out", "To" -> "Both".
        // The approval is consumed (whether to keep the record is local policy per §3.4.2; keeping it would
        // silently re-approve a later request after the peer unsubscribes). As for any approval, the owner's
        // current presence follows (§3.1.5).
        return inboundResult(state, make(state, { from: true, approved: false }), false, {
          autoReply: 'subscribed',
          sideEffect: 'send-available-presence',
        });
      }
      // "None" -> "None + Pending In", "None + Pending Out" -> "None + Pending Out+In", "To" -> "To + Pending In":
      // MUST deliver (to available resources, or store until one is available).
      return inboundResult(state, make(state, { pendingIn: true }), true);

    case 'unsubscribe':
      // A.3.2 Table 7 and §3.3.3: if the stanza changes the state, MUST change it, MUST deliver, SHOULD auto-reply
      // "unsubscribed"; otherwise MUST NOT change the state and SHOULD NOT deliver. It ends the peer's subscription
      // to the owner ('from') and any pending request from the peer ("Pending In"; with no roster item, §3.3.3:
      // "simply remove any record of the inbound presence subscription request"). If 'from' was removed, §3.3.3
      // step 3: unavailable presence from each of the owner's available resources to the peer.
      if (hasFrom(state) || state.pendingIn) {
        return inboundResult(state, make(state, { from: false, pendingIn: false }), true, {
          autoReply: 'unsubscribed',
          ...(hasFrom(state) ? { sideEffect: 'send-unavailable-presence' as const } : {}),
        });
      }
      return inboundResult(state, state, false);

    case 'subscribed':
      // A.3.3 Table 8 and §3.1.6: only a pending outbound request can be approved: "None + Pending Out" -> "To",
      // "None + Pending Out+In" -> "To + Pending In", "From + Pending Out" -> "Both"; MUST deliver (before the
      // roster push). Every other state: MUST NOT change, SHOULD NOT deliver ("silently ignore"). The available
      // presence the peer's server sends next (§3.1.5) is ordinary inbound presence, to be delivered to the
      // owner's available resources (§3.1.6); it is the peer's server's job, so there is no sideEffect here.
      if (state.pendingOut) {
        return inboundResult(state, make(state, { to: true, pendingOut: false }), true);
      }
      return inboundResult(state, state, false);

    case 'unsubscribed':
      // A.3.4 Table 9 and §3.2.3: a pending outbound request is denied or the owner's subscription to the peer is
      // cancelled: "None + Pending Out" -> "None", "None + Pending Out+In" -> "None + Pending In", "To" -> "None",
      // "To + Pending In" -> "None + Pending In", "From + Pending Out" -> "From", "Both" -> "From"; MUST deliver
      // (before the roster push). Otherwise no change and SHOULD NOT deliver. The unavailable presence the peer's
      // server sent just before (§3.2.2) is delivered as ordinary presence (§3.2.3); no sideEffect here.
      // A pre-approval of the owner's is about the other direction and is kept.
      if (hasTo(state) || state.pendingOut) {
        return inboundResult(state, make(state, { to: false, pendingOut: false }), true);
      }
      return inboundResult(state, state, false);
  }
}

/**
 * How a state appears in a roster item / roster push (RFC 6121 A.1, §2.1.2.1, §2.1.2.2, §2.1.2.5): the
 * 'subscription' attribute, ask='subscribe' for the "Pending Out" states, approved='true' for a pre-approval.
 * "Pending In" is never visible in the roster; it is shown to the owner by (re)delivering the `subscribe` stanza.
 */
export function rosterAttributes(state: SubscriptionState): {
  subscription: Subscription;
  ask?: 'subscribe';
  approved?: true;
} {
  const attrs: { subscription: Subscription; ask?: 'subscribe'; approved?: true } = {
    subscription: state.subscription,
  };
  if (state.pendingOut) attrs.ask = 'subscribe';
  if (state.approved) attrs.approved = true;
  return attrs;
}

/**
 * Whether this state requires a roster item to exist. "None + Pending In" (and plain "None") can be held without
 * one (A.1 item 3; §3.1.3 Security Warning); everything else — a subscription in either direction, a pending
 * outbound request (§3.1.2 pushes the item with ask='subscribe'), a pre-approval (§3.4.2: "If the contact is not
 * yet in the user's roster, the user's server MUST create a roster item") — lives in a roster item, so the caller
 * creates one when `changed` yields such a state for a peer that has none.
 */
export function needsRosterItem(state: SubscriptionState): boolean {
  return state.subscription !== 'none' || state.pendingOut || state.approved;
}

/** The peer receives the owner's presence broadcasts (the owner's item has 'from' or 'both'; RFC 6121 §4.2.2). */
export function sendsPresenceTo(state: SubscriptionState): boolean {
  return hasFrom(state);
}

/** The owner receives the peer's presence (the owner's item has 'to' or 'both'; the owner probes it, §4.3). */
export function receivesPresenceFrom(state: SubscriptionState): boolean {
  return hasTo(state);
}

/** One of the nine states of A.1 (flags impossible for the subscription value are not set). */
export function isValidState(state: SubscriptionState): boolean {
  if (state.pendingOut && hasTo(state)) return false;
  if (state.pendingIn && hasFrom(state)) return false;
  // A pre-approval only makes sense while the peer has neither a subscription nor a pending request (§3.4.2).
  if (state.approved && (hasFrom(state) || state.pendingIn)) return false;
  return true;
}

/** The RFC 6121 A.1 name of a state, e.g. "None + Pending Out+In" (plus " [approved]"), for logs and errors. */
export function stateName(state: SubscriptionState): string {
  const base = state.subscription.charAt(0).toUpperCase() + state.subscription.slice(1);
  const pending =
    state.pendingOut && state.pendingIn
      ? ' + Pending Out+In'
      : state.pendingOut
        ? ' + Pending Out'
        : state.pendingIn
          ? ' + Pending In'
          : '';
  return base + pending + (state.approved ? ' [approved]' : '');
}
