// XEP-0077 In-Band Registration on a tenant whose item opens it, and refused where it is closed.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { RawClient, type TestServer, byName, connectClient, startTestServer, xml, type Element } from '../support/harness.ts';

const STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas';
const condition = (el: Element) => (el.getChild('error')?.children.find((c) => typeof c !== 'string' && (c as Element).attrs.xmlns === STANZAS) as Element | undefined)?.name;

let s: TestServer;
before(async () => {
  s = await startTestServer();
  await s.server.tenants.put({ domain: 'open.example', enabled: true, registration: 'open' });
});
after(() => s.stop());

async function openStream(domain: string): Promise<{ raw: RawClient; features: Element }> {
  const raw = await RawClient.connect(s.url);
  raw.send(`<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="${domain}" version="1.0"/>`);
  return { raw, features: await raw.next(byName('stream:features')) };
}

describe('in-band registration (XEP-0077)', () => {
  it('announces the feature only where the tenant opened registration', async () => {
    const open = await openStream('open.example');
    assert.ok(open.features.getChild('register', 'http://jabber.org/features/iq-register'));
    open.raw.ws.close();
    const closed = await openStream('localhost');
    assert.equal(closed.features.getChild('register', 'http://jabber.org/features/iq-register'), undefined);
    closed.raw.send('<iq xmlns="jabber:client" type="get" id="r0"><query xmlns="jabber:iq:register"/></iq>');
    assert.equal(condition(await closed.raw.next(byName('iq', { id: 'r0' }))), 'service-unavailable');
    closed.raw.ws.close();
  });

  it('registers an account before authentication, then it logs in; a taken name gets conflict', async () => {
    const { raw } = await openStream('open.example');
    raw.send('<iq xmlns="jabber:client" type="get" id="r1"><query xmlns="jabber:iq:register"/></iq>');
    const form = (await raw.next(byName('iq', { id: 'r1' }))).getChild('query')!;
    assert.ok(form.getChild('username') && form.getChild('password'));
    raw.send('<iq xmlns="jabber:client" type="set" id="r2"><query xmlns="jabber:iq:register"><username>Newbie</username></query></iq>');
    assert.equal(condition(await raw.next(byName('iq', { id: 'r2' }))), 'not-acceptable');
    raw.send('<iq xmlns="jabber:client" type="set" id="r3"><query xmlns="jabber:iq:register"><username>Newbie</username><password>s3cret</password></query></iq>');
    assert.equal((await raw.next(byName('iq', { id: 'r3' }))).attrs.type, 'result');
    raw.send('<iq xmlns="jabber:client" type="set" id="r4"><query xmlns="jabber:iq:register"><username>newbie</username><password>other</password></query></iq>');
    assert.equal(condition(await raw.next(byName('iq', { id: 'r4' }))), 'conflict');
    raw.ws.close();
    const c = await connectClient(s.url, { username: 'newbie', password: 's3cret', domain: 'open.example' });
    assert.equal(c.jid.split('/')[0], 'newbie@open.example');
    await c.stop();
  });

  it('changes the password of the logged-in user, and cancels the account', async () => {
    await s.addUser('changer@open.example', 'old');
    const c = await connectClient(s.url, { username: 'changer', password: 'old', domain: 'open.example' });
    const info = await c.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: 'jabber:iq:register' })));
    assert.ok(info.getChild('query')!.getChild('registered'));
    await c.iq(xml('iq', { type: 'set' }, xml('query', { xmlns: 'jabber:iq:register' }, xml('username', {}, 'changer'), xml('password', {}, 'new'))));
    await assert.rejects(c.iq(xml('iq', { type: 'set' }, xml('query', { xmlns: 'jabber:iq:register' }, xml('username', {}, 'someoneelse'), xml('password', {}, 'x')))));
    await c.stop();
    await assert.rejects(connectClient(s.url, { username: 'changer', password: 'old', domain: 'open.example' }));
    // Raw clients on both sides: the server ends both streams (XEP-0077 §3.2), and xmpp.js throws on a frame
    // that arrives after it detached its parser.
    const again = await RawClient.connect(s.url);
    await again.login('changer', 'new', 'one', 'open.example');
    const raw = await RawClient.connect(s.url);
    await raw.login('changer', 'new', 'other', 'open.example');
    again.send(`<iq type='set' id='bye'><query xmlns='jabber:iq:register'><remove/></query></iq>`);
    assert.equal((await again.next(byName('iq', { id: 'bye' }))).attrs.type, 'result');
    assert.ok((await raw.next(byName('stream:error'))).getChild('not-authorized'));
    assert.equal(await s.server.users.get('open.example', 'changer'), undefined);
    await Promise.all([again.closed, raw.closed]);
  });
});
