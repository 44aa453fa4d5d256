// XEP-0199 XMPP Ping: the server answers pings addressed to it (§4.2) with an empty result.
import { NS } from '../xmpp/namespaces.ts';
import type { XmppModule } from '../core/modules.ts';

export const ping: XmppModule = {
  name: 'ping',
  install(ctx) {
    ctx.addFeature(NS.PING);
    ctx.hook(`iq-get/host/${NS.PING}:ping`, () => true);
  },
};
