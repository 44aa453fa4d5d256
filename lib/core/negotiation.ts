// The stream features every stream offers (RFC 6120 §6 SASL, §7 binding) and the optional legacy
// session establishment (RFC 3921 §3, kept for old clients; marked optional per
// draft-cridland-xmpp-session-01 so current clients skip it). The SASL mechanisms listed are those
// the tenant's `loginMethods` allow: password → SCRAM-SHA-256, SCRAM-SHA-1, PLAIN; jwt → PLAIN (the
// JWT as password), OAUTHBEARER; token → X-OAUTH (registered by lib/extensions/token-auth.ts).
import { NS } from '../xmpp/namespaces.ts';
import { xml } from '../xmpp/xml.ts';
import { mechanismsFor, oauthBearerMechanism, plainMechanism, scramMechanism } from './sasl.ts';
import type { XmppModule } from './modules.ts';

export const streamNegotiation: XmppModule = {
  name: 'stream-negotiation',
  install(ctx) {
    // Strongest first: clients use the first they support (RFC 6120 §6.3.3).
    for (const m of [scramMechanism('SHA-256'), scramMechanism('SHA-1'), plainMechanism, oauthBearerMechanism]) ctx.addSaslMechanism(m);
    ctx.addStreamFeature({
      stage: 'pre-auth',
      // The tenant was just read to open the stream, so this comes from its cache.
      element: async (srv, rec) => {
        const tenant = rec.domain ? await srv.tenants.get(rec.domain) : undefined;
        return xml('mechanisms', { xmlns: NS.SASL }, ...mechanismsFor(srv, tenant).map((m) => xml('mechanism', {}, m.name)));
      },
    });
    ctx.addStreamFeature({ stage: 'post-auth', element: () => xml('bind', { xmlns: NS.BIND }) });
    ctx.addStreamFeature({ stage: 'post-auth', element: () => xml('session', { xmlns: NS.SESSION }, xml('optional')) });
    ctx.hook(`iq-set/host/${NS.SESSION}:session`, () => true);
  },
};
