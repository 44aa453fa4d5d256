// XEP-0313 Message Archive Management with XEP-0359 stanza ids, with real xmpp.js clients: both
// sides archive, the recipient gets the stanza id, queries page both ways with filters, preferences,
// retention by the tenant's `archive` block (moved with the TestClock), and the exact costs.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Element, type TestClient, type TestServer, byName, connectClient, startTestServer, until, xml } from '../support/harness.ts';
import { archiveOf } from '../../lib/extensions/mam/index.ts';
import { offlineOf } from '../../lib/extensions/offline/index.ts';
import { connectMucClient, createInstant, enter } from '../support/muc.ts';

const MAM = 'urn:xmpp:mam:2';
const SID = 'urn:xmpp:sid:0';

let s: TestServer;
let n = 0;
async function user(prefix: string, domain = 'localhost'): Promise<string> {
  const name = `${prefix}${++n}`;
  await s.addUser(`${name}@${domain}`, `pw-${name}`);
  return `${name}@${domain}`;
}
const login = (jid: string, resource = 'r1') => {
  const [username, domain] = jid.split('@');
  return connectClient(s.url, { username, domain, password: `pw-${username}`, resource });
};
async function available(c: TestClient) {
  await c.send(xml('presence'));
  await c.waitFor((el) => el.name === 'presence' && el.attrs.from === c.jid);
}
const chat = (to: string, id: string, body: string, ...extra: Element[]) => xml('message', { to, type: 'chat', id }, xml('body', {}, body), ...extra);
const stanzaIdOf = (m: Element, by: string) => m.getChildren('stanza-id').find((c) => c.attrs.xmlns === SID && c.attrs.by === by)?.attrs.id as string | undefined;

let q = 0;
/** A MAM query (§4): the result messages (in arrival order) and the <fin/>. */
async function query(c: TestClient, fields: Record<string, string> = {}, rsm: Record<string, string> = {}, to?: string) {
  const queryid = `q${++q}`;
  const x = xml('x', { xmlns: 'jabber:x:data', type: 'submit' }, xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', {}, MAM)));
  for (const [k, v] of Object.entries(fields)) x.cnode(xml('field', { var: k }, xml('value', {}, v)));
  const set = xml('set', { xmlns: 'http://jabber.org/protocol/rsm' });
  for (const [k, v] of Object.entries(rsm)) set.cnode(xml(k, {}, v));
  const res = await c.iq(xml('iq', { type: 'set', ...(to ? { to } : {}) }, xml('query', { xmlns: MAM, queryid }, x, set)));
  // Results come before the IQ result on the same stream (§4.2), so they are all here now.
  const results = c.received.filter((m) => m.name === 'message' && m.getChild('result', MAM)?.attrs.queryid === queryid);
  for (const m of results) c.received.splice(c.received.indexOf(m), 1);
  const fin = res.getChild('fin', MAM)!;
  const items = results.map((m) => {
    const result = m.getChild('result', MAM)!;
    const forwarded = result.getChild('forwarded', 'urn:xmpp:forward:0')!;
    return { id: result.attrs.id as string, stamp: forwarded.getChild('delay', 'urn:xmpp:delay')?.attrs.stamp as string, message: forwarded.getChild('message')! };
  });
  const set2 = fin.getChild('set', 'http://jabber.org/protocol/rsm')!;
  return { from: results.map((m) => m.attrs.from as string | undefined), items, bodies: items.map((i) => i.message.getChildText('body')), complete: fin.attrs.complete === 'true', first: set2.getChildText('first'), last: set2.getChildText('last') };
}
async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'accepted';
  } catch (err) {
    return ((err as { condition?: string }).condition ?? String(err)) as string;
  }
}

before(async () => {
  s = await startTestServer({ seedDomains: ['localhost', 'short.example', 'noarchive.example'] });
  await s.server.tenants.put({ domain: 'noarchive.example', enabled: true, archive: { enabled: false } } as never);
  // A tenant that keeps its archive one day (the `archive` block of the tenant item).
  await s.server.tenants.put({ domain: 'short.example', enabled: true, archive: { days: 1 } } as never);
});
after(async () => {
  await s.stop();
});

describe('archiving (XEP-0313 §6.1.1, §3.5) and stanza ids (XEP-0359)', () => {
  it('the account advertises urn:xmpp:mam:2, #extended and urn:xmpp:sid:0 at its bare JID (§3.3.1)', async () => {
    const a = await user('disco');
    const c = await login(a);
    const res = await c.iq(xml('iq', { type: 'get', to: a }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })));
    const features = res.getChild('query')!.getChildren('feature').map((f) => f.attrs.var);
    for (const f of [MAM, 'urn:xmpp:mam:2#extended', SID]) assert.ok(features.includes(f), `${f} in ${features}`);
    await c.stop();
  });

  it('a chat message is in both archives under the id delivered as stanza-id; a forged stanza-id is removed, origin-id kept', async () => {
    const [a, b] = [await user('ann'), await user('ben')];
    const ca = await login(a);
    const cb = await login(b);
    await available(cb);
    await ca.send(
      chat(b, 'm1', 'hello', xml('stanza-id', { xmlns: SID, id: 'forged', by: b }), xml('origin-id', { xmlns: SID, id: 'origin-1' })),
    );
    const got = await cb.waitFor(byName('message', { id: 'm1' }));
    const ids = got.getChildren('stanza-id');
    assert.equal(ids.length, 1, got.toString());
    const id = stanzaIdOf(got, b)!;
    assert.match(id, /^[0-9a-f]{20}$/);
    assert.equal(got.getChild('origin-id', SID)?.attrs.id, 'origin-1');
    // The archive writes follow the post: wait until the sender's frame is fully handled.
    await s.gateway.idle();

    const theirs = await query(cb);
    assert.deepEqual(theirs.items.map((i) => i.id), [id]);
    assert.equal(theirs.bodies[0], 'hello');
    assert.equal(theirs.items[0].message.attrs.from, ca.jid);
    assert.equal(stanzaIdOf(theirs.items[0].message, b), id);
    assert.ok(!Number.isNaN(Date.parse(theirs.items[0].stamp)));
    assert.equal(theirs.complete, true);
    assert.deepEqual([theirs.first, theirs.last], [id, id]);
    const mine = await query(ca);
    assert.deepEqual(mine.items.map((i) => i.id), [id]);
    assert.equal(stanzaIdOf(mine.items[0].message, a), id, 'the sender archive keeps its own stanza id');
    await ca.stop();
    await cb.stop();
  });

  it('a note to self (own bare JID) is archived once, with the account\'s stanza-id', async () => {
    const a = await user('self');
    const c1 = await login(a, 'one');
    const c2 = await login(a, 'two');
    await available(c2);
    await c1.send(chat(a, 'n1', 'remember the milk'));
    const got = await c2.waitFor(byName('message', { id: 'n1' }));
    const id = stanzaIdOf(got, a);
    assert.ok(id);
    await s.gateway.idle();
    assert.deepEqual((await query(c1)).items.map((i) => i.id), [id]);
    assert.deepEqual((await query(c1, { with: a })).bodies, ['remember the milk']);
    await c1.stop();
    await c2.stop();
  });

  it('a chat state without a body gets no stanza-id and is not archived', async () => {
    const [a, b] = [await user('st'), await user('su')];
    const ca = await login(a);
    const cb = await login(b);
    await available(cb);
    await ca.send(xml('message', { to: b, type: 'chat', id: 'cs' }, xml('composing', { xmlns: 'http://jabber.org/protocol/chatstates' })));
    const got = await cb.waitFor(byName('message', { id: 'cs' }));
    assert.equal(got.getChild('stanza-id', SID), undefined);
    await s.gateway.idle();
    assert.deepEqual((await query(cb)).items, []);
    await ca.stop();
    await cb.stop();
  });

  it('a message that goes to offline storage is archived too, and comes out with its stanza-id', async () => {
    const [a, b] = [await user('off'), await user('offr')];
    const ca = await login(a);
    await ca.send(chat(b, 'o1', 'while you were out'));
    await until('the offline message stored', async () => (await offlineOf(s.server).list(b)).length);
    await until('both archives written', async () => (await query(ca)).items.length === 1);
    const cb = await login(b);
    await available(cb);
    const got = await cb.waitFor(byName('message', { id: 'o1' }));
    const id = stanzaIdOf(got, b);
    assert.ok(id);
    assert.deepEqual((await query(cb)).items.map((i) => i.id), [id]);
    await ca.stop();
    await cb.stop();
  });
});

describe('queries (§4) with RSM paging (XEP-0059)', () => {
  let a: string, b: string, c: string, ca: TestClient, cb: TestClient;
  const sent: string[] = [];
  before(async () => {
    [a, b, c] = [await user('pa'), await user('pb'), await user('pc')];
    ca = await login(a);
    cb = await login(b);
    await available(cb);
    // Seven messages, two of them to c (offline), in order; each waits for the one before to be archived.
    for (let i = 0; i < 7; i++) {
      const to = i === 2 || i === 5 ? c : b;
      await ca.send(chat(to, `p${i}`, `msg ${i}`));
      sent.push(`msg ${i}`);
      if (to === b) await cb.waitFor(byName('message', { id: `p${i}` }));
      await until(`message ${i} archived`, async () => (await query(ca)).items.length === i + 1);
    }
  });
  after(async () => {
    await ca.stop();
    await cb.stop();
  });

  it('pages forward with after, and completes on the last page', async () => {
    const p1 = await query(ca, {}, { max: '3' });
    assert.deepEqual(p1.bodies, sent.slice(0, 3));
    assert.equal(p1.complete, false);
    const p2 = await query(ca, {}, { max: '3', after: p1.last! });
    assert.deepEqual(p2.bodies, sent.slice(3, 6));
    const p3 = await query(ca, {}, { max: '3', after: p2.last! });
    assert.deepEqual(p3.bodies, sent.slice(6));
    assert.equal(p3.complete, true);
  });

  it('pages backward from the last page (<before/>), each page in time order', async () => {
    const p1 = await query(ca, {}, { max: '4', before: '' });
    assert.deepEqual(p1.bodies, sent.slice(3));
    assert.equal(p1.complete, false);
    const p2 = await query(ca, {}, { max: '4', before: p1.first! });
    assert.deepEqual(p2.bodies, sent.slice(0, 3));
    assert.equal(p2.complete, true);
  });

  it('filters by with (bare), by time and by ids', async () => {
    const withC = await query(ca, { with: c });
    assert.deepEqual(withC.bodies, ['msg 2', 'msg 5']);
    assert.equal(withC.complete, true);
    const withB = await query(ca, { with: b }, { max: '2', before: '' });
    assert.deepEqual(withB.bodies, ['msg 4', 'msg 6']);
    // Sparse matches: the page reads on past other parties' items (one more Query here).
    let sparse: Awaited<ReturnType<typeof query>> | undefined;
    const cost = await s.cost(async () => (sparse = await query(ca, { with: c }, { max: '1', before: '' })));
    assert.deepEqual([sparse!.bodies, sparse!.complete], [['msg 5'], false]);
    assert.equal(cost.calls['dynamodb:QueryCommand'], 2, JSON.stringify(cost.calls));
    const older = await query(ca, { with: c }, { max: '1', before: sparse!.first! });
    assert.deepEqual([older.bodies, older.complete], [['msg 2'], true]);
    const all = await query(ca);
    const start = all.items[2].stamp;
    const end = all.items[4].stamp;
    assert.deepEqual((await query(ca, { start, end })).bodies.slice(0, 1), ['msg 2']);
    assert.ok((await query(ca, { start, end })).bodies.every((body) => sent.indexOf(body!) >= 2 && sent.indexOf(body!) <= 4));
    assert.deepEqual((await query(ca, { 'after-id': all.items[4].id })).bodies, ['msg 5', 'msg 6']);
  });

  it('an unknown after or before id is item-not-found', async () => {
    const absent = '0000000000010000beef';
    assert.equal(await refusal(query(ca, {}, { after: absent })), 'item-not-found');
    assert.equal(await refusal(query(ca, {}, { before: absent })), 'item-not-found');
    assert.equal(await refusal(query(ca, {}, { after: 'nonsense' })), 'item-not-found');
    assert.equal(await refusal(query(ca, { 'after-id': absent })), 'item-not-found');
    const all = await query(ca);
    assert.equal(await refusal(query(ca, { ids: absent })), 'item-not-found');
    assert.deepEqual((await query(ca, { ids: all.items[3].id })).bodies, ['msg 3']);
  });

  it('<flip-page/> sends the same page newest first (§4.3.4)', async () => {
    const normal = await query(ca, {}, { max: '3', before: '' });
    const qid = 'flipped';
    const res = await ca.iq(
      xml('iq', { type: 'set' }, xml('query', { xmlns: MAM, queryid: qid }, xml('set', { xmlns: 'http://jabber.org/protocol/rsm' }, xml('max', {}, '3'), xml('before')), xml('flip-page'))),
    );
    const results = ca.received.filter((m) => m.getChild('result', MAM)?.attrs.queryid === qid);
    for (const m of results) ca.received.splice(ca.received.indexOf(m), 1);
    assert.deepEqual(results.map((m) => m.getChild('result', MAM)!.attrs.id), normal.items.map((i) => i.id).reverse());
    assert.equal(res.getChild('fin', MAM)?.getChild('set')?.getChildText('first'), normal.first);
  });

  it('answers the form (§4.1.1) and the metadata (#extended)', async () => {
    const form = await ca.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: MAM })));
    const vars = form.getChild('query', MAM)!.getChild('x', 'jabber:x:data')!.getChildren('field').map((f) => f.attrs.var);
    assert.deepEqual(vars, ['FORM_TYPE', 'with', 'start', 'end', 'after-id', 'before-id', 'ids']);
    assert.equal(await refusal(query(ca, { 'include-groupchat': 'true' })), 'feature-not-implemented');
    const all = await query(ca);
    const meta = (await ca.iq(xml('iq', { type: 'get' }, xml('metadata', { xmlns: MAM })))).getChild('metadata', MAM)!;
    assert.equal(meta.getChild('start')?.attrs.id, all.items[0].id);
    assert.equal(meta.getChild('end')?.attrs.id, all.items[6].id);
  });

  it('costs one Query for a page without with, and one post per result plus the IQ result', async () => {
    const first = await query(ca, {}, { max: '2' });
    const cost = await s.cost(() => query(ca, {}, { max: '2', after: first.last! }));
    assert.deepEqual({ reads: cost.reads, writes: cost.writes, posts: cost.posts }, { reads: 1, writes: 0, posts: 3 }, JSON.stringify(cost.calls));
  });

  it('costs two one-item Queries for the metadata, one write to set preferences, one read to get them', async () => {
    const meta = await s.cost(() => ca.iq(xml('iq', { type: 'get' }, xml('metadata', { xmlns: MAM }))));
    assert.deepEqual({ reads: meta.reads, writes: meta.writes, posts: meta.posts }, { reads: 2, writes: 0, posts: 1 }, JSON.stringify(meta.calls));
    const set = await s.cost(() => ca.iq(xml('iq', { type: 'set' }, xml('prefs', { xmlns: MAM, default: 'always' }, xml('always'), xml('never')))));
    assert.deepEqual({ reads: set.reads, writes: set.writes, posts: set.posts }, { reads: 0, writes: 1, posts: 1 }, JSON.stringify(set.calls));
    const get = await s.cost(() => ca.iq(xml('iq', { type: 'get' }, xml('prefs', { xmlns: MAM }))));
    assert.deepEqual({ reads: get.reads, writes: get.writes, posts: get.posts }, { reads: 1, writes: 0, posts: 1 }, JSON.stringify(get.calls));
  });
});

describe('costs of archiving', () => {
  it('a chat message between online users: 2 reads (sessions, both prefs), 1 write (both archive items in one BatchWriteItem), 1 post', async () => {
    const [a, b] = [await user('ca'), await user('cb')];
    const ca = await login(a);
    const cb = await login(b);
    await available(cb);
    const cost = await s.cost(async () => {
      await ca.send(chat(b, 'c1', 'counted'));
      await cb.waitFor(byName('message', { id: 'c1' }));
    });
    assert.deepEqual({ reads: cost.reads, writes: cost.writes, posts: cost.posts }, { reads: 2, writes: 1, posts: 1 }, JSON.stringify(cost.calls));
    assert.equal(cost.calls['dynamodb:BatchWriteItemCommand'], 1, 'both archive items in one call');
    assert.equal(cost.calls['dynamodb:PutItemCommand'], undefined, JSON.stringify(cost.calls));
    assert.equal(cost.calls['dynamodb:BatchGetItemCommand'], 1, 'both accounts\' preferences in one call');
    assert.deepEqual((await query(ca)).bodies, ['counted']);
    assert.deepEqual((await query(cb)).bodies, ['counted']);
    await ca.stop();
    await cb.stop();
  });

  it('a message only one archive keeps (the sender\'s preferences say never): one PutItem', async () => {
    const [a, b] = [await user('cq'), await user('cr')];
    const ca = await login(a);
    const cb = await login(b);
    await available(cb);
    await ca.iq(xml('iq', { type: 'set' }, xml('prefs', { xmlns: MAM, default: 'never' }, xml('always'), xml('never'))));
    const cost = await s.cost(async () => {
      await ca.send(chat(b, 'c3', 'one side'));
      await cb.waitFor(byName('message', { id: 'c3' }));
    });
    assert.deepEqual({ reads: cost.reads, writes: cost.writes, posts: cost.posts }, { reads: 2, writes: 1, posts: 1 }, JSON.stringify(cost.calls));
    assert.equal(cost.calls['dynamodb:PutItemCommand'], 1, JSON.stringify(cost.calls));
    assert.deepEqual((await query(ca)).bodies, []);
    assert.deepEqual((await query(cb)).bodies, ['one side']);
    await ca.stop();
    await cb.stop();
  });

  it('a message to an offline user: 3 reads (sessions, account, prefs), 2 writes (offline item; both archive items in one BatchWriteItem), no post', async () => {
    const [a, b] = [await user('co'), await user('cp')];
    const ca = await login(a);
    const cost = await s.cost(async () => {
      await ca.send(chat(b, 'c2', 'counted later'));
      // Processed in order: when the ping is answered (one post), the message was handled.
      await ca.roundTrip();
    });
    assert.deepEqual({ reads: cost.reads, writes: cost.writes, posts: cost.posts - 1 }, { reads: 3, writes: 2, posts: 0 }, JSON.stringify(cost.calls));
    assert.equal(cost.calls['dynamodb:BatchWriteItemCommand'], 1, JSON.stringify(cost.calls));
    await ca.stop();
  });
});

describe('preferences (XEP-0441)', () => {
  it('default never keeps the account out of its own archive, not out of the other side', async () => {
    const [a, b] = [await user('pn'), await user('po')];
    const ca = await login(a);
    const cb = await login(b);
    await available(cb);
    const set = await ca.iq(xml('iq', { type: 'set' }, xml('prefs', { xmlns: MAM, default: 'never' }, xml('always'), xml('never'))));
    assert.equal(set.getChild('prefs', MAM)?.attrs.default, 'never');
    const got = await ca.iq(xml('iq', { type: 'get' }, xml('prefs', { xmlns: MAM })));
    assert.equal(got.getChild('prefs', MAM)?.attrs.default, 'never');
    await ca.send(chat(b, 'n1', 'not kept by me'));
    await cb.waitFor(byName('message', { id: 'n1' }));
    await until('the recipient archive written', async () => (await query(cb)).items.length === 1);
    await s.gateway.idle();
    assert.deepEqual((await query(ca)).items, []);
    // An always list wins over the default.
    await ca.iq(xml('iq', { type: 'set' }, xml('prefs', { xmlns: MAM, default: 'never' }, xml('always', {}, xml('jid', {}, b)), xml('never'))));
    await ca.send(chat(b, 'n2', 'kept by me'));
    await cb.waitFor(byName('message', { id: 'n2' }));
    await until('the sender archive written', async () => (await query(ca)).items.length === 1);
    assert.deepEqual((await query(ca)).bodies, ['kept by me']);
    await ca.stop();
    await cb.stop();
  });

  it('never for one JID, default always', async () => {
    const [a, b] = [await user('pq'), await user('pr')];
    const ca = await login(a);
    const cb = await login(b);
    await available(cb);
    await cb.iq(xml('iq', { type: 'set' }, xml('prefs', { xmlns: MAM, default: 'always' }, xml('always'), xml('never', {}, xml('jid', {}, a)))));
    await ca.send(chat(b, 'v1', 'b does not keep this'));
    await cb.waitFor(byName('message', { id: 'v1' }));
    await until('the sender archive written', async () => (await query(ca)).items.length === 1);
    await s.gateway.idle();
    assert.deepEqual((await query(cb)).items, []);
    await ca.stop();
    await cb.stop();
  });
});

describe('retention (the tenant `archive` block)', () => {
  it('archive.enabled false: no features, no stanza-id, nothing archived, queries unavailable', async () => {
    const [a, b] = [await user('xa', 'noarchive.example'), await user('xb', 'noarchive.example')];
    const ca = await login(a);
    const cb = await login(b);
    await available(cb);
    const info = await ca.iq(xml('iq', { type: 'get', to: a }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })));
    assert.ok(!info.getChild('query')!.getChildren('feature').some((f) => f.attrs.var === MAM));
    const cost = await s.cost(async () => {
      await ca.send(chat(b, 'x1', 'not archived'));
      const got = await cb.waitFor(byName('message', { id: 'x1' }));
      assert.equal(got.getChild('stanza-id', SID), undefined);
    });
    assert.deepEqual({ reads: cost.reads, writes: cost.writes, posts: cost.posts }, { reads: 1, writes: 0, posts: 1 }, JSON.stringify(cost.calls));
    assert.equal(await refusal(query(ca)), 'service-unavailable');
    await ca.stop();
    await cb.stop();
  });

  it('messages older than the tenant\'s days are not returned, and carry the expiry attribute', async () => {
    const [a, b] = [await user('ra', 'short.example'), await user('rb', 'short.example')];
    const ca = await login(a);
    const cb = await login(b);
    await available(cb);
    await ca.send(chat(b, 'r1', 'soon gone'));
    await cb.waitFor(byName('message', { id: 'r1' }));
    await until('archived', async () => (await query(ca)).items.length === 1);
    const written = s.clock.now();
    const page = await archiveOf(s.server).page(a, { from: '0', to: 'g', forward: true, max: 10, anchors: [] }, written);
    assert.ok('page' in page && page.page.length === 1);
    const expiresAt = 'page' in page ? page.page[0].expiresAt : 0;
    assert.ok(Math.abs(expiresAt - (written + 24 * 3600_000)) < 60_000, `expires a day after writing: ${expiresAt - written}`);
    s.clock.advance(24 * 3600_000 + 60_000);
    const later = await query(ca);
    assert.deepEqual(later.items, []);
    assert.equal(later.complete, true);
    const meta = (await ca.iq(xml('iq', { type: 'get' }, xml('metadata', { xmlns: MAM })))).getChild('metadata', MAM)!;
    assert.equal(meta.getChild('start'), undefined);
    await ca.stop();
    await cb.stop();
  });
});


describe('room archives (§3.3.2): the room history, at the room JID', () => {
  it('groupchat messages carry the room stanza-id; the room archive pages them; history on join carries the same ids', async () => {
    const [a, b, c] = [await user('ra'), await user('rb'), await user('rc')];
    const room = `archive${++n}@conference.localhost`;
    const mc = (jid: string) => connectMucClient(s.url, { username: jid.split('@')[0], password: `pw-${jid.split('@')[0]}` });
    const [ca, cb, cc] = [await mc(a), await mc(b), await mc(c)];
    // Persistent rooms archive by default (muc#roomconfig_enablearchiving).
    await createInstant(ca, `${room}/alice`, { 'muc#roomconfig_persistentroom': '1' });
    await enter(cb, `${room}/bob`);
    const info = await cc.iq(xml('iq', { type: 'get', to: room }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })));
    assert.ok(info.getChild('query')!.getChildren('feature').some((f) => f.attrs.var === MAM));

    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const forged = i === 0 ? [xml('stanza-id', { xmlns: SID, id: 'forged', by: room })] : [];
      await ca.send(xml('message', { to: room, type: 'groupchat', id: `g${i}` }, xml('body', {}, `room ${i}`), ...forged));
      const got = await cb.waitFor(byName('message', { id: `g${i}`, type: 'groupchat' }));
      assert.equal(got.getChildren('stanza-id').length, 1, got.toString());
      ids.push(stanzaIdOf(got, room)!);
      assert.match(ids[i], /^[0-9a-f]{20}$/);
    }
    // History is written after the reflections: wait until the sender's frames are fully handled.
    await s.gateway.idle();
    // Anyone who may enter an open room may read its archive; results come from the room.
    const all = await query(cc, {}, {}, room);
    assert.deepEqual(all.items.map((i) => i.id), ids);
    assert.deepEqual(all.bodies, ['room 0', 'room 1', 'room 2']);
    assert.ok(all.from.every((f) => f === room));
    assert.equal(all.items[0].message.attrs.from, `${room}/alice`);
    const last = await query(cc, {}, { max: '2', before: '' }, room);
    assert.deepEqual(last.bodies, ['room 1', 'room 2']);
    assert.equal(last.complete, false);
    const before = await query(cc, {}, { max: '2', before: last.first! }, room);
    assert.deepEqual([before.bodies, before.complete], [['room 0'], true]);
    assert.deepEqual((await query(cc, { with: `${room}/bob` }, {}, room)).items, []);
    assert.equal(await refusal(query(cc, {}, { after: '0000000000010000beef' }, room)), 'item-not-found');

    const cost = await s.cost(() => query(cc, {}, { max: '2', after: ids[0] }, room));
    // The room item (who may read) and one Query of its history; two results and the IQ result.
    assert.deepEqual({ reads: cost.reads, writes: cost.writes, posts: cost.posts }, { reads: 2, writes: 0, posts: 3 }, JSON.stringify(cost.calls));

    // History on join is the same archive: the same stanza ids.
    await cc.send(xml('presence', { to: `${room}/carol` }, xml('x', { xmlns: 'http://jabber.org/protocol/muc' })));
    const history: string[] = [];
    for (let i = 0; i < 3; i++) history.push(stanzaIdOf(await cc.waitFor(byName('message', { id: `g${i}` })), room)!);
    assert.deepEqual(history, ids);
    for (const x of [ca, cb, cc]) await x.stop();
  });

  it('a temporary room keeps no archive unless muc#roomconfig_enablearchiving is on', async () => {
    const [a, d] = [await user('rt'), await user('ru')];
    const room = `temp${++n}@conference.localhost`;
    const ca = await connectMucClient(s.url, { username: a.split('@')[0], password: `pw-${a.split('@')[0]}` });
    const cd = await login(d);
    await createInstant(ca, `${room}/owner`);
    const features = async () =>
      (await cd.iq(xml('iq', { type: 'get', to: room }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })))).getChild('query')!.getChildren('feature').map((f) => f.attrs.var);
    assert.ok(!(await features()).includes(MAM));
    await ca.send(xml('message', { to: room, type: 'groupchat', id: 't1' }, xml('body', {}, 'not archived')));
    assert.equal((await ca.waitFor(byName('message', { id: 't1' }))).getChild('stanza-id', SID), undefined);
    assert.equal(await refusal(query(cd, {}, {}, room)), 'service-unavailable');
    const form = await ca.iq(xml('iq', { type: 'get', to: room }, xml('query', { xmlns: 'http://jabber.org/protocol/muc#owner' })));
    const field = form.getChild('query')!.getChild('x', 'jabber:x:data')!.getChildren('field').find((f) => f.attrs.var === 'muc#roomconfig_enablearchiving');
    assert.equal(field?.getChildText('value'), '0');
    await ca.iq(xml('iq', { type: 'set', to: room }, xml('query', { xmlns: 'http://jabber.org/protocol/muc#owner' }, xml('x', { xmlns: 'jabber:x:data', type: 'submit' }, xml('field', { var: 'FORM_TYPE' }, xml('value', {}, 'http://jabber.org/protocol/muc#roomconfig')), xml('field', { var: 'muc#roomconfig_enablearchiving' }, xml('value', {}, '1'))))));
    assert.ok((await features()).includes(MAM));
    await ca.send(xml('message', { to: room, type: 'groupchat', id: 't2' }, xml('body', {}, 'archived')));
    const id = stanzaIdOf(await ca.waitFor(byName('message', { id: 't2' })), room);
    assert.ok(id);
    await s.gateway.idle();
    // History written before archiving was on is there too: the room's history is its archive.
    assert.deepEqual((await query(cd, {}, {}, room)).bodies, ['not archived', 'archived']);
    await ca.stop();
    await cd.stop();
  });

  it('a members-only room refuses a non-member (forbidden); an unknown room is item-not-found', async () => {
    const [a, d] = [await user('rm'), await user('rn')];
    const room = `closed${++n}@conference.localhost`;
    const ca = await connectMucClient(s.url, { username: a.split('@')[0], password: `pw-${a.split('@')[0]}` });
    const cd = await login(d);
    await createInstant(ca, `${room}/owner`, { 'muc#roomconfig_membersonly': '1', 'muc#roomconfig_persistentroom': '1' });
    assert.equal(await refusal(query(cd, {}, {}, room)), 'forbidden');
    assert.equal(await refusal(query(cd, {}, {}, `nosuchroom${n}@conference.localhost`)), 'item-not-found');
    await ca.stop();
    await cd.stop();
  });
});
