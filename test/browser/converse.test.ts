// Converse.js (the full UI build, in headless Chromium) against a real local server: the path a
// browser user takes through login, 1:1 chat with contacts and non-contacts, a second tab
// (XEP-0280 carbons), a reload (XEP-0313 archive), blocking from the UI (XEP-0191) and a room
// (XEP-0045 history), the profile dialog (XEP-0054 nickname and avatar, XEP-0153 hash) and a room
// bookmarked with autojoin (XEP-0402) joined again after a reload. Each step uses its own partner accounts, so a failing step leaves the others
// their meaning. xmpp.js clients play the other side. See README, Tests.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { type Element, type TestClient, type TestServer, WAIT_MS, connectClient, startTestServer, until, xml } from '../support/harness.ts';
import { ConverseBrowser, type Rendered, browserMissing } from '../support/converse.ts';
import { createInstant } from '../support/muc.ts';

const STEP = { timeout: 240_000 };
const ROSTER = 'jabber:iq:roster';
const PASSWORD = 'pw-browser';
const bare = (jid: string) => jid.split('/')[0];
const texts = (ms: Rendered[]) => ms.map((m) => m.text);
/** Whether `want` appear in `ms` in this order (other messages may sit between them). */
const inOrder = (ms: Rendered[], want: string[]) => {
  let i = 0;
  for (const m of ms) if (m.text === want[i]) i++;
  return i === want.length;
};
const chatFrom = (from: string, body: string) => (el: Element) =>
  el.name === 'message' && bare(el.attrs.from ?? '') === from && el.getChildText('body') === body;

/** A 1×1 PNG, as a user's avatar file. */
const PNG_1X1 = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==';

let s: TestServer;
let browser: ConverseBrowser;
/** The Converse user, logged in once for all steps as resource "desk". */
let desk: Awaited<ReturnType<ConverseBrowser['open']>>;
const USER = 'romeo@localhost';
const clients: TestClient[] = [];
/** Roster contacts of the user (subscription both), by name. */
const contacts: Record<string, TestClient> = {};
let n = 0;

/** A fresh xmpp.js account, online and available (RFC 6121 §4.2), so messages to its bare JID reach it. */
async function partner(prefix: string): Promise<TestClient> {
  const name = `${prefix}${++n}`;
  await s.addUser(`${name}@localhost`, PASSWORD);
  const c = await connectClient(s.url, { username: name, password: PASSWORD, resource: 'xmppjs' });
  clients.push(c);
  await c.send(xml('presence'));
  return c;
}

/** The roster item `c` holds for `jid`, from a roster get (RFC 6121 §2.1.3). */
async function rosterItem(c: TestClient, jid: string): Promise<Element | undefined> {
  const res = await c.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: ROSTER })));
  return res.getChild('query', ROSTER)?.getChildren('item').find((i) => i.attrs.jid === jid);
}

/** A mutual subscription between `a` and `b` by the RFC 6121 §3 handshake; both end with subscription "both". */
async function befriend(a: TestClient, b: TestClient): Promise<void> {
  const [ja, jb] = [bare(a.jid), bare(b.jid)];
  const request = (from: TestClient, to: TestClient) => async () => {
    await from.send(xml('presence', { to: bare(to.jid), type: 'subscribe' }));
    await to.waitFor((el) => el.name === 'presence' && el.attrs.type === 'subscribe' && bare(el.attrs.from ?? '') === bare(from.jid));
    await to.send(xml('presence', { to: bare(from.jid), type: 'subscribed' }));
  };
  await request(a, b)();
  await request(b, a)();
  await until(`${ja} and ${jb} subscribed both ways`, async () => (await rosterItem(a, jb))?.attrs.subscription === 'both' && (await rosterItem(b, ja))?.attrs.subscription === 'both');
}

describe('Converse.js in Chromium against a local server', { skip: browserMissing() }, () => {
  before(async () => {
    // The tenant as `npm start` seeds it: clients expect blocking and carbons, and Converse's contacts
    // see its avatar only with vcard-avatars (README "Quick start").
    s = await startTestServer({ seedFeatures: ['blocking', 'carbons', 'vcard-avatars'] });
    await s.addUser(USER, PASSWORD);
    // The user's contacts, made with the subscription handshake before Converse logs in, so that the
    // steps needing a contact do not also depend on how Converse treats strangers (see the non-contact step).
    const self = await connectClient(s.url, { username: 'romeo', password: PASSWORD, resource: 'setup' });
    clients.push(self);
    await self.send(xml('presence'));
    for (const name of ['juliet', 'mercutio', 'benvolio', 'tybalt', 'lorenzo', 'nurse']) {
      contacts[name] = await partner(name);
      await befriend(self, contacts[name]);
    }
    await self.stop();
    browser = await ConverseBrowser.launch(s.url);
  });

  after(async () => {
    await Promise.all(clients.map((c) => c.stop()));
    await browser?.close();
    await s?.stop();
  });

  it('logs in over WebSocket and shows the control box', STEP, async () => {
    desk = await browser.open({ jid: USER, password: PASSWORD, resource: 'desk' });
    await desk.waitConnected();
  });

  it('renders a message from a roster contact, and the contact receives the reply', STEP, async () => {
    const contact = contacts.juliet;
    await contact.send(xml('message', { to: USER, type: 'chat', id: 'c1' }, xml('body', {}, 'hello from a contact')));
    await desk.waitForMessages(bare(contact.jid), (ms) => ms.some((m) => m.sender === 'them' && m.text === 'hello from a contact'), 'contact message');
    await desk.send(bare(contact.jid), 'reply to the contact');
    await contact.waitFor(chatFrom(USER, 'reply to the contact'), WAIT_MS, 'the reply from Converse');
  });

  // Converse 14 asks its blocklist before it files a message from someone not in the roster, and that
  // list is only ever loaded from a server that advertises urn:xmpp:blocking: without XEP-0191 the
  // message is received but never shown.
  it('renders a message from a non-contact (xmpp.js), and the sender receives the reply', STEP, async () => {
    const stranger = await partner('stranger');
    await stranger.send(xml('message', { to: USER, type: 'chat', id: 'n1' }, xml('body', {}, 'hello from a stranger')));
    await desk.waitForMessages(bare(stranger.jid), (ms) => ms.some((m) => m.sender === 'them' && m.text === 'hello from a stranger'), 'non-contact message');
    await desk.send(bare(stranger.jid), 'reply to the stranger');
    await stranger.waitFor(chatFrom(USER, 'reply to the stranger'), WAIT_MS, 'the reply from Converse');
  });

  it('a second tab (another resource) shows carbons of messages received and sent by the first (XEP-0280)', STEP, async () => {
    const other = contacts.mercutio;
    const laptop = await browser.open({ jid: USER, password: PASSWORD, resource: 'laptop' });
    try {
      await laptop.waitConnected();
      // The second tab has its own browser storage (another context): what it shows came from the server.
      assert.equal(await laptop.serverSupports('urn:xmpp:carbons:2'), true, 'the server advertises urn:xmpp:carbons:2');
      await laptop.carbonsEnabled();
      // To the first tab's full JID: only a received carbon (XEP-0280 §5.2) brings it to the second.
      await other.send(xml('message', { to: desk.jid, type: 'chat', id: 'k1' }, xml('body', {}, 'to the desk only')));
      await desk.waitForMessages(bare(other.jid), (ms) => texts(ms).includes('to the desk only'), 'message to the desk');
      await desk.send(bare(other.jid), 'sent from the desk');
      await other.waitFor(chatFrom(USER, 'sent from the desk'), WAIT_MS, 'the message sent from the desk');
      const seen = await laptop.waitForMessages(
        bare(other.jid),
        (ms) => inOrder(ms, ['to the desk only', 'sent from the desk']),
        'carbons of both directions',
      );
      assert.deepEqual(
        seen.filter((m) => ['to the desk only', 'sent from the desk'].includes(m.text)).map((m) => m.sender),
        ['them', 'me'],
        'the sent carbon shows as the user\'s own message (XEP-0280 §6)',
      );
    } finally {
      await laptop.close();
    }
  });

  it('after a reload with an empty browser cache, the conversation comes back from the archive (XEP-0313)', STEP, async () => {
    const friend = contacts.benvolio;
    await friend.send(xml('message', { to: USER, type: 'chat', id: 'a1' }, xml('body', {}, 'archived from them')));
    await desk.waitForMessages(bare(friend.jid), (ms) => texts(ms).includes('archived from them'), 'message before the reload');
    await desk.send(bare(friend.jid), 'archived from me');
    await friend.waitFor(chatFrom(USER, 'archived from me'));

    await desk.reload({ clearCache: true });
    // XEP-0313 §6.1: the archive is advertised on the account's bare JID, where Converse asks.
    assert.equal(await desk.serverSupports('urn:xmpp:mam:2', USER), true, 'the server advertises urn:xmpp:mam:2 on the account');
    await desk.openChat(bare(friend.jid));
    const ms = await desk.waitForMessages(bare(friend.jid), (ms) => inOrder(ms, ['archived from them', 'archived from me']), 'history after the reload');
    assert.deepEqual(
      ms.filter((m) => m.text.startsWith('archived from')).map((m) => [m.text, m.sender]),
      [['archived from them', 'them'], ['archived from me', 'me']],
    );
  });

  /** A room made by a fresh xmpp.js user, with two messages in it; resolves with its JID and host. */
  async function roomWithHistory(): Promise<{ room: string; host: TestClient }> {
    const host = await partner('capulet');
    const room = `ball${n}@conference.localhost`;
    // Persistent: a persistent room keeps its archive by default (README "Message archive").
    await createInstant(host, `${room}/host`, { 'muc#roomconfig_persistentroom': '1' });
    for (const body of ['room one', 'room two']) {
      await host.send(xml('message', { to: room, type: 'groupchat' }, xml('body', {}, body)));
      await host.waitFor((el) => el.name === 'message' && el.attrs.from === `${room}/host` && el.getChildText('body') === body);
    }
    return { room, host };
  }

  // Converse 14 joins with <history maxstanzas="0"/> by default and loads a room's earlier messages
  // from the room's archive (XEP-0313 on the room JID), which the room must advertise.
  it('joins a room and shows its earlier messages from the room archive (XEP-0313), then live ones', STEP, async () => {
    const { room, host } = await roomWithHistory();
    await desk.joinRoom(room, 'romeo');
    await desk.waitForMessages(room, (ms) => inOrder(ms, ['room one', 'room two']), 'room history', { kind: 'room' });
    await host.send(xml('message', { to: room, type: 'groupchat' }, xml('body', {}, 'room three')));
    await desk.waitForMessages(room, (ms) => inOrder(ms, ['room one', 'room two', 'room three']), 'live room message', { kind: 'room' });
  });

  it('with muc_history_max_stanzas set, shows the discussion history sent on join (XEP-0045 §7.2.15)', STEP, async () => {
    const { room, host } = await roomWithHistory();
    const guest = 'rosaline@localhost';
    await s.addUser(guest, PASSWORD);
    const page = await browser.open({ jid: guest, password: PASSWORD, resource: 'web', settings: { muc_history_max_stanzas: 20 } });
    try {
      await page.waitConnected();
      await page.joinRoom(room, 'rosaline');
      await page.waitForMessages(room, (ms) => inOrder(ms, ['room one', 'room two']), 'room join history', { kind: 'room' });
      await host.send(xml('message', { to: room, type: 'groupchat' }, xml('body', {}, 'room three')));
      const ms = await page.waitForMessages(room, (ms) => inOrder(ms, ['room one', 'room two', 'room three']), 'live room message', { kind: 'room' });
      assert.deepEqual(ms.filter((m) => m.text.startsWith('room ')).map((m) => [m.text, m.from]), [
        ['room one', `${room}/host`],
        ['room two', `${room}/host`],
        ['room three', `${room}/host`],
      ]);
    } finally {
      await page.close();
    }
  });

  it('blocks a contact from the chat heading (XEP-0191); their next message is not delivered', STEP, async () => {
    const pest = contacts.tybalt;
    const control = contacts.lorenzo;
    await pest.send(xml('message', { to: USER, type: 'chat', id: 'b1' }, xml('body', {}, 'before the block')));
    await desk.waitForMessages(bare(pest.jid), (ms) => texts(ms).includes('before the block'), 'message before the block');

    await desk.block(bare(pest.jid));
    await pest.send(xml('message', { to: USER, type: 'chat', id: 'b2' }, xml('body', {}, 'words after the block')));
    // A round trip instead of a wait: the sender's ping answered means the server handled its message,
    // the idle gateway that nothing is still on its way, and a message from a third party rendered
    // after that means the page processed everything the server sent it before.
    await pest.roundTrip();
    await s.gateway.idle();
    await control.send(xml('message', { to: USER, type: 'chat', id: 'c2' }, xml('body', {}, 'the control message')));
    await desk.waitForMessages(bare(control.jid), (ms) => texts(ms).includes('the control message'), 'control message');
    assert.equal(await desk.anyMessageWith('words after the block'), false, 'the blocked contact\'s message is neither shown nor held');
    // XEP-0191 §3.5: the server SHOULD answer a blocked message with <service-unavailable/>.
    const bounce = pest.received.find((el) => el.name === 'message' && el.attrs.type === 'error' && el.attrs.id === 'b2');
    assert.ok(bounce?.getChild('error')?.getChild('service-unavailable'), `the blocked message bounced: ${bounce?.toString()}`);
  });

  // Converse 14's profile dialog sets the vCard (XEP-0054: NICKNAME, PHOTO) and then sends presence with
  // the photo's hash itself (XEP-0153 §3.2); it publishes neither XEP-0172 nick nor XEP-0084 avatar to PEP.
  it('sets a nickname and an avatar in the profile dialog; a contact gets the hash in presence and both from the vCard', STEP, async () => {
    const contact = contacts.nurse;
    const png = Buffer.from(PNG_1X1, 'base64');
    const hash = createHash('sha1').update(png).digest('hex');
    await desk.setProfile({ nickname: 'Romeo M.', avatar: { name: 'romeo.png', mimeType: 'image/png', buffer: png } });
    await contact.waitFor(
      // COMPAT: Converse 14 sends that presence with two <x xmlns='vcard-temp:x:update'/>, an empty one
      // first; a contact reading only the first sees no avatar.
      (el) => el.name === 'presence' && bare(el.attrs.from ?? '') === USER && el.getChildren('x', 'vcard-temp:x:update').some((x) => x.getChildText('photo') === hash),
      WAIT_MS,
      'presence with the avatar hash',
    );
    const vcard = (await contact.iq(xml('iq', { type: 'get', to: USER }, xml('vCard', { xmlns: 'vcard-temp' })))).getChild('vCard', 'vcard-temp')!;
    assert.equal(vcard.getChildText('NICKNAME'), 'Romeo M.');
    assert.equal(vcard.getChild('PHOTO')?.getChildText('TYPE'), 'image/png');
    assert.ok(Buffer.from(vcard.getChild('PHOTO')!.getChildText('BINVAL')!, 'base64').equals(png), vcard.toString());
  });

  // Converse 14 has no bookmark toggle in the room heading: entering a room bookmarks it with autojoin
  // (leaving clears autojoin). With urn:xmpp:bookmarks:1#compat on the account it uses XEP-0402, and
  // asks for max_items "max" only where pubsub#config-node-max is advertised.
  it('a room entered is bookmarked with autojoin (XEP-0402); after a reload with an empty cache Converse joins it again', STEP, async () => {
    const { room } = await roomWithHistory();
    await desk.joinRoom(room, 'romeo');
    await until(`Converse's bookmark of ${room} with autojoin`, async () => (await desk.bookmark(room))?.autojoin === true);
    // What the server keeps: the XEP-0402 item, and the same through private storage (XEP-0048 compat).
    const self = await connectClient(s.url, { username: 'romeo', password: PASSWORD, resource: 'check' });
    clients.push(self);
    const item = await until(`the server's bookmark of ${room}`, async () => {
      const res = await self.iq(xml('iq', { type: 'get' }, xml('pubsub', { xmlns: 'http://jabber.org/protocol/pubsub' }, xml('items', { node: 'urn:xmpp:bookmarks:1' }, xml('item', { id: room })))));
      return res.getChild('pubsub')?.getChild('items')?.getChild('item');
    });
    assert.equal(item!.getChild('conference', 'urn:xmpp:bookmarks:1')?.attrs.autojoin, 'true', item!.toString());
    const legacy = await self.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: 'jabber:iq:private' }, xml('storage', { xmlns: 'storage:bookmarks' }))));
    const conference = legacy.getChild('query')!.getChild('storage', 'storage:bookmarks')!.getChildren('conference').find((c) => c.attrs.jid === room);
    assert.equal(conference?.attrs.autojoin, 'true', legacy.toString());
    await self.stop();

    await desk.reload({ clearCache: true });
    await desk.waitEntered(room);
    assert.equal((await desk.bookmark(room))?.autojoin, true);
  });

  // COMPAT: Converse 14 puts an empty <x xmlns='vcard-temp:x:update'/> in every presence but the one
  // right after a profile save ("not ready to advertise an image", XEP-0153 §3.2), so after a reload
  // its contacts learn the avatar only from the server: the optional module vcard-avatars fills it in.
  it('after the reload, a contact coming online sees the avatar hash in the user\'s presence (vcard-avatars)', STEP, async () => {
    const png = Buffer.from(PNG_1X1, 'base64');
    const hash = createHash('sha1').update(png).digest('hex');
    const phone = await connectClient(s.url, { username: bare(contacts.nurse.jid).split('@')[0], password: PASSWORD, resource: 'phone' });
    clients.push(phone);
    await phone.send(xml('presence'));
    const seen = await phone.waitFor((el) => el.name === 'presence' && el.attrs.from === desk.jid && el.attrs.type === undefined, WAIT_MS, 'the user\'s presence');
    assert.ok(
      seen.getChildren('x', 'vcard-temp:x:update').some((x) => x.getChildText('photo') === hash),
      `the avatar hash in ${seen.toString()}`,
    );
  });

  it('loaded nothing from outside the loopback', async () => {
    assert.deepEqual(browser.remoteRequests, []);
  });
});

