// Discussion history (XEP-0045 §7.2.14, §7.2.15): groupchat messages with a body are kept as items in
// the room's partition (one PutItem each, expiring after the service's retention); a new occupant gets
// the newest ones in one Query bounded by muc#maxhistoryfetch, trimmed to what its <history/> asks
// (maxstanzas, maxchars, seconds, since), each stamped with XEP-0203 delay from the room.
import { NS } from '../../xmpp/namespaces.ts';
import { type Element, parseFrame, xml } from '../../xmpp/xml.ts';
import type { HistoryEntry, RoomRecord } from './store.ts';
import { roomJid, type Ctx } from './service.ts';

export interface HistoryRequest {
  maxchars?: number;
  maxstanzas?: number;
  seconds?: number;
  /** ms since the epoch */
  since?: number;
}

const nonNegative = (v: string | undefined) => (v !== undefined && /^\d+$/.test(v.trim()) ? Number(v) : undefined);

/** The <history/> of a join's <x xmlns='http://jabber.org/protocol/muc'/>; malformed attributes are ignored. */
export function parseHistoryRequest(mucX: Element | undefined): HistoryRequest {
  const h = mucX?.getChild('history');
  if (!h) return {};
  const since = h.attrs.since ? Date.parse(h.attrs.since) : NaN;
  return {
    maxchars: nonNegative(h.attrs.maxchars),
    maxstanzas: nonNegative(h.attrs.maxstanzas),
    seconds: nonNegative(h.attrs.seconds),
    since: Number.isNaN(since) ? undefined : since,
  };
}

/** What to read: at most the room's limit, and from the later of `seconds` and `since` (§7.2.15). */
export function historyQuery(req: HistoryRequest, roomLimit: number, now: number): { limit: number; since: number } {
  let limit = Math.min(req.maxstanzas ?? roomLimit, roomLimit);
  if (req.maxchars === 0) limit = 0; // "If the client wishes to receive no history, it MUST set the 'maxchars' attribute to … 0"
  const since = Math.max(req.since ?? 0, req.seconds !== undefined ? now - req.seconds * 1000 : 0);
  return { limit, since };
}

/**
 * The history stanzas for one recipient, oldest first: each stored message addressed to `to` with a
 * delay stamp from the room; with maxchars, the most recent complete stanzas that fit (§7.2.15:
 * "MUST send complete message stanzas only").
 */
export function historyStanzas(entries: HistoryEntry[], req: HistoryRequest, room: string, to: string): Element[] {
  const out: Element[] = [];
  let chars = 0;
  for (let i = entries.length - 1; i >= 0; i--) {
    const el = parseFrame(entries[i].xml);
    el.attrs.to = to;
    el.cnode(xml('delay', { xmlns: NS.DELAY, from: room, stamp: new Date(entries[i].at).toISOString() }));
    if (req.maxchars !== undefined) {
      chars += el.toString().length;
      if (chars > req.maxchars) break;
    }
    out.push(el);
  }
  return out.reverse();
}

/** §7.2.14: only messages with a body are history (chat states and the subject are not). */
export const isHistoric = (stanza: Element): boolean => !!stanza.getChild('body');

/** Keeps a reflected groupchat message (from the occupant JID, `to` removed) under its archive id. */
export async function storeHistory(ctx: Ctx, roomId: string, reflected: Element, archiveId: string): Promise<void> {
  const kept = parseFrame(reflected.toString());
  delete kept.attrs.to;
  await ctx.muc.rooms.addHistory(ctx.tenant, roomId, kept.toString(), ctx.opts.historyRetentionMs, ctx.server.clock.now(), archiveId);
}

/** The history a new occupant gets: one Query (none when it asks for none). */
export async function historyFor(ctx: Ctx, room: RoomRecord, req: HistoryRequest, to: string, now = ctx.server.clock.now()): Promise<Element[]> {
  const { limit, since } = historyQuery(req, Math.min(room.config.historyFetch, ctx.opts.historyLength), now);
  if (!limit) return [];
  const entries = await ctx.muc.rooms.history(ctx.tenant, room.id, limit, since, now);
  return historyStanzas(entries, req, roomJid(ctx, room.id), to);
}
