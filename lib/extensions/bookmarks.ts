// XEP-0402 PEP Native Bookmarks (version 1.2.0), compatibility with XEP-0048 Bookmark Storage kept in
// XEP-0049 Private XML Storage (the `#compat` account feature; the conversion XEP-0411 describes).
//
// The `urn:xmpp:bookmarks:1` PEP node is the one copy: a private-storage get of `storage:bookmarks`
// is answered from it and a set is turned into publishes and retractions on it, so nothing needs
// keeping in step and a PEP publish or retract is seen by legacy clients at once. Costs (README
// "Cost per operation"): a get reads the node (1); a set reads and writes it (1 + 1, and the count of
// the account's nodes when it creates it), reads the owner's sessions (1) and notifies the owner's
// resources that want the node (the node is whitelist-only, XEP-0402 §3). An account without the node
// has its XEP-0048 bookmarks from private storage (kept before this module) converted at its first get.
//
// `#compat-pep` (XEP-0402 §3.3, the PEP half of XEP-0411) the same way: the XEP-0048 PEP node
// `storage:bookmarks` is not stored. A read of its items is answered from the XEP-0402 node as one
// item `current` holding the whole `<storage/>` (1 read); a publish of it is a set as above; each change
// of the XEP-0402 node, whoever made it, is told as that item to the owner's resources with
// `storage:bookmarks+notify` (PepApi.addView: the same session read, one post per such resource).
import type { IqEvent } from '../core/events.ts';
import type { XmppModule } from '../core/modules.ts';
import { type Element, clone, parseFrame, xml } from '../xmpp/xml.ts';
import { StanzaError } from '../xmpp/errors.ts';
import type { PepApi, PepNode } from './pep/index.ts';

export const NS_BOOKMARKS2 = 'urn:xmpp:bookmarks:1';
export const NS_LEGACY_BOOKMARKS = 'storage:bookmarks';
const NS_PRIVATE = 'jabber:iq:private';
const NS_PUBSUB = 'http://jabber.org/protocol/pubsub';
/** XEP-0048 §3.1 / XEP-0223: the legacy PEP node's single item. */
const LEGACY_ITEM = 'current';

/** XEP-0402 §3 (Example 3): the node's configuration, as publish-options. */
export const BOOKMARKS_NODE_OPTIONS = {
  'pubsub#persist_items': 'true',
  'pubsub#max_items': 'max',
  'pubsub#send_last_published_item': 'never',
  'pubsub#access_model': 'whitelist',
};

const elementsOf = (el: Element) => el.children.filter((c): c is Element => typeof c !== 'string');
const truthy = (v: unknown) => v === 'true' || v === '1';

/**
 * A XEP-0048 `<conference/>` as a XEP-0402 `<item/>` (id: the room JID, XEP-0402 §2); the extensions
 * of the item it replaces are kept (XEP-0402 §2.1: clients keep what they do not understand). Pure.
 */
export function itemOfLegacy(conference: Element, previous?: Element): Element | undefined {
  const jid = conference.attrs.jid as string | undefined;
  if (!jid) return undefined;
  const nick = conference.getChildText('nick');
  const password = conference.getChildText('password');
  const extensions = previous?.getChild('conference', NS_BOOKMARKS2)?.getChild('extensions');
  return xml(
    'item',
    { id: jid },
    xml(
      'conference',
      { xmlns: NS_BOOKMARKS2, ...(conference.attrs.name ? { name: String(conference.attrs.name) } : {}), ...(truthy(conference.attrs.autojoin) ? { autojoin: 'true' } : {}) },
      ...(nick ? [xml('nick', {}, nick)] : []),
      ...(password ? [xml('password', {}, password)] : []),
      ...(extensions ? [clone(extensions)] : []),
    ),
  );
}

/** A XEP-0402 `<item/>` as a XEP-0048 `<conference/>` (XEP-0048 §3.2); extensions have no place there. Pure. */
export function legacyOfItem(item: Element): Element | undefined {
  const c = item.getChild('conference', NS_BOOKMARKS2);
  if (!c || !item.attrs.id) return undefined;
  const nick = c.getChildText('nick');
  const password = c.getChildText('password');
  return xml(
    'conference',
    { jid: String(item.attrs.id), ...(c.attrs.name ? { name: String(c.attrs.name) } : {}), autojoin: truthy(c.attrs.autojoin) ? 'true' : 'false' },
    ...(nick ? [xml('nick', {}, nick)] : []),
    ...(password ? [xml('password', {}, password)] : []),
  );
}

/** The XEP-0048 `<storage/>` of a XEP-0402 node's items (none: an empty list). Pure. */
export function legacyStorageOf(node: Pick<PepNode, 'items'> | undefined): Element {
  const conferences = (node?.items ?? []).map((i) => legacyOfItem(parseFrame(i.xml))).filter((c): c is Element => !!c);
  return xml('storage', { xmlns: NS_LEGACY_BOOKMARKS }, ...conferences);
}

/** The same bookmark, extensions aside? */
const sameBookmark = (a: Element, b: Element) => legacyOfItem(a)?.toString() === legacyOfItem(b)?.toString();

export const bookmarks: XmppModule = {
  name: 'bookmarks',
  depends: ['private', 'pep'],
  install(ctx) {
    const pep = ctx.depends<PepApi>('pep');
    const privateStore = ctx.depends<{ get(bare: string, namespace: string): Promise<string | undefined> }>('private');

    // XEP-0402 §3.3: the account's bare JID says that private-storage bookmarks are the PEP ones
    // (#compat), and so are those of the XEP-0048 PEP node storage:bookmarks (#compat-pep).
    ctx.addAccountFeature(`${NS_BOOKMARKS2}#compat`);
    ctx.addAccountFeature(`${NS_BOOKMARKS2}#compat-pep`);
    // Each change of the XEP-0402 node is also told, as the whole legacy list, to the resources that
    // want storage:bookmarks (XEP-0048 §3.2 over PEP): the same audience, no extra read.
    const legacyItems = (n: PepNode | undefined) => xml('items', { node: NS_LEGACY_BOOKMARKS }, xml('item', { id: LEGACY_ITEM }, legacyStorageOf(n)));
    pep.addView(NS_BOOKMARKS2, NS_LEGACY_BOOKMARKS, legacyItems);

    /** Publishes the rooms of a XEP-0048 list: new or changed ones published, the others retracted. */
    const replaceWith = (owner: string, conferences: Element[]) => {
      const wanted = new Map<string, Element>();
      for (const c of conferences) if (c.attrs.jid) wanted.set(String(c.attrs.jid), c);
      return pep.edit(owner, NS_BOOKMARKS2, BOOKMARKS_NODE_OPTIONS, (items) => {
        const current = new Map(items.map((i) => [i.id, parseFrame(i.xml)]));
        const publish: Element[] = [];
        for (const [jid, c] of wanted) {
          const before = current.get(jid);
          const item = itemOfLegacy(c, before)!;
          if (!before || !sameBookmark(before, item)) publish.push(item);
        }
        return { publish, retract: [...current.keys()].filter((id) => !wanted.has(id)) };
      });
    };

    /** The XEP-0402 node; without it, bookmarks kept in private storage before this module (or with it off) become its items, once. */
    const load = async (owner: string): Promise<PepNode | undefined> => {
      const node = await pep.node(owner, NS_BOOKMARKS2);
      if (node) return node;
      const kept = await privateStore.get(owner, NS_LEGACY_BOOKMARKS);
      const conferences = kept ? elementsOf(parseFrame(kept)).flatMap((s) => (s.attrs.xmlns === NS_LEGACY_BOOKMARKS ? s.getChildren('conference') : [])) : [];
      return conferences.length ? replaceWith(owner, conferences) : undefined;
    };

    // Ahead of the private storage module (priority 0): storage:bookmarks is answered here.
    ctx.hook(
      `iq-get/self/${NS_PRIVATE}:query`,
      async ({ origin, child }: IqEvent) => {
        const asked = elementsOf(child);
        if (asked.length !== 1 || asked[0].name !== 'storage' || asked[0].attrs.xmlns !== NS_LEGACY_BOOKMARKS) return undefined;
        return xml('query', { xmlns: NS_PRIVATE }, legacyStorageOf(await load(origin.jid.bare().toString())));
      },
      10,
    );

    // ---- #compat-pep: the XEP-0048 PEP node storage:bookmarks is a view of the XEP-0402 node ----------
    // Ahead of PEP (priority 0): the legacy node is never stored. Its one item `current` is made from
    // the XEP-0402 items on each read; a publish of it is turned into publishes and retractions there.
    ctx.hook(
      `iq-get/self/${NS_PUBSUB}:pubsub`,
      async ({ origin, child }: IqEvent) => {
        const el = child.getChild('items');
        if (el?.attrs.node !== NS_LEGACY_BOOKMARKS) return undefined;
        const node = await load(origin.jid.bare().toString());
        // XEP-0060 §6.5.9.11: no bookmarks node, no legacy node either.
        if (!node) throw new StanzaError('item-not-found', `no node ${NS_LEGACY_BOOKMARKS}`);
        const ids = el.getChildren('item').map((i: Element) => i.attrs.id);
        // §6.5.8: asked for items by id, only `current` exists.
        const items = ids.length && !ids.includes(LEGACY_ITEM) ? xml('items', { node: NS_LEGACY_BOOKMARKS }) : legacyItems(node);
        return xml('pubsub', { xmlns: NS_PUBSUB }, items);
      },
      10,
    );

    ctx.hook(
      `iq-set/self/${NS_PUBSUB}:pubsub`,
      async ({ origin, child }: IqEvent) => {
        const el = child.getChild('publish') ?? child.getChild('retract');
        if (el?.attrs.node !== NS_LEGACY_BOOKMARKS) return undefined;
        const owner = origin.jid.bare().toString();
        if (el.name === 'retract') {
          // Retracting the one item empties the list.
          await replaceWith(owner, []);
          return true;
        }
        const items = el.getChildren('item');
        const payloads = items.length === 1 ? elementsOf(items[0]) : [];
        // XEP-0060 §7.1.3.5 / §7.1.3.6, and the payload must be a XEP-0048 list. Its publish-options
        // (XEP-0048 §3.1 asks whitelist) are not checked: the XEP-0402 node's own configuration holds.
        if (payloads.length !== 1 || payloads[0].name !== 'storage' || payloads[0].attrs.xmlns !== NS_LEGACY_BOOKMARKS) throw new StanzaError('bad-request', `${NS_LEGACY_BOOKMARKS} holds one item with one <storage xmlns='${NS_LEGACY_BOOKMARKS}'/>`);
        await replaceWith(owner, payloads[0].getChildren('conference'));
        return xml('pubsub', { xmlns: NS_PUBSUB }, xml('publish', { node: NS_LEGACY_BOOKMARKS }, xml('item', { id: LEGACY_ITEM })));
      },
      10,
    );

    ctx.hook(
      `iq-set/self/${NS_PRIVATE}:query`,
      async ({ origin, child }: IqEvent) => {
        const all = elementsOf(child);
        const storage = all.filter((el) => el.name === 'storage' && el.attrs.xmlns === NS_LEGACY_BOOKMARKS);
        if (!storage.length) return undefined;
        // The whole list replaces the bookmarks (XEP-0049 §2.3): new or changed rooms are published,
        // rooms no longer listed are retracted, unchanged ones are left alone. URL bookmarks (XEP-0048
        // §3.3) have no place in XEP-0402 (§1) and are not kept.
        await replaceWith(origin.jid.bare().toString(), storage.flatMap((s) => s.getChildren('conference')));
        // Other namespaces in the same set go on to private storage.
        if (storage.length === all.length) return true;
        child.children = child.children.filter((c) => !storage.includes(c as Element));
        return undefined;
      },
      10,
    );
  },
};
