// XEP-0199 XMPP Ping: the server answers pings addressed to it (§4.2) with an empty result.
import { NS } from '../xmpp/namespaces.ts';
import type { Extension } from '../core/server.ts';

export const ping: Extension = {
  name: 'ping',
  install(server) {
    server.disco.addFeature(NS.PING);
    server.iqHooks.on(`iq-get/host/${NS.PING}:ping`, () => true);
  },
};
