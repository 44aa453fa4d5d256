// Roster versioning (RFC 6121 §2.6) with real xmpp.js clients, and raw clients for the stream features
// and the exact order of frames: the feature is announced, every roster result and push carries `ver`, a
// get with the current version gets an empty result, one with an older version of the same roster an
// empty result and then the changes as pushes (unless an item was removed since), and an empty or unknown
// version the whole roster. And what these gets cost.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { RawClient, type TestClient, type TestServer, connectClient, startTestServer, xml, type Element, WAIT_MS } from '../support/harness.ts';

const ROSTER = 'jabber:iq:roster';
const ROSTER_VER = 'urn:xmpp:features:rosterver';

let s: TestServer;
let n = 0;
const clients: TestClient[] = [];
const jid = (name: string) => `${name}@localhost`;

async function user(prefix: string): Promise<string> {
  const name = `${prefix}${++n}`;
  await s.addUser(jid(name), `pw-${name}`);
  return name;
}

async function login(name: string, resource = 'r1'): Promise<TestClient> {
  const c = await connectClient(s.url, { username: name, password: `pw-${name}`, resource });
  // Answer roster pushes like a real client does (RFC 6121 §2.1.6).
  (c.xmpp as unknown as { iqCallee: { set(ns: string, name: string, fn: () => boolean): void } }).iqCallee.set(ROSTER, 'query', () => true);
  clients.push(c);
  return c;
}

/** A roster get, with `ver` if given (§2.6.3); the whole IQ result. */
async function get(c: TestClient, ver?: string): Promise<Element> {
  const res = await c.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: ROSTER, ...(ver !== undefined ? { ver } : {}) })));
  assert.equal(res.attrs.type, 'result');
  return res;
}

const queryOf = (res: Element) => res.getChild('query', ROSTER);
const jidsOf = (res: Element) => queryOf(res)!.getChildren('item').map((i) => i.attrs.jid).sort();
const isPush = (contact: string) => (el: Element) =>
  el.name === 'iq' && el.attrs.type === 'set' && el.getChild('query', ROSTER)?.getChild('item')?.attrs.jid === contact;

async function add(c: TestClient, contact: string, name?: string): Promise<string> {
  await c.iq(xml('iq', { type: 'set' }, xml('query', { xmlns: ROSTER }, xml('item', { jid: contact, ...(name ? { name } : {}) }))));
  const push = await c.waitFor(isPush(contact), WAIT_MS, `push for ${contact}`);
  const ver = push.getChild('query', ROSTER)!.attrs.ver;
  assert.ok(ver, `the push carries ver (§2.6.2): ${push.toString()}`);
  return ver;
}

before(async () => {
  s = await startTestServer({ tenantWatchMs: 3_600_000, sweepIntervalMs: 3_600_000 });
});
after(async () => {
  await Promise.all(clients.map((c) => c.stop()));
  await s.stop();
});

describe('roster versioning (RFC 6121 §2.6)', () => {
  it('announces the rosterver stream feature after authentication, not before (§2.6.1)', async () => {
    const name = await user('feat');
    const raw = await RawClient.connect(s.url);
    const open = '<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="localhost" version="1.0"/>';
    raw.send(open);
    const pre = await raw.next((el) => el.name === 'stream:features');
    assert.equal(pre.getChild('ver', ROSTER_VER), undefined, 'not offered before authentication');
    raw.send(`<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="PLAIN">${Buffer.from(`\0${name}\0pw-${name}`).toString('base64')}</auth>`);
    await raw.next((el) => el.name === 'success');
    raw.send(open);
    const post = await raw.next((el) => el.name === 'stream:features');
    assert.ok(post.getChild('ver', ROSTER_VER), `offered after authentication: ${post.toString()}`);
    raw.ws.close();
  });

  it('a new, empty roster has a version; asking with it gets an empty result (§2.6.3)', async () => {
    const c = await login(await user('fresh'));
    const first = await get(c);
    const ver = queryOf(first)!.attrs.ver;
    assert.ok(ver !== undefined && ver !== '', `the result carries ver: ${first.toString()}`);
    assert.equal(queryOf(first)!.children.length, 0);
    const again = await get(c, ver);
    assert.equal(again.children.length, 0, `no <query/> when the roster did not change: ${again.toString()}`);
  });

  it('each change makes a new version, carried by the push; the current one gets an empty result; one from before a removal, an empty or an unknown one the whole roster', async () => {
    const [owner, a, b] = [await user('ver-owner'), await user('ver-a'), await user('ver-b')];
    const c = await login(owner);
    const v0 = queryOf(await get(c))!.attrs.ver;
    const v1 = await add(c, jid(a));
    const v2 = await add(c, jid(b), 'Bee');
    assert.equal(new Set([v0, v1, v2]).size, 3, `three different versions: ${v0} ${v1} ${v2}`);

    // Current version: empty result (§2.6.3), and the resource is still interested in pushes.
    assert.equal((await get(c, v2)).children.length, 0);
    // The version of a roster that never changed, the empty version ("no cache", §2.6.3) and versions this
    // server never issued: the whole roster, at v2.
    // (one from the future of this roster, a counter with a leading zero).
    for (const ver of [v0, '', 'not-a-version', `${v2}0`, `${v2}-1`, v2.replace(/-\d+$/, '-99'), v2.replace(/-\d+$/, '-01')]) {
      const res = await get(c, ver);
      assert.deepEqual(jidsOf(res), [jid(a), jid(b)].sort(), `ver=${JSON.stringify(ver)}`);
      assert.equal(queryOf(res)!.attrs.ver, v2, `ver=${JSON.stringify(ver)} is answered with the current version`);
    }
    // A get without ver (a client that does not cache) also gets the version.
    assert.equal(queryOf(await get(c))!.attrs.ver, v2);

    // Removal: the push carries a new version, and the roster at it no longer lists the item.
    await c.iq(xml('iq', { type: 'set' }, xml('query', { xmlns: ROSTER }, xml('item', { jid: jid(a), subscription: 'remove' }))));
    const removal = await c.waitFor((el) => isPush(jid(a))(el) && el.getChild('query', ROSTER)!.getChild('item')!.attrs.subscription === 'remove', WAIT_MS, 'removal push');
    const v3 = removal.getChild('query', ROSTER)!.attrs.ver;
    assert.ok(v3 && v3 !== v2, `the removal push carries a new version: ${removal.toString()}`);
    // A version from before a removal, even with a later change to push: the removed item cannot be pushed,
    // so the whole roster comes.
    const d = await user('ver-d');
    const v4 = await add(c, jid(d));
    for (const ver of [v2, v1]) {
      const after = await get(c, ver);
      assert.deepEqual(jidsOf(after), [jid(b), jid(d)].sort(), `ver=${ver}`);
      assert.equal(queryOf(after)!.attrs.ver, v4);
    }
    // From the removal's own version on, the later change comes as a push.
    assert.equal((await get(c, v3)).children.length, 0);
    assert.equal((await c.waitFor(isPush(jid(d)), WAIT_MS, 'the change since v3')).getChild('query', ROSTER)!.attrs.ver, v4);
  });

  it('subscription pushes carry the version too, on both rosters', async () => {
    const [romeo, juliet] = [await user('vromeo'), await user('vjuliet')];
    const r = await login(romeo);
    const j = await login(juliet);
    const rv0 = queryOf(await get(r))!.attrs.ver;
    const jv0 = queryOf(await get(j))!.attrs.ver;
    // A subscription request goes to available resources (§3.1.3).
    await j.send(xml('presence'));
    await j.waitFor((el) => el.name === 'presence' && el.attrs.from === j.jid, WAIT_MS, 'own presence');
    await r.send(xml('presence', { to: jid(juliet), type: 'subscribe' }));
    const ask = await r.waitFor(isPush(jid(juliet)), WAIT_MS, "romeo's push");
    const rv1 = ask.getChild('query', ROSTER)!.attrs.ver;
    assert.ok(rv1 && rv1 !== rv0, ask.toString());
    await j.waitFor((el) => el.name === 'presence' && el.attrs.type === 'subscribe', WAIT_MS, 'the request');
    // Juliet has not answered: no item in her roster yet (§3.1.3), so her version is unchanged.
    assert.equal((await get(j, jv0)).children.length, 0);

    await j.send(xml('presence', { to: jid(romeo), type: 'subscribed' }));
    const hers = await j.waitFor(isPush(jid(romeo)), WAIT_MS, "juliet's push");
    const his = await r.waitFor((el) => isPush(jid(juliet))(el) && el.getChild('query', ROSTER)!.getChild('item')!.attrs.subscription === 'to', WAIT_MS, "romeo's push");
    const jv1 = hers.getChild('query', ROSTER)!.attrs.ver;
    const rv2 = his.getChild('query', ROSTER)!.attrs.ver;
    assert.ok(jv1 && jv1 !== jv0, hers.toString());
    assert.ok(rv2 && rv2 !== rv1, his.toString());
    assert.equal((await get(j, jv1)).children.length, 0);
    assert.equal((await get(r, rv2)).children.length, 0);
    // From rv1, the one change since comes as a push carrying rv2.
    assert.equal((await get(r, rv1)).children.length, 0);
    const again = await r.waitFor(isPush(jid(juliet)), WAIT_MS, 'the change since rv1');
    assert.equal(again.getChild('query', ROSTER)!.attrs.ver, rv2);
    assert.equal(again.getChild('query', ROSTER)!.getChild('item')!.attrs.subscription, 'to');
  });

  it('two accounts never share a version after a change (each counter has its own epoch)', async () => {
    const [x, y, z] = [await user('epoch-x'), await user('epoch-y'), await user('epoch-z')];
    const cx = await login(x);
    const cy = await login(y);
    await get(cx);
    await get(cy);
    const vx = await add(cx, jid(z));
    const vy = await add(cy, jid(z));
    assert.notEqual(vx, vy);
    // Y's version means nothing on X's roster: the whole roster.
    assert.deepEqual(jidsOf(await get(cx, vy)), [jid(z)]);
  });

  it('an older version of the same roster gets an empty result, then each change since as a push, oldest first, to that resource only (§2.6.3)', async () => {
    const [owner, a, b, c] = [await user('diff'), await user('diff-a'), await user('diff-b'), await user('diff-c')];
    const other = await login(owner, 'other');
    await get(other);
    const raw = await RawClient.connect(s.url);
    await raw.login(owner, `pw-${owner}`, 'raw');
    const iqs = (el: Element) => el.name === 'iq';
    const rawGet = async (ver: string, id: string) => {
      raw.send(`<iq xmlns="jabber:client" type="get" id="${id}"><query xmlns="${ROSTER}" ver="${ver}"/></iq>`);
      const res = await raw.next(iqs);
      assert.equal(res.attrs.id, id, `the result comes first: ${res.toString()}`);
      assert.equal(res.attrs.type, 'result');
      return res;
    };
    /** The pushes that follow, up to the answer to a ping sent now (nothing else may come in between). */
    const pushesUntilPing = async (id: string) => {
      raw.send(`<iq xmlns="jabber:client" type="get" id="${id}"><ping xmlns="urn:xmpp:ping"/></iq>`);
      const got: Element[] = [];
      for (let el = await raw.next(iqs); el.attrs.id !== id; el = await raw.next(iqs)) got.push(el);
      return got;
    };
    await rawGet('', 'g0');
    const v1 = await add(other, jid(a));
    const v2 = await add(other, jid(b), 'B');
    const v3 = await add(other, jid(c));
    await other.iq(xml('iq', { type: 'set' }, xml('query', { xmlns: ROSTER }, xml('item', { jid: jid(a), name: 'A' }))));
    const v4 = (await other.waitFor(isPush(jid(a)), WAIT_MS, 'rename push')).getChild('query', ROSTER)!.attrs.ver;
    assert.equal(new Set([v1, v2, v3, v4]).size, 4);
    // The raw resource asked for the roster, so it got those pushes live; they are not what is tested.
    await pushesUntilPing('settle');

    const res = await rawGet(v2, 'g1');
    assert.equal(res.children.length, 0, `an empty result: ${res.toString()}`);
    const pushes = await pushesUntilPing('p1');
    assert.deepEqual(
      pushes.map((p) => [p.attrs.type, p.getChild('query', ROSTER)!.attrs.ver, p.getChild('query', ROSTER)!.getChild('item')!.attrs.jid, p.getChild('query', ROSTER)!.getChild('item')!.attrs.name]),
      [
        ['set', v3, jid(c), undefined],
        ['set', v4, jid(a), 'A'],
      ],
      pushes.map(String).join('\n'),
    );
    // Those pushes went to the resource that asked only.
    await other.expectNothing(s, (el) => el.name === 'iq' && el.attrs.type === 'set');
    // And at the version of the last push the roster is current.
    assert.equal((await rawGet(v4, 'g2')).children.length, 0);
    assert.deepEqual(await pushesUntilPing('p2'), []);
    raw.ws.close();
  });

  it('a get with an older version costs the same DynamoDB calls, plus one post per change', async () => {
    const [owner, a, b] = [await user('dcost'), await user('dcost-a'), await user('dcost-b')];
    const c = await login(owner);
    await get(c);
    const v1 = await add(c, jid(a));
    await add(c, jid(b));
    const cost = await s.cost(async () => {
      assert.equal((await get(c, v1)).children.length, 0);
      await c.waitFor(isPush(jid(b)), WAIT_MS, 'the change since v1');
    });
    assert.deepEqual({ reads: cost.reads, writes: cost.writes, posts: cost.posts }, { reads: 1, writes: 1, posts: 2 }, JSON.stringify(cost.calls));
  });

  it('a get with the current version costs what a full get does (1 Query, 1 write, 1 post) and posts an empty result', async () => {
    const [owner, a] = [await user('vcost'), await user('vcost-a')];
    const c = await login(owner);
    await get(c);
    const ver = await add(c, jid(a));
    let res: Element | undefined;
    const cost = await s.cost(async () => {
      res = await get(c, ver);
    });
    assert.equal(res!.children.length, 0);
    // The Query returns the version with the items; the write marks the resource interested (§2.1.6).
    assert.deepEqual({ reads: cost.reads, writes: cost.writes, posts: cost.posts }, { reads: 1, writes: 1, posts: 1 }, JSON.stringify(cost.calls));
    assert.equal(cost.calls['dynamodb:QueryCommand'], 1, JSON.stringify(cost.calls));
  });
});
