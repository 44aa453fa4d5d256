// The MUC service of each tenant (XEP-0045 §6.1): a component at <subdomain>.<tenant>, its settings
// from the tenant item (the `muc` block, settings.ts), room addresses, and the per-stanza context
// every MUC handler receives. Nothing here outlives an invocation except the immutable wiring.
import { Hooks } from '../../core/hooks.ts';
import type { Session } from '../../core/events.ts';
import type { Component, ModuleStore, SessionData } from '../../core/modules.ts';
import type { XmppServer } from '../../core/server.ts';
import type { Element } from '../../xmpp/xml.ts';
import { type Affiliation, type RoomConfig, type RoomRecord, RoomStore } from './store.ts';
import { occupantId, occupantIdKey } from './occupant-id.ts';

/** The rooms a connection is in, kept in its session entry: marker (see sessionMarker) → occupant JID. */
export type MucSessionData = SessionData<Record<string, string>>;
import type { TenantRecord } from '../../store/tenants.ts';
import type { MucSettings } from './settings.ts';

/** The most occupants a room can hold: each carries its presence (up to 1 KB) in the one 400 KB room item. */
export const MAX_ROOM_OCCUPANTS = 500;

export const DEFAULT_SUBDOMAIN = 'conference';

export interface MucOptions {
  subdomain: string;
  name: string;
  roomCreation: 'anyone' | 'admins';
  maxOccupants: number;
  historyLength: number;
  historyRetentionMs: number;
  enforceReservedNicks: boolean;
  /** limits.roomsPerUser of the tenant. */
  roomsPerUser?: number;
}

/** The tenant's MUC settings with defaults filled in; undefined if the tenant has no MUC service. */
export function mucOptions(tenant: TenantRecord | undefined): MucOptions | undefined {
  // The TenantStore checked the block against MucSettingsSchema when it read the item.
  const m = (tenant?.muc ?? {}) as MucSettings;
  if (!tenant?.enabled || m.enabled === false) return undefined;
  const positive = (n: number | undefined, d: number) => (typeof n === 'number' && Number.isInteger(n) && n > 0 ? n : d);
  return {
    subdomain: (m.subdomain || DEFAULT_SUBDOMAIN).toLowerCase(),
    name: m.name || 'Chatrooms',
    roomCreation: m.roomCreation === 'admins' ? 'admins' : 'anyone',
    // One item holds a room's occupants with their connections and presence (at most about 700 bytes
    // each, see MAX_PRESENCE_CHARS): 500 stays well inside DynamoDB's 400 KB.
    maxOccupants: Math.min(positive(m.maxOccupants, 200), MAX_ROOM_OCCUPANTS),
    historyLength: Math.min(positive(m.historyLength, 50), 200),
    historyRetentionMs: positive(m.historyRetentionSeconds, 7 * 24 * 3600) * 1000,
    enforceReservedNicks: !!m.enforceReservedNicks,
    roomsPerUser: tenant.limits?.roomsPerUser,
  };
}

/** A new room's configuration (XEP-0045 §10.1.3 leaves defaults to the service; these follow Prosody's). */
export function defaultRoomConfig(opts: MucOptions): RoomConfig {
  return {
    name: '',
    description: '',
    lang: '',
    persistent: false,
    public: true,
    passwordProtected: false,
    password: '',
    membersOnly: false,
    moderated: false,
    maxUsers: 0,
    whois: 'moderators',
    changeSubject: false,
    allowInvites: false,
    allowPm: 'anyone',
    logging: false,
    historyFetch: Math.min(20, opts.historyLength),
  };
}

/** What every MUC handler works with: the server, the service and the tenant it belongs to. */
export interface Ctx {
  server: XmppServer;
  muc: MucService;
  tenant: string;
  /** The service's domain, e.g. conference.example.com. */
  service: string;
  opts: MucOptions;
  /** XEP-0421: the occupant id of a user (real bare JID) in a room of this service (occupant-id.ts). */
  occupantId(roomId: string, bare: string): string;
}

/** muc-occupant-pre-join: hooks refuse an entry by throwing a StanzaError (Prosody's event of that name). */
export interface PreJoinEvent {
  ctx: Ctx;
  room: RoomRecord;
  origin: Session;
  bare: string;
  nick: string;
  affiliation: Affiliation;
  /** The <x xmlns='http://jabber.org/protocol/muc'/> of the join, if any. */
  mucX?: Element;
  created: boolean;
}

/** muc-occupant-gone: a post to an occupant's connection found it gone (410); occupants.ts removes it. */
export interface GoneEvent {
  ctx: Ctx;
  roomId: string;
  nick: string;
  jid: string;
  connectionId: string;
}

export class MucService {
  readonly rooms: RoomStore;
  /** The MUC's own events, which the room-type features hook (see room-types.ts). */
  readonly preJoin = new Hooks<PreJoinEvent>();
  readonly gone = new Hooks<GoneEvent>();

  readonly component: Component = {
    name: 'muc',
    // conference.example.com belongs to example.com if that tenant's service has that subdomain.
    tenantOf: async (server, domain) => {
      const dot = domain.indexOf('.');
      if (dot <= 0) return undefined;
      const tenant = domain.slice(dot + 1);
      const opts = mucOptions(await server.tenants.get(tenant));
      return opts && opts.subdomain === domain.slice(0, dot) ? tenant : undefined;
    },
    // Its address even while the tenant is disabled: enabling the tenant brings the service back.
    domainsOf: (tenant) => {
      const opts = mucOptions({ ...tenant, enabled: true });
      return opts ? [`${opts.subdomain}.${tenant.domain}`] : [];
    },
  };

  constructor(
    readonly server: XmppServer,
    store: ModuleStore,
    readonly sessionData: MucSessionData,
  ) {
    this.rooms = new RoomStore(store.db, store.table);
  }

  /** The context for a tenant's service; undefined if it has none. */
  async context(tenant: string): Promise<Ctx | undefined> {
    const opts = mucOptions(await this.server.tenants.get(tenant));
    if (!opts) return undefined;
    const service = `${opts.subdomain}.${tenant}`;
    // The deployment's secret is read once per container (the first room operation), not per stanza.
    const key = occupantIdKey(await this.server.serverSecret.get());
    return { server: this.server, muc: this, tenant, service, opts, occupantId: (roomId, bare) => occupantId(key, `${roomId}@${service}`, bare) };
  }

  /** The context for a service domain (conference.example.com). */
  async contextOfService(domain: string): Promise<Ctx | undefined> {
    const tenant = await this.component.tenantOf(this.server, domain);
    return tenant ? this.context(tenant) : undefined;
  }
}

const services = new WeakMap<XmppServer, MucService>();

export function registerMuc(server: XmppServer, store: ModuleStore, sessionData: MucSessionData): MucService {
  const muc = new MucService(server, store, sessionData);
  services.set(server, muc);
  return muc;
}

/** The MUC service installed on a server (for the admin API and the CLI). */
export function mucOf(server: XmppServer): MucService | undefined {
  return services.get(server);
}

export const roomJid = (ctx: Ctx, id: string) => `${id}@${ctx.service}`;

/** Tells other modules of a room's life (the core's "muc/…" events, docs/modules.md "Hooks"), after the write. */
export function roomEvent(ctx: Ctx, name: 'muc/room-created' | 'muc/room-destroyed' | 'muc/occupant-joined' | 'muc/occupant-left', id: string, fields: { jid?: string; nick?: string; reason?: string } = {}): Promise<void> {
  return ctx.server.registry.events.fireAll(name, { server: ctx.server, tenant: ctx.tenant, room: roomJid(ctx, id), ...fields });
}
export const occupantJid = (ctx: Ctx, id: string, nick: string) => `${id}@${ctx.service}/${nick}`;
/** An occupant as the sender of a room's stanza: its occupant JID and occupant id (XEP-0421 §4). */
export const senderOf = (ctx: Ctx, id: string, occupant: { nick: string; bare: string }) => ({ jid: occupantJid(ctx, id, occupant.nick), occupantId: ctx.occupantId(id, occupant.bare) });
