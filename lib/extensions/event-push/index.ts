// Event push per tenant (README "Event push"), after MongooseIM's event pusher: a tenant item's
// `events` block chooses kinds of events and a target (a signed HTTPS webhook, an SNS topic or an
// EventBridge bus); the module turns the core's events into JSON records (schema.ts, version 1),
// buffers them while frames are handled and publishes them in the flush step, after the stanzas went
// out: a slow or failing target never delays or fails a stanza. Costs nothing on the stanza path
// (no DynamoDB call, no post): the tenant item is the router's cached one.
//
//   message/sent       stanza/in: a message with a <body/> from a bound session (the sender's tenant)
//   message/delivered  message/delivered (the addressee's tenant)
//   message/stored     message/stored: offline storage kept it (the addressee's tenant)
//   presence/changed   stanza/in: a broadcast presence (no `to`), available or unavailable; and at
//                      session-ended, an unavailable for a session that was still available
//   session/opened     session-bound; session/closed: session-ended, with its reason
//   room/*             muc/room-created, muc/room-destroyed, muc/occupant-joined, muc/occupant-left
//   auth/failed        auth/failed
import type { XmppModule } from '../../core/modules.ts';
import { eventCommands } from './cli.ts';
import { messageFields, presenceFields, pushEvent } from './events.ts';
import { EVENTS_KEY, clearEvents, eventsWriteCheck, listDeadLetters, setEvents, showEvents } from './operations.ts';
import { EventPushRuntime, eventPushOf, runtimes } from './runtime.ts';
import { type EventKind, type EventsSettings, EventsSettingsSchema } from './schema.ts';
import { DEAD_PREFIX, RETRY_PREFIX } from '../../webhooks/store.ts';
import { deletePartition } from '../../store/partition.ts';

export { eventPushOf };
export type { EventPushRuntime };

const withResources = (fields: Record<string, unknown> | undefined, resources: string[]) => fields && { ...fields, resources };

export const eventPush: XmppModule<EventPushRuntime> = {
  name: 'event-push',
  settings: { key: EVENTS_KEY, schema: EventsSettingsSchema },
  storage: { partitions: [RETRY_PREFIX, DEAD_PREFIX] },
  cli: eventCommands,
  install(ctx) {
    const server = ctx.server;
    const rt = new EventPushRuntime(server, server.clock, ctx.log);
    runtimes.set(server, rt);
    const settingsOf = async (tenant: string) => ctx.settingsOf<EventsSettings>(await server.tenants.get(tenant));

    /** Buffers an event if the tenant pushes this kind (the tenant item is cached: no read on the stanza path). */
    const emit = async (tenant: string, kind: EventKind, fields: Record<string, unknown> | undefined | ((s: EventsSettings) => Record<string, unknown> | undefined)) => {
      try {
        const settings = await settingsOf(tenant);
        if (!settings?.kinds.includes(kind)) return;
        const f = typeof fields === 'function' ? fields(settings) : fields;
        if (f) rt.add(pushEvent(kind, tenant, server.clock.now(), f));
      } catch (err) {
        // An event is never worth a failed stanza: the tenant item could not be read, the event is lost.
        rt.stats.failed++;
        ctx.log.warn({ tenant, kind, err: (err as Error).message, eventsFailed: rt.stats.failed }, 'event not recorded');
      }
    };

    ctx.hook('stanza/in', async ({ origin, stanza }) => {
      const from = origin.jid.toString();
      if (stanza.name === 'message' && stanza.attrs.to) {
        await emit(origin.jid.domain, 'message/sent', (s) => messageFields(stanza, from, stanza.attrs.to, s.includeBody ?? false));
      } else if (stanza.name === 'presence') {
        await emit(origin.jid.domain, 'presence/changed', presenceFields(stanza, from));
      }
      return undefined;
    });
    ctx.hook('message/delivered', async ({ origin, stanza, to, recipients }) => {
      const from = origin?.jid.toString() ?? stanza.attrs.from;
      const bare = to.bare().toString();
      if (from) await emit(to.domain, 'message/delivered', (s) => withResources(messageFields(stanza, from, to.toString(), s.includeBody ?? false), recipients.map((r) => `${bare}/${r.resource}`)));
      return undefined;
    });
    ctx.hook('message/stored', async ({ origin, stanza, to }) => {
      const from = origin?.jid.toString() ?? stanza.attrs.from;
      if (from) await emit(to.domain, 'message/stored', (s) => messageFields(stanza, from, to.toString(), s.includeBody ?? false));
      return undefined;
    });
    ctx.hook('session-bound', async ({ origin }) => {
      await emit(origin.jid.domain, 'session/opened', { jid: origin.jid.toString() });
      return undefined;
    });
    // First of the session-ended handlers: the implicit unavailable comes before the rooms it leaves.
    ctx.hook(
      'session-ended',
      async ({ session, entry }) => {
        if (entry.available) await emit(session.jid.domain, 'presence/changed', { jid: session.jid.toString(), available: false });
        return undefined;
      },
      1000,
    );
    // Last: the session closes after everything it set off.
    ctx.hook(
      'session-ended',
      async ({ session, reason }) => {
        await emit(session.jid.domain, 'session/closed', { jid: session.jid.toString(), reason });
        return undefined;
      },
      -1000,
    );
    const room = (kind: EventKind) => async (e: { tenant: string; room: string; jid?: string; nick?: string; reason?: string }) => {
      await emit(e.tenant, kind, { room: e.room, jid: e.jid, nick: e.nick, reason: e.reason });
      return undefined;
    };
    ctx.hook('muc/room-created', room('room/created'));
    ctx.hook('muc/room-destroyed', room('room/destroyed'));
    ctx.hook('muc/occupant-joined', room('room/joined'));
    ctx.hook('muc/occupant-left', room('room/left'));
    ctx.hook('auth/failed', async (e) => {
      const settings = ctx.settingsOf<EventsSettings>(e.tenantItem);
      if (settings?.kinds.includes('auth/failed')) {
        rt.add(pushEvent('auth/failed', e.tenant, server.clock.now(), { account: e.account ? `${e.account}@${e.tenant}` : undefined, mechanism: e.mechanism, sourceIp: e.sourceIp }));
      }
      return undefined;
    });

    ctx.addTenantWriteCheck((tenant) => eventsWriteCheck(rt, tenant));
    ctx.addFlushStep(() => rt.flush(settingsOf));
    ctx.addSweepStep(() => rt.retry(settingsOf));
    // A purged tenant's waiting retries and dead letters go with it.
    ctx.addPurgeStep(async (db, table, domain) => {
      await deletePartition(db, table, `${RETRY_PREFIX}#${domain}`);
      await deletePartition(db, table, `${DEAD_PREFIX}#${domain}`);
    });

    ctx.addAdminRoute({ method: 'GET', pattern: '/tenants/{domain}/events', handler: async (_r, p) => ({ status: 200, body: { events: await showEvents(server, p.domain) } }) });
    ctx.addAdminRoute({ method: 'PUT', pattern: '/tenants/{domain}/events', handler: async (_r, p, json) => ({ status: 200, body: { events: await setEvents(server, p.domain, json()) } }) });
    ctx.addAdminRoute({
      method: 'DELETE',
      pattern: '/tenants/{domain}/events',
      handler: async (_r, p) => {
        await clearEvents(server, p.domain);
        return { status: 204 };
      },
    });
    ctx.addAdminRoute({
      method: 'GET',
      pattern: '/tenants/{domain}/dead-letters',
      handler: async (r, p) => {
        const limit = r.query.get('limit');
        return { status: 200, body: await listDeadLetters(server, rt, p.domain, { limit: limit === null ? undefined : Number(limit), after: r.query.get('after') ?? undefined }) };
      },
    });
    return rt;
  },
};
