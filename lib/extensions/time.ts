// XEP-0202 Entity Time, for the server itself: an optional module, on for the tenants that list
// "time" in their item's `features` (README "The tenant item"); elsewhere neither the disco feature
// nor the answer exists, so a request gets service-unavailable like any unknown IQ. It is the worked
// example of docs/modules.md.
import type { XmppModule } from '../core/modules.ts';
import { xml } from '../xmpp/xml.ts';

export const NS_TIME = 'urn:xmpp:time';

/** §3: `tzo` as ±hh:mm and `utc` as an XEP-0082 DateTime in UTC. The server's clock is UTC. */
export function timeElement(now: Date) {
  return xml('time', { xmlns: NS_TIME }, xml('tzo', {}, '+00:00'), xml('utc', {}, now.toISOString().replace(/\.\d{3}Z$/, 'Z')));
}

export const time: XmppModule = {
  name: 'time',
  enabled: 'optional',
  install(ctx) {
    ctx.addFeature(NS_TIME);
    ctx.hook(`iq-get/host/${NS_TIME}:time`, () => timeElement(new Date(ctx.server.clock.now())));
  },
};
