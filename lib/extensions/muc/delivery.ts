// How the MUC service sends: fan-out to a room's sessions (one post per connection, concurrent with
// the server's bound, connections found gone removed from the room: XEP-0045 §17.4.2 "ghost users"),
// messages to users outside the room (invitations), and errors stamped with the room (`by`).
import { storeOffline } from '../../core/router.ts';
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

/** Several stanzas to one session, in order (DESIGN.md: posts to one connection are awaited in turn). */
export async function sendInOrder(server: XmppServer, target: { connectionId: string; endpoint: string }, stanzas: Element[]): Promise<boolean> {
  for (const s of stanzas) if (!(await server.send(target, s))) return false;
  return true;
}

/**
 * A message from the room to a user who need not be in it (invitations, declines): to a full JID,
 * that resource; to a bare JID, its available resources of non-negative priority (RFC 6121 §8.5.2.1),
 * else offline storage. False if there is no such account.
 */
export async function deliverToUser(server: XmppServer, to: JID, stanza: Element): Promise<boolean> {
  const bare = to.bare().toString();
  const sessions = await server.sessions.list(bare);
  if (to.resource) {
    const s = sessions.find((x) => x.resource === to.resource);
    if (s && (await server.send(s, stanza))) return true;
  }
  const available = sessions.filter((s) => s.available && s.priority >= 0);
  if (available.length) {
    const gone = await server.sendMany(available, stanza);
    if (gone.length < available.length) return true;
  }
  if (!sessions.length && !(await server.users.exists(to.domain, to.local))) return false;
  await storeOffline(server, bare, stanza);
  return true;
}
