// Owner use cases (XEP-0045 §10) over the http://jabber.org/protocol/muc#owner IQ: the configuration
// form (instant rooms §10.1.2, reserved rooms §10.1.3, later changes §10.2 with their notifications
// §10.2.1), cancelling the initial configuration, and destroying a room (§10.9). applyConfig and
// destroyRoom also serve the admin API and the CLI.
import type { IqEvent } from '../../core/server.ts';
import { StanzaError } from '../../xmpp/errors.ts';
import { NS } from '../../xmpp/namespaces.ts';
import { type Element, xml } from '../../xmpp/xml.ts';
import type { RoomRecord } from './store.ts';
import { type After, type AffiliationChange, type IqAnswer, setAffiliations } from './admin.ts';
import { type ConfigChange, applyConfigForm, configChangeCodes, configForm, formValues } from './config-form.ts';
import { fanOut } from './delivery.ts';
import { expel, newId, removeIfDeserted } from './occupants.ts';
import { affiliationRank } from './permissions.ts';
import { affiliationOf, targetsOf } from './room-model.ts';
import { type Ctx, occupantJid, roomEvent, roomJid } from './service.ts';

const listOf = (room: RoomRecord, affiliation: string) =>
  Object.entries(room.affiliations)
    .filter(([, a]) => a.affiliation === affiliation)
    .map(([b]) => b)
    .sort();

/** The affiliation changes that make the owner and admin lists what a form's full lists say (§10.2). */
function listChanges(room: RoomRecord, change: ConfigChange): AffiliationChange[] {
  const out = new Map<string, AffiliationChange>();
  if (change.admins) {
    for (const b of listOf(room, 'admin')) if (!change.admins.includes(b)) out.set(b, { bare: b, affiliation: 'none' });
    for (const b of change.admins) if (affiliationOf(room, b) !== 'admin') out.set(b, { bare: b, affiliation: 'admin' });
  }
  if (change.owners) {
    for (const b of listOf(room, 'owner')) if (!change.owners.includes(b)) out.set(b, { bare: b, affiliation: change.admins?.includes(b) ? 'admin' : 'none' });
    for (const b of change.owners) if (affiliationOf(room, b) !== 'owner') out.set(b, { bare: b, affiliation: 'owner' });
  }
  return [...out.values()];
}

/**
 * Stores a new configuration (unlocking a new room) and carries out what follows from it: owner and
 * admin list changes, status codes to the occupants (§10.2.1), non-members removed from a room that
 * became members-only (322), a temporary room without occupants removed. Returns the room and the
 * notifications to send after the requester's result.
 */
export async function applyConfig(ctx: Ctx, room: RoomRecord, change: ConfigChange, opts: { actor?: string } = {}): Promise<{ room: RoomRecord; after: After }> {
  let after = await ctx.muc.rooms.setConfig(ctx.tenant, room.id, change.config);
  if (!after) throw new StanzaError('item-not-found', 'no such room');
  const later: After[] = [];
  const lists = listChanges(after, change);
  if (lists.length) {
    later.push(await setAffiliations(ctx, after, lists, opts));
    after = (await ctx.muc.rooms.get(ctx.tenant, room.id)) ?? after;
  }
  if (!room.config.membersOnly && change.config.membersOnly) {
    for (const o of Object.values(after.occupants)) {
      if (affiliationRank(affiliationOf(after, o.bare)) >= affiliationRank('member')) continue;
      const out = await expel(ctx, room.id, o, { codes: [322], reason: 'The room is now members-only' });
      if (out) {
        later.push(out.notifyOthers);
        after = out.after;
      }
    }
  }
  const codes = room.locked ? [] : configChangeCodes(room.config, change.config);
  const final = after;
  later.push(async () => {
    if (codes.length) {
      const x = xml('x', { xmlns: NS.MUC_USER }, ...codes.map((code) => xml('status', { code: String(code) })));
      const from = roomJid(ctx, room.id);
      const id = newId();
      await fanOut(ctx, room.id, targetsOf(final), (t) => xml('message', { xmlns: NS.CLIENT, type: 'groupchat', from, to: t.jid, id }, x));
    }
    await removeIfDeserted(ctx, final);
  });
  return {
    room: final,
    after: async () => {
      for (const fn of later) await fn();
    },
  };
}

/**
 * §10.9: each occupant gets one unavailable presence with <destroy/> (the alternate venue, its
 * password and the reason when given); then the room, its history and its summary are deleted.
 */
export async function destroyRoom(ctx: Ctx, room: RoomRecord, opts: { alternate?: string; reason?: string; password?: string } = {}): Promise<void> {
  const destroy = xml('destroy', opts.alternate ? { jid: opts.alternate } : {});
  if (opts.reason) destroy.cnode(xml('reason', {}, opts.reason));
  if (opts.password) destroy.cnode(xml('password', {}, opts.password));
  await ctx.muc.rooms.remove(room);
  await roomEvent(ctx, 'muc/room-destroyed', room.id, opts.reason ? { reason: opts.reason } : {});
  await fanOut(ctx, room.id, targetsOf(room), (t) =>
    xml(
      'presence',
      { xmlns: NS.CLIENT, from: occupantJid(ctx, room.id, t.occupant.nick), to: t.jid, type: 'unavailable' },
      xml('x', { xmlns: NS.MUC_USER }, xml('item', { affiliation: 'none', role: 'none' }), destroy),
      // XEP-0421 §4: every presence from an occupant JID names the occupant.
      xml('occupant-id', { xmlns: NS.OCCUPANT_ID, id: ctx.occupantId(room.id, t.occupant.bare) }),
    ),
  );
}

export async function onOwnerIq(ctx: Ctx, event: IqEvent, query: Element): Promise<IqAnswer> {
  const room = await ctx.muc.rooms.get(ctx.tenant, event.to.local);
  if (!room) throw new StanzaError('item-not-found', 'no such room');
  // §10.2: only owners configure or destroy a room.
  if (affiliationOf(room, event.origin.jid.bare().toString()) !== 'owner') throw new StanzaError('forbidden', 'only owners may do that');
  const limits = { maxOccupants: ctx.opts.maxOccupants, historyLength: ctx.opts.historyLength };
  if (event.stanza.attrs.type === 'get') {
    const form = configForm(room.config, { roomJid: roomJid(ctx, room.id), owners: listOf(room, 'owner'), admins: listOf(room, 'admin'), limits });
    return { result: xml('query', { xmlns: NS.MUC_OWNER }, form) };
  }
  const destroy = query.getChild('destroy');
  if (destroy) {
    await destroyRoom(ctx, room, { alternate: destroy.attrs.jid, reason: destroy.getChildText('reason') ?? undefined, password: destroy.getChildText('password') ?? undefined });
    return { result: true };
  }
  const x = query.getChild('x', NS.DATA_FORMS);
  if (!x) throw new StanzaError('bad-request', 'expected a data form or <destroy/>');
  if (x.attrs.type === 'cancel') {
    // §10.1.3: cancelling the initial configuration destroys the room; a later one changes nothing.
    if (room.locked) await destroyRoom(ctx, room);
    return { result: true };
  }
  if (x.attrs.type !== 'submit') throw new StanzaError('bad-request', 'the form must be of type submit or cancel');
  // §10.1.2: an empty submitted form accepts the defaults (an instant room).
  const change = applyConfigForm(room.config, formValues(x), limits);
  const mine = Object.values(room.occupants).find((o) => o.sessions[event.origin.jid.toString()]?.connectionId === event.origin.connectionId);
  const { after } = await applyConfig(ctx, room, change, { actor: mine?.nick });
  return { result: true, after };
}
