// Messages through a room (XEP-0045 §7.4 groupchat, §7.5 private messages, §8.1 subject) and IQs to
// occupant JIDs (§17.4). A groupchat message costs one GetItem (the room with its occupants and their
// connections), one post per occupant connection, and one PutItem when it has a body (history).
import type { StanzaEvent } from '../../core/server.ts';
import { StanzaError } from '../../xmpp/errors.ts';
import { NS } from '../../xmpp/namespaces.ts';
import { newArchiveId, setStanzaId, stripStanzaIds } from '../../xmpp/stanza-id.ts';
import { type Element, clone, xml } from '../../xmpp/xml.ts';
import { type Occupant, type RoomRecord, roomArchives } from './store.ts';
import { stripOccupantIds, withOccupantId } from './occupant-id.ts';
import { fanOut } from './delivery.ts';
import { isHistoric, storeHistory } from './history.ts';
import { declineInvitation, sendInvitations } from './invitations.ts';
import { leave, newId } from './occupants.ts';
import { mayChangeSubject, maySendGroupchat, maySendPrivate } from './permissions.ts';
import { findSession, isSubjectChange, primarySession, targetsOf } from './room-model.ts';
import { type Ctx, occupantJid, roomJid } from './service.ts';
import { onVoiceForm } from './voice-requests.ts';

/** §17.4.2: errors that say a stanza the room sent could not be delivered: the occupant is a ghost. */
const DELIVERY_ERRORS = new Set(['gone', 'item-not-found', 'recipient-unavailable', 'redirect', 'remote-server-not-found', 'remote-server-timeout']);

function deliveryError(stanza: Element): boolean {
  const error = stanza.getChild('error');
  return !!error?.children.some((c) => typeof c !== 'string' && c.attrs.xmlns === NS.STANZA_ERRORS && DELIVERY_ERRORS.has(c.name));
}

/** An error bounced by an occupant's client or server for something the room sent it: it leaves (333). */
export async function onBounce(ctx: Ctx, event: StanzaEvent): Promise<void> {
  if (!deliveryError(event.stanza)) return;
  const room = await ctx.muc.rooms.get(ctx.tenant, event.to.local);
  const mine = room && findSession(room, event.origin);
  if (mine) await leave(ctx, room!.id, mine.occupant.nick, event.origin, { codes: [333], notifySelf: false, unmark: true });
}

/**
 * The same stanza from the occupant JID to every session of the room (§7.4: the client's id is kept),
 * with the sender's occupant id instead of any the client put in (XEP-0421 §4).
 */
async function reflect(ctx: Ctx, room: RoomRecord, sender: Occupant, stanza: Element): Promise<Element> {
  const base = withOccupantId(clone(stanza), ctx.occupantId(room.id, sender.bare));
  base.attrs.from = occupantJid(ctx, room.id, sender.nick);
  // §7.4: without a client id the service "MAY generate an 'id' and use it for all reflections".
  base.attrs.id ??= newId();
  await fanOut(ctx, room.id, targetsOf(room), (t) => {
    const m = clone(base);
    m.attrs.to = t.jid;
    return m;
  });
  return base;
}

/** A message to the room JID itself. */
export async function onRoomMessage(ctx: Ctx, event: StanzaEvent): Promise<void> {
  const { origin, stanza, to } = event;
  const type = stanza.attrs.type ?? 'normal';
  if (type === 'error') return onBounce(ctx, event);
  const room = await ctx.muc.rooms.get(ctx.tenant, to.local);
  const mine = room && findSession(room, origin);
  // §17.2 rule 3: a room that does not exist or is not yet unlocked.
  if (!room || (room.locked && !mine)) throw new StanzaError('item-not-found', 'no such room');
  const userX = stanza.getChild('x', NS.MUC_USER);
  if (type !== 'groupchat') {
    if (userX?.getChild('invite')) return sendInvitations(ctx, room, mine, origin, stanza, userX);
    if (userX?.getChild('decline')) return declineInvitation(ctx, room, origin, stanza, userX);
    if (stanza.getChild('x', NS.DATA_FORMS)) return onVoiceForm(ctx, room, mine, stanza);
    // §17.2 rule 1: messages to all occupants are of type groupchat.
    throw new StanzaError('bad-request', 'messages to the room are of type groupchat');
  }
  // §7.4: "If the sender is not an occupant of the room, the service SHOULD return a not-acceptable error".
  if (!mine) throw new StanzaError('not-acceptable', 'you are not in this room');
  const { occupant } = mine;
  if (isSubjectChange(stanza)) {
    // §8.1: moderators, and participants where muc#roomconfig_changesubject allows.
    if (!mayChangeSubject(occupant.role, room.config)) throw new StanzaError('forbidden', 'you may not change the subject of this room');
    const after = await ctx.muc.rooms.setSubject(ctx.tenant, room.id, { text: stanza.getChildText('subject') ?? '', nick: occupant.nick, bare: occupant.bare, at: Date.now() });
    if (after) await reflect(ctx, after, occupant, stanza);
    return;
  }
  // §7.4: visitors in a moderated room have no voice.
  if (!maySendGroupchat(occupant.role)) throw new StanzaError('forbidden', 'you have no voice in this room');
  // XEP-0359 §3: only the room gives stanza ids by its address; a kept message carries its archive
  // id (XEP-0313 §3.5) in every reflection, and history (the room archive) keeps it under that id.
  const address = roomJid(ctx, room.id);
  stripStanzaIds(stanza, address);
  const archiveId = isHistoric(stanza) ? newArchiveId(ctx.server.clock.now()) : undefined;
  if (archiveId && roomArchives(room.config)) setStanzaId(stanza, address, archiveId);
  const reflected = await reflect(ctx, room, occupant, stanza);
  if (archiveId) await storeHistory(ctx, room.id, reflected, archiveId);
}

/** §7.5: a private message to room@service/nick goes to every session of that occupant. */
export async function onOccupantMessage(ctx: Ctx, event: StanzaEvent): Promise<void> {
  const { origin, stanza, to } = event;
  const type = stanza.attrs.type ?? 'normal';
  const room = await ctx.muc.rooms.get(ctx.tenant, to.local);
  const mine = room && findSession(room, origin);
  if (type === 'error') {
    // An error reply to a private message goes back like one; a delivery error to oneself marks a ghost.
    const target = room?.occupants[to.resource];
    if (mine && target && target.nick !== mine.occupant.nick) await forward(ctx, room!, mine.occupant.nick, stanza, target.nick);
    else if (mine) await onBounce(ctx, event);
    return;
  }
  if (!room || (room.locked && !mine)) throw new StanzaError('item-not-found', 'no such room');
  if (!mine) throw new StanzaError('not-acceptable', 'you are not in this room');
  if (type === 'groupchat') throw new StanzaError('bad-request', 'a private message cannot be of type groupchat');
  const target = room.occupants[to.resource];
  if (!target) throw new StanzaError('item-not-found', `nobody is in the room as ${to.resource}`);
  if (!maySendPrivate(mine.occupant.role, room.config.allowPm)) throw new StanzaError('forbidden', 'private messages are not allowed for you in this room');
  // XEP-0421 §4: an occupant id the client put in is not the room's (a private message carries none).
  const m = stripOccupantIds(clone(stanza));
  // §7.5: "The service SHOULD add the <x/> element if the message does not contain it already."
  if (!m.getChild('x', NS.MUC_USER)) m.cnode(xml('x', { xmlns: NS.MUC_USER }));
  await forward(ctx, room, mine.occupant.nick, m, target.nick);
}

async function forward(ctx: Ctx, room: RoomRecord, fromNick: string, stanza: Element, toNick: string, only?: string): Promise<void> {
  const from = occupantJid(ctx, room.id, fromNick);
  const targets = targetsOf(room, (o, s) => o.nick === toNick && (!only || s.jid === only));
  await fanOut(ctx, room.id, targets, (t) => {
    const m = clone(stanza);
    m.attrs.from = from;
    m.attrs.to = t.jid;
    return m;
  });
}

/**
 * §17.4 rule 3: an IQ to an occupant JID goes to one session of that occupant (from the sender's
 * occupant JID, so no real JID is revealed); its reply, addressed back to the sender's occupant JID,
 * goes to the sender's sessions (the id is kept; a client ignores replies it did not ask for).
 */
export async function onOccupantIq(ctx: Ctx, event: StanzaEvent, room: RoomRecord | undefined): Promise<void> {
  const { origin, stanza, to } = event;
  const type = stanza.attrs.type;
  const mine = room && findSession(room, origin);
  if (type === 'result' || type === 'error') {
    if (mine && room!.occupants[to.resource]) await forward(ctx, room!, mine.occupant.nick, stanza, to.resource);
    return;
  }
  if (!room || (room.locked && !mine)) throw new StanzaError('item-not-found', 'no such room');
  // §6.6: a non-occupant asking an occupant JID gets bad-request.
  if (!mine) throw new StanzaError('bad-request', 'you are not in this room');
  const target = room.occupants[to.resource];
  if (!target) throw new StanzaError('item-not-found', `nobody is in the room as ${to.resource}`);
  await forward(ctx, room, mine.occupant.nick, stanza, target.nick, primarySession(target).jid);
}
