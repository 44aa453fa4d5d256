// The $connect function loads only CONNECT_MODULES (lib/runtime/lambda.ts), so its bundle leaves the other
// modules out (README "Bundle sizes"). That is the same behaviour only while XmppServer.connect fires no hook or
// event and reads nothing of the modules' registry but their subprotocols, and the flush that ends the
// invocation has nothing to do: these tests fail when either stops being true.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { ManagementApi } from '../../lib/core/management-api.ts';
import { XmppServer } from '../../lib/core/server.ts';
import { COMPONENT_SUBPROTOCOL } from '../../lib/extensions/components/index.ts';
import { CONNECT_MODULES, createLambdaRuntime, createLambdaRuntimeOf } from '../../lib/runtime/lambda.ts';
import { startTestServer, type TestServer } from '../support/harness.ts';

describe('$connect with CONNECT_MODULES', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer();
  });
  after(() => s.stop());

  const attempts = [['xmpp'], [COMPONENT_SUBPROTOCOL], ['chat', COMPONENT_SUBPROTOCOL], ['xmpp', COMPONENT_SUBPROTOCOL], ['chat'], []];
  const connectedAt = Date.UTC(2026, 11, 1);
  const connectAll = (server: XmppServer, prefix: string) =>
    Promise.all(attempts.map((protocols, i) => server.connect({ connectionId: `${prefix}${i}`, endpoint: 'https://ws.example.com/prod', connectedAt, sourceIp: `192.0.2.${i + 1}`, protocols })));

  it('reads only the subprotocols of the registry, fires nothing, and leaves the flush nothing to do', async () => {
    const read = new Set<string>();
    const registry = s.server.registry;
    const spy = new Proxy(registry, { get: (target, key, receiver) => (read.add(String(key)), Reflect.get(target, key, receiver)) });
    Object.defineProperty(s.server, 'registry', { value: spy, configurable: true, writable: true });
    let cost;
    try {
      cost = await s.cost(() => connectAll(s.server, 'full-'));
    } finally {
      Object.defineProperty(s.server, 'registry', { value: registry, configurable: true, writable: true });
    }
    assert.deepEqual([...read], ['streamProtocols']);
    // The record of each accepted connection (the test server counts no connections per address); nothing
    // else: no tenant read, no post.
    assert.deepEqual({ reads: cost.reads, writes: cost.writes, posts: cost.posts }, { reads: 0, writes: 4, posts: 0 });
    // The flush that ends the $connect invocation: the modules' steps find nothing to publish or write.
    const flushed = await s.cost(() => s.server.flush());
    assert.deepEqual({ reads: flushed.reads, writes: flushed.writes, posts: flushed.posts }, { reads: 0, writes: 0, posts: 0 });
  });

  it('accepts the same subprotocols and records the same connections as the server with every module', async () => {
    const narrow = new XmppServer({ db: s.server.db, table: s.server.table, management: new ManagementApi(), logger: pino({ level: 'silent' }), modules: CONNECT_MODULES, version: 'test', clock: s.clock });
    const full = await connectAll(s.server, 'a-');
    const fewer = await connectAll(narrow, 'b-');
    assert.deepEqual(fewer, full);
    assert.deepEqual(full, ['xmpp', COMPONENT_SUBPROTOCOL, COMPONENT_SUBPROTOCOL, 'xmpp', undefined, undefined]);
    for (let i = 0; i < attempts.length; i++) {
      const [a, b] = await Promise.all([s.server.connections.get(`a-${i}`), s.server.connections.get(`b-${i}`)]);
      // checkAt: now (the wall clock) plus the check interval, so a few milliseconds apart.
      assert.deepEqual({ ...b, id: '', checkAt: 0 }, { ...a, id: '', checkAt: 0 }, attempts[i].join());
      assert.equal(typeof b?.checkAt, typeof a?.checkAt);
    }
    // The cap per source address (one here): the second connection from an address is refused by both.
    const limits = s.server.limits as { connectsPerAddress: number };
    const saved = limits.connectsPerAddress;
    limits.connectsPerAddress = 1;
    (narrow.limits as { connectsPerAddress: number }).connectsPerAddress = 1;
    try {
      const twice = async (server: XmppServer, ip: string) => {
        const one = (id: string) => server.connect({ connectionId: id, endpoint: 'https://ws.example.com/prod', connectedAt, sourceIp: ip, protocols: ['xmpp'] });
        return [await one(`${ip}-1`), await one(`${ip}-2`)];
      };
      assert.deepEqual(await twice(narrow, '198.51.100.1'), await twice(s.server, '198.51.100.2'));
      assert.deepEqual(await twice(s.server, '198.51.100.3'), ['xmpp', 'too-many']);
    } finally {
      limits.connectsPerAddress = saved;
    }
  });

  it('are every module that adds a subprotocol (the function\'s runtime against the full one)', () => {
    const env = { TABLE_NAME: 't', LOG_LEVEL: 'silent', AWS_REGION: 'eu-west-1' };
    const protocols = (rt: ReturnType<typeof createLambdaRuntime>) => [...rt.server.registry.streamProtocols.keys()].sort();
    assert.deepEqual(protocols(createLambdaRuntimeOf(CONNECT_MODULES, env)), protocols(createLambdaRuntime(env)));
    assert.deepEqual(protocols(createLambdaRuntime(env)), [COMPONENT_SUBPROTOCOL]);
  });
});
