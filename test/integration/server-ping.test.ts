// The server's own liveness policy in AWS, where it cannot send WebSocket pings through API Gateway
// (docs/architecture.md "Connections die silently"): each sweeper check of a live, bound connection sends an
// XEP-0199 §4.2 server-to-client ping; any answer clears it; a ping still unanswered at the next check ends
// the connection with connection-timeout (RFC 6120 §4.9.3.4), and its contacts see it unavailable.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { RawClient, type TestClient, type TestServer, byName, connectClient, startTestServer, until, xml } from '../support/harness.ts';
import { mutualSubscription } from '../support/roster.ts';

const isServerPing = (el: { name: string; attrs: Record<string, string>; getChild(n: string, ns?: string): unknown }) =>
  el.name === 'iq' && el.attrs.type === 'get' && el.attrs.from === 'localhost' && !!el.getChild('ping', 'urn:xmpp:ping');

describe('server-to-client pings (XEP-0199 §4.2) at the sweeper\'s checks', () => {
  let s: TestServer;
  let friend: TestClient;

  before(async () => {
    // The sweeper's timer stays out of the way: the test drives server.sweep with the test clock.
    s = await startTestServer({ tenantWatchMs: 3_600_000, sweepIntervalMs: 3_600_000 });
    for (const u of ['friend', 'mute']) await s.addUser(`${u}@localhost`);
    await mutualSubscription(s, 'friend@localhost', 'mute@localhost');
    friend = await connectClient(s.url, { username: 'friend', resource: 'f1' });
    await friend.send(xml('presence'));
    await friend.waitFor(byName('presence', { from: friend.jid }), undefined, 'own presence');
  });
  after(async () => {
    await friend.stop();
    await s.stop();
  });

  it('a client that answers stays; one that never answers is ended at the second check and its contact sees unavailable', async () => {
    // A raw client that ignores every IQ: its network might as well be frozen.
    const mute = await RawClient.connect(s.url);
    await mute.login('mute', 'secret', 'm1');
    mute.send(`<presence xmlns="jabber:client"/>`);
    await friend.waitFor(byName('presence', { from: 'mute@localhost/m1' }), undefined, 'mute available');
    await s.gateway.idle();
    const [friendId, muteId] = ['f1', 'm1'].map((r) => s.server.cachedSession(s.gateway.connectionIds().find((id) => s.server.cachedSession(id)?.jid.resource === r)!)!.connectionId);

    const check = s.server.limits.connectionCheckMs;
    const first = s.clock.now() + check + 1000;
    assert.deepEqual(await s.server.sweep(first), { checked: 2, ended: 0 });
    await friend.waitFor(isServerPing, undefined, 'the server ping');
    await mute.next(isServerPing);
    // xmpp.js answers pings; the answer clears the record's ping.
    await until('friend\'s answer to clear the ping', async () => (await s.server.connections.get(friendId))?.pingSentAt === undefined);
    assert.equal((await s.server.connections.get(muteId))?.pingSentAt, first, 'mute\'s ping is outstanding');

    assert.deepEqual(await s.server.sweep(first + check), { checked: 2, ended: 1 });
    const gone = await friend.waitFor(byName('presence', { from: 'mute@localhost/m1', type: 'unavailable' }), undefined, 'unavailable for mute');
    assert.equal(gone.attrs.to, 'friend@localhost');
    const err = await mute.next(byName('stream:error'));
    assert.ok(err.getChild('connection-timeout', 'urn:ietf:params:xml:ns:xmpp-streams'), err.toString());
    await mute.closed;
    assert.deepEqual((await s.server.sessions.list('mute@localhost')), []);

    // The client that answered is still served, and pinged again.
    await friend.waitFor(isServerPing, undefined, 'the second server ping');
    await friend.roundTrip();
  });

});

describe('a check interval shorter than pingAnswerMs', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer({ tenantWatchMs: 3_600_000, sweepIntervalMs: 3_600_000, limits: { connectionCheckMs: 30_000, pingAnswerMs: 60_000 } });
    await s.addUser('slow@localhost');
  });
  after(() => s.stop());

  it('gives the client pingAnswerMs to answer before a check ends it', async () => {
    const slow = await RawClient.connect(s.url);
    await slow.login('slow');
    await s.gateway.idle();
    const first = s.clock.now() + 30_000 + 1000;
    assert.deepEqual(await s.server.sweep(first), { checked: 1, ended: 0 });
    await slow.next(isServerPing);
    // Due again 30 s later, but the ping is younger than 60 s: still waiting for it, and no second ping.
    assert.deepEqual(await s.server.sweep(first + 30_000), { checked: 1, ended: 0 });
    await s.gateway.idle();
    assert.equal(slow.frames.filter((f) => f.includes('urn:xmpp:ping')).length, 1);
    assert.deepEqual(await s.server.sweep(first + 60_000), { checked: 1, ended: 1 });
    await slow.next(byName('stream:error'));
    await slow.closed;
  });
});
