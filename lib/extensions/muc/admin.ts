// Roles and affiliations (XEP-0045 §8 moderator and §9/§10 admin and owner use cases) over the
// http://jabber.org/protocol/muc#admin IQ: kick, voice, moderator status, ban, membership, admin and
// owner lists, and the lists themselves. A set is checked item by item before anything changes
// (§9.2: a request with one forbidden change changes nothing); then the affected occupants are told,
// the requester gets its result, and the rest of the room learns of it (§8.2, §9.1 order).
import type { IqEvent } from '../../core/server.ts';
import { StanzaError } from '../../xmpp/errors.ts';
import { JIDError, parseJID } from '../../xmpp/jid.ts';
import { NS } from '../../xmpp/namespaces.ts';
import { type Element, xml } from '../../xmpp/xml.ts';
import type { Affiliation, AffiliationEntry, Occupant, Role, RoomRecord } from './store.ts';
import { deliverToUser } from './delivery.ts';
import { invitation } from './invitations.ts';
import { broadcastOccupant, expel } from './occupants.ts';
import {
  affiliationChangeError,
  isAffiliation,
  isRole,
  mayListAffiliation,
  mayListRole,
  roleAfterAffiliationChange,
  roleChangeError,
} from './permissions.ts';
import { affiliationOf, findSession, occupantsOf, primarySession } from './room-model.ts';
import type { Ctx } from './service.ts';

/** Work that follows the IQ result. */
export type After = () => Promise<void>;
const runAll = (list: After[]): After => async () => {
  for (const fn of list) await fn();
};

export interface IqAnswer {
  result: Element | true;
  after?: After;
}

/** Sets an occupant's role (§8.2 kick with role none → 307; §8.3–§8.4 voice; §9.6–§9.7 moderator). */
export async function setRole(ctx: Ctx, room: RoomRecord, target: Occupant, role: Role, opts: { actor?: string; reason?: string } = {}): Promise<After> {
  if (role === 'none') {
    const out = await expel(ctx, room.id, target, { codes: [307], actor: opts.actor, reason: opts.reason });
    return out?.notifyOthers ?? (async () => {});
  }
  const after = await ctx.muc.rooms.setRole(ctx.tenant, room.id, target.nick, target.bare, role);
  if (!after?.occupants[target.nick]) return async () => {};
  return () => broadcastOccupant(ctx, after, after.occupants[target.nick], { item: { reason: opts.reason } });
}

export interface AffiliationChange {
  bare: string;
  affiliation: Affiliation;
  /** undefined: keep the reserved nick; '': remove it (§9.5). */
  nick?: string;
  reason?: string;
}

/**
 * Sets affiliations in one write, with the roles of the users' occupants that change with them; the
 * occupants who may no longer stay are removed (301 banned, 321 no longer a member). Presence updates
 * for the others are returned to run after the IQ result.
 */
export async function setAffiliations(ctx: Ctx, room: RoomRecord, changes: AffiliationChange[], opts: { actor?: string } = {}): Promise<After> {
  if (!changes.length) return async () => {};
  const entries: Record<string, AffiliationEntry | null> = {};
  const roles: { nick: string; bare: string; role: Role }[] = [];
  const leaving: { occupant: Occupant; change: AffiliationChange }[] = [];
  const updated: string[] = [];
  const invite: string[] = [];
  for (const change of changes) {
    const before = affiliationOf(room, change.bare);
    const current = room.affiliations[change.bare];
    if (change.affiliation === 'none') entries[change.bare] = null;
    else {
      // §9.1: a ban removes the reserved nickname.
      const nick = change.affiliation === 'outcast' ? undefined : change.nick === undefined ? current?.nick : change.nick || undefined;
      entries[change.bare] = { affiliation: change.affiliation, ...(nick ? { nick } : {}), ...(change.reason ? { reason: change.reason } : {}) };
    }
    const present = occupantsOf(room, change.bare);
    for (const o of present) {
      const role = roleAfterAffiliationChange(o.role, before, change.affiliation, room.config);
      if (!role) leaving.push({ occupant: o, change });
      else {
        if (role !== o.role) roles.push({ nick: o.nick, bare: o.bare, role });
        updated.push(o.nick);
      }
    }
    // §9.5: "the service SHOULD send an invitation to any user who has been added to the member list of a members-only room".
    if (room.config.membersOnly && change.affiliation === 'member' && before === 'none' && !present.length) invite.push(change.bare);
  }
  const after = await ctx.muc.rooms.setAffiliations(ctx.tenant, room.id, entries, roles);
  if (!after) throw new StanzaError('item-not-found', 'the room changed meanwhile; try again', 'wait');
  const later: After[] = [];
  for (const { occupant, change } of leaving) {
    const code = change.affiliation === 'outcast' ? 301 : 321;
    const out = await expel(ctx, room.id, occupant, { codes: [code], affiliation: change.affiliation, actor: opts.actor, reason: change.reason });
    if (out) later.push(out.notifyOthers);
  }
  later.push(async () => {
    for (const nick of updated) if (after.occupants[nick]) await broadcastOccupant(ctx, after, after.occupants[nick]);
  });
  later.push(async () => {
    for (const bare of invite) await deliverToUser(ctx.server, parseJID(bare), invitation(ctx, after, bare, opts.actor ? `${room.id}@${ctx.service}/${opts.actor}` : `${room.id}@${ctx.service}`));
  });
  return runAll(later);
}

function listItem(attrs: Record<string, string | undefined>, reason?: string): Element {
  const clean = Object.fromEntries(Object.entries(attrs).filter(([, v]) => v !== undefined)) as Record<string, string>;
  return xml('item', clean, ...(reason ? [xml('reason', {}, reason)] : []));
}

/** muc#admin get: a role list (§8.5, §9.8) or an affiliation list (§9.2, §9.5, §10.5, §10.8). */
async function getList(ctx: Ctx, event: IqEvent, query: Element): Promise<IqAnswer> {
  const room = await ctx.muc.rooms.get(ctx.tenant, event.to.local);
  if (!room || (room.locked && affiliationOf(room, event.origin.jid.bare().toString()) !== 'owner')) throw new StanzaError('item-not-found', 'no such room');
  const items = query.getChildren('item');
  if (items.length !== 1) throw new StanzaError('bad-request', 'ask for one role or one affiliation');
  const { role, affiliation } = items[0].attrs;
  const out = xml('query', { xmlns: NS.MUC_ADMIN });
  if (role !== undefined) {
    if (!isRole(role) || role === 'none') throw new StanzaError('bad-request', `unknown role ${role}`);
    const mine = findSession(room, event.origin);
    if (!mine || !mayListRole(mine.occupant.role)) throw new StanzaError('forbidden', 'only moderators see role lists');
    // §17.4 rule 5: nick, role, affiliation and the full JID.
    for (const o of Object.values(room.occupants)) {
      if (o.role === role) out.cnode(listItem({ affiliation: affiliationOf(room, o.bare), jid: primarySession(o).jid, nick: o.nick, role: o.role }));
    }
    return { result: out };
  }
  if (!isAffiliation(affiliation) || affiliation === 'none') throw new StanzaError('bad-request', `unknown affiliation ${affiliation}`);
  if (!mayListAffiliation(affiliationOf(room, event.origin.jid.bare().toString()), affiliation, room.config.whois)) throw new StanzaError('forbidden', 'you may not see that list');
  // §17.4 rule 6: affiliation and bare JID, the reserved nick except for outcasts, never the role.
  for (const [bare, entry] of Object.entries(room.affiliations)) {
    if (entry.affiliation === affiliation) out.cnode(listItem({ affiliation, jid: bare, nick: entry.affiliation === 'outcast' ? undefined : entry.nick }, entry.affiliation === 'outcast' ? entry.reason : undefined));
  }
  return { result: out };
}

/** muc#admin set: role and affiliation changes, all checked first. */
async function setItems(ctx: Ctx, event: IqEvent, query: Element): Promise<IqAnswer> {
  const room = await ctx.muc.rooms.get(ctx.tenant, event.to.local);
  const actorBare = event.origin.jid.bare().toString();
  const actorAffiliation = room ? affiliationOf(room, actorBare) : 'none';
  if (!room || (room.locked && actorAffiliation !== 'owner')) throw new StanzaError('item-not-found', 'no such room');
  const mine = findSession(room, event.origin);
  const items = query.getChildren('item');
  if (!items.length) throw new StanzaError('bad-request', 'no item');
  const roleChanges: { target: Occupant; role: Role; reason?: string }[] = [];
  const affiliationChanges: AffiliationChange[] = [];
  for (const item of items) {
    const { role, affiliation, nick, jid } = item.attrs;
    const reason = item.getChildText('reason') ?? undefined;
    // §17.4 rule 4: one item changes a role or an affiliation, never both.
    if (role !== undefined && affiliation !== undefined) throw new StanzaError('bad-request', 'an item changes a role or an affiliation, not both');
    if (role !== undefined) {
      if (!isRole(role)) throw new StanzaError('bad-request', `unknown role ${role}`);
      if (!nick) throw new StanzaError('bad-request', 'a role change names the occupant by nick');
      const target = room.occupants[nick];
      if (!target) throw new StanzaError('item-not-found', `nobody is in the room as ${nick}`);
      const refusal = roleChangeError({ role: mine?.occupant.role ?? 'none', affiliation: actorAffiliation }, { role: target.role, affiliation: affiliationOf(room, target.bare) }, role);
      if (refusal) throw new StanzaError(refusal);
      roleChanges.push({ target, role, reason });
    } else if (affiliation !== undefined) {
      if (!isAffiliation(affiliation)) throw new StanzaError('bad-request', `unknown affiliation ${affiliation}`);
      if (!jid) throw new StanzaError('bad-request', 'an affiliation change names the user by jid');
      let bare: string;
      try {
        // §10.3: "When processing a request that identifies a user by its full JID, a service SHOULD use the bare JID".
        bare = parseJID(jid).bare().toString();
      } catch (err) {
        if (err instanceof JIDError) throw new StanzaError('jid-malformed', `${jid} is not a JID`);
        throw err;
      }
      const otherOwners = Object.entries(room.affiliations).filter(([b, a]) => a.affiliation === 'owner' && b !== actorBare).length;
      const refusal = affiliationChangeError(actorAffiliation, affiliationOf(room, bare), affiliation, { self: bare === actorBare, otherOwners });
      if (refusal) throw new StanzaError(refusal);
      affiliationChanges.push({ bare, affiliation, nick: item.attrs.nick, reason });
    } else throw new StanzaError('bad-request', 'an item needs a role or an affiliation');
  }
  // §10.6: the changes as a whole must leave the room an owner.
  const owners = new Set(Object.entries(room.affiliations).filter(([, a]) => a.affiliation === 'owner').map(([b]) => b));
  for (const c of affiliationChanges) c.affiliation === 'owner' ? owners.add(c.bare) : owners.delete(c.bare);
  if (!owners.size) throw new StanzaError('conflict', 'a room needs at least one owner');

  const actor = mine?.occupant.nick;
  const later: After[] = [];
  if (affiliationChanges.length) later.push(await setAffiliations(ctx, room, affiliationChanges, { actor }));
  for (const c of roleChanges) later.push(await setRole(ctx, room, c.target, c.role, { actor, reason: c.reason }));
  return { result: true, after: runAll(later) };
}

export function onAdminIq(ctx: Ctx, event: IqEvent, query: Element): Promise<IqAnswer> {
  return event.stanza.attrs.type === 'get' ? getList(ctx, event, query) : setItems(ctx, event, query);
}
