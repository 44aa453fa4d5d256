// RFC 6121 §2: roster get, set and remove, with pushes to every interested resource (§2.1.6).
import { randomBytes } from 'node:crypto';
import { StanzaError } from '../xmpp/errors.ts';
import { tryParseJID } from '../xmpp/jid.ts';
import { NS } from '../xmpp/namespaces.ts';
import { type Element, xml } from '../xmpp/xml.ts';
import type { RosterItem } from '../store/roster.ts';
import type { SessionEntry } from '../store/sessions.ts';
import type { Extension, IqEvent, XmppServer } from '../core/server.ts';
import { NO_SUBSCRIPTION, rosterAttributes } from './subscription-states.ts';
import { processOutboundSubscription } from './subscriptions.ts';

export function rosterItemElement(item: Pick<RosterItem, 'jid' | 'name' | 'groups'> & Partial<RosterItem>, remove = false): Element {
  if (remove) return xml('item', { jid: item.jid, subscription: 'remove' });
  const attrs = rosterAttributes({ ...NO_SUBSCRIPTION, ...item });
  const el = xml('item', { jid: item.jid, ...(item.name ? { name: item.name } : {}), subscription: attrs.subscription, ...(attrs.ask ? { ask: attrs.ask } : {}), ...(attrs.approved ? { approved: 'true' } : {}) });
  for (const g of item.groups ?? []) el.c('group').t(g);
  return el;
}

/** §2.1.6: a roster push to each interested resource of the owner (`known`: the owner's sessions, if just read). */
export async function pushRosterItem(server: XmppServer, owner: string, itemEl: Element, known?: SessionEntry[]): Promise<void> {
  const sessions = (known ?? (await server.sessions.list(owner))).filter((s) => s.interested);
  await server.sendMany(sessions, (s) =>
    xml('iq', { xmlns: NS.CLIENT, type: 'set', id: `push-${randomBytes(6).toString('hex')}`, to: `${owner}/${s.resource}` }, xml('query', { xmlns: NS.ROSTER }, itemEl)),
  );
}

async function rosterGet({ server, origin }: IqEvent): Promise<Element> {
  const owner = origin.jid.bare().toString();
  const items = await server.roster.list(owner);
  // §2.1.6: requesting the roster makes this resource "interested" in pushes.
  await server.sessions.update(owner, origin.jid.resource, origin.connectionId, { interested: true });
  const query = xml('query', { xmlns: NS.ROSTER });
  for (const item of items) if (item.inRoster) query.cnode(rosterItemElement(item));
  return query;
}

async function rosterSet({ server, origin, child }: IqEvent): Promise<true> {
  const items = child.getChildren('item');
  // §2.3.3: exactly one item.
  if (items.length !== 1) throw new StanzaError('bad-request', 'a roster set carries exactly one item');
  const el = items[0];
  const contact = tryParseJID(el.attrs.jid);
  if (!contact) throw new StanzaError('bad-request', 'invalid jid');
  const owner = origin.jid.bare().toString();
  const jid = contact.bare().toString();
  if (jid === owner) throw new StanzaError('not-allowed', 'you cannot add yourself to your roster');

  if (el.attrs.subscription === 'remove') return removeItem(server, origin.jid.bare().toString(), jid, origin);

  const groups = el.getChildren('group').map((g) => g.text());
  // §2.3.3: duplicate or empty group names.
  if (new Set(groups).size !== groups.length) throw new StanzaError('bad-request', 'duplicate group');
  if (groups.some((g) => g === '')) throw new StanzaError('not-acceptable', 'empty group name');
  if ((el.attrs.name ?? '').length > 1023 || groups.some((g) => g.length > 1023)) throw new StanzaError('not-acceptable', 'name too long');

  const existing = await server.roster.get(owner, jid);
  // §2.1.2.5: the client's subscription/ask attributes are ignored; only the server sets them.
  const item: RosterItem = {
    ...NO_SUBSCRIPTION,
    ...existing,
    jid,
    name: el.attrs.name || undefined,
    groups,
    inRoster: true,
  };
  await server.roster.put(owner, item);
  await pushRosterItem(server, owner, rosterItemElement(item));
  return true;
}

/** §2.5.2: removing an item cancels subscriptions both ways, then pushes the removal. */
async function removeItem(server: XmppServer, owner: string, jid: string, origin: IqEvent['origin']): Promise<true> {
  const existing = await server.roster.get(owner, jid);
  if (!existing?.inRoster) throw new StanzaError('item-not-found');
  const contact = tryParseJID(jid)!;
  if (existing.subscription === 'to' || existing.subscription === 'both' || existing.pendingOut) {
    await processOutboundSubscription(server, origin, 'unsubscribe', contact);
  }
  const after = (await server.roster.get(owner, jid)) ?? existing;
  if (after.subscription === 'from' || after.subscription === 'both' || after.pendingIn) {
    await processOutboundSubscription(server, origin, 'unsubscribed', contact);
  }
  await server.roster.remove(owner, jid);
  await pushRosterItem(server, owner, rosterItemElement({ jid, groups: [] }, true));
  return true;
}

export const roster: Extension = {
  name: 'roster',
  install(server) {
    server.iqHooks.on(`iq-get/self/${NS.ROSTER}:query`, (e) => rosterGet(e));
    server.iqHooks.on(`iq-set/self/${NS.ROSTER}:query`, (e) => rosterSet(e));
  },
};
