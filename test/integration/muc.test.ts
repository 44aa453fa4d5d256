// XEP-0045 Multi-User Chat with real xmpp.js clients over the local gateway: the service and its disco,
// creating rooms, entering with the checks and status codes of §7.2, leaving, nick changes, presence
// changes, several resources of one user, private messages, the subject, history, invitations
// (mediated and XEP-0249), XEP-0410 self-ping.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createRoom } from '../../lib/extensions/muc/operations.ts';
import { mucOf } from '../../lib/extensions/muc/service.ts';
import { type TestClient, type TestServer, startTestServer, xml, type Element } from '../support/harness.ts';
import {
  DATA,
  MUC,
  MUC_OWNER,
  MUC_USER,
  codes,
  configure,
  connectMucClient,
  createInstant,
  enter,
  errorCondition,
  item,
  join,
  joinPresence,
  presenceFrom,
  selfPresence,
} from '../support/muc.ts';

let s: TestServer;
let n = 0;
const SERVICE = 'conference.localhost';
const clients: TestClient[] = [];

async function user(prefix: string, domain = 'localhost'): Promise<string> {
  const name = `${prefix}${++n}`;
  await s.addUser(`${name}@${domain}`, `pw-${name}`);
  return name;
}
async function login(prefix: string, opts: { resource?: string; domain?: string; name?: string } = {}): Promise<TestClient> {
  const name = opts.name ?? (await user(prefix, opts.domain));
  const c = await connectMucClient(s.url, { username: name, password: `pw-${name}`, resource: opts.resource, domain: opts.domain });
  clients.push(c);
  return c;
}
const room = (name: string, service = SERVICE) => `${name}${++n}@${service}`;
const bare = (c: TestClient) => c.jid.split('/')[0];
const message = (from: string, pred: (el: Element) => boolean = () => true) => (el: Element) => el.name === 'message' && el.attrs.from === from && pred(el);
const discoInfo = (c: TestClient, to: string, node?: string) => c.iq(xml('iq', { type: 'get', to }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info', ...(node ? { node } : {}) })));
const discoItems = (c: TestClient, to: string) => c.iq(xml('iq', { type: 'get', to }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#items' })));
const features = (iq: Element) => iq.getChild('query')!.getChildren('feature').map((f) => f.attrs.var);
const formField = (iq: Element, v: string) =>
  iq.getChild('query')!.getChild('x', DATA)?.getChildren('field').find((f) => f.attrs.var === v)?.getChildren('value').map((x) => x.text());
/** Rejects with the stanza error condition of an IQ. */
const iqError = async (p: Promise<unknown>) => {
  try {
    await p;
  } catch (err) {
    return (err as { condition?: string }).condition;
  }
  return 'no error';
};
const stop = async (...cs: TestClient[]) => {
  for (const c of cs) await c.stop();
};

before(async () => {
  s = await startTestServer();
});
after(async () => {
  await stop(...clients);
  await s.stop();
});

describe('the MUC service and its discovery (XEP-0045 §6)', () => {
  it('is listed in the server disco#items and answers disco#info as conference/text with the muc feature', { timeout: 120_000 }, async () => {
    const c = await login('disco');
    const items = await discoItems(c, 'localhost');
    assert.ok(items.getChild('query')!.getChildren('item').some((i) => i.attrs.jid === SERVICE && i.attrs.name === 'Chatrooms'));
    const info = await discoInfo(c, SERVICE);
    const identity = info.getChild('query')!.getChild('identity')!;
    assert.deepEqual({ category: identity.attrs.category, type: identity.attrs.type }, { category: 'conference', type: 'text' });
    for (const f of [MUC, 'http://jabber.org/protocol/muc#stable_id', 'http://jabber.org/protocol/disco#items']) assert.ok(features(info).includes(f), f);
  });

  it('lists public rooms in disco#items, not hidden or locked ones; a room answers disco#info with its muc_ features and muc#roominfo', { timeout: 120_000 }, async () => {
    const c = await login('lister');
    const [pub, hidden, locked] = [room('public'), room('hidden'), room('locked')];
    await createInstant(c, `${pub}/me`, { 'muc#roomconfig_roomname': 'The Public Room', 'muc#roomconfig_roomdesc': 'For everyone', 'muc#roomconfig_persistentroom': '1' });
    await createInstant(c, `${hidden}/me`, { 'muc#roomconfig_publicroom': '0' });
    await join(c, `${locked}/me`);
    const listed = (await discoItems(c, SERVICE)).getChild('query')!.getChildren('item');
    const found = listed.find((i) => i.attrs.jid === pub);
    assert.equal(found?.attrs.name, 'The Public Room');
    assert.ok(!listed.some((i) => i.attrs.jid === hidden || i.attrs.jid === locked));

    const info = await discoInfo(c, pub);
    const identity = info.getChild('query')!.getChild('identity')!;
    assert.deepEqual(identity.attrs, { category: 'conference', type: 'text', name: 'The Public Room' });
    for (const f of [MUC, 'muc_public', 'muc_persistent', 'muc_open', 'muc_unmoderated', 'muc_semianonymous', 'muc_unsecured', 'http://jabber.org/protocol/muc#self-ping-optimization']) {
      assert.ok(features(info).includes(f), f);
    }
    assert.deepEqual(formField(info, 'FORM_TYPE'), ['http://jabber.org/protocol/muc#roominfo']);
    assert.deepEqual(formField(info, 'muc#roominfo_description'), ['For everyone']);
    assert.deepEqual(formField(info, 'muc#roominfo_occupants'), ['1']);
    assert.ok(features(await discoInfo(c, hidden)).includes('muc_hidden'));
    assert.ok(features(await discoInfo(c, hidden)).includes('muc_temporary'));
    // A room that does not exist, and a locked one for a non-owner.
    const other = await login('outsider');
    assert.equal(await iqError(discoInfo(other, room('nowhere'))), 'item-not-found');
    assert.equal(await iqError(discoInfo(other, locked)), 'item-not-found');
    // §6.5: the occupant list is private.
    assert.equal((await discoItems(c, pub)).getChild('query')!.getChildren('item').length, 0);
  });

  it('serves each tenant at its own subdomain (muc.subdomain), and not at all with muc.enabled false', { timeout: 120_000 }, async () => {
    await s.server.tenants.put({ domain: 'rooms.example', enabled: true, muc: { subdomain: 'chat', name: 'Meeting rooms' } });
    await s.server.tenants.put({ domain: 'nomuc.example', enabled: true, muc: { enabled: false } });
    const c = await login('sub', { domain: 'rooms.example' });
    const items = (await discoItems(c, 'rooms.example')).getChild('query')!.getChildren('item');
    assert.ok(items.some((i) => i.attrs.jid === 'chat.rooms.example' && i.attrs.name === 'Meeting rooms'));
    const self = await join(c, `${room('r', 'chat.rooms.example')}/me`);
    assert.deepEqual(codes(self), [110, 201]);
    // conference.rooms.example is nobody's address.
    await c.send(joinPresence(`${room('r', 'conference.rooms.example')}/me`));
    const err = await c.waitFor((el) => el.name === 'presence' && el.attrs.type === 'error');
    assert.equal(errorCondition(err), 'remote-server-not-found');
    const d = await login('off', { domain: 'nomuc.example' });
    assert.equal((await discoItems(d, 'nomuc.example')).getChild('query')!.getChildren('item').length, 0);
    await d.send(joinPresence(`${room('r', 'conference.nomuc.example')}/me`));
    assert.equal(errorCondition(await d.waitFor((el) => el.name === 'presence' && el.attrs.type === 'error')), 'remote-server-not-found');
  });
});

describe('creating rooms (XEP-0045 §10.1)', () => {
  it('instant room: 110 and 201, locked (item-not-found) until the owner accepts the default configuration', { timeout: 120_000 }, async () => {
    const a = await login('owner');
    const b = await login('guest');
    const r = room('coven');
    const self = await join(a, `${r}/first`);
    assert.deepEqual(codes(self), [110, 201]);
    assert.deepEqual({ affiliation: item(self).affiliation, role: item(self).role }, { affiliation: 'owner', role: 'moderator' });
    // The creator gets the (empty) subject too, the end of its join.
    const subject = await a.waitFor(message(r, (el) => !!el.getChild('subject')));
    assert.equal(subject.getChildText('subject'), '');
    const refused = await join(b, `${r}/second`);
    assert.equal(refused.attrs.type, 'error');
    assert.equal(errorCondition(refused), 'item-not-found');
    assert.equal(refused.getChild('error')!.attrs.by, r);
    assert.ok(refused.getChild('x', MUC), 'the error presence carries <x xmlns=muc/>');
    // §10.1.2: an empty submit form.
    const result = await a.iq(xml('iq', { type: 'set', to: r }, xml('query', { xmlns: MUC_OWNER }, xml('x', { xmlns: DATA, type: 'submit' }))));
    assert.equal(result.attrs.type, 'result');
    const joined = await join(b, `${r}/second`);
    assert.deepEqual(codes(joined), [110]);
  });

  it('reserved room: the owner gets the muc#roomconfig form, submits it, and the settings apply', { timeout: 120_000 }, async () => {
    const a = await login('reserver');
    const r = room('reserved');
    await enter(a, `${r}/boss`);
    const form = await a.iq(xml('iq', { type: 'get', to: r }, xml('query', { xmlns: MUC_OWNER })));
    const x = form.getChild('query', MUC_OWNER)!.getChild('x', DATA)!;
    assert.equal(x.attrs.type, 'form');
    const vars = x.getChildren('field').map((f) => f.attrs.var);
    for (const v of [
      'FORM_TYPE',
      'muc#roomconfig_roomname',
      'muc#roomconfig_roomdesc',
      'muc#roomconfig_persistentroom',
      'muc#roomconfig_publicroom',
      'muc#roomconfig_passwordprotectedroom',
      'muc#roomconfig_roomsecret',
      'muc#roomconfig_membersonly',
      'muc#roomconfig_moderatedroom',
      'muc#roomconfig_maxusers',
      'muc#roomconfig_whois',
      'muc#roomconfig_changesubject',
      'muc#roomconfig_allowinvites',
      'muc#roomconfig_allowpm',
      'muc#roomconfig_enablelogging',
      'muc#maxhistoryfetch',
      'muc#roomconfig_roomadmins',
      'muc#roomconfig_roomowners',
    ]) {
      assert.ok(vars.includes(v), v);
    }
    // §10.1.3: a password-protected room without a password is not acceptable.
    assert.equal(await iqError(configure(a, r, { 'muc#roomconfig_passwordprotectedroom': '1' })), 'not-acceptable');
    await configure(a, r, { 'muc#roomconfig_roomname': 'A Dark Cave', 'muc#roomconfig_persistentroom': '1', 'muc#roomconfig_whois': 'anyone', 'muc#roomconfig_maxusers': '10' });
    const info = await discoInfo(a, r);
    assert.ok(features(info).includes('muc_persistent'));
    assert.ok(features(info).includes('muc_nonanonymous'));
    const again = await a.iq(xml('iq', { type: 'get', to: r }, xml('query', { xmlns: MUC_OWNER })));
    assert.deepEqual(formField(again, 'muc#roomconfig_roomname'), ['A Dark Cave']);
    assert.deepEqual(formField(again, 'muc#roomconfig_maxusers'), ['10']);
    // §10.2: only owners.
    const b = await login('notowner');
    await enter(b, `${r}/visitor`);
    assert.equal(await iqError(b.iq(xml('iq', { type: 'get', to: r }, xml('query', { xmlns: MUC_OWNER })))), 'forbidden');
  });

  it('cancelling the initial configuration destroys the room', { timeout: 120_000 }, async () => {
    const a = await login('canceller');
    const r = room('cancel');
    await enter(a, `${r}/me`);
    await a.iq(xml('iq', { type: 'set', to: r }, xml('query', { xmlns: MUC_OWNER }, xml('x', { xmlns: DATA, type: 'cancel' }))));
    const gone = await a.waitFor(presenceFrom(`${r}/me`, 'unavailable'));
    assert.ok(gone.getChild('x', MUC_USER)!.getChild('destroy'));
    assert.equal(await mucRoom(r), undefined);
  });

  it('limits.roomsPerUser: creating one room too many is not-allowed (§10.1.1)', { timeout: 120_000 }, async () => {
    await s.server.tenants.put({ domain: 'limited.example', enabled: true, limits: { roomsPerUser: 1 } });
    const c = await login('creator', { domain: 'limited.example' });
    const first = await join(c, `${room('one', 'conference.limited.example')}/me`);
    assert.deepEqual(codes(first), [110, 201]);
    const second = await join(c, `${room('two', 'conference.limited.example')}/me`);
    assert.equal(errorCondition(second), 'not-allowed');
    assert.equal(second.getChild('error')!.attrs.type, 'cancel');
    // The first room was never configured: its owner leaving destroys it (§10.1.3, with <destroy/>), which frees the count.
    const first1 = first.attrs.from;
    await c.send(xml('presence', { to: first1, type: 'unavailable' }));
    const left = await c.waitFor(presenceFrom(first1, 'unavailable'));
    assert.ok(left.getChild('x', MUC_USER)!.getChild('destroy'));
    await c.roundTrip(); // the leave was handled to its end (the room deleted)
    assert.deepEqual(codes(await join(c, `${room('three', 'conference.limited.example')}/me`)), [110, 201]);
  });

  it("muc.roomCreation 'admins': users cannot create rooms, operators can", { timeout: 120_000 }, async () => {
    await s.server.tenants.put({ domain: 'closed.example', enabled: true, muc: { roomCreation: 'admins' } });
    const c = await login('nocreate', { domain: 'closed.example' });
    assert.equal(errorCondition(await join(c, `${room('x', 'conference.closed.example')}/me`)), 'not-allowed');
    const made = await createRoom((await mucOf(s.server)!.context('closed.example'))!, 'made-by-ops');
    assert.deepEqual(codes(await join(c, `${made.jid}/me`)), [110]);
  });
});

/** The stored room of a room JID (for checks behind the protocol). */
function mucRoom(jid: string) {
  const [id, service] = jid.split('@');
  return mucOf(s.server)!.rooms.get(service.slice(service.indexOf('.') + 1), id);
}

describe('entering a room (XEP-0045 §7.2)', () => {
  it('sends existing occupants first, then self-presence (110); others get the newcomer without 110', { timeout: 120_000 }, async () => {
    const a = await login('first');
    const b = await login('second');
    const c = await login('third');
    const r = room('order');
    await createInstant(a, `${r}/alpha`);
    await enter(b, `${r}/beta`);
    await c.send(joinPresence(`${r}/gamma`, { id: 'join-1' }));
    const self = await c.waitFor(selfPresence(`${r}/gamma`));
    const presences = c.received.filter((el) => el.name === 'presence');
    // Before the self-presence came alpha and beta (consumed lists: received keeps what waitFor did not take).
    const fromAlpha = presences.find((el) => el.attrs.from === `${r}/alpha`)!;
    const fromBeta = presences.find((el) => el.attrs.from === `${r}/beta`)!;
    assert.ok(fromAlpha && fromBeta);
    assert.deepEqual(codes(fromAlpha), []);
    assert.deepEqual({ ...item(fromAlpha) }, { affiliation: 'owner', role: 'moderator' }); // semi-anonymous: no jid for a participant
    assert.deepEqual({ ...item(fromBeta) }, { affiliation: 'none', role: 'participant' });
    assert.deepEqual(codes(self), [110]);
    assert.equal(self.attrs.id, 'join-1', 'the join id is reflected in self-presence');
    assert.equal(item(self).jid, c.jid, 'self-presence shows one’s own JID');
    // Others: the newcomer without 110; the moderator sees the real JID (semi-anonymous room, §7.2.5).
    const seenByA = await a.waitFor(presenceFrom(`${r}/gamma`));
    assert.deepEqual(codes(seenByA), []);
    assert.equal(item(seenByA).jid, c.jid);
    const seenByB = await b.waitFor(presenceFrom(`${r}/gamma`));
    assert.equal(item(seenByB).jid, undefined);
  });

  it('non-anonymous room: 100 in self-presence and everyone sees real JIDs (§7.2.4); logging: 170 (§7.2.12)', { timeout: 120_000 }, async () => {
    const a = await login('nonanon');
    const b = await login('seen');
    const r = room('open');
    await createInstant(a, `${r}/alpha`, { 'muc#roomconfig_whois': 'anyone', 'muc#roomconfig_enablelogging': '1' });
    await b.send(joinPresence(`${r}/beta`));
    const self = await b.waitFor(selfPresence(`${r}/beta`));
    assert.deepEqual(codes(self), [100, 110, 170]);
    const alpha = b.received.find((el) => el.name === 'presence' && el.attrs.from === `${r}/alpha`)!;
    assert.equal(item(alpha).jid, a.jid);
  });

  it('refuses a join without a nickname (jid-malformed), a taken nick (conflict) and a member’s reserved nick (conflict)', { timeout: 120_000 }, async () => {
    const a = await login('holder');
    const b = await login('taker');
    const member = await user('reserving');
    const r = room('nicks');
    await createInstant(a, `${r}/taken`);
    await a.iq(xml('iq', { type: 'set', to: r }, xml('query', { xmlns: 'http://jabber.org/protocol/muc#admin' }, xml('item', { affiliation: 'member', jid: `${member}@localhost`, nick: 'reservednick' }))));
    await b.send(xml('presence', { to: r }, xml('x', { xmlns: MUC })));
    const noNick = await b.waitFor((el) => el.name === 'presence' && el.attrs.type === 'error' && el.attrs.from === r);
    assert.equal(errorCondition(noNick), 'jid-malformed');
    assert.equal(noNick.getChild('error')!.attrs.type, 'modify');
    const conflict = await join(b, `${r}/taken`);
    assert.equal(errorCondition(conflict), 'conflict');
    assert.equal(conflict.getChild('error')!.attrs.type, 'cancel');
    assert.equal(errorCondition(await join(b, `${r}/reservednick`)), 'conflict');
    // §7.12: the member discovers its reserved nick.
    const m = await login('', { name: member });
    const nick = await discoInfo(m, r, 'x-roomuser-item');
    assert.equal(nick.getChild('query')!.getChild('identity')!.attrs.name, 'reservednick');
    assert.equal(nick.getChild('query')!.getChildren('identity').length, 1);
    assert.equal((await discoInfo(b, r, 'x-roomuser-item')).getChild('query')!.getChildren('identity').length, 0);
  });

  it('password-protected room: not-authorized without or with a wrong password (§7.2.6)', { timeout: 120_000 }, async () => {
    const a = await login('locker');
    const b = await login('knocker');
    const r = room('secret');
    await createInstant(a, `${r}/owner`, { 'muc#roomconfig_passwordprotectedroom': '1', 'muc#roomconfig_roomsecret': 'cauldronburn' });
    assert.ok(features(await discoInfo(b, r)).includes('muc_passwordprotected'));
    const none = await join(b, `${r}/b`);
    assert.equal(errorCondition(none), 'not-authorized');
    assert.equal(none.getChild('error')!.attrs.type, 'auth');
    assert.equal(errorCondition(await join(b, `${r}/b`, { password: 'wrong' })), 'not-authorized');
    assert.deepEqual(codes(await join(b, `${r}/b`, { password: 'cauldronburn' })), [110]);
  });

  it('members-only room: registration-required for non-members (§7.2.7); banned users: forbidden (§7.2.8)', { timeout: 120_000 }, async () => {
    const a = await login('club');
    const b = await login('stranger');
    const c = await login('member');
    const d = await login('outcast');
    const r = room('club');
    await createInstant(a, `${r}/owner`, { 'muc#roomconfig_membersonly': '1' });
    const admin = (attrs: Record<string, string>) => a.iq(xml('iq', { type: 'set', to: r }, xml('query', { xmlns: 'http://jabber.org/protocol/muc#admin' }, xml('item', attrs))));
    await admin({ affiliation: 'member', jid: bare(c) });
    await admin({ affiliation: 'outcast', jid: bare(d) });
    const refused = await join(b, `${r}/b`);
    assert.equal(errorCondition(refused), 'registration-required');
    assert.equal(refused.getChild('error')!.attrs.type, 'auth');
    assert.deepEqual(codes(await join(c, `${r}/c`)), [110]);
    const banned = await join(d, `${r}/d`);
    assert.equal(errorCondition(banned), 'forbidden');
    assert.equal(banned.getChild('error')!.attrs.type, 'auth');
  });

  it('a full room is service-unavailable of type wait (§7.2.10); the owner still gets in', { timeout: 120_000 }, async () => {
    const a = await login('maxowner');
    const r = room('small');
    await createInstant(a, `${r}/owner`, { 'muc#roomconfig_maxusers': '10' });
    const extra: TestClient[] = [];
    for (let i = 0; i < 9; i++) {
      const c = await login('filler');
      await join(c, `${r}/f${i}`);
      extra.push(c);
    }
    const late = await login('late');
    const full = await join(late, `${r}/late`);
    assert.equal(errorCondition(full), 'service-unavailable');
    assert.equal(full.getChild('error')!.attrs.type, 'wait');
    await stop(...extra);
  });

  it('enforced reserved nicks: the service rewrites the nick and says so with 210 (§7.2.3)', { timeout: 120_000 }, async () => {
    await s.server.tenants.put({ domain: 'nicks.example', enabled: true, muc: { enforceReservedNicks: true } });
    const a = await login('nickowner', { domain: 'nicks.example' });
    const b = await login('nicked', { domain: 'nicks.example' });
    const r = room('lock', 'conference.nicks.example');
    await createInstant(a, `${r}/owner`);
    await a.iq(xml('iq', { type: 'set', to: r }, xml('query', { xmlns: 'http://jabber.org/protocol/muc#admin' }, xml('item', { affiliation: 'member', jid: bare(b), nick: 'registered' }))));
    await b.send(joinPresence(`${r}/whatever`));
    const self = await b.waitFor(selfPresence(`${r}/registered`));
    assert.deepEqual(codes(self), [110, 210]);
    // Changing away from it is not acceptable (§7.6).
    await b.send(xml('presence', { to: `${r}/other` }));
    const err = await b.waitFor((el) => el.name === 'presence' && el.attrs.type === 'error');
    assert.equal(errorCondition(err), 'not-acceptable');
  });

  it('answers presence without <x/> from a non-occupant with a kick: 110, 307, 333 (§7.2.22)', { timeout: 120_000 }, async () => {
    const a = await login('gc1');
    const r = room('gc');
    await createInstant(a, `${r}/owner`);
    const b = await login('old');
    await b.send(xml('presence', { to: `${r}/legacy` }));
    const kick = await b.waitFor(presenceFrom(`${r}/legacy`, 'unavailable'));
    assert.deepEqual(codes(kick), [110, 307, 333]);
    assert.deepEqual({ ...item(kick) }, { affiliation: 'none', role: 'none' });
  });
});

describe('occupants: leaving, nick and presence changes, several resources (XEP-0045 §7.6, §7.7, §7.14)', () => {
  it('exit: 110 to the leaver, role none to all, custom status passed on; a temporary room is destroyed when the last occupant leaves', { timeout: 120_000 }, async () => {
    const a = await login('stay');
    const b = await login('leave');
    const r = room('exit');
    await createInstant(a, `${r}/a`);
    await enter(b, `${r}/b`);
    await a.waitFor(presenceFrom(`${r}/b`));
    await b.send(xml('presence', { to: `${r}/b`, type: 'unavailable' }, xml('status', {}, 'gone where the goblins go')));
    const own = await b.waitFor(presenceFrom(`${r}/b`, 'unavailable'));
    assert.deepEqual(codes(own), [110]);
    assert.equal(item(own).role, 'none');
    const seen = await a.waitFor(presenceFrom(`${r}/b`, 'unavailable'));
    assert.deepEqual(codes(seen), []);
    assert.deepEqual({ affiliation: item(seen).affiliation, role: item(seen).role }, { affiliation: 'none', role: 'none' });
    assert.equal(seen.getChildText('status'), 'gone where the goblins go');
    assert.ok(await mucRoom(r));
    await a.send(xml('presence', { to: `${r}/a`, type: 'unavailable' }));
    await a.waitFor(presenceFrom(`${r}/a`, 'unavailable'));
    await a.roundTrip(); // the leave was handled to its end
    assert.equal(await mucRoom(r), undefined, 'temporary room gone');
    // Entering again creates a new room.
    assert.deepEqual(codes(await join(a, `${r}/a`)), [110, 201]);
  });

  it('a persistent room stays when empty', { timeout: 120_000 }, async () => {
    const a = await login('keeper');
    const r = room('persist');
    await createInstant(a, `${r}/a`, { 'muc#roomconfig_persistentroom': '1' });
    await a.send(xml('presence', { to: `${r}/a`, type: 'unavailable' }));
    await a.waitFor(presenceFrom(`${r}/a`, 'unavailable'));
    await a.roundTrip(); // the leave was handled to its end
    const kept = await mucRoom(r);
    assert.ok(kept);
    assert.equal(Object.keys(kept.occupants).length, 0);
    assert.deepEqual(codes(await join(a, `${r}/a`)), [110]);
  });

  it('nick change: unavailable with 303 and the new nick, then presence from the new nick (§7.6); conflicts refused', { timeout: 120_000 }, async () => {
    const a = await login('watcher');
    const b = await login('renamer');
    const r = room('rename');
    await createInstant(a, `${r}/a`, { 'muc#roomconfig_whois': 'anyone' });
    await enter(b, `${r}/thirdwitch`);
    await a.waitFor(presenceFrom(`${r}/thirdwitch`));
    await b.send(xml('presence', { to: `${r}/oldhag` }));
    for (const c of [a, b]) {
      const gone = await c.waitFor(presenceFrom(`${r}/thirdwitch`, 'unavailable'));
      assert.deepEqual(codes(gone), c === b ? [110, 303] : [303]);
      assert.equal(item(gone).nick, 'oldhag');
      assert.equal(item(gone).role, 'participant');
      assert.equal(item(gone).jid, b.jid);
      const back = await c.waitFor(presenceFrom(`${r}/oldhag`));
      assert.deepEqual(codes(back), c === b ? [110] : []);
    }
    await b.send(xml('presence', { to: `${r}/a` }));
    const err = await b.waitFor((el) => el.name === 'presence' && el.attrs.type === 'error');
    assert.equal(errorCondition(err), 'conflict');
    // Messages now come from the new nick.
    await b.send(xml('message', { to: r, type: 'groupchat', id: 'after-rename' }, xml('body', {}, 'hi')));
    assert.equal((await a.waitFor((el) => el.name === 'message' && el.attrs.id === 'after-rename')).attrs.from, `${r}/oldhag`);
  });

  it('presence changes are broadcast with the muc#user item (§7.7)', { timeout: 120_000 }, async () => {
    const a = await login('observer');
    const b = await login('away');
    const r = room('status');
    await createInstant(a, `${r}/a`);
    await enter(b, `${r}/b`);
    await a.waitFor(presenceFrom(`${r}/b`));
    await b.send(xml('presence', { to: `${r}/b` }, xml('show', {}, 'xa'), xml('status', {}, 'gone where the goblins go')));
    const seen = await a.waitFor((el) => presenceFrom(`${r}/b`)(el) && el.getChildText('show') === 'xa');
    assert.equal(seen.getChildText('status'), 'gone where the goblins go');
    assert.equal(item(seen).role, 'participant');
    const own = await b.waitFor((el) => selfPresence(`${r}/b`)(el) && el.getChildText('show') === 'xa');
    assert.deepEqual(codes(own), [110]);
  });

  it('two resources of one user share a nick: both get room traffic and private messages; others see one occupant', { timeout: 120_000 }, async () => {
    const a = await login('other');
    const name = await user('multi');
    const r1 = await login('', { name, resource: 'phone' });
    const r2 = await login('', { name, resource: 'laptop' });
    const r = room('multi');
    await createInstant(a, `${r}/a`);
    await enter(r1, `${r}/me`);
    await a.waitFor(presenceFrom(`${r}/me`));
    await enter(r2, `${r}/me`);
    // The first resource sees the second join as its own (110); the other occupant sees a presence update.
    await r1.waitFor((el) => selfPresence(`${r}/me`)(el) && item(el).jid === r1.jid);
    await a.waitFor(presenceFrom(`${r}/me`));
    assert.equal(Object.keys((await mucRoom(r))!.occupants).length, 2);
    await a.send(xml('message', { to: r, type: 'groupchat', id: 'to-all' }, xml('body', {}, 'both of you')));
    for (const c of [r1, r2]) assert.equal((await c.waitFor((el) => el.attrs.id === 'to-all')).attrs.to, c.jid);
    await a.send(xml('message', { to: `${r}/me`, type: 'chat', id: 'pm-both' }, xml('body', {}, 'private')));
    for (const c of [r1, r2]) {
      const pm = await c.waitFor((el) => el.attrs.id === 'pm-both');
      assert.equal(pm.attrs.from, `${r}/a`);
      assert.ok(pm.getChild('x', MUC_USER));
    }
    // One resource sends from the shared nick; the other resource gets the reflection as well.
    await r2.send(xml('message', { to: r, type: 'groupchat', id: 'from-laptop' }, xml('body', {}, 'me again')));
    assert.equal((await r1.waitFor((el) => el.attrs.id === 'from-laptop')).attrs.from, `${r}/me`);
    // One resource leaves: the others see no unavailable, only the remaining presence.
    await r2.send(xml('presence', { to: `${r}/me`, type: 'unavailable' }));
    await r2.waitFor(presenceFrom(`${r}/me`, 'unavailable'));
    await a.expectNothing(s, presenceFrom(`${r}/me`, 'unavailable'), r2);
    await r1.send(xml('presence', { to: `${r}/me`, type: 'unavailable' }));
    await a.waitFor(presenceFrom(`${r}/me`, 'unavailable'));
  });
});

describe('messages (XEP-0045 §7.4, §7.5, §8.1)', () => {
  it('groupchat reaches every occupant from the occupant JID with the sender’s id; non-occupants get not-acceptable', { timeout: 120_000 }, async () => {
    const [a, b, c] = [await login('gc'), await login('gc'), await login('gc')];
    const outsider = await login('outside');
    const r = room('chat');
    await createInstant(a, `${r}/a`);
    await enter(b, `${r}/b`);
    await enter(c, `${r}/c`);
    await b.send(xml('message', { to: r, type: 'groupchat', id: 'hysf1v37' }, xml('body', {}, "Harpier cries: 'tis time, 'tis time.")));
    for (const x of [a, b, c]) {
      const m = await x.waitFor((el) => el.name === 'message' && el.attrs.id === 'hysf1v37');
      assert.deepEqual({ from: m.attrs.from, to: m.attrs.to, type: m.attrs.type }, { from: `${r}/b`, to: x.jid, type: 'groupchat' });
    }
    await outsider.send(xml('message', { to: r, type: 'groupchat', id: 'nope' }, xml('body', {}, 'let me in')));
    const err = await outsider.waitFor((el) => el.attrs.id === 'nope');
    assert.equal(errorCondition(err), 'not-acceptable');
    assert.equal(err.getChild('error')!.attrs.by, r);
    // §17.2 rule 1: not of type groupchat (and no invitation): bad-request.
    await a.send(xml('message', { to: r, type: 'chat', id: 'typed' }, xml('body', {}, 'x')));
    assert.equal(errorCondition(await a.waitFor((el) => el.attrs.id === 'typed')), 'bad-request');
    // No such room.
    await a.send(xml('message', { to: room('void'), type: 'groupchat', id: 'void' }, xml('body', {}, 'x')));
    assert.equal(errorCondition(await a.waitFor((el) => el.attrs.id === 'void')), 'item-not-found');
  });

  it('private messages: delivered with <x muc#user/>; groupchat type is bad-request; unknown nick item-not-found; allowpm none forbidden', { timeout: 120_000 }, async () => {
    const a = await login('pma');
    const b = await login('pmb');
    const outsider = await login('pmc');
    const r = room('pm');
    await createInstant(a, `${r}/firstwitch`);
    await enter(b, `${r}/wiccarocks`);
    await b.send(xml('message', { to: `${r}/firstwitch`, type: 'chat', id: 'hgn27af1' }, xml('body', {}, "I'll give thee a wind.")));
    const pm = await a.waitFor((el) => el.attrs.id === 'hgn27af1');
    assert.deepEqual({ from: pm.attrs.from, to: pm.attrs.to, type: pm.attrs.type }, { from: `${r}/wiccarocks`, to: a.jid, type: 'chat' });
    assert.ok(pm.getChild('x', MUC_USER));
    await b.send(xml('message', { to: `${r}/firstwitch`, type: 'groupchat', id: 'bx71f29k' }, xml('body', {}, 'x')));
    const bad = await b.waitFor((el) => el.attrs.id === 'bx71f29k');
    assert.equal(errorCondition(bad), 'bad-request');
    assert.equal(bad.attrs.from, `${r}/firstwitch`);
    await b.send(xml('message', { to: `${r}/nobody`, type: 'chat', id: 'nf' }, xml('body', {}, 'x')));
    assert.equal(errorCondition(await b.waitFor((el) => el.attrs.id === 'nf')), 'item-not-found');
    await outsider.send(xml('message', { to: `${r}/firstwitch`, type: 'chat', id: 'na' }, xml('body', {}, 'x')));
    assert.equal(errorCondition(await outsider.waitFor((el) => el.attrs.id === 'na')), 'not-acceptable');
    await configure(a, r, { 'muc#roomconfig_allowpm': 'none' });
    await b.send(xml('message', { to: `${r}/firstwitch`, type: 'chat', id: 'off' }, xml('body', {}, 'x')));
    assert.equal(errorCondition(await b.waitFor((el) => el.attrs.id === 'off')), 'forbidden');
  });

  it('subject: moderators change it, participants may not by default (forbidden); newcomers get it with a delay stamp after the history', { timeout: 120_000 }, async () => {
    const a = await login('topic');
    const b = await login('reader');
    const r = room('subject');
    await createInstant(a, `${r}/secondwitch`);
    await enter(b, `${r}/b`);
    await a.send(xml('message', { to: r, type: 'groupchat', id: 'lh2bs617' }, xml('subject', {}, 'Fire Burn and Cauldron Bubble!')));
    const changed = await b.waitFor((el) => el.attrs.id === 'lh2bs617');
    assert.equal(changed.attrs.from, `${r}/secondwitch`);
    assert.equal(changed.getChildText('subject'), 'Fire Burn and Cauldron Bubble!');
    await b.send(xml('message', { to: r, type: 'groupchat', id: 'nosubj' }, xml('subject', {}, 'mine now')));
    const refused = await b.waitFor((el) => el.attrs.id === 'nosubj');
    assert.equal(errorCondition(refused), 'forbidden');
    assert.equal(refused.getChildText('subject'), 'mine now');
    await a.send(xml('message', { to: r, type: 'groupchat', id: 'h1' }, xml('body', {}, 'history one')));
    await b.waitFor((el) => el.attrs.id === 'h1');
    const c = await login('late');
    const order: string[] = [];
    c.xmpp.on('stanza', (el: Element) => {
      if (el.attrs.from?.startsWith(r)) order.push(el.name === 'message' ? (el.getChildText('body') ?? 'subject') : `presence ${el.attrs.from.split('/')[1]}`);
    });
    await c.send(joinPresence(`${r}/c`));
    const subject = await c.waitFor((el) => el.name === 'message' && !!el.getChild('subject') && !el.getChild('body'));
    assert.equal(subject.attrs.from, `${r}/secondwitch`);
    assert.equal(subject.getChildText('subject'), 'Fire Burn and Cauldron Bubble!');
    const delay = subject.getChild('delay', 'urn:xmpp:delay')!;
    assert.equal(delay.attrs.from, r);
    // §7.1: others' presence, self-presence, history, subject.
    assert.deepEqual(order, ['presence secondwitch', 'presence b', 'presence c', 'history one', 'subject']);
  });
});

describe('discussion history (XEP-0045 §7.2.14, §7.2.15)', () => {
  async function roomWithHistory(count: number) {
    const a = await login('historian');
    const r = room('history');
    await createInstant(a, `${r}/scribe`);
    for (let i = 1; i <= count; i++) {
      await a.send(xml('message', { to: r, type: 'groupchat', id: `m${i}` }, xml('body', {}, `message ${i}`)));
      await a.waitFor((el) => el.attrs.id === `m${i}`);
    }
    return { a, r };
  }
  const historyOf = async (r: string, opts: Parameters<typeof joinPresence>[1] = {}) => {
    const c = await login('newcomer');
    await c.send(joinPresence(`${r}/reader${++n}`, opts));
    await c.waitFor((el) => el.name === 'message' && !!el.getChild('subject') && !el.getChild('body'));
    return c.received.filter((el) => el.name === 'message' && el.getChild('body'));
  };

  it('sends the room history with delay stamps from the room, up to muc#maxhistoryfetch, after self-presence', { timeout: 120_000 }, async () => {
    const { r } = await roomWithHistory(3);
    const got = await historyOf(r);
    assert.deepEqual(got.map((m) => m.getChildText('body')), ['message 1', 'message 2', 'message 3']);
    for (const m of got) {
      assert.equal(m.attrs.from, `${r}/scribe`);
      const delay = m.getChild('delay', 'urn:xmpp:delay')!;
      assert.equal(delay.attrs.from, r);
      assert.ok(!Number.isNaN(Date.parse(delay.attrs.stamp)));
    }
  });

  it('honours maxstanzas, maxchars (0 = none, else complete stanzas that fit), seconds and since', { timeout: 120_000 }, async () => {
    const { r } = await roomWithHistory(4);
    assert.deepEqual((await historyOf(r, { history: { maxstanzas: '2' } })).map((m) => m.getChildText('body')), ['message 3', 'message 4']);
    assert.deepEqual(await historyOf(r, { history: { maxchars: '0' } }), []);
    const one = (await historyOf(r, { history: { maxstanzas: '1' } }))[0].toString().length;
    // Room for exactly two of the (equally long) stanzas.
    assert.equal((await historyOf(r, { history: { maxchars: String(one * 2 + 5) } })).length, 2);
    assert.equal((await historyOf(r, { history: { since: new Date(s.clock.now() + 60_000).toISOString() } })).length, 0);
    assert.equal((await historyOf(r, { history: { since: '1970-01-01T00:00:00Z' } })).length, 4);
    s.clock.advance(5 * 60_000); // the four messages are now five minutes old
    const a2 = (await login('late'));
    await enter(a2, `${r}/fresh`);
    await a2.send(xml('message', { to: r, type: 'groupchat', id: 'recent' }, xml('body', {}, 'recent one')));
    await a2.waitFor((el) => el.attrs.id === 'recent');
    assert.deepEqual((await historyOf(r, { history: { seconds: '60' } })).map((m) => m.getChildText('body')), ['recent one']);
  });
});

describe('invitations (XEP-0045 §7.8, XEP-0249)', () => {
  it('mediated invitation: the room sends it from itself with the password; a decline goes back to the inviter', { timeout: 120_000 }, async () => {
    const a = await login('crone');
    const b = await login('hecate');
    await a.send(xml('presence'));
    await b.send(xml('presence'));
    const r = room('invite');
    await createInstant(a, `${r}/crone`, { 'muc#roomconfig_passwordprotectedroom': '1', 'muc#roomconfig_roomsecret': 'cauldronburn' });
    await a.send(xml('message', { to: r, id: 'nzd143v8' }, xml('x', { xmlns: MUC_USER }, xml('invite', { to: bare(b) }, xml('reason', {}, 'Hey Hecate, this is the place for all good witches!')))));
    const inv = await b.waitFor((el) => el.name === 'message' && el.attrs.from === r);
    const x = inv.getChild('x', MUC_USER)!;
    assert.equal(x.getChild('invite')!.attrs.from, a.jid);
    assert.equal(x.getChild('invite')!.getChildText('reason'), 'Hey Hecate, this is the place for all good witches!');
    assert.equal(x.getChildText('password'), 'cauldronburn');
    await b.send(xml('message', { to: r, id: 'jk2vs61v' }, xml('x', { xmlns: MUC_USER }, xml('decline', { to: bare(a) }, xml('reason', {}, "Sorry, I'm too busy right now.")))));
    const declined = await a.waitFor((el) => el.name === 'message' && el.attrs.id === 'jk2vs61v');
    assert.equal(declined.attrs.from, r);
    assert.equal(declined.getChild('x', MUC_USER)!.getChild('decline')!.attrs.from, bare(b));
    assert.equal(declined.getChild('x', MUC_USER)!.getChild('decline')!.getChildText('reason'), "Sorry, I'm too busy right now.");
    // Inviting someone who does not exist.
    await a.send(xml('message', { to: r, id: 'ghost' }, xml('x', { xmlns: MUC_USER }, xml('invite', { to: 'nobody-at-all@localhost' }))));
    assert.equal(errorCondition(await a.waitFor((el) => el.attrs.id === 'ghost' && el.attrs.type === 'error')), 'item-not-found');
  });

  it('members-only room: a member may not invite (forbidden) unless allowinvites; an admin’s invitation makes the invitee a member', { timeout: 120_000 }, async () => {
    const a = await login('admin');
    const m = await login('mere');
    const invitee = await user('guest');
    const r = room('closed');
    await createInstant(a, `${r}/owner`, { 'muc#roomconfig_membersonly': '1' });
    await a.iq(xml('iq', { type: 'set', to: r }, xml('query', { xmlns: 'http://jabber.org/protocol/muc#admin' }, xml('item', { affiliation: 'member', jid: bare(m) }))));
    await enter(m, `${r}/mere`);
    await m.send(xml('message', { to: r, id: 'C6E14DF6' }, xml('x', { xmlns: MUC_USER }, xml('invite', { to: `${invitee}@localhost` }))));
    const err = await m.waitFor((el) => el.attrs.id === 'C6E14DF6');
    assert.equal(errorCondition(err), 'forbidden');
    assert.equal(err.getChild('error')!.attrs.type, 'auth');
    await a.send(xml('message', { to: r, id: 'by-admin' }, xml('x', { xmlns: MUC_USER }, xml('invite', { to: `${invitee}@localhost` }))));
    await a.roundTrip(); // the invitation was handled
    assert.equal((await mucRoom(r))!.affiliations[`${invitee}@localhost`]?.affiliation, 'member');
    const g = await login('', { name: invitee });
    assert.deepEqual(codes(await join(g, `${r}/guest`)), [110]);
  });

  it('direct invitation (XEP-0249) reaches the invitee, who can join with the password it carries', { timeout: 120_000 }, async () => {
    const a = await login('direct');
    const b = await login('invited');
    await b.send(xml('presence'));
    const r = room('direct');
    await createInstant(a, `${r}/host`, { 'muc#roomconfig_passwordprotectedroom': '1', 'muc#roomconfig_roomsecret': 'pw' });
    await a.send(xml('message', { to: bare(b), id: 'direct1' }, xml('x', { xmlns: 'jabber:x:conference', jid: r, password: 'pw', reason: 'come in' })));
    const inv = await b.waitFor((el) => el.attrs.id === 'direct1');
    const x = inv.getChild('x', 'jabber:x:conference')!;
    assert.deepEqual({ jid: x.attrs.jid, password: x.attrs.password }, { jid: r, password: 'pw' });
    assert.deepEqual(codes(await join(b, `${r}/guest`, { password: x.attrs.password })), [110]);
  });
});

describe('XEP-0410 MUC self-ping', () => {
  it('answers a joined occupant’s ping to its own occupant JID with a result, and a non-occupant’s with not-acceptable (cancel)', { timeout: 120_000 }, async () => {
    const a = await login('pinger');
    const b = await login('other');
    const r = room('ping');
    await createInstant(a, `${r}/JuliC`);
    const pong = await a.iq(xml('iq', { type: 'get', to: `${r}/JuliC` }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
    assert.equal(pong.attrs.type, 'result');
    assert.equal(pong.attrs.from, `${r}/JuliC`);
    // The service answers from one read of the room item.
    const cost = await s.cost(() => a.iq(xml('iq', { type: 'get', to: `${r}/JuliC` }, xml('ping', { xmlns: 'urn:xmpp:ping' }))));
    assert.deepEqual({ reads: cost.reads, writes: cost.writes, posts: cost.posts }, { reads: 1, writes: 0, posts: 1 }, JSON.stringify(cost.calls));
    await b.send(xml('iq', { type: 'get', to: `${r}/JuliC`, id: 's2c1' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
    const err = await b.waitFor((el) => el.attrs.id === 's2c1');
    assert.equal(errorCondition(err), 'not-acceptable');
    assert.equal(err.getChild('error')!.attrs.type, 'cancel');
    assert.equal(err.getChild('error')!.attrs.by, r);
    // After leaving, the same ping says not joined.
    await a.send(xml('presence', { to: `${r}/JuliC`, type: 'unavailable' }));
    await a.waitFor(presenceFrom(`${r}/JuliC`, 'unavailable'));
    assert.equal(await iqError(a.iq(xml('iq', { type: 'get', to: `${r}/JuliC` }, xml('ping', { xmlns: 'urn:xmpp:ping' })))), 'not-acceptable');
  });

  it('forwards an IQ to another occupant from the sender’s occupant JID and brings the reply back', { timeout: 120_000 }, async () => {
    const a = await login('asker');
    const b = await login('answerer');
    const r = room('iq');
    await createInstant(a, `${r}/a`);
    await enter(b, `${r}/b`);
    let reply: Element | { condition?: string } | undefined;
    const cost = await s.cost(async () => {
      reply = await a.iq(xml('iq', { type: 'get', to: `${r}/b` }, xml('ping', { xmlns: 'urn:xmpp:ping' }))).catch((err) => err);
    });
    // xmpp.js answers pings; either way the answer came back through the room.
    assert.ok((reply as Element).attrs?.from === `${r}/b` || (reply as { condition?: string }).condition, String(reply));
    // One read of the room for the ping (shared by the self-ping check and the forwarding), one for the reply.
    assert.deepEqual({ reads: cost.reads, writes: cost.writes, posts: cost.posts }, { reads: 2, writes: 0, posts: 2 }, JSON.stringify(cost.calls));
  });
});
