// XEP-0353 Jingle Message Initiation (urn:xmpp:jingle-message:0, and :1 of versions 0.4 and 0.5): the
// server's part of "ring on all devices". A call's messages (propose, ringing, proceed, accept, reject,
// retract, finish) go to a bare JID; the spec makes them type chat, which RFC 6121 §8.5.2.1.1 already
// delivers to every available resource of non-negative priority (lib/core/router.ts). Clients that
// send them as normal messages get the same: "message/every-resource" picks that option of §8.5.2.1.1
// for them. The rest happens where every message goes: carbons copy them to the other devices of both
// parties (lib/extensions/carbons.ts, XEP-0353 §5), their XEP-0334 <store/> hint keeps them in the
// archive and in offline storage (lib/extensions/mam/, lib/extensions/offline/), so a call missed
// while offline (propose, then retract) shows up at the next login. XEP-0353 defines no disco
// feature for servers.
import type { XmppModule } from '../core/modules.ts';
import { jingleMessageAction } from '../xmpp/hints.ts';

export const jingleMessage: XmppModule = {
  name: 'jingle-message',
  install(ctx) {
    // XEP-0353 §2: "Result in 'ring-on-all-devices' behavior".
    ctx.hook('message/every-resource', ({ stanza }) => (jingleMessageAction(stanza) ? true : undefined));
  },
};
