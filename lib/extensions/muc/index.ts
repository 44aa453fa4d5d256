// XEP-0045 Multi-User Chat: the extension that wires the MUC service into the server. Like Prosody's
// mod_muc it is a folder: the router hands every stanza for <subdomain>.<tenant> to this component as
// presence/message/iq `…/component/muc` events, which go to the files of each concern:
//
//   service.ts       the component, tenant settings, the MUC's own events (muc-occupant-pre-join …)
//   room-types.ts    password, members-only, banned, nickname and occupant-limit checks; disco features
//   occupants.ts     enter/create, presence broadcast and status codes, nick change, leave, session end
//   messages.ts      groupchat, subject, private messages, IQs to occupants, bounced errors
//   admin.ts         roles and affiliations (muc#admin): kick, ban, voice, membership, lists
//   owner.ts         configuration (muc#owner), instant and reserved rooms, destroy
//   config-form.ts   the muc#roomconfig and muc#roominfo forms (pure)
//   permissions.ts   the role and affiliation tables (pure)
//   history.ts       discussion history; invitations.ts, voice-requests.ts, self-ping.ts (XEP-0410)
//   disco.ts         service discovery; delivery.ts fan-out; room-model.ts presence building;
//                    occupant-id.ts the XEP-0421 occupant ids (pure)
//   operations.ts    room management for the admin API and the CLI; admin-routes.ts, cli.ts use it
//   store.ts         the room items (layout in its header); settings.ts the tenant's `muc` block
//
// All room state is in DynamoDB (store.ts): any handler anywhere serves any room.
import type { IqEvent, StanzaEvent } from '../../core/events.ts';
import type { XmppModule } from '../../core/modules.ts';
import { StanzaError } from '../../xmpp/errors.ts';
import { NS } from '../../xmpp/namespaces.ts';
import { type Element, xml } from '../../xmpp/xml.ts';
import { RoomStore } from './store.ts';
import { roomAdminRoutes } from './admin-routes.ts';
import { MucSettingsSchema } from './settings.ts';
import { roomCommands } from './cli.ts';
import { type IqAnswer, onAdminIq } from './admin.ts';
import { mucError } from './delivery.ts';
import { roomInfo, roomItems, serviceInfo, serviceItems } from './disco.ts';
import { onBounce, onOccupantIq, onOccupantMessage, onRoomMessage } from './messages.ts';
import { codesForEnd, leave, leaveAll, onOccupantPresence, roomsOfEntry } from './occupants.ts';
import { onOwnerIq } from './owner.ts';
import { installRoomTypes } from './room-types.ts';
import { isPing, selfPing } from './self-ping.ts';
import { type Ctx, type MucService, registerMuc, roomJid } from './service.ts';

type IqHandler = (ctx: Ctx, event: IqEvent, child: Element) => Promise<IqAnswer>;

const pong: IqHandler = async () => ({ result: true });

/** IQs to the service's own address, by `<type>/<namespace>:<element>`. */
const SERVICE_IQ: Record<string, IqHandler> = {
  [`get/${NS.DISCO_INFO}:query`]: serviceInfo,
  [`get/${NS.DISCO_ITEMS}:query`]: serviceItems,
  [`get/${NS.PING}:ping`]: pong,
};

/** IQs to a room JID. */
const ROOM_IQ: Record<string, IqHandler> = {
  [`get/${NS.DISCO_INFO}:query`]: roomInfo,
  [`get/${NS.DISCO_ITEMS}:query`]: roomItems,
  [`get/${NS.MUC_ADMIN}:query`]: onAdminIq,
  [`set/${NS.MUC_ADMIN}:query`]: onAdminIq,
  [`get/${NS.MUC_OWNER}:query`]: onOwnerIq,
  [`set/${NS.MUC_OWNER}:query`]: onOwnerIq,
  [`get/${NS.PING}:ping`]: pong,
};

async function onIq(ctx: Ctx, event: StanzaEvent): Promise<void> {
  const { server, origin, stanza, to } = event;
  const type = stanza.attrs.type;
  if (to.local && to.resource) {
    // One read of the room serves both the self-ping check and the forwarding.
    const room = await ctx.muc.rooms.get(ctx.tenant, to.local);
    if (isPing(event) && (await selfPing(ctx, event, room))) return;
    return onOccupantIq(ctx, event, room);
  }
  // Nothing here sends IQ requests of its own, so replies to the service or a room end here.
  if (type === 'result' || type === 'error') return;
  const children = stanza.children.filter((c): c is Element => typeof c !== 'string');
  // RFC 6120 §8.2.3: a get or set carries exactly one payload.
  if (children.length !== 1) throw new StanzaError('bad-request', 'an IQ get or set carries exactly one child element');
  const child = children[0];
  const handler = (to.local ? ROOM_IQ : SERVICE_IQ)[`${type}/${child.attrs.xmlns}:${child.name}`];
  if (!handler) throw new StanzaError('service-unavailable');
  const answer = await handler(ctx, { ...event, child }, child);
  const reply = xml('iq', { xmlns: NS.CLIENT, type: 'result', id: stanza.attrs.id, from: stanza.attrs.to, to: origin.jid.toString() });
  if (answer.result !== true) reply.cnode(answer.result);
  await server.send(origin, reply);
  await answer.after?.();
}

async function onStanza(ctx: Ctx, event: StanzaEvent): Promise<void> {
  const { stanza, to } = event;
  const type = stanza.attrs.type;
  if (stanza.name === 'iq') return onIq(ctx, event);
  if (stanza.name === 'presence') {
    if (!to.local) return; // presence to the service itself means nothing
    if (type === 'error') return onBounce(ctx, event);
    // §7.2.1: "If the user does not specify a room nickname … the service MUST return a jid-malformed error".
    if (!to.resource) {
      if (type === undefined) throw new StanzaError('jid-malformed', 'join a room as room@service/nickname');
      return;
    }
    return onOccupantPresence(ctx, event);
  }
  if (stanza.name === 'message') {
    if (!to.local) {
      if (type !== 'error') throw new StanzaError('service-unavailable');
      return;
    }
    return to.resource ? onOccupantMessage(ctx, event) : onRoomMessage(ctx, event);
  }
}

/** Every stanza for the service, a room or an occupant; refusals go back stamped by the room. */
async function handle(muc: MucService, event: StanzaEvent): Promise<true | undefined> {
  const ctx = event.tenant ? await muc.context(event.tenant) : undefined;
  if (!ctx) return undefined;
  try {
    await onStanza(ctx, event);
  } catch (err) {
    if (!(err instanceof StanzaError)) throw err;
    const { stanza, to } = event;
    // RFC 6120 §8.3.1: never an error in answer to an error (or to an IQ result; a message of type
    // "result" is a normal message, RFC 6121 §5.2.2, and is answered).
    if (stanza.attrs.type !== 'error' && !(stanza.name === 'iq' && stanza.attrs.type === 'result')) {
      await ctx.server.send(event.origin, mucError(stanza, err, to.local ? roomJid(ctx, to.local) : ctx.service));
    }
  }
  return true;
}

export const muc: XmppModule<MucService> = {
  name: 'muc',
  // mucowned#<bare JID>: the rooms a user created (limits.roomsPerUser); room#, rooms#: per tenant.
  storage: { accountPartitions: ['mucowned'], partitions: ['room', 'rooms'] },
  sessionData: true,
  // The tenant item's `muc` block (README "Meeting rooms (MUC)").
  settings: { key: 'muc', schema: MucSettingsSchema },
  cli: roomCommands,
  install(ctx) {
    const store = ctx.openStore();
    const service = registerMuc(ctx.server, store, ctx.sessionData<Record<string, string>>());
    installRoomTypes(service);
    ctx.addComponent(service.component);
    // XEP-0045 §6.1: the server lists its tenant's MUC service in its disco#items.
    ctx.addDiscoItems(async (domain) => {
      const c = await service.context(domain);
      return c ? [{ jid: c.service, name: c.opts.name }] : [];
    });
    for (const kind of ['presence', 'message', 'iq'] as const) ctx.hook(`${kind}/component/${service.component.name}`, (e) => handle(service, e));

    // A connection that ends for any reason leaves its rooms; its session entry lists them.
    ctx.hook('session-ended', async ({ session, entry, reason }) => {
      const rooms = roomsOfEntry(service.sessionData, entry);
      if (rooms.length) await leaveAll((d) => service.contextOfService(d), session, rooms, { codes: codesForEnd(reason), notifySelf: false });
    });
    // XEP-0045 §7.14 / RFC 6121 §4.6.3: a broadcast unavailable reaches the occupant JIDs too; the
    // presence module hands over the session entry it read.
    ctx.hook('unavailable', async ({ origin, entry, stanza }) => {
      const rooms = roomsOfEntry(service.sessionData, entry);
      if (rooms.length) await leaveAll((d) => service.contextOfService(d), origin, rooms, { status: stanza, notifySelf: true, unmark: true });
    });
    // XEP-0198: a resumed session keeps its rooms; their occupant records move to its new connection.
    ctx.hook('session-resumed', async ({ session, previous, entry }) => {
      for (const occupant of roomsOfEntry(service.sessionData, entry)) {
        const c = await service.contextOfService(occupant.domain);
        const to = { connectionId: session.connectionId, endpoint: session.endpoint, expiresAt: session.expiresAt, streamData: session.streamData };
        if (c) await c.muc.rooms.moveSession(c.tenant, occupant.local, occupant.resource, session.jid.toString(), previous.connectionId, to);
      }
    });
    // XEP-0198 enabled after joining: the occupant records copy the stream id (one write per room,
    // none for a session in no room), so the room's posts are counted wherever they are sent.
    ctx.hook('stream-data', async ({ session, entry }) => {
      for (const occupant of roomsOfEntry(service.sessionData, entry)) {
        const c = await service.contextOfService(occupant.domain);
        if (c) await c.muc.rooms.setStreamData(c.tenant, occupant.local, occupant.resource, session.jid.toString(), session.connectionId, session.streamData ?? {});
      }
    });
    // A post found the connection gone (410) and nothing else ended its session (e.g. it was replaced).
    service.gone.on('muc-occupant-gone', async ({ ctx: c, roomId, nick, jid, connectionId }) => {
      await leave(c, roomId, nick, { jid, connectionId }, { codes: [333], notifySelf: false });
    });
    for (const route of roomAdminRoutes(ctx.server)) ctx.addAdminRoute(route);
    // A deleted tenant's rooms go with its purge.
    ctx.addPurgeStep(async (db, table, domain) => {
      await new RoomStore(db, table).removeAll(domain);
    });
    return service;
  },
};

export { mucOf } from './service.ts';
