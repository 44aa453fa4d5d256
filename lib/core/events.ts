// The events the core fires and the shapes handlers receive (docs/modules.md lists them all). Kept
// apart from server.ts so that extensions and core files can name them without importing the
// server's implementation.
import type { JID } from '../xmpp/jid.ts';
import type { Element } from '../xmpp/xml.ts';
import type { SessionEntry } from '../store/sessions.ts';
import type { ConnectionTarget } from './management-api.ts';
import type { TenantRecord } from '../store/tenants.ts';
import type { XmppServer } from './server.ts';

/** A bound session as handlers see it: where it is and who it is. */
export interface Session extends ConnectionTarget {
  jid: JID;
  expiresAt: number;
  /** When it bound, by the server's clock (from the connection item; absent where a session is built without it). */
  boundAt?: number;
  /**
   * Modules' per-stream state, kept in the connection item (server.setStreamData) and loaded with
   * the bound session, so a module knows it on every frame without a read (stream management).
   */
  streamData?: Record<string, unknown>;
  /**
   * The tenant the session acts for when its JID is not at the tenant's own domain (an XEP-0114
   * component at bot.<tenant>); absent for clients, whose tenant is their JID's domain.
   */
  tenant?: string;
}

export type TargetKind = 'host' | 'self' | 'bare' | 'full' | 'component';

export interface StanzaEvent {
  server: XmppServer;
  origin: Session;
  stanza: Element;
  /** The addressee, already validated; for 'self' the sender's bare JID, for 'host' the domain. */
  to: JID;
  kind: TargetKind;
  /** For kind 'component': the tenant that owns the component's address. */
  tenant?: string;
  /** For kind 'component': the name of the component that serves the address (`<kind>/component/<name>`). */
  component?: string;
}

export interface IqEvent extends StanzaEvent {
  /** The IQ's one payload element. */
  child: Element;
  /**
   * Work that must follow the reply (RFC 6121 §2.6.3: roster pushes after the empty result): run in
   * order once a result has been posted, not after an error. Absent where an IQ is not answered by the router.
   */
  afterReply?: (then: () => Promise<void>) => void;
}

/** "session-bound": resource binding succeeded (RFC 6120 §7). */
export interface SessionEvent {
  server: XmppServer;
  origin: Session;
}

/** "session-ended": every bound session that ends, whatever the reason, with its last session entry. */
export interface SessionEndedEvent {
  server: XmppServer;
  session: Session;
  entry: SessionEntry;
  reason: string;
}

/**
 * "unavailable": a session broadcasts unavailable presence (RFC 6121 §4.5.1), with its session entry
 * as read once by the presence extension, before the entry is changed.
 */
export interface UnavailableEvent {
  server: XmppServer;
  origin: Session;
  entry: SessionEntry;
  /** The client's unavailable presence (its <status/> goes along). */
  stanza: Element;
}

/** "presence/initial": a session became available (RFC 6121 §4.2), after probes were answered. */
export interface InitialPresenceEvent {
  server: XmppServer;
  origin: Session;
  priority: number;
  /** The initial presence as broadcast (its XEP-0115 <c/> says what the client wants). */
  stanza: Element;
  /** The contacts whose presence the user receives (RFC 6121 to/both), from the roster read for the broadcast. */
  publishers: string[];
}

/** "stanza/in": every stanza a bound session sends, before it is routed (XEP-0198 counts these). */
export interface InboundEvent {
  server: XmppServer;
  origin: Session;
  stanza: Element;
}

/**
 * "message/delivered": a message went to these sessions of its addressee's account (RFC 6121 §8.5);
 * `recipients` are the session entries that took it, `sessions` all live ones of the account.
 */
export interface DeliveredEvent {
  server: XmppServer;
  /** The sending session; none when the server sends (e.g. a MUC invitation). */
  origin?: Session;
  stanza: Element;
  to: JID;
  recipients: SessionEntry[];
  sessions: SessionEntry[];
}

/**
 * "stanza/deliver": a message or an IQ to a local account is about to be delivered (RFC 6121 §8.5),
 * after the recipient's sessions were read and before anything is posted. A handler that returns
 * anything but undefined stops the delivery (nothing is posted, no error is owed); one that throws a
 * StanzaError stops it and the sender gets that error. `sessions` are all live ones of the account
 * (empty when nobody is online), with their module data.
 */
export interface DeliverEvent {
  server: XmppServer;
  /** The sending session; none when the server sends (e.g. a MUC invitation). */
  origin?: Session;
  stanza: Element;
  to: JID;
  sessions: SessionEntry[];
}

/**
 * "message/undeliverable": a message to an existing local account that no session took (RFC 6121
 * §8.5.2.2, §8.5.3.2). A handler that keeps it (offline storage, the archive) returns true; if none
 * does, the sender gets service-unavailable.
 */
export interface UndeliverableEvent {
  server: XmppServer;
  origin?: Session;
  stanza: Element;
  to: JID;
}

/**
 * "message/every-resource": a message of type normal to a bare JID with available resources, before
 * its recipients are chosen. RFC 6121 §8.5.2.1.1 lets a server deliver it to the highest-priority
 * resource(s) (what the router does) or to every available resource of non-negative priority (what it
 * does for chat); a handler that returns anything but undefined chooses the latter for this message
 * (XEP-0353 call invitations ring every device). Fired with no I/O done; handlers should do none.
 */
export interface EveryResourceEvent {
  server: XmppServer;
  origin?: Session;
  stanza: Element;
  to: JID;
}

/**
 * A SASL authentication attempt (RFC 6120 §6) as the throttling of logins sees it: who tries, from
 * where. `account` is the localpart the client names, whether or not such an account exists.
 */
export interface AuthAttemptEvent {
  server: XmppServer;
  /** The tenant domain. */
  tenant: string;
  tenantItem: TenantRecord | undefined;
  connectionId: string;
  /** The client's address as the gateway saw it (API Gateway's identity.sourceIp). */
  sourceIp?: string;
  mechanism: string;
  account?: string;
}

/**
 * "auth/check": fired once the account is known and before its credentials are checked. A handler
 * that refuses returns the reason, sent with <temporary-auth-failure/> (RFC 6120 §6.5.12).
 */
export interface AuthRefusal {
  text: string;
}

/** "auth/failed": credentials were wrong (<not-authorized/>, RFC 6120 §6.5.10). */
export type AuthFailedEvent = AuthAttemptEvent;

/**
 * "session-detach": a bound session's socket is gone without a </close> (410, $disconnect, the
 * sweeper). A handler that returns true keeps the session (its entry stays, nobody is told it
 * ended: XEP-0198 resumption); otherwise it ends as usual.
 */
export interface SessionDetachEvent {
  server: XmppServer;
  session: Session;
}

/**
 * "session-resumed": a session moved to a new connection (XEP-0198 resumption); modules that keep
 * connection ids of their own (MUC occupants) update them here.
 */
export interface SessionResumedEvent {
  server: XmppServer;
  session: Session;
  previous: ConnectionTarget;
  /** The session entry as it was before the move (its modules' data: the rooms it is in). */
  entry: SessionEntry;
}

/**
 * "stream-data": a module changed a session's stream data (XEP-0198 <enable/>), with the session
 * entry as the module's own write of it left it; modules that keep a copy with connections of their
 * own (MUC occupants: OutboundTarget.streamData) update it here.
 */
export interface StreamDataEvent {
  server: XmppServer;
  session: Session;
  entry: SessionEntry;
}

/**
 * "outbound/gone": a stanza for a connection whose socket is gone, that no outbound filter took
 * (the sender knew the connection only by id: a room's fan-out). A handler that keeps it returns
 * true, and the send counts as delivered (XEP-0198: a detached session's stanzas are kept).
 */
export interface OutboundGoneEvent {
  server: XmppServer;
  target: ConnectionTarget;
  stanza: Element;
  /** The stanza's addressee, when it names one. */
  to?: JID;
}

/**
 * "connection-check": the sweeper found a bound connection alive and sent it the server's ping
 * (docs/architecture.md "Connections die silently"); every connectionCheckMs, so also within that
 * time before API Gateway's 2-hour cut (XEP-0198 asks for an ack here).
 */
export interface ConnectionCheckEvent {
  server: XmppServer;
  session: Session;
}

/**
 * "message/stored": a module kept an undeliverable message for later delivery (offline storage, XEP-0160),
 * after it was written. A notification: handlers cannot change what happened.
 */
export type MessageStoredEvent = UndeliverableEvent;

/**
 * The life of a multi-user chat room (XEP-0045), fired by the module that serves rooms after the change
 * was written: "muc/room-created" (§10.1.1, or by an operator), "muc/room-destroyed" (§10.9, a
 * temporary room's last occupant gone §10.1.2, or by an operator), "muc/occupant-joined" (§7.2: an
 * occupant entered; a second session of the same occupant does not fire it), "muc/occupant-left"
 * (§7.14, also when kicked, banned or its session ended; once per occupant, when its last session goes).
 * Notifications only.
 */
export interface RoomEvent {
  server: XmppServer;
  tenant: string;
  /** The room's bare JID (room@conference.example.com). */
  room: string;
  /** The user's real full JID: the creator, the occupant who joined or left. */
  jid?: string;
  nick?: string;
  /** Why it happened, when known (a destroy's <reason/>). */
  reason?: string;
}

/**
 * "tenant/changed": a tenant item was written or deleted (by the admin tools or by hand), seen within
 * seconds: locally by the tenant watcher's poll of the tenants this process has streams for, in AWS by
 * the tenant-changes function on the table's stream (in every region). `before` is the item as it was
 * (absent when it was created or not seen before; locally, for a tenant whose first stream just opened,
 * the item the handlers read), `after` as it is now (absent when deleted). A
 * disabled or deleted tenant's connections are closed by the core first (host-gone); a module reacts to
 * the rest (the components module ends a connected component that was disabled, removed or given a new
 * secret). Handlers run once per region and must be idempotent: the same change may be reported again.
 */
export interface TenantChangedEvent {
  server: XmppServer;
  /** The tenant's domain. */
  tenant: string;
  before?: TenantRecord;
  after?: TenantRecord;
}

/** The events with fixed names and the payload each carries. Stanza events are named by pattern. */
export interface CoreEvents {
  'session-bound': SessionEvent;
  'session-ended': SessionEndedEvent;
  'session-detach': SessionDetachEvent;
  'session-resumed': SessionResumedEvent;
  'stream-data': StreamDataEvent;
  'connection-check': ConnectionCheckEvent;
  'outbound/gone': OutboundGoneEvent;
  unavailable: UnavailableEvent;
  'presence/initial': InitialPresenceEvent;
  'stanza/in': InboundEvent;
  'stanza/deliver': DeliverEvent;
  'message/delivered': DeliveredEvent;
  'message/undeliverable': UndeliverableEvent;
  'message/every-resource': EveryResourceEvent;
  'message/stored': MessageStoredEvent;
  'muc/room-created': RoomEvent;
  'muc/room-destroyed': RoomEvent;
  'muc/occupant-joined': RoomEvent;
  'muc/occupant-left': RoomEvent;
  'auth/check': AuthAttemptEvent;
  'auth/failed': AuthFailedEvent;
  'tenant/changed': TenantChangedEvent;
}

/** The domain an event belongs to, for modules switched on per tenant. */
export function tenantOfEvent(event: unknown): string | undefined {
  const e = event as Partial<StanzaEvent & SessionEndedEvent>;
  return e.tenant ?? e.origin?.jid.domain ?? e.session?.jid.domain ?? e.to?.domain;
}
