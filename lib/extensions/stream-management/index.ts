// XEP-0198 Stream Management (urn:xmpp:sm:3) for WebSocket sessions: <enable/> (§3), acks counted
// both ways with the wrap at 2^32 (§4), resumption on a new connection (§5), and a session kept,
// detached, for the resumption time when its socket goes without a </close>. What each step costs
// and how the pieces fit is in docs/architecture.md "Stream management"; the counts and the queue
// are in store.ts, the arithmetic in counters.ts.
//
// The stream state (id, resume, max) is kept where each sender reads it for free: in the connection
// item (Session.streamData, loaded with the bound session: counting the client's stanzas and replies
// to it), in the session entry (entry data: stanzas other sessions send to it), and, copied by MUC,
// in the occupant records of its rooms (OutboundTarget.streamData: a room's posts).
import { randomBytes } from 'node:crypto';
import { type Static, Type } from '@sinclair/typebox';
import type { Session } from '../../core/events.ts';
import type { XmppModule } from '../../core/modules.ts';
import type { XmppServer } from '../../core/server.ts';
import { StreamError } from '../../xmpp/errors.ts';
import { makeJID, tryParseJID } from '../../xmpp/jid.ts';
import { NS } from '../../xmpp/namespaces.ts';
import { type Element, parseFrame, xml } from '../../xmpp/xml.ts';
import type { ConnectionRecord } from '../../store/connections.ts';
import { ackRequestDue, parseH, unackedAfter, unwrapAck, wire } from './counters.ts';
import { SM_PREFIX, type SmItem, SmStore } from './store.ts';

export const NS_SM = 'urn:xmpp:sm:3';
const NS_STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas';

export const SmSettingsSchema = Type.Object(
  {
    resumptionSeconds: Type.Optional(
      Type.Integer({ minimum: 0, maximum: 3600, description: 'How long a session whose connection dropped is kept for resumption (the `max` of <enabled/>). Default 300; 0: no resumption.' }),
    ),
    ackEvery: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, description: 'The server asks for an ack (<r/>) with every this many unacknowledged stanzas. Default 10.' })),
  },
  { additionalProperties: false },
);
export type SmSettings = Static<typeof SmSettingsSchema>;

export const DEFAULT_RESUMPTION_SECONDS = 300;
export const DEFAULT_ACK_EVERY = 10;
/**
 * <enable/> is accepted within this time of binding (clients enable right after it), and a session
 * that has not enabled by twice this time is settled as unmanaged: only then may processes cache it
 * (docs/architecture.md "Stream management", "Who counts").
 */
export const ENABLE_WINDOW_MS = 60_000;
export const SETTLED_UNMANAGED_MS = 2 * ENABLE_WINDOW_MS;
/** Rounds of "post what came, then release if nothing more did" a resume tries before it releases anyway. */
const RELEASE_ROUNDS = 5;

/** The stream state, in Session.streamData.sm. */
export interface SmStream {
  id: string;
  resume: boolean;
  max: number;
}
/** The session entry's copy: the id. */
type SmEntryData = { id: string };

const stores = new WeakMap<XmppServer, SmStore>();
/** The stream management store of a server (tests read the counts and the queue). */
export function smStoreOf(server: XmppServer): SmStore {
  const store = stores.get(server);
  if (!store) throw new Error('the stream-management module is not installed on this server');
  return store;
}

const sm = (name: string, attrs: Record<string, string | number> = {}, ...children: Element[]) =>
  xml(name, { xmlns: NS_SM, ...Object.fromEntries(Object.entries(attrs).map(([k, v]) => [k, String(v)])) }, ...children);
const failed = (condition: string, h?: number) => sm('failed', h === undefined ? {} : { h }, xml(condition, { xmlns: NS_STANZAS }));

/** Messages that would have gone to offline storage had the session been gone (RFC 6121 §8.5.2.2). */
function keptForOffline(stanza: Element): boolean {
  const type = stanza.attrs.type ?? 'normal';
  return stanza.name === 'message' && (type === 'normal' || type === 'chat');
}

export const streamManagement: XmppModule<SmStore> = {
  name: 'sm',
  enabled: 'optional',
  sessionData: true,
  settings: { key: 'sm', schema: SmSettingsSchema },
  storage: { accountPartitions: [SM_PREFIX] },
  install(ctx) {
    const store = new SmStore(ctx.openStore());
    stores.set(ctx.server, store);
    const data = ctx.sessionData<SmEntryData>();
    const settings = async (domain: string) => ctx.settingsOf<SmSettings>(await ctx.server.tenants.get(domain)) ?? {};
    const streamOf = (session: Pick<Session, 'streamData'> | undefined) => session?.streamData?.sm as SmStream | undefined;

    // §3: offered after authentication (binding comes next, or a resume instead of it).
    ctx.addStreamFeature({ stage: 'post-auth', element: () => sm('sm') });

    // Whether a session is managed is read with it, so no process may cache one whose <enable/> may
    // still come: until it enabled, or its window closed, every frame reads the connection item.
    ctx.addSessionCacheCheck(
      async (session, now) =>
        !!streamOf(session) || now - (session.boundAt ?? 0) >= SETTLED_UNMANAGED_MS || !(await ctx.enabledFor(session.jid.domain)),
    );

    // §3: enabling, once bound.
    ctx.hook(`stream-element/${NS_SM}:enable`, async ({ server, origin, stanza }) => {
      // Enabled already, or too late: a process may have cached the session as unmanaged (the
      // window is half the time after which they may; see ENABLE_WINDOW_MS).
      if (streamOf(origin) || origin.boundAt === undefined || server.clock.now() - origin.boundAt > ENABLE_WINDOW_MS) {
        await server.send(origin, failed('unexpected-request'));
        return true;
      }
      const wanted = stanza.attrs.resume === 'true' || stanza.attrs.resume === '1';
      const granted = (await settings(origin.jid.domain)).resumptionSeconds ?? DEFAULT_RESUMPTION_SECONDS;
      const asked = parseH(stanza.attrs.max);
      const max = asked ? Math.min(asked, granted) : granted;
      const resume = wanted && max > 0;
      const id = randomBytes(12).toString('base64url');
      const bare = origin.jid.bare().toString();
      await store.create({ bare, id, resource: origin.jid.resource, connectionId: origin.connectionId, endpoint: origin.endpoint, resume, max, expiresAt: origin.expiresAt + max * 1000 });
      await server.setStreamData(origin, 'sm', { id, resume, max } satisfies SmStream);
      await server.send(origin, sm('enabled', resume ? { id, resume: 'true', max } : { id }));
      // From here stanzas that other sessions send to this one are counted and kept too, and rooms
      // it is in already copy the id to their occupant records.
      const entry = await data.put(origin, 'id', id);
      if (entry) await server.registry.events.fireAll('stream-data', { server, session: origin, entry });
      return true;
    });

    // §3: <enable/> before binding is refused; <resume/> takes the place of binding (§5).
    ctx.addUnboundElement(`${NS_SM}:enable`, async (server, rec) => {
      await server.send({ connectionId: rec.id, endpoint: rec.endpoint }, failed('unexpected-request'));
    });
    ctx.addUnboundElement(`${NS_SM}:resume`, (server, rec, el) => resumeSession(server, store, rec, el));

    // §4: the client's request: answered with the count of stanzas handled from it.
    ctx.hook(`stream-element/${NS_SM}:r`, async ({ server, origin }) => {
      const stream = streamOf(origin);
      if (!stream) return undefined; // not enabled: unsupported-stanza-type (§4)
      const item = await store.get(origin.jid.bare().toString(), stream.id, server.clock.now());
      if (item) await server.send(origin, sm('a', { h: wire(item.in) }));
      return true;
    });

    // §4: the client's ack: the acknowledged stanzas leave the queue.
    ctx.hook(`stream-element/${NS_SM}:a`, async ({ server, origin, stanza }) => {
      const stream = streamOf(origin);
      if (!stream) return undefined;
      const bare = origin.jid.bare().toString();
      const item = await store.get(bare, stream.id, server.clock.now());
      if (!item) return true;
      const h = parseH(stanza.attrs.h);
      const abs = h === undefined ? 'too-high' : unwrapAck(h, item.acked, item.out);
      if (abs === 'too-high') {
        await tooHigh(server, origin, h ?? -1, item.out);
        return true;
      }
      await store.ack(bare, stream.id, item.acked, abs);
      return true;
    });

    // §4: every stanza the client sends is counted (one UpdateItem; README "Stream management"). A
    // stanza of a connection the session has left by a resume (a frame already on its way when the
    // resume read the count) is not counted and not routed: <resumed h/> left it out, so the client
    // sends it again (§5), and it is handled once.
    ctx.hook('stanza/in', async ({ origin }) => {
      const stream = streamOf(origin);
      if (!stream) return undefined;
      const counted = await store.countInbound(origin.jid.bare().toString(), stream.id, origin.connectionId);
      if (counted !== 'moved') return undefined;
      ctx.log.info({ connectionId: origin.connectionId, jid: origin.jid.toString() }, 'stanza of a connection resumed elsewhere: dropped, the client resends it');
      return true;
    });

    // §4 and API Gateway's cuts: with each liveness check (every 10 minutes, so also within 10
    // minutes before the 2-hour cut and before the idle timeout) the server asks for an ack, so the
    // client knows what arrived before it has to resume (README "Stream management").
    ctx.hook('connection-check', async ({ server, session }) => {
      if (streamOf(session)) await server.send(session, sm('r'));
      return undefined;
    });

    // Every stanza on its way to a stream-managed session is counted and kept until acknowledged;
    // a detached session's are only kept. Lowest priority: what another filter drops is not counted.
    // Which copy says whether the target is managed: the session entry the sender read, else the
    // stream data the sender kept with the connection (a room's occupant record), else the session
    // cached here (a reply to the client's own request: cached only once settled).
    ctx.filterOutbound(async (stanza, target) => {
      const id = target.data
        ? (target.data.sm as SmEntryData | undefined)?.id
        : streamOf(target.streamData ? target : ctx.server.cachedSession(target.connectionId))?.id;
      if (!id) return stanza;
      const cached = ctx.server.cachedSession(target.connectionId);
      const account = cached?.jid ?? tryParseJID(stanza.attrs.to);
      if (!account?.local) return stanza;
      const bare = account.bare().toString();
      const counted = await store.enqueue(bare, id, stanza.toString());
      if (!counted) return stanza;
      if (counted.held) return null;
      const every = (await settings(account.domain)).ackEvery ?? DEFAULT_ACK_EVERY;
      // §4: the server's own request, batched: with every N-th unacknowledged stanza.
      if (ackRequestDue(counted.out, counted.acked, every)) await ctx.server.send(target, sm('r'));
      return stanza;
    }, -1000);

    // A stanza for a gone connection that the filter above could not place (the sender knew the
    // connection only by id: a room's fan-out): if it is a managed session's, detached or resumed
    // elsewhere, it is counted and kept, or posted to the new connection. One read, on this path only.
    ctx.hook('outbound/gone', async ({ server, target, stanza, to }) => {
      if (!to?.local || !to.resource) return undefined;
      const bare = to.bare().toString();
      const entry = (await server.sessions.list(bare, server.clock.now())).find((e) => e.resource === to.resource);
      const id = entry && data.of(entry).id;
      if (!entry || !id) return undefined;
      const counted = await store.enqueue(bare, id, stanza.toString());
      if (!counted) return undefined;
      // Held (detached, or a resume is resending), or still on that connection (about to end: its
      // queue then goes where an offline user's messages go): kept.
      if (counted.held || entry.connectionId === target.connectionId) return true;
      return server.send({ connectionId: entry.connectionId, endpoint: entry.endpoint }, stanza, { unfiltered: true });
    });

    // The socket went without a </close>: a session that asked for resumption is kept (§5).
    ctx.hook('session-detach', async ({ server, session }) => {
      const stream = streamOf(session);
      if (!stream?.resume) return undefined;
      const until = server.clock.now() + stream.max * 1000;
      const bare = session.jid.bare().toString();
      if (!(await store.detach(bare, stream.id, session.connectionId, until, server.connections.region))) return undefined;
      // The entry stays, available: contacts see no change. It lives until the deadline; stanzas
      // for it are kept, not posted (the item's `held`).
      await server.sessions.update(bare, session.jid.resource, session.connectionId, { expiresAt: until });
      return true;
    });

    // The session ended (a </close>, a replacement, the resumption time over): what the client never
    // acknowledged is not lost: its messages go where they would have gone had it been offline.
    ctx.hook('session-ended', async ({ server, session, entry }) => {
      const id = data.of(entry).id;
      if (!id) return undefined;
      const item = await store.remove(session.jid.bare().toString(), id);
      if (!item) return undefined;
      await flushToOffline(server, session, item);
      return undefined;
    });

    // The sweeper ends detached sessions whose resumption time is over (locally: the local server's timer).
    ctx.addSweepStep(async (server, now) => {
      for (const item of await store.dueDetached(server.connections.region, now)) {
        const [local, domain] = item.bare.split('@');
        await server.endDetachedSession(makeJID(local, domain, item.resource), item.connectionId, 'resumption time over');
        // Ended elsewhere meanwhile, or resumed: nothing more to do (the item is gone or attached).
      }
    });
    return store;
  },
};

/** §4: an ack for stanzas never sent: the stream error with <handled-count-too-high/>. */
async function tooHigh(server: XmppServer, origin: Session, h: number, sent: number): Promise<void> {
  const el = new StreamError('undefined-condition', 'acknowledged more stanzas than were sent').toElement();
  el.cnode(sm('handled-count-too-high', { h, 'send-count': wire(sent) }));
  await server.send(origin, el);
  await server.endConnection(origin.connectionId, 'handled-count-too-high', { closeStream: true, endpoint: origin.endpoint });
}

/** Unacknowledged messages of an ended session to the account's offline path (RFC 6121 §8.5.2.2). */
async function flushToOffline(server: XmppServer, session: Session, item: SmItem): Promise<void> {
  for (const text of item.q) {
    const stanza = parseFrame(text);
    if (!keptForOffline(stanza)) continue;
    await server.registry.events.fire('message/undeliverable', { server, stanza, to: session.jid.bare() });
  }
}

/**
 * §5: <resume previd h/> on an authenticated, unbound stream: the session moves to this connection.
 * The id must be one of the authenticated account's (the item is looked up in its partition), and
 * the session must still be there. Then <resumed/>, and every stanza the client had not acknowledged,
 * in order, posted as kept (they keep their numbers).
 */
async function resumeSession(server: XmppServer, store: SmStore, rec: ConnectionRecord, el: Element): Promise<void> {
  const target = { connectionId: rec.id, endpoint: rec.endpoint };
  const bare = `${rec.username}@${rec.domain}`;
  const previd = el.attrs.previd as string | undefined;
  const h = parseH(el.attrs.h);
  const now = server.clock.now();
  const item = previd && h !== undefined ? await store.get(bare, previd, now) : undefined;
  if (!item || !item.resume || !previd || h === undefined) {
    await server.send(target, failed('item-not-found'));
    return;
  }
  const abs = unwrapAck(h, item.acked, item.out);
  if (abs === 'too-high') {
    await server.send(target, failed('unexpected-request', wire(item.in)));
    return;
  }
  const entry = (await server.sessions.list(bare, now)).find((s) => s.resource === item.resource && s.connectionId === item.connectionId);
  const stream: SmStream = { id: previd, resume: item.resume, max: item.max };
  // The session entry and the stream item move to this connection only if nobody moved or ended them first.
  const taken =
    !!entry &&
    (await store.attach(bare, previd, item.connectionId, { connectionId: rec.id, endpoint: rec.endpoint, expiresAt: rec.expiresAt + item.max * 1000 })) &&
    (await server.sessions.update(bare, item.resource, item.connectionId, {
      connectionId: rec.id,
      endpoint: rec.endpoint,
      expiresAt: rec.expiresAt,
      data: { ...entry.data, sm: { id: previd } },
    }));
  if (!taken) {
    await server.send(target, failed('item-not-found', wire(item.in)));
    return;
  }
  await server.connections.update(rec.id, { stage: 'bound', resource: item.resource, sasl: undefined, streamData: { sm: stream } });
  const session = server.remember({ ...target, jid: makeJID(rec.username!, rec.domain!, item.resource), expiresAt: rec.expiresAt, streamData: { sm: stream } });
  server.log.info({ connectionId: rec.id, previous: item.connectionId, jid: session.jid.toString() }, 'session resumed');
  // The old connection is fenced off: if still open (the client noticed the drop first) it is
  // closed; its tombstone is deleted, so frames of it still queued are dropped, not counted after
  // the count below is read: the client resends what the count leaves out (docs/architecture.md
  // "Stream management").
  const old = await server.connections.get(item.connectionId);
  if (old?.stage === 'gone') await server.connections.remove(old.id);
  else if (old) await server.endConnection(old.id, 'resumed elsewhere', { closeStream: true, endpoint: old.endpoint });
  const current = (await store.get(bare, previd, server.clock.now())) ?? item;
  await server.send(target, sm('resumed', { previd, h: wire(current.in) }));
  const acked = unwrapAck(h, current.acked, current.out);
  const upTo = acked === 'too-high' ? current.acked : acked;
  await store.ack(bare, previd, current.acked, upTo);
  for (const text of unackedAfter(current.q, current.acked, upTo)) if (!(await server.send(session, text, { unfiltered: true }))) return;
  // Senders kept what they sent meanwhile; from the release on they post themselves. The release
  // waits until everything counted before it is posted here (it is conditional on the count), so a
  // sender's post cannot overtake a kept stanza; under a burst that outlasts a few rounds, the last
  // round releases whatever came and posts it (docs/architecture.md "Stream management", "Resume").
  let posted = current.out;
  for (let round = 1; ; round++) {
    const released = await store.release(bare, previd, round < RELEASE_ROUNDS ? posted : undefined);
    if (released === undefined) return;
    const now = released === 'more' ? await store.get(bare, previd, server.clock.now()) : released;
    if (!now) return;
    for (const text of now.q.slice(posted - now.acked)) if (!(await server.send(session, text, { unfiltered: true }))) return;
    posted = now.out;
    if (released !== 'more') break;
  }
  await server.registry.events.fireAll('session-resumed', { server, session, previous: { connectionId: item.connectionId, endpoint: item.endpoint }, entry });
}
