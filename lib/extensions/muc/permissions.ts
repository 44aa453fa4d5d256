// XEP-0045 §5: roles, affiliations and what each may do, as small pure functions over the tables
// of §5.1.1 (privileges of roles), §5.1.2 (initial role from affiliation), §5.1.3 (changing roles),
// §5.2.1 (privileges of affiliations) and §5.2.2 (changing affiliations). Each "…Error" function
// returns the stanza error condition that refuses the action, or undefined when it is allowed.
import type { Affiliation, AllowPm, Role, RoomConfig, Whois } from './store.ts';

const AFFILIATION_RANK: Record<Affiliation, number> = { outcast: -1, none: 0, member: 1, admin: 2, owner: 3 };
const ROLE_RANK: Record<Role, number> = { none: 0, visitor: 1, participant: 2, moderator: 3 };

export const affiliationRank = (a: Affiliation): number => AFFILIATION_RANK[a];
export const roleRank = (r: Role): number => ROLE_RANK[r];
export const isAffiliation = (v: unknown): v is Affiliation => typeof v === 'string' && v in AFFILIATION_RANK;
export const isRole = (v: unknown): v is Role => typeof v === 'string' && v in ROLE_RANK;

export type Refusal = 'forbidden' | 'not-allowed' | 'conflict' | 'registration-required';

/**
 * §5.1.2, "Initial Role Based on Affiliation". Undefined: entry is not permitted (outcasts; non-members
 * of a members-only room).
 */
export function defaultRole(affiliation: Affiliation, config: Pick<RoomConfig, 'moderated' | 'membersOnly'>): Role | undefined {
  switch (affiliation) {
    case 'owner':
    case 'admin':
      return 'moderator';
    case 'member':
      return 'participant';
    case 'none':
      if (config.membersOnly) return undefined;
      return config.moderated ? 'visitor' : 'participant';
    default:
      return undefined;
  }
}

/** §5.2.1: who may enter. */
export function entryError(affiliation: Affiliation, config: Pick<RoomConfig, 'membersOnly'>): 'forbidden' | 'registration-required' | undefined {
  if (affiliation === 'outcast') return 'forbidden'; // §7.2.8
  if (config.membersOnly && affiliationRank(affiliation) < AFFILIATION_RANK.member) return 'registration-required'; // §7.2.7
  return undefined;
}

/** §5.1.1 "Send Messages to All": visitors have no voice. */
export const maySendGroupchat = (role: Role): boolean => roleRank(role) >= ROLE_RANK.participant;

/** §5.1.1 "Modify Subject" with muc#roomconfig_changesubject (§8.1). */
export const mayChangeSubject = (role: Role, config: Pick<RoomConfig, 'changeSubject'>): boolean =>
  role === 'moderator' || (config.changeSubject && role === 'participant');

/** §5.1.1 "Send Private Messages", as muc#roomconfig_allowpm restricts it. */
export function maySendPrivate(role: Role, allowPm: AllowPm): boolean {
  switch (allowPm) {
    case 'anyone':
      return roleRank(role) >= ROLE_RANK.visitor;
    case 'participants':
      return roleRank(role) >= ROLE_RANK.participant;
    case 'moderators':
      return role === 'moderator';
    default:
      return false;
  }
}

/**
 * §7.8.2: in a members-only room only admins and owners invite, unless muc#roomconfig_allowinvites
 * lets members do it too (and the invitee then becomes a member); in an open room any occupant may.
 */
export function inviteError(affiliation: Affiliation, config: Pick<RoomConfig, 'membersOnly' | 'allowInvites'>): 'forbidden' | undefined {
  if (!config.membersOnly) return undefined;
  if (affiliationRank(affiliation) >= AFFILIATION_RANK.admin) return undefined;
  if (config.allowInvites && affiliation === 'member') return undefined;
  return 'forbidden';
}

/** §7.2.3 / §7.2.4: moderators always see real JIDs; everyone does in a non-anonymous room. */
export const maySeeRealJids = (role: Role, whois: Whois): boolean => whois === 'anyone' || role === 'moderator';

/**
 * §8 and §9 role changes by `actor` (who must be a moderator in the room) of `target` to `role`:
 * kick (none), voice (participant/visitor), moderator status.
 */
export function roleChangeError(actor: { role: Role; affiliation: Affiliation }, target: { role: Role; affiliation: Affiliation }, role: Role): Refusal | undefined {
  // §8: "any of the following administrative requests MUST be denied if the … from … does not match … one of the moderators"
  if (actor.role !== 'moderator') return 'forbidden';
  const actorRank = affiliationRank(actor.affiliation);
  const targetRank = affiliationRank(target.affiliation);
  const adminOrOwner = actorRank >= AFFILIATION_RANK.admin;
  if (role === 'none') {
    // §8.2: "A user cannot be kicked by a moderator with a lower affiliation."
    if (targetRank > actorRank) return 'not-allowed';
    // §5.1.3: a moderator leaves by "be kicked by an admin or owner".
    if (target.role === 'moderator' && !adminOrOwner) return 'not-allowed';
    return undefined;
  }
  if (role === 'moderator' || target.role === 'moderator') {
    // §9.6 / §9.7: only admins and owners grant or revoke moderator status, never an admin's or owner's.
    if (!adminOrOwner) return 'not-allowed';
    if (role !== 'moderator' && targetRank >= AFFILIATION_RANK.admin) return 'not-allowed';
    return undefined;
  }
  // §8.4: "A moderator MUST NOT be able to revoke voice from a user whose affiliation is at or above the
  // moderator's level. In addition, a service MUST NOT allow the voice privileges of an admin or owner
  // to be removed by anyone."
  if (role === 'visitor' && (targetRank >= AFFILIATION_RANK.admin || targetRank >= actorRank)) return 'not-allowed';
  return undefined;
}

/**
 * §9 and §10 affiliation changes by `actor` of the user whose affiliation is `current`, to `next`.
 * `self`: the actor changes its own; `otherOwners`: owners besides the actor.
 */
export function affiliationChangeError(
  actor: Affiliation,
  current: Affiliation,
  next: Affiliation,
  opts: { self: boolean; otherOwners: number },
): Refusal | undefined {
  const actorRank = affiliationRank(actor);
  // §9: admin use cases are denied with forbidden to anyone below admin.
  if (actorRank < AFFILIATION_RANK.admin) return 'forbidden';
  if (actor === 'admin') {
    // §10.5 / §10.8: only owners edit the owner and admin lists.
    if (next === 'owner' || next === 'admin') return 'forbidden';
    // §9.1 / §5.2.2: an admin cannot ban or demote an owner or another admin.
    if (current === 'owner' || current === 'admin') return 'not-allowed';
  }
  // §9.1: "If an admin or owner attempts to ban himself, the service MUST deny the request and return a conflict error."
  if (opts.self && next === 'outcast') return 'conflict';
  // §10.6: an owner cannot give up ownership if nobody else owns the room.
  if (opts.self && current === 'owner' && next !== 'owner' && opts.otherOwners === 0) return 'conflict';
  return undefined;
}

/** The role an occupant has after its affiliation changed (§5.1.3 note, §10.7); undefined: it must leave. */
export function roleAfterAffiliationChange(role: Role, before: Affiliation, after: Affiliation, config: Pick<RoomConfig, 'moderated' | 'membersOnly'>): Role | undefined {
  if (entryError(after, config)) return undefined;
  if (after === 'owner' || after === 'admin') return 'moderator';
  if (affiliationRank(before) >= AFFILIATION_RANK.admin) return defaultRole(after, config);
  if (after === 'member' && role === 'visitor') return 'participant';
  return role;
}

/** §8.5 / §9.8: role lists are for moderators. */
export const mayListRole = (role: Role): boolean => role === 'moderator';

/**
 * §9.5 / §9.8 / §10.5 / §10.8: affiliation lists are for admins and owners; in a non-anonymous room a
 * member may also read the member list (§9.5 note).
 */
export function mayListAffiliation(actor: Affiliation, list: Affiliation, whois: Whois): boolean {
  if (affiliationRank(actor) >= AFFILIATION_RANK.admin) return true;
  return list === 'member' && whois === 'anyone' && actor === 'member';
}
