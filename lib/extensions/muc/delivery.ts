// How the MUC service sends: fan-out to a room's sessions (one post per connection, concurrent with
// the server's bound, connections found gone removed from the room: XEP-0045 §17.4.2 "ghost users"),
// messages to users outside the room (invitations), and errors stamped with the room (`by`).
import { deliverMessage } from '../../core/router.ts';
import type { XmppServer } from '../../core/server.ts';
import { StanzaError, errorReply } from '../../xmpp/errors.ts';
import type { JID } from '../../xmpp/jid.ts';
import { NS } from '../../xmpp/namespaces.ts';
import { type Element, xml } from '../../xmpp/xml.ts';
import type { Target } from './room-model.ts';
import type { Ctx } from './service.ts';

/**
 * An error reply from the room (RFC 6120 §8.3.1), with `by` set to the room as XEP-0045's examples
 * show, and for presence the <x xmlns='http://jabber.org/protocol/muc'/> of §7.2.
 */
export function mucError(stanza: Element, err: StanzaError, by: string): Element {
  const reply = errorReply(stanza, err);
  const error = reply.getChild('error');
  if (error) error.attrs.by = by;
  if (stanza.name === 'presence') reply.children.unshift(xml('x', { xmlns: NS.MUC }));
  return reply;
}

/**
 * One stanza per target, posted concurrently (bounded by the server's fanOutConcurrency). A target
 * whose connection is gone is removed from the room, as if it had left (muc-occupant-gone).
 */
export async function fanOut(ctx: Ctx, roomId: string, targets: Target[], build: (t: Target) => Element | string): Promise<void> {
  if (!targets.length) return;
  const gone = await ctx.server.sendMany(targets, build);
  for (const t of gone) await ctx.muc.gone.fireAll('muc-occupant-gone', { ctx, roomId, nick: t.occupant.nick, jid: t.jid, connectionId: t.connectionId });
}

/** Several stanzas to one session, in order (docs/architecture.md "Outbound order"). */
export async function sendInOrder(server: XmppServer, target: { connectionId: string; endpoint: string }, stanzas: Element[]): Promise<boolean> {
  for (const s of stanzas) if (!(await server.send(target, s))) return false;
  return true;
}

/**
 * A message from the room to a user who need not be in it (invitations, declines), routed as any
 * message to an account (RFC 6121 §8.5: a resource, the available resources, else offline storage).
 * False if it cannot be delivered (no such account).
 */
export async function deliverToUser(server: XmppServer, to: JID, stanza: Element): Promise<boolean> {
  try {
    await deliverMessage(server, undefined, stanza, to);
    return true;
  } catch (err) {
    if (err instanceof StanzaError) return false;
    throw err;
  }
}
