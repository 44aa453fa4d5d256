// XEP-0030 Service Discovery, answered from what the extensions registered.
import { NS } from '../xmpp/namespaces.ts';
import { xml } from '../xmpp/xml.ts';
import { StanzaError } from '../xmpp/errors.ts';
import type { IqEvent } from '../core/events.ts';
import type { ModuleContext, XmppModule } from '../core/modules.ts';
import type { RosterApi } from './roster/index.ts';

/** The server's own disco#info (§3.1): what the modules on for this tenant registered. */
async function serverInfo(ctx: ModuleContext, { child, to }: IqEvent) {
  // XEP-0030 §3.2: nodes we do not know are item-not-found.
  if (child.attrs.node) throw new StanzaError('item-not-found');
  const info = await ctx.discoInfo(to.domain);
  const query = xml('query', { xmlns: NS.DISCO_INFO });
  for (const id of info.identities) query.cnode(xml('identity', { category: id.category, type: id.type, ...(id.name ? { name: id.name } : {}) }));
  for (const f of info.features) query.cnode(xml('feature', { var: f }));
  for (const form of info.forms) query.cnode(form);
  return query;
}

async function serverItems(ctx: ModuleContext, { child, to }: IqEvent) {
  if (child.attrs.node) throw new StanzaError('item-not-found');
  const query = xml('query', { xmlns: NS.DISCO_ITEMS });
  for (const item of await ctx.discoItems(to.domain)) query.cnode(xml('item', { jid: item.jid, ...(item.name ? { name: item.name } : {}) }));
  return query;
}

/**
 * XEP-0030 §3.1 for an account's bare JID: the server answers for the account, to the account
 * itself and to contacts with a presence subscription; others learn nothing (service-unavailable).
 */
async function accountInfo(ctx: ModuleContext, roster: RosterApi, { origin, to, kind }: IqEvent) {
  if (kind === 'bare' && !(await roster.sharesPresenceWith(to.toString(), origin.jid.bare().toString()))) throw new StanzaError('service-unavailable');
  const query = xml('query', { xmlns: NS.DISCO_INFO }, xml('identity', { category: 'account', type: 'registered' }), xml('feature', { var: NS.DISCO_INFO }));
  for (const id of await ctx.accountIdentities(to.domain)) query.cnode(xml('identity', { category: id.category, type: id.type, ...(id.name ? { name: id.name } : {}) }));
  // What modules do for the account at its bare JID (XEP-0313 §6.1: the archive is advertised there).
  for (const f of await ctx.accountFeatures(to.domain)) query.cnode(xml('feature', { var: f }));
  return query;
}

export const disco: XmppModule = {
  name: 'disco',
  depends: ['roster'],
  install(ctx) {
    const roster = ctx.depends<RosterApi>('roster');
    ctx.addIdentity({ category: 'server', type: 'im', name: 'xmpp-edge' });
    ctx.addFeature(NS.DISCO_INFO, NS.DISCO_ITEMS);
    ctx.hook(`iq-get/host/${NS.DISCO_INFO}:query`, (e) => serverInfo(ctx, e));
    ctx.hook(`iq-get/host/${NS.DISCO_ITEMS}:query`, (e) => serverItems(ctx, e));
    ctx.hook(`iq-get/self/${NS.DISCO_INFO}:query`, (e) => (e.stanza.attrs.to ? accountInfo(ctx, roster, e) : undefined));
    ctx.hook(`iq-get/bare/${NS.DISCO_INFO}:query`, (e) => accountInfo(ctx, roster, e));
    ctx.hook(`iq-get/self/${NS.DISCO_ITEMS}:query`, (e) => (e.stanza.attrs.to ? xml('query', { xmlns: NS.DISCO_ITEMS }) : undefined));
  },
};
