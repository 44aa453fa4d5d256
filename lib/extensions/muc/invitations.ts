// Mediated invitations (XEP-0045 §7.8.2): an occupant asks the room to invite someone; the room sends
// the invitation from itself (with the password of a protected room) and passes declines back. Direct
// invitations (XEP-0249) go from client to client as ordinary messages and need nothing here.
import type { Session } from '../../core/server.ts';
import { StanzaError } from '../../xmpp/errors.ts';
import { tryParseJID } from '../../xmpp/jid.ts';
import { NS } from '../../xmpp/namespaces.ts';
import { type Element, xml } from '../../xmpp/xml.ts';
import type { Occupant, OccupantSession, RoomRecord } from './store.ts';
import { deliverToUser } from './delivery.ts';
import { newId } from './occupants.ts';
import { inviteError } from './permissions.ts';
import { affiliationOf } from './room-model.ts';
import { type Ctx, roomJid } from './service.ts';

/** The invitation the room sends (§7.8.2 "Room Sends Invitation to Invitee on Behalf of Invitor"). */
export function invitation(ctx: Ctx, room: RoomRecord, to: string, from: string, opts: { id?: string; reason?: string } = {}): Element {
  const x = xml('x', { xmlns: NS.MUC_USER }, xml('invite', { from }, ...(opts.reason ? [xml('reason', {}, opts.reason)] : [])));
  if (room.config.passwordProtected) x.cnode(xml('password', {}, room.config.password));
  return xml('message', { xmlns: NS.CLIENT, from: roomJid(ctx, room.id), to, id: opts.id ?? newId() }, x);
}

export async function sendInvitations(ctx: Ctx, room: RoomRecord, mine: { occupant: Occupant; session: OccupantSession } | undefined, origin: Session, stanza: Element, userX: Element): Promise<void> {
  if (!mine) throw new StanzaError('not-acceptable', 'only occupants may invite others to this room');
  const inviter = origin.jid.bare().toString();
  // §9.5: in a members-only room, only admins (or members, where allowed) invite.
  if (inviteError(affiliationOf(room, inviter), room.config)) throw new StanzaError('forbidden', 'you may not invite others to this room');
  for (const invite of userX.getChildren('invite')) {
    const to = tryParseJID(invite.attrs.to);
    if (!to) throw new StanzaError('jid-malformed', 'an invitation needs a valid to address');
    if (!(await ctx.server.mayExchange(ctx.tenant, to.domain))) throw new StanzaError('remote-server-not-found', `${to.domain} is not reachable from this room`);
    const bare = to.bare().toString();
    // §9.5: an invitation to a members-only room makes the invitee a member.
    if (room.config.membersOnly && affiliationOf(room, bare) === 'none') await ctx.muc.rooms.setAffiliations(ctx.tenant, room.id, { [bare]: { affiliation: 'member' } });
    const msg = invitation(ctx, room, to.toString(), origin.jid.toString(), { id: stanza.attrs.id, reason: invite.getChildText('reason') ?? undefined });
    // §7.8.2: "If the inviter supplies a non-existent JID, the room SHOULD return an item-not-found error".
    if (!(await deliverToUser(ctx.server, to, msg))) throw new StanzaError('item-not-found', `${bare} does not exist`);
  }
}

/** §7.8.2: "Invitee Declines Invitation" — passed to the inviter from the room. */
export async function declineInvitation(ctx: Ctx, room: RoomRecord, origin: Session, stanza: Element, userX: Element): Promise<void> {
  const decline = userX.getChild('decline')!;
  const to = tryParseJID(decline.attrs.to);
  if (!to) throw new StanzaError('jid-malformed', 'a decline needs a valid to address');
  if (!(await ctx.server.mayExchange(ctx.tenant, to.domain))) return;
  const reason = decline.getChildText('reason');
  const msg = xml(
    'message',
    { xmlns: NS.CLIENT, from: roomJid(ctx, room.id), to: to.toString(), id: stanza.attrs.id ?? newId() },
    xml('x', { xmlns: NS.MUC_USER }, xml('decline', { from: origin.jid.bare().toString() }, ...(reason ? [xml('reason', {}, reason)] : []))),
  );
  await deliverToUser(ctx.server, to, msg);
}
