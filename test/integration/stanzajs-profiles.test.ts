// Profiles and personal data with StanzaJS (`stanza` 12), the other client library web apps use, as
// an application calls it: XEP-0163 PEP through its nick (XEP-0172) and mood (XEP-0107) helpers,
// whose `+notify` features it advertises in its XEP-0115 caps; XEP-0084 avatars (publishAvatar,
// useAvatars, getAvatar); bookmarks with autojoin (StanzaJS 12 keeps them in XEP-0049 private
// storage as XEP-0048 `storage:bookmarks`, which the server keeps as XEP-0402 PEP items); XEP-0054
// vCards (publishVCard, getVCard) and the XEP-0153 photo hash the server adds to presence.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { type Agent, type Stanzas, createClient } from 'stanza';
import { type TestServer, WAIT_MS, startTestServer, until } from '../support/harness.ts';
import { mutualSubscription } from '../support/pep.ts';

const BOOKMARKS = 'urn:xmpp:bookmarks:1';

let s: TestServer;
let n = 0;
const agents: Agent[] = [];

/** A new account on localhost; returns its bare JID. */
async function account(): Promise<string> {
  const jid = `sj${++n}@localhost`;
  await s.addUser(jid);
  return jid;
}

/** What a StanzaJS client received, for waiting on (until) and for asserting that nothing came. */
interface Online {
  agent: Agent;
  jid: string;
  nicks: { jid: string; nick?: string }[];
  moods: { jid: string; value?: string; text?: string }[];
  avatars: { jid: string; source: string; ids: string[] }[];
  published: { jid: string; node: string; id?: string }[];
  presences: Stanzas.ReceivedPresence[];
}

/**
 * Logs `bare` in with StanzaJS and goes online as an application does: updateCaps(), then available
 * presence with the caps, which lists the `+notify` features of the plugins (and any in `notify`).
 * Returns once the server has reflected the presence and, a round trip later, handled StanzaJS's
 * answer to its disco#info query for a hash it did not know (asked before the presence is reflected).
 */
async function online(bare: string, resource: string, notify: string[] = []): Promise<Online> {
  const agent = createClient({
    jid: bare,
    password: 'secret',
    resource,
    transports: { websocket: s.url, bosh: false },
    autoReconnect: false,
  });
  agents.push(agent);
  for (const node of notify) agent.disco.addFeature(`${node}+notify`);
  const o: Online = { agent, jid: '', nicks: [], moods: [], avatars: [], published: [], presences: [] };
  agent.on('nick', (e) => o.nicks.push({ jid: e.jid, nick: e.nick }));
  agent.on('mood', (e) => o.moods.push({ jid: e.jid, value: e.mood?.value, text: e.mood?.text }));
  agent.on('avatar', (e) => o.avatars.push({ jid: e.jid, source: e.source, ids: e.avatars.map((a) => a.id) }));
  agent.on('pubsub:published', (m) => o.published.push({ jid: m.from, node: m.pubsub.items.node, id: m.pubsub.items.published[0]?.id }));
  agent.on('presence', (p) => o.presences.push(p));
  const started = new Promise((resolve) => agent.once('session:started', resolve));
  agent.connect();
  await started;
  o.jid = agent.jid;
  agent.updateCaps();
  agent.sendPresence({ legacyCapabilities: agent.disco.getCaps() });
  await until(`${o.jid}'s own presence`, () => o.presences.some((p) => p.from === o.jid));
  await agent.ping('localhost');
  return o;
}

/**
 * Everything sent so far has been handled: a round trip on each sender, the gateway idle, then a
 * round trip on the receiver (whose socket delivers in order) and the gateway idle again.
 */
async function settled(receiver: Online, ...senders: Online[]): Promise<void> {
  for (const c of senders) await c.agent.ping('localhost');
  await s.gateway.idle();
  await receiver.agent.ping('localhost');
  await s.gateway.idle();
}

/**
 * Sends an IQ that should be refused, as StanzaJS's sendIQ does, and resolves with the error's
 * condition. Not through sendIQ (getVCard, getAvatar): its timeoutPromise clears its 15-second timer
 * only when the request resolves, so each refused request would keep the process alive 15 s.
 */
async function refusal(o: Online, iq: Stanzas.IQ): Promise<string | undefined> {
  const id = `refused-${++n}`;
  const answer = new Promise<Stanzas.ReceivedIQ>((resolve) => o.agent.once(`iq:id:${id}` as 'iq', resolve));
  await o.agent.send('iq', { ...iq, id });
  const res = await Promise.race([answer, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no answer to ${id}`)), WAIT_MS).unref())]);
  assert.equal(res.type, 'error', JSON.stringify(res));
  return res.error?.condition;
}

before(async () => {
  // As `npm start` seeds its first tenant: vcard-avatars adds the XEP-0153 photo hash to presence.
  s = await startTestServer({ tenantWatchMs: 3_600_000, seedFeatures: ['blocking', 'carbons', 'vcard-avatars'] });
});
after(async () => {
  for (const a of agents) await (a.disconnect() as unknown as Promise<void>).catch(() => {});
  await s.stop();
});

describe('PEP with StanzaJS (XEP-0163, XEP-0172 nick, XEP-0107 mood)', () => {
  it('a nick and a mood published by one client reach a contact and the owner, not a stranger; a contact coming online later gets the last ones', async () => {
    const [a, b, c] = [await account(), await account(), await account()];
    await mutualSubscription(s, a, b);
    const alice = await online(a, 'phone');
    const bob = await online(b, 'desk');
    const carol = await online(c, 'web');

    await alice.agent.publishNick('Alice A.');
    await alice.agent.publishMood({ value: 'happy', text: 'tests pass' });
    for (const who of [bob, alice]) {
      await until(`${who.jid} to get alice's nick`, () => who.nicks.find((e) => e.jid === a && e.nick === 'Alice A.'), () => who.nicks);
      await until(`${who.jid} to get alice's mood`, () => who.moods.find((e) => e.jid === a && e.value === 'happy' && e.text === 'tests pass'), () => who.moods);
    }
    // carol is not subscribed to alice's presence: her caps want both nodes, but she gets nothing.
    await settled(carol, alice);
    assert.deepEqual([carol.nicks, carol.moods], [[], []]);

    // A new nick replaces the old one (one item, XEP-0163 §5): bob hears of it.
    await alice.agent.publishNick('Ally');
    await until("bob to get alice's new nick", () => bob.nicks.find((e) => e.jid === a && e.nick === 'Ally'), () => bob.nicks);

    // XEP-0163 §4.3.4: bob's other resource, coming online, gets the last item of each node.
    const bob2 = await online(b, 'laptop');
    await until("bob's laptop to get alice's last nick", () => bob2.nicks.find((e) => e.jid === a), () => bob2.nicks);
    await until("bob's laptop to get alice's mood", () => bob2.moods.find((e) => e.jid === a), () => bob2.moods);
    await settled(bob2, alice);
    assert.deepEqual(bob2.nicks.filter((e) => e.jid === a).map((e) => e.nick), ['Ally']);
    assert.deepEqual(bob2.moods.filter((e) => e.jid === a).map((e) => [e.value, e.text]), [['happy', 'tests pass']]);
  });
});

describe('XEP-0084 User Avatar with StanzaJS', () => {
  it('publishAvatar then useAvatars: the contact gets the metadata, fetches the data with getAvatar; a stranger is refused the data', async () => {
    const [a, b, c] = [await account(), await account(), await account()];
    await mutualSubscription(s, a, b);
    const alice = await online(a, 'phone');
    const bob = await online(b, 'desk');
    const carol = await online(c, 'web');

    const image = randomBytes(3000);
    const id = createHash('sha1').update(image).digest('hex');
    await alice.agent.publishAvatar(id, image);
    await alice.agent.useAvatars([{ id, bytes: image.length, mediaType: 'image/png', width: 64, height: 64 }]);

    const event = (await until("bob to get alice's avatar metadata", () => bob.avatars.find((e) => e.jid === a && e.source === 'pubsub'), () => bob.avatars))!;
    assert.deepEqual(event.ids, [id]);
    const item = await bob.agent.getAvatar(a, id);
    assert.equal(item.id, id);
    assert.ok(Buffer.isBuffer(item.content?.data) && item.content.data.equals(image), 'the avatar data fetched by the contact is the image published');

    // The nodes have the presence access model (XEP-0163 §5): carol is not subscribed to alice.
    await settled(carol, alice);
    assert.deepEqual(carol.avatars.filter((e) => e.source === 'pubsub'), []);
    assert.equal(await refusal(carol, { type: 'get', to: a, pubsub: { context: 'user', fetch: { node: 'urn:xmpp:avatar:data', items: [{ id }] } } }), 'not-authorized');

    // A new avatar: the contact hears of the new id and fetches it.
    const image2 = randomBytes(2000);
    const id2 = createHash('sha1').update(image2).digest('hex');
    await alice.agent.publishAvatar(id2, image2);
    await alice.agent.useAvatars([{ id: id2, bytes: image2.length, mediaType: 'image/png', width: 32, height: 32 }]);
    await until("bob to get alice's new avatar metadata", () => bob.avatars.find((e) => e.jid === a && e.ids[0] === id2), () => bob.avatars);
    assert.ok((await bob.agent.getAvatar(a, id2)).content?.data?.equals(image2));
  });
});

describe('Bookmarks with StanzaJS (XEP-0048 in private storage, kept as XEP-0402 PEP items)', () => {
  it('addBookmark with autojoin reads back with getBookmarks, is a PEP item the other resource hears of, and is still there after a reconnect', async () => {
    const a = await account();
    const room1 = 'lobby@conference.localhost';
    const room2 = 'quiet@conference.localhost';
    const phone = await online(a, 'phone');
    // Another resource of the same account that wants XEP-0402 notifications.
    const laptop = await online(a, 'laptop', [BOOKMARKS]);

    await phone.agent.addBookmark({ jid: room1, name: 'Lobby', nick: 'ally', autoJoin: true });
    await phone.agent.addBookmark({ jid: room2, name: 'Quiet', autoJoin: false });
    const rooms = (await phone.agent.getBookmarks()).map((r) => [String(r.jid), r.name, r.nick, Boolean(r.autoJoin)]).sort();
    assert.deepEqual(rooms, [
      [room1, 'Lobby', 'ally', true],
      [room2, 'Quiet', undefined, false],
    ]);

    // The same bookmarks are the account's urn:xmpp:bookmarks:1 items, one per room (id: the room JID),
    // and the owner's resource that wants the node was notified of each.
    const items = await phone.agent.getItems(a, BOOKMARKS);
    assert.deepEqual(items.items!.map((i) => i.id).sort(), [room1, room2]);
    for (const room of [room1, room2]) {
      await until(`the laptop to hear of ${room}`, () => laptop.published.find((e) => e.jid === a && e.node === BOOKMARKS && e.id === room), () => laptop.published);
    }
    // The other resource reads them through private storage too.
    assert.deepEqual((await laptop.agent.getBookmarks()).map((r) => [String(r.jid), Boolean(r.autoJoin)]).sort(), [
      [room1, true],
      [room2, false],
    ]);

    // After a reconnect (a new session), autojoin is still set.
    for (const c of [phone, laptop]) {
      const gone = new Promise((resolve) => c.agent.once('disconnected', resolve));
      await c.agent.disconnect();
      await gone;
    }
    const again = await online(a, 'phone');
    const back = await again.agent.getBookmarks();
    assert.deepEqual(back.map((r) => [String(r.jid), r.name, r.nick, Boolean(r.autoJoin)]).sort(), [
      [room1, 'Lobby', 'ally', true],
      [room2, 'Quiet', undefined, false],
    ]);

    // addBookmark on an existing room updates it; removeBookmark removes it, from PEP too.
    await again.agent.addBookmark({ jid: room2, autoJoin: true });
    await again.agent.removeBookmark(room1);
    assert.deepEqual((await again.agent.getBookmarks()).map((r) => [String(r.jid), r.name, Boolean(r.autoJoin)]), [[room2, 'Quiet', true]]);
    assert.deepEqual((await again.agent.getItems(a, BOOKMARKS)).items!.map((i) => i.id), [room2]);
  });
});

describe('XEP-0054 vcard-temp with StanzaJS', () => {
  it('publishVCard, then getVCard: one\'s own, a contact\'s, an empty one for an account without, service-unavailable for no account', async () => {
    const [a, b, c] = [await account(), await account(), await account()];
    await mutualSubscription(s, a, b);
    const alice = await online(a, 'phone');
    const bob = await online(b, 'desk');

    await alice.agent.publishVCard({
      fullName: 'Alice Example',
      name: { given: 'Alice', family: 'Example' },
      records: [
        { type: 'nickname', value: 'ally' },
        { type: 'email', value: 'alice@example.com', types: ['home'] },
      ],
    });
    const fields = (v: Awaited<ReturnType<Agent['getVCard']>>) => ({
      fullName: v.fullName,
      given: v.name?.given,
      family: v.name?.family,
      records: (v.records ?? []).map((r) => [r.type, 'value' in r ? r.value : undefined]),
    });
    const expected = { fullName: 'Alice Example', given: 'Alice', family: 'Example', records: [['nickname', 'ally'], ['email', 'alice@example.com']] };
    assert.deepEqual(fields(await alice.agent.getVCard('')), expected);
    assert.deepEqual(fields(await alice.agent.getVCard(a)), expected);
    assert.deepEqual(fields(await bob.agent.getVCard(a)), expected);

    // c has an account and no vCard: an empty vCard. No account at all: service-unavailable.
    assert.deepEqual(fields(await bob.agent.getVCard(c)), { fullName: undefined, given: undefined, family: undefined, records: [] });
    assert.equal(await refusal(bob, { type: 'get', to: 'nobody@localhost', vcard: { format: 'vcard-temp' } }), 'service-unavailable');

    // A set replaces the whole vCard.
    await alice.agent.publishVCard({ fullName: 'Alice E.', records: [{ type: 'nickname', value: 'al' }] });
    assert.deepEqual(fields(await bob.agent.getVCard(a)), { fullName: 'Alice E.', given: undefined, family: undefined, records: [['nickname', 'al']] });
  });

  it('a vCard with a photo: the contact gets it with the photo, and alice\'s next presence carries its XEP-0153 hash (vcard-avatars)', async () => {
    const [a, b] = [await account(), await account()];
    await mutualSubscription(s, a, b);
    const alice = await online(a, 'phone');
    const bob = await online(b, 'desk');
    const photo = randomBytes(1500);
    const hash = createHash('sha1').update(photo).digest('hex');
    // StanzaJS 12 types the photo's data as a Buffer but reads and writes BINVAL as plain text (a
    // Buffer would go out as its bytes, not well-formed XML): an application gives it base64.
    const base64 = photo.toString('base64');
    await alice.agent.publishVCard({ fullName: 'Alice', records: [{ type: 'photo', mediaType: 'image/png', data: base64 as unknown as Buffer }] });
    const got = (await bob.agent.getVCard(a)).records?.find((r) => r.type === 'photo');
    assert.ok(got && got.type === 'photo' && got.mediaType === 'image/png', JSON.stringify(got));
    assert.equal(String(got.data).replace(/\s/g, ''), base64, 'the photo bob fetched is the one alice set');

    // StanzaJS sends no vcard-temp:x:update itself; the server adds the hash to the broadcast, and
    // StanzaJS reports it as an avatar from the vCard.
    alice.agent.sendPresence({ legacyCapabilities: alice.agent.disco.getCaps() });
    const presence = (await until("bob to get alice's presence with the photo hash", () => bob.presences.find((p) => p.from === alice.jid && p.vcardAvatar === hash), () => bob.presences.filter((p) => p.from === alice.jid).map((p) => p.vcardAvatar)))!;
    assert.equal(presence.type, undefined);
    await until("bob's avatar event from the vCard", () => bob.avatars.find((e) => e.jid === alice.jid && e.source === 'vcard' && e.ids[0] === hash), () => bob.avatars);
  });
});
