// The stream features every stream offers (RFC 6120 §6 SASL, §7 binding) and the optional legacy
// session establishment (RFC 3921 §3, kept for old clients; marked optional per
// draft-cridland-xmpp-session-01 so current clients skip it).
import { NS } from '../xmpp/namespaces.ts';
import { xml } from '../xmpp/xml.ts';
import { plainMechanism, scramMechanism } from './sasl.ts';
import type { Extension } from './server.ts';

export const streamNegotiation: Extension = {
  name: 'stream-negotiation',
  install(server) {
    // Strongest first: clients use the first they support (RFC 6120 §6.3.3).
    for (const m of [scramMechanism('SHA-256'), scramMechanism('SHA-1'), plainMechanism]) server.saslMechanisms.set(m.name, m);
    server.streamFeatures.push({
      stage: 'pre-auth',
      element: (srv) => xml('mechanisms', { xmlns: NS.SASL }, ...[...srv.saslMechanisms.keys()].map((name) => xml('mechanism', {}, name))),
    });
    server.streamFeatures.push({ stage: 'post-auth', element: () => xml('bind', { xmlns: NS.BIND }) });
    server.streamFeatures.push({ stage: 'post-auth', element: () => xml('session', { xmlns: NS.SESSION }, xml('optional')) });
    server.iqHooks.on(`iq-set/host/${NS.SESSION}:session`, () => true);
  },
};
