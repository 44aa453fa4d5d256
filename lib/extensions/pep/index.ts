// XEP-0163 Personal Eventing Protocol (version 1.2.2) on every account's bare JID, with the parts of
// XEP-0060 Publish-Subscribe it profiles (publish, items, retract, delete, purge, configure) and
// XEP-0223 publish-options as preconditions.
//
//   store.ts   one item per node: configuration and items (docs/architecture.md "Data")
//
// Who gets a notification (XEP-0163 §4): the owner's and its presence subscribers' available
// resources (per access model) whose XEP-0115 caps list `<node>+notify` (§4.2). Costs
// (docs/architecture.md "Cost is a feature"): the caps ver is in each session entry's last presence,
// so a publish reads the node (1), writes it (1), reads the roster (1) and the audience's sessions
// (1 per 100 accounts), and posts once per interested resource; the caps module answers from memory.
import { randomBytes } from 'node:crypto';
import { type Static, Type } from '@sinclair/typebox';
import type { ModuleContext, XmppModule } from '../../core/modules.ts';
import type { IqEvent, Session } from '../../core/events.ts';
import type { XmppServer } from '../../core/server.ts';
import type { SessionEntry } from '../../store/sessions.ts';
import { StanzaError, type StanzaErrorType } from '../../xmpp/errors.ts';
import { NS } from '../../xmpp/namespaces.ts';
import { type Element, clone, parseFrame, xml } from '../../xmpp/xml.ts';
import type { CapsApi, CapsLearnedEvent } from '../caps/index.ts';
import type { RosterApi } from '../roster/index.ts';
import { type AccessModel, type NodeConfig, NODE_BYTES, PEP_PREFIX, type PepItem, type PepNode, PepStore } from './store.ts';

export type { PepNode } from './store.ts';

export const NS_PUBSUB = 'http://jabber.org/protocol/pubsub';
export const NS_PUBSUB_OWNER = `${NS_PUBSUB}#owner`;
export const NS_PUBSUB_EVENT = `${NS_PUBSUB}#event`;
export const NS_PUBSUB_ERRORS = `${NS_PUBSUB}#errors`;
const NS_DATA = 'jabber:x:data';
const FORM_NODE_CONFIG = `${NS_PUBSUB}#node_config`;
const FORM_PUBLISH_OPTIONS = `${NS_PUBSUB}#publish-options`;

export const PepSettingsSchema = Type.Object(
  {
    maxItemBytes: Type.Optional(Type.Integer({ minimum: 1024, maximum: NODE_BYTES, description: 'Largest item, in bytes of XML (an avatar is ~100 KB of base64). Default 131072.' })),
    maxItemsPerNode: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000, description: 'Most items a node keeps (pubsub#max_items "max"). Default 100.' })),
    maxNodes: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000, description: 'Most PEP nodes per account. Default 100.' })),
  },
  { additionalProperties: false, description: 'Personal Eventing Protocol (XEP-0163) limits; absent: the defaults.' },
);
export type PepSettings = Static<typeof PepSettingsSchema>;

/**
 * XEP-0060 §7.1.5 / §16.4.4 the features an account's bare JID advertises (XEP-0163 §6.1).
 * config-node-max: pubsub#max_items takes "max"; a client that does not see it (Converse 14) asks
 * for a number (9999) above the tenant's limit, and its bookmarks publish fails its precondition.
 */
const FEATURES = ['access-presence', 'access-open', 'access-roster', 'access-whitelist', 'auto-create', 'auto-subscribe', 'config-node', 'config-node-max', 'delete-items', 'delete-nodes', 'filtered-notifications', 'last-published', 'persistent-items', 'publish', 'publish-options', 'purge-nodes', 'retract-items', 'retrieve-items'].map((f) => `${NS_PUBSUB}#${f}`);

/** An error with XEP-0060's application-specific condition (§7 and §6 tables; RFC 6120 §8.3.2: it comes last). */
export class PubsubError extends StanzaError {
  constructor(
    condition: ConstructorParameters<typeof StanzaError>[0],
    private readonly specific?: string,
    text?: string,
    private readonly feature?: string,
    type?: StanzaErrorType,
  ) {
    super(condition, text, type);
  }

  override toElement(by?: string): Element {
    const el = super.toElement(by);
    if (this.specific) el.cnode(xml(this.specific, { xmlns: NS_PUBSUB_ERRORS, ...(this.feature ? { feature: this.feature } : {}) }));
    return el;
  }
}

const MAX_NODE_NAME_BYTES = 512;

const DEFAULTS: NodeConfig = { accessModel: 'presence', maxItems: 1, persistItems: true, rosterGroups: [], sendLastPublishedItem: 'on_sub_and_presence', notifyRetract: true };

/** A data form's fields (XEP-0004), FORM_TYPE aside. */
function formFields(x: Element | undefined): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const f of x?.getChildren('field') ?? []) {
    if (f.attrs.var === 'FORM_TYPE') continue;
    out.set(String(f.attrs.var), f.getChildren('value').map((v: Element) => v.text()));
  }
  return out;
}

const bool = (v: string | undefined) => v === '1' || v === 'true';

/**
 * A node configuration with a form's fields applied (XEP-0060 §8.2.4, §16.4.4); unknown fields or
 * bad values throw `bad`. Pure.
 */
export function applyConfig(base: NodeConfig, fields: Map<string, string[]>, limit: number, bad: (text: string) => Error): NodeConfig {
  const c: NodeConfig = { ...base, rosterGroups: [...base.rosterGroups] };
  for (const [name, values] of fields) {
    const v = values[0];
    switch (name) {
      case 'pubsub#access_model':
        if (!['presence', 'open', 'roster', 'whitelist'].includes(v ?? '')) throw bad(`unsupported access model ${v}`);
        c.accessModel = v as AccessModel;
        break;
      case 'pubsub#max_items': {
        if (v === 'max') c.maxItems = 'max';
        else if (/^\d+$/.test(v ?? '') && Number(v) >= 1 && Number(v) <= limit) c.maxItems = Number(v);
        else throw bad(`pubsub#max_items must be 1 to ${limit} (the tenant's pep.maxItemsPerNode) or max`);
        break;
      }
      case 'pubsub#persist_items':
        c.persistItems = bool(v);
        break;
      case 'pubsub#roster_groups_allowed':
        c.rosterGroups = values;
        break;
      case 'pubsub#send_last_published_item':
        if (!['never', 'on_sub', 'on_sub_and_presence'].includes(v ?? '')) throw bad(`unsupported pubsub#send_last_published_item ${v}`);
        c.sendLastPublishedItem = v as NodeConfig['sendLastPublishedItem'];
        break;
      case 'pubsub#notify_retract':
        c.notifyRetract = bool(v);
        break;
      case 'pubsub#deliver_notifications':
      case 'pubsub#deliver_payloads':
      case 'pubsub#title':
        break; // accepted, fixed for PEP (notifications with payloads, §5)
      default:
        throw bad(`unsupported node configuration field ${name}`);
    }
  }
  return c;
}

/** XEP-0223 §4 / XEP-0060 §7.1.5: does the node's configuration meet each publish option? Pure. */
export function meetsPreconditions(config: NodeConfig, fields: Map<string, string[]>, limit: number): boolean {
  try {
    const wanted = applyConfig(config, fields, limit, (t) => new Error(t));
    return JSON.stringify(wanted) === JSON.stringify(config);
  } catch {
    return false;
  }
}

/** The node configuration form (XEP-0060 §8.2.1). */
function configForm(c: NodeConfig): Element {
  const field = (v: string, type: string, ...values: string[]) => xml('field', { var: v, type }, ...values.map((x) => xml('value', {}, x)));
  return xml(
    'x',
    { xmlns: NS_DATA, type: 'form' },
    field('FORM_TYPE', 'hidden', FORM_NODE_CONFIG),
    field('pubsub#access_model', 'list-single', c.accessModel),
    field('pubsub#max_items', 'text-single', String(c.maxItems)),
    field('pubsub#persist_items', 'boolean', c.persistItems ? '1' : '0'),
    field('pubsub#roster_groups_allowed', 'list-multi', ...c.rosterGroups),
    field('pubsub#send_last_published_item', 'list-single', c.sendLastPublishedItem),
    field('pubsub#notify_retract', 'boolean', c.notifyRetract ? '1' : '0'),
  );
}

/**
 * What the PEP module offers modules that depend on it (XEP-0402 bookmarks compatibility): a node read
 * and an owner's edit of a node's items, with the notifications a publish and a retract send.
 */
export interface PepApi {
  /** The owner's node, or undefined: one GetItem. */
  node(owner: string, node: string): Promise<PepNode | undefined>;
  /**
   * Publishes and retracts on the owner's node as the owner would (XEP-0060 §7.1, §7.2), in one
   * conditional write: `fn` gets the current items (oldest first) and returns the `<item/>`s to
   * publish and the ids to retract. A missing node is created with `options` (publish-options fields,
   * XEP-0223). The published items go out in one notification, the retractions in another. Resolves
   * with the node as written.
   */
  edit(owner: string, node: string, options: Record<string, string>, fn: (items: PepItem[]) => { publish: Element[]; retract: string[] }): Promise<PepNode>;
  /**
   * A node that is a view of another (XEP-0402 §3.3 `#compat-pep`: the XEP-0048 `storage:bookmarks`
   * node shows the `urn:xmpp:bookmarks:1` items): whenever `source` is notified (publish, retract,
   * purge, delete; an edit once), each resource of the same audience that wants `view` (caps
   * `<view>+notify`) gets the `<items/>` that `render` makes of the source as written (no items once
   * deleted). No extra reads: the audience and its caps are those read for the source's notification.
   */
  addView(source: string, view: string, render: (n: PepNode) => Element): void;
}

function install(ctx: ModuleContext): PepApi {
  const { server } = ctx;
  const store = new PepStore(ctx.openStore());
  const roster = ctx.depends<RosterApi>('roster');
  const caps = ctx.depends<CapsApi>('caps');
  const limits = async (domain: string) => {
    const s = ctx.settingsOf<PepSettings>(await server.tenants.get(domain)) ?? {};
    return { maxItemBytes: s.maxItemBytes ?? 131_072, maxItemsPerNode: s.maxItemsPerNode ?? 100, maxNodes: s.maxNodes ?? 100 };
  };

  // XEP-0163 §6.1: the account is a pubsub service of type pep.
  ctx.addAccountIdentity({ category: 'pubsub', type: 'pep' });
  ctx.addAccountFeatures(() => FEATURES);

  const nodeOf = (el: Element): string => {
    const node = el.attrs.node as string | undefined;
    // XEP-0060 §7.1.3.3 / §6.5.9.x: PEP has no instant nodes; a request names its node.
    if (!node) throw new PubsubError('bad-request', 'nodeid-required');
    // The node name is part of a sort key (at most 1024 bytes in DynamoDB).
    if (Buffer.byteLength(node) > MAX_NODE_NAME_BYTES) throw new StanzaError('not-acceptable', `a node name has at most ${MAX_NODE_NAME_BYTES} bytes`);
    return node;
  };

  const mustExist = async (owner: string, node: string): Promise<PepNode> => {
    const n = await store.get(owner, node);
    // XEP-0060 §6.5.9.11, §7.2.3.3, §8.4.3.2, §8.5.3.2: no such node.
    if (!n) throw new StanzaError('item-not-found', `no node ${node}`);
    return n;
  };

  /** Reads, changes and writes a node, again if another write came between (conditional put). */
  async function change(owner: string, node: string, fn: (n: PepNode | undefined) => PepNode | Promise<PepNode>): Promise<PepNode> {
    for (let attempt = 0; ; attempt++) {
      const next = await fn(await store.get(owner, node));
      if (await store.put(next)) return next;
      if (attempt >= 4) throw new StanzaError('resource-constraint', 'the node is busy', 'wait');
    }
  }

  /** XEP-0060 §6.5.9 / XEP-0163 §5: may `requester` read `owner`'s node? Throws the refusal. */
  async function checkAccess(n: PepNode, requester: string): Promise<void> {
    if (requester === n.owner) return;
    const { accessModel, rosterGroups } = n.config;
    if (accessModel === 'open') return;
    if (accessModel === 'whitelist') throw new PubsubError('not-allowed', 'closed-node');
    const item = await roster.store.get(n.owner, requester);
    if (accessModel === 'presence') {
      // §6.5.9.5: presence subscription required.
      if (!item || !(item.subscription === 'from' || item.subscription === 'both')) throw new PubsubError('not-authorized', 'presence-subscription-required', undefined, undefined, 'auth');
      return;
    }
    // §6.5.9.6: roster groups (none configured: any contact in the roster).
    if (!item?.inRoster || (rosterGroups.length && !item.groups.some((g) => rosterGroups.includes(g)))) throw new PubsubError('not-authorized', 'not-in-roster-group', undefined, undefined, 'auth');
  }

  /**
   * XEP-0163 §4.3: a notification to each available resource that wants `node` (caps `+notify`,
   * §4.2) of the owner and, unless the node is whitelist-only, of the contacts subscribed to the
   * owner's presence (roster model: in the allowed groups).
   */
  async function notify(owner: string, n: PepNode, ...events: Element[]): Promise<void> {
    let accounts = [owner];
    if (n.config.accessModel !== 'whitelist') {
      const items = await roster.store.list(owner);
      const subscribed = items.filter((i) => i.subscription === 'from' || i.subscription === 'both');
      const allowed = n.config.accessModel === 'roster' && n.config.rosterGroups.length ? subscribed.filter((i) => i.groups.some((g) => n.config.rosterGroups.includes(g))) : subscribed;
      accounts = [owner, ...allowed.map((i) => i.jid)];
    }
    const sessions = accounts.length === 1 ? new Map([[owner, await server.sessions.list(owner)]]) : await server.sessions.listMany(accounts);
    const available = [...sessions].flatMap(([bare, list]) => list.filter((s) => s.available).map((s) => ({ ...s, to: `${bare}/${s.resource}` })));
    const features = await caps.featuresOfMany(owner.split('@').pop()!, available.map((s) => s.presence));
    const targets: (SessionEntry & { to: string })[] = available.filter((_, i) => features[i].includes(`${n.node}+notify`));
    for (const event of events) await server.sendMany(targets, (t) => notification(owner, t.to, event));
    for (const { view, render } of views.get(n.node) ?? []) {
      const viewers = available.filter((_, i) => features[i].includes(`${view}+notify`));
      if (viewers.length) await server.sendMany(viewers, (t) => notification(owner, t.to, render(n)));
    }
  }
  const views = new Map<string, { view: string; render: (n: PepNode) => Element }[]>();

  const notification = (owner: string, to: string, event: Element) => xml('message', { xmlns: NS.CLIENT, from: owner, to, type: 'headline', id: randomBytes(8).toString('hex') }, xml('event', { xmlns: NS_PUBSUB_EVENT }, clone(event)));
  const itemsEvent = (node: string, ...children: Element[]) => xml('items', { node }, ...children);

  /** XEP-0163 §4.3.4: the last item of each wanted node of each publisher the session may read. */
  async function sendLastItems(session: Session, features: string[], publishers: string[]): Promise<void> {
    const wanted = features.filter((f) => f.endsWith('+notify')).map((f) => f.slice(0, -'+notify'.length));
    if (!wanted.length) return;
    const me = session.jid.bare().toString();
    const owners = [me, ...publishers.filter((p) => p !== me)];
    const nodes = await store.getMany(owners.flatMap((owner) => wanted.map((node) => ({ owner, node }))));
    const target = { ...session };
    for (const n of nodes) {
      const last = n.items[n.items.length - 1];
      if (!last || n.config.sendLastPublishedItem === 'never') continue;
      // A publisher's presence reaches us (RFC 6121 to/both), so presence and open nodes qualify.
      if (n.owner !== me && n.config.accessModel !== 'presence' && n.config.accessModel !== 'open') {
        if (n.config.accessModel === 'whitelist') continue;
        if (!(await checkAccess(n, me).then(() => true, () => false))) continue;
      }
      if (!(await server.send(target, notification(n.owner, session.jid.toString(), itemsEvent(n.node, parseFrame(last.xml)))))) return;
    }
  }

  ctx.hook('presence/initial', async ({ origin, stanza, publishers }) => {
    const features = await caps.featuresOf(origin.jid.domain, stanza);
    await sendLastItems(origin, features, publishers);
  });
  // A hash learned only now (its disco#info answer just came): what the initial presence could not send.
  caps.onLearned(async ({ origin, features }: CapsLearnedEvent) => {
    if (!features.some((f) => f.endsWith('+notify'))) return;
    const items = await roster.store.list(origin.jid.bare().toString());
    await sendLastItems(origin, features, items.filter((i) => i.subscription === 'to' || i.subscription === 'both').map((i) => i.jid));
  });

  // ---- XEP-0060 §7 publisher use cases, on the own account -----------------------------------------

  async function publish(origin: Session, pubsub: Element, el: Element): Promise<Element> {
    const owner = origin.jid.bare().toString();
    const node = nodeOf(el);
    const items = el.getChildren('item');
    // §7.1.3.6 / §7.1.3.5: PEP nodes persist items, so one item with one payload.
    if (items.length !== 1) throw new PubsubError('bad-request', items.length ? 'invalid-payload' : 'item-required');
    const payloads = items[0].children.filter((c): c is Element => typeof c !== 'string');
    if (payloads.length !== 1) throw new PubsubError('bad-request', payloads.length ? 'invalid-payload' : 'payload-required');
    const id = (items[0].attrs.id as string | undefined) || randomBytes(12).toString('hex');
    const item = xml('item', { id }, clone(payloads[0]));
    const lim = await limits(origin.jid.domain);
    const size = Buffer.byteLength(item.toString());
    // §7.1.3.4: too big.
    if (size > lim.maxItemBytes) throw new PubsubError('not-acceptable', 'payload-too-big', `an item holds at most ${lim.maxItemBytes} bytes (pep.maxItemBytes); this one has ${size}`, undefined, 'modify');
    const options = formFields(pubsub.getChild('publish-options')?.getChild('x', NS_DATA));
    const n = await change(owner, node, async (current) => {
      let n = current;
      if (!n) {
        // §7.1.5 / XEP-0163 §3: auto-create, with the publish options as its configuration.
        if ((await store.count(owner)) >= lim.maxNodes) throw new StanzaError('policy-violation', `an account has at most ${lim.maxNodes} PEP nodes (pep.maxNodes)`);
        const config = applyConfig(DEFAULTS, options, lim.maxItemsPerNode, (text) => new PubsubError('conflict', 'precondition-not-met', text));
        n = { owner, node, config, items: [], v: 0 };
      } else if (options.size && !meetsPreconditions(n.config, options, lim.maxItemsPerNode)) {
        // XEP-0223 §4 / XEP-0060 §7.1.5: the node's configuration does not match.
        throw new PubsubError('conflict', 'precondition-not-met', undefined, undefined, 'cancel');
      }
      const max = !n.config.persistItems ? 1 : n.config.maxItems === 'max' ? lim.maxItemsPerNode : Math.min(n.config.maxItems, lim.maxItemsPerNode);
      // §7.1.2: an id already there is overwritten (and becomes the newest).
      const kept = [...n.items.filter((i) => i.id !== id), { id, xml: item.toString() }].slice(-max);
      if (kept.reduce((sum, i) => sum + Buffer.byteLength(i.xml), 0) > NODE_BYTES) throw new StanzaError('policy-violation', `a node's items add up to at most ${NODE_BYTES} bytes`);
      return { ...n, items: kept };
    });
    await notify(owner, n, itemsEvent(node, item));
    return xml('pubsub', { xmlns: NS_PUBSUB }, xml('publish', { node }, xml('item', { id })));
  }

  async function retract(origin: Session, el: Element): Promise<true> {
    const owner = origin.jid.bare().toString();
    const node = nodeOf(el);
    const ids = el.getChildren('item').map((i: Element) => i.attrs.id as string | undefined);
    // §7.2.3.3 / §7.2.3.4: an item id is required.
    if (ids.length !== 1 || !ids[0]) throw new PubsubError('bad-request', 'item-required');
    const id = ids[0];
    const n = await change(owner, node, async (current) => {
      if (!current) throw new StanzaError('item-not-found', `no node ${node}`);
      if (!current.items.some((i) => i.id === id)) throw new StanzaError('item-not-found', `no item ${id}`);
      return { ...current, items: current.items.filter((i) => i.id !== id) };
    });
    // §7.2.2.1: subscribers hear of it if the request says notify (or the node does).
    if (bool(el.attrs.notify) || n.config.notifyRetract) await notify(owner, n, itemsEvent(node, xml('retract', { id })));
    return true;
  }

  ctx.hook(`iq-set/self/${NS_PUBSUB}:pubsub`, ({ origin, child }: IqEvent) => {
    const publishEl = child.getChild('publish');
    if (publishEl) return publish(origin, child, publishEl);
    const retractEl = child.getChild('retract');
    if (retractEl) return retract(origin, retractEl);
    // §6.1 subscriptions and the rest of the subscriber use cases: PEP subscribes by presence and caps.
    throw new PubsubError('feature-not-implemented', 'unsupported', undefined, 'subscribe');
  });
  // Another account's PEP service takes no publishing (XEP-0163 §2.2: one publisher per node).
  ctx.hook(`iq-set/bare/${NS_PUBSUB}:pubsub`, ({ child }: IqEvent) => {
    if (child.getChild('publish') || child.getChild('retract')) throw new PubsubError('forbidden');
    // XEP-0163 §4.1: a contact is subscribed by its presence subscription and caps, not by request.
    throw new PubsubError('feature-not-implemented', 'unsupported', undefined, 'subscribe');
  });

  // ---- XEP-0060 §6.5 retrieve items, on the own account or a contact's ------------------------------

  const items = async ({ origin, child, to, kind }: IqEvent): Promise<Element> => {
    const el = child.getChild('items');
    if (!el) throw new PubsubError('feature-not-implemented', 'unsupported', undefined, 'retrieve-subscriptions');
    const owner = kind === 'self' ? origin.jid.bare().toString() : to.bare().toString();
    const node = nodeOf(el);
    const n = await mustExist(owner, node);
    await checkAccess(n, origin.jid.bare().toString());
    const ids = el.getChildren('item').map((i: Element) => i.attrs.id as string).filter(Boolean);
    let chosen = n.items;
    // §6.5.8: particular items; §6.5.7: the most recent N.
    if (ids.length) chosen = chosen.filter((i) => ids.includes(i.id));
    const max = Number(el.attrs.max_items);
    if (el.attrs.max_items !== undefined && Number.isInteger(max) && max >= 0) chosen = chosen.slice(-max || chosen.length);
    return xml('pubsub', { xmlns: NS_PUBSUB }, xml('items', { node }, ...chosen.map((i) => parseFrame(i.xml))));
  };
  ctx.hook(`iq-get/self/${NS_PUBSUB}:pubsub`, items);
  ctx.hook(`iq-get/bare/${NS_PUBSUB}:pubsub`, items);

  // ---- XEP-0060 §8 owner use cases ------------------------------------------------------------------

  ctx.hook(`iq-get/self/${NS_PUBSUB_OWNER}:pubsub`, async ({ origin, child }: IqEvent) => {
    const owner = origin.jid.bare().toString();
    const configure = child.getChild('configure');
    // §8.3: the default configuration.
    if (child.getChild('default')) return xml('pubsub', { xmlns: NS_PUBSUB_OWNER }, xml('default', {}, configForm(DEFAULTS)));
    if (!configure) throw new PubsubError('feature-not-implemented', 'unsupported', undefined, 'modify-affiliations');
    const node = nodeOf(configure);
    const n = await mustExist(owner, node);
    return xml('pubsub', { xmlns: NS_PUBSUB_OWNER }, xml('configure', { node }, configForm(n.config)));
  });

  ctx.hook(`iq-set/self/${NS_PUBSUB_OWNER}:pubsub`, async ({ origin, child }: IqEvent) => {
    const owner = origin.jid.bare().toString();
    const lim = await limits(origin.jid.domain);
    const el = child.getChild('configure') ?? child.getChild('delete') ?? child.getChild('purge');
    if (!el) throw new PubsubError('feature-not-implemented', 'unsupported', undefined, 'modify-affiliations');
    const node = nodeOf(el);
    if (el.name === 'delete') {
      // §8.4: the node and its items go; subscribers hear of it (§8.4.2).
      const n = await mustExist(owner, node);
      await store.delete(owner, node);
      await notify(owner, { ...n, items: [] }, xml('delete', { node }));
      return true;
    }
    if (el.name === 'purge') {
      // §8.5: its items go; subscribers hear of it (§8.5.2).
      const n = await change(owner, node, (current) => {
        if (!current) throw new StanzaError('item-not-found', `no node ${node}`);
        return { ...current, items: [] };
      });
      await notify(owner, n, xml('purge', { node }));
      return true;
    }
    // §8.2.4: a submitted form (a cancel changes nothing, §8.2.3.5).
    const x = el.getChild('x', NS_DATA);
    if (!x || x.attrs.type === 'cancel') return true;
    if (x.attrs.type !== 'submit') throw new StanzaError('bad-request', 'a configuration form is submitted');
    const fields = formFields(x);
    await change(owner, node, (current) => {
      if (!current) throw new StanzaError('item-not-found', `no node ${node}`);
      // §8.2.5.3: a value the service does not accept.
      const config = applyConfig(current.config, fields, lim.maxItemsPerNode, (text) => new StanzaError('not-acceptable', text, 'modify'));
      const max = !config.persistItems ? 1 : config.maxItems === 'max' ? lim.maxItemsPerNode : config.maxItems;
      return { ...current, config, items: current.items.slice(-max) };
    });
    return true;
  });

  return {
    node: (owner, node) => store.get(owner, node),
    addView(source, view, render) {
      views.set(source, [...(views.get(source) ?? []), { view, render }]);
    },
    async edit(owner, node, options, fn) {
      const lim = await limits(owner.split('@').pop()!);
      let published: Element[] = [];
      let retracted: string[] = [];
      const n = await change(owner, node, async (current) => {
        let n = current;
        if (!n) {
          if ((await store.count(owner)) >= lim.maxNodes) throw new StanzaError('policy-violation', `an account has at most ${lim.maxNodes} PEP nodes (pep.maxNodes)`);
          n = { owner, node, config: applyConfig(DEFAULTS, new Map(Object.entries(options).map(([k, v]) => [k, [v]])), lim.maxItemsPerNode, (text) => new StanzaError('not-acceptable', text)), items: [], v: 0 };
        }
        ({ publish: published, retract: retracted } = fn(n.items));
        for (const item of published) {
          const size = Buffer.byteLength(item.toString());
          // XEP-0060 §7.1.3.4, as for a publish.
          if (size > lim.maxItemBytes) throw new PubsubError('not-acceptable', 'payload-too-big', `an item holds at most ${lim.maxItemBytes} bytes (pep.maxItemBytes); this one has ${size}`, undefined, 'modify');
        }
        const max = !n.config.persistItems ? 1 : n.config.maxItems === 'max' ? lim.maxItemsPerNode : Math.min(n.config.maxItems, lim.maxItemsPerNode);
        const changed = new Set([...retracted, ...published.map((i) => String(i.attrs.id))]);
        const kept = [...n.items.filter((i) => !changed.has(i.id)), ...published.map((i) => ({ id: String(i.attrs.id), xml: i.toString() }))].slice(-max);
        if (kept.reduce((sum, i) => sum + Buffer.byteLength(i.xml), 0) > NODE_BYTES) throw new StanzaError('policy-violation', `a node's items add up to at most ${NODE_BYTES} bytes`);
        return { ...n, items: kept };
      });
      // One read of the audience for both (XEP-0060 §7.1.2.1, §7.2.2.1).
      const events = [...(published.length ? [itemsEvent(node, ...published.map(clone))] : []), ...(retracted.length && n.config.notifyRetract ? [itemsEvent(node, ...retracted.map((id) => xml('retract', { id })))] : [])];
      if (events.length) await notify(owner, n, ...events);
      return n;
    },
  };
}

export const pep: XmppModule<PepApi> = {
  name: 'pep',
  depends: ['roster', 'caps'],
  settings: { key: 'pep', schema: PepSettingsSchema },
  // The account's nodes go with the account and with a tenant purge (docs/modules.md "Storage").
  storage: { accountPartitions: [PEP_PREFIX] },
  install,
};
