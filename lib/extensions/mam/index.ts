// XEP-0313 Message Archive Management for user archives and rooms, with XEP-0359 stanza ids.
//
// Archiving (§6.1.1): a chat or normal message with a body between local accounts is kept in the
// sender's and the recipient's archive, both items in one BatchWriteItem (a PutItem when only one
// archive keeps it), whether it was delivered or went to offline storage. Before delivery (a
// high-priority `message/bare|full|self` hook that passes the stanza on) the message gets its archive
// id as <stanza-id by='<recipient bare JID>'/> (§3.5), after any forged one with the same `by` is
// removed (XEP-0359 §3); the write happens on `message/delivered` and `message/undeliverable`, after
// the posts, so delivery waits for none of it.
// Queries (§4), the form (§4.1.5), metadata (§5) and preferences (XEP-0441) are IQs to the account
// itself, at its bare JID (§3.3.1). Retention is the tenant's `archive` block (ArchiveSettingsSchema).
// A room's archive (§3.3.2) is its MUC history, read through the MUC module and queried at the room JID.
import { type Static, Type } from '@sinclair/typebox';
import { utcDay } from '../../metrics/metrics.ts';
import type { DeliveredEvent, IqEvent, Session, StanzaEvent, UndeliverableEvent } from '../../core/events.ts';
import type { XmppModule } from '../../core/modules.ts';
import type { XmppServer } from '../../core/server.ts';
import { StanzaError } from '../../xmpp/errors.ts';
import { hasNoPermanentStore, hasStore } from '../../xmpp/hints.ts';
import { type JID, tryParseJID } from '../../xmpp/jid.ts';
import { NS } from '../../xmpp/namespaces.ts';
import { setStanzaId, stripStanzaIds } from '../../xmpp/stanza-id.ts';
import { type Element, clone, parseFrame, xml } from '../../xmpp/xml.ts';
import type { muc as mucModule } from '../muc/index.ts';
import type { RosterApi } from '../roster/index.ts';
import {
  NS_FORWARD,
  NS_MAM,
  NS_MAM_EXTENDED,
  NS_SID,
  firstIdAt,
  isArchiveId,
  newArchiveId,
  parseQueryForm,
  parseRsm,
  planPage,
  queryForm,
  rsmAnswer,
  stampOf,
  takePage,
} from './query.ts';
import { ARCHIVE_PREFIX, type ArchivedMessage, type ArchivePrefs, ArchiveStore, ArchiveWriteError, type DefaultPref, type PageRead, PREFS_PREFIX, readPage } from './store.ts';

export { stripStanzaIds } from '../../xmpp/stanza-id.ts';

/** Days a message is kept when the tenant's `archive` block names none. */
export const DEFAULT_RETENTION_DAYS = 365;
const DAY_MS = 24 * 60 * 60_000;

export const ArchiveSettingsSchema = Type.Object(
  {
    enabled: Type.Optional(Type.Boolean({ description: 'false: no message archive (XEP-0313) and no stanza ids for this tenant. Default true.' })),
    days: Type.Optional(Type.Integer({ minimum: 1, maximum: 3650, description: 'Days an archived message is kept (its expiry attribute, the TTL in AWS). Default 365.' })),
  },
  { additionalProperties: false, description: 'Message archive (XEP-0313) settings; absent: on, messages kept 365 days.' },
);

export type ArchiveSettings = Static<typeof ArchiveSettingsSchema>;

const stores = new WeakMap<XmppServer, ArchiveStore>();

/** The archive store of a server (for tests). */
export function archiveOf(server: XmppServer): ArchiveStore {
  const store = stores.get(server);
  if (!store) throw new Error('the mam module is not installed on this server');
  return store;
}

/**
 * §6.1.1: chat and normal messages with a body are archived; chat states, receipts, errors, groupchat
 * and headlines are not. XEP-0334 hints decide first: <no-permanent-store/> and <no-store/> keep a
 * message out (§4.2); <store/> puts one in (§4.4), as XEP-0353 call events (propose … finish) ask.
 */
export function isArchivable(stanza: Element): boolean {
  const type = stanza.attrs.type ?? 'normal';
  if (type === 'error' || type === 'groupchat' || hasNoPermanentStore(stanza)) return false;
  if (hasStore(stanza)) return true;
  return (type === 'chat' || type === 'normal') && !!stanza.getChild('body');
}

/** XEP-0441 preferences: is a message with `peer` (bare JID) archived by this owner? `inRoster` is asked only for 'roster'. */
export async function archives(prefs: ArchivePrefs, peer: string, inRoster: () => Promise<boolean>): Promise<boolean> {
  if (prefs.never.includes(peer)) return false;
  if (prefs.always.includes(peer)) return true;
  if (prefs.default === 'never') return false;
  if (prefs.default === 'roster') return inRoster();
  return true;
}

/** XEP-0441: <prefs default='…'><always><jid/>…</always><never>…</never></prefs>. */
export function parsePrefs(el: Element): ArchivePrefs {
  const def = el.attrs.default as string | undefined;
  if (def !== 'always' && def !== 'never' && def !== 'roster') throw new StanzaError('bad-request', "default must be 'always', 'never' or 'roster'");
  const jids = (name: string) =>
    (el.getChild(name)?.getChildren('jid') ?? []).map((j) => {
      const jid = tryParseJID(j.getText().trim());
      if (!jid) throw new StanzaError('jid-malformed', 'not a JID');
      return jid.bare().toString();
    });
  return { default: def as DefaultPref, always: jids('always'), never: jids('never') };
}

export function prefsElement(prefs: ArchivePrefs): Element {
  const list = (name: string, jids: string[]) => xml(name, {}, ...jids.map((j) => xml('jid', {}, j)));
  return xml('prefs', { xmlns: NS_MAM, default: prefs.default }, list('always', prefs.always), list('never', prefs.never));
}

type MucApi = ReturnType<(typeof mucModule)['install']>;

/** The id a message was given before delivery, and when. */
interface Pending {
  id: string;
  at: number;
}

/** §5: the first and last ids of an archive, with their times; an empty archive has neither. */
function metadataElement(first: string | undefined, last: string | undefined): Element {
  const edge = (name: string, id: string | undefined) => (id ? [xml(name, { id, timestamp: stampOf(id) })] : []);
  return xml('metadata', { xmlns: NS_MAM }, ...edge('start', first), ...edge('end', last));
}

/**
 * §4: answers a query of any archive: parses the form and RSM, reads one page, sends each result to
 * the querying resource (§4.2; `from` the archive's address for a room, none for the user's own),
 * and returns the <fin/> for the IQ result (true if the querier's connection is gone).
 */
async function answerQuery(
  server: XmppServer,
  origin: Session,
  child: Element,
  from: string | undefined,
  oldest: number,
  page: (plan: ReturnType<typeof planPage>) => Promise<PageRead>,
): Promise<Element | true> {
  const filter = parseQueryForm(child.getChild('x', NS.DATA_FORMS));
  const rsm = parseRsm(child.getChild('set', 'http://jabber.org/protocol/rsm'));
  const read = await page(planPage(filter, rsm, oldest));
  if ('missingAnchor' in read) throw new StanzaError('item-not-found', `${read.missingAnchor} is not in the archive`);
  const queryid = child.attrs.queryid as string | undefined;
  // <flip-page/> (§4.3.4) only reverses the order the results are sent in.
  for (const m of child.getChild('flip-page') ? [...read.page].reverse() : read.page) {
    const result = xml(
      'message',
      { xmlns: NS.CLIENT, to: origin.jid.toString(), ...(from ? { from } : {}), id: `mam-${m.id}` },
      xml(
        'result',
        { xmlns: NS_MAM, id: m.id, ...(queryid !== undefined ? { queryid } : {}) },
        xml('forwarded', { xmlns: NS_FORWARD }, xml('delay', { xmlns: NS.DELAY, stamp: stampOf(m.id) }), parseFrame(m.xml)),
      ),
    );
    if (!(await server.send(origin, result))) return true;
  }
  // §4.3.2: complete when the page holds the last (forward) or first (backward) matching item.
  return xml('fin', { xmlns: NS_MAM, ...(read.complete ? { complete: 'true' } : {}) }, rsmAnswer(read.page));
}

/** The `ids` filter (§4.1.3) over an archive read one id at a time: every id must be there. */
async function byIds(plan: ReturnType<typeof planPage>, get: (id: string) => Promise<ArchivedMessage | undefined>, now: number): Promise<PageRead> {
  const found: ArchivedMessage[] = [];
  for (const id of [...new Set(plan.ids)].slice(0, 100)) {
    const m = isArchiveId(id) ? await get(id) : undefined;
    if (!m || m.expiresAt <= now) return { missingAnchor: id };
    found.push(m);
  }
  found.sort((a, b) => (a.id < b.id ? -1 : 1));
  if (!plan.forward) found.reverse();
  return takePage(plan, found);
}

export const mam: XmppModule<ArchiveStore> = {
  name: 'mam',
  depends: ['roster', 'muc'],
  settings: { key: 'archive', schema: ArchiveSettingsSchema },
  storage: { accountPartitions: [ARCHIVE_PREFIX, PREFS_PREFIX] },
  install(ctx) {
    const store = new ArchiveStore(ctx.openStore());
    stores.set(ctx.server, store);
    const roster = ctx.depends<RosterApi>('roster');
    const mucApi = ctx.depends<MucApi>('muc');
    const clock = ctx.server.clock;
    const pending = new WeakMap<Element, Pending>();

    const settings = async (domain: string) => {
      const s = ctx.settingsOf<ArchiveSettings>(await ctx.server.tenants.get(domain));
      return { enabled: s?.enabled !== false, days: s?.days ?? DEFAULT_RETENTION_DAYS };
    };

    /**
     * The tenant's quotas.archiveBytes (README "Metrics and usage"): what its archives hold, taken as the
     * bytes archived within the retention (archive.days; items older have expired): the usage records of
     * the days before today, read once per tenant per UTC day (one Query), plus today's as far as this
     * process knows (the table's total at its last flush and its own counts since: no read per message).
     * Once it is reached, messages are delivered but not archived, counted and logged; the message that
     * crosses it is still archived, so that a stamped stanza id always names an archived item.
     */
    const earlier = new Map<string, { day: string; bytes: number }>();
    const archivedBeforeToday = async (domain: string, days: number) => {
      const now = clock.now();
      const today = utcDay(now);
      const hit = earlier.get(domain);
      if (hit?.day === today) return hit.bytes;
      const records = days > 1 ? await ctx.server.usage.range(domain, utcDay(now - (days - 1) * DAY_MS), utcDay(now - DAY_MS)) : [];
      const bytes = records.reduce((n, r) => n + (r.counts.archiveBytes ?? 0), 0);
      earlier.set(domain, { day: today, bytes });
      return bytes;
    };
    const overArchiveQuota = async (domain: string) => {
      const quota = (await ctx.server.tenants.get(domain))?.quotas?.archiveBytes;
      if (!quota) return false;
      const held = (await archivedBeforeToday(domain, (await settings(domain)).days)) + ctx.server.metrics.usageToday(domain, 'archiveBytes');
      if (held < quota) return false;
      ctx.server.metrics.count('ArchiveQuotaRefusals', 1, domain);
      ctx.log.info({ tenant: domain, quota, held }, 'archive quota reached: message not archived');
      return true;
    };

    // XEP-0313 "Determining support": the archive is advertised on the account's bare JID (§3.3.1; Converse.js asks there).
    ctx.addAccountFeatures(async (domain) => ((await settings(domain)).enabled ? [NS_MAM, NS_MAM_EXTENDED, NS_SID] : []));

    // Before delivery: the recipient's archive id goes on the stanza (§3.5), forged ones off (XEP-0359 §3).
    const stamp = async ({ stanza, to }: StanzaEvent) => {
      // The recipient's tenant decides about the recipient's archive (tenants may federate).
      if (!isArchivable(stanza) || !(await settings(to.domain)).enabled) return undefined;
      // No stanza id for an archive that will not keep the message (XEP-0359 §4: the id names an archived item).
      if (await overArchiveQuota(to.domain)) return undefined;
      const by = to.bare().toString();
      const at = clock.now();
      const id = newArchiveId(at);
      setStanzaId(stanza, by, id);
      pending.set(stanza, { id, at });
      return undefined;
    };
    for (const kind of ['bare', 'full', 'self'] as const) ctx.hook(`message/${kind}`, stamp, 1000);

    // After delivery (or before offline storage): one write call for the archives that keep it.
    const write = async (origin: Session | undefined, stanza: Element, to: JID) => {
      const p = pending.get(stanza);
      if (!p || !origin) return;
      pending.delete(stanza);
      const sender = origin.jid.bare().toString();
      const recipient = to.bare().toString();
      // Each archive follows its own tenant's settings (tenants may federate).
      const owners: { owner: string; days: number }[] = [];
      for (const jid of sender === recipient ? [origin.jid] : [origin.jid, to]) {
        // An XEP-0114 component's address is no account: it has no archive.
        if (jid === origin.jid && origin.tenant) continue;
        const { enabled, days } = await settings(jid.domain);
        if (enabled) owners.push({ owner: jid.bare().toString(), days });
      }
      if (!owners.length) return;
      const prefs = await store.prefsOf(owners.map((o) => o.owner));
      // First which archives keep a copy (preferences, quota), then all of them in one call.
      const decided = await Promise.all(
        owners.map(async ({ owner, days }) => {
          const peerJid = owner === sender ? to : origin.jid;
          const peer = peerJid.bare().toString();
          if (!(await archives(prefs.get(owner)!, peer, async () => !!(await roster.store.get(owner, peer))))) return undefined;
          const expiresAt = p.at + days * DAY_MS;
          // Each archive keeps the message with its own stanza id only.
          const copy = clone(stanza);
          stripStanzaIds(copy, recipient);
          setStanzaId(copy, owner, p.id);
          const text = copy.toString();
          const domain = owner.slice(owner.indexOf('@') + 1);
          if (await overArchiveQuota(domain)) return undefined;
          const message: ArchivedMessage = { id: p.id, peer, peerFull: peerJid.resource ? peerJid.toString() : undefined, xml: text, expiresAt };
          return { owner, domain, bytes: Buffer.byteLength(text, 'utf8'), message };
        }),
      );
      const copies = decided.filter((c) => c !== undefined);
      if (!copies.length) return;
      let written = copies;
      try {
        await store.appendToAll(copies);
      } catch (err) {
        if (!(err instanceof ArchiveWriteError)) throw err;
        // The message is delivered (or goes on to offline storage) all the same: failing the frame
        // would have it retried and delivered twice, or tell the sender it failed. The copies not
        // written are an error for the operator (docs/architecture.md "Metrics and usage").
        written = copies.filter((c) => err.written.includes(c.owner));
        for (const domain of new Set(copies.filter((c) => err.unwritten.includes(c.owner)).map((c) => c.domain))) ctx.server.metrics.count('Errors', 1, domain);
        ctx.log.error({ err: err.cause ?? err, id: p.id, unwritten: err.unwritten, written: err.written }, 'message not archived: archive write failed');
      }
      for (const c of written) ctx.server.metrics.use(c.domain, 'archiveBytes', c.bytes);
    };
    ctx.hook('message/delivered', ({ origin, stanza, to }: DeliveredEvent) => write(origin, stanza, to));
    // Before offline storage (priority 0), which keeps it: the archive passes it on.
    ctx.hook(
      'message/undeliverable',
      async ({ origin, stanza, to }: UndeliverableEvent) => {
        await write(origin, stanza, to);
        return undefined;
      },
      100,
    );

    // §4: queries, answered to the account itself.
    ctx.hook(`iq-set/self/${NS_MAM}:query`, async ({ server, origin, child, stanza }: IqEvent) => {
      if (stanza.attrs.to && stanza.attrs.to !== origin.jid.bare().toString()) throw new StanzaError('forbidden');
      const owner = origin.jid.bare().toString();
      const { enabled, days } = await settings(origin.jid.domain);
      if (!enabled) throw new StanzaError('service-unavailable');
      const now = clock.now();
      return answerQuery(server, origin, child, undefined, now - days * DAY_MS, (plan) => store.page(owner, plan, now));
    });

    // §3.3.2: a room's archive, at the room JID, is its history (XEP-0045 §7.2.15), kept under
    // archive ids (the room's stanza ids); anyone who may enter the room may read it.
    ctx.hook(
      'iq/component/muc',
      async ({ server, origin, stanza, to, tenant }: StanzaEvent) => {
        const child = stanza.getChild('query', NS_MAM) ?? stanza.getChild('metadata', NS_MAM);
        if (!child || !to.local || to.resource || !tenant || (stanza.attrs.type !== 'set' && stanza.attrs.type !== 'get')) return undefined;
        const muc = await mucApi.context(tenant);
        if (!muc) return undefined;
        const room = await muc.muc.rooms.get(tenant, to.local);
        if (!room || room.locked) throw new StanzaError('item-not-found', 'no such room');
        // A room without an archive (muc#roomconfig_enablearchiving off; temporary rooms by default) answers as before: service-unavailable.
        if (!(room.config.archiving ?? room.config.persistent)) return undefined;
        // XEP-0045 §7.2.7, §7.2.8: outcasts, and non-members of members-only rooms, may not enter.
        const affiliation: string = room.affiliations[origin.jid.bare().toString()]?.affiliation ?? 'none';
        if (affiliation === 'outcast' || (room.config.membersOnly && affiliation === 'none')) throw new StanzaError('forbidden', 'you may not read this room');
        const address = to.bare().toString();
        const now = clock.now();
        const oldest = now - muc.opts.historyRetentionMs;
        const reply = (payload: Element) =>
          server.send(origin, xml('iq', { xmlns: NS.CLIENT, type: 'result', id: stanza.attrs.id, from: address, to: origin.jid.toString() }, payload));
        const rangeOf = (from: string, to2: string, forward: boolean, limit: number, start?: Record<string, unknown>) =>
          muc.muc.rooms.historyRange(tenant, room.id, from, to2, forward, limit, start).then(({ items, next }) => ({
            next,
            items: items.map((i): ArchivedMessage => {
              const from = (parseFrame(i.xml).attrs.from as string | undefined) ?? address;
              return { id: i.id, peer: address, peerFull: from, xml: i.xml, expiresAt: i.expiresAt };
            }),
          }));
        if (child.name === 'metadata') {
          if (stanza.attrs.type !== 'get') throw new StanzaError('bad-request');
          const edge = async (forward: boolean) => (await rangeOf(firstIdAt(oldest), 'g', forward, 1)).items.find((i) => i.expiresAt > now)?.id;
          return reply(metadataElement(await edge(true), await edge(false)));
        }
        if (stanza.attrs.type === 'get') return reply(queryForm());
        const fin = await answerQuery(server, origin, child, address, oldest, (plan) =>
          plan.ids ? byIds(plan, (id) => rangeOf(id, id, true, 1).then((r) => r.items[0]), now) : readPage(rangeOf, async (id) => (await rangeOf(id, id, true, 1)).items.some((i) => i.expiresAt > now), plan, now),
        );
        if (fin !== true) await reply(fin);
        return true;
      },
      10,
    );

    // §4.1.5: the query form.
    ctx.hook(`iq-get/self/${NS_MAM}:query`, () => queryForm());

    // §5 (urn:xmpp:mam:2#extended): the archive's first and last ids and times.
    ctx.hook(`iq-get/self/${NS_MAM}:metadata`, async ({ origin }: IqEvent) => {
      const { days } = await settings(origin.jid.domain);
      const { first, last } = await store.bounds(origin.jid.bare().toString(), firstIdAt(clock.now() - days * DAY_MS));
      return metadataElement(first, last);
    });

    // XEP-0441: preferences.
    ctx.hook(`iq-get/self/${NS_MAM}:prefs`, async ({ origin }: IqEvent) => prefsElement(await store.prefs(origin.jid.bare().toString())));
    ctx.hook(`iq-set/self/${NS_MAM}:prefs`, async ({ origin, child }: IqEvent) => {
      const prefs = parsePrefs(child);
      await store.setPrefs(origin.jid.bare().toString(), prefs);
      return prefsElement(prefs);
    });

    return store;
  },
};

