// XEP-0160 Best Practices for Handling Offline Messages: storage happens in the router (a message
// with no available recipient), delivery at initial presence (presence.ts); this announces it.
import { NS } from '../xmpp/namespaces.ts';
import type { Extension } from '../core/server.ts';

export const offline: Extension = {
  name: 'offline',
  install(server) {
    server.disco.addFeature(NS.OFFLINE, NS.DELAY);
  },
};
