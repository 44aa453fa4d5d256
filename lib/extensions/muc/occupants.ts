// Occupants (XEP-0045 §7): entering a room (and creating it, §10.1.1), the presence broadcast with its
// status codes, presence changes, nickname changes (§7.6), exiting (§7.14), several resources under
// one nickname (§7.2.9), and leaving whenever a connection ends for any reason.
//
// A connection records the rooms it is in in its own session entry, as MUC's session data
// (`data.muc.muc_<hash>` = occupant JID, see sessionMarker): the session-ended event hands that entry over, so a connection that ends
// leaves its rooms at no extra read, and sessions that never joined a room cost nothing more to end.
import { randomBytes } from 'node:crypto';
import type { Session, StanzaEvent } from '../../core/server.ts';
import type { SessionEntry } from '../../store/sessions.ts';
import { StanzaError } from '../../xmpp/errors.ts';
import { type JID, parseJID, tryParseJID } from '../../xmpp/jid.ts';
import { NS } from '../../xmpp/namespaces.ts';
import { type Element, clone, parseFrame, xml } from '../../xmpp/xml.ts';
import type { Affiliation, Occupant, OccupantSession, RoomRecord } from './store.ts';
import { defaultRole, affiliationRank } from './permissions.ts';
import { fanOut, sendInOrder } from './delivery.ts';
import { historyFor, parseHistoryRequest } from './history.ts';
import { type ItemDetails, affiliationOf, findSession, occupantPresence, presencePayload, reservedByOther, sessionMarker, targetsOf } from './room-model.ts';
import { occupantLimitFor } from './room-types.ts';
import { type Ctx, type MucSessionData, defaultRoomConfig, occupantJid, roomEvent, roomJid, senderOf } from './service.ts';

const PRE_JOIN = 'muc-occupant-pre-join';

type Connection = { jid: JID | string; connectionId: string; endpoint?: string };

/** Records (value) or forgets (undefined) in the connection's session entry that it is in a room. */
async function mark(ctx: Ctx, c: Connection, room: string, value: string | undefined): Promise<boolean> {
  const jid = typeof c.jid === 'string' ? parseJID(c.jid) : c.jid;
  return ctx.muc.sessionData.set({ jid, connectionId: c.connectionId }, sessionMarker(room), value);
}

/** The rooms a session entry says its connection is in, as occupant JIDs. */
export function roomsOfEntry(sessionData: MucSessionData, entry: SessionEntry): JID[] {
  const out: JID[] = [];
  for (const v of Object.values(sessionData.of(entry))) {
    if (typeof v !== 'string') continue;
    const jid = tryParseJID(v);
    if (jid?.local && jid.resource) out.push(jid);
  }
  return out;
}

export const newId = () => randomBytes(9).toString('base64url');

/** §7.2.15: the subject, after the history, always (an empty <subject/> when there is none). */
export function subjectMessage(ctx: Ctx, room: RoomRecord, to: string): Element {
  const from = room.subject?.nick ? occupantJid(ctx, room.id, room.subject.nick) : roomJid(ctx, room.id);
  const m = xml('message', { xmlns: NS.CLIENT, type: 'groupchat', from, to, id: newId() }, xml('subject', {}, room.subject?.text ?? ''));
  if (room.subject) m.cnode(xml('delay', { xmlns: NS.DELAY, from: roomJid(ctx, room.id), stamp: new Date(room.subject.at).toISOString() }));
  // XEP-0421 §4: a subject an occupant set names that occupant.
  if (room.subject?.nick && room.subject.bare) m.cnode(xml('occupant-id', { xmlns: NS.OCCUPANT_ID, id: ctx.occupantId(room.id, room.subject.bare) }));
  return m;
}

/** Presence of `occupant` to every session in the room; its own sessions get it as self-presence (110). */
export async function broadcastOccupant(ctx: Ctx, room: RoomRecord, occupant: Occupant, opts: { item?: ItemDetails; codes?: number[]; selfCodes?: number[]; except?: string } = {}): Promise<void> {
  const from = senderOf(ctx, room.id, occupant);
  const targets = targetsOf(room, (_o, s) => s.connectionId !== opts.except);
  await fanOut(ctx, room.id, targets, (t) => {
    const self = t.occupant.nick === occupant.nick;
    return occupantPresence(room, from, occupant, { jid: t.jid, role: t.occupant.role, self }, { item: opts.item, codes: self ? [...(opts.codes ?? []), ...(opts.selfCodes ?? [])] : opts.codes });
  });
}

// ---- entering -----------------------------------------------------------------------------------

async function mayCreate(ctx: Ctx, bare: string): Promise<void> {
  // §10.1.1: "If access is restricted and a user attempts to create a room, the service MUST return a not-allowed error".
  if (ctx.opts.roomCreation === 'admins') throw new StanzaError('not-allowed', 'rooms are created by the administrators of this service');
  if (ctx.opts.roomsPerUser !== undefined && (await ctx.muc.rooms.countCreated(bare, ctx.tenant)) >= ctx.opts.roomsPerUser) {
    throw new StanzaError('not-allowed', `you may create at most ${ctx.opts.roomsPerUser} rooms`);
  }
}

export function newRoom(ctx: Ctx, id: string, now: number, owners: string[], creator?: string): RoomRecord {
  return {
    domain: ctx.tenant,
    id,
    createdAt: now,
    ...(creator ? { creator } : {}),
    locked: true,
    config: defaultRoomConfig(ctx.opts),
    affiliations: Object.fromEntries(owners.map((o) => [o, { affiliation: 'owner' as const }])),
    occupants: {},
  };
}

/** §7.2 entering (and §10.1.1 creating) a room. Retries when the room changed between read and write. */
async function enter(ctx: Ctx, origin: Session, stanza: Element, id: string, requested: string, mucX: Element | undefined, initial: RoomRecord | undefined): Promise<void> {
  const bare = origin.jid.bare().toString();
  const jid = origin.jid.toString();
  let room = initial;
  for (let attempt = 0; ; attempt++) {
    const now = Date.now();
    let created = false;
    if (!room) {
      await mayCreate(ctx, bare);
      room = newRoom(ctx, id, now, [bare], bare);
      created = true;
    } else if (room.locked && affiliationOf(room, bare) !== 'owner') {
      // §7.2.11: a locked room does not exist yet for anyone but its owners.
      throw new StanzaError('item-not-found', 'the room is locked until its owner configures it');
    }
    const affiliation = affiliationOf(room, bare);
    let nick = requested;
    const reserved = room.affiliations[bare]?.nick;
    // §9.3 / §7.2.3: a service that locks nicknames down rewrites the nick and says so with 210.
    const rewritten = ctx.opts.enforceReservedNicks && !!reserved && reserved !== requested;
    if (rewritten) nick = reserved!;
    await ctx.muc.preJoin.fireAll(PRE_JOIN, { ctx, room, origin, bare, nick, affiliation, mucX, created });

    const session: OccupantSession = { jid, connectionId: origin.connectionId, endpoint: origin.endpoint, expiresAt: origin.expiresAt, joinedAt: now, presence: presencePayload(stanza), streamData: origin.streamData };
    let after: RoomRecord | undefined;
    if (created) {
      const record: RoomRecord = { ...room, occupants: { [nick]: { nick, bare, role: 'moderator', sessions: { [jid]: session } } } };
      if (await ctx.muc.rooms.create(record)) {
        after = record;
        await roomEvent(ctx, 'muc/room-created', id, { jid });
        if (ctx.opts.roomsPerUser !== undefined) await ctx.muc.rooms.addCreated(bare, ctx.tenant, id);
      }
    } else if (room.occupants[nick]) {
      after = await ctx.muc.rooms.addSession(ctx.tenant, id, nick, bare, session);
    } else {
      const role = defaultRole(affiliation, room.config) ?? 'participant';
      const privileged = affiliationRank(affiliation) >= affiliationRank('admin');
      after = await ctx.muc.rooms.addOccupant(ctx.tenant, id, { nick, bare, role, sessions: { [jid]: session } }, occupantLimitFor(room, ctx.opts.maxOccupants, privileged));
    }
    if (after) return entered(ctx, after, nick, origin, stanza, { created, rewritten, mucX, newOccupant: created || !room.occupants[nick] });
    if (attempt >= 2) throw new StanzaError('conflict', 'the room changed too often; try again', 'wait');
    // Someone else created the room, took the nick or filled the room meanwhile: look again.
    room = await ctx.muc.rooms.get(ctx.tenant, id);
  }
}

/** The stanzas a (re)joining session gets, in the order of §7.1: others' presence, self-presence, history, subject. */
async function joinSequence(ctx: Ctx, room: RoomRecord, nick: string, origin: Session, stanza: Element, codes: number[], mucX: Element | undefined): Promise<Element[]> {
  const jid = origin.jid.toString();
  const me = room.occupants[nick];
  const out: Element[] = [];
  for (const o of Object.values(room.occupants)) {
    if (o.nick !== nick) out.push(occupantPresence(room, senderOf(ctx, room.id, o), o, { jid, role: me.role, self: false }));
  }
  const own = [...codes];
  if (room.config.whois === 'anyone') own.push(100); // §7.2.4
  if (room.config.logging) own.push(170); // §7.2.12
  const self = occupantPresence(room, senderOf(ctx, room.id, me), me, { jid, role: me.role, self: true }, { codes: own, id: stanza.attrs.id, payload: parseFrame(me.sessions[jid].presence) });
  out.push(self);
  if (!codes.includes(201)) out.push(...(await historyFor(ctx, room, parseHistoryRequest(mucX), jid)));
  out.push(subjectMessage(ctx, room, jid));
  return out;
}

async function entered(ctx: Ctx, room: RoomRecord, nick: string, origin: Session, stanza: Element, how: { created: boolean; rewritten: boolean; mucX?: Element; newOccupant: boolean }): Promise<void> {
  const occupant = room.occupants[nick];
  if (!(await mark(ctx, origin, roomJid(ctx, room.id), occupantJid(ctx, room.id, nick)))) {
    // The connection ended while it was entering: take it out again.
    const res = await ctx.muc.rooms.removeSession(ctx.tenant, room.id, nick, origin.jid.toString(), origin.connectionId);
    if (res) await afterLeave(ctx, res, nick, origin.jid.toString(), { notifySelf: false });
    return;
  }
  if (how.newOccupant) await roomEvent(ctx, 'muc/occupant-joined', room.id, { jid: origin.jid.toString(), nick });
  const codes = [...(how.created ? [201] : []), ...(how.rewritten ? [210] : [])];
  const sequence = await joinSequence(ctx, room, nick, origin, stanza, codes, how.mucX);
  // §7.2.3: the new occupant's presence to everyone else (its other sessions as self-presence).
  await Promise.all([sendInOrder(ctx.server, origin, sequence), broadcastOccupant(ctx, room, occupant, { except: origin.connectionId })]);
}

// ---- presence to an occupant JID --------------------------------------------------------------------

/** Presence a user sends to room@service/nick (XEP-0045 §7.2, §7.6, §7.7, §7.14, §17.3). */
export async function onOccupantPresence(ctx: Ctx, event: StanzaEvent): Promise<void> {
  const { origin, stanza, to } = event;
  const type = stanza.attrs.type as string | undefined;
  const id = to.local;
  const nick = to.resource;
  if (type === undefined) {
    // §17.1: room nicknames are never empty or invisible.
    if (!nick.trim()) throw new StanzaError('jid-malformed', 'a room nickname must not be empty');
    const mucX = stanza.getChild('x', NS.MUC);
    if (!mucX) return presenceChange(ctx, origin, stanza, id, nick);
    const room = await ctx.muc.rooms.get(ctx.tenant, id);
    const mine = room && findSession(room, origin);
    if (mine && mine.occupant.nick === nick) return resync(ctx, room!, mine.occupant, origin, stanza, mucX);
    if (mine) return changeNick(ctx, room!, mine.occupant, origin, stanza, nick);
    return enter(ctx, origin, stanza, id, nick, mucX, room);
  }
  if (type === 'unavailable') {
    // §7.14; §17.3 rule 5: from someone who is not in the room, silently ignored.
    await leave(ctx, id, nick, origin, { status: stanza, notifySelf: true, unmark: true });
    return;
  }
  // Probes, subscriptions and errors are not occupant actions (§17.3 rules 1, 2, 4).
}

/** §7.7 a presence change (one write: the update returns the room to broadcast to), else §7.6 / §7.2.22. */
async function presenceChange(ctx: Ctx, origin: Session, stanza: Element, id: string, nick: string): Promise<void> {
  const after = await ctx.muc.rooms.setPresence(ctx.tenant, id, nick, origin.jid.toString(), origin.connectionId, presencePayload(stanza));
  if (after) return broadcastOccupant(ctx, after, after.occupants[nick]);
  const room = await ctx.muc.rooms.get(ctx.tenant, id);
  const mine = room && findSession(room, origin);
  if (mine) return changeNick(ctx, room!, mine.occupant, origin, stanza, nick);
  // §7.2.22: presence without <x/> from someone not in the room (groupchat 1.0 or a client out of
  // sync) is answered with a kick (110, 307, 333) rather than taken as a join.
  const kick = xml(
    'presence',
    { xmlns: NS.CLIENT, from: occupantJid(ctx, id, nick), to: origin.jid.toString(), type: 'unavailable' },
    xml(
      'x',
      { xmlns: NS.MUC_USER },
      xml('item', { affiliation: 'none', role: 'none' }, xml('reason', {}, 'You are not in the room.')),
      ...[110, 307, 333].map((code) => xml('status', { code: String(code) })),
    ),
    // XEP-0421 §4: the sender's own occupant id, as if it were in the room.
    xml('occupant-id', { xmlns: NS.OCCUPANT_ID, id: ctx.occupantId(id, origin.jid.bare().toString()) }),
  );
  await ctx.server.send(origin, kick);
}

/** §17.3 rule 3: a join from a session already in the room is a request to resynchronise. */
async function resync(ctx: Ctx, room: RoomRecord, occupant: Occupant, origin: Session, stanza: Element, mucX: Element): Promise<void> {
  const payload = presencePayload(stanza);
  const changed = occupant.sessions[origin.jid.toString()].presence !== payload;
  const after = changed ? await ctx.muc.rooms.setPresence(ctx.tenant, room.id, occupant.nick, origin.jid.toString(), origin.connectionId, payload) : room;
  if (!after) return;
  await sendInOrder(ctx.server, origin, await joinSequence(ctx, after, occupant.nick, origin, stanza, [], mucX));
  if (changed) await broadcastOccupant(ctx, after, after.occupants[occupant.nick], { except: origin.connectionId });
}

/** §7.6: unavailable from the old nick with 303 and the new nick, then available from the new one. */
async function changeNick(ctx: Ctx, room: RoomRecord, occupant: Occupant, origin: Session, stanza: Element, nick: string): Promise<void> {
  const bare = occupant.bare;
  const reserved = room.affiliations[bare]?.nick;
  if (ctx.opts.enforceReservedNicks && reserved && nick !== reserved) throw new StanzaError('not-acceptable', 'your nickname in this room is locked to your reserved one', 'cancel');
  if (room.occupants[nick] || reservedByOther(room, nick, bare)) throw new StanzaError('conflict', 'that nickname is in use or reserved');
  const jid = origin.jid.toString();
  const moved: Occupant = { ...occupant, nick, sessions: { ...occupant.sessions, [jid]: { ...occupant.sessions[jid], presence: presencePayload(stanza) } } };
  const after = await ctx.muc.rooms.renameOccupant(ctx.tenant, room.id, occupant.nick, moved);
  if (!after) throw new StanzaError('conflict', 'that nickname is in use or reserved');
  const now = after.occupants[nick];
  for (const s of Object.values(now.sessions)) await mark(ctx, s, roomJid(ctx, room.id), occupantJid(ctx, room.id, nick));
  const targets = targetsOf(after);
  // The same occupant id under the old nick and the new one (XEP-0421 §4: it follows the user, not the nick).
  const old = senderOf(ctx, room.id, occupant);
  await fanOut(ctx, room.id, targets, (t) =>
    occupantPresence(after, old, now, { jid: t.jid, role: t.occupant.role, self: t.occupant.nick === nick }, { type: 'unavailable', codes: [303], item: { nick } }),
  );
  await broadcastOccupant(ctx, after, now);
}

// ---- leaving --------------------------------------------------------------------------------------

interface LeaveOptions {
  /** The unavailable presence the user sent (its <status/> is passed on, §7.14). */
  status?: Element;
  codes?: number[];
  /** Send the leaving session its own unavailable (110); not when its connection is gone. */
  notifySelf: boolean;
  /** Forget the room in the session entry (not needed when the session itself ended). */
  unmark?: boolean;
}

/** One session leaves; false if it was not in the room under that nick (nothing is sent then). */
export async function leave(ctx: Ctx, id: string, nick: string, c: Connection, opts: LeaveOptions): Promise<boolean> {
  const jid = c.jid.toString();
  const res = await ctx.muc.rooms.removeSession(ctx.tenant, id, nick, jid, c.connectionId);
  if (!res) return false;
  if (opts.unmark) await mark(ctx, c, roomJid(ctx, id), undefined);
  await afterLeave(ctx, res, nick, jid, opts);
  return true;
}

async function afterLeave(ctx: Ctx, res: { before: RoomRecord; after: RoomRecord; occupantLeft: boolean }, nick: string, jid: string, opts: LeaveOptions): Promise<void> {
  const { before, after } = res;
  const occupant = before.occupants[nick];
  const session = occupant.sessions[jid];
  const from = senderOf(ctx, after.id, occupant);
  const payload = xml('presence', { xmlns: NS.CLIENT });
  for (const c of opts.status?.children ?? []) if (typeof c !== 'string' && c.name === 'status') payload.cnode(clone(c));
  const unavailable = { type: 'unavailable' as const, item: { role: 'none' as const }, codes: opts.codes, payload };
  if (opts.notifySelf && session) {
    // §10.1.3: the owner of a room never configured leaves it, so it is destroyed: say so.
    const destroyed = res.occupantLeft && after.locked && !Object.keys(after.occupants).length;
    await ctx.server.send(session, occupantPresence(before, from, occupant, { jid, role: occupant.role, self: true }, { ...unavailable, ...(destroyed ? { destroy: xml('destroy', {}) } : {}) }));
  }
  if (res.occupantLeft) {
    await roomEvent(ctx, 'muc/occupant-left', after.id, { jid, nick });
    await fanOut(ctx, after.id, targetsOf(after), (t) => occupantPresence(after, from, occupant, { jid: t.jid, role: t.occupant.role, self: false }, unavailable));
    await removeIfDeserted(ctx, after);
  } else {
    // Another session of the same occupant stays: the others see its presence now.
    await broadcastOccupant(ctx, after, after.occupants[nick]);
  }
}

/** §7.14 note / §10.1.2: a temporary room (or one never configured) goes when its last occupant does. */
export async function removeIfDeserted(ctx: Ctx, room: RoomRecord): Promise<void> {
  if (Object.keys(room.occupants).length || (room.config.persistent && !room.locked)) return;
  if (await ctx.muc.rooms.removeIfEmpty(ctx.tenant, room.id, room.creator)) await roomEvent(ctx, 'muc/room-destroyed', room.id, { reason: 'last occupant left' });
}

/**
 * Takes an occupant (all its sessions) out of the room by force: kick (307), ban (301), affiliation
 * change (321), members-only (322). The removed sessions are told at once (with 110); the rest of the
 * room by the returned function, so an IQ result can go out in between (§8.2, §9.1).
 */
export async function expel(
  ctx: Ctx,
  roomId: string,
  occupant: Occupant,
  opts: { codes: number[]; affiliation?: Affiliation; actor?: string; reason?: string },
): Promise<{ after: RoomRecord; notifyOthers: () => Promise<void> } | undefined> {
  const res = await ctx.muc.rooms.removeOccupant(ctx.tenant, roomId, occupant.nick, occupant.bare);
  if (!res) return undefined;
  const gone = res.before.occupants[occupant.nick] ?? occupant;
  // One event per occupant, as for a join (its first session's JID).
  await roomEvent(ctx, 'muc/occupant-left', roomId, { jid: Object.keys(gone.sessions)[0], nick: gone.nick, ...(opts.reason ? { reason: opts.reason } : {}) });
  const from = senderOf(ctx, roomId, occupant);
  const item: ItemDetails = { affiliation: opts.affiliation, role: 'none', actor: opts.actor, reason: opts.reason };
  const own = targetsOf({ ...res.before, occupants: { [gone.nick]: gone } });
  await fanOut(ctx, roomId, own, (t) => occupantPresence(res.after, from, gone, { jid: t.jid, role: gone.role, self: true }, { type: 'unavailable', codes: opts.codes, item }));
  return {
    after: res.after,
    notifyOthers: async () => {
      await fanOut(ctx, roomId, targetsOf(res.after), (t) =>
        occupantPresence(res.after, from, gone, { jid: t.jid, role: t.occupant.role, self: false }, { type: 'unavailable', codes: opts.codes, item: { ...item, actor: undefined } }),
      );
      await removeIfDeserted(ctx, res.after);
    },
  };
}

/** A connection that ended (close, $disconnect, 410, expiry, replaced): it leaves every room it was in. */
export async function leaveAll(ctx: (service: string) => Promise<Ctx | undefined>, c: Connection, rooms: JID[], opts: Omit<LeaveOptions, 'unmark'> & { unmark?: boolean }): Promise<void> {
  for (const occupant of rooms) {
    const context = await ctx(occupant.domain);
    if (context) await leave(context, occupant.local, occupant.resource, c, opts);
  }
}

/** 410 reasons are technical removals (§11.1: 333); a closed stream is the user's own unavailable. */
export const codesForEnd = (reason: string): number[] => (reason === 'gone' || reason === 'expired' ? [333] : []);
