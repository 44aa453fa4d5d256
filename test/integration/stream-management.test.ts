// XEP-0198 Stream Management with exact frames (RawClient): the stream feature, <enable/> and
// <enabled/>, acks counted both ways with the wrap at 2^32, the server's batched <r/>, resumption on
// a new WebSocket with the unacknowledged stanzas resent in order and once, refused resumptions, a
// detached session kept for the resumption time and then ended into offline storage, and what each
// step costs in DynamoDB calls and posts (README "Stream management").
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { smStoreOf } from '../../lib/extensions/stream-management/index.ts';
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
  await s.server.tenants.put({ ...tenant, features: [...(tenant.features ?? []), 'sm'] });
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
});
