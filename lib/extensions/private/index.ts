// XEP-0049 Private XML Storage (version 1.2): an account keeps XML of its own on the server, one item
// per namespace (store.ts), and gets it back; nobody else reads or writes it. Limits per tenant in the
// `privateStorage` block of the tenant item (settings.ts, README "Profiles and private data").
import type { ModuleContext, XmppModule } from '../../core/modules.ts';
import type { IqEvent } from '../../core/events.ts';
import { StanzaError } from '../../xmpp/errors.ts';
import { type Element, clone, parseFrame, xml } from '../../xmpp/xml.ts';
import { DEFAULT_PRIVATE_ITEMS, DEFAULT_PRIVATE_ITEM_BYTES, type PrivateStorageSettings, PrivateStorageSettingsSchema } from './settings.ts';
import { PRIVATE_PREFIX, PrivateStore, TooManyNamespacesError } from './store.ts';

export const NS_PRIVATE = 'jabber:iq:private';

/**
 * §2.3: "Certain namespaces are reserved in Jabber (namespaces beginning with 'jabber:' or
 * 'http://jabber.org/', as well as 'vcard-temp')"; refusing them is optional there, and done here,
 * so that nobody mistakes stored data for the server's own (a vCard belongs in XEP-0054).
 */
export function reservedNamespace(ns: string): boolean {
  return ns.startsWith('jabber:') || ns.startsWith('http://jabber.org/') || ns === 'vcard-temp';
}

const elementsOf = (el: Element) => el.children.filter((c): c is Element => typeof c !== 'string');

/**
 * The namespace of a stored fragment's root: declared on the element itself (§2.1: "scoped by its
 * own namespace"). One without a declaration is in jabber:iq:private, which is reserved; a prefixed
 * name is refused, as its declaration may sit on an ancestor that is not stored.
 */
function namespaceOf(el: Element): string {
  if (el.name.includes(':')) throw new StanzaError('bad-request', `declare the namespace of <${el.name}> with an xmlns attribute`);
  const ns = (el.attrs.xmlns as string | undefined) ?? NS_PRIVATE;
  if (reservedNamespace(ns)) throw new StanzaError('not-acceptable', `the namespace ${ns} is reserved (XEP-0049 §2.3)`);
  return ns;
}

function install(ctx: ModuleContext): PrivateStore {
  const { server } = ctx;
  const store = new PrivateStore(ctx.openStore());
  const limits = async (domain: string) => {
    const s = ctx.settingsOf<PrivateStorageSettings>(await server.tenants.get(domain));
    return { maxItemBytes: s?.maxItemBytes ?? DEFAULT_PRIVATE_ITEM_BYTES, maxItems: s?.maxItems ?? DEFAULT_PRIVATE_ITEMS };
  };

  ctx.addFeature(NS_PRIVATE);

  // §2.3: a get names exactly one namespace, with one (empty) element of it. What was stored under it
  // comes back; nothing stored: the element as asked, empty (Prosody answers so).
  ctx.hook(`iq-get/self/${NS_PRIVATE}:query`, async ({ origin, child }) => {
    const asked = elementsOf(child);
    if (asked.length === 0) throw new StanzaError('bad-request', 'name the namespace to retrieve with one child element (XEP-0049 §2.3)');
    if (asked.length > 1) throw new StanzaError('bad-request', 'a get names one namespace (XEP-0049 §2.3)');
    const stored = await store.get(origin.jid.bare().toString(), namespaceOf(asked[0]));
    if (stored) return parseFrame(stored);
    const el = clone(asked[0]);
    el.children = [];
    return xml('query', { xmlns: NS_PRIVATE }, el);
  });

  // §2.3: a set stores its elements, grouped by namespace (one or more elements of a namespace replace
  // what was stored under it). Everything is checked before anything is written.
  ctx.hook(`iq-set/self/${NS_PRIVATE}:query`, async ({ origin, child }) => {
    const given = elementsOf(child);
    // §2.3: "At least one child element with a proper namespace MUST be included; otherwise the
    // server MUST respond with a "Not Acceptable" error".
    if (!given.length) throw new StanzaError('not-acceptable', 'a set carries at least one element to store (XEP-0049 §2.3)');
    const byNamespace = new Map<string, Element[]>();
    for (const el of given) {
      const ns = namespaceOf(el);
      byNamespace.set(ns, [...(byNamespace.get(ns) ?? []), el]);
    }
    const { maxItemBytes, maxItems } = await limits(origin.jid.domain);
    const items = [...byNamespace].map(([ns, els]) => ({ ns, text: xml('query', { xmlns: NS_PRIVATE }, ...els.map(clone)).toString() }));
    for (const { ns, text } of items) {
      const bytes = Buffer.byteLength(text);
      if (bytes > maxItemBytes) {
        // The error reply echoes the request (RFC 6120 §8.3.1): not the oversized data (API Gateway
        // posts at most 128 KiB per message).
        child.children = [];
        throw new StanzaError('not-acceptable', `the data of ${ns} is ${bytes} bytes; this server's limit (privateStorage.maxItemBytes) is ${maxItemBytes}`);
      }
    }
    const bare = origin.jid.bare().toString();
    for (const { ns, text } of items) {
      try {
        await store.put(bare, ns, text, maxItems, server.clock.now());
      } catch (err) {
        if (!(err instanceof TooManyNamespacesError)) throw err;
        throw new StanzaError('policy-violation', `an account keeps data under at most ${maxItems} namespaces (privateStorage.maxItems)`);
      }
    }
    return true;
  });

  // §2.3: "If a user attempts to get or set jabber:iq:private data that belongs to another user, the
  // server MUST return a "Forbidden" or "Service Unavailable" error … the former is preferable".
  const forbidden = (_e: IqEvent) => {
    throw new StanzaError('forbidden', 'private data is read and written by its owner only');
  };
  for (const type of ['get', 'set'] as const) {
    ctx.hook(`iq-${type}/bare/${NS_PRIVATE}:query`, forbidden);
    ctx.hook(`iq-${type}/host/${NS_PRIVATE}:query`, forbidden);
  }
  return store;
}

export const privateStorage: XmppModule<PrivateStore> = {
  name: 'private',
  storage: { accountPartitions: [PRIVATE_PREFIX] },
  // The tenant item's `privateStorage` block.
  settings: { key: 'privateStorage', schema: PrivateStorageSettingsSchema },
  install,
};
