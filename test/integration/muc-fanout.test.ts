// Room fan-out and its cost (docs/architecture.md "Cost is a feature"): a message reaches every occupant of a
// 50-occupant room for one DynamoDB read (the room item with its occupants) plus the history write,
// and one post per occupant connection; and an occupant whose connection ends for any reason —
// closed stream, $disconnect, 410 Gone on a post, expiry, a broadcast unavailable — leaves its rooms,
// which the others see.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { RawClient, type TestClient, type TestServer, startTestServer, until, xml, type Element, WAIT_MS } from '../support/harness.ts';
import { codes, connectMucClient, createInstant, enter, item, presenceFrom } from '../support/muc.ts';

let n = 0;

async function occupant(s: TestServer, prefix: string): Promise<TestClient> {
  const name = `${prefix}${++n}`;
  await s.addUser(`${name}@localhost`, `pw-${name}`);
  return connectMucClient(s.url, { username: name, password: `pw-${name}` });
}

const isSelf = (from: string) => (el: Element) => el.name === 'presence' && el.attrs.from === from && !el.attrs.type && codes(el).includes(110);
const subjectOf = (r: string) => (el: Element) => el.name === 'message' && el.attrs.from?.startsWith(r) && !!el.getChild('subject') && !el.getChild('body');

describe('a 50-occupant room (raw WebSocket clients)', { timeout: 120_000 }, () => {
  let s: TestServer;
  const raws: RawClient[] = [];
  const r = 'hall@conference.localhost';

  before(async () => {
    // No background polls: cost() counts every call made while an operation runs.
    s = await startTestServer({ tenantWatchMs: 3_600_000, sweepIntervalMs: 3_600_000, tenantCacheMs: 3_600_000 });
    await Promise.all(Array.from({ length: 50 }, (_, i) => s.addUser(`occ${i}@localhost`, 'pw')));
    for (let start = 0; start < 50; start += 10) {
      await Promise.all(
        Array.from({ length: 10 }, async (_, k) => {
          const raw = await RawClient.connect(s.url);
          await raw.login(`occ${start + k}`, 'pw', 'r');
          raws[start + k] = raw;
        }),
      );
    }
    // The first creates an instant room; the others join in parallel batches (conditional writes keep it straight).
    raws[0].send(`<presence xmlns="jabber:client" to="${r}/n0"><x xmlns="http://jabber.org/protocol/muc"/></presence>`);
    await raws[0].next(subjectOf(r), WAIT_MS);
    raws[0].send(`<iq xmlns="jabber:client" type="set" id="instant" to="${r}"><query xmlns="http://jabber.org/protocol/muc#owner"><x xmlns="jabber:x:data" type="submit"/></query></iq>`);
    await raws[0].next((el) => el.name === 'iq' && el.attrs.id === 'instant');
    for (let start = 1; start < 50; start += 10) {
      await Promise.all(
        raws.slice(start, start + 10).map(async (raw, k) => {
          const i = start + k;
          raw.send(`<presence xmlns="jabber:client" to="${r}/n${i}"><x xmlns="http://jabber.org/protocol/muc"><history maxstanzas="0"/></x></presence>`);
          await raw.next(subjectOf(r), WAIT_MS);
        }),
      );
    }
  });

  after(async () => {
    for (const raw of raws) raw.ws.close();
    await s.stop();
  });

  it('holds 50 occupants in one room item', async () => {
    const { mucOf } = await import('../../lib/extensions/muc/service.ts');
    const room = await mucOf(s.server)!.rooms.get('localhost', 'hall');
    assert.equal(Object.keys(room!.occupants).length, 50);
  });

  it('a groupchat message reaches all 50 occupants: 1 read (the room), 1 write (history), 50 posts', { timeout: 120_000 }, async () => {
    const cost = await s.cost(async () => {
      raws[7].send(`<message xmlns="jabber:client" to="${r}" type="groupchat" id="fan1"><body>to all fifty</body></message>`);
      const got = await Promise.all(raws.map((raw) => raw.next((el) => el.name === 'message' && el.attrs.id === 'fan1', WAIT_MS)));
      for (const [i, m] of got.entries()) {
        assert.equal(m.attrs.from, `${r}/n7`);
        assert.equal(m.attrs.to, `occ${i}@localhost/r`);
        assert.equal(m.getChildText('body'), 'to all fifty');
      }
    });
    assert.deepEqual({ reads: cost.reads, writes: cost.writes, posts: cost.posts }, { reads: 1, writes: 1, posts: 50 }, JSON.stringify(cost.calls));
    assert.deepEqual(
      Object.fromEntries(Object.entries(cost.calls).filter(([k]) => k.startsWith('dynamodb:'))),
      { 'dynamodb:GetItemCommand': 1, 'dynamodb:PutItemCommand': 1 },
      'one GetItem of the room, one PutItem of the history entry',
    );
  });

  it('a message without a body (chat state) is not history: 1 read, 0 writes, 50 posts', { timeout: 120_000 }, async () => {
    const cost = await s.cost(async () => {
      raws[3].send(`<message xmlns="jabber:client" to="${r}" type="groupchat" id="typing"><composing xmlns="http://jabber.org/protocol/chatstates"/></message>`);
      await Promise.all(raws.map((raw) => raw.next((el) => el.name === 'message' && el.attrs.id === 'typing', WAIT_MS)));
    });
    assert.deepEqual({ reads: cost.reads, writes: cost.writes, posts: cost.posts }, { reads: 1, writes: 0, posts: 50 }, JSON.stringify(cost.calls));
  });

  it('a presence change costs 1 write (the update returns the room) and 50 posts, no read', { timeout: 120_000 }, async () => {
    const cost = await s.cost(async () => {
      raws[9].send(`<presence xmlns="jabber:client" to="${r}/n9"><show>away</show></presence>`);
      await Promise.all(raws.map((raw) => raw.next((el) => el.name === 'presence' && el.attrs.from === `${r}/n9` && el.getChildText('show') === 'away', WAIT_MS)));
    });
    assert.deepEqual({ reads: cost.reads, writes: cost.writes, posts: cost.posts }, { reads: 0, writes: 1, posts: 50 }, JSON.stringify(cost.calls));
  });
});

describe('the cost of entering and leaving (3 occupants)', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer({ tenantWatchMs: 3_600_000, sweepIntervalMs: 3_600_000, tenantCacheMs: 3_600_000 });
  });
  after(() => s.stop());

  it('enter: 2 reads (room, history), 2 writes (occupant, session entry); leave: 2 writes, no read', { timeout: 120_000 }, async () => {
    const [a, b, c] = [await occupant(s, 'ca'), await occupant(s, 'cb'), await occupant(s, 'cc')];
    const r = 'costly@conference.localhost';
    await createInstant(a, `${r}/a`);
    await enter(b, `${r}/b`);
    const join = await s.cost(async () => {
      await enter(c, `${r}/c`, { history: { maxstanzas: '5' } });
      await a.waitFor(presenceFrom(`${r}/c`));
      await b.waitFor(presenceFrom(`${r}/c`));
    });
    // Posts: 2 occupants + self-presence + subject to the newcomer, its presence to the 2 others.
    assert.deepEqual({ reads: join.reads, writes: join.writes, posts: join.posts }, { reads: 2, writes: 2, posts: 6 }, JSON.stringify(join.calls));
    const leave = await s.cost(async () => {
      await c.send(xml('presence', { to: `${r}/c`, type: 'unavailable' }));
      await c.waitFor(presenceFrom(`${r}/c`, 'unavailable'));
      await a.waitFor(presenceFrom(`${r}/c`, 'unavailable'));
      await b.waitFor(presenceFrom(`${r}/c`, 'unavailable'));
    });
    assert.deepEqual({ reads: leave.reads, writes: leave.writes, posts: leave.posts }, { reads: 0, writes: 2, posts: 3 }, JSON.stringify(leave.calls));
    for (const x of [a, b, c]) await x.stop();
  });
});

describe('leaving when the connection ends (XEP-0045 §7.14, §17.4.2)', () => {
  let s: TestServer;
  before(async () => {
    // $disconnect is dropped so the 410 and expiry paths are the only way out of a dead connection.
    s = await startTestServer({ dropDisconnect: true, sweepIntervalMs: 3_600_000 });
  });
  after(() => s.stop());

  async function roomWith(watcherPrefix: string, leaverPrefix: string) {
    const watcher = await occupant(s, watcherPrefix);
    const leaver = await occupant(s, leaverPrefix);
    const r = `end${++n}@conference.localhost`;
    await createInstant(watcher, `${r}/watcher`, { 'muc#roomconfig_persistentroom': '1' });
    await enter(leaver, `${r}/leaver`);
    await watcher.waitFor(presenceFrom(`${r}/leaver`));
    return { watcher, leaver, r };
  }
  /** Cuts the client's socket (no $disconnect comes) and waits until the gateway saw it close. */
  async function terminate(c: TestClient) {
    const open = s.gateway.connectionIds().length;
    c.xmpp.socket?.socket?.terminate?.();
    await until('the gateway to see the socket close', () => s.gateway.connectionIds().length < open);
  }
  const occupantsOf = async (r: string) => {
    const { mucOf } = await import('../../lib/extensions/muc/service.ts');
    return Object.keys((await mucOf(s.server)!.rooms.get('localhost', r.split('@')[0]))!.occupants);
  };

  it('closing the stream: the others get unavailable (role none, no status code)', { timeout: 120_000 }, async () => {
    const { watcher, leaver, r } = await roomWith('w', 'closer');
    await leaver.stop();
    const p = await watcher.waitFor(presenceFrom(`${r}/leaver`, 'unavailable'));
    assert.deepEqual(codes(p), []);
    assert.equal(item(p).role, 'none');
    assert.deepEqual(await occupantsOf(r), ['watcher']);
    await watcher.stop();
  });

  it('a broadcast unavailable (no to) leaves the rooms too; the leaver gets its 110', { timeout: 120_000 }, async () => {
    const { watcher, leaver, r } = await roomWith('w', 'offline');
    await leaver.send(xml('presence', { type: 'unavailable' }, xml('status', {}, 'bye all')));
    const own = await leaver.waitFor(presenceFrom(`${r}/leaver`, 'unavailable'));
    assert.deepEqual(codes(own), [110]);
    const p = await watcher.waitFor(presenceFrom(`${r}/leaver`, 'unavailable'));
    assert.equal(p.getChildText('status'), 'bye all');
    assert.deepEqual(await occupantsOf(r), ['watcher']);
    await watcher.stop();
    await leaver.stop();
  });

  it('a dead connection (no $disconnect) is found by the next post (410): it leaves with 333', { timeout: 120_000 }, async () => {
    const { watcher, leaver, r } = await roomWith('w', 'dead');
    await terminate(leaver);
    await watcher.send(xml('message', { to: r, type: 'groupchat', id: 'probe' }, xml('body', {}, 'anyone there?')));
    const p = await watcher.waitFor(presenceFrom(`${r}/leaver`, 'unavailable'));
    assert.deepEqual(codes(p), [333]);
    assert.equal(item(p).role, 'none');
    assert.deepEqual(await occupantsOf(r), ['watcher']);
    await watcher.stop();
  });

  it('a connection the sweeper finds expired leaves with 333', { timeout: 120_000 }, async () => {
    const { watcher, leaver, r } = await roomWith('w', 'expired');
    await terminate(leaver);
    const swept = await s.server.sweep(s.clock.now() + 11 * 60_000);
    assert.ok(swept.ended >= 1);
    const p = await watcher.waitFor(presenceFrom(`${r}/leaver`, 'unavailable'));
    assert.deepEqual(codes(p), [333]);
    assert.deepEqual(await occupantsOf(r), ['watcher']);
  });

  it('a session replaced by a new login with the same resource (conflict) leaves its rooms', { timeout: 120_000 }, async () => {
    const watcher = await occupant(s, 'w');
    const name = `twice${++n}`;
    await s.addUser(`${name}@localhost`, 'pw');
    const first = await connectMucClient(s.url, { username: name, password: 'pw', resource: 'same' });
    const r = `replaced${++n}@conference.localhost`;
    await createInstant(watcher, `${r}/watcher`, { 'muc#roomconfig_persistentroom': '1' });
    await enter(first, `${r}/ghost`);
    await watcher.waitFor(presenceFrom(`${r}/ghost`));
    const second = await connectMucClient(s.url, { username: name, password: 'pw', resource: 'same' });
    const p = await watcher.waitFor(presenceFrom(`${r}/ghost`, 'unavailable'));
    assert.deepEqual(codes(p), []);
    // The new session with the same full JID is not in the room until it joins.
    await watcher.send(xml('message', { to: r, type: 'groupchat', id: 'probe2' }, xml('body', {}, 'still there?')));
    await second.expectNothing(s, (el) => el.attrs.id === 'probe2', watcher);
    await second.stop();
    await watcher.stop();
  });
});
void isSelf;
