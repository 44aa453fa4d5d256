// XEP-0115 Entity Capabilities (version 1.6): each resource's presence carries
// <c xmlns='http://jabber.org/protocol/caps' hash node ver/>, the hash of its disco#info. The server
// learns what a hash stands for once (§6.2: a disco#info query to `node#ver`, verified by the §5
// algorithm, §5.4) and remembers it per tenant: one item per hash, `caps#<tenant>` / `<hash>#<ver>`,
// and this process's memory. PEP reads the `+notify` features from it (XEP-0163 §4.2).
//
// Costs (docs/architecture.md "Cost is a feature"): the ver needs no write of its own, since the
// presence module keeps each resource's last presence, <c/> included, in its session entry, which
// presence fan-out and PEP notifications read anyway. A hash this process knows: 0 calls. A hash
// new to this process: one GetItem. A hash new to the tenant: one IQ round trip with the client
// (one post each way) and one PutItem.
import { createHash, randomBytes } from 'node:crypto';
import { GetCommand, PutCommand, QueryCommand, BatchWriteCommand } from '@aws-sdk/lib-dynamodb';
import type { ModuleContext, XmppModule } from '../core/modules.ts';
import type { Session, StanzaEvent } from '../core/events.ts';
import type { XmppServer } from '../core/server.ts';
import { NS } from '../xmpp/namespaces.ts';
import { type Element, parseFrame, xml } from '../xmpp/xml.ts';

export const NS_CAPS = 'http://jabber.org/protocol/caps';
const NS_DATA = 'jabber:x:data';
const CAPS_PREFIX = 'caps';
/** IQ ids of the server's disco#info queries: `caps:<hash>:<random>` (the reply carries node#ver). */
const ID_PREFIX = 'caps:';

/** §5.1 hash functions (from the IANA registry) we verify; others are ignored (§5.4 3.3). */
const HASHES: Record<string, string> = { 'sha-1': 'sha1', 'sha-256': 'sha256', 'sha-512': 'sha512' };

/** The <c/> of a presence: hash, node and ver; undefined without one (or a legacy one, §8.4). */
export function capsOf(presence: Element): { hash: string; node: string; ver: string } | undefined {
  const c = presence.getChild('c', NS_CAPS);
  const { hash, node, ver } = (c?.attrs ?? {}) as Record<string, string | undefined>;
  if (!hash || !node || !ver || !HASHES[hash]) return undefined;
  return { hash, node, ver };
}

/**
 * §5.1 the verification string of a disco#info <query/>, or undefined when §5.4 says to reject it
 * (3.3: duplicate identities or features, more than one form of a FORM_TYPE, a FORM_TYPE that is
 * not hidden). Pure.
 */
export function verificationString(query: Element): string | undefined {
  const els = (name: string, el: Element = query) => el.children.filter((c): c is Element => typeof c !== 'string' && c.name === name);
  const identities = els('identity').map((i) => `${i.attrs.category ?? ''}/${i.attrs.type ?? ''}/${i.attrs['xml:lang'] ?? ''}/${i.attrs.name ?? ''}`);
  const features = els('feature').map((f) => String(f.attrs.var ?? ''));
  if (new Set(identities).size !== identities.length || new Set(features).size !== features.length) return undefined;
  let s = '';
  // §5.1 2-4: identities by category, type, xml:lang (the string sorts the same way), then features.
  for (const i of identities.sort(octets)) s += `${i}<`;
  for (const f of features.sort(octets)) s += `${f}<`;
  // §5.1 5: extended service discovery forms (XEP-0128), by FORM_TYPE.
  const forms: { type: string; fields: { name: string; values: string[] }[] }[] = [];
  for (const x of query.children) {
    if (typeof x === 'string' || x.name !== 'x' || x.attrs.xmlns !== NS_DATA) continue;
    const fields = els('field', x);
    const formType = fields.find((f) => f.attrs.var === 'FORM_TYPE');
    if (!formType) continue; // §5.4 3.6: a form without FORM_TYPE is ignored.
    if (formType.attrs.type !== 'hidden') return undefined;
    const type = els('value', formType).map((v) => v.text())[0] ?? '';
    if (forms.some((f) => f.type === type)) return undefined;
    forms.push({
      type,
      fields: fields.filter((f) => f !== formType).map((f) => ({ name: String(f.attrs.var ?? ''), values: els('value', f).map((v) => v.text()).sort(octets) })),
    });
  }
  for (const form of forms.sort((a, b) => octets(a.type, b.type))) {
    s += `${form.type}<`;
    for (const f of form.fields.sort((a, b) => octets(a.name, b.name))) {
      s += `${f.name}<`;
      for (const v of f.values) s += `${v}<`;
    }
  }
  return s;
}

/** §5.1 6-8: the ver of a disco#info <query/> with hash function `hash` (IANA name). Pure. */
export function capsHash(query: Element, hash = 'sha-1'): string | undefined {
  const s = verificationString(query);
  const algo = HASHES[hash];
  if (s === undefined || !algo) return undefined;
  return createHash(algo).update(s, 'utf8').digest('base64');
}

/** §5.1 1: sorting is by "i;octet" collation (RFC 4790), i.e. by UTF-8 bytes. */
function octets(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** A session's hash became known (after the server's disco#info query); PEP sends last items then. */
export interface CapsLearnedEvent {
  server: XmppServer;
  origin: Session;
  features: string[];
}

/** What the caps module offers (ctx.depends('caps')). */
export interface CapsApi {
  /** The features behind a session entry's last presence (its <c/>); [] when unknown. Memory, else one GetItem per hash. */
  featuresOf(tenant: string, presence: string | Element | undefined): Promise<string[]>;
  /** The same for many entries at once, reading each unknown hash once. */
  featuresOfMany(tenant: string, presences: (string | Element | undefined)[]): Promise<string[][]>;
  /** Calls `fn` when a session's hash became known through the server's own query (§6.2). */
  onLearned(fn: (event: CapsLearnedEvent) => Promise<void>): void;
}

/** Features per `<tenant> <hash>#<ver>`, for this process (immutable facts: a hash names one set). */
const MAX_CACHED = 10_000;

function install(ctx: ModuleContext): CapsApi {
  const { server } = ctx;
  const store = ctx.openStore();
  const known = new Map<string, string[]>();
  const remember = (key: string, features: string[]) => {
    if (known.size >= MAX_CACHED) known.delete(known.keys().next().value as string);
    known.set(key, features);
  };
  const keyOf = (tenant: string, c: { hash: string; ver: string }) => ({ pk: store.pk(CAPS_PREFIX, tenant), sk: `${c.hash}#${c.ver}` });

  async function lookup(tenant: string, c: { hash: string; ver: string }): Promise<string[] | undefined> {
    const key = keyOf(tenant, c);
    const hit = known.get(`${tenant} ${key.sk}`);
    if (hit) return hit;
    const res = await store.db.send(new GetCommand({ TableName: store.table, Key: key }));
    const features = res.Item?.features as string[] | undefined;
    if (features) remember(`${tenant} ${key.sk}`, features);
    return features;
  }

  const parse = (p: string | Element | undefined) => (p === undefined ? undefined : capsOf(typeof p === 'string' ? parseFrame(p) : p));

  const listeners: ((event: CapsLearnedEvent) => Promise<void>)[] = [];
  const api: CapsApi = {
    onLearned: (fn) => void listeners.push(fn),
    async featuresOf(tenant, presence) {
      const c = parse(presence);
      return c ? ((await lookup(tenant, c)) ?? []) : [];
    },
    async featuresOfMany(tenant, presences) {
      const out: string[][] = [];
      for (const p of presences) out.push(await api.featuresOf(tenant, p));
      return out;
    },
  };

  // §6.2 / §6.3: a presence with a hash we do not know → ask that resource for node#ver. Before the
  // presence module (priority 10), passing the stanza on.
  ctx.hook(
    'presence/self',
    async ({ origin, stanza }: StanzaEvent) => {
      if (stanza.attrs.type !== undefined || stanza.attrs.to) return undefined;
      const c = capsOf(stanza);
      if (!c || (await lookup(origin.jid.domain, c))) return undefined;
      const id = `${ID_PREFIX}${c.hash}:${randomBytes(6).toString('hex')}`;
      await server.send(origin, xml('iq', { xmlns: NS.CLIENT, type: 'get', id, from: origin.jid.bare().toString(), to: origin.jid.toString() }, xml('query', { xmlns: NS.DISCO_INFO, node: `${c.node}#${c.ver}` })));
      return undefined;
    },
    10,
  );

  // The answer comes back as an IQ result to the account's bare JID, which the router drops; it is
  // seen here first. §5.4: the ver is computed again from the answer, and only a match is kept.
  ctx.hook('stanza/in', async ({ origin, stanza }) => {
    if (stanza.name !== 'iq' || stanza.attrs.type !== 'result' || !String(stanza.attrs.id ?? '').startsWith(ID_PREFIX)) return;
    const hash = String(stanza.attrs.id).slice(ID_PREFIX.length).split(':')[0];
    const query = stanza.getChild('query', NS.DISCO_INFO);
    const node = String(query?.attrs.node ?? '');
    const ver = node.slice(node.lastIndexOf('#') + 1);
    if (!query || !node.includes('#') || capsHash(query, hash) !== ver) {
      ctx.log.info({ jid: origin.jid.toString(), node }, 'caps: the answer does not match its hash; not kept');
      return;
    }
    const features = query.getChildren('feature').map((f: Element) => String(f.attrs.var));
    const key = keyOf(origin.jid.domain, { hash, ver });
    await store.db.send(new PutCommand({ TableName: store.table, Item: { ...key, features } }));
    remember(`${origin.jid.domain} ${key.sk}`, features);
    for (const fn of listeners) await fn({ server, origin, features });
  });

  // The tenant's hashes go with its purge.
  ctx.addPurgeStep(async (db, table, domain) => {
    const pk = store.pk(CAPS_PREFIX, domain);
    let start: Record<string, unknown> | undefined;
    do {
      const page = await db.send(new QueryCommand({ TableName: table, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': pk }, ProjectionExpression: 'pk, sk', ExclusiveStartKey: start }));
      const keys = page.Items ?? [];
      for (let i = 0; i < keys.length; i += 25) {
        await db.send(new BatchWriteCommand({ RequestItems: { [table]: keys.slice(i, i + 25).map((k) => ({ DeleteRequest: { Key: { pk: k.pk, sk: k.sk } } })) } }));
      }
      start = page.LastEvaluatedKey;
    } while (start);
  });

  return api;
}

export const caps: XmppModule<CapsApi> = {
  name: 'caps',
  storage: { partitions: [CAPS_PREFIX] },
  install,
};
