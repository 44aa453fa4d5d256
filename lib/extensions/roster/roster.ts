// RFC 6121 §2: roster get, set and remove, with pushes to every interested resource (§2.1.6).
import { StanzaError } from '../../xmpp/errors.ts';
import { tryParseJID } from '../../xmpp/jid.ts';
import { NS } from '../../xmpp/namespaces.ts';
import { type Element, xml } from '../../xmpp/xml.ts';
import type { RosterItem } from './store.ts';
import type { IqEvent } from '../../core/events.ts';
import type { ModuleContext } from '../../core/modules.ts';
import type { XmppServer } from '../../core/server.ts';
import { NO_SUBSCRIPTION } from './subscription-states.ts';
import { pushRosterItem, rosterItemElement, rosterPush } from './roster-push.ts';
import { answerFor, versionString } from './roster-version.ts';
import { rosterOf } from './store.ts';
import { componentRoute, processOutboundSubscription } from './subscriptions.ts';

async function rosterGet({ server, origin, child, afterReply }: IqEvent): Promise<Element | true> {
  const owner = origin.jid.bare().toString();
  const { items, ver, counter } = await rosterOf(server).listVersioned(owner);
  // §2.1.6: requesting the roster makes this resource "interested" in pushes.
  await server.sessions.update(owner, origin.jid.resource, origin.connectionId, { interested: true });
  if (child.attrs.ver !== undefined) {
    // §2.6.3: a client with the current version gets an empty result; one with an older version of this
    // roster, an empty result and then the changes as pushes to it alone, when no removal is among them.
    // Any other version (stale past a removal, empty, unknown, another account's) gets the whole roster.
    const answer = answerFor(child.attrs.ver, ver, counter, items);
    if (answer.kind === 'current') return true;
    if (answer.kind === 'pushes' && afterReply) {
      afterReply(async () => {
        for (const item of answer.items) await server.send(origin, rosterPush(owner, origin.jid.resource, rosterItemElement(item), versionString({ epoch: counter!.epoch, n: item.ver! })));
      });
      return true;
    }
  }
  const query = xml('query', { xmlns: NS.ROSTER, ver });
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

  const existing = await rosterOf(server).get(owner, jid);
  // §2.1.2.5: the client's subscription/ask attributes are ignored; only the server sets them.
  const item: RosterItem = {
    ...NO_SUBSCRIPTION,
    ...existing,
    jid,
    name: el.attrs.name || undefined,
    groups,
    inRoster: true,
  };
  const { ver, n } = await rosterOf(server).bumpVersion(owner);
  await rosterOf(server).put(owner, { ...item, ver: n });
  await pushRosterItem(server, owner, rosterItemElement(item), ver);
  return true;
}

/** §2.5.2: removing an item cancels subscriptions both ways, then pushes the removal. */
async function removeItem(server: XmppServer, owner: string, jid: string, origin: IqEvent['origin']): Promise<true> {
  const existing = await rosterOf(server).get(owner, jid);
  if (!existing?.inRoster) throw new StanzaError('item-not-found');
  const contact = tryParseJID(jid)!;
  // A contact at a component is told through the router, as one on another server would be.
  const remote = await componentRoute(server, origin, contact);
  if (existing.subscription === 'to' || existing.subscription === 'both' || existing.pendingOut) {
    await processOutboundSubscription(server, origin, 'unsubscribe', contact, undefined, remote);
  }
  const after = (await rosterOf(server).get(owner, jid)) ?? existing;
  if (after.subscription === 'from' || after.subscription === 'both' || after.pendingIn) {
    await processOutboundSubscription(server, origin, 'unsubscribed', contact, undefined, remote);
  }
  const { ver } = await rosterOf(server).bumpVersion(owner, true);
  await rosterOf(server).remove(owner, jid);
  await pushRosterItem(server, owner, rosterItemElement({ jid, groups: [] }, true), ver);
  return true;
}

export function installRosterIq(ctx: ModuleContext): void {
    ctx.hook(`iq-get/self/${NS.ROSTER}:query`, (e) => rosterGet(e));
    ctx.hook(`iq-set/self/${NS.ROSTER}:query`, (e) => rosterSet(e));
}
