// Room types (XEP-0045 §4.2) as small features on the muc-occupant-pre-join event, each refusing an
// entry with the error §7.2.20 gives it, and the muc_* features each type shows in disco#info (§6.4).
// Order of the checks: banned, members-only, password, nickname, occupant limit.
import { StanzaError } from '../../xmpp/errors.ts';
import { NS } from '../../xmpp/namespaces.ts';
import { type RoomRecord, roomArchives } from './store.ts';
import { affiliationRank, entryError } from './permissions.ts';
import { reservedByOther } from './room-model.ts';
import type { MucService, PreJoinEvent } from './service.ts';
import { MAX_ROOM_OCCUPANTS } from './service.ts';

const EVENT = 'muc-occupant-pre-join';

/** §7.2.8 banned users (forbidden) and §7.2.7 members-only rooms (registration-required). */
function membership({ room, affiliation }: PreJoinEvent): void {
  const refusal = entryError(affiliation, room.config);
  if (refusal) throw new StanzaError(refusal);
}

/** §7.2.6 password-protected rooms: not-authorized without the right password (owners and admins need none). */
function password({ room, affiliation, mucX }: PreJoinEvent): void {
  if (!room.config.passwordProtected || affiliationRank(affiliation) >= affiliationRank('admin')) return;
  if (mucX?.getChildText('password') !== room.config.password) throw new StanzaError('not-authorized', 'this room needs a password');
}

/** §7.2.9: a nickname held by another user, or reserved by another member, is a conflict. */
function nickname({ room, nick, bare }: PreJoinEvent): void {
  const holder = room.occupants[nick];
  if ((holder && holder.bare !== bare) || reservedByOther(room, nick, bare)) throw new StanzaError('conflict', 'that nickname is in use or reserved');
}

/** §7.2.10: a full room is service-unavailable (wait), except for admins and owners, within reason. */
function occupantLimit({ ctx, room, nick, bare, affiliation }: PreJoinEvent): void {
  if (room.occupants[nick]?.bare === bare) return; // another session of an occupant already counted
  const privileged = affiliationRank(affiliation) >= affiliationRank('admin');
  if (Object.keys(room.occupants).length >= occupantLimitFor(room, ctx.opts.maxOccupants, privileged)) throw new StanzaError('service-unavailable', 'the room is full', 'wait');
}

export function installRoomTypes(muc: MucService): void {
  muc.preJoin.on(EVENT, membership, 40);
  muc.preJoin.on(EVENT, password, 30);
  muc.preJoin.on(EVENT, nickname, 20);
  muc.preJoin.on(EVENT, occupantLimit, 10);
}

/** The most occupants a room may hold when this user joins: the pre-join check and the conditional write use it. */
export function occupantLimitFor(room: RoomRecord, maxOccupants: number, privileged: boolean): number {
  const max = room.config.maxUsers || maxOccupants;
  // Owners and admins get in above a full room, but never past the cap that keeps a room in one item.
  return privileged ? Math.min(Math.max(max, maxOccupants) + 10, MAX_ROOM_OCCUPANTS) : max;
}

/** §6.4 / §15.4: what a room says about itself in disco#info. */
export function roomFeatures(room: RoomRecord): string[] {
  const c = room.config;
  return [
    NS.MUC,
    NS.MUC_STABLE_ID,
    NS.MUC_SELF_PING,
    NS.OCCUPANT_ID, // XEP-0421 §3
    // XEP-0313 §3.3.2: the room's history is its archive, queried at the room JID.
    ...(roomArchives(c) ? [NS.MAM] : []),
    c.public ? 'muc_public' : 'muc_hidden',
    c.persistent ? 'muc_persistent' : 'muc_temporary',
    c.membersOnly ? 'muc_membersonly' : 'muc_open',
    c.moderated ? 'muc_moderated' : 'muc_unmoderated',
    c.whois === 'anyone' ? 'muc_nonanonymous' : 'muc_semianonymous',
    c.passwordProtected ? 'muc_passwordprotected' : 'muc_unsecured',
  ];
}
