// XEP-0402 PEP Native Bookmarks with XEP-0048 compatibility (the `#compat` feature, §3.3) with real
// clients: a bookmark published to `urn:xmpp:bookmarks:1` is seen through XEP-0049 private storage as
// `storage:bookmarks`, a private-storage set becomes the PEP items (one per room), the user's other
// resource is notified either way, and what each step costs. Likewise `#compat-pep`: the XEP-0048 PEP node
// `storage:bookmarks` (one item `current`) is read from and written to `urn:xmpp:bookmarks:1`, and a
// resource with `storage:bookmarks+notify` hears of every change as the whole list.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Element, type TestClient, type TestServer, connectClient, startTestServer, xml } from '../support/harness.ts';
import { DISCO_INFO, PUBSUB, PUBSUB_EVENT as EVENT, itemsIq, onlineWithCaps, pepEvent, publishIq } from '../support/pep.ts';

const PRIVATE = 'jabber:iq:private';
const LEGACY = 'storage:bookmarks';
const BOOKMARKS = 'urn:xmpp:bookmarks:1';
/** XEP-0402 §3 Example 3's publish-options. */
const OPTIONS = { 'pubsub#persist_items': 'true', 'pubsub#max_items': 'max', 'pubsub#send_last_published_item': 'never', 'pubsub#access_model': 'whitelist' };

let s: TestServer;
let n = 0;
const clients: TestClient[] = [];
async function user(): Promise<string> {
  const name = `bm${++n}`;
  await s.addUser(`${name}@localhost`);
  return name;
}
async function online(name: string, resource: string, notify: string[]): Promise<TestClient> {
  const c = await onlineWithCaps(s, name, resource, notify);
  clients.push(c);
  return c;
}
const publish = (id: string, conference: Element) => publishIq(BOOKMARKS, id, conference, OPTIONS);
const conference = (attrs: Record<string, string>, ...children: Element[]) => xml('conference', { xmlns: BOOKMARKS, ...attrs }, ...children);
const privateGet = () => xml('iq', { type: 'get' }, xml('query', { xmlns: PRIVATE }, xml('storage', { xmlns: LEGACY })));
const privateSet = (...payload: Element[]) => xml('iq', { type: 'set' }, xml('query', { xmlns: PRIVATE }, ...payload));
const legacy = (...conferences: Element[]) => xml('storage', { xmlns: LEGACY }, ...conferences);
const pepItems = async (c: TestClient) => (await c.iq(itemsIq(BOOKMARKS))).getChild('pubsub')!.getChild('items')!.getChildren('item');
const legacyOf = async (c: TestClient) => (await c.iq(privateGet())).getChild('query', PRIVATE)!.getChild('storage', LEGACY)!.getChildren('conference');
/** A bookmarks notification (XEP-0402 §4) whose <items/> satisfies `pred`. */
const bookmarksEvent = (owner: string, pred: (items: Element) => boolean) => pepEvent(`${owner}@localhost`, BOOKMARKS, pred);
/** A storage:bookmarks notification (XEP-0048 over PEP) whose one item's <storage/> satisfies `pred`. */
const legacyEvent = (owner: string, pred: (storage: Element) => boolean) =>
  pepEvent(`${owner}@localhost`, LEGACY, (items) => {
    const storage = items.getChild('item')?.getChild('storage', LEGACY);
    return items.getChildren('item').length === 1 && items.getChild('item')!.attrs.id === 'current' && !!storage && pred(storage);
  });
/** The storage:bookmarks PEP node's items (XEP-0060 §6.5). */
const legacyPepItems = async (c: TestClient) => (await c.iq(itemsIq(LEGACY))).getChild('pubsub')!.getChild('items')!.getChildren('item');
const jids = (storage: Element) => storage.getChildren('conference').map((c: Element) => String(c.attrs.jid)).sort();
const counts = (c: { reads: number; writes: number; posts: number }) => ({ reads: c.reads, writes: c.writes, posts: c.posts });

before(async () => {
  s = await startTestServer({ tenantWatchMs: 3_600_000 });
});
after(async () => {
  for (const c of clients) await c.stop();
  await s.stop();
});

describe('XEP-0402 PEP Native Bookmarks, compatible with XEP-0048 in private storage', () => {
  it('the account advertises urn:xmpp:bookmarks:1#compat and #compat-pep (XEP-0402 §3.3) and pubsub#config-node-max (Converse asks max_items 9999 without it)', async () => {
    const a = await user();
    const c = await connectClient(s.url, { username: a });
    clients.push(c);
    const info = (await c.iq(xml('iq', { type: 'get', to: `${a}@localhost` }, xml('query', { xmlns: DISCO_INFO })))).getChild('query')!;
    for (const feature of [`${BOOKMARKS}#compat`, `${BOOKMARKS}#compat-pep`, `${PUBSUB}#config-node-max`]) assert.ok(info.getChildren('feature').some((f: Element) => f.attrs.var === feature), feature);
  });

  it('a bookmark published with autojoin reaches the other resource and reads back through private storage as storage:bookmarks', async () => {
    const a = await user();
    const one = await online(a, 'one', [BOOKMARKS]);
    const two = await online(a, 'two', [BOOKMARKS]);
    await one.iq(publish('theplay@conference.localhost', conference({ name: "The Play's the Thing", autojoin: 'true' }, xml('nick', {}, 'JC'))));
    const event = await two.waitFor(bookmarksEvent(a, (items) => items.getChild('item')?.attrs.id === 'theplay@conference.localhost'));
    assert.equal(event.getChild('event', EVENT)!.getChild('items')!.getChild('item')!.getChild('conference', BOOKMARKS)!.attrs.autojoin, 'true');

    let got: Element[] = [];
    const cost = await s.cost(async () => (got = await legacyOf(two)));
    // The PEP node's GetItem; the result.
    assert.deepEqual(counts(cost), { reads: 1, writes: 0, posts: 1 }, JSON.stringify(cost.calls));
    assert.deepEqual(
      got.map((c) => c.toString()),
      [xml('conference', { jid: 'theplay@conference.localhost', name: "The Play's the Thing", autojoin: 'true' }, xml('nick', {}, 'JC')).toString()],
    );
    // A retraction (XEP-0402 §3.4) is gone from the legacy view too.
    await one.iq(xml('iq', { type: 'set' }, xml('pubsub', { xmlns: PUBSUB }, xml('retract', { node: BOOKMARKS, notify: 'true' }, xml('item', { id: 'theplay@conference.localhost' })))));
    await two.waitFor(bookmarksEvent(a, (items) => items.getChild('retract')?.attrs.id === 'theplay@conference.localhost'));
    assert.deepEqual(await legacyOf(two), []);
  });

  it('a private-storage set becomes one PEP item per room, notified to the other resource; only what changed is published', async () => {
    const a = await user();
    const one = await online(a, 'one', [BOOKMARKS]);
    const two = await online(a, 'two', [BOOKMARKS]);
    // Nothing yet: an empty list (XEP-0049 §2.3); the node and the private item, neither there.
    const empty = await s.cost(async () => assert.deepEqual(await legacyOf(one), []));
    assert.deepEqual(counts(empty), { reads: 2, writes: 0, posts: 1 }, JSON.stringify(empty.calls));

    const first = await s.cost(async () => {
      await one.iq(privateSet(legacy(xml('conference', { jid: 'lounge@conference.localhost', name: 'Lounge', autojoin: 'true' }, xml('nick', {}, 'ann')), xml('conference', { jid: 'kitchen@conference.localhost', name: 'Kitchen', autojoin: '0' }))));
      await two.waitFor(bookmarksEvent(a, (items) => items.getChildren('item').length === 2));
      await one.waitFor(bookmarksEvent(a, (items) => items.getChildren('item').length === 2));
    });
    // The node's GetItem, the count of the account's nodes (it is created), its PutItem and the
    // owner's sessions (whitelist: no roster read); the result and one notification per resource.
    assert.deepEqual(counts(first), { reads: 3, writes: 1, posts: 3 }, JSON.stringify(first.calls));
    const items = await pepItems(two);
    assert.deepEqual(items.map((i: Element) => i.attrs.id).sort(), ['kitchen@conference.localhost', 'lounge@conference.localhost']);
    const lounge = items.find((i: Element) => i.attrs.id === 'lounge@conference.localhost')!.getChild('conference', BOOKMARKS)!;
    assert.deepEqual([lounge.attrs.name, lounge.attrs.autojoin, lounge.getChildText('nick')], ['Lounge', 'true', 'ann']);
    assert.equal(items.find((i: Element) => i.attrs.id === 'kitchen@conference.localhost')!.getChild('conference', BOOKMARKS)!.attrs.autojoin, undefined);
    // The node is configured as XEP-0402 §3 asks.
    const form = (await one.iq(xml('iq', { type: 'get' }, xml('pubsub', { xmlns: `${PUBSUB}#owner` }, xml('configure', { node: BOOKMARKS }))))).getChild('pubsub')!.getChild('configure')!.getChild('x')!;
    assert.equal(form.getChildren('field').find((f: Element) => f.attrs.var === 'pubsub#access_model')!.getChildText('value'), 'whitelist');

    // Lounge unchanged, Kitchen gone, Attic new: Attic is published and Kitchen retracted, in one write.
    const next = await s.cost(async () => {
      await one.iq(privateSet(legacy(xml('conference', { jid: 'lounge@conference.localhost', name: 'Lounge', autojoin: 'true' }, xml('nick', {}, 'ann')), xml('conference', { jid: 'attic@conference.localhost', autojoin: 'true' }))));
      for (const c of [one, two]) {
        const published = await c.waitFor(bookmarksEvent(a, (i) => i.getChild('item')?.attrs.id === 'attic@conference.localhost'));
        assert.equal(published.getChild('event', EVENT)!.getChild('items')!.getChildren('item').length, 1);
        await c.waitFor(bookmarksEvent(a, (i) => i.getChild('retract')?.attrs.id === 'kitchen@conference.localhost'));
      }
    });
    // The node's read and write, the sessions; the result and two notifications per resource.
    assert.deepEqual(counts(next), { reads: 2, writes: 1, posts: 5 }, JSON.stringify(next.calls));
    assert.deepEqual((await pepItems(one)).map((i: Element) => i.attrs.id).sort(), ['attic@conference.localhost', 'lounge@conference.localhost']);
    assert.deepEqual((await legacyOf(two)).map((c) => [c.attrs.jid, c.attrs.autojoin]).sort(), [['attic@conference.localhost', 'true'], ['lounge@conference.localhost', 'true']]);
  });

  it('bookmarks kept in private storage before the module become the PEP items at the first get, once', async () => {
    const a = await user();
    const c = await online(a, 'one', [BOOKMARKS]);
    // As the private storage module stored them (lib/extensions/private/store.ts), without this module.
    const kept = xml('query', { xmlns: PRIVATE }, legacy(xml('conference', { jid: 'old@conference.localhost', name: 'Old', autojoin: 'true' }, xml('nick', {}, 'o'))));
    const store = s.server.registry.apis.get('private') as { put(bare: string, ns: string, xml: string, max: number, now: number): Promise<void> };
    await store.put(`${a}@localhost`, LEGACY, kept.toString(), 100, Date.now());

    let got: Element[] = [];
    const first = await s.cost(async () => {
      got = await legacyOf(c);
      await c.waitFor(bookmarksEvent(a, (items) => items.getChild('item')?.attrs.id === 'old@conference.localhost'));
    });
    // No node: the private item, then a creation (node GetItem, COUNT, PutItem, sessions); the result
    // and the notification.
    assert.deepEqual(counts(first), { reads: 5, writes: 1, posts: 2 }, JSON.stringify(first.calls));
    assert.deepEqual(got.map((x) => [x.attrs.jid, x.attrs.autojoin, x.getChildText('nick')]), [['old@conference.localhost', 'true', 'o']]);
    assert.deepEqual((await pepItems(c)).map((i: Element) => i.attrs.id), ['old@conference.localhost']);
    const next = await s.cost(() => legacyOf(c));
    assert.deepEqual(counts(next), { reads: 1, writes: 0, posts: 1 }, JSON.stringify(next.calls));
  });

  it('a legacy set keeps the XEP-0402 extensions of a room it rewrites, and other namespaces of the same set go to private storage', async () => {
    const a = await user();
    const c = await online(a, 'one', []);
    await c.iq(publish('den@conference.localhost', conference({ name: 'Den' }, xml('extensions', {}, xml('pinned', { xmlns: 'urn:xmpp:bookmarks-pinning:0' })))));
    await c.iq(privateSet(legacy(xml('conference', { jid: 'den@conference.localhost', name: 'The Den', autojoin: 'true' })), xml('notes', { xmlns: 'urn:example:notes' }, 'kept')));
    const den = (await pepItems(c))[0].getChild('conference', BOOKMARKS)!;
    assert.deepEqual([den.attrs.name, den.attrs.autojoin], ['The Den', 'true']);
    assert.ok(den.getChild('extensions')?.getChild('pinned', 'urn:xmpp:bookmarks-pinning:0'), den.toString());
    const notes = await c.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: PRIVATE }, xml('notes', { xmlns: 'urn:example:notes' }))));
    assert.equal(notes.getChild('query', PRIVATE)!.getChildText('notes'), 'kept');
  });

  it('#compat-pep: a publish to the XEP-0048 PEP node becomes one XEP-0402 item per room, read back through XEP-0402, private storage and the legacy node', async () => {
    const a = await user();
    const old = await online(a, 'old', [LEGACY]);
    const modern = await online(a, 'modern', [BOOKMARKS]);
    const list = legacy(xml('conference', { jid: 'lounge@conference.localhost', name: 'Lounge', autojoin: 'true' }, xml('nick', {}, 'ann'), xml('password', {}, 'pw')), xml('conference', { jid: 'kitchen@conference.localhost', name: 'Kitchen', autojoin: 'false' }));
    let result: Element | undefined;
    const first = await s.cost(async () => {
      result = await old.iq(publishIq(LEGACY, 'current', list, { 'pubsub#access_model': 'whitelist' }));
      await modern.waitFor(bookmarksEvent(a, (items) => items.getChildren('item').length === 2));
      await old.waitFor(legacyEvent(a, (st) => jids(st).length === 2));
    });
    // The XEP-0402 node's GetItem, the COUNT (it is created), its PutItem, the owner's sessions; the
    // result, the XEP-0402 notification to `modern` and the legacy one to `old` (nothing else stored).
    assert.deepEqual(counts(first), { reads: 3, writes: 1, posts: 3 }, JSON.stringify(first.calls));
    assert.equal(result!.getChild('pubsub')!.getChild('publish')!.getChild('item')!.attrs.id, 'current');

    const items = await pepItems(modern);
    assert.deepEqual(items.map((i: Element) => i.attrs.id).sort(), ['kitchen@conference.localhost', 'lounge@conference.localhost']);
    const lounge = items.find((i: Element) => i.attrs.id === 'lounge@conference.localhost')!.getChild('conference', BOOKMARKS)!;
    assert.deepEqual([lounge.attrs.name, lounge.attrs.autojoin, lounge.getChildText('nick'), lounge.getChildText('password')], ['Lounge', 'true', 'ann', 'pw']);
    assert.deepEqual((await legacyOf(modern)).map((c) => [c.attrs.jid, c.attrs.autojoin]).sort(), [['kitchen@conference.localhost', 'false'], ['lounge@conference.localhost', 'true']]);

    let got: Element[] = [];
    const read = await s.cost(async () => (got = await legacyPepItems(old)));
    // The XEP-0402 node's GetItem; the result.
    assert.deepEqual(counts(read), { reads: 1, writes: 0, posts: 1 }, JSON.stringify(read.calls));
    assert.deepEqual(
      got.map((i) => i.attrs.id),
      ['current'],
    );
    assert.deepEqual(jids(got[0].getChild('storage', LEGACY)!), ['kitchen@conference.localhost', 'lounge@conference.localhost']);

    // A second legacy publish: Kitchen dropped, Lounge unchanged; one retraction, in one write.
    const next = await s.cost(async () => {
      await old.iq(publishIq(LEGACY, 'current', legacy(xml('conference', { jid: 'lounge@conference.localhost', name: 'Lounge', autojoin: 'true' }, xml('nick', {}, 'ann'), xml('password', {}, 'pw')))));
      await modern.waitFor(bookmarksEvent(a, (i) => i.getChild('retract')?.attrs.id === 'kitchen@conference.localhost'));
      await old.waitFor(legacyEvent(a, (st) => jids(st).join() === 'lounge@conference.localhost'));
    });
    // Read, write, sessions; the result, the retraction to `modern`, the list to `old`.
    assert.deepEqual(counts(next), { reads: 2, writes: 1, posts: 3 }, JSON.stringify(next.calls));
    assert.deepEqual((await pepItems(modern)).map((i: Element) => i.attrs.id), ['lounge@conference.localhost']);
  });

  it('#compat-pep: a XEP-0402 publish and retract are told as the whole list to a resource with storage:bookmarks+notify, and read on the legacy node', async () => {
    const a = await user();
    const modern = await online(a, 'modern', []);
    const old = await online(a, 'old', [LEGACY]);
    // No bookmarks at all: no legacy node (XEP-0060 §6.5.9.11); the XEP-0402 node and the private item read.
    const none = await s.cost(async () => {
      const err = await modern.iq(itemsIq(LEGACY)).then(
        () => undefined,
        (e: { condition?: string }) => e,
      );
      assert.equal(err?.condition, 'item-not-found');
    });
    assert.deepEqual(counts(none), { reads: 2, writes: 0, posts: 1 }, JSON.stringify(none.calls));

    const first = await s.cost(async () => {
      await modern.iq(publish('den@conference.localhost', conference({ name: 'Den', autojoin: 'true' }, xml('nick', {}, 'd'), xml('extensions', {}, xml('pinned', { xmlns: 'urn:xmpp:bookmarks-pinning:0' })))));
      await old.waitFor(legacyEvent(a, (st) => jids(st).join() === 'den@conference.localhost'));
    });
    // PEP's publish (GetItem, COUNT, PutItem, sessions); the result and the legacy notification to
    // `old` only (`modern` wants neither node).
    assert.deepEqual(counts(first), { reads: 3, writes: 1, posts: 2 }, JSON.stringify(first.calls));
    const den = (await legacyPepItems(old))[0].getChild('storage', LEGACY)!.getChild('conference')!;
    assert.deepEqual([den.attrs.jid, den.attrs.name, den.attrs.autojoin, den.getChildText('nick')], ['den@conference.localhost', 'Den', 'true', 'd']);
    // Asked by id: `current` is the only item.
    assert.deepEqual((await old.iq(itemsIq(LEGACY, undefined, 'other'))).getChild('pubsub')!.getChild('items')!.getChildren('item'), []);

    // The legacy client renames the room: the XEP-0402 extensions stay.
    await old.iq(publishIq(LEGACY, 'current', legacy(xml('conference', { jid: 'den@conference.localhost', name: 'The Den', autojoin: 'true' }, xml('nick', {}, 'd')))));
    const item = (await pepItems(modern))[0].getChild('conference', BOOKMARKS)!;
    assert.equal(item.attrs.name, 'The Den');
    assert.ok(item.getChild('extensions')?.getChild('pinned', 'urn:xmpp:bookmarks-pinning:0'), item.toString());

    const gone = await s.cost(async () => {
      await modern.iq(xml('iq', { type: 'set' }, xml('pubsub', { xmlns: PUBSUB }, xml('retract', { node: BOOKMARKS, notify: 'true' }, xml('item', { id: 'den@conference.localhost' })))));
      await old.waitFor(legacyEvent(a, (st) => jids(st).length === 0));
    });
    // PEP's retract (GetItem, PutItem, sessions); the result and the now empty list to `old`.
    assert.deepEqual(counts(gone), { reads: 2, writes: 1, posts: 2 }, JSON.stringify(gone.calls));
    assert.deepEqual(jids((await legacyPepItems(old))[0].getChild('storage', LEGACY)!), []);
  });

  it('#compat-pep: a legacy publish that is not one <storage xmlns="storage:bookmarks"/> is refused and changes nothing', async () => {
    const a = await user();
    const c = await online(a, 'one', []);
    const err = await c.iq(publishIq(LEGACY, 'current', xml('other', { xmlns: 'urn:example' }))).then(
      () => undefined,
      (e: { condition?: string }) => e,
    );
    assert.equal(err?.condition, 'bad-request');
    const pep = s.server.registry.apis.get('pep') as { node(owner: string, node: string): Promise<unknown> };
    assert.equal(await pep.node(`${a}@localhost`, BOOKMARKS), undefined);
  });
});
