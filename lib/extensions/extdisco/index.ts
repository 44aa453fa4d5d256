// XEP-0215 External Service Discovery (urn:xmpp:extdisco:2): a logged-in user asks its server for the
// STUN and TURN servers of its tenant (the item's `turn` block, settings.ts) and gets them with
// short-lived TURN credentials (credentials.ts), so calls cross NATs and firewalls. The secret stays
// on the server. A tenant without the block neither advertises the feature nor answers (§1: the
// server "MAY instead return an appropriate error, such as <service-unavailable/> if the responding
// entity does not support this protocol"). Pushes (§3.2) are not sent: clients ask again before
// `expires`. README "Calls".
import type { IqEvent } from '../../core/events.ts';
import type { XmppModule } from '../../core/modules.ts';
import { StanzaError } from '../../xmpp/errors.ts';
import { xml, type Element } from '../../xmpp/xml.ts';
import { turnCredentials, xep0082DateTime } from './credentials.ts';
import { DEFAULT_PORT, DEFAULT_TRANSPORT, DEFAULT_TTL_SECONDS, type ExternalService, type TurnSettings, TurnSettingsSchema } from './settings.ts';

export const NS_EXTDISCO = 'urn:xmpp:extdisco:2';

/** Services that need credentials: TURN (RFC 5766 §4 requires the long-term credential mechanism). */
const needsCredentials = (s: ExternalService) => s.type === 'turn' || s.type === 'turns';

/**
 * The <service/> elements for `user` (bare JID) at `nowMs`; pure. TURN services carry a username,
 * password and `expires`, and `restricted="1"` (§2: "credentials are required").
 */
export function serviceElements(settings: TurnSettings, services: ExternalService[], user: string, nowMs: number): Element[] {
  const creds = services.some(needsCredentials) ? turnCredentials(settings.secret, user, nowMs, settings.ttlSeconds ?? DEFAULT_TTL_SECONDS) : undefined;
  return services.map((s) =>
    xml('service', {
      type: s.type,
      host: s.host,
      port: String(s.port ?? DEFAULT_PORT[s.type]),
      transport: s.transport ?? DEFAULT_TRANSPORT[s.type],
      ...(s.name ? { name: s.name } : {}),
      ...(creds && needsCredentials(s) ? { username: creds.username, password: creds.password, expires: xep0082DateTime(creds.expiresAt), restricted: '1' } : {}),
    }),
  );
}

export const extdisco: XmppModule = {
  name: 'extdisco',
  settings: { key: 'turn', schema: TurnSettingsSchema },
  install(ctx) {
    const settingsFor = async (domain: string) => ctx.settingsOf<TurnSettings>(await ctx.server.tenants.get(domain));
    // §4: advertised where the tenant names services, only there.
    ctx.addFeatures(async (domain) => ((await settingsFor(domain)) ? [NS_EXTDISCO] : []));

    /** The tenant's block, or undefined (then the IQ goes unanswered: service-unavailable). */
    const settingsOf = ({ origin, to }: IqEvent) => (to && to.domain !== origin.jid.domain ? undefined : settingsFor(origin.jid.domain));

    // §3.1 all services, §3.2 those of one type (the reply repeats the `type` it was asked for).
    ctx.hook(`iq-get/host/${NS_EXTDISCO}:services`, async (e) => {
      const settings = await settingsOf(e);
      if (!settings) return undefined;
      const type = e.child.attrs.type as string | undefined;
      const wanted = type ? settings.services.filter((s) => s.type === type) : settings.services;
      return xml('services', { xmlns: NS_EXTDISCO, ...(type ? { type } : {}) }, ...serviceElements(settings, wanted, e.origin.jid.bare().toString(), ctx.server.clock.now()));
    });

    // §3.3: credentials for a service named by host and type (and port, if several share them).
    ctx.hook(`iq-get/host/${NS_EXTDISCO}:credentials`, async (e) => {
      const settings = await settingsOf(e);
      if (!settings) return undefined;
      const asked = e.child.getChild('service');
      const { host, type, port } = asked?.attrs ?? {};
      if (!host || !type) throw new StanzaError('bad-request', "the <service/> element must name the service's host and type (XEP-0215 §3.3)");
      const matching = settings.services.filter((s) => s.host === host && s.type === type && (port === undefined || String(s.port ?? DEFAULT_PORT[s.type]) === port));
      if (!matching.length) throw new StanzaError('item-not-found', 'no such service');
      return xml('credentials', { xmlns: NS_EXTDISCO }, ...serviceElements(settings, matching, e.origin.jid.bare().toString(), ctx.server.clock.now()));
    });
  },
};
