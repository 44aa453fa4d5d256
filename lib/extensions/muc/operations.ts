// Room management for operators and backend services (the admin API and the CLI): create, list,
// show, configure and destroy rooms, and set affiliations — through the same code paths as the XMPP
// owner and admin use cases, so occupants are told of every change exactly as XEP-0045 says.
import { OperatorError } from '../../core/modules.ts';
import type { XmppServer } from '../../core/server.ts';
import { StanzaError } from '../../xmpp/errors.ts';
import { JIDError, makeJID, parseJID } from '../../xmpp/jid.ts';
import type { RoomRecord, RoomSummary } from './store.ts';
import { setAffiliations } from './admin.ts';
import { applyConfigForm, valuesFromJson } from './config-form.ts';
import { newRoom } from './occupants.ts';
import { applyConfig, destroyRoom } from './owner.ts';
import { isAffiliation } from './permissions.ts';
import { affiliationOf } from './room-model.ts';
import { type Ctx, mucOf, roomEvent, roomJid } from './service.ts';

/** A refusal with the HTTP status and code the admin API answers with. */
export class RoomOpError extends OperatorError {
  override name = 'RoomOpError';
}

/** Stanza errors of the shared code, as operator errors. */
async function guard<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof StanzaError) {
      const status = err.condition === 'item-not-found' ? 404 : err.condition === 'conflict' ? 409 : 400;
      throw new RoomOpError(status, err.condition === 'item-not-found' ? 'room-not-found' : 'invalid-room-setting', err.text ?? err.condition);
    }
    throw err;
  }
}

export async function mucContext(server: XmppServer, tenant: string): Promise<Ctx> {
  const muc = mucOf(server);
  if (!muc) throw new RoomOpError(404, 'muc-not-installed', 'this server has no MUC service');
  const ctx = await muc.context(tenant);
  if (!ctx) throw new RoomOpError(404, 'muc-disabled', `${tenant} has no MUC service (is it a tenant, enabled, with muc.enabled not false?)`);
  return ctx;
}

function roomId(ctx: Ctx, id: string): string {
  try {
    const jid = id.includes('@') ? parseJID(id) : makeJID(id, ctx.service);
    if (!jid.local || jid.resource || jid.domain !== ctx.service) throw new JIDError(`expected a room of ${ctx.service}`);
    return jid.local;
  } catch (err) {
    if (err instanceof JIDError) throw new RoomOpError(400, 'invalid-room', `invalid room name ${id}: ${err.message}`);
    throw err;
  }
}

function bareJid(jid: string): string {
  try {
    const parsed = parseJID(jid);
    if (!parsed.local) throw new JIDError('expected user@domain');
    return parsed.bare().toString();
  } catch (err) {
    if (err instanceof JIDError) throw new RoomOpError(400, 'invalid-jid', `invalid JID ${jid}: ${err.message}`);
    throw err;
  }
}

async function existing(ctx: Ctx, id: string): Promise<RoomRecord> {
  const room = await ctx.muc.rooms.get(ctx.tenant, roomId(ctx, id));
  if (!room) throw new RoomOpError(404, 'room-not-found', `no room ${roomId(ctx, id)}@${ctx.service}`);
  return room;
}

export interface RoomView {
  jid: string;
  locked: boolean;
  createdAt: string;
  creator?: string;
  config: RoomRecord['config'];
  subject?: string;
  affiliations: { jid: string; affiliation: string; nick?: string; reason?: string }[];
  occupants: { nick: string; role: string; affiliation: string; jids: string[] }[];
}

export function viewOf(ctx: Ctx, room: RoomRecord): RoomView {
  return {
    jid: roomJid(ctx, room.id),
    locked: room.locked,
    createdAt: new Date(room.createdAt).toISOString(),
    ...(room.creator ? { creator: room.creator } : {}),
    config: room.config,
    ...(room.subject ? { subject: room.subject.text } : {}),
    affiliations: Object.entries(room.affiliations).map(([jid, a]) => ({ jid, ...a })),
    occupants: Object.values(room.occupants).map((o) => ({ nick: o.nick, role: o.role, affiliation: affiliationOf(room, o.bare), jids: Object.keys(o.sessions) })),
  };
}

/** A room made by an operator: unlocked at once, persistent unless the config says otherwise. */
export async function createRoom(ctx: Ctx, name: string, opts: { owners?: string[]; config?: Record<string, unknown> } = {}): Promise<RoomView> {
  const id = roomId(ctx, name);
  const owners = (opts.owners ?? []).map(bareJid);
  const room = newRoom(ctx, id, Date.now(), owners);
  room.locked = false;
  room.config = await guard(async () => applyConfigForm({ ...room.config, persistent: true }, valuesFromJson(opts.config ?? {}), limitsOf(ctx)).config);
  if (!(await ctx.muc.rooms.create(room))) throw new RoomOpError(409, 'room-exists', `${roomJid(ctx, id)} exists`);
  await roomEvent(ctx, 'muc/room-created', id);
  return viewOf(ctx, room);
}

const limitsOf = (ctx: Ctx) => ({ maxOccupants: ctx.opts.maxOccupants, historyLength: ctx.opts.historyLength });

export async function listRooms(ctx: Ctx): Promise<(RoomSummary & { jid: string })[]> {
  return (await ctx.muc.rooms.list(ctx.tenant)).map((r) => ({ jid: roomJid(ctx, r.id), ...r }));
}

export async function showRoom(ctx: Ctx, name: string): Promise<RoomView> {
  return viewOf(ctx, await existing(ctx, name));
}

/** Changes settings (JSON keys of RoomConfig); occupants get the §10.2.1 notifications. */
export async function configureRoom(ctx: Ctx, name: string, patch: Record<string, unknown>): Promise<RoomView> {
  const room = await existing(ctx, name);
  const change = await guard(async () => applyConfigForm(room.config, valuesFromJson(patch), limitsOf(ctx)));
  const done = await guard(() => applyConfig(ctx, room, change));
  await done.after();
  return viewOf(ctx, (await ctx.muc.rooms.get(ctx.tenant, room.id)) ?? done.room);
}

export async function removeRoom(ctx: Ctx, name: string, opts: { reason?: string; alternate?: string } = {}): Promise<void> {
  const room = await existing(ctx, name);
  if (opts.alternate) bareJid(opts.alternate);
  await destroyRoom(ctx, room, opts);
}

/** Sets one user's affiliation (none removes it); occupants are told, banned ones removed. */
export async function setAffiliation(ctx: Ctx, name: string, jid: string, affiliation: string, opts: { reason?: string; nick?: string } = {}): Promise<RoomView> {
  if (!isAffiliation(affiliation)) throw new RoomOpError(400, 'invalid-affiliation', 'affiliation must be owner, admin, member, outcast or none');
  const room = await existing(ctx, name);
  const bare = bareJid(jid);
  const owners = Object.entries(room.affiliations).filter(([b, a]) => a.affiliation === 'owner' && b !== bare).length;
  if (affiliationOf(room, bare) === 'owner' && affiliation !== 'owner' && owners === 0) {
    throw new RoomOpError(409, 'last-owner', `${bare} is the room's only owner`);
  }
  const after = await guard(() => setAffiliations(ctx, room, [{ bare, affiliation, nick: opts.nick, reason: opts.reason }]));
  await after();
  return showRoom(ctx, room.id);
}
