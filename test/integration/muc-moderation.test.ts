// XEP-0045 §8–§10 with three (and more) real occupants: voice in a moderated room, kick (307), ban
// (301), affiliation changes and lists, membership removal (321), members-only conversion (322),
// configuration change notices (104, 172), voice requests, and destroying a room with an alternate
// venue. Status codes are asserted exactly.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type TestClient, type TestServer, startTestServer, xml, type Element } from '../support/harness.ts';
import { DATA, MUC_ADMIN, MUC_OWNER, MUC_USER, adminSet, codes, configure, connectMucClient, createInstant, enter, errorCondition, item, join, presenceFrom } from '../support/muc.ts';

let s: TestServer;
let n = 0;
const clients: TestClient[] = [];
async function login(prefix: string): Promise<TestClient> {
  const name = `${prefix}${++n}`;
  await s.addUser(`${name}@localhost`, `pw-${name}`);
  const c = await connectMucClient(s.url, { username: name, password: `pw-${name}` });
  clients.push(c);
  return c;
}
const bare = (c: TestClient) => c.jid.split('/')[0];
const room = (name: string) => `${name}${++n}@conference.localhost`;
const condition = async (p: Promise<unknown>) => p.then(() => 'no error', (err: { condition?: string }) => err.condition);
const set = (c: TestClient, r: string, attrs: Record<string, string>, reason?: string) =>
  c.iq(adminSet(r, xml('item', attrs, ...(reason ? [xml('reason', {}, reason)] : []))));
const list = async (c: TestClient, r: string, attrs: Record<string, string>): Promise<Record<string, string | undefined>[]> =>
  (await c.iq(xml('iq', { type: 'get', to: r }, xml('query', { xmlns: MUC_ADMIN }, xml('item', attrs))))).getChild('query', MUC_ADMIN)!.getChildren('item').map((i) => ({ ...i.attrs, reason: i.getChildText('reason') ?? undefined }));
const groupchat = (c: TestClient, r: string, id: string, text = id) => c.send(xml('message', { to: r, type: 'groupchat', id }, xml('body', {}, text)));
const byId = (id: string) => (el: Element) => el.attrs.id === id;

before(async () => {
  s = await startTestServer();
});
after(async () => {
  for (const c of clients) await c.stop();
  await s.stop();
});

describe('a moderated room with three occupants (XEP-0045 §8, §9)', () => {
  let owner: TestClient, member: TestClient, guest: TestClient, r: string;
  const at = (nick: string) => `${r}/${nick}`;

  before(async () => {
    [owner, member, guest] = [await login('crone'), await login('wicca'), await login('hag')];
    r = room('coven');
    await createInstant(owner, `${r}/crone`, { 'muc#roomconfig_moderatedroom': '1' });
    await set(owner, r, { affiliation: 'member', jid: bare(member) });
    await enter(member, at('wicca'));
    await enter(guest, at('hag'));
    for (const c of [owner, member]) await c.waitFor(presenceFrom(at('hag')));
  });

  it('gives default roles by affiliation (§5.1.2): owner moderator, member participant, none visitor', async () => {
    const seen = await list(owner, r, { role: 'visitor' });
    assert.deepEqual(seen, [{ affiliation: 'none', jid: guest.jid, nick: 'hag', role: 'visitor', reason: undefined }]);
    assert.deepEqual((await list(owner, r, { role: 'participant' })).map((i) => i.nick), ['wicca']);
    assert.deepEqual((await list(owner, r, { role: 'moderator' })).map((i) => [i.nick, i.affiliation, i.jid]), [['crone', 'owner', owner.jid]]);
    // Role lists are for moderators (§8.5).
    assert.equal(await condition(member.iq(xml('iq', { type: 'get', to: r }, xml('query', { xmlns: MUC_ADMIN }, xml('item', { role: 'participant' }))))), 'forbidden');
  });

  it('a visitor has no voice (forbidden); granting voice makes it a participant for everyone; revoking makes it a visitor again', { timeout: 120_000 }, async () => {
    await groupchat(guest, r, 'mute');
    const refused = await guest.waitFor(byId('mute'));
    assert.equal(errorCondition(refused), 'forbidden');
    assert.equal(refused.getChild('error')!.attrs.type, 'auth');
    await member.expectNothing(s, byId('mute'), guest);

    const result = await set(owner, r, { nick: 'hag', role: 'participant' }, 'A worthy witch indeed!');
    assert.equal(result.attrs.type, 'result');
    for (const c of [owner, member, guest]) {
      const p = await c.waitFor((el) => presenceFrom(at('hag'))(el) && item(el).role === 'participant');
      assert.deepEqual(codes(p), c === guest ? [110] : []);
      assert.equal(item(p).affiliation, 'none');
      assert.equal(mucReason(p), 'A worthy witch indeed!');
    }
    await groupchat(guest, r, 'voiced');
    assert.equal((await member.waitFor(byId('voiced'))).attrs.from, at('hag'));

    await set(owner, r, { nick: 'hag', role: 'visitor' });
    for (const c of [owner, member, guest]) await c.waitFor((el) => presenceFrom(at('hag'))(el) && item(el).role === 'visitor');
  });

  it('a participant may not kick (forbidden); a moderator may not revoke an owner’s voice (not-allowed)', async () => {
    assert.equal(await condition(set(member, r, { nick: 'hag', role: 'none' })), 'forbidden');
    await set(owner, r, { affiliation: 'admin', jid: bare(member) });
    // The member became an admin: a moderator for everyone to see.
    for (const c of [owner, guest]) {
      const p = await c.waitFor((el) => presenceFrom(at('wicca'))(el) && item(el).affiliation === 'admin');
      assert.equal(item(p).role, 'moderator');
    }
    assert.equal(await condition(set(member, r, { nick: 'crone', role: 'visitor' })), 'not-allowed');
    // §9.1: an admin cannot ban an owner; §10.3: nor make owners.
    assert.equal(await condition(set(member, r, { affiliation: 'outcast', jid: bare(owner) })), 'not-allowed');
    assert.equal(await condition(set(member, r, { affiliation: 'owner', jid: bare(guest) })), 'forbidden');
    // §17.4 rule 4: a role and an affiliation in one item.
    assert.equal(await condition(set(owner, r, { nick: 'hag', role: 'participant', affiliation: 'member', jid: bare(guest) })), 'bad-request');
    // §9.1: banning oneself is a conflict; §10.6: so is the only owner giving up ownership.
    assert.equal(await condition(set(owner, r, { affiliation: 'outcast', jid: bare(owner) })), 'conflict');
    assert.equal(await condition(set(owner, r, { affiliation: 'admin', jid: bare(owner) })), 'conflict');
    // Back to member, for the rest.
    await set(owner, r, { affiliation: 'member', jid: bare(member) });
    await guest.waitFor((el) => presenceFrom(at('wicca'))(el) && item(el).affiliation === 'member' && item(el).role === 'participant');
  });

  it('kick (§8.2): the kicked occupant gets 110 and 307 with actor and reason, the others 307 after the moderator’s result', { timeout: 120_000 }, async () => {
    const order: string[] = [];
    owner.xmpp.on('stanza', (el: Element) => {
      if (el.attrs.id === 'kick1') order.push('result');
      if (presenceFrom(at('hag'), 'unavailable')(el)) order.push('presence');
    });
    const result = await owner.iq(xml('iq', { type: 'set', to: r, id: 'kick1' }, xml('query', { xmlns: MUC_ADMIN }, xml('item', { nick: 'hag', role: 'none' }, xml('reason', {}, 'Avaunt, you cullion!')))));
    assert.equal(result.attrs.type, 'result');
    const kicked = await guest.waitFor(presenceFrom(at('hag'), 'unavailable'));
    assert.deepEqual(codes(kicked), [110, 307]);
    assert.deepEqual({ affiliation: item(kicked).affiliation, role: item(kicked).role }, { affiliation: 'none', role: 'none' });
    const x = kicked.getChild('x', MUC_USER)!.getChild('item')!;
    assert.equal(x.getChild('actor')!.attrs.nick, 'crone');
    assert.equal(x.getChildText('reason'), 'Avaunt, you cullion!');
    for (const c of [owner, member]) {
      const p = await c.waitFor(presenceFrom(at('hag'), 'unavailable'));
      assert.deepEqual(codes(p), [307]);
      assert.equal(item(p).role, 'none');
    }
    assert.deepEqual(order, ['result', 'presence']);
    // The kicked user may come back (a kick is not a ban).
    assert.deepEqual(codes(await join(guest, at('hag'))), [110]);
    for (const c of [owner, member]) await c.waitFor(presenceFrom(at('hag')));
  });

  it('ban (§9.1): 301 with affiliation outcast; the user cannot come back (forbidden) and is on the ban list with the reason', { timeout: 120_000 }, async () => {
    await set(owner, r, { affiliation: 'outcast', jid: bare(guest) }, 'Treason');
    const banned = await guest.waitFor(presenceFrom(at('hag'), 'unavailable'));
    assert.deepEqual(codes(banned), [110, 301]);
    assert.deepEqual({ affiliation: item(banned).affiliation, role: item(banned).role }, { affiliation: 'outcast', role: 'none' });
    assert.equal(banned.getChild('x', MUC_USER)!.getChild('item')!.getChildText('reason'), 'Treason');
    for (const c of [owner, member]) {
      const p = await c.waitFor(presenceFrom(at('hag'), 'unavailable'));
      assert.deepEqual(codes(p), [301]);
      assert.equal(item(p).affiliation, 'outcast');
    }
    const again = await join(guest, at('hag'));
    assert.equal(errorCondition(again), 'forbidden');
    assert.deepEqual(await list(owner, r, { affiliation: 'outcast' }), [{ affiliation: 'outcast', jid: bare(guest), reason: 'Treason' }]);
    // Lifting the ban.
    await set(owner, r, { affiliation: 'none', jid: bare(guest) });
    assert.deepEqual(await list(owner, r, { affiliation: 'outcast' }), []);
  });

  it('member and owner lists (§9.5, §10.5): for admins and owners; granting membership to an occupant is broadcast', { timeout: 120_000 }, async () => {
    assert.deepEqual((await list(owner, r, { affiliation: 'member' })).map((i) => i.jid), [bare(member)]);
    assert.deepEqual((await list(owner, r, { affiliation: 'owner' })).map((i) => i.jid), [bare(owner)]);
    assert.equal(await condition(member.iq(xml('iq', { type: 'get', to: r }, xml('query', { xmlns: MUC_ADMIN }, xml('item', { affiliation: 'outcast' }))))), 'forbidden');
    await join(guest, at('hag'));
    await owner.waitFor(presenceFrom(at('hag')));
    await set(owner, r, { affiliation: 'member', jid: bare(guest) });
    // §9.3: a member in a moderated room is a participant.
    const p = await member.waitFor((el) => presenceFrom(at('hag'))(el) && item(el).affiliation === 'member');
    assert.equal(item(p).role, 'participant');
  });
});

const mucReason = (el: Element) => el.getChild('x', MUC_USER)?.getChild('item')?.getChildText('reason');

describe('affiliation and configuration changes that remove occupants (XEP-0045 §9.4, §10.2)', () => {
  it('revoking membership in a members-only room removes the occupant with 321', { timeout: 120_000 }, async () => {
    const [o, m] = [await login('boss'), await login('ex')];
    const r = room('members');
    await createInstant(o, `${r}/boss`, { 'muc#roomconfig_membersonly': '1' });
    await set(o, r, { affiliation: 'member', jid: bare(m) });
    await enter(m, `${r}/ex`);
    await o.waitFor(presenceFrom(`${r}/ex`));
    await set(o, r, { affiliation: 'none', jid: bare(m) });
    const removed = await m.waitFor(presenceFrom(`${r}/ex`, 'unavailable'));
    assert.deepEqual(codes(removed), [110, 321]);
    assert.deepEqual({ affiliation: item(removed).affiliation, role: item(removed).role }, { affiliation: 'none', role: 'none' });
    assert.deepEqual(codes(await o.waitFor(presenceFrom(`${r}/ex`, 'unavailable'))), [321]);
    assert.equal(errorCondition(await join(m, `${r}/ex`)), 'registration-required');
  });

  it('making a room members-only removes non-members with 322; others get the 104 notice; non-anonymous: 172', { timeout: 120_000 }, async () => {
    const [o, m, x] = [await login('conv'), await login('stays'), await login('goes')];
    const r = room('convert');
    await createInstant(o, `${r}/o`);
    await set(o, r, { affiliation: 'member', jid: bare(m) });
    await enter(m, `${r}/m`);
    await enter(x, `${r}/x`);
    await o.waitFor(presenceFrom(`${r}/x`));
    await configure(o, r, { 'muc#roomconfig_membersonly': '1' });
    const out = await x.waitFor(presenceFrom(`${r}/x`, 'unavailable'));
    assert.deepEqual(codes(out), [110, 322]);
    for (const c of [o, m]) assert.deepEqual(codes(await c.waitFor(presenceFrom(`${r}/x`, 'unavailable'))), [322]);
    const notice = await m.waitFor((el) => el.name === 'message' && el.attrs.from === r && !!el.getChild('x', MUC_USER));
    assert.deepEqual(codes(notice), [104]);
    assert.equal(notice.attrs.type, 'groupchat');
    await configure(o, r, { 'muc#roomconfig_whois': 'anyone' });
    assert.deepEqual(codes(await m.waitFor((el) => el.name === 'message' && el.attrs.from === r && codes(el).includes(172))), [172]);
    await configure(o, r, { 'muc#roomconfig_whois': 'moderators', 'muc#roomconfig_roomname': 'Renamed' });
    assert.deepEqual(codes(await m.waitFor((el) => el.name === 'message' && el.attrs.from === r && codes(el).includes(173))), [104, 173]);
  });

  it('the owner list field of the configuration form grants ownership to an occupant (presence with owner/moderator)', { timeout: 120_000 }, async () => {
    const [o, p] = [await login('first'), await login('second')];
    const r = room('owners');
    await createInstant(o, `${r}/o`);
    await enter(p, `${r}/p`);
    await o.waitFor(presenceFrom(`${r}/p`));
    await configure(o, r, { 'muc#roomconfig_roomowners': [bare(o), bare(p)] });
    const seen = await o.waitFor((el) => presenceFrom(`${r}/p`)(el) && item(el).affiliation === 'owner');
    assert.equal(item(seen).role, 'moderator');
    // Now the first owner may step down.
    await set(o, r, { affiliation: 'admin', jid: bare(o) });
    assert.deepEqual((await list(p, r, { affiliation: 'owner' })).map((i) => i.jid), [bare(p)]);
  });
});

describe('voice requests (XEP-0045 §7.13, §8.6)', () => {
  it('a visitor’s request reaches the moderators as an approval form; approving it grants voice', { timeout: 120_000 }, async () => {
    const [o, v] = [await login('mod'), await login('asker')];
    const r = room('voice');
    await createInstant(o, `${r}/mod`, { 'muc#roomconfig_moderatedroom': '1' });
    await enter(v, `${r}/asker`);
    const form = (fields: Record<string, string>, type = 'submit') =>
      xml('x', { xmlns: DATA, type }, ...Object.entries(fields).map(([k, val]) => xml('field', { var: k }, xml('value', {}, val))));
    await v.send(xml('message', { to: r }, form({ FORM_TYPE: 'http://jabber.org/protocol/muc#request', 'muc#role': 'participant' })));
    const approval = await o.waitFor((el) => el.name === 'message' && el.attrs.from === r && !!el.getChild('x', DATA));
    const fields = Object.fromEntries(approval.getChild('x', DATA)!.getChildren('field').map((f) => [f.attrs.var, f.getChildText('value')]));
    assert.deepEqual({ nick: fields['muc#roomnick'], jid: fields['muc#jid'], allow: fields['muc#request_allow'] }, { nick: 'asker', jid: v.jid, allow: 'false' });
    await o.send(xml('message', { to: r }, form({ FORM_TYPE: 'http://jabber.org/protocol/muc#request', 'muc#role': 'participant', 'muc#roomnick': 'asker', 'muc#request_allow': 'true' })));
    const voiced = await v.waitFor((el) => presenceFrom(`${r}/asker`)(el) && item(el).role === 'participant');
    assert.deepEqual(codes(voiced), [110]);
  });
});

describe('destroying a room (XEP-0045 §10.9)', () => {
  it('tells each occupant once with <destroy/>, the alternate venue and the reason; non-owners get forbidden', { timeout: 120_000 }, async () => {
    const [o, a, b] = [await login('heath'), await login('one'), await login('two')];
    const r = room('heath');
    await createInstant(o, `${r}/firstwitch`, { 'muc#roomconfig_persistentroom': '1' });
    await enter(a, `${r}/secondwitch`);
    await enter(b, `${r}/thirdwitch`);
    const destroy = xml('query', { xmlns: MUC_OWNER }, xml('destroy', { jid: 'coven@conference.localhost' }, xml('reason', {}, 'Macbeth doth come.')));
    assert.equal(await condition(a.iq(xml('iq', { type: 'set', to: r }, destroy))), 'forbidden');
    const result = await o.iq(xml('iq', { type: 'set', to: r, id: 'begone' }, xml('query', { xmlns: MUC_OWNER }, xml('destroy', { jid: 'coven@conference.localhost' }, xml('reason', {}, 'Macbeth doth come.')))));
    assert.equal(result.attrs.type, 'result');
    for (const [c, nick] of [[o, 'firstwitch'], [a, 'secondwitch'], [b, 'thirdwitch']] as const) {
      const p = await c.waitFor(presenceFrom(`${r}/${nick}`, 'unavailable'));
      const x = p.getChild('x', MUC_USER)!;
      assert.deepEqual({ ...x.getChild('item')!.attrs }, { affiliation: 'none', role: 'none' });
      assert.equal(x.getChild('destroy')!.attrs.jid, 'coven@conference.localhost');
      assert.equal(x.getChild('destroy')!.getChildText('reason'), 'Macbeth doth come.');
      // §10.9: "SHOULD NOT broadcast presence stanzas of type unavailable from all occupants".
      await c.expectNothing(s, (el) => el.name === 'presence' && el.attrs.type === 'unavailable' && el.attrs.from !== `${r}/${nick}`);
    }
    const items = await o.iq(xml('iq', { type: 'get', to: 'conference.localhost' }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#items' })));
    assert.ok(!items.getChild('query')!.getChildren('item').some((i) => i.attrs.jid === r));
    assert.equal(await condition(o.iq(xml('iq', { type: 'get', to: r }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })))), 'item-not-found');
  });
});
