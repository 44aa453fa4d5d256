// XEP-0049 Private XML Storage with real clients: set and get per namespace, the refusals of §2.3
// (reserved namespaces, another user's data, malformed requests), the tenant's limits, the costs;
// and that a tenant purge takes vCards (XEP-0054) and private data with it.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { TenantPurger, purgePlanOf } from '../../lib/admin/purge.ts';
import { NS_PRIVATE } from '../../lib/extensions/private/index.ts';
import { NS_VCARD } from '../../lib/extensions/vcard/index.ts';
import { createDynamoClient } from '../../lib/store/dynamo.ts';
import { type Element, type TestClient, type TestServer, WAIT_MS, connectClient, startTestServer, xml } from '../support/harness.ts';
import { STANZAS } from '../support/muc.ts';

const D = 'private.test';
const LIMITED = 'small-private.test';
const PURGED = 'purged-profiles.test';
// Opaque data in a namespace of its own: storage:bookmarks is answered from PEP (bookmarks.test.ts).
const BOOKMARKS = 'urn:example:bookmarks';

const conditionOf = (el: Element) => el.getChild('error')?.children.find((c): c is Element => typeof c !== 'string' && c.attrs.xmlns === STANZAS && c.name !== 'text')?.name;
const errorText = (el: Element) => el.getChild('error')?.getChildText('text', STANZAS) ?? '';
const bookmarks = (...names: string[]) => xml('storage', { xmlns: BOOKMARKS }, ...names.map((name) => xml('conference', { jid: `${name.toLowerCase()}@conference.${D}`, name, autojoin: 'true' })));

describe('XEP-0049 Private XML Storage', () => {
  let s: TestServer;
  const clients: TestClient[] = [];
  const login = async (username: string, domain = D) => {
    const c = await connectClient(s.url, { username, resource: 'r', domain });
    clients.push(c);
    return c;
  };
  let n = 0;
  const ask = async (c: TestClient, attrs: Record<string, string>, ...payload: Element[]) => {
    const id = `p${++n}`;
    await c.send(xml('iq', { id, ...attrs }, xml('query', { xmlns: NS_PRIVATE }, ...payload)));
    return c.waitFor((el) => el.name === 'iq' && el.attrs.id === id && (el.attrs.type === 'result' || el.attrs.type === 'error'), WAIT_MS, `answer to ${id}`);
  };
  const costOf = async (fn: () => Promise<unknown>) => {
    const cost = await s.cost(fn);
    return { counts: { reads: cost.reads, writes: cost.writes, posts: cost.posts }, calls: JSON.stringify(cost.calls) };
  };

  let alice: TestClient;
  let bob: TestClient;

  before(async () => {
    s = await startTestServer({ seedDomains: [] });
    await s.server.tenants.put({ domain: D, enabled: true });
    await s.server.tenants.put({ domain: LIMITED, enabled: true, privateStorage: { maxItemBytes: 200, maxItems: 2 } });
    for (const u of ['alice', 'bob']) await s.addUser(`${u}@${D}`);
    await s.addUser(`lee@${LIMITED}`);
    alice = await login('alice');
    bob = await login('bob');
  });
  after(async () => {
    for (const c of clients) await c.stop();
    await s.stop();
  });

  it('§2.3: nothing stored yet: the element asked for comes back empty; one read, one post', async () => {
    let res: Element | undefined;
    const cost = await costOf(async () => (res = await ask(alice, { type: 'get' }, xml('storage', { xmlns: BOOKMARKS }))));
    assert.equal(res!.attrs.type, 'result', res!.toString());
    const storage = res!.getChild('query', NS_PRIVATE)!.getChild('storage', BOOKMARKS);
    assert.ok(storage);
    assert.equal(storage.children.length, 0);
    assert.deepEqual(cost.counts, { reads: 1, writes: 0, posts: 1 }, cost.calls);
  });

  it('§2.3: a set stores a namespace (three writes the first time: the try, the count, the item; one to replace it) and a get returns it', async () => {
    let res: Element | undefined;
    const first = await costOf(async () => (res = await ask(alice, { type: 'set' }, bookmarks('Lounge'))));
    assert.equal(res!.attrs.type, 'result', res!.toString());
    assert.deepEqual(first.counts, { reads: 0, writes: 3, posts: 1 }, first.calls);

    const again = await costOf(async () => (res = await ask(alice, { type: 'set' }, bookmarks('Lounge', 'Kitchen'))));
    assert.equal(res!.attrs.type, 'result');
    assert.deepEqual(again.counts, { reads: 0, writes: 1, posts: 1 }, again.calls);

    const got = await ask(alice, { type: 'get' }, xml('storage', { xmlns: BOOKMARKS }));
    const names = got.getChild('query', NS_PRIVATE)!.getChild('storage', BOOKMARKS)!.getChildren('conference').map((c: Element) => c.attrs.name);
    assert.deepEqual(names, ['Lounge', 'Kitchen']);
    // Addressed to one's own bare JID, the same.
    const toSelf = await ask(alice, { type: 'get', to: `alice@${D}` }, xml('storage', { xmlns: BOOKMARKS }));
    assert.equal(toSelf.getChild('query', NS_PRIVATE)!.getChild('storage', BOOKMARKS)!.getChildren('conference').length, 2);
  });

  it('§2.3: namespaces are kept apart, and accounts too', async () => {
    assert.equal((await ask(alice, { type: 'set' }, xml('prefs', { xmlns: 'urn:example:prefs' }, xml('theme', {}, 'dark')))).attrs.type, 'result');
    const prefs = await ask(alice, { type: 'get' }, xml('prefs', { xmlns: 'urn:example:prefs' }));
    assert.equal(prefs.getChild('query', NS_PRIVATE)!.getChild('prefs', 'urn:example:prefs')!.getChildText('theme'), 'dark');
    assert.equal((await ask(alice, { type: 'get' }, xml('storage', { xmlns: BOOKMARKS }))).getChild('query', NS_PRIVATE)!.getChild('storage', BOOKMARKS)!.getChildren('conference').length, 2);
    // Bob has none of Alice's data.
    const his = await ask(bob, { type: 'get' }, xml('storage', { xmlns: BOOKMARKS }));
    assert.equal(his.getChild('query', NS_PRIVATE)!.getChild('storage', BOOKMARKS)!.children.length, 0);
  });

  it("§2.3: another user's data is forbidden, to get and to set; so is the server's address", async () => {
    assert.equal(conditionOf(await ask(bob, { type: 'get', to: `alice@${D}` }, xml('storage', { xmlns: BOOKMARKS }))), 'forbidden');
    assert.equal(conditionOf(await ask(bob, { type: 'set', to: `alice@${D}` }, bookmarks('Trap'))), 'forbidden');
    assert.equal(conditionOf(await ask(bob, { type: 'get', to: D }, xml('storage', { xmlns: BOOKMARKS }))), 'forbidden');
    const names = (await ask(alice, { type: 'get' }, xml('storage', { xmlns: BOOKMARKS }))).getChild('query', NS_PRIVATE)!.getChild('storage', BOOKMARKS)!.getChildren('conference').map((c: Element) => c.attrs.name);
    assert.deepEqual(names, ['Lounge', 'Kitchen']);
  });

  it('§2.3: reserved namespaces (jabber:*, http://jabber.org/*, vcard-temp, an element without its own namespace) get not-acceptable', async () => {
    for (const el of [xml('query', { xmlns: 'jabber:client' }), xml('x', { xmlns: 'jabber:server' }), xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' }), xml('vCard', { xmlns: NS_VCARD }, xml('FN', {}, 'Hamlet'))]) {
      assert.equal(conditionOf(await ask(alice, { type: 'set' }, el)), 'not-acceptable', el.toString());
      assert.equal(conditionOf(await ask(alice, { type: 'get' }, el)), 'not-acceptable', el.toString());
    }
    // No xmlns of its own: it is in jabber:iq:private itself.
    const bare = await ask(alice, { type: 'set' }, xml('notes'));
    assert.equal(conditionOf(bare), 'not-acceptable', bare.toString());
  });

  it('§2.3: malformed requests: a get without a child or with two is bad-request; a set without a child is not-acceptable', async () => {
    assert.equal(conditionOf(await ask(alice, { type: 'get' })), 'bad-request');
    assert.equal(conditionOf(await ask(alice, { type: 'get' }, xml('storage', { xmlns: BOOKMARKS }), xml('prefs', { xmlns: 'urn:example:prefs' }))), 'bad-request');
    assert.equal(conditionOf(await ask(alice, { type: 'set' })), 'not-acceptable');
  });

  it("limits: data over privateStorage.maxItemBytes is not-acceptable, a namespace past privateStorage.maxItems a policy-violation, both naming the limit; nothing is stored", async () => {
    const lee = await login('lee', LIMITED);
    let res = await ask(lee, { type: 'set' }, xml('big', { xmlns: 'urn:example:big' }, 'x'.repeat(300)));
    assert.equal(conditionOf(res), 'not-acceptable', res.toString());
    assert.match(errorText(res), /privateStorage\.maxItemBytes.*200/);
    assert.equal(res.getChild('query', NS_PRIVATE)?.children.length ?? 0, 0, 'the oversized data is not echoed');
    assert.equal((await ask(lee, { type: 'set' }, xml('a', { xmlns: 'urn:example:a' }))).attrs.type, 'result');
    assert.equal((await ask(lee, { type: 'set' }, xml('b', { xmlns: 'urn:example:b' }))).attrs.type, 'result');
    // Replacing a namespace already used is fine; a third one is not.
    assert.equal((await ask(lee, { type: 'set' }, xml('a', { xmlns: 'urn:example:a' }, 'again'))).attrs.type, 'result');
    let cost: Awaited<ReturnType<typeof costOf>> | undefined;
    cost = await costOf(async () => (res = await ask(lee, { type: 'set' }, xml('c', { xmlns: 'urn:example:c' }))));
    assert.equal(conditionOf(res), 'policy-violation', res.toString());
    assert.match(errorText(res), /privateStorage\.maxItems/);
    // The conditional put, the refused count; the error.
    assert.deepEqual(cost.counts, { reads: 0, writes: 2, posts: 1 }, cost.calls);
    const c = await ask(lee, { type: 'get' }, xml('c', { xmlns: 'urn:example:c' }));
    assert.equal(c.getChild('query', NS_PRIVATE)!.getChild('c', 'urn:example:c')!.children.length, 0);
  });

  it("a tenant purge removes its accounts' vCards and private data, and nobody else's", async () => {
    await s.server.tenants.put({ domain: PURGED, enabled: true });
    await s.addUser(`gone@${PURGED}`);
    const gone = await login('gone', PURGED);
    assert.equal((await gone.iq(xml('iq', { type: 'set' }, xml('vCard', { xmlns: NS_VCARD }, xml('FN', {}, 'Gone'))))).attrs.type, 'result');
    assert.equal((await ask(gone, { type: 'set' }, bookmarks('Lounge'))).attrs.type, 'result');
    await gone.stop();

    const db = createDynamoClient({ endpoint: s.dynamoEndpoint, localCredentials: true });
    try {
      const keys = async (domain: string) => ((await db.send(new ScanCommand({ TableName: s.table, ProjectionExpression: 'pk, sk' }))).Items ?? []).map((i) => `${i.pk}|${i.sk}`).filter((k) => k.includes(domain) && /^(vcard|private)#/.test(k));
      assert.deepEqual((await keys(PURGED)).sort(), [`private#gone@${PURGED}|@count`, `private#gone@${PURGED}|ns#${BOOKMARKS}`, `vcard#gone@${PURGED}|photo`, `vcard#gone@${PURGED}|vcard`]);
      const before = (await keys(D)).length;
      assert.ok(before > 0);
      const purger = new TenantPurger(db, s.table, purgePlanOf(s.server));
      await s.server.tenants.remove(PURGED);
      await purger.request(PURGED);
      await purger.runPending();
      assert.deepEqual(await keys(PURGED), []);
      assert.equal((await keys(D)).length, before);
    } finally {
      db.destroy();
    }
  });
});
