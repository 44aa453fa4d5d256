// The counts behind the README's "What it costs" that the per-operation table does not already assert:
// an XEP-0199 ping to the server, one sweeper liveness check (with its server ping and the answer), and how many of a session's writes touch
// its connection item (each such write also writes the item's index entries, which DynamoDB bills).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SWEEP_SHARDS } from '../../lib/store/dynamo.ts';
import { RawClient, type TestServer, startTestServer, until } from '../support/harness.ts';

describe('cost model inputs (README "What it costs")', () => {
  let s: TestServer;
  /** Partition key prefix of every DynamoDB write, in order. */
  const writes: string[] = [];
  let c: RawClient;

  before(async () => {
    s = await startTestServer({ tenantWatchMs: 3_600_000, sweepIntervalMs: 3_600_000, purgeIntervalMs: 3_600_000 });
    await s.addUser('alice@localhost');
    // A first login writes the account's session item once; the counts below are for every later one.
    const first = await RawClient.connect(s.url);
    await first.login('alice');
    first.ws.close();
    await first.closed;
    await until('the gateway to see the close', () => s.gateway.connectionIds().length === 0, () => s.gateway.connectionIds());
    await s.gateway.idle(); // its $disconnect
    (s.server.db as unknown as { middlewareStack: { add: Function } }).middlewareStack.add(
      (next: (args: unknown) => Promise<unknown>, ctx: { commandName?: string }) => async (args: { input?: { Key?: { pk?: string }; Item?: { pk?: string } } }) => {
        if (/^(Put|Update|Delete)/.test(ctx.commandName ?? '')) writes.push(String(args.input?.Key?.pk ?? args.input?.Item?.pk).split('#')[0]);
        return next(args);
      },
      { step: 'initialize', name: 'costModelWrites' },
    );
  });
  after(() => s.stop());

  it('a login: 5 of its 6 writes are to the connection item', async () => {
    writes.length = 0;
    const login = await s.cost(async () => {
      c = await RawClient.connect(s.url);
      await c.login('alice');
    });
    assert.deepEqual({ reads: login.reads, writes: login.writes }, { reads: 6, writes: 6 });
    assert.deepEqual(writes, ['conn', 'conn', 'conn', 'conn', 'sessions', 'conn']);
  });

  it('an XEP-0199 ping to the server costs no DynamoDB call and one post (its reply)', async () => {
    const ping = await s.cost(async () => {
      c.send(`<iq xmlns="jabber:client" type="get" id="ka" to="localhost"><ping xmlns="urn:xmpp:ping"/></iq>`);
      await c.next((el) => el.name === 'iq' && el.attrs.id === 'ka');
    });
    assert.deepEqual({ reads: ping.reads, writes: ping.writes, posts: ping.posts }, { reads: 0, writes: 0, posts: 1 });
  });

  it('a sweep: one Query per sweep shard, one each for detached XEP-0198 sessions, event push webhook retries, webhook component retries and inactive BOSH sessions, then per live bound connection one GetConnection, one write (next check time and ping time) and one post (the XEP-0199 ping)', async () => {
    writes.length = 0;
    const later = s.clock.now() + s.server.limits.connectionCheckMs + 1000;
    const sweep = await s.cost(async () => assert.deepEqual(await s.server.sweep(later), { checked: 1, ended: 0 }));
    assert.deepEqual(sweep.calls, {
      'dynamodb:QueryCommand': SWEEP_SHARDS + 4,
      'management:GetConnectionCommand': 1,
      'dynamodb:UpdateItemCommand': 1,
      'management:PostToConnectionCommand': 1,
    });
    assert.deepEqual(writes, ['conn']);
  });

  it('the answer to the server\'s ping: one write to the connection item (clearing the ping)', async () => {
    const ping = await c.next((el) => el.name === 'iq' && el.attrs.type === 'get' && !!el.getChild('ping', 'urn:xmpp:ping'));
    writes.length = 0;
    const answer = await s.cost(async () => {
      c.send(`<iq xmlns="jabber:client" type="result" id="${ping.attrs.id}" to="localhost"/>`);
      // A ping of our own after it: its reply (the one post counted) proves the answer was handled.
      c.send(`<iq xmlns="jabber:client" type="get" id="after-answer" to="localhost"><ping xmlns="urn:xmpp:ping"/></iq>`);
      await c.next((el) => el.name === 'iq' && el.attrs.id === 'after-answer');
    });
    assert.deepEqual(answer, { reads: 0, writes: 1, posts: 1, calls: { 'dynamodb:UpdateItemCommand': 1, 'management:PostToConnectionCommand': 1 } });
    assert.deepEqual(writes, ['conn']);
    assert.equal((await s.server.connections.get(s.gateway.connectionIds()[0]))?.pingSentAt, undefined);
  });

  it('a session end (<close/>, no contacts): 1 of its 2 writes is to the connection item (a delete)', async () => {
    writes.length = 0;
    const end = await s.cost(async () => {
      c.send(`<close xmlns="urn:ietf:params:xml:ns:xmpp-framing"/>`);
      await c.closed;
      await until('the gateway to see the close', () => s.gateway.connectionIds().length === 0, () => s.gateway.connectionIds());
    });
    assert.equal(end.writes, 2);
    assert.deepEqual(writes, ['conn', 'sessions']);
  });
});
