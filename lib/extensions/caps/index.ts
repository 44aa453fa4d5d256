// XEP-0115 Entity Capabilities (version 1.6): each resource's presence carries
// <c xmlns='http://jabber.org/protocol/caps' hash node ver/>, the hash of its disco#info. The server
// learns what a hash stands for once (§6.2: a disco#info query to `node#ver`, verified by the §5
// algorithm, §5.4) and remembers it per tenant: one item per hash, `caps#<tenant>` / `<hash>#<ver>`,
// and this process's memory. PEP reads the `+notify` features from it (XEP-0163 §4.2).
//
//   hash.ts   the §5 verification string and hash (pure)
//
// Costs (docs/architecture.md "Cost is a feature"): the ver needs no write of its own, since the
// presence module keeps each resource's last presence, <c/> included, in its session entry, which
// presence fan-out and PEP notifications read anyway. A hash this process knows: 0 calls. A hash
// new to this process: one GetItem. A hash new to the tenant: one IQ round trip with the client
// (one post each way) and one PutItem.
import { randomBytes } from 'node:crypto';
import { BatchGetCommand, BatchWriteCommand, GetCommand, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import type { ModuleContext, XmppModule } from '../../core/modules.ts';
import type { Session, StanzaEvent } from '../../core/events.ts';
import type { XmppServer } from '../../core/server.ts';
import { NS } from '../../xmpp/namespaces.ts';
import { type Element, parseFrame, xml } from '../../xmpp/xml.ts';
import { NS_CAPS, capsHash, capsOf } from './hash.ts';

export { NS_CAPS };

const CAPS_PREFIX = 'caps';
/** IQ ids of the server's disco#info queries: `caps:<hash>:<random>` (the reply carries node#ver). */
const ID_PREFIX = 'caps:';

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
  /**
   * The same for many session entries (a fan-out's audience): the hashes this process does not know
   * are read together, one BatchGetItem per 100 of them.
   */
  featuresOfMany(tenant: string, presences: (string | undefined)[]): Promise<string[][]>;
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

  // Hashes this process asked a client about, and when: until the answer (or ASK_MS), they are
  // unknown without another read (the initial presence that asked wants them at once, XEP-0163 §4.3.4).
  const asking = new Map<string, number>();
  const ASK_MS = 30_000;

  async function lookup(tenant: string, c: { hash: string; ver: string }): Promise<string[] | undefined> {
    const key = keyOf(tenant, c);
    const hit = known.get(`${tenant} ${key.sk}`);
    if (hit) return hit;
    const askedAt = asking.get(`${tenant} ${key.sk}`);
    if (askedAt !== undefined && server.clock.now() - askedAt < ASK_MS) return undefined;
    const res = await store.db.send(new GetCommand({ TableName: store.table, Key: key }));
    const features = res.Item?.features as string[] | undefined;
    if (features) remember(`${tenant} ${key.sk}`, features);
    return features;
  }

  const parse = (p: string | Element | undefined) => (p === undefined ? undefined : capsOf(typeof p === 'string' ? parseFrame(p) : p));

  const listeners: ((event: CapsLearnedEvent) => Promise<void>)[] = [];
  const api: CapsApi = {
    onLearned: (fn) => void listeners.push(fn),
    async featuresOfMany(tenant, presences) {
      const parsed = presences.map((p) => parse(p));
      const missing = new Map<string, Record<string, string>>();
      for (const c of parsed) {
        if (!c) continue;
        const key = keyOf(tenant, c);
        if (!known.has(`${tenant} ${key.sk}`)) missing.set(key.sk, key);
      }
      const keys = [...missing.values()];
      for (let i = 0; i < keys.length; i += 100) {
        let request: Record<string, { Keys: Record<string, unknown>[] }> | undefined = { [store.table]: { Keys: keys.slice(i, i + 100) } };
        while (request && Object.keys(request).length) {
          const res = await store.db.send(new BatchGetCommand({ RequestItems: request }));
          for (const item of res.Responses?.[store.table] ?? []) remember(`${tenant} ${item.sk as string}`, item.features as string[]);
          request = res.UnprocessedKeys as typeof request;
        }
      }
      return parsed.map((c) => (c ? (known.get(`${tenant} ${keyOf(tenant, c).sk}`) ?? []) : []));
    },
    async featuresOf(tenant, presence) {
      const c = parse(presence);
      return c ? ((await lookup(tenant, c)) ?? []) : [];
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
      if (asking.size >= MAX_CACHED) asking.clear();
      asking.set(`${origin.jid.domain} ${keyOf(origin.jid.domain, c).sk}`, server.clock.now());
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
    // Answers to a question asked twice (two resources with one new hash) are written once per process.
    if (!known.has(`${origin.jid.domain} ${key.sk}`)) {
      await store.db.send(new PutCommand({ TableName: store.table, Item: { ...key, features } }));
      remember(`${origin.jid.domain} ${key.sk}`, features);
      asking.delete(`${origin.jid.domain} ${key.sk}`);
    }
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
        let requests = keys.slice(i, i + 25).map((k) => ({ DeleteRequest: { Key: { pk: k.pk, sk: k.sk } } }));
        // What DynamoDB leaves unprocessed is sent again; a purge that cannot finish throws and is resumed.
        for (let attempt = 0; requests.length; attempt++) {
          if (attempt === 6) throw new Error(`caps purge of ${domain}: ${requests.length} items left`);
          const out = await db.send(new BatchWriteCommand({ RequestItems: { [table]: requests } }));
          requests = (out.UnprocessedItems?.[table] ?? []) as typeof requests;
        }
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
