// RFC 6121 over real WebSockets with real xmpp.js clients: the roster (§2), presence subscriptions
// (§3, the examples of §3.1–§3.4), presence (§4: initial presence, probes, updates, unavailable,
// directed presence, priority), the unavailable presence every kind of session end causes, and the
// DynamoDB / management-API cost of presence and roster operations.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type TestClient, type TestServer, connectClient, startTestServer, until, xml, type Element, WAIT_MS } from '../support/harness.ts';
import { rosterOf as rosterStoreOf } from '../../lib/extensions/roster/index.ts';

const ROSTER = 'jabber:iq:roster';

let s: TestServer;
let n = 0;
const clients: TestClient[] = [];
/** Every stanza each client received, in arrival order (TestClient.received loses what waitFor took). */
const logs = new WeakMap<TestClient, Element[]>();

const jid = (name: string) => `${name}@localhost`;

/** A fresh account per test. */
async function user(prefix: string): Promise<string> {
  const name = `${prefix}${++n}`;
  await s.addUser(jid(name), `pw-${name}`);
  return name;
}

async function login(name: string, resource = 'r1', server: TestServer = s): Promise<TestClient> {
  const c = await connectClient(server.url, { username: name, password: `pw-${name}`, resource });
  const log: Element[] = [];
  c.xmpp.on('stanza', (el: Element) => log.push(el));
  logs.set(c, log);
  // Answer roster pushes like a real client does (RFC 6121 §2.1.6).
  (c.xmpp as unknown as { iqCallee: { set(ns: string, name: string, fn: () => boolean): void } }).iqCallee.set(ROSTER, 'query', () => true);
  clients.push(c);
  return c;
}

const ping = (c: TestClient) => c.iq(xml('iq', { type: 'get' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));

/**
 * Waits until everything already sent has been processed and delivered: the gateway is idle, then each
 * client in turn gets a ping answered (one connection's frames are handled in order, and posts to one
 * connection are awaited in order, so whatever was posted to a client before its pong has arrived).
 */
async function settle(...cs: TestClient[]): Promise<void> {
  await s.gateway.idle();
  for (const c of cs) await ping(c);
}

/** Asserts `c` holds no unconsumed stanza matching `pred` (call after settle). */
function none(c: TestClient, pred: (el: Element) => boolean, what: string): void {
  const hit = c.received.find(pred);
  assert.equal(hit, undefined, `${c.jid} unexpectedly got ${what}: ${hit?.toString()}`);
}

// ---- predicates ---------------------------------------------------------------------------------

const isPush = (contact: string) => (el: Element) =>
  el.name === 'iq' && el.attrs.type === 'set' && el.getChild('query', ROSTER)?.getChild('item')?.attrs.jid === contact;
const anyPush = (el: Element) => el.name === 'iq' && el.attrs.type === 'set' && !!el.getChild('query', ROSTER);
const itemOf = (push: Element) => push.getChild('query', ROSTER)!.getChild('item')!;
/** Presence from `from` of `type` (undefined = available). */
const presence = (from: string, type?: string) => (el: Element) => el.name === 'presence' && el.attrs.from === from && el.attrs.type === type;

/** The item's visible attributes, as a client sees them. */
function attrsOf(item: Element): Record<string, string> {
  const { jid: j, subscription, ask, approved, name } = item.attrs as Record<string, string | undefined>;
  const out: Record<string, string> = { jid: j!, subscription: subscription! };
  if (ask !== undefined) out.ask = ask;
  if (approved !== undefined) out.approved = approved;
  if (name !== undefined) out.name = name;
  return out;
}

async function waitPush(c: TestClient, contact: string, expected: Record<string, string>): Promise<Element> {
  const push = await c.waitFor(isPush(contact), WAIT_MS, `roster push for ${contact}`);
  assert.equal(push.attrs.to, c.jid, 'a roster push is addressed to the full JID of the interested resource');
  assert.deepEqual(attrsOf(itemOf(push)), { jid: contact, ...expected });
  return push;
}

async function rosterOf(c: TestClient): Promise<Element[]> {
  const res = await c.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: ROSTER })));
  assert.equal(res.attrs.type, 'result');
  return res.getChild('query', ROSTER)!.getChildren('item');
}

async function rosterSet(c: TestClient, ...items: Element[]): Promise<Element> {
  return c.iq(xml('iq', { type: 'set' }, xml('query', { xmlns: ROSTER }, ...items)));
}

/** Sends available presence and waits for its reflection to the sender. */
async function available(c: TestClient, opts: { priority?: number; show?: string; status?: string } = {}): Promise<Element> {
  const p = xml('presence');
  if (opts.show) p.c('show').t(opts.show);
  if (opts.status) p.c('status').t(opts.status);
  if (opts.priority !== undefined) p.c('priority').t(String(opts.priority));
  await c.send(p);
  return c.waitFor(presence(c.jid), WAIT_MS, 'own presence reflected');
}

/** Logs in, requests the roster (so the resource is interested) and sends initial presence. */
async function online(name: string, resource = 'r1', opts: Parameters<typeof available>[1] = {}): Promise<TestClient> {
  const c = await login(name, resource);
  await rosterOf(c);
  await available(c, opts);
  return c;
}

type Sub = 'none' | 'to' | 'from' | 'both';
const MIRROR: Record<Sub, Sub> = { none: 'none', to: 'from', from: 'to', both: 'both' };

/**
 * Puts `a`'s item for `b` with subscription `sub` and `b`'s mirror item straight into the store: the state a
 * completed handshake leaves (the handshake itself is covered by the subscription tests).
 */
async function relate(a: string, b: string, sub: Sub): Promise<void> {
  const item = (contact: string, subscription: Sub) => ({ jid: jid(contact), groups: [], subscription, pendingOut: false, pendingIn: false, approved: false, inRoster: true });
  await rosterStoreOf(s.server).put(jid(a), item(b, sub));
  await rosterStoreOf(s.server).put(jid(b), item(a, MIRROR[sub]));
}

async function stopAll(...cs: TestClient[]): Promise<void> {
  await Promise.all(cs.map((c) => c.stop()));
}

before(async () => {
  // No background polling on this server: cost() counts every call made while an operation runs.
  s = await startTestServer({ tenantWatchMs: 3_600_000, sweepIntervalMs: 3_600_000 });
});
after(async () => {
  await stopAll(...clients);
  await s.stop();
});

// ---- §2 roster ----------------------------------------------------------------------------------

describe('roster management (RFC 6121 §2)', () => {
  it('returns an empty roster to a new account (§2.1.3)', async () => {
    const name = await user('empty');
    const c = await login(name);
    const res = await c.iq(xml('iq', { type: 'get', id: 'r-empty' }, xml('query', { xmlns: ROSTER })));
    assert.equal(res.attrs.type, 'result');
    assert.equal(res.attrs.id, 'r-empty');
    assert.equal(res.attrs.to, c.jid);
    const query = res.getChild('query', ROSTER);
    assert.ok(query, 'the result carries an empty <query/>');
    assert.equal(query.children.length, 0);
    await c.stop();
  });

  it('adds an item with name and groups: result, then a push to every interested resource only (§2.3, §2.1.6)', async () => {
    const [owner, contact] = [await user('nurse-owner'), await user('nurse')];
    const r1 = await login(owner, 'r1');
    const r2 = await login(owner, 'r2');
    const r3 = await login(owner, 'r3'); // never asks for the roster: not interested
    assert.equal((await rosterOf(r1)).length, 0);
    assert.equal((await rosterOf(r2)).length, 0);

    const res = await rosterSet(r1, xml('item', { jid: jid(contact), name: 'Nurse' }, xml('group', {}, 'Servants'), xml('group', {}, 'Friends')));
    assert.equal(res.attrs.type, 'result');
    assert.equal(res.children.length, 0, 'a roster set result is empty');

    for (const c of [r1, r2]) {
      const push = await waitPush(c, jid(contact), { subscription: 'none', name: 'Nurse' });
      assert.deepEqual(itemOf(push).getChildren('group').map((g) => g.text()), ['Servants', 'Friends']);
      assert.equal(push.attrs.from, undefined, 'a push from the account itself carries no from (or the bare JID)');
    }
    await settle(r1, r2, r3);
    none(r3, anyPush, 'a roster push (it never requested the roster)');
    none(r1, anyPush, 'a second push');

    // Updating replaces name and groups (§2.4); the item keeps its subscription.
    await rosterSet(r2, xml('item', { jid: jid(contact) }, xml('group', {}, 'Family')));
    for (const c of [r1, r2]) {
      const push = await waitPush(c, jid(contact), { subscription: 'none' });
      assert.deepEqual(itemOf(push).getChildren('group').map((g) => g.text()), ['Family']);
    }
    const items = await rosterOf(r3);
    assert.equal(items.length, 1);
    assert.deepEqual(attrsOf(items[0]), { jid: jid(contact), subscription: 'none' });
    assert.deepEqual(items[0].getChildren('group').map((g) => g.text()), ['Family']);
    await settle(r3);
    // r3 asked for the roster now, so it is interested from here on.
    await rosterSet(r1, xml('item', { jid: jid(contact), name: 'N' }));
    for (const c of [r1, r2, r3]) await waitPush(c, jid(contact), { subscription: 'none', name: 'N' });
    await stopAll(r1, r2, r3);
  });

  it('removes an item: push with subscription="remove", and the roster no longer lists it (§2.5)', async () => {
    const [owner, contact] = [await user('rm-owner'), await user('rm')];
    const r1 = await login(owner, 'r1');
    const r2 = await login(owner, 'r2');
    await rosterOf(r1);
    await rosterOf(r2);
    await rosterSet(r1, xml('item', { jid: jid(contact), name: 'X' }));
    await waitPush(r1, jid(contact), { subscription: 'none', name: 'X' });
    await waitPush(r2, jid(contact), { subscription: 'none', name: 'X' });

    const res = await rosterSet(r2, xml('item', { jid: jid(contact), subscription: 'remove' }));
    assert.equal(res.attrs.type, 'result');
    for (const c of [r1, r2]) {
      const push = await waitPush(c, jid(contact), { subscription: 'remove' });
      assert.equal(itemOf(push).children.length, 0);
    }
    assert.equal((await rosterOf(r1)).length, 0);
    await stopAll(r1, r2);
  });

  it('refuses malformed sets with the RFC conditions, and pushes nothing (§2.3.3, §2.5.3)', async () => {
    const [owner, a, b] = [await user('err-owner'), await user('erra'), await user('errb')];
    const c = await login(owner);
    await rosterOf(c);
    const expectError = async (items: Element[], condition: string, type: string) => {
      await assert.rejects(rosterSet(c, ...items), (err: Error & { condition?: string; type?: string }) => {
        assert.equal(err.condition, condition);
        assert.equal(err.type, type);
        return true;
      });
    };
    await expectError([xml('item', { jid: jid(a) }), xml('item', { jid: jid(b) })], 'bad-request', 'modify');
    await expectError([xml('item', { jid: jid(owner) })], 'not-allowed', 'cancel');
    await expectError([xml('item', { jid: `${jid(owner)}/other` })], 'not-allowed', 'cancel');
    await expectError([xml('item', { jid: jid(a) }, xml('group', {}, 'G'), xml('group', {}, 'G'))], 'bad-request', 'modify');
    await expectError([xml('item', { jid: jid(b), subscription: 'remove' })], 'item-not-found', 'cancel');
    await settle(c);
    none(c, anyPush, 'a roster push after a refused set');
    assert.equal((await rosterOf(c)).length, 0, 'nothing was stored');
    await c.stop();
  });
});

// ---- §3 subscriptions ---------------------------------------------------------------------------

describe('presence subscriptions (RFC 6121 §3)', () => {
  it('runs the §3.1 handshake: request, approval, then a mutual subscription', async () => {
    const [romeo, juliet] = [await user('romeo'), await user('juliet')];
    const r = await online(romeo, 'orchard');
    const j = await online(juliet, 'balcony');
    const nosy = await login(romeo, 'nosy'); // interested (asked for the roster), never available
    await rosterOf(nosy);

    // §3.1.1/§3.1.2: the user's server pushes ask="subscribe" and routes the request from the bare JID.
    await r.send(xml('presence', { to: jid(juliet), type: 'subscribe', id: 'sub1' }, xml('status', {}, 'wherefore')));
    await waitPush(r, jid(juliet), { subscription: 'none', ask: 'subscribe' });
    const req = await j.waitFor(presence(jid(romeo), 'subscribe'), WAIT_MS, 'subscribe');
    assert.equal(req.attrs.to, jid(juliet));
    assert.equal(req.getChildText('status'), 'wherefore', 'what the sender attached is kept');
    // §3.1.3: no roster item for the contact before approval.
    await settle(r, j);
    none(j, anyPush, 'a roster push before approving');
    assert.equal((await rosterOf(j)).length, 0);

    // §3.1.5/§3.1.6: approval.
    await j.send(xml('presence', { to: jid(romeo), type: 'subscribed' }));
    await waitPush(j, jid(romeo), { subscription: 'from' });
    const approval = await r.waitFor(presence(jid(juliet), 'subscribed'), WAIT_MS, 'subscribed');
    assert.equal(approval.attrs.to, jid(romeo));
    await waitPush(r, jid(juliet), { subscription: 'to' });
    const current = await r.waitFor(presence(j.jid), 3000, "juliet's presence");
    assert.equal(current.attrs.to, jid(romeo));
    // Interested resources get the approval and the pushes; presence only goes to available ones.
    await nosy.waitFor(presence(jid(juliet), 'subscribed'), WAIT_MS, 'subscribed at the interested resource');
    await waitPush(nosy, jid(juliet), { subscription: 'none', ask: 'subscribe' });
    await waitPush(nosy, jid(juliet), { subscription: 'to' });
    await settle(j, r, nosy);
    none(nosy, (el) => el.name === 'presence', 'presence at a resource that is not available');
    none(j, presence(r.jid), "romeo's presence (juliet is not subscribed to him)");
    none(r, anyPush, 'a second push');

    // Now juliet's broadcasts reach romeo, romeo's do not reach juliet.
    await available(j, { show: 'away' });
    assert.equal((await r.waitFor(presence(j.jid), WAIT_MS, 'update')).getChildText('show'), 'away');
    await available(r, { show: 'chat' });
    await settle(r, j);
    none(j, presence(r.jid), "romeo's update");

    // The mutual subscription (§3.1, then the same in the other direction).
    await j.send(xml('presence', { to: jid(romeo), type: 'subscribe' }));
    await waitPush(j, jid(romeo), { subscription: 'from', ask: 'subscribe' });
    await r.waitFor(presence(jid(juliet), 'subscribe'), WAIT_MS, 'subscribe back');
    await r.send(xml('presence', { to: jid(juliet), type: 'subscribed' }));
    await waitPush(r, jid(juliet), { subscription: 'both' });
    await j.waitFor(presence(jid(romeo), 'subscribed'), WAIT_MS, 'subscribed back');
    await waitPush(j, jid(romeo), { subscription: 'both' });
    assert.equal((await j.waitFor(presence(r.jid), 3000, "romeo's presence")).getChildText('show'), 'chat');

    assert.deepEqual((await rosterOf(r)).map(attrsOf), [{ jid: jid(juliet), subscription: 'both' }]);
    assert.deepEqual((await rosterOf(j)).map(attrsOf), [{ jid: jid(romeo), subscription: 'both' }]);
    await stopAll(r, j, nosy);
  });

  it('delivers a request to an offline contact at their next initial presence, until answered (§3.1.3)', async () => {
    const [romeo, juliet] = [await user('romeo'), await user('juliet')];
    const r = await online(romeo);
    await r.send(xml('presence', { to: jid(juliet), type: 'subscribe' }));
    await waitPush(r, jid(juliet), { subscription: 'none', ask: 'subscribe' });
    await settle(r);

    const j = await login(juliet, 'balcony');
    await rosterOf(j);
    await settle(j);
    none(j, presence(jid(romeo), 'subscribe'), 'the request before initial presence');
    await available(j);
    const req = await j.waitFor(presence(jid(romeo), 'subscribe'), WAIT_MS, 'stored request');
    assert.equal(req.attrs.to, jid(juliet));
    await j.stop();

    // Not answered: delivered again at the next login.
    const j2 = await login(juliet, 'balcony');
    await available(j2);
    await j2.waitFor(presence(jid(romeo), 'subscribe'), WAIT_MS, 'stored request again');
    await j2.send(xml('presence', { to: jid(romeo), type: 'subscribed' }));
    await waitPush(r, jid(juliet), { subscription: 'to' });
    await r.waitFor(presence(j2.jid), 3000, "juliet's presence after approval");
    await j2.stop();

    // Answered: not delivered any more.
    const j3 = await login(juliet, 'balcony');
    await available(j3);
    await settle(j3);
    none(j3, presence(jid(romeo), 'subscribe'), 'an answered request');
    await stopAll(r, j3);
  });

  it('answers a request to an account that does not exist with unsubscribed (§3.1.3)', async () => {
    const romeo = await user('romeo');
    const ghost = `ghost${++n}@localhost`;
    const r = await online(romeo);
    await r.send(xml('presence', { to: ghost, type: 'subscribe' }));
    const denial = await r.waitFor(presence(ghost, 'unsubscribed'), WAIT_MS, 'unsubscribed');
    assert.equal(denial.attrs.to, jid(romeo));
    await settle(r);
    // The pushes arrive in order; the last one must show the final state (no ask).
    const pushes = logs.get(r)!.filter(isPush(ghost)).map((p) => attrsOf(itemOf(p)));
    assert.deepEqual(pushes.at(-1), { jid: ghost, subscription: 'none' }, JSON.stringify(pushes));
    assert.deepEqual(pushes[0], { jid: ghost, subscription: 'none', ask: 'subscribe' });
    assert.deepEqual((await rosterOf(r)).map(attrsOf), [{ jid: ghost, subscription: 'none' }]);
    await r.stop();
  });

  it('unsubscribe (§3.3): the contact gets it and a push, the user gets unavailable and a push', async () => {
    const [romeo, juliet] = [await user('romeo'), await user('juliet')];
    await relate(romeo, juliet, 'both');
    const r = await online(romeo, 'orchard');
    const j = await online(juliet, 'balcony');
    await r.waitFor(presence(j.jid), 3000, "juliet's initial presence");
    await j.waitFor(presence(r.jid), 3000, "romeo's presence (probe answer)");

    await r.send(xml('presence', { to: jid(juliet), type: 'unsubscribe' }));
    const unsub = await j.waitFor(presence(jid(romeo), 'unsubscribe'), WAIT_MS, 'unsubscribe');
    assert.equal(unsub.attrs.to, jid(juliet));
    await waitPush(j, jid(romeo), { subscription: 'to' });
    const gone = await r.waitFor(presence(j.jid, 'unavailable'), 3000, "juliet's unavailable");
    assert.equal(gone.attrs.to, jid(romeo));
    await waitPush(r, jid(juliet), { subscription: 'from' });
    await settle(r, j);
    none(r, presence(jid(juliet), 'unsubscribed'), 'the auto-reply (it changes nothing for romeo)');
    none(r, anyPush, 'another push');
    none(j, anyPush, 'another push');

    // Juliet's broadcasts no longer reach romeo; romeo's still reach juliet.
    await available(j, { status: 'alone' });
    await available(r, { status: 'still here' });
    assert.equal((await j.waitFor(presence(r.jid), 3000, "romeo's update")).getChildText('status'), 'still here');
    await settle(j, r);
    none(r, presence(j.jid), "juliet's update");
    await stopAll(r, j);
  });

  it('unsubscribed cancels (§3.2): unavailable first, then unsubscribed, then the pushes', async () => {
    const [romeo, juliet] = [await user('romeo'), await user('juliet')];
    await relate(romeo, juliet, 'both');
    const r = await online(romeo, 'orchard');
    const j = await online(juliet, 'balcony');
    await r.waitFor(presence(j.jid), 3000, "juliet's initial presence");

    await j.send(xml('presence', { to: jid(romeo), type: 'unsubscribed' }));
    const cancel = await r.waitFor(presence(jid(juliet), 'unsubscribed'), WAIT_MS, 'unsubscribed');
    assert.equal(cancel.attrs.to, jid(romeo));
    await waitPush(r, jid(juliet), { subscription: 'from' });
    await waitPush(j, jid(romeo), { subscription: 'to' });
    const log = logs.get(r)!;
    const unavailableAt = log.findIndex(presence(j.jid, 'unavailable'));
    const cancelAt = log.indexOf(cancel);
    assert.ok(unavailableAt >= 0 && unavailableAt < cancelAt, '§3.2.2: unavailable presence comes before the unsubscribed');
    await settle(j, r);
    none(r, anyPush, 'another push');
    await stopAll(r, j);
  });

  it('unsubscribed denies a pending request (§3.2.1): no presence leaks, no roster item for the contact', async () => {
    const [romeo, juliet] = [await user('romeo'), await user('juliet')];
    const r = await online(romeo);
    const j = await online(juliet);
    await r.send(xml('presence', { to: jid(juliet), type: 'subscribe' }));
    await j.waitFor(presence(jid(romeo), 'subscribe'), WAIT_MS, 'subscribe');
    await waitPush(r, jid(juliet), { subscription: 'none', ask: 'subscribe' });

    await j.send(xml('presence', { to: jid(romeo), type: 'unsubscribed' }));
    await r.waitFor(presence(jid(juliet), 'unsubscribed'), WAIT_MS, 'denial');
    await waitPush(r, jid(juliet), { subscription: 'none' });
    await settle(j, r);
    none(r, presence(j.jid, 'unavailable'), 'unavailable presence from a contact it was never subscribed to');
    none(j, anyPush, 'a push (juliet has no item for romeo)');
    assert.equal((await rosterOf(j)).length, 0);
    // The request is gone: it is not redelivered at juliet's next initial presence.
    const j2 = await login(juliet, 'second');
    await available(j2);
    await settle(j2);
    none(j2, presence(jid(romeo), 'subscribe'), 'a denied request');
    await stopAll(r, j, j2);
  });

  it('pre-approval (§3.4): the later request is approved at once and never shown to the contact', async () => {
    const [romeo, juliet] = [await user('romeo'), await user('juliet')];
    const r = await online(romeo, 'orchard');
    const j = await online(juliet, 'balcony');

    await j.send(xml('presence', { to: jid(romeo), type: 'subscribed' }));
    await waitPush(j, jid(romeo), { subscription: 'none', approved: 'true' });
    await settle(j, r);
    none(r, presence(jid(juliet), 'subscribed'), 'the pre-approval (it is not routed)');
    none(r, anyPush, 'a push');

    await r.send(xml('presence', { to: jid(juliet), type: 'subscribe' }));
    await r.waitFor(presence(jid(juliet), 'subscribed'), WAIT_MS, 'automatic approval');
    await r.waitFor(presence(j.jid), 3000, "juliet's presence");
    await waitPush(j, jid(romeo), { subscription: 'from' });
    await settle(r, j);
    none(j, presence(jid(romeo), 'subscribe'), 'the pre-approved request');
    const pushes = logs.get(r)!.filter(isPush(jid(juliet))).map((p) => attrsOf(itemOf(p)));
    assert.deepEqual(pushes.at(-1), { jid: jid(juliet), subscription: 'to' }, `the last push shows the final state: ${JSON.stringify(pushes)}`);
    assert.deepEqual((await rosterOf(r)).map(attrsOf), [{ jid: jid(juliet), subscription: 'to' }]);
    assert.deepEqual((await rosterOf(j)).map(attrsOf), [{ jid: jid(romeo), subscription: 'from' }]);
    await stopAll(r, j);
  });

  it('removing a contact with a mutual subscription unsubscribes both ways (§2.5.2)', async () => {
    const [romeo, juliet] = [await user('romeo'), await user('juliet')];
    await relate(romeo, juliet, 'both');
    const r = await online(romeo, 'orchard');
    const j = await online(juliet, 'balcony');
    await r.waitFor(presence(j.jid), 3000, "juliet's presence");
    await j.waitFor(presence(r.jid), 3000, "romeo's presence");

    await rosterSet(r, xml('item', { jid: jid(juliet), subscription: 'remove' }));
    await j.waitFor(presence(jid(romeo), 'unsubscribe'), WAIT_MS, 'unsubscribe');
    await j.waitFor(presence(jid(romeo), 'unsubscribed'), WAIT_MS, 'unsubscribed');
    await j.waitFor(presence(r.jid, 'unavailable'), 3000, "romeo's unavailable");
    await r.waitFor(presence(j.jid, 'unavailable'), 3000, "juliet's unavailable");
    await settle(r, j);
    const pushes = logs.get(r)!.filter(isPush(jid(juliet))).map((p) => attrsOf(itemOf(p)));
    assert.deepEqual(pushes.at(-1), { jid: jid(juliet), subscription: 'remove' }, JSON.stringify(pushes));
    assert.equal((await rosterOf(r)).length, 0);
    assert.deepEqual((await rosterOf(j)).map(attrsOf), [{ jid: jid(romeo), subscription: 'none' }]);
    await stopAll(r, j);
  });
});

// ---- §4 presence --------------------------------------------------------------------------------

describe('presence (RFC 6121 §4)', () => {
  it('initial presence goes to subscribers and own resources; probes return contacts and own resources (§4.2)', async () => {
    const [me, both, from, to, stranger] = [await user('me'), await user('both'), await user('from'), await user('to'), await user('stranger')];
    await relate(me, both, 'both');
    await relate(me, from, 'from'); // `from` is subscribed to me, I am not subscribed to it
    await relate(me, to, 'to'); // I am subscribed to `to`
    await relate(me, stranger, 'none');
    const cBoth = await online(both);
    const cFrom = await online(from);
    const cTo = await online(to);
    const cStranger = await online(stranger);
    const m1 = await online(me, 'one');
    for (const c of [cBoth, cFrom]) await c.waitFor(presence(m1.jid), 3000, "m1's initial presence");
    await settle(cBoth, cFrom, cTo, cStranger, m1);
    const m2 = await login(me, 'two');
    await rosterOf(m2);
    for (const c of [cBoth, cFrom, cTo, cStranger, m1]) c.received.length = 0;

    await m2.send(xml('presence', {}, xml('show', {}, 'dnd'), xml('status', {}, 'busy'), xml('priority', {}, '5')));
    for (const c of [cBoth, cFrom]) {
      const p = await c.waitFor(presence(m2.jid), WAIT_MS, 'broadcast');
      assert.equal(p.attrs.to, jid(c === cBoth ? both : from), 'broadcast presence is addressed to the bare JID');
      assert.equal(p.getChildText('show'), 'dnd');
      assert.equal(p.getChildText('status'), 'busy');
      assert.equal(p.getChildText('priority'), '5');
    }
    assert.equal((await m1.waitFor(presence(m2.jid), WAIT_MS, 'to own other resource')).getChildText('status'), 'busy');
    await m2.waitFor(presence(m2.jid), WAIT_MS, 'own reflection');
    // Probe answers (§4.3.2): current presence of the contacts I am subscribed to, and of my other resource.
    for (const from of [cBoth.jid, cTo.jid, m1.jid]) {
      const p = await m2.waitFor(presence(from), WAIT_MS, `presence of ${from}`);
      assert.equal(p.attrs.to, m2.jid, 'probe answers are addressed to the new full JID');
    }
    await settle(m2, cBoth, cFrom, cTo, cStranger, m1);
    none(cTo, presence(m2.jid), 'presence (not subscribed to me)');
    none(cStranger, presence(m2.jid), 'presence (no subscription)');
    none(m2, presence(cFrom.jid), "presence of a contact I am not subscribed to");
    none(m2, presence(cStranger.jid), 'presence of a stranger');
    none(m2, (el) => el.name === 'presence', 'a duplicate presence');

    // An update is broadcast the same way, without a second round of probe answers (§4.4).
    await m2.send(xml('presence', {}, xml('show', {}, 'away')));
    for (const c of [cBoth, cFrom, m1]) assert.equal((await c.waitFor(presence(m2.jid), WAIT_MS, 'update')).getChildText('show'), 'away');
    await m2.waitFor(presence(m2.jid), WAIT_MS, 'own reflection');
    await settle(m2, cTo, cStranger);
    none(m2, (el) => el.name === 'presence', 'probe answers after an update');
    none(cTo, presence(m2.jid), 'the update');

    // A new resource of a subscriber gets the latest presence of both my resources.
    const both2 = await login(both, 'second');
    await available(both2);
    assert.equal((await both2.waitFor(presence(m2.jid), WAIT_MS, 'latest presence')).getChildText('show'), 'away');
    assert.equal((await both2.waitFor(presence(m1.jid), 3000, "m1's presence")).attrs.to, both2.jid);
    await stopAll(cBoth, cFrom, cTo, cStranger, m1, m2, both2);
  });

  it('unavailable presence is broadcast with its status to subscribers and own resources, once (§4.5)', async () => {
    const [me, friend, fan, idol] = [await user('me'), await user('friend'), await user('fan'), await user('idol')];
    await relate(me, friend, 'both');
    await relate(me, fan, 'from');
    await relate(me, idol, 'to');
    const cFriend = await online(friend);
    const cFan = await online(fan);
    const cIdol = await online(idol);
    const m1 = await online(me, 'one');
    const m2 = await online(me, 'two');
    await m1.waitFor(presence(m2.jid), WAIT_MS, 'other resource');

    await m2.send(xml('presence', { type: 'unavailable' }, xml('status', {}, 'gone to bed')));
    for (const c of [cFriend, cFan, m1]) {
      const p = await c.waitFor(presence(m2.jid, 'unavailable'), WAIT_MS, 'unavailable');
      assert.equal(p.getChildText('status'), 'gone to bed');
    }
    await settle(m2, cIdol);
    none(cIdol, presence(m2.jid, 'unavailable'), 'unavailable (not subscribed to me)');

    // The session ends after an explicit unavailable: nobody gets a second one.
    await m2.stop();
    await settle(cFriend, cFan, m1);
    for (const c of [cFriend, cFan, m1]) none(c, presence(m2.jid, 'unavailable'), 'a second unavailable');
    // And a new probe no longer returns the resource that went away.
    const friend2 = await login(friend, 'late');
    await available(friend2);
    await friend2.waitFor(presence(m1.jid), 3000, "m1's presence");
    await settle(friend2);
    none(friend2, presence(m2.jid), 'presence of an unavailable resource');
    await stopAll(cFriend, cFan, cIdol, m1, friend2);
  });

  it('directed presence reaches a non-contact, who gets unavailable when the session ends (§4.6)', async () => {
    const [me, stranger, other] = [await user('me'), await user('stranger'), await user('other')];
    const cStranger = await online(stranger, 'desk');
    const cOther = await online(other, 'desk');
    const m = await online(me);

    await m.send(xml('presence', { to: jid(stranger) }, xml('status', {}, 'hello')));
    const p = await cStranger.waitFor(presence(m.jid), WAIT_MS, 'directed presence');
    assert.equal(p.attrs.to, jid(stranger));
    assert.equal(p.getChildText('status'), 'hello');
    // Directed presence then directed unavailable: that entity is done with.
    await m.send(xml('presence', { to: cOther.jid }));
    await cOther.waitFor(presence(m.jid), WAIT_MS, 'directed presence to a full JID');
    await m.send(xml('presence', { to: cOther.jid, type: 'unavailable' }));
    await cOther.waitFor(presence(m.jid, 'unavailable'), WAIT_MS, 'directed unavailable');

    await m.stop();
    const bye = await cStranger.waitFor(presence(m.jid, 'unavailable'), WAIT_MS, 'unavailable at session end');
    assert.equal(bye.attrs.to, jid(stranger), 'addressed as the directed presence was');
    await settle(cOther, cStranger);
    none(cOther, presence(m.jid, 'unavailable'), 'a second unavailable after directed unavailable');
    await stopAll(cStranger, cOther);
  });

  it('directed presence from a resource that never sent initial presence still ends with unavailable (§4.6.3)', async () => {
    const [me, stranger] = [await user('me'), await user('stranger')];
    const cStranger = await online(stranger, 'desk');
    const m = await login(me, 'shy');
    const friend = await user('friend');
    await relate(me, friend, 'both');
    const cFriend = await online(friend, 'desk');
    await m.send(xml('presence', { to: cStranger.jid }));
    await cStranger.waitFor(presence(m.jid), WAIT_MS, 'directed presence');
    await m.stop();
    assert.equal((await cStranger.waitFor(presence(m.jid, 'unavailable'), WAIT_MS, 'unavailable at session end')).attrs.to, cStranger.jid);
    await settle(cFriend);
    none(cFriend, presence(m.jid, 'unavailable'), 'unavailable from a resource that was never available');
    await stopAll(cStranger, cFriend);
  });

  it('priority: a negative-priority resource gets no bare-JID chat; the highest priority wins for normal (§4.7.2.3, §8.5.2.1.1)', async () => {
    const [me, sender] = [await user('me'), await user('sender')];
    const hi = await online(me, 'hi', { priority: 1 });
    const neg = await online(me, 'neg', { priority: -1 });
    const cs = await login(sender);

    await cs.send(xml('message', { to: jid(me), type: 'chat', id: 'm1' }, xml('body', {}, 'to the bare JID')));
    await hi.waitFor((el) => el.name === 'message' && el.attrs.id === 'm1', WAIT_MS, 'chat to bare JID');
    await cs.send(xml('message', { to: neg.jid, type: 'chat', id: 'm2' }, xml('body', {}, 'to the full JID')));
    await neg.waitFor((el) => el.name === 'message' && el.attrs.id === 'm2', WAIT_MS, 'chat to full JID');
    await settle(cs, hi, neg);
    none(neg, (el) => el.name === 'message' && el.attrs.id === 'm1', 'a bare-JID chat at negative priority');
    none(hi, (el) => el.name === 'message' && el.attrs.id === 'm2', 'a message for the other resource');
    // Presence to the bare JID is not a message: every available resource gets it (§8.5.2.1.2).
    await cs.send(xml('presence', { to: jid(me) }));
    for (const c of [hi, neg]) await c.waitFor(presence(cs.jid), WAIT_MS, 'directed presence to the bare JID');

    // §4.7.2.3: a priority outside -128..127 is refused, and changes nothing.
    await neg.send(xml('presence', { id: 'bad-prio' }, xml('priority', {}, '200')));
    const refused = await neg.waitFor((el) => el.name === 'presence' && el.attrs.id === 'bad-prio', WAIT_MS, 'error');
    assert.equal(refused.attrs.type, 'error');
    assert.ok(refused.getChild('error')?.getChild('bad-request', 'urn:ietf:params:xml:ns:xmpp-stanzas'), refused.toString());
    // A presence update changes the priority: now `neg` has the highest one.
    await available(neg, { priority: 10 });
    await cs.send(xml('message', { to: jid(me), type: 'normal', id: 'm3' }, xml('body', {}, 'again')));
    await neg.waitFor((el) => el.name === 'message' && el.attrs.id === 'm3', WAIT_MS, 'normal to bare JID after priority change');
    await settle(cs, hi);
    none(hi, (el) => el.name === 'message' && el.attrs.id === 'm3', 'a normal message for the higher-priority resource');
    // §8.5.2.1.1: chat goes to every non-negative resource, whatever its priority.
    await cs.send(xml('message', { to: jid(me), type: 'chat', id: 'm4' }, xml('body', {}, 'to both')));
    for (const c of [hi, neg]) await c.waitFor((el) => el.name === 'message' && el.attrs.id === 'm4', WAIT_MS, 'chat to bare JID at any non-negative priority');
    await stopAll(hi, neg, cs);
  });
});

// ---- session end --------------------------------------------------------------------------------

describe('a session that ends makes contacts see unavailable (RFC 6121 §4.5.2)', () => {
  it('(a) the client closes the stream', async () => {
    const [me, friend] = [await user('me'), await user('friend')];
    await relate(me, friend, 'both');
    const f = await online(friend);
    const m = await online(me);
    await f.waitFor(presence(m.jid), WAIT_MS, 'initial presence');
    await m.stop();
    const p = await f.waitFor(presence(m.jid, 'unavailable'), WAIT_MS, 'unavailable');
    assert.equal(p.attrs.to, jid(friend));
    assert.deepEqual(await s.server.sessions.list(jid(me)), []);
    await f.stop();
  });

  it('(b) the socket is dropped without a close: $disconnect', async () => {
    const [me, friend] = [await user('me'), await user('friend')];
    await relate(me, friend, 'both');
    const f = await online(friend);
    const m = await online(me);
    await f.waitFor(presence(m.jid), WAIT_MS, 'initial presence');
    const socket = m.xmpp.socket?.socket;
    assert.ok(socket?.terminate, 'xmpp.js runs on the ws package here');
    socket.terminate();
    const p = await f.waitFor(presence(m.jid, 'unavailable'), WAIT_MS, 'unavailable');
    assert.equal(p.attrs.to, jid(friend));
    await s.gateway.idle();
    assert.deepEqual(await s.server.sessions.list(jid(me)), []);
    await f.stop();
  });

  it('(d) a new session takes over the resource (RFC 6120 §7.7.2.2 conflict)', async () => {
    const [me, friend] = [await user('me'), await user('friend')];
    await relate(me, friend, 'both');
    const f = await online(friend);
    const old = await online(me, 'same');
    await f.waitFor(presence(old.jid), WAIT_MS, 'initial presence');
    const fresh = await login(me, 'same');
    // The replaced session ended: its contacts must not keep seeing it available.
    await f.waitFor(presence(old.jid, 'unavailable'), WAIT_MS, 'unavailable for the replaced session');
    await stopAll(f, old, fresh);
  });

  describe('(c) $disconnect never comes', () => {
    let lossy: TestServer;
    before(async () => {
      lossy = await startTestServer({ dropDisconnect: true, limits: { connectionCheckMs: 500 }, sweepIntervalMs: 250 });
    });
    after(async () => {
      await lossy.stop();
    });

    it('the sweeper finds the dead connection through GetConnection and ends the session', async () => {
      const [me, friend] = [`me${++n}`, `friend${++n}`];
      await lossy.addUser(jid(me), `pw-${me}`);
      await lossy.addUser(jid(friend), `pw-${friend}`);
      const mine = { jid: jid(friend), groups: [], subscription: 'both' as const, pendingOut: false, pendingIn: false, approved: false, inRoster: true };
      await rosterStoreOf(lossy.server).put(jid(me), mine);
      await rosterStoreOf(lossy.server).put(jid(friend), { ...mine, jid: jid(me) });
      const f = await login(friend, 'r1', lossy);
      await f.send(xml('presence'));
      await f.waitFor(presence(f.jid), WAIT_MS, 'own presence');
      const m = await login(me, 'r1', lossy);
      await m.send(xml('presence'));
      await f.waitFor(presence(m.jid), WAIT_MS, 'initial presence');
      // Let the initial presence finish (its last post is the probe answer to m), so that nothing is posted
      // to m after the drop: a post would get 410 Gone and end the session without the sweeper.
      await m.waitFor(presence(f.jid), WAIT_MS, 'probe answer');
      await lossy.gateway.idle();

      const before = lossy.counter.snapshot();
      // Short limits (checks every 500 ms, a sweep every 250 ms): the sweeper's next round finds it.
      m.xmpp.socket!.socket!.terminate!();
      const p = await f.waitFor(presence(m.jid, 'unavailable'), WAIT_MS, 'unavailable from the sweeper');
      assert.equal(p.attrs.to, jid(friend));
      assert.ok((lossy.counter.since(before)['management:GetConnectionCommand'] ?? 0) >= 1, JSON.stringify(lossy.counter.since(before)));
      assert.deepEqual(await lossy.server.sessions.list(jid(me)), []);
      await f.stop();
      await lossy.gateway.idle();
    });
  });
});

// ---- cost ---------------------------------------------------------------------------------------

describe('cost of presence and roster (DynamoDB calls, management posts)', () => {
  /** `me` with `count` mutual contacts, each online and available with one resource; `me` logged in, not yet available. */
  async function crowd(count: number): Promise<{ m: TestClient; contacts: TestClient[] }> {
    const me = await user('star');
    const contacts: TestClient[] = [];
    for (let i = 0; i < count; i++) {
      const name = await user('fan');
      await relate(me, name, 'both');
      const c = await login(name);
      await c.send(xml('presence'));
      await c.waitFor(presence(c.jid), WAIT_MS, 'own presence');
      contacts.push(c);
    }
    const m = await login(me);
    return { m, contacts };
  }

  async function initialPresenceCost(count: number) {
    const { m, contacts } = await crowd(count);
    const cost = await s.cost(async () => {
      await m.send(xml('presence'));
      await Promise.all(contacts.map((c) => c.waitFor(presence(m.jid), WAIT_MS, 'broadcast')));
      await m.waitFor(presence(m.jid), WAIT_MS, 'own presence');
    });
    for (const c of contacts) await m.waitFor(presence(c.jid), WAIT_MS, 'probe answer');
    await stopAll(m, ...contacts);
    return cost;
  }

  it('initial presence to 3 contacts: roster Query + one BatchGetItem + offline Query, one write, 2N+1 posts', async () => {
    const cost = await initialPresenceCost(3);
    assert.deepEqual(
      { reads: cost.reads, writes: cost.writes, posts: cost.posts },
      // reads: roster (1), sessions of me + contacts (1 batch), offline messages (1); write: my session entry;
      // posts: 3 broadcasts + 1 reflection + 3 probe answers.
      { reads: 3, writes: 1, posts: 7 },
      JSON.stringify(cost.calls),
    );
    assert.equal(cost.calls['dynamodb:BatchGetItemCommand'], 1, JSON.stringify(cost.calls));
  });

  it('initial presence to 10 contacts: still one BatchGetItem, reads do not grow with N', async () => {
    const cost = await initialPresenceCost(10);
    assert.deepEqual({ reads: cost.reads, writes: cost.writes, posts: cost.posts }, { reads: 3, writes: 1, posts: 21 }, JSON.stringify(cost.calls));
    assert.equal(cost.calls['dynamodb:BatchGetItemCommand'], 1, JSON.stringify(cost.calls));
  });

  it('presence update to 3 contacts: roster Query + one BatchGetItem, one write, N+1 posts', async () => {
    const { m, contacts } = await crowd(3);
    await m.send(xml('presence'));
    await m.waitFor(presence(m.jid), WAIT_MS, 'own presence');
    for (const c of contacts) await c.waitFor(presence(m.jid), WAIT_MS, 'broadcast');
    const cost = await s.cost(async () => {
      await m.send(xml('presence', {}, xml('show', {}, 'away')));
      await Promise.all(contacts.map((c) => c.waitFor(presence(m.jid), WAIT_MS, 'update')));
      await m.waitFor(presence(m.jid), WAIT_MS, 'own presence');
    });
    assert.deepEqual({ reads: cost.reads, writes: cost.writes, posts: cost.posts }, { reads: 2, writes: 1, posts: 4 }, JSON.stringify(cost.calls));
    await stopAll(m, ...contacts);
  });

  it('unavailable presence to 3 contacts: the session item read once, roster Query + one BatchGetItem, one write, N posts', async () => {
    const { m, contacts } = await crowd(3);
    await m.send(xml('presence'));
    await m.waitFor(presence(m.jid), WAIT_MS, 'own presence');
    for (const c of contacts) await c.waitFor(presence(m.jid), WAIT_MS, 'broadcast');
    const cost = await s.cost(async () => {
      await m.send(xml('presence', { type: 'unavailable' }));
      await Promise.all(contacts.map((c) => c.waitFor(presence(m.jid, 'unavailable'), WAIT_MS, 'unavailable')));
    });
    // GetItem of the session item (shared with the MUC's leave-all-rooms), roster Query, BatchGetItem;
    // UpdateItem of the session entry; one post per contact.
    assert.deepEqual({ reads: cost.reads, writes: cost.writes, posts: cost.posts }, { reads: 3, writes: 1, posts: 3 }, JSON.stringify(cost.calls));
    await stopAll(m, ...contacts);
  });

  it('session end with 3 contacts: the unavailable broadcast costs roster Query + one BatchGetItem and N posts', async () => {
    const { m, contacts } = await crowd(3);
    await m.send(xml('presence'));
    await m.waitFor(presence(m.jid), WAIT_MS, 'own presence');
    for (const c of contacts) await c.waitFor(presence(m.jid), WAIT_MS, 'broadcast');
    const openBefore = s.gateway.connectionIds().length;
    const cost = await s.cost(async () => {
      const before = s.counter.snapshot();
      await m.stop();
      await Promise.all(contacts.map((c) => c.waitFor(presence(m.jid, 'unavailable'), WAIT_MS, 'unavailable')));
      // The $disconnect that follows the close is queued only once the socket has closed: wait for that.
      await until('the gateway to see the close', () => s.gateway.connectionIds().length <= openBefore - 1, () => s.gateway.connectionIds().length);
      void before;
    });
    // The close: answer <close/> (1 post), delete the connection item (1 write), DeleteConnection, remove the
    // session entry (1 write); the broadcast: roster Query + BatchGetItem, 3 posts. The $disconnect that follows
    // costs nothing: the server remembers the connections it ended itself.
    assert.deepEqual(
      { reads: cost.reads, writes: cost.writes, posts: cost.posts },
      { reads: 2, writes: 2, posts: 4 },
      JSON.stringify(cost.calls),
    );
    assert.equal(cost.calls['management:DeleteConnectionCommand'], 1);
    await stopAll(...contacts);
  });

  it('roster set with two interested resources: 2 reads, 2 writes, 3 posts', async () => {
    const [me, contact] = [await user('setcost'), await user('setc')];
    const r1 = await login(me, 'r1');
    const r2 = await login(me, 'r2');
    await rosterOf(r1);
    await rosterOf(r2);
    const cost = await s.cost(async () => {
      await rosterSet(r1, xml('item', { jid: jid(contact), name: 'C' }));
      await r2.waitFor(isPush(jid(contact)), WAIT_MS, 'push');
    });
    // reads: the existing item, the sessions (for the push); writes: the roster version (RFC 6121 §2.6), the item;
    // posts: 2 pushes + the result.
    assert.deepEqual({ reads: cost.reads, writes: cost.writes, posts: cost.posts }, { reads: 2, writes: 2, posts: 3 }, JSON.stringify(cost.calls));
    assert.deepEqual([cost.calls['dynamodb:UpdateItemCommand'], cost.calls['dynamodb:PutItemCommand']], [1, 1], JSON.stringify(cost.calls));
    await stopAll(r1, r2);
  });

  it('subscription request and approval between two online users', async () => {
    const [romeo, juliet] = [await user('romeo'), await user('juliet')];
    const r = await online(romeo);
    const j = await online(juliet);
    const request = await s.cost(async () => {
      await r.send(xml('presence', { to: jid(juliet), type: 'subscribe' }));
      await j.waitFor(presence(jid(romeo), 'subscribe'), WAIT_MS, 'subscribe');
      await r.waitFor(isPush(jid(juliet)), WAIT_MS, 'push');
    });
    // romeo's item (get, put), romeo's roster version (the push, RFC 6121 §2.6), romeo's sessions (push); juliet's
    // item (get: none), account exists, pending request (put: not in her roster, so no new version), juliet's
    // sessions (delivery). Posts: the push, the request.
    assert.deepEqual({ reads: request.reads, writes: request.writes, posts: request.posts }, { reads: 5, writes: 3, posts: 2 }, JSON.stringify(request.calls));
    const approval = await s.cost(async () => {
      await j.send(xml('presence', { to: jid(romeo), type: 'subscribed' }));
      await r.waitFor(presence(j.jid), 3000, "juliet's presence");
    });
    // juliet's item (get, put) and roster version, juliet's sessions (push); romeo's item (get, put) and roster
    // version, romeo's sessions (delivery and push); both accounts' sessions (one BatchGetItem) for juliet's
    // presence. Posts: 2 pushes, subscribed, presence.
    assert.deepEqual({ reads: approval.reads, writes: approval.writes, posts: approval.posts }, { reads: 5, writes: 4, posts: 4 }, JSON.stringify(approval.calls));
    await stopAll(r, j);
  });

  it('roster fetch of 5 items: one Query, one write (interested flag), one post', async () => {
    const me = await user('fetch');
    for (let i = 0; i < 5; i++) await relate(me, await user('item'), 'both');
    const m = await login(me);
    let items: Element[] = [];
    const cost = await s.cost(async () => {
      items = await rosterOf(m);
    });
    assert.equal(items.length, 5);
    assert.deepEqual({ reads: cost.reads, writes: cost.writes, posts: cost.posts }, { reads: 1, writes: 1, posts: 1 }, JSON.stringify(cost.calls));
    await m.stop();
  });
});
