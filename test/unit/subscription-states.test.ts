import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import {
  NO_SUBSCRIPTION,
  SUBSCRIPTION_TYPES,
  inbound,
  isSubscriptionType,
  isValidState,
  needsRosterItem,
  outbound,
  receivesPresenceFrom,
  rosterAttributes,
  sendsPresenceTo,
  stateName,
} from '../../lib/extensions/roster/subscription-states.ts';
import type {
  InboundResult,
  OutboundResult,
  SubscriptionState,
  SubscriptionType,
} from '../../lib/extensions/roster/subscription-states.ts';

// The nine states of RFC 6121 Appendix A.1, written out by hand (not derived from the code under test).
type Name =
  | 'None'
  | 'None + Pending Out'
  | 'None + Pending In'
  | 'None + Pending Out+In'
  | 'To'
  | 'To + Pending In'
  | 'From'
  | 'From + Pending Out'
  | 'Both';

const S: Record<Name, SubscriptionState> = {
  None: { subscription: 'none', pendingOut: false, pendingIn: false, approved: false },
  'None + Pending Out': { subscription: 'none', pendingOut: true, pendingIn: false, approved: false },
  'None + Pending In': { subscription: 'none', pendingOut: false, pendingIn: true, approved: false },
  'None + Pending Out+In': { subscription: 'none', pendingOut: true, pendingIn: true, approved: false },
  To: { subscription: 'to', pendingOut: false, pendingIn: false, approved: false },
  'To + Pending In': { subscription: 'to', pendingOut: false, pendingIn: true, approved: false },
  From: { subscription: 'from', pendingOut: false, pendingIn: false, approved: false },
  'From + Pending Out': { subscription: 'from', pendingOut: true, pendingIn: false, approved: false },
  Both: { subscription: 'both', pendingOut: false, pendingIn: false, approved: false },
};
const NAMES = Object.keys(S) as Name[];

function approved(name: 'None' | 'None + Pending Out' | 'To'): SubscriptionState {
  return { ...S[name], approved: true };
}

// ---------------------------------------------------------------------------------------------------------------
// Tables transcribed from RFC 6121 Appendix A. Column 2 is the RFC's word (MUST / S.N. = SHOULD NOT /
// M.N. = MUST NOT); column 3 the new state, 'no state change', or 'pre-approval'. Column 4 holds what the footnotes
// and the §3 prose add (auto-reply, presence side effect).
// ---------------------------------------------------------------------------------------------------------------

type Word = 'MUST' | 'S.N.' | 'M.N.';
type NewState = Name | 'no state change' | 'pre-approval';
interface Extra {
  autoReply?: 'subscribed' | 'unsubscribed';
  sideEffect?: 'send-available-presence' | 'send-unavailable-presence';
}
type Row = [Name, Word, NewState, Extra?];

// A.2.1 Table 2: Processing of outbound "subscribe" stanzas
const OUT_SUBSCRIBE: Row[] = [
  ['None', 'MUST', 'None + Pending Out'],
  ['None + Pending Out', 'MUST', 'no state change'],
  ['None + Pending In', 'MUST', 'None + Pending Out+In'],
  ['None + Pending Out+In', 'MUST', 'no state change'],
  ['To', 'MUST', 'no state change'],
  ['To + Pending In', 'MUST', 'no state change'],
  ['From', 'MUST', 'From + Pending Out'],
  ['From + Pending Out', 'MUST', 'no state change'],
  ['Both', 'MUST', 'no state change'],
];

// A.2.2 Table 3: Processing of outbound "unsubscribe" stanzas
const OUT_UNSUBSCRIBE: Row[] = [
  ['None', 'MUST', 'no state change'],
  ['None + Pending Out', 'MUST', 'None'],
  ['None + Pending In', 'MUST', 'no state change'],
  ['None + Pending Out+In', 'MUST', 'None + Pending In'],
  ['To', 'MUST', 'None'],
  ['To + Pending In', 'MUST', 'None + Pending In'],
  ['From', 'MUST', 'no state change'],
  ['From + Pending Out', 'MUST', 'From'],
  ['Both', 'MUST', 'From'],
];

// A.2.3 Table 4: Processing of outbound "subscribed" stanzas (+ §3.1.5: current presence to the new subscriber)
const AVAILABLE: Extra = { sideEffect: 'send-available-presence' };
const OUT_SUBSCRIBED: Row[] = [
  ['None', 'M.N.', 'pre-approval'],
  ['None + Pending Out', 'M.N.', 'pre-approval'],
  ['None + Pending In', 'MUST', 'From', AVAILABLE],
  ['None + Pending Out+In', 'MUST', 'From + Pending Out', AVAILABLE],
  ['To', 'M.N.', 'pre-approval'],
  ['To + Pending In', 'MUST', 'Both', AVAILABLE],
  ['From', 'M.N.', 'no state change'],
  ['From + Pending Out', 'M.N.', 'no state change'],
  ['Both', 'M.N.', 'no state change'],
];

// A.2.4 Table 5: Processing of outbound "unsubscribed" stanzas (+ §3.2.2: unavailable presence when 'from' ends)
const UNAVAILABLE: Extra = { sideEffect: 'send-unavailable-presence' };
const OUT_UNSUBSCRIBED: Row[] = [
  ['None', 'S.N.', 'no state change'],
  ['None + Pending Out', 'S.N.', 'no state change'],
  ['None + Pending In', 'MUST', 'None'],
  ['None + Pending Out+In', 'MUST', 'None + Pending Out'],
  ['To', 'S.N.', 'no state change'],
  ['To + Pending In', 'MUST', 'To'],
  ['From', 'MUST', 'None', UNAVAILABLE],
  ['From + Pending Out', 'MUST', 'None + Pending Out', UNAVAILABLE],
  ['Both', 'MUST', 'To', UNAVAILABLE],
];

// A.3.1 Table 6: Processing of inbound "subscribe" stanzas. Note [2]: "Server SHOULD auto-reply with
// "subscribed"" (a MUST in §3.1.3), treated as an approval, so §3.1.5's presence follows.
const REAPPROVE: Extra = { autoReply: 'subscribed', sideEffect: 'send-available-presence' };
const IN_SUBSCRIBE: Row[] = [
  ['None', 'MUST', 'None + Pending In'],
  ['None + Pending Out', 'MUST', 'None + Pending Out+In'],
  ['None + Pending In', 'S.N.', 'no state change'],
  ['None + Pending Out+In', 'S.N.', 'no state change'],
  ['To', 'MUST', 'To + Pending In'],
  ['To + Pending In', 'S.N.', 'no state change'],
  ['From', 'S.N.', 'no state change', REAPPROVE],
  ['From + Pending Out', 'S.N.', 'no state change', REAPPROVE],
  ['Both', 'S.N.', 'no state change', REAPPROVE],
];

// A.3.2 Table 7: Processing of inbound "unsubscribe" stanzas. [1] Server SHOULD auto-reply with "unsubscribed";
// §3.3.3 step 3: unavailable presence to the former subscriber.
const UNSUB_REPLY: Extra = { autoReply: 'unsubscribed' };
const UNSUB_REPLY_UNAVAILABLE: Extra = { autoReply: 'unsubscribed', sideEffect: 'send-unavailable-presence' };
const IN_UNSUBSCRIBE: Row[] = [
  ['None', 'S.N.', 'no state change'],
  ['None + Pending Out', 'S.N.', 'no state change'],
  ['None + Pending In', 'MUST', 'None', UNSUB_REPLY],
  ['None + Pending Out+In', 'MUST', 'None + Pending Out', UNSUB_REPLY],
  ['To', 'S.N.', 'no state change'],
  ['To + Pending In', 'MUST', 'To', UNSUB_REPLY],
  ['From', 'MUST', 'None', UNSUB_REPLY_UNAVAILABLE],
  ['From + Pending Out', 'MUST', 'None + Pending Out', UNSUB_REPLY_UNAVAILABLE],
  ['Both', 'MUST', 'To', UNSUB_REPLY_UNAVAILABLE],
];

// A.3.3 Table 8: Processing of inbound "subscribed" stanzas
const IN_SUBSCRIBED: Row[] = [
  ['None', 'S.N.', 'no state change'],
  ['None + Pending Out', 'MUST', 'To'],
  ['None + Pending In', 'S.N.', 'no state change'],
  ['None + Pending Out+In', 'MUST', 'To + Pending In'],
  ['To', 'S.N.', 'no state change'],
  ['To + Pending In', 'S.N.', 'no state change'],
  ['From', 'S.N.', 'no state change'],
  ['From + Pending Out', 'MUST', 'Both'],
  ['Both', 'S.N.', 'no state change'],
];

// A.3.4 Table 9: Processing of inbound "unsubscribed" stanzas
const IN_UNSUBSCRIBED: Row[] = [
  ['None', 'S.N.', 'no state change'],
  ['None + Pending Out', 'MUST', 'None'],
  ['None + Pending In', 'S.N.', 'no state change'],
  ['None + Pending Out+In', 'MUST', 'None + Pending In'],
  ['To', 'MUST', 'None'],
  ['To + Pending In', 'MUST', 'None + Pending In'],
  ['From', 'S.N.', 'no state change'],
  ['From + Pending Out', 'MUST', 'From'],
  ['Both', 'MUST', 'From'],
];

const OUTBOUND_TABLES: Record<SubscriptionType, Row[]> = {
  subscribe: OUT_SUBSCRIBE,
  unsubscribe: OUT_UNSUBSCRIBE,
  subscribed: OUT_SUBSCRIBED,
  unsubscribed: OUT_UNSUBSCRIBED,
};
const INBOUND_TABLES: Record<SubscriptionType, Row[]> = {
  subscribe: IN_SUBSCRIBE,
  unsubscribe: IN_UNSUBSCRIBE,
  subscribed: IN_SUBSCRIBED,
  unsubscribed: IN_UNSUBSCRIBED,
};

function expectedState(from: Name, cell: NewState): SubscriptionState {
  if (cell === 'no state change') return S[from];
  if (cell === 'pre-approval') return { ...S[from], approved: true };
  return S[cell];
}

/** Roster-visible attributes of the nine states per A.1 (subscription=..., ask='subscribe'). */
const A1_ROSTER: Record<Name, { subscription: string; ask?: 'subscribe' }> = {
  None: { subscription: 'none' },
  'None + Pending Out': { subscription: 'none', ask: 'subscribe' },
  'None + Pending In': { subscription: 'none' },
  'None + Pending Out+In': { subscription: 'none', ask: 'subscribe' },
  To: { subscription: 'to' },
  'To + Pending In': { subscription: 'to' },
  From: { subscription: 'from' },
  'From + Pending Out': { subscription: 'from', ask: 'subscribe' },
  Both: { subscription: 'both' },
};

function visibleChange(a: SubscriptionState, b: SubscriptionState): boolean {
  return a.subscription !== b.subscription || a.pendingOut !== b.pendingOut || a.approved !== b.approved;
}

describe('RFC 6121 A.2 outbound subscription stanzas (9 states x 4 types)', () => {
  for (const type of SUBSCRIPTION_TYPES) {
    const table = OUTBOUND_TABLES[type];
    it(`table for outbound "${type}" covers all nine states`, () => {
      assert.deepEqual(
        table.map((r) => r[0]),
        NAMES,
      );
    });
    for (const [name, word, cell, extra = {}] of table) {
      it(`outbound ${type} in "${name}": route ${word}, ${cell}`, () => {
        const input = structuredClone(S[name]);
        const r: OutboundResult = outbound(type, input);
        const want = expectedState(name, cell);
        assert.deepEqual(r.state, want);
        assert.equal(r.route, word === 'MUST');
        assert.equal(r.changed, cell !== 'no state change');
        assert.equal(r.sideEffect, extra.sideEffect);
        // §3.2.2 demands a roster push whenever an outbound unsubscribed is routed; otherwise push on visible change.
        assert.equal(r.rosterPush, visibleChange(S[name], want) || (type === 'unsubscribed' && word === 'MUST'));
        assert.deepEqual(input, S[name], 'input not mutated');
        assert.ok(isValidState(r.state));
      });
    }
  }
});

describe('RFC 6121 A.3 inbound subscription stanzas (9 states x 4 types)', () => {
  for (const type of SUBSCRIPTION_TYPES) {
    const table = INBOUND_TABLES[type];
    it(`table for inbound "${type}" covers all nine states`, () => {
      assert.deepEqual(
        table.map((r) => r[0]),
        NAMES,
      );
    });
    for (const [name, word, cell, extra = {}] of table) {
      it(`inbound ${type} in "${name}": deliver ${word}, ${cell}`, () => {
        const input = structuredClone(S[name]);
        const r: InboundResult = inbound(type, input);
        const want = expectedState(name, cell);
        assert.deepEqual(r.state, want);
        assert.equal(r.deliver, word === 'MUST');
        assert.equal(r.changed, cell !== 'no state change');
        assert.equal(r.autoReply, extra.autoReply);
        assert.equal(r.sideEffect, extra.sideEffect);
        assert.equal(r.rosterPush, visibleChange(S[name], want));
        assert.deepEqual(input, S[name], 'input not mutated');
        assert.ok(isValidState(r.state));
      });
    }
  }
});

// The three states in which a pre-approval can exist (§3.4.2), x 4 types x 2 directions, expected values by hand.
describe('RFC 6121 §3.4 pre-approval (approved flag)', () => {
  type Case = {
    from: SubscriptionState;
    dir: 'out' | 'in';
    type: SubscriptionType;
    state: SubscriptionState;
    pass: boolean; // route / deliver
    changed: boolean;
    rosterPush: boolean;
    autoReply?: 'subscribed' | 'unsubscribed';
    sideEffect?: 'send-available-presence' | 'send-unavailable-presence';
    why: string;
  };
  const cases: Case[] = [
    // outbound subscribe: Table 2, approval kept
    { from: approved('None'), dir: 'out', type: 'subscribe', state: approved('None + Pending Out'), pass: true, changed: true, rosterPush: true, why: 'Table 2, flag kept' },
    { from: approved('None + Pending Out'), dir: 'out', type: 'subscribe', state: approved('None + Pending Out'), pass: true, changed: false, rosterPush: false, why: 'Table 2 resend' },
    { from: approved('To'), dir: 'out', type: 'subscribe', state: approved('To'), pass: true, changed: false, rosterPush: false, why: 'Table 2' },
    // outbound unsubscribe: Table 3, approval kept (it concerns the other direction)
    { from: approved('None'), dir: 'out', type: 'unsubscribe', state: approved('None'), pass: true, changed: false, rosterPush: false, why: 'Table 3' },
    { from: approved('None + Pending Out'), dir: 'out', type: 'unsubscribe', state: approved('None'), pass: true, changed: true, rosterPush: true, why: 'Table 3' },
    { from: approved('To'), dir: 'out', type: 'unsubscribe', state: approved('None'), pass: true, changed: true, rosterPush: true, why: 'Table 3' },
    // outbound subscribed again: already pre-approved, nothing to do, MUST NOT route
    { from: approved('None'), dir: 'out', type: 'subscribed', state: approved('None'), pass: false, changed: false, rosterPush: false, why: '§3.4.2 already approved' },
    { from: approved('None + Pending Out'), dir: 'out', type: 'subscribed', state: approved('None + Pending Out'), pass: false, changed: false, rosterPush: false, why: '§3.4.2' },
    { from: approved('To'), dir: 'out', type: 'subscribed', state: approved('To'), pass: false, changed: false, rosterPush: false, why: '§3.4.2' },
    // outbound unsubscribed: §3.2.2 "MUST remove the pre-approval and MUST NOT route"
    { from: approved('None'), dir: 'out', type: 'unsubscribed', state: S['None'], pass: false, changed: true, rosterPush: true, why: '§3.2.2 cancel pre-approval' },
    { from: approved('None + Pending Out'), dir: 'out', type: 'unsubscribed', state: S['None + Pending Out'], pass: false, changed: true, rosterPush: true, why: '§3.2.2' },
    { from: approved('To'), dir: 'out', type: 'unsubscribed', state: S['To'], pass: false, changed: true, rosterPush: true, why: '§3.2.2' },
    // inbound subscribe: §3.4.2 MUST NOT deliver, MUST auto-reply subscribed; Table 6 note [1]: state "From"
    { from: approved('None'), dir: 'in', type: 'subscribe', state: S['From'], pass: false, changed: true, rosterPush: true, autoReply: 'subscribed', sideEffect: 'send-available-presence', why: 'Table 6 [1]' },
    { from: approved('None + Pending Out'), dir: 'in', type: 'subscribe', state: S['From + Pending Out'], pass: false, changed: true, rosterPush: true, autoReply: 'subscribed', sideEffect: 'send-available-presence', why: '§3.4.2' },
    { from: approved('To'), dir: 'in', type: 'subscribe', state: S['Both'], pass: false, changed: true, rosterPush: true, autoReply: 'subscribed', sideEffect: 'send-available-presence', why: '§3.4.2' },
    // inbound unsubscribe: Table 7 rows unchanged
    { from: approved('None'), dir: 'in', type: 'unsubscribe', state: approved('None'), pass: false, changed: false, rosterPush: false, why: 'Table 7' },
    { from: approved('None + Pending Out'), dir: 'in', type: 'unsubscribe', state: approved('None + Pending Out'), pass: false, changed: false, rosterPush: false, why: 'Table 7' },
    { from: approved('To'), dir: 'in', type: 'unsubscribe', state: approved('To'), pass: false, changed: false, rosterPush: false, why: 'Table 7' },
    // inbound subscribed: Table 8, approval kept
    { from: approved('None'), dir: 'in', type: 'subscribed', state: approved('None'), pass: false, changed: false, rosterPush: false, why: 'Table 8' },
    { from: approved('None + Pending Out'), dir: 'in', type: 'subscribed', state: approved('To'), pass: true, changed: true, rosterPush: true, why: 'Table 8' },
    { from: approved('To'), dir: 'in', type: 'subscribed', state: approved('To'), pass: false, changed: false, rosterPush: false, why: 'Table 8' },
    // inbound unsubscribed: Table 9, approval kept
    { from: approved('None'), dir: 'in', type: 'unsubscribed', state: approved('None'), pass: false, changed: false, rosterPush: false, why: 'Table 9' },
    { from: approved('None + Pending Out'), dir: 'in', type: 'unsubscribed', state: approved('None'), pass: true, changed: true, rosterPush: true, why: 'Table 9' },
    { from: approved('To'), dir: 'in', type: 'unsubscribed', state: approved('None'), pass: true, changed: true, rosterPush: true, why: 'Table 9' },
  ];

  it('covers 3 states x 4 types x 2 directions', () => {
    assert.equal(cases.length, 24);
    assert.equal(new Set(cases.map((c) => `${stateName(c.from)}|${c.dir}|${c.type}`)).size, 24);
  });

  for (const c of cases) {
    it(`${c.dir === 'out' ? 'outbound' : 'inbound'} ${c.type} in "${stateName(c.from)}" (${c.why})`, () => {
      if (c.dir === 'out') {
        const r = outbound(c.type, c.from);
        assert.deepEqual(r.state, c.state);
        assert.equal(r.route, c.pass);
        assert.equal(r.changed, c.changed);
        assert.equal(r.rosterPush, c.rosterPush);
        assert.equal(r.sideEffect, c.sideEffect);
      } else {
        const r = inbound(c.type, c.from);
        assert.deepEqual(r.state, c.state);
        assert.equal(r.deliver, c.pass);
        assert.equal(r.changed, c.changed);
        assert.equal(r.rosterPush, c.rosterPush);
        assert.equal(r.autoReply, c.autoReply);
        assert.equal(r.sideEffect, c.sideEffect);
      }
    });
  }

  it('outbound subscribed with no roster item creates a "None" item with approved=true (§3.4.2)', () => {
    const r = outbound('subscribed', NO_SUBSCRIPTION);
    assert.deepEqual(r.state, { subscription: 'none', pendingOut: false, pendingIn: false, approved: true });
    assert.equal(r.route, false);
    assert.equal(r.rosterPush, true);
    assert.equal(needsRosterItem(r.state), true);
    assert.deepEqual(rosterAttributes(r.state), { subscription: 'none', approved: true });
  });
});

describe('roster attributes and presence direction', () => {
  for (const name of NAMES) {
    it(`"${name}" appears per A.1`, () => {
      assert.deepEqual(rosterAttributes(S[name]), A1_ROSTER[name]);
    });
  }

  it('sendsPresenceTo: from/both only; receivesPresenceFrom: to/both only', () => {
    const sends = NAMES.filter((n) => sendsPresenceTo(S[n]));
    const receives = NAMES.filter((n) => receivesPresenceFrom(S[n]));
    assert.deepEqual(sends, ['From', 'From + Pending Out', 'Both']);
    assert.deepEqual(receives, ['To', 'To + Pending In', 'Both']);
  });

  it('needsRosterItem: only "None" and "None + Pending In" may exist without a roster item', () => {
    assert.deepEqual(
      NAMES.filter((n) => !needsRosterItem(S[n])),
      ['None', 'None + Pending In'],
    );
    assert.equal(needsRosterItem(approved('None')), true);
  });

  it('stateName gives the A.1 names', () => {
    for (const name of NAMES) assert.equal(stateName(S[name]), name);
    assert.equal(stateName(approved('To')), 'To [approved]');
  });

  it('NO_SUBSCRIPTION is "None" with no flags, frozen', () => {
    assert.deepEqual(NO_SUBSCRIPTION, S['None']);
    assert.ok(Object.isFrozen(NO_SUBSCRIPTION));
  });

  it('isSubscriptionType', () => {
    for (const t of ['subscribe', 'subscribed', 'unsubscribe', 'unsubscribed']) assert.ok(isSubscriptionType(t));
    for (const t of [undefined, 'probe', 'unavailable', 'error', '']) assert.ok(!isSubscriptionType(t));
  });

  it('isValidState accepts the nine states (and the three approvable ones with approved) and nothing else', () => {
    const subs = ['none', 'to', 'from', 'both'] as const;
    const valid: string[] = [];
    for (const subscription of subs)
      for (const pendingOut of [false, true])
        for (const pendingIn of [false, true])
          for (const appr of [false, true]) {
            const s = { subscription, pendingOut, pendingIn, approved: appr };
            if (isValidState(s)) valid.push(stateName(s));
          }
    assert.deepEqual(
      valid.sort(),
      [...NAMES, 'None [approved]', 'None + Pending Out [approved]', 'To [approved]'].sort(),
    );
  });

  it('every transition from a valid state yields a valid state', () => {
    const inputs = [...NAMES.map((n) => S[n]), approved('None'), approved('None + Pending Out'), approved('To')];
    for (const s of inputs)
      for (const t of SUBSCRIPTION_TYPES) {
        assert.ok(isValidState(outbound(t, s).state), `outbound ${t} ${stateName(s)}`);
        assert.ok(isValidState(inbound(t, s).state), `inbound ${t} ${stateName(s)}`);
      }
  });
});

// ---------------------------------------------------------------------------------------------------------------
// End-to-end sequences: two parties, each with a roster item for the other, exchanging stanzas through the
// functions exactly as a server would (outbound at the sender's server; if routed, inbound at the recipient's).
// ---------------------------------------------------------------------------------------------------------------

class Pair {
  items: Record<'user' | 'contact', SubscriptionState> = { user: NO_SUBSCRIPTION, contact: NO_SUBSCRIPTION };
  log: string[] = [];

  private other(who: 'user' | 'contact'): 'user' | 'contact' {
    return who === 'user' ? 'contact' : 'user';
  }

  /** `who` sends a subscription stanza to the other party. */
  send(who: 'user' | 'contact', type: SubscriptionType): void {
    const out = outbound(type, this.items[who]);
    if (out.sideEffect) this.log.push(`${who}:${out.sideEffect}`);
    this.items[who] = out.state;
    if (out.route) this.receive(this.other(who), type);
    else this.log.push(`${who}:${type}:dropped`);
  }

  /** `who`'s server receives a subscription stanza from the other party. */
  private receive(who: 'user' | 'contact', type: SubscriptionType): void {
    const r = inbound(type, this.items[who]);
    this.items[who] = r.state;
    this.log.push(`${who}:${type}:${r.deliver ? 'delivered' : 'not-delivered'}`);
    // The auto-reply carries no outbound processing of its own: it goes straight to the other party's server.
    if (r.autoReply) {
      this.log.push(`${who}:auto-${r.autoReply}`);
      this.receive(this.other(who), r.autoReply);
    }
    if (r.sideEffect) this.log.push(`${who}:${r.sideEffect}`);
  }

  names(): [string, string] {
    return [stateName(this.items.user), stateName(this.items.contact)];
  }
}

describe('end-to-end sequences', () => {
  it('user subscribes, contact approves: user "To", contact "From" (§3.1)', () => {
    const p = new Pair();
    p.send('user', 'subscribe');
    assert.deepEqual(p.names(), ['None + Pending Out', 'None + Pending In']);
    assert.deepEqual(rosterAttributes(p.items.user), { subscription: 'none', ask: 'subscribe' });
    assert.equal(needsRosterItem(p.items.contact), false, 'no roster item for the contact before approval');
    p.send('contact', 'subscribed');
    assert.deepEqual(p.names(), ['To', 'From']);
    assert.equal(receivesPresenceFrom(p.items.user), true);
    assert.equal(sendsPresenceTo(p.items.contact), true);
    assert.equal(sendsPresenceTo(p.items.user), false);
    assert.deepEqual(p.log, [
      'contact:subscribe:delivered',
      'contact:send-available-presence',
      'user:subscribed:delivered',
    ]);
  });

  it('mutual subscription reaches "Both" / "Both" (request, approve, counter-request, approve)', () => {
    const p = new Pair();
    p.send('user', 'subscribe');
    p.send('contact', 'subscribed');
    p.send('contact', 'subscribe');
    assert.deepEqual(p.names(), ['To + Pending In', 'From + Pending Out']);
    p.send('user', 'subscribed');
    assert.deepEqual(p.names(), ['Both', 'Both']);
    assert.deepEqual(rosterAttributes(p.items.user), { subscription: 'both' });
  });

  it('crossing requests also reach "Both" / "Both"', () => {
    const p = new Pair();
    p.send('user', 'subscribe');
    p.send('contact', 'subscribe');
    assert.deepEqual(p.names(), ['None + Pending Out+In', 'None + Pending Out+In']);
    p.send('user', 'subscribed');
    assert.deepEqual(p.names(), ['From + Pending Out', 'To + Pending In']);
    p.send('contact', 'subscribed');
    assert.deepEqual(p.names(), ['Both', 'Both']);
  });

  it('contact denies a request: both back to "None", no presence sent (§3.1.4 / §3.2)', () => {
    const p = new Pair();
    p.send('user', 'subscribe');
    p.log.length = 0;
    p.send('contact', 'unsubscribed');
    assert.deepEqual(p.names(), ['None', 'None']);
    assert.deepEqual(p.log, ['user:unsubscribed:delivered']);
  });

  it('user withdraws a pending request with unsubscribe: contact gets it and auto-replies (§3.3.3)', () => {
    const p = new Pair();
    p.send('user', 'subscribe');
    p.log.length = 0;
    p.send('user', 'unsubscribe');
    assert.deepEqual(p.names(), ['None', 'None']);
    assert.deepEqual(p.log, [
      'contact:unsubscribe:delivered',
      'contact:auto-unsubscribed',
      'user:unsubscribed:not-delivered',
    ]);
  });

  it('contact cancels the user\'s subscription from "Both": unavailable presence first (§3.2.2)', () => {
    const p = new Pair();
    p.items = { user: S['Both'], contact: S['Both'] };
    const out = outbound('unsubscribed', p.items.contact);
    assert.equal(out.sideEffect, 'send-unavailable-presence');
    assert.equal(out.route, true);
    assert.equal(out.rosterPush, true);
    p.send('contact', 'unsubscribed');
    assert.deepEqual(p.names(), ['From', 'To']);
    assert.deepEqual(p.log, ['contact:send-unavailable-presence', 'user:unsubscribed:delivered']);
    // Cancelling again is a no-op that is not routed (Table 5 "To": S.N.).
    p.log.length = 0;
    p.send('contact', 'unsubscribed');
    assert.deepEqual(p.names(), ['From', 'To']);
    assert.deepEqual(p.log, ['contact:unsubscribed:dropped']);
  });

  it('user unsubscribes from "Both": contact auto-replies and sends unavailable presence (§3.3)', () => {
    const p = new Pair();
    p.items = { user: S['Both'], contact: S['Both'] };
    p.send('user', 'unsubscribe');
    assert.deepEqual(p.names(), ['From', 'To']);
    assert.deepEqual(p.log, [
      'contact:unsubscribe:delivered',
      'contact:auto-unsubscribed',
      'user:unsubscribed:not-delivered',
      'contact:send-unavailable-presence',
    ]);
    // Unsubscribing again is routed (Table 3: MUST) but ignored by the contact (Table 7 "To": S.N.).
    p.log.length = 0;
    p.send('user', 'unsubscribe');
    assert.deepEqual(p.names(), ['From', 'To']);
    assert.deepEqual(p.log, ['contact:unsubscribe:not-delivered']);
  });

  it('full teardown from "Both" to "None" / "None"', () => {
    const p = new Pair();
    p.items = { user: S['Both'], contact: S['Both'] };
    p.send('user', 'unsubscribe');
    p.send('user', 'unsubscribed');
    assert.deepEqual(p.names(), ['None', 'None']);
  });

  it('pre-approval: contact approves first, the later request is auto-answered (§3.4)', () => {
    const p = new Pair();
    p.send('contact', 'subscribed');
    assert.deepEqual(p.names(), ['None', 'None [approved]']);
    assert.deepEqual(p.log, ['contact:subscribed:dropped']);
    p.log.length = 0;
    p.send('user', 'subscribe');
    assert.deepEqual(p.names(), ['To', 'From']);
    assert.deepEqual(p.log, [
      'contact:subscribe:not-delivered',
      'contact:auto-subscribed',
      'user:subscribed:delivered',
      'contact:send-available-presence',
    ]);
    // The approval was consumed: after the user unsubscribes, a new request needs a new approval.
    p.send('user', 'unsubscribe');
    p.log.length = 0;
    p.send('user', 'subscribe');
    assert.deepEqual(p.names(), ['None + Pending Out', 'None + Pending In']);
    assert.deepEqual(p.log, ['contact:subscribe:delivered']);
  });

  it('pre-approval while the contact already subscribes to the user ("To") gives "Both"', () => {
    const p = new Pair();
    p.send('contact', 'subscribe');
    p.send('user', 'subscribed');
    assert.deepEqual(p.names(), ['From', 'To']);
    p.send('contact', 'subscribed');
    assert.deepEqual(p.names(), ['From', 'To [approved]']);
    p.send('user', 'subscribe');
    assert.deepEqual(p.names(), ['Both', 'Both']);
  });

  it('a pre-approval is cancelled by unsubscribed, without routing it (§3.2.2, §3.4.2)', () => {
    const p = new Pair();
    p.send('contact', 'subscribed');
    p.log.length = 0;
    p.send('contact', 'unsubscribed');
    assert.deepEqual(p.names(), ['None', 'None']);
    assert.deepEqual(p.log, ['contact:unsubscribed:dropped']);
    p.send('user', 'subscribe');
    assert.deepEqual(p.names(), ['None + Pending Out', 'None + Pending In'], 'request now needs approval');
  });

  it('re-subscribing to a contact that already approved resynchronises (Table 6 note [2])', () => {
    // The user's server lost its item ("None") while the contact still has "From".
    const p = new Pair();
    p.items = { user: S['None'], contact: S['From'] };
    p.send('user', 'subscribe');
    assert.deepEqual(p.names(), ['To', 'From']);
    assert.deepEqual(p.log, [
      'contact:subscribe:not-delivered',
      'contact:auto-subscribed',
      'user:subscribed:delivered',
      'contact:send-available-presence',
    ]);
  });

  it('duplicate requests are routed but delivered once', () => {
    const p = new Pair();
    p.send('user', 'subscribe');
    p.send('user', 'subscribe');
    assert.deepEqual(p.log, ['contact:subscribe:delivered', 'contact:subscribe:not-delivered']);
    assert.deepEqual(p.names(), ['None + Pending Out', 'None + Pending In']);
  });
});
