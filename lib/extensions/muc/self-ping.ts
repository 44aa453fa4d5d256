// XEP-0410 MUC Self-Ping with the server optimisation (§3.3): a ping to one's own occupant JID is
// answered by the service — a result while the connection is joined, not-acceptable when it is not —
// instead of going round through a client. It uses the room item the caller read.
import type { StanzaEvent } from '../../core/server.ts';
import { StanzaError } from '../../xmpp/errors.ts';
import { NS } from '../../xmpp/namespaces.ts';
import { xml } from '../../xmpp/xml.ts';
import { findSession } from './room-model.ts';
import type { Ctx } from './service.ts';
import type { RoomRecord } from './store.ts';

export const isPing = (event: StanzaEvent): boolean => event.stanza.attrs.type === 'get' && !!event.stanza.getChild('ping', NS.PING);

/** Answers a self-ping; false when the ping is for another occupant (it is forwarded like any IQ). */
export async function selfPing(ctx: Ctx, event: StanzaEvent, room: RoomRecord | undefined): Promise<boolean> {
  const { origin, stanza, to } = event;
  const mine = room && findSession(room, origin);
  // §3.2: "If Juliet's client is not joined, the MUC service will respond with a <not-acceptable> error."
  if (!mine) throw new StanzaError('not-acceptable', 'you are not in this room', 'cancel');
  if (mine.occupant.nick !== to.resource) return false;
  await ctx.server.send(origin, xml('iq', { xmlns: NS.CLIENT, type: 'result', id: stanza.attrs.id, from: stanza.attrs.to, to: origin.jid.toString() }));
  return true;
}
