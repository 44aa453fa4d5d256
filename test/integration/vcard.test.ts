// XEP-0054 vcard-temp and XEP-0153 vCard-Based Avatars with real clients: one's own vCard, another
// account's, the empty vCard of an account without one, the tenant's size limit, the avatar hash the
// server adds to presence, and vCard requests to rooms and occupants (XEP-0045); with the DynamoDB
// reads and writes and the posts each costs.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { NS_VCARD, NS_VCARD_UPDATE } from '../../lib/extensions/vcard/index.ts';
import { rosterOf as rosterStoreOf } from '../../lib/extensions/roster/index.ts';
import { randomBytes } from 'node:crypto';
import { type Element, RawClient, type TestClient, type TestServer, WAIT_MS, connectClient, startTestServer, xml } from '../support/harness.ts';
import { STANZAS, createInstant, enter } from '../support/muc.ts';

const D = 'vcard.test';
const LIMITED = 'small-vcards.test';
const PLAIN = 'plain-vcards.test';
const BIG = 'big-avatars.test';
const ROOMS = `conference.${D}`;
const DISCO_INFO = 'http://jabber.org/protocol/disco#info';

// A tiny PNG, as a client would put it in its vCard (XEP-0153 §4.5: base64, lines of 76 characters).
const IMAGE = Buffer.from('89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478da63f8cfc0f01f0005000201a0e3c8bd0000000049454e44ae426082', 'hex');
const IMAGE_HASH = createHash('sha1').update(IMAGE).digest('hex');
const base64Lines = (data: Buffer) => data.toString('base64').replace(/(.{76})/g, '$1\n');

function vcardOf(fn: string, image?: Buffer): Element {
  const v = xml('vCard', { xmlns: NS_VCARD }, xml('FN', {}, fn), xml('NICKNAME', {}, fn.toLowerCase()));
  if (image) v.cnode(xml('PHOTO', {}, xml('TYPE', {}, 'image/png'), xml('BINVAL', {}, base64Lines(image))));
  return v;
}

const conditionOf = (el: Element) => el.getChild('error')?.children.find((c): c is Element => typeof c !== 'string' && c.attrs.xmlns === STANZAS && c.name !== 'text')?.name;
const errorText = (el: Element) => el.getChild('error')?.getChildText('text', STANZAS) ?? '';
const photoOf = (presence: Element) => presence.getChild('x', NS_VCARD_UPDATE)?.getChild('photo');

describe('XEP-0054 vcard-temp, XEP-0153 avatars', () => {
  let s: TestServer;
  const clients: TestClient[] = [];
  const login = async (username: string, resource = 'r', domain = D) => {
    const c = await connectClient(s.url, { username, resource, domain });
    clients.push(c);
    return c;
  };
  let n = 0;
  /** Sends an IQ and returns whatever answers it (result or error). */
  const ask = async (c: TestClient, attrs: Record<string, string>, payload: Element) => {
    const id = `q${++n}`;
    await c.send(xml('iq', { id, ...attrs }, payload));
    return c.waitFor((el) => el.name === 'iq' && el.attrs.id === id && (el.attrs.type === 'result' || el.attrs.type === 'error'), WAIT_MS, `answer to ${id}`);
  };
  const getVCard = (c: TestClient, to?: string) => ask(c, { type: 'get', ...(to ? { to } : {}) }, xml('vCard', { xmlns: NS_VCARD }));
  const setVCard = (c: TestClient, v: Element) => ask(c, { type: 'set' }, v);
  const costOf = async (fn: () => Promise<unknown>) => {
    const cost = await s.cost(fn);
    return { reads: cost.reads, writes: cost.writes, posts: cost.posts, calls: JSON.stringify(cost.calls) };
  };
  const only = ({ reads, writes, posts }: { reads: number; writes: number; posts: number }) => ({ reads, writes, posts });

  let alice: TestClient;
  let bob: TestClient;

  before(async () => {
    s = await startTestServer({ seedDomains: [] });
    await s.server.tenants.put({ domain: D, enabled: true, features: ['vcard-avatars'] });
    await s.server.tenants.put({ domain: LIMITED, enabled: true, vcard: { maxBytes: 300 } });
    for (const u of ['alice', 'bob', 'carol', 'dave']) await s.addUser(`${u}@${D}`);
    await s.addUser(`lee@${LIMITED}`);
    alice = await login('alice');
    bob = await login('bob');
  });
  after(async () => {
    for (const c of clients) await c.stop();
    await s.stop();
  });

  it('§4: the server advertises vcard-temp in its disco#info, and so does an account at its bare JID', async () => {
    for (const to of [D, `alice@${D}`]) {
      const info = await alice.iq(xml('iq', { type: 'get', to }, xml('query', { xmlns: DISCO_INFO })));
      const features = info.getChild('query')!.getChildren('feature').map((f: Element) => f.attrs.var);
      assert.ok(features.includes(NS_VCARD), `${to}: ${features.join(' ')}`);
    }
  });

  it('§3.1: an account without a vCard gets an empty one, not an error; one read, one post', async () => {
    let res: Element | undefined;
    const cost = await costOf(async () => (res = await getVCard(alice)));
    assert.equal(res!.attrs.type, 'result');
    const v = res!.getChild('vCard', NS_VCARD);
    assert.ok(v, res!.toString());
    assert.equal(v.children.length, 0);
    assert.deepEqual(only(cost), { reads: 1, writes: 0, posts: 1 }, cost.calls);
  });

  it('§3.2: a set stores the vCard (two writes: it and its avatar hash; one when the photo is unchanged) and a get returns it', async () => {
    let res: Element | undefined;
    const first = await costOf(async () => (res = await setVCard(alice, vcardOf('Alice', IMAGE))));
    assert.equal(res!.attrs.type, 'result', res!.toString());
    assert.deepEqual(only(first), { reads: 0, writes: 2, posts: 1 }, first.calls);

    const again = await costOf(async () => (res = await setVCard(alice, vcardOf('Alice Liddell', IMAGE))));
    assert.equal(res!.attrs.type, 'result');
    assert.deepEqual(only(again), { reads: 0, writes: 1, posts: 1 }, again.calls);

    const mine = (await getVCard(alice)).getChild('vCard', NS_VCARD)!;
    assert.equal(mine.getChildText('FN'), 'Alice Liddell');
    assert.equal(Buffer.from(mine.getChild('PHOTO')!.getChildText('BINVAL')!.replace(/\s+/g, ''), 'base64').toString('hex'), IMAGE.toString('hex'));
    // Addressed to one's own bare JID, the same.
    assert.equal((await getVCard(alice, `alice@${D}`)).getChild('vCard', NS_VCARD)!.getChildText('FN'), 'Alice Liddell');
  });

  it("§3.3: another user's vCard, answered by the server from the account's bare JID; one read, one post", async () => {
    let res: Element | undefined;
    const cost = await costOf(async () => (res = await getVCard(bob, `alice@${D}`)));
    assert.equal(res!.attrs.type, 'result');
    assert.equal(res!.attrs.from, `alice@${D}`);
    assert.equal(res!.getChild('vCard', NS_VCARD)!.getChildText('FN'), 'Alice Liddell');
    assert.deepEqual(only(cost), { reads: 1, writes: 0, posts: 1 }, cost.calls);
  });

  it('§3.3: an account without a vCard has an empty one (two reads: the vCard, then the account); no account: service-unavailable', async () => {
    let res: Element | undefined;
    const cost = await costOf(async () => (res = await getVCard(bob, `carol@${D}`)));
    assert.equal(res!.attrs.type, 'result');
    assert.equal(res!.getChild('vCard', NS_VCARD)!.children.length, 0);
    assert.deepEqual(only(cost), { reads: 2, writes: 0, posts: 1 }, cost.calls);
    assert.equal(conditionOf(await getVCard(bob, `nobody@${D}`)), 'service-unavailable');
  });

  it("only the owner sets a vCard: a set to another account's bare JID or to the server is forbidden", async () => {
    const res = await ask(bob, { type: 'set', to: `alice@${D}` }, vcardOf('Mallory'));
    assert.equal(conditionOf(res), 'forbidden');
    assert.equal(conditionOf(await ask(bob, { type: 'set', to: D }, vcardOf('Mallory'))), 'forbidden');
    assert.equal((await getVCard(bob, `alice@${D}`)).getChild('vCard', NS_VCARD)!.getChildText('FN'), 'Alice Liddell');
    // The server's own vCard is empty.
    assert.equal((await getVCard(bob, D)).getChild('vCard', NS_VCARD)!.children.length, 0);
  });

  it('limits: a vCard larger than the tenant\'s vcard.maxBytes is refused with not-acceptable naming the limit, and nothing is written', async () => {
    const lee = await login('lee', 'r', LIMITED);
    assert.equal((await setVCard(lee, vcardOf('Lee'))).attrs.type, 'result');
    let res: Element | undefined;
    const cost = await costOf(async () => (res = await setVCard(lee, vcardOf('L'.repeat(400)))));
    assert.equal(conditionOf(res!), 'not-acceptable', res!.toString());
    assert.match(errorText(res!), /vcard\.maxBytes.*300/);
    assert.deepEqual(only(cost), { reads: 0, writes: 0, posts: 1 }, cost.calls);
    assert.equal((await getVCard(lee)).getChild('vCard', NS_VCARD)!.getChildText('FN'), 'Lee');
  });

  it('an avatar of 75 KB (about 100 KB of base64) is stored and fetched whole, where the tenant allows stanzas that large; past vcard.maxBytes, not-acceptable', async () => {
    // The stream's own limit (limits.maxStanzaBytes, 65536 by default) comes first: raise it.
    await s.server.tenants.put({ domain: BIG, enabled: true, limits: { maxStanzaBytes: 200_000 } });
    for (const u of ['ann', 'ben']) await s.addUser(`${u}@${BIG}`);
    const image = randomBytes(75_000);
    const raw = await RawClient.connect(s.url);
    await raw.login('ann', 'secret', 'raw', BIG);
    // API Gateway takes at most 32 KB per WebSocket frame: the message goes in fragments.
    const sendFragmented = (text: string) => {
      const parts = text.match(/[\s\S]{1,30000}/g)!;
      parts.forEach((part, i) => raw.ws.send(part, { fin: i === parts.length - 1 }));
    };
    const big = xml('iq', { xmlns: 'jabber:client', type: 'set', id: 'big' }, vcardOf('Ann', image)).toString();
    assert.ok(big.length > 100_000, String(big.length));
    sendFragmented(big);
    const stored = await raw.next((el) => el.name === 'iq' && el.attrs.id === 'big');
    assert.equal(stored.attrs.type, 'result', stored.toString());

    const ben = await login('ben', 'r', BIG);
    const got = (await getVCard(ben, `ann@${BIG}`)).getChild('vCard', NS_VCARD)!;
    assert.ok(Buffer.from(got.getChild('PHOTO')!.getChildText('BINVAL')!, 'base64').equals(image));

    const tooBig = xml('iq', { xmlns: 'jabber:client', type: 'set', id: 'too-big' }, vcardOf('Ann', randomBytes(91_000))).toString();
    sendFragmented(tooBig);
    const refused = await raw.next((el) => el.name === 'iq' && el.attrs.id === 'too-big');
    assert.equal(conditionOf(refused), 'not-acceptable', refused.toString().slice(0, 500));
    assert.match(errorText(refused), /vcard\.maxBytes.*120000/);
    // The error does not echo the oversized vCard (it might not fit in one API Gateway message).
    assert.equal(refused.getChild('vCard', NS_VCARD)?.children.length ?? 0, 0);
    raw.ws.close();
  });

  it('XEP-0153 §4.1: the server adds the avatar hash to available presence; a subscribed contact sees it; one read more per presence', async () => {
    await rosterStoreOf(s.server).put(`alice@${D}`, { jid: `dave@${D}`, groups: [], subscription: 'both', pendingOut: false, pendingIn: false, approved: false, inRoster: true });
    await rosterStoreOf(s.server).put(`dave@${D}`, { jid: `alice@${D}`, groups: [], subscription: 'both', pendingOut: false, pendingIn: false, approved: false, inRoster: true });
    const dave = await login('dave');
    await dave.send(xml('presence'));
    await dave.waitFor((el) => el.name === 'presence' && el.attrs.from === dave.jid, WAIT_MS, "dave's own presence");

    const fromAlice = (el: Element) => el.name === 'presence' && el.attrs.from === alice.jid && el.attrs.type === undefined;
    // Alice's initial presence (it also probes and takes offline messages), then a change measured.
    await alice.send(xml('presence', {}, xml('status', {}, 'initial')));
    const initial = await dave.waitFor((el) => fromAlice(el) && el.getChildText('status') === 'initial', WAIT_MS, "alice's initial presence");
    assert.equal(photoOf(initial)?.text(), IMAGE_HASH, initial.toString());
    const cost = await costOf(async () => {
      await alice.send(xml('presence', {}, xml('status', {}, 'here')));
      await dave.waitFor((el) => fromAlice(el) && el.getChildText('status') === 'here', WAIT_MS, "alice's presence");
    });
    // Presence to one contact: the roster, the sessions (one BatchGetItem), the avatar hash; this
    // session's entry is written; the presence goes to dave and to alice herself.
    assert.deepEqual(only(cost), { reads: 3, writes: 1, posts: 2 }, cost.calls);

    await alice.send(xml('presence', {}, xml('status', {}, 'again')));
    const seen = await dave.waitFor((el) => fromAlice(el) && el.getChildText('status') === 'again', WAIT_MS, "alice's presence");
    assert.equal(photoOf(seen)?.text(), IMAGE_HASH, seen.toString());

    // "Not ready" (§4.1 rule 2, an empty update element) is filled in too.
    await alice.send(xml('presence', {}, xml('status', {}, 'not ready'), xml('x', { xmlns: NS_VCARD_UPDATE })));
    const filled = await dave.waitFor((el) => fromAlice(el) && el.getChildText('status') === 'not ready', WAIT_MS, "alice's presence");
    assert.equal(photoOf(filled)?.text(), IMAGE_HASH);

    // A client that says what its photo is is left alone, and nothing is read for it.
    const own = await costOf(async () => {
      await alice.send(xml('presence', {}, xml('status', {}, 'mine'), xml('x', { xmlns: NS_VCARD_UPDATE }, xml('photo', {}, 'abc123'))));
      await dave.waitFor((el) => fromAlice(el) && el.getChildText('status') === 'mine' && photoOf(el)?.text() === 'abc123', WAIT_MS, "alice's own hash");
    });
    assert.deepEqual(only(own), { reads: 2, writes: 1, posts: 2 }, own.calls);

    // A vCard without a photo: an empty <photo/> says "no image" (§4.1 rule 3).
    assert.equal((await setVCard(alice, vcardOf('Alice'))).attrs.type, 'result');
    await alice.send(xml('presence', {}, xml('status', {}, 'no photo')));
    const none = await dave.waitFor((el) => fromAlice(el) && el.getChildText('status') === 'no photo', WAIT_MS, "alice's presence");
    assert.equal(photoOf(none)?.text(), '', none.toString());

    // An account that never stored a vCard: nothing is added.
    await dave.send(xml('presence', {}, xml('status', {}, 'plain')));
    const plain = await alice.waitFor((el) => el.name === 'presence' && el.attrs.from === dave.jid && el.getChildText('status') === 'plain', WAIT_MS, "dave's presence");
    assert.equal(plain.getChild('x', NS_VCARD_UPDATE), undefined);
    assert.equal((await setVCard(alice, vcardOf('Alice Liddell', IMAGE))).attrs.type, 'result');
  });

  it('XEP-0153 §4.1: the presence that enters a room carries the avatar hash; the join costs one read more than on a tenant without vcard-avatars', async () => {
    await s.server.tenants.put({ domain: PLAIN, enabled: true });
    for (const u of ['owner', 'guest']) await s.addUser(`${u}@${PLAIN}`);
    const owner = await login('owner', 'r', PLAIN);
    const guest = await login('guest', 'r', PLAIN);
    const dave = await login('dave', 'muc');
    await createInstant(alice, `study@${ROOMS}/Queen`);
    await createInstant(owner, `study@conference.${PLAIN}/Owner`);

    const withAvatars = await costOf(() => enter(dave, `study@${ROOMS}/Dave`));
    const without = await costOf(() => enter(guest, `study@conference.${PLAIN}/Guest`));
    assert.deepEqual(only(withAvatars), { ...only(without), reads: only(without).reads + 1 }, `${withAvatars.calls} vs ${without.calls}`);

    // Dave has never stored a vCard: nothing added. Alice has: her occupant presence carries the hash.
    const daveSeen = await alice.waitFor((el) => el.name === 'presence' && el.attrs.from === `study@${ROOMS}/Dave`, WAIT_MS, "dave's room presence");
    assert.equal(daveSeen.getChild('x', NS_VCARD_UPDATE), undefined);
    const queen = await dave.waitFor((el) => el.name === 'presence' && el.attrs.from === `study@${ROOMS}/Queen`, WAIT_MS, "alice's room presence");
    assert.equal(photoOf(queen)?.text(), IMAGE_HASH, queen.toString());
  });

  it('XEP-0045: a room answers for itself (its name as FN) and for an occupant (the real user\'s vCard, from the occupant JID)', async () => {
    const room = `lounge@${ROOMS}`;
    await createInstant(alice, `${room}/Queen`, { 'muc#roomconfig_roomname': 'The Lounge' });
    await enter(bob, `${room}/Knave`);

    let res: Element | undefined;
    const roomCost = await costOf(async () => (res = await getVCard(bob, room)));
    assert.equal(res!.attrs.type, 'result', res!.toString());
    assert.equal(res!.attrs.from, room);
    assert.equal(res!.getChild('vCard', NS_VCARD)!.getChildText('FN'), 'The Lounge');
    assert.deepEqual(only(roomCost), { reads: 1, writes: 0, posts: 1 }, roomCost.calls);

    const occupantCost = await costOf(async () => (res = await getVCard(bob, `${room}/Queen`)));
    assert.equal(res!.attrs.type, 'result', res!.toString());
    assert.equal(res!.attrs.from, `${room}/Queen`);
    assert.equal(res!.getChild('vCard', NS_VCARD)!.getChildText('FN'), 'Alice Liddell');
    assert.deepEqual(only(occupantCost), { reads: 2, writes: 0, posts: 1 }, occupantCost.calls);

    // An occupant without a vCard: an empty one.
    const empty = await getVCard(alice, `${room}/Knave`);
    assert.equal(empty.attrs.type, 'result');
    assert.equal(empty.getChild('vCard', NS_VCARD)!.children.length, 0);

    // Nobody under that nick; a non-occupant asking; a room that does not exist: errors, never silence.
    assert.equal(conditionOf(await getVCard(bob, `${room}/Nobody`)), 'item-not-found');
    const carol = await login('carol');
    assert.equal(conditionOf(await getVCard(carol, `${room}/Queen`)), 'bad-request');
    assert.equal(conditionOf(await getVCard(carol, `nowhere@${ROOMS}`)), 'item-not-found');
    // A room without a name has an empty vCard, for anyone.
    await createInstant(alice, `nameless@${ROOMS}/Queen`);
    assert.equal((await getVCard(carol, `nameless@${ROOMS}`)).getChild('vCard', NS_VCARD)!.children.length, 0);
  });
});
