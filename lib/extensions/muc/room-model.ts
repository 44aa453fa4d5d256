// Pure helpers over a room's state: who is who (affiliation by bare JID, the occupant and session a
// stanza comes from), and the extended presence every occupant presence carries (XEP-0045 §7.2.3,
// §17.2 rules 8–10: role and affiliation always, the real full JID only to those allowed to see it).
import { createHash } from 'node:crypto';
import { NS } from '../../xmpp/namespaces.ts';
import { type Element, clone, parseFrame, xml } from '../../xmpp/xml.ts';
import type { Affiliation, Occupant, OccupantSession, Role, RoomRecord } from './store.ts';
import { maySeeRealJids } from './permissions.ts';
import { withOccupantId } from './occupant-id.ts';

export function affiliationOf(room: RoomRecord, bare: string): Affiliation {
  return room.affiliations[bare]?.affiliation ?? 'none';
}

/** The occupant and session a connection is in the room as (matched by full JID and connection). */
export function findSession(room: RoomRecord, origin: { jid: { toString(): string }; connectionId: string }): { occupant: Occupant; session: OccupantSession } | undefined {
  const jid = origin.jid.toString();
  for (const occupant of Object.values(room.occupants)) {
    const session = occupant.sessions[jid];
    if (session?.connectionId === origin.connectionId) return { occupant, session };
  }
  return undefined;
}

/** Occupants of one user (a user may be in a room under several nicknames). */
export const occupantsOf = (room: RoomRecord, bare: string): Occupant[] => Object.values(room.occupants).filter((o) => o.bare === bare);

/** Whose presence stands for a multi-session occupant: the session that joined last. */
export function primarySession(occupant: Occupant): OccupantSession {
  return Object.values(occupant.sessions).reduce((a, b) => (b.joinedAt > a.joinedAt ? b : a));
}

/** The nickname reserved for another user (§7.2.9: members' registered nicks are theirs). */
export function reservedByOther(room: RoomRecord, nick: string, bare: string): boolean {
  return Object.entries(room.affiliations).some(([j, a]) => j !== bare && a.nick === nick && a.affiliation !== 'outcast');
}

/** One delivery target: a session of an occupant. */
export interface Target {
  connectionId: string;
  endpoint: string;
  jid: string;
  occupant: Occupant;
  /** The session's stream data as the room kept it (OutboundTarget.streamData). */
  streamData?: Record<string, unknown>;
}

export function targetsOf(room: RoomRecord, keep: (o: Occupant, s: OccupantSession) => boolean = () => true): Target[] {
  const out: Target[] = [];
  for (const occupant of Object.values(room.occupants)) {
    for (const s of Object.values(occupant.sessions)) if (keep(occupant, s)) out.push({ connectionId: s.connectionId, endpoint: s.endpoint, jid: s.jid, occupant, streamData: s.streamData });
  }
  return out;
}

/** Longest presence kept per session: a room item holds every occupant's (DynamoDB items are at most 400 KB). */
export const MAX_PRESENCE_CHARS = 1024;
const ESSENTIAL = new Set(['show', 'priority', 'status']);

/**
 * A session's presence as it is kept: the client's own payload (show, status, caps…) without MUC
 * elements (§17.2 rule 6: the service alone generates muc#user data) or occupant ids, and without addresses. A payload
 * too big for the room item is cut down to show, priority, status and entity capabilities (§17.4.1
 * lets a room block extended presence information).
 */
export function presencePayload(stanza: Element): string {
  const p = xml('presence', { xmlns: NS.CLIENT });
  for (const c of stanza.children) {
    if (typeof c === 'string') continue;
    if (c.name === 'x' && (c.attrs.xmlns === NS.MUC || c.attrs.xmlns === NS.MUC_USER)) continue;
    // XEP-0421 §4: only the room says who an occupant is.
    if (c.name === 'occupant-id' && c.attrs.xmlns === NS.OCCUPANT_ID) continue;
    p.cnode(clone(c));
  }
  const full = p.toString();
  if (full.length <= MAX_PRESENCE_CHARS) return full;
  const small = xml('presence', { xmlns: NS.CLIENT });
  for (const c of p.children) {
    if (typeof c === 'string') continue;
    if (ESSENTIAL.has(c.name) || (c.name === 'c' && c.attrs.xmlns === 'http://jabber.org/protocol/caps')) small.cnode(c.name === 'status' ? xml('status', {}, c.text().slice(0, 200)) : c);
  }
  return small.toString();
}

/** Who a room's stanza is from: the occupant JID, and the occupant id of its user (XEP-0421 §4). */
export interface Sender {
  jid: string;
  occupantId: string;
}

export interface ItemDetails {
  /** Override for the item's affiliation / role (e.g. role none when leaving). */
  affiliation?: Affiliation;
  role?: Role;
  /** New nickname (303) or the nick a role item refers to. */
  nick?: string;
  actor?: string;
  reason?: string;
}

/**
 * Presence from `occupant` at its occupant JID to one recipient session, with the muc#user item
 * (§7.2.3), its real JID where the recipient may see it (§7.2.4, §7.2.5), and status codes in
 * ascending order. `self` adds 110 (§7.2.3: "self-presence"). It carries the occupant id (XEP-0421 §4).
 */
export function occupantPresence(
  room: RoomRecord,
  from: Sender,
  occupant: Occupant,
  recipient: { jid: string; role: Role; self: boolean },
  opts: { type?: 'unavailable'; codes?: number[]; item?: ItemDetails; payload?: Element; id?: string; destroy?: Element } = {},
): Element {
  const base = opts.payload ? clone(opts.payload) : opts.type === 'unavailable' ? xml('presence', { xmlns: NS.CLIENT }) : parseFrame(primarySession(occupant).presence);
  base.attrs = { xmlns: NS.CLIENT, from: from.jid, to: recipient.jid, ...(opts.id ? { id: opts.id } : {}), ...(opts.type ? { type: opts.type } : {}) };
  const item = xml('item', { affiliation: opts.item?.affiliation ?? affiliationOf(room, occupant.bare), role: opts.item?.role ?? occupant.role });
  if (recipient.self || maySeeRealJids(recipient.role, room.config.whois)) {
    // The recipient's own session when it is self-presence, so each resource sees itself.
    item.attrs.jid = recipient.self && occupant.sessions[recipient.jid] ? recipient.jid : primarySession(occupant).jid;
  }
  if (opts.item?.nick) item.attrs.nick = opts.item.nick;
  if (opts.item?.actor) item.cnode(xml('actor', { nick: opts.item.actor }));
  if (opts.item?.reason) item.cnode(xml('reason', {}, opts.item.reason));
  const x = xml('x', { xmlns: NS.MUC_USER }, item);
  if (opts.destroy) x.cnode(opts.destroy);
  const codes = new Set(opts.codes ?? []);
  if (recipient.self) codes.add(110);
  for (const code of [...codes].sort((a, b) => a - b)) x.cnode(xml('status', { code: String(code) }));
  base.cnode(x);
  return withOccupantId(base, from.occupantId);
}

/** The key of the session-entry field that records a room a connection is in (see occupants.ts). */
export function sessionMarker(roomJid: string): string {
  return `muc_${createHash('sha256').update(roomJid).digest('hex').slice(0, 16)}`;
}

/** Is this message a subject change (§8.1: a subject and no body or thread)? */
export function isSubjectChange(stanza: Element): boolean {
  return !!stanza.getChild('subject') && !stanza.getChild('body') && !stanza.getChild('thread');
}
