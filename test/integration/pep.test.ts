// XEP-0163 Personal Eventing Protocol with real clients: the account's pubsub service (disco),
// publish with notifications filtered by XEP-0115 caps (clients answer the server's disco#info for
// their node#ver), the last items at login, items/retract/delete/purge and configuration (XEP-0060),
// access models, XEP-0223 publish-options, the tenant's limits, and what each step costs.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { TenantPurger, purgePlanOf } from '../../lib/admin/purge.ts';
import { createDynamoClient } from '../../lib/store/dynamo.ts';
import { capsHash } from '../../lib/extensions/caps/hash.ts';
import type { CapsApi } from '../../lib/extensions/caps/index.ts';
import { type TestClient, type TestServer, connectClient, startTestServer, xml, type Element } from '../support/harness.ts';
import { mutualSubscription } from '../support/roster.ts';

const PUBSUB = 'http://jabber.org/protocol/pubsub';
const OWNER = `${PUBSUB}#owner`;
const EVENT = `${PUBSUB}#event`;
const ERRORS = `${PUBSUB}#errors`;
const DISCO_INFO = 'http://jabber.org/protocol/disco#info';
const CAPS = 'http://jabber.org/protocol/caps';
const TUNE = 'http://jabber.org/protocol/tune';
const NICK = 'http://jabber.org/protocol/nick';

let s: TestServer;
let n = 0;
const jid = (name: string) => `${name}@localhost`;
async function user(prefix: string): Promise<string> {
  const name = `${prefix}${++n}`;
  await s.addUser(jid(name));
  return name;
}
/** A mutual subscription, written straight into both rosters. */
const friends = (a: string, b: string) => mutualSubscription(s, jid(a), jid(b));

/** The client's disco#info (XEP-0115 §6.2), with `<node>+notify` for each node it wants. */
function discoInfo(notify: string[], node?: string): Element {
  return xml(
    'query',
    { xmlns: DISCO_INFO, ...(node ? { node } : {}) },
    xml('identity', { category: 'client', type: 'web', name: 'pep test' }),
    ...[DISCO_INFO, CAPS, ...notify.map((x) => `${x}+notify`)].map((v) => xml('feature', { var: v })),
  );
}

/**
 * Logs in, answers the server's disco#info queries as a client does, sends initial presence with
 * caps and waits until the server knows the hash (a hash it already knew needs no query).
 */
async function online(name: string, resource: string, notify: string[]): Promise<TestClient> {
  const c = await connectClient(s.url, { username: name, resource });
  const answers = new Map<string, string[]>();
  (c as TestClient & { answers?: typeof answers }).answers = answers;
  (c.xmpp as unknown as { iqCallee: { get(ns: string, name: string, fn: (ctx: { element: Element }) => Element): void } }).iqCallee.get(DISCO_INFO, 'query', (ctx) => {
    const node = ctx.element.attrs.node as string;
    const ver = node.slice(node.lastIndexOf('#') + 1);
    asked.add(ver);
    return discoInfo(answers.get(ver) ?? [], node);
  });
  await sendCaps(c, notify);
  return c;
}

/** Sends available presence with the caps of `notify` and waits until the server knows the hash. */
async function sendCaps(c: TestClient, notify: string[], show?: string): Promise<void> {
  const ver = capsHash(discoInfo(notify))!;
  (c as TestClient & { answers: Map<string, string[]> }).answers.set(ver, notify);
  await c.send(xml('presence', {}, ...(show ? [xml('show', {}, show)] : []), xml('c', { xmlns: CAPS, hash: 'sha-1', node: 'https://xmpp-edge.test', ver })));
  await c.waitFor((el) => el.name === 'presence' && el.attrs.from === c.jid && (show === undefined || el.getChildText('show') === show));
  // A hash new to the server is asked for before the presence is reflected; the answer goes out
  // before the ping, and one stream is processed in order, so the pong means the answer was handled.
  if (asked.has(ver)) await c.roundTrip();
}
/** The vers the server asked a test client about. */
const asked = new Set<string>();
const capsApi = () => s.server.registry.apis.get('caps') as CapsApi;
const capsPresence = (ver: string) => `<presence xmlns="jabber:client"><c xmlns="${CAPS}" hash="sha-1" node="x" ver="${ver}"/></presence>`;

const pubsubIq = (type: 'get' | 'set', ns: string, to: string | undefined, ...children: Element[]) => xml('iq', { type, ...(to ? { to } : {}) }, xml('pubsub', { xmlns: ns }, ...children));
const publishIq = (node: string, id: string, payload: Element, options?: Record<string, string>) =>
  pubsubIq(
    'set',
    PUBSUB,
    undefined,
    xml('publish', { node }, xml('item', { id }, payload)),
    ...(options
      ? [
          xml(
            'publish-options',
            {},
            xml('x', { xmlns: 'jabber:x:data', type: 'submit' }, xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', {}, `${PUBSUB}#publish-options`)), ...Object.entries(options).map(([k, v]) => xml('field', { var: k }, xml('value', {}, v)))),
          ),
        ]
      : []),
  );
const tune = (artist: string) => xml('tune', { xmlns: TUNE }, xml('artist', {}, artist));

/** A notification from `owner` about `node` (XEP-0163 §4.3.1), optionally with an item id. */
const notification = (owner: string, node: string, id?: string) => (el: Element) => {
  if (el.name !== 'message' || el.attrs.from !== jid(owner)) return false;
  const items = el.getChild('event', EVENT)?.getChild('items');
  return items?.attrs.node === node && (id === undefined || items.getChildren('item').some((i: Element) => i.attrs.id === id));
};

/** The error a request gets: its condition and its pubsub-specific condition. */
async function refusal(c: TestClient, iq: Element): Promise<{ condition: string; specific?: string; text?: string }> {
  const err = await c.iq(iq).then(
    () => assert.fail('expected an error'),
    (e: { element?: Element }) => (e.element?.name === 'error' ? e.element : e.element?.getChild('error')),
  );
  assert.ok(err, 'an error stanza');
  const conds = err.children.filter((x): x is Element => typeof x !== 'string');
  return {
    condition: conds.find((x) => x.attrs.xmlns === 'urn:ietf:params:xml:ns:xmpp-stanzas' && x.name !== 'text')!.name,
    specific: conds.find((x) => x.attrs.xmlns === ERRORS)?.name,
    text: err.getChildText('text', 'urn:ietf:params:xml:ns:xmpp-stanzas') ?? undefined,
  };
}

before(async () => {
  s = await startTestServer({ tenantWatchMs: 3_600_000 });
});
after(async () => {
  await s.stop();
});

describe('XEP-0163 Personal Eventing Protocol', () => {
  it("the account's bare JID is a pubsub service of type pep (§6.1)", async () => {
    const a = await user('disco');
    const c = await connectClient(s.url, { username: a });
    const info = (await c.iq(xml('iq', { type: 'get', to: jid(a) }, xml('query', { xmlns: DISCO_INFO })))).getChild('query')!;
    assert.ok(info.getChildren('identity').some((i: Element) => i.attrs.category === 'pubsub' && i.attrs.type === 'pep'), info.toString());
    const features = info.getChildren('feature').map((f: Element) => f.attrs.var);
    for (const f of ['publish', 'publish-options', 'access-presence', 'access-whitelist', 'retrieve-items', 'auto-create']) assert.ok(features.includes(`${PUBSUB}#${f}`), f);
    await c.stop();
  });

  it('publish notifies own and subscribed resources with +notify, not others; exact costs (§4.3)', async () => {
    const [a, b, c, d] = [await user('pub'), await user('sub'), await user('sub'), await user('nonotify')];
    await friends(a, b);
    await friends(a, c);
    await friends(a, d);
    const a1 = await online(a, 'one', [TUNE]);
    const b1 = await online(b, 'one', [TUNE]);
    const c1 = await online(c, 'one', [TUNE]);
    const d1 = await online(d, 'one', [NICK]);

    const first = await s.cost(async () => {
      const res = await a1.iq(publishIq(TUNE, 't1', tune('Yes')));
      assert.equal(res.getChild('pubsub', PUBSUB)?.getChild('publish')?.getChild('item')?.attrs.id, 't1');
      for (const x of [a1, b1, c1]) await x.waitFor(notification(a, TUNE, 't1'));
    });
    // Creation: the node's GetItem and the count of the account's nodes (a Query), its PutItem,
    // the roster Query and one BatchGetItem of the sessions; the result and three notifications.
    assert.deepEqual({ reads: first.reads, writes: first.writes, posts: first.posts }, { reads: 4, writes: 1, posts: 4 }, JSON.stringify(first.calls));

    const next = await s.cost(async () => {
      await a1.iq(publishIq(TUNE, 't2', tune('Genesis')));
      for (const x of [a1, b1, c1]) await x.waitFor(notification(a, TUNE, 't2'));
    });
    // A publish to an existing node with N interested contacts: 3 reads, 1 write, 1 + (own + N) posts.
    assert.deepEqual({ reads: next.reads, writes: next.writes, posts: next.posts }, { reads: 3, writes: 1, posts: 4 }, JSON.stringify(next.calls));
    // d wants another node: nothing.
    await d1.expectNothing(s, (el) => el.getChild('event', EVENT) !== undefined, a1);
    for (const x of [a1, b1, c1, d1]) await x.stop();
  });

  it('a contact coming online gets the last item of each node it wants (§4.3.4), at a known cost', async () => {
    const [a, b] = [await user('last'), await user('last')];
    await friends(a, b);
    const a1 = await online(a, 'one', [TUNE]);
    await a1.iq(publishIq(TUNE, 'x1', tune('Camel')));
    await a1.iq(publishIq(TUNE, 'x2', tune('Rush')));
    // The hash is known to the server already (a1 has the same features), so nothing is asked.
    const b1 = await connectClient(s.url, { username: b, resource: 'one' });
    const ver = capsHash(discoInfo([TUNE]))!;
    const login = await s.cost(async () => {
      await b1.send(xml('presence', {}, xml('c', { xmlns: CAPS, hash: 'sha-1', node: 'https://xmpp-edge.test', ver })));
      const got = await b1.waitFor(notification(a, TUNE, 'x2'));
      assert.equal(got.getChild('event', EVENT)!.getChild('items')!.getChildren('item').length, 1);
    });
    // Initial presence (roster Query, sessions BatchGetItem, the entry's write, offline storage's
    // Query; reflection, a1's copy and the probe answer) plus one BatchGetItem of the wanted nodes
    // and one post for the last item.
    assert.deepEqual({ reads: login.reads, writes: login.writes, posts: login.posts }, { reads: 4, writes: 1, posts: 4 }, JSON.stringify(login.calls));
    for (const x of [a1, b1]) await x.stop();
  });

  it('a new hash is asked for once (disco#info to node#ver) and then sends the last items', async () => {
    const [a, b] = [await user('newhash'), await user('newhash')];
    await friends(a, b);
    const a1 = await online(a, 'one', [NICK]);
    await a1.iq(publishIq(NICK, 'n1', xml('nick', { xmlns: NICK }, 'Alice')));
    const b1 = await online(b, 'one', []);
    await b1.send(xml('presence', { type: 'unavailable' }));
    await b1.roundTrip();
    const login = await s.cost(async () => {
      await sendCaps(b1, [NICK, `urn:example:${n}`]);
      await b1.waitFor(notification(a, NICK, 'n1'));
    });
    // The initial presence (roster Query, sessions BatchGetItem, offline Query, the entry's write;
    // reflection, a1's copy, the probe answer), the hash's GetItem and the disco#info query; its
    // answer: one PutItem, then the last items (roster Query, one BatchGetItem of the nodes, one post);
    // and the test's ping.
    assert.deepEqual({ reads: login.reads, writes: login.writes, posts: login.posts }, { reads: 6, writes: 2, posts: 6 }, JSON.stringify(login.calls));
    for (const x of [a1, b1]) await x.stop();
  });

  it('XEP-0115: a hash new to the tenant costs one GetItem, one IQ round trip and one PutItem; a known one nothing', async () => {
    const a = await user('caps');
    const a1 = await online(a, 'one', [NICK]);
    const fresh = [`urn:example:fresh${n}`];
    const learn = await s.cost(() => sendCaps(a1, fresh, 'away'));
    // A presence update (roster Query, sessions BatchGetItem, the entry's write, the reflection) plus
    // the hash's GetItem (unknown), the disco#info query's post and the PutItem of its answer; as the
    // hash has a +notify, the last items it now wants (roster Query, one BatchGetItem of the nodes:
    // none here); and the test's ping.
    assert.deepEqual({ reads: learn.reads, writes: learn.writes, posts: learn.posts }, { reads: 5, writes: 2, posts: 3 }, JSON.stringify(learn.calls));
    const known = await s.cost(() => sendCaps(a1, fresh, 'dnd'));
    // The same hash again: the presence update alone (and the test's ping).
    assert.deepEqual({ reads: known.reads, writes: known.writes, posts: known.posts }, { reads: 2, writes: 1, posts: 2 }, JSON.stringify(known.calls));
    // A forged answer (features that do not hash to the ver) is not kept (§5.4).
    const ver = capsHash(discoInfo([`urn:example:forged${n}`]))!;
    (a1 as TestClient & { answers: Map<string, string[]> }).answers.set(ver, ['urn:example:other']);
    await a1.send(xml('presence', {}, xml('c', { xmlns: CAPS, hash: 'sha-1', node: 'https://xmpp-edge.test', ver })));
    await a1.roundTrip();
    await a1.roundTrip();
    await s.gateway.idle();
    assert.deepEqual(await capsApi().featuresOf('localhost', capsPresence(ver)), []);
    await a1.stop();
  });

  it('items: all, by id, max_items; item-not-found for a node that does not exist (§6.5)', async () => {
    const a = await user('items');
    const a1 = await connectClient(s.url, { username: a });
    for (const id of ['i1', 'i2', 'i3']) await a1.iq(publishIq('urn:example:list', id, xml('entry', { xmlns: 'urn:example' }, id), { 'pubsub#max_items': 'max' }));
    const ids = async (items: Element) => (await a1.iq(pubsubIq('get', PUBSUB, jid(a), items))).getChild('pubsub')!.getChild('items')!.getChildren('item').map((i: Element) => i.attrs.id);
    assert.deepEqual(await ids(xml('items', { node: 'urn:example:list' })), ['i1', 'i2', 'i3']);
    assert.deepEqual(await ids(xml('items', { node: 'urn:example:list', max_items: '2' })), ['i2', 'i3']);
    assert.deepEqual(await ids(xml('items', { node: 'urn:example:list' }, xml('item', { id: 'i1' }))), ['i1']);
    // Converse reads urn:xmpp:reactions:popular:0 on itself.
    assert.deepEqual(await refusal(a1, pubsubIq('get', PUBSUB, undefined, xml('items', { node: 'urn:xmpp:reactions:popular:0' }))), { condition: 'item-not-found', specific: undefined, text: 'no node urn:xmpp:reactions:popular:0' });
    assert.equal((await refusal(a1, publishIq('x'.repeat(600), '1', xml('x', { xmlns: 'urn:example' })))).condition, 'not-acceptable');
    // The default max_items is 1 (XEP-0163 §5).
    await a1.iq(publishIq('urn:example:one', 'o1', xml('x', { xmlns: 'urn:example' })));
    await a1.iq(publishIq('urn:example:one', 'o2', xml('x', { xmlns: 'urn:example' })));
    assert.deepEqual(await ids(xml('items', { node: 'urn:example:one' })), ['o2']);
    await a1.stop();
  });

  it('retract with notify, purge and delete (owner), each notified (§7.2, §8.4, §8.5)', async () => {
    const [a, b] = [await user('owner'), await user('owner')];
    await friends(a, b);
    const a1 = await online(a, 'one', [TUNE]);
    const b1 = await online(b, 'one', [TUNE]);
    await a1.iq(publishIq(TUNE, 'r1', tune('Yes'), { 'pubsub#max_items': '10' }));
    await a1.iq(publishIq(TUNE, 'r2', tune('ELP')));
    const retract = await s.cost(async () => {
      await a1.iq(pubsubIq('set', PUBSUB, undefined, xml('retract', { node: TUNE, notify: 'true' }, xml('item', { id: 'r1' }))));
      await b1.waitFor((el) => el.getChild('event', EVENT)?.getChild('items')?.getChild('retract')?.attrs.id === 'r1', undefined, 'retract').then((el) => b1.received.push(el));
      await a1.waitFor((el) => el.getChild('event', EVENT)?.getChild('items')?.getChild('retract')?.attrs.id === 'r1');
    });
    // As a publish: the node's read and write, roster Query, sessions; the result and two notifications.
    assert.deepEqual({ reads: retract.reads, writes: retract.writes, posts: retract.posts }, { reads: 3, writes: 1, posts: 3 }, JSON.stringify(retract.calls));
    const retracted = await b1.waitFor((el) => el.getChild('event', EVENT)?.getChild('items')?.getChild('retract')?.attrs.id === 'r1');
    assert.equal(retracted.attrs.from, jid(a));
    assert.deepEqual(await refusal(a1, pubsubIq('set', PUBSUB, undefined, xml('retract', { node: TUNE }, xml('item', { id: 'r1' })))), { condition: 'item-not-found', specific: undefined, text: 'no item r1' });

    await a1.iq(pubsubIq('set', OWNER, undefined, xml('purge', { node: TUNE })));
    await b1.waitFor((el) => el.getChild('event', EVENT)?.getChild('purge')?.attrs.node === TUNE);
    const left = await a1.iq(pubsubIq('get', PUBSUB, undefined, xml('items', { node: TUNE })));
    assert.equal(left.getChild('pubsub')!.getChild('items')!.getChildren('item').length, 0);

    await a1.iq(pubsubIq('set', OWNER, undefined, xml('delete', { node: TUNE })));
    await b1.waitFor((el) => el.getChild('event', EVENT)?.getChild('delete')?.attrs.node === TUNE);
    assert.equal((await refusal(a1, pubsubIq('get', PUBSUB, undefined, xml('items', { node: TUNE })))).condition, 'item-not-found');
    assert.equal((await refusal(a1, pubsubIq('set', OWNER, undefined, xml('delete', { node: TUNE })))).condition, 'item-not-found');
    for (const x of [a1, b1]) await x.stop();
  });

  it('access models: presence (default), open, roster, whitelist (XEP-0060 §6.5.9, §4.5)', async () => {
    const [a, friend, stranger] = [await user('acc'), await user('acc'), await user('acc')];
    await friends(a, friend);
    const a1 = await connectClient(s.url, { username: a });
    const f1 = await connectClient(s.url, { username: friend });
    const x1 = await connectClient(s.url, { username: stranger });
    await a1.iq(publishIq('urn:example:presence', '1', xml('x', { xmlns: 'urn:example' })));
    await a1.iq(publishIq('urn:example:open', '1', xml('x', { xmlns: 'urn:example' }), { 'pubsub#access_model': 'open' }));
    await a1.iq(publishIq('urn:example:white', '1', xml('x', { xmlns: 'urn:example' }), { 'pubsub#access_model': 'whitelist' }));
    await a1.iq(publishIq('urn:example:roster', '1', xml('x', { xmlns: 'urn:example' }), { 'pubsub#access_model': 'roster' }));
    const read = (c: TestClient, node: string) => c.iq(pubsubIq('get', PUBSUB, jid(a), xml('items', { node })));

    const own = await s.cost(() => read(a1, 'urn:example:presence'));
    assert.deepEqual({ reads: own.reads, writes: own.writes, posts: own.posts }, { reads: 1, writes: 0, posts: 1 }, JSON.stringify(own.calls));
    // A contact's read: the node and the owner's roster item for the contact.
    const contact = await s.cost(() => read(f1, 'urn:example:presence'));
    assert.deepEqual({ reads: contact.reads, writes: contact.writes, posts: contact.posts }, { reads: 2, writes: 0, posts: 1 }, JSON.stringify(contact.calls));
    assert.deepEqual(await refusal(x1, pubsubIq('get', PUBSUB, jid(a), xml('items', { node: 'urn:example:presence' }))), { condition: 'not-authorized', specific: 'presence-subscription-required', text: undefined });
    await read(x1, 'urn:example:open');
    await read(f1, 'urn:example:roster');
    assert.equal((await refusal(x1, pubsubIq('get', PUBSUB, jid(a), xml('items', { node: 'urn:example:roster' })))).specific, 'not-in-roster-group');
    assert.deepEqual(await refusal(f1, pubsubIq('get', PUBSUB, jid(a), xml('items', { node: 'urn:example:white' }))), { condition: 'not-allowed', specific: 'closed-node', text: undefined });
    await read(a1, 'urn:example:white');
    // Nobody publishes to another account's PEP service (XEP-0163 §2.2).
    assert.equal((await refusal(f1, xml('iq', { type: 'set', to: jid(a) }, xml('pubsub', { xmlns: PUBSUB }, xml('publish', { node: 'urn:example:presence' }, xml('item', {}, xml('x', { xmlns: 'urn:example' }))))))).condition, 'forbidden');
    for (const c of [a1, f1, x1]) await c.stop();
  });

  it('a whitelist node notifies only the owner', async () => {
    const [a, b] = [await user('wl'), await user('wl')];
    await friends(a, b);
    const a1 = await online(a, 'one', ['urn:example:private']);
    const b1 = await online(b, 'one', ['urn:example:private']);
    await a1.iq(publishIq('urn:example:private', 'p1', xml('x', { xmlns: 'urn:example' }), { 'pubsub#access_model': 'whitelist' }));
    await a1.waitFor(notification(a, 'urn:example:private', 'p1'));
    const again = await s.cost(async () => {
      await a1.iq(publishIq('urn:example:private', 'p2', xml('x', { xmlns: 'urn:example' }), { 'pubsub#access_model': 'whitelist' }));
      await a1.waitFor(notification(a, 'urn:example:private', 'p2'));
    });
    // The node, and the owner's session item only (no roster read); the result and one notification.
    assert.deepEqual({ reads: again.reads, writes: again.writes, posts: again.posts }, { reads: 2, writes: 1, posts: 2 }, JSON.stringify(again.calls));
    await b1.expectNothing(s, notification(a, 'urn:example:private'), a1);
    for (const x of [a1, b1]) await x.stop();
  });

  it('publish-options are preconditions: a mismatch is a conflict with precondition-not-met (XEP-0223 §4, XEP-0060 §7.1.5)', async () => {
    const a = await user('opts');
    const a1 = await connectClient(s.url, { username: a });
    const opts = { 'pubsub#persist_items': 'true', 'pubsub#max_items': 'max', 'pubsub#send_last_published_item': 'never', 'pubsub#access_model': 'whitelist' };
    await a1.iq(publishIq('urn:xmpp:bookmarks:1', 'room@conference.localhost', xml('conference', { xmlns: 'urn:xmpp:bookmarks:1' }), opts));
    // The same options again: met.
    await a1.iq(publishIq('urn:xmpp:bookmarks:1', 'room2@conference.localhost', xml('conference', { xmlns: 'urn:xmpp:bookmarks:1' }), opts));
    assert.deepEqual(
      await refusal(a1, publishIq('urn:xmpp:bookmarks:1', 'x', xml('conference', { xmlns: 'urn:xmpp:bookmarks:1' }), { 'pubsub#access_model': 'open' })),
      { condition: 'conflict', specific: 'precondition-not-met', text: undefined },
    );
    // The configuration form shows what was created.
    const form = (await a1.iq(pubsubIq('get', OWNER, undefined, xml('configure', { node: 'urn:xmpp:bookmarks:1' })))).getChild('pubsub')!.getChild('configure')!.getChild('x')!;
    const value = (v: string) => form.getChildren('field').find((f: Element) => f.attrs.var === v)?.getChildText('value');
    assert.equal(value('pubsub#access_model'), 'whitelist');
    assert.equal(value('pubsub#max_items'), 'max');
    // The owner changes it (§8.2.4); then the old precondition no longer holds.
    const submit = xml('x', { xmlns: 'jabber:x:data', type: 'submit' }, xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', {}, `${PUBSUB}#node_config`)), xml('field', { var: 'pubsub#access_model' }, xml('value', {}, 'presence')));
    await a1.iq(pubsubIq('set', OWNER, undefined, xml('configure', { node: 'urn:xmpp:bookmarks:1' }, submit)));
    assert.equal((await refusal(a1, publishIq('urn:xmpp:bookmarks:1', 'y', xml('conference', { xmlns: 'urn:xmpp:bookmarks:1' }), opts))).specific, 'precondition-not-met');
    const bad = xml('x', { xmlns: 'jabber:x:data', type: 'submit' }, xml('field', { var: 'pubsub#access_model' }, xml('value', {}, 'authorize')));
    assert.equal((await refusal(a1, pubsubIq('set', OWNER, undefined, xml('configure', { node: 'urn:xmpp:bookmarks:1' }, bad)))).condition, 'not-acceptable');
    await a1.stop();
  });

  it("the tenant's limits: item size, items per node, nodes per account, each named", async () => {
    await s.server.tenants.put({ ...(await s.server.tenants.get('localhost'))!, pep: { maxItemBytes: 2048, maxItemsPerNode: 3, maxNodes: 2 } } as never);
    s.clock.advance(61_000);
    try {
      const a = await user('limits');
      const a1 = await connectClient(s.url, { username: a });
      const big = await refusal(a1, publishIq('urn:example:big', '1', xml('x', { xmlns: 'urn:example' }, 'z'.repeat(3000))));
      assert.equal(big.condition, 'not-acceptable');
      assert.equal(big.specific, 'payload-too-big');
      assert.match(big.text!, /2048 bytes \(pep\.maxItemBytes\)/);
      const many = await refusal(a1, publishIq('urn:example:n', '1', xml('x', { xmlns: 'urn:example' }), { 'pubsub#max_items': '4' }));
      assert.deepEqual([many.condition, many.specific], ['conflict', 'precondition-not-met']);
      for (const id of ['1', '2', '3', '4']) await a1.iq(publishIq('urn:example:n', id, xml('x', { xmlns: 'urn:example' }), { 'pubsub#max_items': 'max' }));
      const items = await a1.iq(pubsubIq('get', PUBSUB, undefined, xml('items', { node: 'urn:example:n' })));
      assert.deepEqual(items.getChild('pubsub')!.getChild('items')!.getChildren('item').map((i: Element) => i.attrs.id), ['2', '3', '4']);
      await a1.iq(publishIq('urn:example:m', '1', xml('x', { xmlns: 'urn:example' })));
      const nodes = await refusal(a1, publishIq('urn:example:third', '1', xml('x', { xmlns: 'urn:example' })));
      assert.equal(nodes.condition, 'policy-violation');
      assert.match(nodes.text!, /at most 2 PEP nodes \(pep\.maxNodes\)/);
      await a1.stop();
    } finally {
      const t = (await s.server.tenants.get('localhost'))! as Record<string, unknown>;
      delete t.pep;
      await s.server.tenants.put(t as never);
      s.clock.advance(61_000);
    }
  });

  it("a tenant purge takes its accounts' nodes and its caps hashes (declared prefixes, docs/modules.md \"Storage\")", async () => {
    const domain = 'peppurge.example';
    await s.server.tenants.put({ domain, enabled: true } as never);
    s.clock.advance(61_000);
    await s.addUser(`ann@${domain}`);
    const c = await connectClient(s.url, { username: 'ann', domain });
    const notify = [`urn:example:purge${n}`];
    const ver = capsHash(discoInfo(notify))!;
    let answered = false;
    (c.xmpp as unknown as { iqCallee: { get(ns: string, name: string, fn: (ctx: { element: Element }) => Element): void } }).iqCallee.get(DISCO_INFO, 'query', (ctx) => {
      answered = true;
      return discoInfo(notify, ctx.element.attrs.node as string);
    });
    await c.iq(publishIq('urn:example:purge', '1', xml('x', { xmlns: 'urn:example' })));
    await c.send(xml('presence', {}, xml('c', { xmlns: CAPS, hash: 'sha-1', node: 'https://xmpp-edge.test', ver })));
    await c.waitFor((el) => el.name === 'presence' && el.attrs.from === c.jid);
    await c.roundTrip();
    assert.ok(answered);
    await c.stop();

    const db = createDynamoClient({ endpoint: s.dynamoEndpoint, localCredentials: true });
    try {
      const mentions = async () => ((await db.send(new ScanCommand({ TableName: s.table, ProjectionExpression: 'pk, sk' }))).Items ?? []).map((i) => String(i.pk)).filter((k) => k.includes(domain) && (k.startsWith('pep#') || k.startsWith('caps#')));
      assert.deepEqual((await mentions()).sort(), [`caps#${domain}`, `pep#ann@${domain}`]);
      const purger = new TenantPurger(db, s.table, purgePlanOf(s.server));
      await s.server.tenants.remove(domain);
      await purger.request(domain);
      await purger.runPending();
      assert.deepEqual(await mentions(), []);
    } finally {
      db.destroy();
    }
  });
});
