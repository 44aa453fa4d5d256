// RFC 6121 §2.1.6: roster pushes to every interested resource of the owner, and the <item/> they carry.
import { randomBytes } from 'node:crypto';
import { NS } from '../../xmpp/namespaces.ts';
import { type Element, xml } from '../../xmpp/xml.ts';
import type { SessionEntry } from '../../store/sessions.ts';
import type { XmppServer } from '../../core/server.ts';
import type { RosterItem } from './store.ts';
import { NO_SUBSCRIPTION, rosterAttributes } from './subscription-states.ts';

export function rosterItemElement(item: Pick<RosterItem, 'jid' | 'name' | 'groups'> & Partial<RosterItem>, remove = false): Element {
  if (remove) return xml('item', { jid: item.jid, subscription: 'remove' });
  const attrs = rosterAttributes({ ...NO_SUBSCRIPTION, ...item });
  const el = xml('item', { jid: item.jid, ...(item.name ? { name: item.name } : {}), subscription: attrs.subscription, ...(attrs.ask ? { ask: attrs.ask } : {}), ...(attrs.approved ? { approved: 'true' } : {}) });
  for (const g of item.groups ?? []) el.c('group').t(g);
  return el;
}

/**
 * §2.1.6: a roster push to each interested resource of the owner (`known`: the owner's sessions, if just
 * read), carrying the roster version the change made (§2.6.2: `ver` on every push).
 */
export async function pushRosterItem(server: XmppServer, owner: string, itemEl: Element, ver: string, known?: SessionEntry[]): Promise<void> {
  const sessions = (known ?? (await server.sessions.list(owner))).filter((s) => s.interested);
  await server.sendMany(sessions, (s) => rosterPush(owner, s.resource, itemEl, ver));
}

/** One roster push (§2.1.6) to `owner/resource`, with the roster version it brings the client to (§2.6.2). */
export function rosterPush(owner: string, resource: string, itemEl: Element, ver: string): Element {
  return xml('iq', { xmlns: NS.CLIENT, type: 'set', id: `push-${randomBytes(6).toString('hex')}`, to: `${owner}/${resource}` }, xml('query', { xmlns: NS.ROSTER, ver }, itemEl));
}
