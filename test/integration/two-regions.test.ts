// Issue 5, "Prove it locally": two regions on one global table. Two local servers ("eu-west-1" and
// "us-east-1"), each with its own gateway, share one dynalite as the regions share the global table.
// Alice connects to eu-west-1, Bob to us-east-1; they subscribe to each other, see each other's
// presence and chat both ways. A session records the management endpoint of its region, so the server
// that handles a stanza posts it straight to the recipient's region: each gateway's log of received
// @connections posts shows which region a frame was delivered through, and each server's call
// counter which region sent it.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { closeTenantSessions } from '../../lib/core/tenant-lifecycle.ts';
import { RawClient, type TestClient, type TestServer, byName, connectClient, startTestServer, xml } from '../support/harness.ts';

/** Management posts a gateway received (its debug log line 'post to connection'), by connection id. */
class ReceivedPosts {
  readonly connectionIds: string[] = [];
  readonly logger = pino(
    { level: 'debug' },
    new Writable({
      write: (chunk: Buffer, _enc, done) => {
        for (const line of chunk.toString().split('\n')) {
          if (!line.includes('"post to connection"')) continue;
          this.connectionIds.push((JSON.parse(line) as { connectionId: string }).connectionId);
        }
        done();
      },
    }),
  );
  count(connectionId?: string): number {
    return connectionId ? this.connectionIds.filter((id) => id === connectionId).length : this.connectionIds.length;
  }
}

const ROSTER = 'jabber:iq:roster';
const posts = (s: TestServer) => s.counter.snapshot()['management:PostToConnectionCommand'] ?? 0;

describe('two regions on one table (issue 5: delivery across regions)', () => {
  let eu: TestServer;
  let us: TestServer;
  const euPosts = new ReceivedPosts();
  const usPosts = new ReceivedPosts();
  let alice: TestClient;
  let bob: TestClient;
  const connectionOf = async (s: TestServer, bare: string) => (await s.server.sessions.list(bare))[0];

  before(async () => {
    // Background polling off: the counters measure the stanzas only.
    const quiet = { tenantWatchMs: 3_600_000, sweepIntervalMs: 3_600_000, purgeIntervalMs: 3_600_000 };
    eu = await startTestServer({ region: 'eu-west-1', logger: euPosts.logger, ...quiet });
    us = await startTestServer({ region: 'us-east-1', dynamoEndpoint: eu.dynamoEndpoint, logger: usPosts.logger, ...quiet });
    await eu.addUser('alice@localhost');
    await eu.addUser('bob@localhost');
    alice = await connectClient(eu.url, { username: 'alice', resource: 'paris' });
    bob = await connectClient(us.url, { username: 'bob', resource: 'boston' });
  });
  after(async () => {
    await alice?.stop();
    await bob?.stop();
    await us?.stop();
    await eu?.stop();
  });

  it('runs two gateways with their own endpoints on one table; each session records its region\'s endpoint', async () => {
    assert.notEqual(eu.managementEndpoint, us.managementEndpoint);
    assert.equal(us.dynamoEndpoint, eu.dynamoEndpoint);
    // Either region reads both sessions from the shared table.
    for (const s of [eu, us]) {
      assert.equal((await connectionOf(s, 'alice@localhost')).endpoint, eu.managementEndpoint);
      assert.equal((await connectionOf(s, 'bob@localhost')).endpoint, us.managementEndpoint);
    }
    // Each region sees only its own connections where that matters (sweeping, closing a tenant).
    assert.deepEqual(await eu.server.connections.idsOfTenant('localhost'), [(await connectionOf(eu, 'alice@localhost')).connectionId]);
    assert.deepEqual(await us.server.connections.idsOfTenant('localhost'), [(await connectionOf(us, 'bob@localhost')).connectionId]);
    const later = Date.now() + eu.server.limits.connectionCheckMs + 60_000;
    assert.deepEqual(await eu.server.sweep(later), { checked: 1, ended: 0 }, 'eu-west-1 asks its own gateway about Alice only');
    assert.deepEqual(await us.server.sweep(later), { checked: 1, ended: 0 }, 'us-east-1 asks its own gateway about Bob only');
  });

  it('subscribe to each other across regions (RFC 6121 §3), each request and approval delivered in the other region', async () => {
    for (const c of [alice, bob]) {
      await c.iq(xml('iq', { type: 'get', id: 'roster' }, xml('query', { xmlns: ROSTER })));
      await c.send(xml('presence'));
    }
    await alice.send(xml('presence', { to: 'bob@localhost', type: 'subscribe' }));
    await bob.waitFor(byName('presence', { type: 'subscribe', from: 'alice@localhost' }));
    await bob.send(xml('presence', { to: 'alice@localhost', type: 'subscribed' }));
    await bob.send(xml('presence', { to: 'alice@localhost', type: 'subscribe' }));
    await alice.waitFor(byName('presence', { type: 'subscribe', from: 'bob@localhost' }));
    await alice.send(xml('presence', { to: 'bob@localhost', type: 'subscribed' }));
    const item = (c: TestClient, contact: string) =>
      c.waitFor((el) => el.name === 'iq' && el.attrs.type === 'set' && el.getChild('query', ROSTER)?.getChild('item')?.attrs.jid === contact && el.getChild('query', ROSTER)?.getChild('item')?.attrs.subscription === 'both');
    await item(alice, 'bob@localhost');
    await item(bob, 'alice@localhost');
  });

  it('see each other\'s presence: initial presence goes out through the contact\'s region', async () => {
    await alice.send(xml('presence', {}, xml('status', {}, 'in Paris')));
    await bob.waitFor((el) => el.name === 'presence' && el.attrs.from === alice.jid && el.getChildText('status') === 'in Paris');
    await bob.send(xml('presence', {}, xml('show', {}, 'away')));
    await alice.waitFor((el) => el.name === 'presence' && el.attrs.from === bob.jid && el.getChildText('show') === 'away');
  });

  it('chat eu-west-1 → us-east-1: the eu server posts once, to the us gateway, where Bob is connected', async () => {
    const bobConnection = (await connectionOf(eu, 'bob@localhost')).connectionId;
    await eu.gateway.idle();
    await us.gateway.idle();
    const before = { euSent: posts(eu), usSent: posts(us), usReceived: usPosts.count(bobConnection), euReceived: euPosts.count() };
    await alice.send(xml('message', { to: 'bob@localhost', type: 'chat', id: 'eu-1' }, xml('body', {}, 'bonjour from Paris')));
    const got = await bob.waitFor(byName('message', { id: 'eu-1' }));
    assert.equal(got.attrs.from, alice.jid);
    assert.equal(got.getChildText('body'), 'bonjour from Paris');
    await eu.gateway.idle();
    await us.gateway.idle();
    assert.equal(posts(eu) - before.euSent, 1, 'the region that handled the stanza sent it');
    assert.equal(posts(us) - before.usSent, 0, 'the recipient\'s region did no work for it');
    assert.equal(usPosts.count(bobConnection) - before.usReceived, 1, 'it arrived through the us-east-1 gateway');
    assert.equal(euPosts.count() - before.euReceived, 0, 'nothing went through eu-west-1');
  });

  it('chat us-east-1 → eu-west-1: the us server posts once, to the eu gateway', async () => {
    const aliceConnection = (await connectionOf(us, 'alice@localhost')).connectionId;
    await eu.gateway.idle();
    await us.gateway.idle();
    const before = { euSent: posts(eu), usSent: posts(us), euReceived: euPosts.count(aliceConnection), usReceived: usPosts.count() };
    await bob.send(xml('message', { to: 'alice@localhost/paris', type: 'chat', id: 'us-1' }, xml('body', {}, 'hello from Boston')));
    const got = await alice.waitFor(byName('message', { id: 'us-1' }));
    assert.equal(got.attrs.from, bob.jid);
    await eu.gateway.idle();
    await us.gateway.idle();
    assert.equal(posts(us) - before.usSent, 1);
    assert.equal(posts(eu) - before.euSent, 0);
    assert.equal(euPosts.count(aliceConnection) - before.euReceived, 1, 'it arrived through the eu-west-1 gateway');
    assert.equal(usPosts.count() - before.usReceived, 0);
  });

  it('a second login with the same full JID in the other region replaces the first there (RFC 6120 §7.7.2.2)', async () => {
    const inBoston = await RawClient.connect(us.url);
    await inBoston.login('bob', 'secret', 'tablet');
    const inParis = await RawClient.connect(eu.url);
    await inParis.login('bob', 'secret', 'tablet');
    await inBoston.next((el) => el.name === 'stream:error' && !!el.getChild('conflict'));
    await inBoston.closed;
    const tablet = (await eu.server.sessions.list('bob@localhost')).find((e) => e.resource === 'tablet')!;
    assert.equal(tablet.endpoint, eu.managementEndpoint);
    inParis.ws.close();
    await inParis.closed;
  });

  it('a disabled tenant is closed by each region for the connections it holds', async () => {
    await eu.server.tenants.put({ domain: 'beta.test', enabled: true });
    for (const u of ['ann', 'ben']) await eu.addUser(`${u}@beta.test`);
    const ann = await RawClient.connect(eu.url);
    await ann.login('ann', 'secret', 'web', 'beta.test');
    const ben = await RawClient.connect(us.url);
    await ben.login('ben', 'secret', 'web', 'beta.test');
    await eu.server.tenants.put({ domain: 'beta.test', enabled: false });
    // What each region's tenant-changes function does on the stream record (or the local watcher on its poll).
    assert.equal(await closeTenantSessions(eu.server, 'beta.test', 'tenant disabled'), 1);
    await ann.next((el) => el.name === 'stream:error' && !!el.getChild('host-gone'));
    await ann.closed;
    assert.equal(ben.ws.readyState, ben.ws.OPEN, 'eu-west-1 left us-east-1\'s connection alone');
    assert.equal(await closeTenantSessions(us.server, 'beta.test', 'tenant disabled'), 1);
    await ben.next((el) => el.name === 'stream:error' && !!el.getChild('host-gone'));
    await ben.closed;
  });

  it('when Bob goes offline in us-east-1, Alice in eu-west-1 is told; a message to him waits offline and reaches him in eu-west-1', async () => {
    await bob.stop();
    await alice.waitFor(byName('presence', { from: bob.jid, type: 'unavailable' }));
    await alice.send(xml('message', { to: 'bob@localhost', type: 'chat', id: 'later' }, xml('body', {}, 'ping me when you land')));
    await eu.gateway.idle();
    // Bob flies to Europe and connects there; the offline message follows him.
    bob = await connectClient(eu.url, { username: 'bob', resource: 'paris' });
    assert.equal((await connectionOf(us, 'bob@localhost')).endpoint, eu.managementEndpoint);
    await bob.send(xml('presence'));
    const got = await bob.waitFor(byName('message', { id: 'later' }));
    assert.equal(got.getChildText('body'), 'ping me when you land');
  });
});
