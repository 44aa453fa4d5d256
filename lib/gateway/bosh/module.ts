// The BOSH transport's part inside the core (docs/architecture.md "BOSH"), as a module of its own that
// every server with the transport installs (lib/local/local-server.ts, lib/runtime/lambda.ts):
// - the tenant item's `bosh` block (CORS origins, XEP-0124 §7 is silent on origins; browsers need it);
// - on session-ended, a BOSH session's queued messages go to offline storage (RFC 6121 §8.5.2.2):
//   nothing posted to a session that ends before a request took it is lost;
// - a sweep step that ends sessions whose inactivity time ran out (XEP-0124 §7.1 `inactivity`): its
//   contacts see it unavailable, its rooms see it leave.
import { type Static, Type } from '@sinclair/typebox';
import type { XmppModule } from '../../core/modules.ts';
import { BOSH_PREFIX, type BoshSessionStore } from '../../store/bosh-sessions.ts';
import { parseFrame } from '../../xmpp/xml.ts';
import { BOSH_SCHEME } from './endpoint.ts';

export const BoshSettingsSchema = Type.Object(
  {
    allowOrigins: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: 2048, pattern: '^(\\*|https?://[^/\\s]+)$' }), {
        maxItems: 100,
        description:
          'Web origins (scheme://host[:port]) whose pages may read BOSH responses of this tenant (CORS Access-Control-Allow-Origin); "*" or absent: any.',
      }),
    ),
  },
  { additionalProperties: false, description: 'BOSH (XEP-0124/0206) settings; absent: the defaults.' },
);

export type BoshSettings = Static<typeof BoshSettingsSchema>;

/** Messages that go to offline storage when their session is gone (RFC 6121 §8.5.2.2). */
function keptForOffline(frame: string): boolean {
  if (!frame.startsWith('<message')) return false;
  const type = parseFrame(frame).attrs.type ?? 'normal';
  return type === 'normal' || type === 'chat';
}

export function boshModule(store: BoshSessionStore): XmppModule {
  return {
    name: 'bosh',
    settings: { key: 'bosh', schema: BoshSettingsSchema },
    storage: { partitions: [BOSH_PREFIX] },
    install(ctx) {
      ctx.hook('session-ended', async ({ server, session }) => {
        if (!session.endpoint.startsWith(BOSH_SCHEME)) return;
        const queued = (await store.end(session.connectionId, server.clock.now())) ?? [];
        for (const frame of queued) {
          if (!keptForOffline(frame)) continue;
          await server.registry.events.fire('message/undeliverable', { server, stanza: parseFrame(frame), to: session.jid.bare() });
        }
      });
      ctx.addSweepStep(async (server, now) => {
        for (const item of await store.inactive(server.connections.region, now)) {
          server.log.info({ connectionId: item.connectionId, inactivity: item.inactivity }, 'BOSH session inactive');
          // As a socket gone: XEP-0198 may keep the session for resumption, else it ends.
          await server.endConnection(item.connectionId, 'BOSH inactivity', { socketClosed: true });
          // A request that comes later learns that its sid is no longer valid.
          await store.close(item.connectionId, item.region, now, 'item-not-found');
        }
      });
    },
  };
}
