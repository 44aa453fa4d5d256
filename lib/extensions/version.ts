// XEP-0092 Software Version, for the server itself. The OS is not disclosed (§3 allows omitting it).
import { NS } from '../xmpp/namespaces.ts';
import { xml } from '../xmpp/xml.ts';
import type { XmppModule } from '../core/modules.ts';

export const version: XmppModule = {
  name: 'version',
  install(ctx) {
    ctx.addFeature(NS.VERSION);
    ctx.hook(`iq-get/host/${NS.VERSION}:query`, () => xml('query', { xmlns: NS.VERSION }, xml('name', {}, 'xmpp-edge'), xml('version', {}, ctx.server.version)));
  },
};
