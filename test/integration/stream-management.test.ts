// XEP-0198 Stream Management with exact frames (RawClient): the stream feature, <enable/> and
// <enabled/>, acks counted both ways with the wrap at 2^32, the server's batched <r/>, resumption on
// a new WebSocket with the unacknowledged stanzas resent in order and once, refused resumptions, a
// detached session kept for the resumption time and then ended into offline storage, and what each
// step costs in DynamoDB calls and posts (README "Stream management").
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { SETTLED_UNMANAGED_MS, smStoreOf } from '../../lib/extensions/stream-management/index.ts';
import { offlineOf } from '../../lib/extensions/offline/index.ts';
import { RawClient, type TestServer, byName, startTestServer, until, type Element } from '../support/harness.ts';

const SM = 'urn:xmpp:sm:3';
const OPEN = '<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="localhost" version="1.0"/>';

let s: TestServer;
let n = 0;
async function user(prefix: string): Promise<string> {
  const name = `${prefix}${++n}`;
  await s.addUser(`${name}@localhost`);
  return name;
}

/** Opens, authenticates (PLAIN) and restarts the stream; returns the features after authentication. */
async function authenticate(c: RawClient, name: string): Promise<Element> {
  c.send(OPEN);
  await c.next(byName('stream:features'));
  c.send(`<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="PLAIN">${Buffer.from(`\0${name}\0secret`).toString('base64')}</auth>`);
  await c.next(byName('success'));
  c.send(OPEN);
  return c.next(byName('stream:features'));
}

const isSm = (name: string) => (el: Element) => el.name === name && el.attrs.xmlns === SM;
/** A logged-in raw client with stream management enabled (with resumption unless told otherwise). */
async function managed(name: string, resource = 'phone', resume = true): Promise<{ c: RawClient; id: string; enabled: Element }> {
  const c = await RawClient.connect(s.url);
  await c.login(name, 'secret', resource);
  c.send(`<enable xmlns="${SM}"${resume ? ' resume="true"' : ''}/>`);
  const enabled = await c.next((el) => el.attrs.xmlns === SM);
  assert.equal(enabled.name, 'enabled', enabled.toString());
  return { c, id: enabled.attrs.id, enabled };
}
/** A chat message to a full JID (`name/resource`) or an account. */
const chat = (to: string, id: string, body = id) => {
  const [local, resource] = to.split('/');
  return `<message xmlns="jabber:client" to="${local}@localhost${resource ? `/${resource}` : ''}" type="chat" id="${id}"><body>${body}</body></message>`;
};
const idsOf = (q: string[]) => q.map((x) => /id="([^"]+)"/.exec(x)?.[1]);
const isMsg = (id: string) => (el: Element) => el.name === 'message' && el.attrs.id === id;
/** Asks the server for its count (<r/>) and returns its <a h/>. */
async function serverH(c: RawClient): Promise<number> {
  c.send(`<r xmlns="${SM}"/>`);
  return Number((await c.next(isSm('a'))).attrs.h);
}
/** A ping round trip: everything the client sent before it was processed. */
let pings = 0;
async function roundTrip(c: RawClient): Promise<void> {
  const id = `rt${++pings}`;
  c.send(`<iq xmlns="jabber:client" type="get" id="${id}" to="localhost"><ping xmlns="urn:xmpp:ping"/></iq>`);
  await c.next((el) => el.name === 'iq' && el.attrs.id === id);
}
const smItem = (name: string, id: string) => smStoreOf(s.server).get(`${name}@localhost`, id, s.clock.now());

before(async () => {
  s = await startTestServer({ tenantWatchMs: 3_600_000 });
  const tenant = (await s.server.tenants.get('localhost', 0))!;
  await s.server.tenants.put({ ...tenant, features: [...(tenant.features ?? []), 'sm', 'carbons'] });
});
after(() => s.stop());

describe('XEP-0198 stream management', () => {
  it('offers <sm/> after authentication only; <enable/> before binding gets <failed><unexpected-request/> (§3)', async () => {
    const name = await user('feat');
    const c = await RawClient.connect(s.url);
    c.send(OPEN);
    const pre = await c.next(byName('stream:features'));
    assert.equal(pre.getChild('sm', SM), undefined);
    c.send(`<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="PLAIN">${Buffer.from(`\0${name}\0secret`).toString('base64')}</auth>`);
    await c.next(byName('success'));
    c.send(OPEN);
    const post = await c.next(byName('stream:features'));
    assert.ok(post.getChild('sm', SM), post.toString());
    c.send(`<enable xmlns="${SM}"/>`);
    const failed = await c.next(isSm('failed'));
    assert.ok(failed.getChild('unexpected-request', 'urn:ietf:params:xml:ns:xmpp-stanzas'), failed.toString());
    c.ws.close();
  });

  it('<enable resume/> gets <enabled id resume max=300/>; a second <enable/> gets <failed/>; without resume no resume or max', async () => {
    const name = await user('en');
    const { c, enabled } = await managed(name);
    assert.equal(enabled.attrs.resume, 'true');
    assert.equal(enabled.attrs.max, '300');
    assert.ok(enabled.attrs.id.length >= 16);
    c.send(`<enable xmlns="${SM}" resume="true"/>`);
    assert.ok((await c.next(isSm('failed'))).getChild('unexpected-request'));
    const plain = await managed(name, 'desk', false);
    assert.equal(plain.enabled.attrs.resume, undefined);
    assert.equal(plain.enabled.attrs.max, undefined);
    c.ws.close();
    plain.c.ws.close();
  });

  it('counts both ways: <a h/> answers the stanzas handled from the client; the client\'s <a h/> empties the queue; a too-high h is a stream error (§4)', async () => {
    const [alice, bob] = [await user('alice'), await user('bob')];
    const a = await managed(alice);
    const b = await RawClient.connect(s.url);
    await b.login(bob);
    assert.equal(await serverH(a.c), 0);
    a.c.send(chat(bob, 'a1'));
    a.c.send(chat(bob, 'a2'));
    await roundTrip(a.c);
    assert.equal(await serverH(a.c), 3, 'two messages and a ping');
    for (const id of ['b1', 'b2', 'b3']) b.send(chat(`${alice}/phone`, id));
    for (const id of ['b1', 'b2', 'b3']) await a.c.next(isMsg(id));
    // Counted and kept in order: the ping's result and the three messages (<a/> is no stanza).
    const before = (await smItem(alice, a.id))!;
    assert.deepEqual({ out: before.out, acked: before.acked, q: idsOf(before.q) }, { out: 4, acked: 0, q: ['rt1', 'b1', 'b2', 'b3'] });
    a.c.send(`<a xmlns="${SM}" h="3"/>`);
    await roundTrip(a.c);
    const after = (await smItem(alice, a.id))!;
    assert.deepEqual({ out: after.out, acked: after.acked, q: idsOf(after.q) }, { out: 5, acked: 3, q: ['b3', 'rt2'] });
    a.c.send(`<a xmlns="${SM}" h="${after.out + 1}"/>`);
    const err = await a.c.next(byName('stream:error'));
    assert.ok(err.getChild('undefined-condition'), err.toString());
    const hc = err.getChild('handled-count-too-high', SM)!;
    assert.deepEqual([hc.attrs.h, hc.attrs['send-count']], [String(after.out + 1), String(after.out)]);
    await a.c.closed;
    b.ws.close();
  });

  it('counts wrap at 2^32 both ways (§4)', async () => {
    const [alice, bob] = [await user('wrap'), await user('wrapb')];
    const a = await managed(alice);
    const b = await RawClient.connect(s.url);
    await b.login(bob);
    // Near the end of the counters' range: 2^32 - 1 handled, 2^32 - 1 sent and acknowledged.
    await s.server.db.send(
      new UpdateCommand({
        TableName: s.server.table,
        Key: { pk: `sm#${alice}@localhost`, sk: a.id },
        UpdateExpression: 'SET #in = :max, #out = :max, acked = :max',
        ExpressionAttributeNames: { '#in': 'in', '#out': 'out' },
        ExpressionAttributeValues: { ':max': 2 ** 32 - 1 },
      }),
    );
    assert.equal(await serverH(a.c), 4294967295);
    a.c.send(chat(bob, 'w1'));
    assert.equal(await serverH(a.c), 0, 'one more stanza handled: h wraps to 0');
    b.send(chat(`${alice}/phone`, 'w2'));
    b.send(chat(`${alice}/phone`, 'w3'));
    await a.c.next(isMsg('w3'));
    a.c.send(`<a xmlns="${SM}" h="0"/>`);
    await roundTrip(a.c);
    const item = (await smItem(alice, a.id))!;
    assert.deepEqual({ acked: item.acked, q: idsOf(item.q) }, { acked: 2 ** 32, q: ['w3', `rt${pings}`] }, 'h=0 acknowledges stanza number 2^32');
    a.c.ws.close();
    b.ws.close();
  });

  it('a dropped connection leaves the session detached; <resume/> on a new WebSocket gets <resumed h/> and every unacknowledged stanza, in order, once; the old socket\'s kept stanzas are not in offline storage (§5)', async () => {
    const [alice, bob] = [await user('res'), await user('resb')];
    const a = await managed(alice);
    a.c.send(`<presence xmlns="jabber:client"/>`);
    await a.c.next((el) => el.name === 'presence');
    const b = await RawClient.connect(s.url);
    await b.login(bob);
    for (let i = 1; i <= 5; i++) b.send(chat(`${alice}/phone`, `m${i}`));
    await a.c.next(isMsg('m5'));
    a.c.send(chat(`${bob}/raw`, 'from-a1'));
    a.c.send(`<a xmlns="${SM}" h="3"/>`);
    await roundTrip(a.c);
    // The network goes: no </close>.
    a.c.ws.terminate();
    await until('the session to be detached', async () => (await smItem(alice, a.id))?.detachedUntil);
    const entry = (await s.server.sessions.list(`${alice}@localhost`)).find((e) => e.resource === 'phone');
    assert.ok(entry, 'the session entry stays');
    // Stanzas for the detached session are kept: not posted, not stored offline, not bounced.
    for (let i = 6; i <= 8; i++) b.send(chat(`${alice}/phone`, `m${i}`));
    b.send(chat(alice, 'm9'));
    await roundTrip(b);
    assert.equal(b.frames.filter((f) => f.includes('type="error"')).length, 0, b.frames.join('\n'));
    assert.deepEqual(await offlineOf(s.server).list(`${alice}@localhost`), []);

    const c = await RawClient.connect(s.url);
    await authenticate(c, alice);
    let resumed!: Element;
    const resume = await s.cost(async () => {
      c.send(`<resume xmlns="${SM}" previd="${a.id}" h="3"/>`);
      resumed = await c.next(isSm('resumed'));
      await c.next(isMsg('m9'));
    });
    assert.equal(resumed.attrs.previd, a.id);
    assert.equal(resumed.attrs.h, '3', 'the presence, the message and the ping from the old connection');
    const got = c.frames.map((f) => /<message[^>]* id="([^"]+)"/.exec(f)?.[1]).filter(Boolean);
    assert.deepEqual(got, ['m3', 'm4', 'm5', 'm6', 'm7', 'm8', 'm9']);
    // The resumed session is the same session: bound, same resource, and it sends and receives.
    c.send(chat(`${bob}/raw`, 'from-a2'));
    assert.equal((await b.next(isMsg('from-a2'))).attrs.from, `${alice}@localhost/phone`);
    assert.deepEqual(b.frames.map((f) => /<message[^>]* id="(from-a\d)"/.exec(f)?.[1]).filter(Boolean), ['from-a1', 'from-a2']);
    // Resume: reads the new connection item (as any frame does), the stream item, the session item,
    // the old connection item and, once that is fenced off, the stream item again; writes the stream
    // item, the session entry, the connection item, deletes the old tombstone and releases the held
    // stanzas (h=3 was acknowledged before the drop, so no trim); posts <resumed/>, seven messages
    // and the ping's result.
    assert.deepEqual(
      { reads: resume.reads, writes: resume.writes, posts: resume.posts },
      { reads: 5, writes: 5, posts: 1 + 8 },
      JSON.stringify(resume.calls),
    );
    const item = (await smItem(alice, a.id))!;
    assert.equal(item.detachedUntil, undefined);
    assert.equal(item.connectionId, (await s.server.sessions.list(`${alice}@localhost`)).find((e) => e.resource === 'phone')!.connectionId);
    c.ws.close();
    b.ws.close();
  });

  it('a resume with an unknown id, or with another account\'s id, gets <failed><item-not-found/> and the stream can still bind (§5)', async () => {
    const [alice, mallory] = [await user('own'), await user('mal')];
    const a = await managed(alice);
    a.c.ws.terminate();
    await until('the session to be detached', async () => (await smItem(alice, a.id))?.detachedUntil);
    for (const [name, previd] of [
      [alice, 'no-such-id'],
      [mallory, a.id],
    ]) {
      const c = await RawClient.connect(s.url);
      await authenticate(c, name);
      c.send(`<resume xmlns="${SM}" previd="${previd}" h="0"/>`);
      const failed = await c.next(isSm('failed'));
      assert.ok(failed.getChild('item-not-found', 'urn:ietf:params:xml:ns:xmpp-stanzas'), failed.toString());
      c.send(`<iq xmlns="jabber:client" type="set" id="bind"><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"><resource>other</resource></bind></iq>`);
      assert.equal((await c.next((el) => el.attrs.id === 'bind')).attrs.type, 'result');
      c.ws.close();
    }
    // Alice's session is still detached and hers.
    assert.ok((await smItem(alice, a.id))?.detachedUntil);
  });

  it('when the resumption time runs out, the sweeper ends the session: unavailable to contacts, kept messages to offline storage, and a late resume fails', async () => {
    const [alice, bob] = [await user('exp'), await user('expb')];
    const a = await managed(alice);
    a.c.send(`<presence xmlns="jabber:client"/>`);
    await roundTrip(a.c);
    const b = await RawClient.connect(s.url);
    await b.login(bob);
    b.send(chat(`${alice}/phone`, 'e1'));
    await a.c.next(isMsg('e1'));
    a.c.ws.terminate();
    await until('the session to be detached', async () => (await smItem(alice, a.id))?.detachedUntil);
    b.send(chat(`${alice}/phone`, 'e2'));
    b.send(chat(alice, 'e3'));
    await roundTrip(b);
    assert.deepEqual(await offlineOf(s.server).list(`${alice}@localhost`), []);
    s.clock.advance(299_000);
    await s.server.sweep();
    assert.ok((await s.server.sessions.list(`${alice}@localhost`, s.clock.now())).length, 'still kept before the time is over');
    s.clock.advance(2_000);
    await s.server.sweep();
    assert.deepEqual(await s.server.sessions.list(`${alice}@localhost`, s.clock.now()), []);
    const stored = (await offlineOf(s.server).list(`${alice}@localhost`)).map((m) => /id="([^"]+)"/.exec(m.xml)?.[1]);
    assert.deepEqual(stored, ['e1', 'e2', 'e3'], 'never acknowledged: e1 too');
    const c = await RawClient.connect(s.url);
    await authenticate(c, alice);
    c.send(`<resume xmlns="${SM}" previd="${a.id}" h="1"/>`);
    assert.ok((await c.next(isSm('failed'))).getChild('item-not-found'));
    c.ws.close();
    b.ws.close();
  });

  it('costs (README "Stream management"): a stanza to a managed session one UpdateItem more, one from it one more; <r/> one read and a post; <a/> one read and one write; the server\'s <r/> once per 10 stanzas', async () => {
    const [alice, plain, bob] = [await user('cost'), await user('costp'), await user('costb')];
    const a = await managed(alice);
    const p = await RawClient.connect(s.url);
    await p.login(plain, 'secret', 'phone');
    const b = await RawClient.connect(s.url);
    await b.login(bob);
    const deliver = async (to: RawClient, name: string, id: string) =>
      s.cost(async () => {
        b.send(chat(`${name}/phone`, id));
        await to.next(isMsg(id));
      });
    await deliver(a.c, alice, 'warm-a');
    await deliver(p, plain, 'warm-p');
    const toPlain = await deliver(p, plain, 'c1');
    const toManaged = await deliver(a.c, alice, 'c2');
    assert.deepEqual(
      { reads: toManaged.reads - toPlain.reads, writes: toManaged.writes - toPlain.writes, posts: toManaged.posts - toPlain.posts },
      { reads: 0, writes: 1, posts: 0 },
      `${JSON.stringify(toPlain.calls)} vs ${JSON.stringify(toManaged.calls)}`,
    );
    const send = async (from: RawClient, id: string) =>
      s.cost(async () => {
        from.send(chat(`${bob}/raw`, id));
        await b.next(isMsg(id));
      });
    // A session that has not enabled yet is read with each frame until its window for <enable/> is
    // over (no process may cache it as unmanaged before): one GetItem more, then none.
    const fromYoung = await send(p, 'c3y');
    s.clock.advance(SETTLED_UNMANAGED_MS);
    await send(p, 'c3w');
    const fromPlain = await send(p, 'c3');
    assert.deepEqual({ reads: fromYoung.reads - fromPlain.reads, writes: fromYoung.writes - fromPlain.writes }, { reads: 1, writes: 0 }, JSON.stringify(fromYoung.calls));
    const fromManaged = await send(a.c, 'c4');
    assert.deepEqual({ reads: fromManaged.reads - fromPlain.reads, writes: fromManaged.writes - fromPlain.writes }, { reads: 0, writes: 1 });

    const r = await s.cost(() => serverH(a.c));
    assert.deepEqual(r.calls, { 'dynamodb:GetItemCommand': 1, 'management:PostToConnectionCommand': 1 });
    const out = (await smItem(alice, a.id))!.out;
    const ack = await s.cost(async () => {
      a.c.send(`<a xmlns="${SM}" h="${out}"/>`);
      await roundTrip(a.c);
    });
    // The ack: one read and one write. The ping after it: counted in (one write), its result counted
    // and kept (one write) and posted.
    assert.deepEqual(ack.calls, { 'dynamodb:GetItemCommand': 1, 'dynamodb:UpdateItemCommand': 1 + 2, 'management:PostToConnectionCommand': 1 });
    assert.equal((await smItem(alice, a.id))!.acked, out);

    // The server asks for an ack with every 10th unacknowledged stanza: 2 requests for 25 stanzas.
    const requestsBefore = a.c.frames.filter((f) => f.startsWith('<r ')).length;
    for (let i = 1; i <= 25; i++) b.send(chat(`${alice}/phone`, `burst${i}`));
    await a.c.next(isMsg('burst25'));
    assert.equal(a.c.frames.filter((f) => f.startsWith('<r ')).length - requestsBefore, 2);
    a.c.ws.close();
    p.ws.close();
    b.ws.close();
  });

  it('a resumed session keeps its client state (XEP-0352) and carbons (XEP-0280)', async () => {
    const [alice, bob] = [await user('state'), await user('stateb')];
    const a = await managed(alice);
    a.c.send(`<presence xmlns="jabber:client"/>`);
    await a.c.next((el) => el.name === 'presence');
    a.c.send(`<iq xmlns="jabber:client" type="set" id="carbons"><enable xmlns="urn:xmpp:carbons:2"/></iq>`);
    await a.c.next((el) => el.attrs.id === 'carbons');
    a.c.send(`<inactive xmlns="urn:xmpp:csi:0"/>`);
    await roundTrip(a.c);
    a.c.ws.terminate();
    await until('the session to be detached', async () => (await smItem(alice, a.id))?.detachedUntil);

    const c = await RawClient.connect(s.url);
    await authenticate(c, alice);
    c.send(`<resume xmlns="${SM}" previd="${a.id}" h="0"/>`);
    await c.next(isSm('resumed'));
    // The account's other resource comes online and changes its presence: withheld from the inactive one.
    const desk = await RawClient.connect(s.url);
    await desk.login(alice, 'secret', 'desk');
    desk.send(`<presence xmlns="jabber:client"><show>away</show></presence>`);
    await desk.next((el) => el.name === 'presence');
    // A message to the other resource: the resumed one gets its carbon copy.
    const b = await RawClient.connect(s.url);
    await b.login(bob);
    b.send(chat(`${alice}/desk`, 'cc1'));
    await desk.next(isMsg('cc1'));
    const carbon = await c.next((el) => el.name === 'message' && !!el.getChild('received', 'urn:xmpp:carbons:2'));
    assert.equal(carbon.getChild('received')!.getChild('forwarded')!.getChild('message')!.attrs.id, 'cc1');
    assert.equal(c.frames.filter((f) => f.startsWith('<presence') && f.includes(`${alice}@localhost/desk`)).length, 0, c.frames.join('\n'));
    c.ws.close();
    desk.ws.close();
    b.ws.close();
  });

  it('a resumed session keeps its room (XEP-0045): room messages while detached are kept and resent, and the room reaches the new connection', async () => {
    const [alice, bob] = [await user('room'), await user('roomb')];
    const room = `sm${n}@conference.localhost`;
    const b = await RawClient.connect(s.url);
    await b.login(bob);
    const join = async (c: RawClient, nick: string) => {
      c.send(`<presence xmlns="jabber:client" to="${room}/${nick}"><x xmlns="http://jabber.org/protocol/muc"/></presence>`);
      await c.next((el) => el.name === 'presence' && el.attrs.from === `${room}/${nick}` && c.frames.some((f) => f.includes('code="110"')));
    };
    await join(b, 'bob');
    // An instant room (XEP-0045 §10.1.2), so others may enter.
    b.send(`<iq xmlns="jabber:client" type="set" id="instant" to="${room}"><query xmlns="http://jabber.org/protocol/muc#owner"><x xmlns="jabber:x:data" type="submit"/></query></iq>`);
    await b.next((el) => el.attrs.id === 'instant');
    const a = await managed(alice);
    await join(a.c, 'alice');
    const groupchat = (c: RawClient, id: string) => c.send(`<message xmlns="jabber:client" to="${room}" type="groupchat" id="${id}"><body>${id}</body></message>`);
    const fromRoom = (id: string) => (el: Element) => el.name === 'message' && el.attrs.type === 'groupchat' && el.attrs.id === id;
    groupchat(b, 'g1');
    await a.c.next(fromRoom('g1'));
    a.c.ws.terminate();
    await until('the session to be detached', async () => (await smItem(alice, a.id))?.detachedUntil);
    // A room message with one occupant detached: the room item and its history as always (1 read,
    // 1 write, a post to bob), bob's connection item (he never enabled and is within his window for
    // <enable/>: read with each frame), and alice's append, known from the room's occupant record
    // (no read of her session entry).
    const kept = await s.cost(async () => {
      groupchat(b, 'g2');
      await b.next(fromRoom('g2'));
    });
    assert.deepEqual({ reads: kept.reads, writes: kept.writes, posts: kept.posts }, { reads: 2, writes: 2, posts: 1 }, JSON.stringify(kept.calls));
    assert.deepEqual(kept.calls, { 'dynamodb:GetItemCommand': 2, 'dynamodb:PutItemCommand': 1, 'dynamodb:UpdateItemCommand': 1, 'management:PostToConnectionCommand': 1 });
    groupchat(b, 'g3');
    await b.next(fromRoom('g3'));

    const c = await RawClient.connect(s.url);
    await authenticate(c, alice);
    c.send(`<resume xmlns="${SM}" previd="${a.id}" h="0"/>`);
    await c.next(isSm('resumed'));
    await c.next(fromRoom('g3'));
    groupchat(b, 'g4');
    await c.next(fromRoom('g4'));
    groupchat(c, 'g5');
    await b.next(fromRoom('g5'));
    await c.next(fromRoom('g5'));
    const got = c.frames.map((f) => /<message[^>]* type="groupchat"[^>]* id="(g\d)"|<message[^>]* id="(g\d)"[^>]* type="groupchat"/.exec(f)).filter(Boolean).map((m) => m![1] ?? m![2]);
    assert.deepEqual(got, ['g1', 'g2', 'g3', 'g4', 'g5'], 'g1 resent (h=0 acknowledged nothing), then the rest once, in order');
    // Bob never saw alice leave.
    assert.equal(b.frames.filter((f) => f.includes('type="unavailable"') && f.includes(`${room}/alice`)).length, 0, b.frames.join('\n'));
    c.ws.close();
    b.ws.close();
  });

  it('a resume while the old connection is still open takes the session over and closes the old one (§5)', async () => {
    const [alice, bob] = [await user('twice'), await user('twiceb')];
    const a = await managed(alice);
    const b = await RawClient.connect(s.url);
    await b.login(bob);
    b.send(chat(`${alice}/phone`, 't1'));
    await a.c.next(isMsg('t1'));
    const c = await RawClient.connect(s.url);
    await authenticate(c, alice);
    c.send(`<resume xmlns="${SM}" previd="${a.id}" h="1"/>`);
    await c.next(isSm('resumed'));
    await a.c.closed;
    b.send(chat(`${alice}/phone`, 't2'));
    await c.next(isMsg('t2'));
    assert.equal(c.frames.filter((f) => f.includes('id="t1"')).length, 0, 'acknowledged by the resume: not resent');
    c.ws.close();
    b.ws.close();
  });

  it('without resumption, a dropped session ends at once and what it never acknowledged goes to offline storage', async () => {
    const [alice, bob] = [await user('nores'), await user('noresb')];
    const a = await managed(alice, 'phone', false);
    const b = await RawClient.connect(s.url);
    await b.login(bob);
    b.send(chat(`${alice}/phone`, 'n1'));
    b.send(chat(`${alice}/phone`, 'n2'));
    await a.c.next(isMsg('n2'));
    a.c.send(`<a xmlns="${SM}" h="1"/>`);
    await roundTrip(a.c);
    a.c.ws.terminate();
    await until('the session to end', async () => !(await s.server.sessions.list(`${alice}@localhost`)).length);
    await s.gateway.idle(); // its $disconnect, which ends the session and then stores what was kept
    const stored = (await offlineOf(s.server).list(`${alice}@localhost`)).map((m) => /id="([^"]+)"/.exec(m.xml)?.[1]);
    assert.deepEqual(stored, ['n2'], 'n1 was acknowledged');
    b.ws.close();
  });
});
