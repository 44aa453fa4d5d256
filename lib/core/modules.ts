// The module API, after Prosody's (module:hook, module:add_feature, module:open_store,
// module:get_option, module:depends, modules enabled per host). Every feature is a module: its
// `install` receives a ModuleContext scoped to it, and everything it adds to the server (hooks,
// filters, disco features, stream features, SASL mechanisms, components, admin routes, CLI commands,
// purge steps) is recorded in the Registry under its name. The core reads the Registry; modules
// never touch it directly. docs/modules.md is the guide, with a worked example.
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { Logger } from 'pino';
import type { Element } from '../xmpp/xml.ts';
import type { ConnectionRecord } from '../store/connections.ts';
import type { SessionEntry } from '../store/sessions.ts';
import type { TenantRecord } from '../store/tenants.ts';
import { type CoreEvents, type IqEvent, type Session, type StanzaEvent, tenantOfEvent } from './events.ts';
import type { SettingBlock } from '../store/tenant-schema.ts';
import { type Hook, Hooks } from './hooks.ts';
import type { ConnectionTarget } from './management-api.ts';
import type { SaslMechanism } from './sasl.ts';
import type { XmppServer } from './server.ts';

/** A stream feature a module offers (RFC 6120 §4.3.2), before or after authentication. */
export interface StreamFeature {
  stage: 'pre-auth' | 'post-auth';
  element(server: XmppServer, rec: ConnectionRecord): Element | undefined | Promise<Element | undefined>;
}

/**
 * A service on its own address inside a tenant (the MUC service at conference.<domain>). The router
 * gives it every stanza addressed to its domain as `<name>/component/<component name>` events.
 */
export interface Component {
  name: string;
  /** The tenant that owns `domain` if it is this component's address there, else undefined. */
  tenantOf(server: XmppServer, domain: string): Promise<string | undefined>;
  /**
   * The addresses it serves for a tenant item, below the tenant's domain (MUC: conference.<domain>),
   * whether or not the tenant is enabled now, since enabling it brings them back. Pure: the admin
   * tools ask it of an item before writing it, so no tenant can sit on another's service.
   */
  domainsOf(tenant: TenantRecord): string[];
  /** Why a tenant item's settings for this service cannot be written (checked with domainsOf); none if they can. */
  problemsOf?(tenant: TenantRecord): string[];
}

/** Why a tenant item may not be written on this deployment (status 400 with `code`); undefined if it may. */
export type TenantWriteCheck = (tenant: TenantRecord) => { code: string; message: string } | undefined;

export interface DiscoIdentity {
  category: string;
  type: string;
  name?: string;
}

export interface DiscoItem {
  jid: string;
  name?: string;
}

/**
 * A top-level element (not a stanza) answered on an authenticated stream before resource binding:
 * XEP-0198 <resume/> takes the place of binding. It answers the client itself (server.send).
 */
export type UnboundElementHandler = (server: XmppServer, rec: ConnectionRecord, el: Element) => Promise<void>;

/**
 * A WebSocket subprotocol other than RFC 7395's "xmpp" that a module speaks on the same API (XEP-0114
 * components: "xmpp-component"). $connect accepts a connection that offers it (the connection item
 * records it), and every frame of such a connection goes to `frame` instead of the client stream.
 */
export interface StreamProtocol {
  /** Whether this process already knows `connectionId` speaks this protocol, so its frame needs no read. */
  knows(connectionId: string): boolean;
  /** One frame; `rec` is the connection item unless `knows` said yes (then undefined). */
  frame(server: XmppServer, target: ConnectionTarget, rec: ConnectionRecord | undefined, body: string): Promise<void>;
}

/** Work of the sweeper besides checking connections (detached XEP-0198 sessions past their time). */
export type SweepStep = (server: XmppServer, now: number) => Promise<void>;
/**
 * Work deferred to the end of an invocation (server.flush()): the ingest runs it after each batch, the
 * other handlers before they return, so it never delays the stanzas but still ends inside the Lambda.
 */
export type FlushStep = (server: XmppServer) => Promise<void>;

/**
 * Whether a bound session read from its connection item may be kept in a process's memory
 * (docs/architecture.md "State"): false while a module's per-stream state (Session.streamData) may
 * still change, so that every process reads the item, and the state with it, on each frame until then.
 */
export type SessionCacheCheck = (session: Session, now: number) => boolean | Promise<boolean>;

/** An IQ answered before authentication (XEP-0077 registration): returns its result payload or true. */
export type PreAuthIqHandler = (server: XmppServer, rec: ConnectionRecord, iq: Element, child: Element) => Promise<Element | true>;

/**
 * Where an outbound stanza goes: the connection and, when the sender had it at hand (message
 * delivery, presence fan-out: they post to the session entries they read), the recipient's session
 * entry, so a filter reads modules' session data at no cost. A stanza sent to a session the core
 * knows only by its connection (a reply to the client's own request) has no entry fields. A sender
 * that keeps connections of its own (a room's occupants) may carry the recipient's Session.streamData
 * as it kept it with the connection, so a filter knows a managed stream without a read.
 */
export type OutboundTarget = ConnectionTarget & Partial<Pick<SessionEntry, 'resource' | 'data'>> & Partial<Pick<Session, 'streamData'>>;

/**
 * Sees every stanza on its way to one connection (Prosody's "stanzas/out" filter). Returns the stanza
 * to send (the same or a changed one), or null when the filter took it over (nothing is posted, and
 * the send counts as delivered).
 */
export type OutboundFilter = (stanza: Element, target: OutboundTarget) => Element | null | Promise<Element | null>;

/**
 * A refusal meant for an operator: the admin API answers with `status` and `{ error: { code,
 * message } }`, the CLI prints the message. Modules throw it from their routes and commands.
 */
export class OperatorError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'OperatorError';
  }
}

/** An admin API route a module adds (same shape as the core's routes in lib/admin/api.ts). */
export interface AdminRoute {
  method: string;
  /** Below the API's base, with {params}: '/tenants/{domain}/rooms/{room}'. */
  pattern: string;
  handler: (req: AdminRequest, params: Record<string, string>, json: () => Record<string, unknown>) => Promise<{ status: number; body?: unknown }>;
}

export interface AdminRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: Record<string, string | undefined>;
  body: string;
}

/**
 * A command group a module adds to the `xmpp-edge` CLI. `register` receives the group (a commander
 * Command with the options that choose the DynamoDB table) and `withServer`, which wraps an action
 * so that it runs with a server over that table (its changes reach running sessions as the server's
 * own would); an OperatorError thrown there is printed to the user as is.
 */
export interface CliCommand {
  name: string;
  description: string;
  register(group: unknown, tools: CliTools): void;
}

export interface CliTools {
  withServer<A extends unknown[]>(fn: (server: XmppServer, target: string, ...args: A) => Promise<void>): (...args: A) => Promise<void>;
  out(text: string): void;
  err(text: string): void;
}

/** A purge step for a deleted tenant's module data that is not per account (rooms of a tenant). */
export type PurgeStep = (db: DynamoDBDocumentClient, table: string, domain: string) => Promise<void>;

/** What a module declares about the items it keeps in the table. */
export interface ModuleStorage {
  /**
   * Partition key prefixes of per-account partitions, `<prefix>#<bare JID>`: a purged tenant's
   * accounts lose them (lib/admin/purge.ts reads this, not a list of its own).
   */
  accountPartitions?: string[];
  /** Partition key prefixes of other items this module keeps (documented, checked by ctx.store). */
  partitions?: string[];
}

export interface XmppModule<Api = unknown> {
  name: string;
  /** Modules this one needs (installed first); ctx.depends(name) returns what their install returned. */
  depends?: string[];
  /**
   * 'always' (default): on for every tenant. 'optional': on only for tenants whose item lists the
   * module's name in `features` (README "The tenant item").
   */
  enabled?: 'always' | 'optional';
  /** This module's block of the tenant item: `tenant[key]`, checked against `schema` when read and written. */
  settings?: SettingBlock;
  /** The items it keeps. */
  storage?: ModuleStorage;
  /** Whether it keeps fields in each session entry (see SessionData). */
  sessionData?: boolean;
  /** Its command group of the `xmpp-edge` CLI, if any. */
  cli?: CliCommand;
  install(ctx: ModuleContext): Api;
}

/** Everything modules have added, by module; the core reads it. */
export class Registry {
  readonly modules = new Map<string, XmppModule>();
  readonly apis = new Map<string, unknown>();
  readonly events = new Hooks<unknown>();
  readonly identities: DiscoIdentity[] = [];
  /** Disco feature → the module that offers it. */
  readonly features = new Map<string, string>();
  /** Features of the server's disco#info that depend on the tenant item (a settings block is set), per tenant domain. */
  readonly featureSources: { module: string; source: (domain: string) => string[] | Promise<string[]> }[] = [];
  readonly discoItems: { module: string; source: (domain: string) => DiscoItem[] | Promise<DiscoItem[]> }[] = [];
  readonly discoForms: { module: string; form: (domain: string) => Element }[] = [];
  /** Features an account's bare JID offers (XEP-0030 §3.1 for an account: MAM, PEP …), per tenant domain. */
  readonly accountFeatures: { module: string; source: (domain: string) => string[] | Promise<string[]> }[] = [];
  /** Identities an account's bare JID has besides account/registered (XEP-0163 §6.1: pubsub/pep). */
  readonly accountIdentities: { module: string; identity: DiscoIdentity }[] = [];
  readonly streamFeatures: { module: string; feature: StreamFeature }[] = [];
  readonly saslMechanisms = new Map<string, { module: string; mechanism: SaslMechanism }>();
  readonly components: Component[] = [];
  readonly preAuthIq = new Map<string, { module: string; handler: PreAuthIqHandler }>();
  /** By `<namespace>:<element>`. */
  readonly unboundElements = new Map<string, { module: string; handler: UnboundElementHandler }>();
  readonly sweepSteps: SweepStep[] = [];
  readonly sessionCacheChecks: SessionCacheCheck[] = [];
  readonly flushSteps: FlushStep[] = [];
  /** By subprotocol name. */
  readonly streamProtocols = new Map<string, { module: string; protocol: StreamProtocol }>();
  readonly outboundFilters: { priority: number; filter: OutboundFilter }[] = [];
  readonly adminRoutes: AdminRoute[] = [];
  readonly purgeSteps: PurgeStep[] = [];
  /** Checks beyond the schema that every admin write of a tenant item passes (lib/core/tenant-domains.ts checkTenantWrite). */
  readonly tenantWriteChecks: { module: string; check: TenantWriteCheck }[] = [];

  /** Per-account partition prefixes of every module (the core's own 'sessions' included). */
  accountPartitions(): string[] {
    return accountPartitionsOf(this.modules.values());
  }

  /** Modules that keep data in session entries: each gets an empty map at bind, so updates need no read. */
  sessionDataModules(): string[] {
    return [...this.modules.values()].filter((m) => m.sessionData).map((m) => m.name);
  }


  /** Is `module` on for this tenant? Always-on modules are; optional ones when `features` lists them. */
  isEnabled(module: string, tenant: TenantRecord | undefined): boolean {
    const m = this.modules.get(module);
    if (!m || m.enabled !== 'optional') return true;
    return !!tenant?.features?.includes(module);
  }

  /** Adds stanzas-out filters by priority (highest first). */
  addOutboundFilter(filter: OutboundFilter, priority: number): void {
    this.outboundFilters.push({ priority, filter });
    this.outboundFilters.sort((a, b) => b.priority - a.priority);
  }
}

/**
 * Typed per-session data of one module, kept in the session entry the router already reads (so
 * reading it costs nothing on the message path) under the module's name: `entry.data[<module>]`.
 */
export class SessionData<T extends Record<string, unknown>> {
  constructor(
    private readonly module: string,
    private readonly server: XmppServer,
  ) {}

  /** This module's fields of a session entry. */
  of(entry: SessionEntry): Partial<T> {
    return (entry.data?.[this.module] ?? {}) as Partial<T>;
  }

  /** Sets (or, with undefined, removes) one field, if the session still belongs to that connection. */
  async set<K extends keyof T & string>(session: { jid: { bare(): { toString(): string }; resource: string }; connectionId: string }, field: K, value: T[K] | undefined): Promise<boolean> {
    return !!(await this.put(session, field, value));
  }

  /** Like set(); returns the whole entry as the write left it (no read: the update returns it). */
  put<K extends keyof T & string>(session: { jid: { bare(): { toString(): string }; resource: string }; connectionId: string }, field: K, value: T[K] | undefined): Promise<SessionEntry | undefined> {
    return this.server.sessions.updateData(session.jid.bare().toString(), session.jid.resource, session.connectionId, this.module, field, value);
  }
}

/** A module's own view of the table: the client, the name, and keys under the prefixes it declared. */
export interface ModuleStore {
  db: DynamoDBDocumentClient;
  table: string;
  /** `<prefix>#<id>`; throws if the module did not declare `prefix` in its storage. */
  pk(prefix: string, id: string): string;
}

type StanzaEventName = `${'message' | 'presence' | 'iq'}/${string}` | `stream-element/${string}`;
type IqEventName = `iq-${'get' | 'set'}/${string}`;

export class ModuleContext {
  readonly log: Logger;

  constructor(
    readonly module: XmppModule,
    readonly server: XmppServer,
    private readonly registry: Registry,
  ) {
    this.log = server.log.child({ module: module.name });
  }

  get name(): string {
    return this.module.name;
  }

  // ---- events

  /**
   * Hooks an event. A handler returns undefined to pass it on, anything else to stop it there
   * (for IQ events: an element is the result's payload, true an empty result). Higher priority runs
   * first. An optional module's handlers run only for tenants that switched it on.
   */
  hook<K extends keyof CoreEvents>(name: K, fn: Hook<CoreEvents[K]>, priority?: number): void;
  hook(name: IqEventName, fn: Hook<IqEvent>, priority?: number): void;
  hook(name: StanzaEventName, fn: Hook<StanzaEvent>, priority?: number): void;
  hook(name: string, fn: Hook<never>, priority = 0): void {
    const handler = fn as Hook<unknown>;
    if (this.module.enabled !== 'optional') return this.registry.events.on(name, handler, priority);
    this.registry.events.on(
      name,
      async (event) => {
        const domain = tenantOfEvent(event);
        return domain && (await this.enabledFor(domain)) ? handler(event) : undefined;
      },
      priority,
    );
  }

  /** Fires an event of this module's own (for other modules to hook); returns the first answer. */
  fire(name: string, event: unknown): Promise<unknown> {
    return this.registry.events.fire(name, event);
  }

  /** Fires an event to every handler (notifications). */
  fireAll<K extends keyof CoreEvents>(name: K, event: CoreEvents[K]): Promise<void> {
    return this.registry.events.fireAll(name, event);
  }

  /** Sees (or takes over) every stanza sent to any connection; see OutboundFilter. */
  filterOutbound(filter: OutboundFilter, priority = 0): void {
    this.registry.addOutboundFilter(filter, priority);
  }

  // ---- what the server offers

  addFeature(...namespaces: string[]): void {
    for (const ns of namespaces) this.registry.features.set(ns, this.name);
  }

  /**
   * Features of the server's disco#info that depend on the tenant (`fn(domain)` returns them): a
   * module on for every tenant advertises a feature only where its settings block is set (XEP-0215).
   */
  addFeatures(source: (domain: string) => string[] | Promise<string[]>): void {
    this.registry.featureSources.push({ module: this.name, source });
  }

  /** Features an account's bare JID advertises in its disco#info (the server answers for it). */
  addAccountFeature(...namespaces: string[]): void {
    this.addAccountFeatures(() => namespaces);
  }

  /** An identity of every account's bare JID (XEP-0030 §3.1 for an account), for tenants this module is on for. */
  addAccountIdentity(identity: DiscoIdentity): void {
    this.registry.accountIdentities.push({ module: this.name, identity });
  }

  addIdentity(identity: DiscoIdentity): void {
    this.registry.identities.push(identity);
  }

  /** Items of the server's disco#items (XEP-0030 §4), per tenant domain. */
  addDiscoItems(source: (domain: string) => DiscoItem[] | Promise<DiscoItem[]>): void {
    this.registry.discoItems.push({ module: this.name, source });
  }

  /** Features of every account's disco#info (what the server does for the account at its bare JID), per tenant domain. */
  addAccountFeatures(source: (domain: string) => string[] | Promise<string[]>): void {
    this.registry.accountFeatures.push({ module: this.name, source });
  }

  /** XEP-0128 extended information in the server's disco#info. */
  addDiscoForm(form: (domain: string) => Element): void {
    this.registry.discoForms.push({ module: this.name, form });
  }

  addStreamFeature(feature: StreamFeature): void {
    this.registry.streamFeatures.push({ module: this.name, feature });
  }

  addSaslMechanism(mechanism: SaslMechanism): void {
    this.registry.saslMechanisms.set(mechanism.name, { module: this.name, mechanism });
  }

  /** A service at its own address; its stanzas arrive as `<kind>/component/<name>` events. */
  addComponent(component: Component): void {
    this.registry.components.push(component);
  }

  /**
   * A check every admin tool (admin API, CLI, a module's own routes) runs on a tenant item before
   * writing it, after its schema: for what depends on the deployment rather than the item alone (event
   * push: an ARN on the deployment's allow-list). An item written by hand skips it, so the module must
   * still refuse at run time what the check refuses.
   */
  addTenantWriteCheck(check: TenantWriteCheck): void {
    this.registry.tenantWriteChecks.push({ module: this.name, check });
  }

  /** An IQ answered before authentication, by `<type>/<namespace>:<element>`. */
  addPreAuthIq(key: string, handler: PreAuthIqHandler): void {
    this.registry.preAuthIq.set(key, { module: this.name, handler });
  }

  /** A nonza answered on an authenticated stream before binding, by `<namespace>:<element>`. */
  addUnboundElement(key: string, handler: UnboundElementHandler): void {
    this.registry.unboundElements.set(key, { module: this.name, handler });
  }

  /** A WebSocket subprotocol of its own, beside RFC 7395's "xmpp" (see StreamProtocol). */
  addStreamProtocol(name: string, protocol: StreamProtocol): void {
    if (name === 'xmpp' || this.registry.streamProtocols.has(name)) throw new Error(`subprotocol ${name} is taken`);
    this.registry.streamProtocols.set(name, { module: this.name, protocol });
  }

  /** Work for each run of the sweeper (every minute in AWS, the local server's timer locally). */
  addSweepStep(step: SweepStep): void {
    this.registry.sweepSteps.push(step);
  }

  /** A bound session is cached in memory only once every such check agrees (SessionCacheCheck). */
  addSessionCacheCheck(check: SessionCacheCheck): void {
    this.registry.sessionCacheChecks.push(check);
  }

  /** Work for the end of the invocation, after the frames' stanzas went out (docs/modules.md "Hooks"). */
  addFlushStep(step: FlushStep): void {
    this.registry.flushSteps.push(step);
  }

  addAdminRoute(route: AdminRoute): void {
    this.registry.adminRoutes.push(route);
  }

  addPurgeStep(step: PurgeStep): void {
    this.registry.purgeSteps.push(step);
  }

  // ---- what the server says about itself (for XEP-0030, which answers from this)

  /** Identities, features and forms of the server's disco#info for a tenant: its enabled modules' only. */
  async discoInfo(domain: string): Promise<{ identities: DiscoIdentity[]; features: string[]; forms: Element[] }> {
    const tenant = await this.server.tenants.get(domain);
    const on = (module: string) => this.registry.isEnabled(module, tenant);
    const features = [...this.registry.features].filter(([, m]) => on(m)).map(([f]) => f);
    for (const { module, source } of this.registry.featureSources) if (on(module)) features.push(...(await source(domain)));
    return {
      identities: [...this.registry.identities],
      features: [...new Set(features)].sort(),
      forms: this.registry.discoForms.filter((f) => on(f.module)).map((f) => f.form(domain)),
    };
  }

  /** Features of an account's disco#info for a tenant: its enabled modules' only. */
  async accountFeatures(domain: string): Promise<string[]> {
    const tenant = await this.server.tenants.get(domain);
    const out: string[] = [];
    for (const { module, source } of this.registry.accountFeatures) if (this.registry.isEnabled(module, tenant)) out.push(...(await source(domain)));
    return out.sort();
  }

  /** Identities of an account's disco#info for a tenant, besides account/registered: its enabled modules' only. */
  async accountIdentities(domain: string): Promise<DiscoIdentity[]> {
    const tenant = await this.server.tenants.get(domain);
    return this.registry.accountIdentities.filter(({ module }) => this.registry.isEnabled(module, tenant)).map(({ identity }) => identity);
  }

  /** Items of the server's disco#items for a tenant. */
  async discoItems(domain: string): Promise<DiscoItem[]> {
    const tenant = await this.server.tenants.get(domain);
    const out: DiscoItem[] = [];
    for (const { module, source } of this.registry.discoItems) if (this.registry.isEnabled(module, tenant)) out.push(...(await source(domain)));
    return out;
  }

  // ---- data and settings

  /** This module's fields in session entries (the module must declare `sessionData: true`). */
  sessionData<T extends Record<string, unknown>>(): SessionData<T> {
    if (!this.module.sessionData) throw new Error(`module ${this.name} keeps session data but does not declare sessionData`);
    return new SessionData<T>(this.name, this.server);
  }

  /** The table, for the partitions this module declared. */
  openStore(): ModuleStore {
    const declared = new Set([...(this.module.storage?.accountPartitions ?? []), ...(this.module.storage?.partitions ?? [])]);
    return {
      db: this.server.db,
      table: this.server.table,
      pk: (prefix, id) => {
        if (!declared.has(prefix)) throw new Error(`module ${this.name} did not declare the partition prefix ${prefix}`);
        return `${prefix}#${id}`;
      },
    };
  }

  /** This module's block of a tenant item, already checked against its schema (undefined when absent). */
  settingsOf<T>(tenant: TenantRecord | undefined): T | undefined {
    const key = this.module.settings?.key;
    return key ? ((tenant as Record<string, unknown> | undefined)?.[key] as T | undefined) : undefined;
  }

  /** Is this module on for the tenant (cached tenant read)? */
  async enabledFor(domain: string): Promise<boolean> {
    if (this.module.enabled !== 'optional') return true;
    return this.registry.isEnabled(this.name, await this.server.tenants.get(domain));
  }

  /** What another module's install returned; it must be listed in `depends`. */
  depends<Api>(name: string): Api {
    if (!this.module.depends?.includes(name)) throw new Error(`module ${this.name} uses ${name} without declaring it in depends`);
    if (!this.registry.apis.has(name)) throw new Error(`module ${this.name} depends on ${name}, which is not installed`);
    return this.registry.apis.get(name) as Api;
  }
}

/** The tenant item blocks the modules declare (README "The tenant item"): the tenant schema is made of them. */
export function settingBlocksOf(modules: readonly XmppModule[]): SettingBlock[] {
  return modules.flatMap((m) => (m.settings ? [m.settings] : []));
}

/**
 * Installs modules in dependency order (each after the modules it depends on, otherwise in the
 * order given). A missing dependency or a cycle stops the server at start, with the names.
 */
export function installModules(server: XmppServer, registry: Registry, modules: readonly XmppModule[]): void {
  const byName = new Map(modules.map((m) => [m.name, m]));
  if (byName.size !== modules.length) throw new Error('two modules share a name');
  const state = new Map<string, 'installing' | 'done'>();
  const install = (m: XmppModule, path: string[]) => {
    if (state.get(m.name) === 'done') return;
    if (state.get(m.name) === 'installing') throw new Error(`module dependency cycle: ${[...path, m.name].join(' → ')}`);
    state.set(m.name, 'installing');
    for (const dep of m.depends ?? []) {
      const d = byName.get(dep);
      if (!d) throw new Error(`module ${m.name} depends on ${dep}, which is not in the server's module list`);
      install(d, [...path, m.name]);
    }
    registry.modules.set(m.name, m as XmppModule);
    registry.apis.set(m.name, m.install(new ModuleContext(m as XmppModule, server, registry)));
    state.set(m.name, 'done');
  };
  for (const m of modules) install(m, []);
}

/** The partition prefixes of per-account data that `modules` keep (with the core's `sessions`). */
export function accountPartitionsOf(modules: Iterable<XmppModule>): string[] {
  const out = ['sessions'];
  for (const m of modules) out.push(...(m.storage?.accountPartitions ?? []));
  return out;
}
