// XEP-0030 Service Discovery, answered from what the extensions registered.
import { NS } from '../xmpp/namespaces.ts';
import { xml } from '../xmpp/xml.ts';
import { StanzaError } from '../xmpp/errors.ts';
import type { Extension, IqEvent } from '../core/server.ts';
import { sendsPresenceTo } from './subscription-states.ts';

function serverInfo({ server, child, to }: IqEvent) {
  // XEP-0030 §3.2: nodes we do not know are item-not-found.
  if (child.attrs.node) throw new StanzaError('item-not-found');
  const query = xml('query', { xmlns: NS.DISCO_INFO });
  for (const id of server.disco.identities) query.cnode(xml('identity', { category: id.category, type: id.type, ...(id.name ? { name: id.name } : {}) }));
  for (const f of [...server.disco.features].sort()) query.cnode(xml('feature', { var: f }));
  for (const form of server.disco.forms) query.cnode(form(to.domain));
  return query;
}

async function serverItems({ server, child, to }: IqEvent) {
  if (child.attrs.node) throw new StanzaError('item-not-found');
  const query = xml('query', { xmlns: NS.DISCO_ITEMS });
  for (const source of server.disco.items) for (const item of await source(to.domain)) query.cnode(xml('item', { jid: item.jid, ...(item.name ? { name: item.name } : {}) }));
  return query;
}

/**
 * XEP-0030 §3.1 for an account's bare JID: the server answers for the account, to the account
 * itself and to contacts with a presence subscription; others learn nothing (service-unavailable).
 */
async function accountInfo({ server, origin, to, kind }: IqEvent) {
  if (kind === 'bare') {
    const item = await server.roster.get(to.toString(), origin.jid.bare().toString());
    if (!item || !sendsPresenceTo(item)) throw new StanzaError('service-unavailable');
  }
  return xml('query', { xmlns: NS.DISCO_INFO }, xml('identity', { category: 'account', type: 'registered' }), xml('feature', { var: NS.DISCO_INFO }));
}

export const disco: Extension = {
  name: 'disco',
  install(server) {
    server.disco.addIdentity({ category: 'server', type: 'im', name: 'xmpp-edge' });
    server.disco.addFeature(NS.DISCO_INFO, NS.DISCO_ITEMS);
    server.iqHooks.on(`iq-get/host/${NS.DISCO_INFO}:query`, serverInfo);
    server.iqHooks.on(`iq-get/host/${NS.DISCO_ITEMS}:query`, serverItems);
    server.iqHooks.on(`iq-get/self/${NS.DISCO_INFO}:query`, (e) => (e.stanza.attrs.to ? accountInfo(e) : undefined));
    server.iqHooks.on(`iq-get/bare/${NS.DISCO_INFO}:query`, accountInfo);
    server.iqHooks.on(`iq-get/self/${NS.DISCO_ITEMS}:query`, (e) => (e.stanza.attrs.to ? xml('query', { xmlns: NS.DISCO_ITEMS }) : undefined));
  },
};
