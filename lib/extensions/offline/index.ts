// XEP-0160 Best Practices for Handling Offline Messages: a message for an account with no available
// resource (the router's "message/undeliverable") is stored, stamped with XEP-0203 delay; at the
// account's next initial presence with non-negative priority ("presence/initial") the messages go to
// that resource, in order, and are deleted.
import type { XmppModule } from '../../core/modules.ts';
import type { XmppServer } from '../../core/server.ts';
import { hasNoStore, hasStore } from '../../xmpp/hints.ts';
import { NS } from '../../xmpp/namespaces.ts';
import { type Element, clone, parseFrame, xml } from '../../xmpp/xml.ts';
import { OFFLINE_PREFIX, OfflineStore } from './store.ts';

const stores = new WeakMap<XmppServer, OfflineStore>();

/** The offline store of a server (for tests and the admin side). */
export function offlineOf(server: XmppServer): OfflineStore {
  const store = stores.get(server);
  if (!store) throw new Error('the offline module is not installed on this server');
  return store;
}

/**
 * What is kept: the message with a delay stamp; chat-state-only messages are not kept (XEP-0085 §5.4),
 * unless they ask to be with a XEP-0334 <store/> hint (§4.4); none with <no-store/> (§4.2).
 */
export function offlineCopy(stanza: Element, domain: string, now = Date.now()): Element | undefined {
  if (hasNoStore(stanza)) return undefined;
  const payload = stanza.children.filter((c): c is Element => typeof c !== 'string');
  if (!hasStore(stanza) && payload.every((c) => c.attrs.xmlns === NS.CHATSTATES)) return undefined;
  const stored = clone(stanza);
  stored.cnode(xml('delay', { xmlns: NS.DELAY, from: domain, stamp: new Date(now).toISOString() }, 'Offline storage'));
  return stored;
}

export const offline: XmppModule<OfflineStore> = {
  name: 'offline',
  storage: { accountPartitions: [OFFLINE_PREFIX] },
  install(ctx) {
    const store = new OfflineStore(ctx.openStore());
    stores.set(ctx.server, store);
    ctx.addFeature(NS.OFFLINE, NS.DELAY);

    ctx.hook('message/undeliverable', async (event) => {
      const { stanza, to } = event;
      const copy = offlineCopy(stanza, to.domain);
      if (copy) {
        await store.store(to.bare().toString(), copy.toString());
        await ctx.fireAll('message/stored', event);
      }
      // Kept, or (a chat state) deliberately not kept: either way the sender is owed no error.
      return true;
    });

    // XEP-0160 §4: offline messages go to the first resource with non-negative priority.
    ctx.hook('presence/initial', async ({ server, origin, priority }) => {
      if (priority < 0) return;
      const bare = origin.jid.bare().toString();
      const delivered: string[] = [];
      for (const m of await store.list(bare)) {
        const el = parseFrame(m.xml);
        el.attrs.to = origin.jid.toString();
        if (!(await server.send(origin, el))) break;
        delivered.push(m.id);
      }
      if (delivered.length) await store.remove(bare, delivered);
    });
    return store;
  },
};
