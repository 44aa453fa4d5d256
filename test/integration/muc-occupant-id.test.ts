// XEP-0421 Occupant identifiers for semi-anonymous MUCs, with real xmpp.js clients: the room announces
// urn:xmpp:occupant-id:0 (§3); every presence and groupchat message it sends carries one occupant-id
// (§4) that is the same for one user across rejoins, nick changes, resources and server instances,
// different for different users and rooms, and shows nothing of the real JID; an occupant-id a client
// sent is removed (§4). And it costs no DynamoDB call: the cost of a message and a presence change.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type TestClient, type TestServer, startTestServer, xml, type Element, WAIT_MS } from '../support/harness.ts';
import { codes, connectMucClient, createInstant, enter, presenceFrom, selfPresence } from '../support/muc.ts';

const OCCUPANT_ID = 'urn:xmpp:occupant-id:0';
const DISCO_INFO = 'http://jabber.org/protocol/disco#info';

let s: TestServer;
let n = 0;
const clients: TestClient[] = [];

/** A new account, logged in. */
async function person(prefix: string): Promise<TestClient> {
  const name = `${prefix}${++n}`;
  await s.addUser(`${name}@localhost`, `pw-${name}`);
  return connectAs(name, s);
}

async function connectAs(name: string, server: TestServer, resource?: string): Promise<TestClient> {
  const c = await connectMucClient(server.url, { username: name, password: `pw-${name}`, resource });
  clients.push(c);
  return c;
}

const localOf = (c: TestClient) => c.jid.split('@')[0];

/** The one occupant id of a stanza: fails if there is none or more than one. */
function idOf(el: Element): string {
  const ids = el.getChildren('occupant-id', OCCUPANT_ID);
  assert.equal(ids.length, 1, `exactly one occupant-id in ${el.toString()}`);
  const id = ids[0].attrs.id;
  assert.ok(id && id.length <= 128, `an id of at most 128 characters (§4): ${el.toString()}`);
  return id;
}

const groupchat = (id: string) => (el: Element) => el.name === 'message' && el.attrs.type === 'groupchat' && el.attrs.id === id;

before(async () => {
  s = await startTestServer({ tenantWatchMs: 3_600_000, sweepIntervalMs: 3_600_000, tenantCacheMs: 3_600_000 });
});
after(async () => {
  await Promise.all(clients.map((c) => c.stop()));
  await s.stop();
});

describe('XEP-0421 occupant ids', () => {
  it('the room announces urn:xmpp:occupant-id:0 in disco#info (§3)', async () => {
    const a = await person('disco');
    const r = `disco${n}@conference.localhost`;
    await createInstant(a, `${r}/a`);
    const info = await a.iq(xml('iq', { type: 'get', to: r }, xml('query', { xmlns: DISCO_INFO })));
    const features = info.getChild('query', DISCO_INFO)!.getChildren('feature').map((f) => f.attrs.var);
    assert.ok(features.includes(OCCUPANT_ID), features.join(' '));
  });

  it('presence and messages carry one id per user: the same to every recipient, different for two users, never the real JID', async () => {
    const [a, b] = [await person('amy'), await person('bob')];
    const r = `pair${n}@conference.localhost`;
    const aSelf = await createInstant(a, `${r}/amy`);
    const idA = idOf(aSelf);
    const bSelf = await enter(b, `${r}/bob`);
    const idB = idOf(bSelf);
    assert.notEqual(idA, idB, 'two users, two ids');
    // Each sees the other's presence with the same id the other sees on its self-presence.
    assert.equal(idOf(await a.waitFor(presenceFrom(`${r}/bob`), WAIT_MS, "bob's presence")), idB);
    assert.equal(idOf(await b.waitFor((el) => presenceFrom(`${r}/amy`)(el) && !codes(el).includes(110), WAIT_MS, "amy's presence")), idA);
    for (const [id, c] of [[idA, a], [idB, b]] as const) {
      assert.ok(!id.toLowerCase().includes(localOf(c).toLowerCase()) && !id.includes('localhost'), `${id} shows nothing of ${c.jid}`);
    }

    await a.send(xml('message', { to: r, type: 'groupchat', id: 'm1' }, xml('body', {}, 'hello')));
    for (const c of [a, b]) assert.equal(idOf(await c.waitFor(groupchat('m1'), WAIT_MS, 'm1')), idA);
    await b.send(xml('message', { to: r, type: 'groupchat', id: 'm2' }, xml('body', {}, 'hi')));
    for (const c of [a, b]) assert.equal(idOf(await c.waitFor(groupchat('m2'), WAIT_MS, 'm2')), idB);

    // A presence change, and the subject change (a groupchat message) and the subject sent at join.
    await b.send(xml('presence', { to: `${r}/bob` }, xml('show', {}, 'away')));
    assert.equal(idOf(await a.waitFor((el) => presenceFrom(`${r}/bob`)(el) && el.getChildText('show') === 'away', WAIT_MS, 'away')), idB);
    await a.send(xml('message', { to: r, type: 'groupchat', id: 'subj' }, xml('subject', {}, 'Plans')));
    for (const c of [a, b]) assert.equal(idOf(await c.waitFor(groupchat('subj'), WAIT_MS, 'subject change')), idA);
    const c = await person('cal');
    await c.send(xml('presence', { to: `${r}/cal` }, xml('x', { xmlns: 'http://jabber.org/protocol/muc' })));
    const subject = await c.waitFor((el) => el.name === 'message' && el.getChildText('subject') === 'Plans', WAIT_MS, 'subject at join');
    assert.equal(idOf(subject), idA, 'the subject names the occupant who set it');
    // History replays keep the id of their sender.
    const history = await c.waitFor((el) => el.name === 'message' && el.getChildText('body') === 'hello', WAIT_MS, 'history');
    assert.equal(idOf(history), idA);
  });

  it('stays the same across a nick change, leaving and rejoining, another resource and another server instance', async () => {
    const a = await person('sam');
    const w = await person('watcher');
    const r = `stable${n}@conference.localhost`;
    await createInstant(w, `${r}/w`);
    const id = idOf(await enter(a, `${r}/sam`));
    assert.equal(idOf(await w.waitFor(presenceFrom(`${r}/sam`), WAIT_MS, 'join')), id);

    // Nick change (§7.6): the 303 unavailable under the old nick and the presence under the new one.
    await a.send(xml('presence', { to: `${r}/samuel` }));
    const gone = await w.waitFor((el) => presenceFrom(`${r}/sam`, 'unavailable')(el) && codes(el).includes(303), WAIT_MS, '303');
    assert.equal(idOf(gone), id);
    assert.equal(idOf(await w.waitFor(presenceFrom(`${r}/samuel`), WAIT_MS, 'new nick')), id);
    assert.equal(idOf(await a.waitFor(selfPresence(`${r}/samuel`), WAIT_MS, 'own new nick')), id);

    // Leave (its unavailable carries the id) and come back under yet another nick.
    await a.send(xml('presence', { to: `${r}/samuel`, type: 'unavailable' }));
    assert.equal(idOf(await w.waitFor(presenceFrom(`${r}/samuel`, 'unavailable'), WAIT_MS, 'leave')), id);
    await a.waitFor(selfPresence(`${r}/samuel`, 'unavailable'), WAIT_MS, 'own leave');
    assert.equal(idOf(await enter(a, `${r}/s`)), id, 'the same id after rejoining');

    // The same user from another resource, connected to another server instance on the same table (another
    // Lambda container, or another region): still the same id, so it cannot come from a process's memory.
    const other = await startTestServer({ region: 'us-east-1', dynamoEndpoint: s.dynamoEndpoint, tenantWatchMs: 3_600_000, sweepIntervalMs: 3_600_000 });
    try {
      const a2 = await connectAs(localOf(a), other, 'elsewhere');
      assert.equal(idOf(await enter(a2, `${r}/s2`)), id, 'the same id through another server instance');
      await a2.stop();
    } finally {
      await other.stop();
    }
  });

  it('one user has different ids in different rooms', async () => {
    const a = await person('roamer');
    const ids = [];
    for (const room of ['one', 'two']) ids.push(idOf(await createInstant(a, `${room}${n}@conference.localhost/a`)));
    assert.notEqual(ids[0], ids[1]);
  });

  it('an occupant-id a client sends is removed (§4): groupchat, presence and private messages', async () => {
    const [a, b] = [await person('forger'), await person('victim')];
    const r = `forged${n}@conference.localhost`;
    const idA = idOf(await createInstant(a, `${r}/a`));
    const idB = idOf(await enter(b, `${r}/b`));
    const forged = () => xml('occupant-id', { xmlns: OCCUPANT_ID, id: idB });

    await a.send(xml('message', { to: r, type: 'groupchat', id: 'f1' }, xml('body', {}, 'I am b'), forged(), forged()));
    for (const c of [a, b]) assert.equal(idOf(await c.waitFor(groupchat('f1'), WAIT_MS, 'f1')), idA, 'the forged ids are gone, the real one is there');

    await a.send(xml('presence', { to: `${r}/a` }, xml('status', {}, 'forging'), forged()));
    assert.equal(idOf(await b.waitFor((el) => presenceFrom(`${r}/a`)(el) && el.getChildText('status') === 'forging', WAIT_MS, 'presence')), idA);
    // The forged id is not kept with the presence either: a newcomer gets it without.
    const c = await person('late');
    await enter(c, `${r}/c`);
    const seen = c.received.find((el) => presenceFrom(`${r}/a`)(el));
    assert.ok(seen, 'the newcomer got the presence of a');
    assert.equal(idOf(seen), idA);

    await a.send(xml('message', { to: `${r}/b`, type: 'chat', id: 'pm' }, xml('body', {}, 'psst'), forged()));
    const pm = await b.waitFor((el) => el.name === 'message' && el.attrs.id === 'pm', WAIT_MS, 'pm');
    assert.equal(pm.getChildren('occupant-id', OCCUPANT_ID).length, 0, `no forged id in a private message: ${pm.toString()}`);
  });

  it('costs nothing: a groupchat message is still 1 read, 1 write, N posts; a presence change 0, 1, N', async () => {
    const people = [await person('c1'), await person('c2'), await person('c3')];
    const r = `cheap${n}@conference.localhost`;
    await createInstant(people[0], `${r}/p0`);
    for (const [i, p] of people.entries()) if (i) await enter(p, `${r}/p${i}`);
    const message = await s.cost(async () => {
      await people[1].send(xml('message', { to: r, type: 'groupchat', id: 'cost1' }, xml('body', {}, 'counted')));
      for (const p of people) idOf(await p.waitFor(groupchat('cost1'), WAIT_MS, 'cost1'));
    });
    assert.deepEqual({ reads: message.reads, writes: message.writes, posts: message.posts }, { reads: 1, writes: 1, posts: 3 }, JSON.stringify(message.calls));
    const change = await s.cost(async () => {
      await people[2].send(xml('presence', { to: `${r}/p2` }, xml('show', {}, 'dnd')));
      for (const p of people) idOf(await p.waitFor((el) => presenceFrom(`${r}/p2`)(el) && el.getChildText('show') === 'dnd', WAIT_MS, 'dnd'));
    });
    assert.deepEqual({ reads: change.reads, writes: change.writes, posts: change.posts }, { reads: 0, writes: 1, posts: 3 }, JSON.stringify(change.calls));
  });
});
