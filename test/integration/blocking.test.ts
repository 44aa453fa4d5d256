// XEP-0191 Blocking Command with real clients: the list (§3.2-§3.4) and its pushes, the errors of
// §3.3, and enforcement (§3.5 from a blocked JID, §3.6 to one, the unavailable presence of §3.3,
// offline storage), with the DynamoDB reads and writes and the posts each costs.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CACHE_MS, NS_BLOCKING, NS_BLOCKING_ERRORS } from '../../lib/extensions/blocking/index.ts';
import type { BlockListStore } from '../../lib/extensions/blocking/store.ts';
import { offlineOf } from '../../lib/extensions/offline/index.ts';
import { type Element, RawClient, type TestClient, type TestServer, WAIT_MS, connectClient, startTestServer, xml } from '../support/harness.ts';

const D = 'block.test';
const OTHER = 'other.test';
const PLAIN = 'plain.test';
const STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas';

/** The defined condition of an error stanza, and whether it carries XEP-0191's <blocked/>. */
function errorOf(el: Element): { type?: string; condition?: string; blocked: boolean; last?: string } {
  const error = el.getChild('error');
  const children = (error?.children ?? []).filter((c): c is Element => typeof c !== 'string');
  return {
    type: error?.attrs.type,
    condition: children.find((c) => c.attrs.xmlns === STANZAS && c.name !== 'text')?.name,
    blocked: !!error?.getChild('blocked', NS_BLOCKING_ERRORS),
    last: children.at(-1)?.name,
  };
}

const isPush = (name: 'block' | 'unblock') => (el: Element) => el.name === 'iq' && el.attrs.type === 'set' && !!el.getChild(name, NS_BLOCKING);
const jidsOf = (el: Element | undefined) => (el?.getChildren('item') ?? []).map((i: Element) => i.attrs.jid as string);

describe('XEP-0191 Blocking Command', () => {
  let s: TestServer;
  const clients: TestClient[] = [];
  const login = async (username: string, resource: string, domain = D) => {
    const c = await connectClient(s.url, { username, resource, domain });
    clients.push(c);
    return c;
  };
  /** Sends an IQ and returns whatever answers it (result or error). */
  const ask = async (c: TestClient, iq: Element) => {
    await c.send(iq);
    return c.waitFor((el) => el.name === 'iq' && el.attrs.id === iq.attrs.id && (el.attrs.type === 'result' || el.attrs.type === 'error'));
  };
  const blocklist = async (c: TestClient, id: string) => jidsOf((await ask(c, xml('iq', { type: 'get', id }, xml('blocklist', { xmlns: NS_BLOCKING })))).getChild('blocklist', NS_BLOCKING));
  const block = (c: TestClient, id: string, ...jids: string[]) => ask(c, xml('iq', { type: 'set', id }, xml('block', { xmlns: NS_BLOCKING }, ...jids.map((jid) => xml('item', { jid })))));
  const unblock = (c: TestClient, id: string, ...jids: string[]) => ask(c, xml('iq', { type: 'set', id }, xml('unblock', { xmlns: NS_BLOCKING }, ...jids.map((jid) => xml('item', { jid })))));
  const chat = (to: string, id: string) => xml('message', { to, id, type: 'chat' }, xml('body', {}, id));

  let alice: TestClient; // asks for the list
  let alice2: TestClient; // asks for the list
  let alice3: TestClient; // never asks
  let bob: TestClient;

  before(async () => {
    s = await startTestServer({ seedDomains: [] });
    await s.server.tenants.put({ domain: D, enabled: true, features: ['blocking'], federation: [OTHER] });
    await s.server.tenants.put({ domain: OTHER, enabled: true, features: ['blocking'], federation: [D] });
    for (const u of ['alice', 'bob', 'carol', 'erin', 'frank']) await s.addUser(`${u}@${D}`);
    await s.addUser(`mallory@${OTHER}`);
    await s.server.tenants.put({ domain: PLAIN, enabled: true });
    await s.addUser(`pat@${PLAIN}`);
    alice = await login('alice', 'one');
    alice2 = await login('alice', 'two');
    alice3 = await login('alice', 'three');
    bob = await login('bob', 'home');
  });
  after(async () => {
    for (const c of clients) await c.stop();
    await s.stop();
  });

  it('§3.1: the server and the account (its bare JID) advertise urn:xmpp:blocking in disco#info; a tenant without blocking does not', async () => {
    for (const to of [D, undefined, `alice@${D}`]) {
      const info = await alice.iq(xml('iq', { type: 'get', ...(to ? { to } : {}) }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })));
      const features = info.getChild('query')!.getChildren('feature').map((f: Element) => f.attrs.var);
      assert.ok(features.includes(NS_BLOCKING), `${to}: ${features.join(' ')}`);
    }
    const pat = await login('pat', 'p', PLAIN);
    for (const to of [PLAIN, `pat@${PLAIN}`]) {
      const info = await pat.iq(xml('iq', { type: 'get', to }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })));
      const features = info.getChild('query')!.getChildren('feature').map((f: Element) => f.attrs.var);
      assert.ok(features.includes('http://jabber.org/protocol/disco#info') && !features.includes(NS_BLOCKING), `${to}: ${features.join(' ')}`);
    }
    // Nor does it answer the protocol there: an unknown IQ.
    const res = await ask(pat, xml('iq', { type: 'get', id: 'plain-list' }, xml('blocklist', { xmlns: NS_BLOCKING })));
    assert.equal(errorOf(res).condition, 'service-unavailable');
    await pat.stop();
  });

  it('§3.2: an empty list is an empty <blocklist/>; retrieving it costs one read, one write (the resource asked) and the reply', async () => {
    const cost = await s.cost(async () => assert.deepEqual(await blocklist(alice, 'list-1'), []));
    assert.deepEqual({ reads: cost.reads, writes: cost.writes, posts: cost.posts }, { reads: 1, writes: 1, posts: 1 }, JSON.stringify(cost.calls));
    assert.deepEqual(await blocklist(alice2, 'list-2'), []);
  });

  it('§3.3: block two JIDs: a result, a push to each resource that asked for the list and none to the one that did not; 1 read, 1 + N writes, posts: pushes and the result', async () => {
    const cost = await s.cost(async () => {
      const res = await block(alice, 'block-1', `bob@${D}`, `frank@${D}/phone`);
      assert.equal(res.attrs.type, 'result');
    });
    // The list item, then one copy per live session (3); the result and two pushes.
    assert.deepEqual({ reads: cost.reads, writes: cost.writes, posts: cost.posts }, { reads: 1, writes: 4, posts: 3 }, JSON.stringify(cost.calls));
    for (const c of [alice, alice2]) {
      const push = await c.waitFor(isPush('block'), WAIT_MS, 'block push');
      assert.equal(push.attrs.to, c.jid);
      assert.deepEqual(jidsOf(push.getChild('block', NS_BLOCKING)).sort(), [`bob@${D}`, `frank@${D}/phone`]);
      // The client answers the push (RFC 6120 §8.2.3).
      await c.send(xml('iq', { type: 'result', id: push.attrs.id, to: push.attrs.from ?? D }));
    }
    await alice3.expectNothing(s, isPush('block'), alice);
    assert.deepEqual(await blocklist(alice, 'list-3'), [`bob@${D}`, `frank@${D}/phone`]);
  });

  it('§3.3 errors: an empty <block/> is bad-request, an item with a malformed JID jid-malformed, and nothing changes', async () => {
    const empty = await block(alice, 'block-empty');
    assert.deepEqual({ ...errorOf(empty), last: undefined }, { type: 'modify', condition: 'bad-request', blocked: false, last: undefined });
    const bad = await block(alice, 'block-bad', `carol@${D}`, 'not@@valid');
    assert.equal(errorOf(bad).condition, 'jid-malformed');
    const badUnblock = await unblock(alice, 'unblock-bad', '@nobody');
    assert.equal(errorOf(badUnblock).condition, 'jid-malformed');
    assert.deepEqual(await blocklist(alice, 'list-4'), [`bob@${D}`, `frank@${D}/phone`]);
  });

  it('§3.5: a message from a blocked JID is not delivered and is answered service-unavailable; costs the recipient\'s session item and the error', async () => {
    const cost = await s.cost(async () => {
      await bob.send(chat(`alice@${D}`, 'm-blocked'));
      const err = await bob.waitFor((el) => el.name === 'message' && el.attrs.id === 'm-blocked');
      assert.equal(err.attrs.type, 'error');
      assert.equal(err.attrs.from, `alice@${D}`);
      assert.deepEqual(errorOf(err), { type: 'cancel', condition: 'service-unavailable', blocked: false, last: 'service-unavailable' });
    });
    assert.deepEqual({ reads: cost.reads, writes: cost.writes, posts: cost.posts }, { reads: 1, writes: 0, posts: 1 }, JSON.stringify(cost.calls));
    await bob.send(chat(`alice@${D}/one`, 'm-blocked-full'));
    await bob.waitFor((el) => el.attrs.id === 'm-blocked-full' && el.attrs.type === 'error');
    for (const c of [alice, alice2, alice3]) await c.expectNothing(s, (el) => el.name === 'message' && el.attrs.from?.startsWith(`bob@${D}`), bob);
  });

  it('§3.5: an IQ get from a blocked JID is answered service-unavailable; its presence is dropped without an answer', async () => {
    const res = await ask(bob, xml('iq', { type: 'get', id: 'iq-blocked', to: alice.jid }, xml('query', { xmlns: 'jabber:iq:version' })));
    assert.deepEqual(errorOf(res), { type: 'cancel', condition: 'service-unavailable', blocked: false, last: 'service-unavailable' });
    await bob.send(xml('presence', { to: alice.jid, id: 'p-blocked' }));
    await alice.expectNothing(s, (el) => el.attrs.from?.startsWith(`bob@${D}`) === true, bob);
    await bob.expectNothing(s, (el) => el.attrs.id === 'p-blocked');
  });

  it('§3.6: a message or IQ to a blocked JID is answered not-acceptable with <blocked/>, and does not reach it', async () => {
    const cost = await s.cost(async () => {
      await alice.send(chat(`bob@${D}`, 'm-out'));
      const err = await alice.waitFor((el) => el.name === 'message' && el.attrs.id === 'm-out');
      assert.equal(err.attrs.type, 'error');
      // RFC 6120 §8.3.2: the defined condition first, the application-specific one after it.
      assert.deepEqual(errorOf(err), { type: 'cancel', condition: 'not-acceptable', blocked: true, last: 'blocked' });
    });
    // The recipient's session item is read before the check; the sender's list is this process's copy.
    assert.deepEqual({ reads: cost.reads, writes: cost.writes, posts: cost.posts }, { reads: 1, writes: 0, posts: 1 }, JSON.stringify(cost.calls));
    const res = await ask(alice2, xml('iq', { type: 'get', id: 'iq-out', to: bob.jid }, xml('query', { xmlns: 'jabber:iq:version' })));
    assert.deepEqual(errorOf(res), { type: 'cancel', condition: 'not-acceptable', blocked: true, last: 'blocked' });
    await bob.expectNothing(s, (el) => el.attrs.from?.startsWith(`alice@${D}`) === true, alice, alice2);
  });

  it('a full-JID block blocks that resource only; a domain block every JID of the domain', async () => {
    const phone = await login('frank', 'phone');
    const laptop = await login('frank', 'laptop');
    await phone.send(chat(`alice@${D}/one`, 'f-phone'));
    assert.equal(errorOf(await phone.waitFor((el) => el.attrs.id === 'f-phone')).condition, 'service-unavailable');
    await laptop.send(chat(`alice@${D}/one`, 'f-laptop'));
    await alice.waitFor((el) => el.name === 'message' && el.attrs.id === 'f-laptop' && el.attrs.from === laptop.jid);

    const mallory = await login('mallory', 'm', OTHER);
    await mallory.send(chat(`alice@${D}/one`, 'mal-1'));
    await alice.waitFor((el) => el.attrs.id === 'mal-1');
    await block(alice, 'block-domain', OTHER);
    await mallory.send(chat(`alice@${D}/one`, 'mal-2'));
    assert.equal(errorOf(await mallory.waitFor((el) => el.attrs.id === 'mal-2')).condition, 'service-unavailable');
    await alice.send(chat(mallory.jid, 'to-mal'));
    assert.ok(errorOf(await alice.waitFor((el) => el.attrs.id === 'to-mal')).blocked);
    await alice.expectNothing(s, (el) => el.attrs.id === 'mal-2', mallory);
  });

  it('§3.3: blocking a subscribed contact sends it unavailable presence from each available resource, and no presence after', async () => {
    const carol = await login('carol', 'desk');
    // carol subscribes to alice's presence; alice approves; alice/one is available.
    await alice.send(xml('presence', {}));
    await carol.send(xml('presence', {}));
    await carol.send(xml('presence', { to: `alice@${D}`, type: 'subscribe' }));
    await alice.waitFor((el) => el.name === 'presence' && el.attrs.type === 'subscribe');
    await alice.send(xml('presence', { to: `carol@${D}`, type: 'subscribed' }));
    await carol.waitFor((el) => el.name === 'presence' && el.attrs.from === alice.jid && el.attrs.type === undefined, WAIT_MS, "alice's presence");

    const cost = await s.cost(async () => {
      await block(alice, 'block-carol', `carol@${D}`);
      const gone = await carol.waitFor((el) => el.name === 'presence' && el.attrs.type === 'unavailable', WAIT_MS, 'unavailable');
      assert.equal(gone.attrs.from, alice.jid);
      assert.equal(gone.attrs.to, `carol@${D}`);
    });
    // The list item and the account's sessions; the roster Query and carol's sessions. Writes: the
    // item and one copy per live session (3). Posts: result, two pushes, one unavailable.
    assert.deepEqual({ reads: cost.reads, writes: cost.writes, posts: cost.posts }, { reads: 3, writes: 4, posts: 4 }, JSON.stringify(cost.calls));
    await alice.send(xml('presence', {}, xml('show', {}, 'away')));
    await alice.waitFor((el) => el.name === 'presence' && el.attrs.from === alice.jid && el.getChildText('show') === 'away');
    await carol.expectNothing(s, (el) => el.name === 'presence' && el.attrs.from === alice.jid, alice);
    // carol's own presence no longer reaches alice either (§3.5).
    await carol.send(xml('presence', {}, xml('show', {}, 'dnd')));
    await alice.expectNothing(s, (el) => el.name === 'presence' && el.attrs.from === carol.jid, carol);
    // carol's next session probes alice at its initial presence (RFC 6121 §4.3): no answer.
    const carol2 = await login('carol', 'tablet');
    await carol2.send(xml('presence', {}));
    await carol2.waitFor((el) => el.name === 'presence' && el.attrs.from === carol.jid, WAIT_MS, "carol/desk's presence");
    await carol2.expectNothing(s, (el) => el.name === 'presence' && el.attrs.from?.startsWith(`alice@${D}`) === true, carol2);
  });

  it('§3.5: a message from a blocked JID to an offline user is not stored, and is answered service-unavailable', async () => {
    const erin = await login('erin', 'e');
    await block(erin, 'erin-block', `bob@${D}`);
    await erin.stop();
    await s.gateway.idle();
    // This process's copy of erin's list is out of date, so the list item is read; bob's own copy
    // (for the §3.6 check) is fresh: he has just retrieved his list.
    s.clock.advance(CACHE_MS);
    await blocklist(bob, 'bob-list');
    const cost = await s.cost(async () => {
      await bob.send(chat(`erin@${D}`, 'to-erin'));
      assert.equal(errorOf(await bob.waitFor((el) => el.attrs.id === 'to-erin')).condition, 'service-unavailable');
    });
    // erin's session item, the account check, erin's list; no offline write.
    assert.deepEqual({ reads: cost.reads, writes: cost.writes, posts: cost.posts }, { reads: 3, writes: 0, posts: 1 }, JSON.stringify(cost.calls));
    assert.deepEqual(await offlineOf(s.server).list(`erin@${D}`), []);
  });

  it('§3.4: unblock one JID (a push of it), then unblock all (an empty <unblock/> pushed), after which messages flow', async () => {
    const res = await unblock(alice, 'unblock-bob', `bob@${D}`);
    assert.equal(res.attrs.type, 'result');
    for (const c of [alice, alice2]) {
      const push = await c.waitFor((el) => isPush('unblock')(el) && jidsOf(el.getChild('unblock', NS_BLOCKING)).length === 1);
      assert.deepEqual(jidsOf(push.getChild('unblock', NS_BLOCKING)), [`bob@${D}`]);
    }
    await bob.send(chat(`alice@${D}/one`, 'after-unblock'));
    await alice.waitFor((el) => el.name === 'message' && el.attrs.id === 'after-unblock');

    assert.equal((await unblock(alice, 'unblock-all')).attrs.type, 'result');
    for (const c of [alice, alice2]) {
      const push = await c.waitFor((el) => isPush('unblock')(el) && jidsOf(el.getChild('unblock', NS_BLOCKING)).length === 0);
      assert.equal(push.getChild('unblock', NS_BLOCKING)!.children.length, 0);
    }
    await alice3.expectNothing(s, isPush('unblock'), alice);
    assert.deepEqual(await blocklist(alice, 'list-5'), []);
  });

  it('a login of an account with a non-empty list costs one read (the list) and one write (its copy) more', async () => {
    await block(alice, 'block-for-login', `bob@${D}`);
    const measure = async (username: string, domain: string) => {
      const c = await RawClient.connect(s.url);
      const cost = await s.cost(() => c.login(username, 'secret', 'raw', domain));
      return { c, cost: { reads: cost.reads, writes: cost.writes, posts: cost.posts } };
    };
    // The same login where blocking is off, where it is on with an empty list, with a list.
    (await measure('pat', PLAIN)).c.ws.close(); // an account's very first login writes its session item
    const off = await measure('pat', PLAIN);
    const empty = await measure('carol', D);
    const { c, cost } = await measure('alice', D);
    assert.deepEqual(empty.cost, { ...off.cost, reads: off.cost.reads + 1 });
    assert.deepEqual(cost, { ...off.cost, reads: off.cost.reads + 1, writes: off.cost.writes + 1 });
    for (const x of [off.c, empty.c]) x.ws.close();
    // The new session's copy is in force at once: bob's message to it is refused.
    await bob.send(chat(`alice@${D}/raw`, 'to-raw'));
    assert.equal(errorOf(await bob.waitFor((el) => el.attrs.id === 'to-raw')).condition, 'service-unavailable');
    c.ws.close();
    await c.closed;
  });

  it("the sender's check uses this process's copy of its list for CACHE_MS: a change written elsewhere (another container) applies after that, for one read", async () => {
    const laptop = clients.find((c) => c.jid === `frank@${D}/laptop`)!;
    const store = s.server.registry.apis.get('blocking') as BlockListStore;
    await store.add(`alice@${D}`, [`frank@${D}`]);
    await alice.send(chat(laptop.jid, 'stale'));
    await laptop.waitFor((el) => el.attrs.id === 'stale');
    s.clock.advance(CACHE_MS);
    const cost = await s.cost(async () => {
      await alice.send(chat(laptop.jid, 'fresh'));
      assert.ok(errorOf(await alice.waitFor((el) => el.attrs.id === 'fresh')).blocked);
    });
    // frank's session item, alice's list item.
    assert.deepEqual({ reads: cost.reads, writes: cost.writes, posts: cost.posts }, { reads: 2, writes: 0, posts: 1 }, JSON.stringify(cost.calls));
    await laptop.expectNothing(s, (el) => el.attrs.id === 'fresh', alice);
  });
});
