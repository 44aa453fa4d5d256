// XEP-0191 Blocking Command (version 1.3): the block list (§3.2-§3.4, with pushes to the resources
// that asked for it) and its enforcement (§3.5 stanzas from a blocked JID, §3.6 stanzas to one).
//
//   match.ts   which JIDs a list item covers (§3.5, after XEP-0016 §2.1), pure
//   store.ts   the list, one item `blocking#<bare JID>`: the source of truth
//
// Where the list is read, so that enforcement costs nothing on the delivery path
// (docs/architecture.md "Cost is a feature"):
// - the recipient's side reads the copy in each of the recipient's session entries (module session
//   data), which the router reads for every delivery anyway; the copy is written at bind and on
//   every change. Nobody online: offline delivery reads the list item (one GetItem).
// - the sender's side (and presence to non-session targets) uses this process's copy of the
//   account's list, kept for CACHE_MS like a tenant item and refreshed from the item when older;
//   a change made by this process replaces it at once.
import { randomBytes } from 'node:crypto';
import type { SessionEntry } from '../../store/sessions.ts';
import type { ModuleContext, XmppModule } from '../../core/modules.ts';
import type { Session, StanzaEvent } from '../../core/events.ts';
import { StanzaError } from '../../xmpp/errors.ts';
import { tryParseJID } from '../../xmpp/jid.ts';
import { NS } from '../../xmpp/namespaces.ts';
import { type Element, xml } from '../../xmpp/xml.ts';
import type { RosterApi } from '../roster/index.ts';
import { isBlocked, parseItems } from './match.ts';
import { BLOCKING_PREFIX, BlockListStore } from './store.ts';

export const NS_BLOCKING = 'urn:xmpp:blocking';
export const NS_BLOCKING_ERRORS = 'urn:xmpp:blocking:errors';

/** How long this process trusts its copy of an account's list (as long as a tenant item). */
export const CACHE_MS = 3000;

/** §3.6: <not-acceptable/> with the application-specific <blocked/> (RFC 6120 §8.3.2: it comes last). */
export class BlockedError extends StanzaError {
  constructor() {
    super('not-acceptable', undefined, 'cancel');
  }

  override toElement(by?: string): Element {
    const el = super.toElement(by);
    el.cnode(xml('blocked', { xmlns: NS_BLOCKING_ERRORS }));
    return el;
  }
}

interface BlockingData extends Record<string, unknown> {
  /** The account's block list, copied here for delivery. Absent when empty. */
  list: string[];
  /** §3.2: this resource retrieved the list, so it gets the pushes. */
  requested: boolean;
}

/** This process's copies of accounts' lists, each trusted for CACHE_MS. */
class ListCache {
  private readonly lists = new Map<string, { list: string[]; at: number }>();

  constructor(
    private readonly store: BlockListStore,
    private readonly now: () => number,
  ) {}

  async get(bare: string): Promise<string[]> {
    const hit = this.lists.get(bare);
    if (hit && this.now() - hit.at < CACHE_MS) return hit.list;
    const list = await this.store.get(bare);
    this.set(bare, list);
    return list;
  }

  set(bare: string, list: string[]): void {
    if (this.lists.size > 50_000) this.lists.delete(this.lists.keys().next().value as string);
    this.lists.set(bare, { list, at: this.now() });
  }
}

/** Stanzas that never get an answer (RFC 6120 §8.3.1): dropped where others get an error. */
function answerless(stanza: Element): boolean {
  const type = stanza.attrs.type;
  return type === 'error' || (stanza.name === 'iq' && type === 'result');
}

function itemsOf(child: Element): (string | undefined)[] {
  return child.getChildren('item').map((i: Element) => i.attrs.jid as string | undefined);
}

const itemElements = (jids: string[]) => jids.map((jid) => xml('item', { jid }));

function install(ctx: ModuleContext): BlockListStore {
  const { server } = ctx;
  const store = new BlockListStore(ctx.openStore());
  const lists = new ListCache(store, () => server.clock.now());
  const data = ctx.sessionData<BlockingData>();
  const roster = ctx.depends<RosterApi>('roster');
  const listIn = (sessions: SessionEntry[]) => sessions.flatMap((s) => data.of(s).list ?? []);

  // §3.1: the server says it supports the protocol; so does the account's bare JID.
  ctx.addFeature(NS_BLOCKING);
  ctx.addAccountFeature(NS_BLOCKING);

  // A new session carries the list from the start; the process that bound it keeps a copy.
  ctx.hook('session-bound', async ({ origin }) => {
    const bare = origin.jid.bare().toString();
    const list = await store.get(bare);
    lists.set(bare, list);
    if (list.length) await data.set(origin, 'list', list);
  });

  // §3.2: the list; the resource is remembered as one that gets pushes.
  ctx.hook(`iq-get/self/${NS_BLOCKING}:blocklist`, async ({ origin }) => {
    const bare = origin.jid.bare().toString();
    const list = await store.get(bare);
    lists.set(bare, list);
    await data.set(origin, 'requested', true);
    return xml('blocklist', { xmlns: NS_BLOCKING }, ...itemElements(list));
  });

  /**
   * After a change: every live session's copy is replaced, and the change is pushed to the
   * resources that retrieved the list (§3.3, §3.4). Returns the account's sessions.
   */
  async function changed(origin: Session, list: string[], push: Element): Promise<SessionEntry[]> {
    const bare = origin.jid.bare().toString();
    lists.set(bare, list);
    const sessions = await server.sessions.list(bare);
    for (const s of sessions) await data.set({ jid: origin.jid.withResource(s.resource), connectionId: s.connectionId }, 'list', list.length ? list : undefined);
    const interested = sessions.filter((s) => data.of(s).requested);
    await server.sendMany(interested, (s) => xml('iq', { xmlns: NS.CLIENT, type: 'set', id: `block-push-${randomBytes(6).toString('hex')}`, to: `${bare}/${s.resource}` }, push));
    return sessions;
  }

  // §3.3: block one or more JIDs.
  ctx.hook(`iq-set/self/${NS_BLOCKING}:block`, async ({ origin, child }) => {
    const raw = itemsOf(child);
    if (!raw.length) throw new StanzaError('bad-request', 'a block names at least one item');
    const jids = parseItems(raw);
    if (!jids) throw new StanzaError('jid-malformed', 'an item is not a valid JID');
    const list = await store.add(origin.jid.bare().toString(), jids);
    const sessions = await changed(origin, list, xml('block', { xmlns: NS_BLOCKING }, ...itemElements(jids)));
    await unavailableTo(origin, sessions, jids);
    return true;
  });

  // §3.4: unblock some JIDs; an empty <unblock/> unblocks all (§3.4 "Unblock All").
  ctx.hook(`iq-set/self/${NS_BLOCKING}:unblock`, async ({ origin, child }) => {
    const raw = itemsOf(child);
    const jids = raw.length ? parseItems(raw) : undefined;
    if (jids === null) throw new StanzaError('jid-malformed', 'an item is not a valid JID');
    const list = await store.remove(origin.jid.bare().toString(), jids);
    await changed(origin, list, xml('unblock', { xmlns: NS_BLOCKING }, ...itemElements(jids ?? [])));
    return true;
  });

  /**
   * §3.3: "the user's server MUST send unavailable presence information to the contact (but only if
   * the contact is allowed to receive presence notifications from the user)": from each available
   * resource of the user to each available resource of every newly blocked contact that has a
   * subscription to the user's presence (RFC 6121 §4: from or both).
   */
  async function unavailableTo(origin: Session, own: SessionEntry[], jids: string[]): Promise<void> {
    const available = own.filter((s) => s.available);
    if (!available.length) return;
    const bare = origin.jid.bare().toString();
    const contacts = (await roster.store.list(bare))
      .filter((i) => i.subscription === 'from' || i.subscription === 'both')
      .map((i) => i.jid)
      // The contact's bare JID is blocked, or one of its resources is.
      .filter((j) => isBlocked(jids, j) || jids.some((b) => b.startsWith(`${j}/`)));
    if (!contacts.length) return;
    // A contact at a component (an entity elsewhere) gets it through the router, as her presence did.
    const atComponents = await roster.atComponents(origin.jid, contacts);
    for (const to of atComponents) {
      for (const mine of available) await roster.sendToComponent(origin, xml('presence', { xmlns: NS.CLIENT, type: 'unavailable', from: `${bare}/${mine.resource}`, to }));
    }
    const local = contacts.filter((c) => !atComponents.has(c));
    if (!local.length) return;
    const sessions = await server.sessions.listMany(local);
    const deliveries: (SessionEntry & { to: string; from: string })[] = [];
    for (const [contact, entries] of sessions) {
      for (const s of entries) {
        const full = `${contact}/${s.resource}`;
        if (!s.available || !isBlocked(jids, full)) continue;
        const to = isBlocked(jids, contact) ? contact : full;
        for (const mine of available) deliveries.push({ ...s, to, from: `${bare}/${mine.resource}` });
      }
    }
    await server.sendMany(deliveries, (d) => xml('presence', { xmlns: NS.CLIENT, type: 'unavailable', from: d.from, to: d.to }));
  }

  // §3.6 (the sender blocked the addressee) and §3.5 (the addressee blocked the sender), for
  // messages and IQs, with the recipient's sessions the router has just read.
  ctx.hook('stanza/deliver', async ({ origin, stanza, to, sessions }) => {
    if (!origin) return undefined;
    const from = origin.jid.bare().toString();
    if (from === to.bare().toString()) return undefined;
    if (isBlocked(await lists.get(from), to)) {
      if (answerless(stanza)) return true;
      throw new BlockedError();
    }
    if (isBlocked(listIn(sessions), origin.jid)) {
      // §3.5: "For message stanzas, the server SHOULD return an error, which SHOULD be
      // <service-unavailable/>. For IQ stanzas of type "get" or "set", the server MUST return an
      // error, which SHOULD be <service-unavailable/>. IQ stanzas of other types MUST be silently
      // dropped by the server." The same answer as for an account that cannot take it.
      if (answerless(stanza)) return true;
      throw new StanzaError('service-unavailable');
    }
    return undefined;
  });

  // §3.6 and §3.3 for an address at an XEP-0114 or webhook component, which the router hands to the
  // component instead of delivering: what the user sends there, and what modules send for her (her
  // presence to a contact there, probe answers). Messages and IQs get the <blocked/> error; presence is
  // dropped without an answer, its unavailable passing, as to an account. Rooms are the MUC service's.
  for (const kind of ['message', 'iq', 'presence'] as const) {
    ctx.hook(
      `${kind}/component/components`,
      async ({ origin, stanza, to }: StanzaEvent) => {
        // A component's own stanzas (it keeps its own rules), and a user of a tenant without blocking.
        if (origin.tenant !== undefined && origin.tenant !== origin.jid.domain) return undefined;
        if (!(await ctx.enabledFor(origin.jid.domain))) return undefined;
        if (!isBlocked(await lists.get(origin.jid.bare().toString()), to)) return undefined;
        if (kind === 'presence') return stanza.attrs.type === 'unavailable' ? undefined : true;
        if (answerless(stanza)) return true;
        throw new BlockedError();
      },
      10,
    );
  }

  // §3.5 with nobody online: the message is neither archived (XEP-0313, priority 100) nor stored
  // offline (priority 0): this runs ahead of both.
  ctx.hook(
    'message/undeliverable',
    async ({ origin, stanza, to }) => {
      if (!origin || !isBlocked(await lists.get(to.bare().toString()), origin.jid)) return undefined;
      if (answerless(stanza)) return true;
      throw new StanzaError('service-unavailable');
    },
    200,
  );

  // Everything else on its way to a connection, presence above all (broadcasts, probe answers,
  // subscription requests): §3.5 "the user's server MUST NOT deliver any XML stanzas from the
  // contact to the user" (presence: "the server MUST NOT respond and MUST NOT return an error"),
  // and the user's presence goes no more to a contact it blocked (§3.3; its unavailable passes).
  ctx.filterOutbound(async (stanza, target) => {
    const entry = target as Partial<SessionEntry>;
    // A session entry carries the recipient's list (none: nothing to check but presence, below).
    const copy = entry.resource !== undefined && entry.boundAt !== undefined ? (data.of(entry as SessionEntry).list ?? []) : undefined;
    if (stanza.name !== 'presence' && !copy?.length) return stanza;
    const from = tryParseJID(stanza.attrs.from);
    const to = tryParseJID(stanza.attrs.to);
    if (!from || !to || !to.local) return stanza;
    if (from.local === to.local && from.domain === to.domain) return stanza;
    // Presence to a connection that is not a session entry (probe answers and pending requests at
    // login) from an account of the same tenant is checked against this process's copy.
    const local = from.local !== '' && from.domain === to.domain;
    const theirs = copy ?? (stanza.name === 'presence' && local && (await ctx.enabledFor(to.domain)) ? await lists.get(to.bare().toString()) : undefined);
    if (isBlocked(theirs, from)) return null;
    if (stanza.name === 'presence' && local && stanza.attrs.type !== 'unavailable' && (await ctx.enabledFor(from.domain))) {
      if (isBlocked(await lists.get(from.bare().toString()), to)) return null;
    }
    return stanza;
  }, 100);

  return store;
}

export const blocking: XmppModule<BlockListStore> = {
  name: 'blocking',
  // On for tenants that list "blocking" in `features`: it reads the list at each login.
  enabled: 'optional',
  depends: ['roster'],
  sessionData: true,
  storage: { accountPartitions: [BLOCKING_PREFIX] },
  install,
};


