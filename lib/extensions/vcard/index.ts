// XEP-0054 vcard-temp (version 1.3.0) and XEP-0153 vCard-Based Avatars (version 1.1).
//
//   photo.ts     the avatar hash of a vCard (XEP-0153 §3.1), pure
//   store.ts     `vcard#<bare JID>`: the vCard, and its avatar hash in an item of its own
//   settings.ts  the tenant's `vcard` block (size limit)
//
// Three modules:
// - `vcard` (always on): set and get of one's own vCard (§3.1, §3.2) and get of another account's
//   (§3.3). vCards are public, as XEP-0054 §1 says ("Other users may then view one's vCard
//   information") and as Prosody's mod_vcard does: any user who may exchange stanzas with the
//   account may read it. An account without a vCard has an empty one.
// - `vcard-avatars` (optional): the server's part in XEP-0153: it puts the avatar hash of the
//   stored vCard into the user's available presence, for clients that do not (§4.1).
// - `vcard-muc` (always on): rooms answer vCard requests (XEP-0045 rooms, where clients ask them).
import type { ModuleContext, XmppModule } from '../../core/modules.ts';
import type { StanzaEvent } from '../../core/events.ts';
import { StanzaError } from '../../xmpp/errors.ts';
import { NS } from '../../xmpp/namespaces.ts';
import { type Element, parseFrame, xml } from '../../xmpp/xml.ts';
import type { muc } from '../muc/index.ts';
import { NS_VCARD, NS_VCARD_UPDATE, photoHash } from './photo.ts';
import { DEFAULT_VCARD_BYTES, type VCardSettings, VCardSettingsSchema } from './settings.ts';
import { VCARD_PREFIX, VCardStore } from './store.ts';

export { NS_VCARD, NS_VCARD_UPDATE, photoHash };

export interface VCardApi {
  store: VCardStore;
  /** The account's vCard as an element: the empty <vCard/> when it has none. */
  vcardOf(bare: string): Promise<Element>;
}

const empty = () => xml('vCard', { xmlns: NS_VCARD });

function installVCard(ctx: ModuleContext): VCardApi {
  const { server } = ctx;
  const store = new VCardStore(ctx.openStore());
  const vcardOf = async (bare: string) => {
    const stored = await store.get(bare);
    return stored ? parseFrame(stored) : empty();
  };

  // §4: the server says it stores vCards; so does each account's bare JID, where they are fetched (§3.3).
  ctx.addFeature(NS_VCARD);
  ctx.addAccountFeature(NS_VCARD);

  // §3.1: one's own vCard; none stored yet: an empty one, as Prosody answers (not an error).
  ctx.hook(`iq-get/self/${NS_VCARD}:vCard`, ({ origin }) => vcardOf(origin.jid.bare().toString()));

  // §3.2: the vCard replaces the stored one whole.
  ctx.hook(`iq-set/self/${NS_VCARD}:vCard`, async ({ origin, child }) => {
    const tenant = await server.tenants.get(origin.jid.domain);
    const max = ctx.settingsOf<VCardSettings>(tenant)?.maxBytes ?? DEFAULT_VCARD_BYTES;
    const text = child.toString();
    const bytes = Buffer.byteLength(text);
    if (bytes > max) {
      // The error reply echoes the request (RFC 6120 §8.3.1); an echo of an oversized vCard could pass
      // API Gateway's 128 KiB per message, so it goes back empty.
      child.children = [];
      throw new StanzaError('not-acceptable', `the vCard is ${bytes} bytes; this server's limit (vcard.maxBytes) is ${max}`);
    }
    await store.put(origin.jid.bare().toString(), text, photoHash(child), server.clock.now());
    return true;
  });

  // §3.3: another user's vCard, answered by the server on the account's behalf (its bare JID). An
  // address with no account gets what any stanza to it gets (RFC 6121 §8.5.1: service-unavailable).
  ctx.hook(`iq-get/bare/${NS_VCARD}:vCard`, async ({ to }) => {
    const bare = to.bare().toString();
    const stored = await store.get(bare);
    if (stored) return parseFrame(stored);
    if (!(await server.users.exists(to.domain, to.local))) throw new StanzaError('service-unavailable');
    return empty();
  });
  // Only the account itself changes its vCard.
  ctx.hook(`iq-set/bare/${NS_VCARD}:vCard`, () => {
    throw new StanzaError('forbidden', 'a vCard is set by its owner only');
  });

  // The server's own vCard (an IQ to the domain): it has none to tell.
  ctx.hook(`iq-get/host/${NS_VCARD}:vCard`, () => empty());
  ctx.hook(`iq-set/host/${NS_VCARD}:vCard`, () => {
    throw new StanzaError('forbidden', "the server's vCard cannot be set");
  });

  return { store, vcardOf };
}

export const vcard: XmppModule<VCardApi> = {
  name: 'vcard',
  storage: { accountPartitions: [VCARD_PREFIX] },
  // The tenant item's `vcard` block (README "Profiles and private data").
  settings: { key: 'vcard', schema: VCardSettingsSchema },
  install: installVCard,
};

/**
 * XEP-0153 §4.1: an available presence carries <x xmlns='vcard-temp:x:update'> with the hash of the
 * avatar in the user's vCard, or an empty <photo/> for none. A client that put a <photo/> in (empty
 * or not) knows best and is left alone; for one that sent no update element, or the empty one of
 * "not ready" (§4.1 rule 2), the server adds the hash of the stored vCard. An account that never
 * stored a vCard gets nothing added. The hash is read from its small item (store.ts): one GetItem
 * per such presence, for tenants that switch this module on.
 */
async function stampAvatar(store: VCardStore, { origin, stanza }: StanzaEvent): Promise<undefined> {
  if (stanza.attrs.type !== undefined) return undefined;
  let x = stanza.getChild('x', NS_VCARD_UPDATE);
  if (x?.getChild('photo')) return undefined;
  const hash = await store.photo(origin.jid.bare().toString());
  if (hash === undefined) return undefined;
  if (!x) {
    x = xml('x', { xmlns: NS_VCARD_UPDATE });
    stanza.cnode(x);
  }
  x.cnode(xml('photo', {}, ...(hash ? [hash] : [])));
  return undefined;
}

export const vcardAvatars: XmppModule = {
  name: 'vcard-avatars',
  enabled: 'optional',
  depends: ['vcard'],
  install(ctx) {
    const { store } = ctx.depends<VCardApi>('vcard');
    // Before the presence module (priority 0) broadcasts it and keeps it for probes: the user's own
    // broadcast presence; and presence to a room, entering it or changing status there (§4.1 rule 1:
    // "directed presence sent when joining XEP-0045 rooms"), before the MUC service (priority 0)
    // stores and relays it.
    ctx.hook('presence/self', (e) => (e.stanza.attrs.to ? undefined : stampAvatar(store, e)), 10);
    ctx.hook('presence/component/muc', (e) => (e.to.local && e.to.resource ? stampAvatar(store, e) : undefined), 10);
  },
};

type MucApi = typeof muc extends XmppModule<infer A> ? A : never;

/**
 * vCard requests to rooms, answered by the service, ahead of the MUC's own IQ handling (which would
 * forward a request to an occupant's client, or refuse one to the room with service-unavailable):
 * - to the room: a vCard for the room with its name as FN (an empty vCard for a room without one);
 * - to an occupant (room@service/nick): the occupant's real user's vCard, read at their bare JID, as
 *   Prosody's MUC does by sending the request there (XEP-0153 §3.2: avatars are fetched at the bare
 *   JID, and a client in a room knows only the occupant JID). Only occupants may ask, as for any IQ
 *   to an occupant (XEP-0045 §6.6 / the MUC module's rule); the answer comes from the occupant JID.
 * Cost: the room (one GetItem), and the vCard (one more) for an occupant.
 */
async function roomVCard(api: MucApi, vcards: VCardApi, event: StanzaEvent): Promise<true | undefined> {
  const { server, origin, stanza, to, tenant } = event;
  if (stanza.attrs.type !== 'get' || !to.local || !tenant) return undefined;
  const children = stanza.children.filter((c): c is Element => typeof c !== 'string');
  if (children.length !== 1 || !children[0].is('vCard', NS_VCARD)) return undefined;
  const c = await api.context(tenant);
  if (!c) return undefined;
  const room = await c.muc.rooms.get(tenant, to.local);
  const occupant = room && Object.values(room.occupants).some((o) => o.sessions[origin.jid.toString()]);
  if (!room || (room.locked && !occupant)) throw new StanzaError('item-not-found', 'no such room');
  let answer: Element;
  if (!to.resource) {
    answer = empty();
    if (room.config.name) answer.cnode(xml('FN', {}, room.config.name));
  } else {
    if (!occupant) throw new StanzaError('bad-request', 'you are not in this room');
    const target = room.occupants[to.resource];
    if (!target) throw new StanzaError('item-not-found', `nobody is in the room as ${to.resource}`);
    answer = await vcards.vcardOf(target.bare);
  }
  await server.send(origin, xml('iq', { xmlns: NS.CLIENT, type: 'result', id: stanza.attrs.id, from: stanza.attrs.to, to: origin.jid.toString() }, answer));
  return true;
}

export const vcardMuc: XmppModule = {
  name: 'vcard-muc',
  depends: ['vcard', 'muc'],
  install(ctx) {
    const api = ctx.depends<MucApi>('muc');
    const vcards = ctx.depends<VCardApi>('vcard');
    ctx.hook('iq/component/muc', (e) => roomVCard(api, vcards, e), 10);
  },
};
