// Service discovery of the MUC service and its rooms (XEP-0045 §6): the service's identity and
// features (§6.2), its public rooms (§6.3), each room's identity, features and muc#roominfo form
// (§6.4), room items (§6.5, kept private), and the reserved-nickname node (§7.12).
import type { IqEvent } from '../../core/server.ts';
import { StanzaError } from '../../xmpp/errors.ts';
import { NS } from '../../xmpp/namespaces.ts';
import { type Element, xml } from '../../xmpp/xml.ts';
import type { IqAnswer } from './admin.ts';
import { roomInfoForm } from './config-form.ts';
import { affiliationOf } from './room-model.ts';
import { roomFeatures } from './room-types.ts';
import { type Ctx, roomJid } from './service.ts';

const SERVICE_FEATURES = [NS.DISCO_INFO, NS.DISCO_ITEMS, NS.MUC, NS.MUC_STABLE_ID, NS.PING];
const RESERVED_NICK_NODE = 'x-roomuser-item';
const TRAFFIC_NODE = 'http://jabber.org/protocol/muc#traffic';

function info(identity: { name: string }, features: string[], node?: string): Element {
  const query = xml('query', { xmlns: NS.DISCO_INFO, ...(node ? { node } : {}) }, xml('identity', { category: 'conference', type: 'text', name: identity.name }));
  for (const f of features) query.cnode(xml('feature', { var: f }));
  return query;
}

export async function serviceInfo(ctx: Ctx, _e: IqEvent, child: Element): Promise<IqAnswer> {
  if (child.attrs.node) throw new StanzaError('item-not-found');
  return { result: info({ name: ctx.opts.name }, SERVICE_FEATURES) };
}

/** §6.3: the public rooms (hidden and locked ones are left out): one Query of the tenant's room index. */
export async function serviceItems(ctx: Ctx, _e: IqEvent, child: Element): Promise<IqAnswer> {
  if (child.attrs.node) throw new StanzaError('item-not-found');
  const query = xml('query', { xmlns: NS.DISCO_ITEMS });
  for (const r of await ctx.muc.rooms.list(ctx.tenant)) {
    if (r.public && !r.locked) query.cnode(xml('item', { jid: roomJid(ctx, r.id), name: r.name || r.id }));
  }
  return { result: query };
}

export async function roomInfo(ctx: Ctx, event: IqEvent, child: Element): Promise<IqAnswer> {
  const room = await ctx.muc.rooms.get(ctx.tenant, event.to.local);
  const bare = event.origin.jid.bare().toString();
  if (!room || (room.locked && affiliationOf(room, bare) !== 'owner')) throw new StanzaError('item-not-found', 'no such room');
  const node = child.attrs.node;
  if (node === RESERVED_NICK_NODE) {
    // §7.12: the registered nickname as an identity's name, or an empty result.
    const nick = room.affiliations[bare]?.affiliation !== 'outcast' ? room.affiliations[bare]?.nick : undefined;
    const query = xml('query', { xmlns: NS.DISCO_INFO, node });
    if (nick) query.cnode(xml('identity', { category: 'conference', type: 'text', name: nick }));
    return { result: query };
  }
  // §17.4.1: a room that does not filter traffic says so with service-unavailable.
  if (node === TRAFFIC_NODE) throw new StanzaError('service-unavailable');
  if (node) throw new StanzaError('item-not-found');
  const query = info({ name: room.config.name || room.id }, roomFeatures(room));
  const owners = Object.entries(room.affiliations).filter(([, a]) => a.affiliation === 'owner').map(([b]) => b);
  query.cnode(roomInfoForm(room.config, { occupants: Object.keys(room.occupants).length, subject: room.subject?.text, owners }));
  return { result: query };
}

/** §6.5: the occupant list is private here, so the items are empty. */
export async function roomItems(ctx: Ctx, event: IqEvent, child: Element): Promise<IqAnswer> {
  const room = await ctx.muc.rooms.get(ctx.tenant, event.to.local);
  if (!room || (room.locked && affiliationOf(room, event.origin.jid.bare().toString()) !== 'owner')) throw new StanzaError('item-not-found', 'no such room');
  if (child.attrs.node) throw new StanzaError('item-not-found');
  return { result: xml('query', { xmlns: NS.DISCO_ITEMS }) };
}
