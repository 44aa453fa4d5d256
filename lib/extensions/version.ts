// XEP-0092 Software Version, for the server itself. The OS is not disclosed (§3 allows omitting it).
import { NS } from '../xmpp/namespaces.ts';
import { xml } from '../xmpp/xml.ts';
import type { Extension } from '../core/server.ts';

export const version: Extension = {
  name: 'version',
  install(server) {
    server.disco.addFeature(NS.VERSION);
    server.iqHooks.on(`iq-get/host/${NS.VERSION}:query`, () => xml('query', { xmlns: NS.VERSION }, xml('name', {}, 'xmpp-edge'), xml('version', {}, server.version)));
  },
};
