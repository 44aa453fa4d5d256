// The module API (docs/modules.md) from a module's point of view: a probe module installed next to
// the default ones sees every stanza in and out, the resolved recipients of a message, the messages
// nobody took, keeps typed data in the session entry, and is switched on per tenant; the XEP-0202
// example module appears only for tenants that list it in `features`.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { XmppModule } from '../../lib/core/modules.ts';
import { installModules, Registry } from '../../lib/core/modules.ts';
import type { XmppServer } from '../../lib/core/server.ts';
import type { SessionEntry } from '../../lib/store/sessions.ts';
import { purgePlanOf } from '../../lib/admin/purge.ts';
import { offlineOf } from '../../lib/extensions/offline/index.ts';
import { NS_TIME } from '../../lib/extensions/time.ts';
import { type TestServer, byName, connectClient, startTestServer, xml, type Element } from '../support/harness.ts';

/** What the probe saw, for the assertions. */
const seen = {
  inbound: [] as string[],
  outbound: [] as { connectionId: string; stanza: string }[],
  delivered: [] as { id: string; recipients: string[]; data: unknown[] }[],
  undeliverable: [] as string[],
};

const probe: XmppModule = {
  name: 'probe',
  enabled: 'optional',
  sessionData: true,
  depends: ['roster'],
  storage: { accountPartitions: ['probe'] },
  install(ctx) {
    const data = ctx.sessionData<{ boundAs: string }>();
    ctx.hook('session-bound', async ({ origin }) => {
      await data.set(origin, 'boundAs', origin.jid.toString());
    });
    ctx.hook('stanza/in', ({ stanza }) => {
      if (stanza.attrs.id?.startsWith('probe-')) seen.inbound.push(stanza.attrs.id);
    });
    ctx.filterOutbound((stanza, target) => {
      if (!stanza.attrs.id?.startsWith('probe-')) return stanza;
      seen.outbound.push({ connectionId: target.connectionId, stanza: stanza.toString() });
      // A filter may take a stanza over: nothing is posted.
      if (stanza.attrs.id.startsWith('probe-swallow')) return null;
      // … or change it on its way out.
      stanza.cnode(xml('seen', { xmlns: 'urn:example:probe' }));
      return stanza;
    });
    ctx.hook('message/delivered', ({ stanza, recipients }) => {
      if (!stanza.attrs.id?.startsWith('probe-')) return;
      seen.delivered.push({ id: stanza.attrs.id, recipients: recipients.map((r) => r.resource), data: recipients.map((r: SessionEntry) => data.of(r).boundAs) });
    });
    // Ahead of offline storage: a message whose id says so is kept here instead.
    ctx.hook(
      'message/undeliverable',
      ({ stanza }) => {
        if (!stanza.attrs.id?.startsWith('probe-keep')) return undefined;
        seen.undeliverable.push(stanza.attrs.id);
        return true;
      },
      10,
    );
  },
};

let s: TestServer;
before(async () => {
  s = await startTestServer({ seedDomains: ['localhost', 'probed.example'], extraModules: [probe] });
  await s.server.tenants.put({ domain: 'probed.example', enabled: true, features: ['probe'] });
  for (const jid of ['alice@probed.example', 'bob@probed.example', 'carol@localhost', 'dave@localhost', 'erin@probed.example']) await s.addUser(jid);
});
after(async () => {
  await s.stop();
});

const login = (username: string, domain: string, resource = 'r1') => connectClient(s.url, { username, domain, resource });
async function available(c: Awaited<ReturnType<typeof login>>) {
  await c.send(xml('presence'));
  await c.waitFor((el) => el.name === 'presence' && el.attrs.from === c.jid);
}

describe('a module on the message path', () => {
  it('counts stanzas in, sees and changes stanzas out, and hears who a message was delivered to, with its session data', async () => {
    const alice = await login('alice', 'probed.example');
    const bob = await login('bob', 'probed.example', 'phone');
    await available(bob);
    await alice.send(xml('message', { to: 'bob@probed.example', type: 'chat', id: 'probe-1' }, xml('body', {}, 'hi')));
    const got = await bob.waitFor(byName('message', { id: 'probe-1' }));
    // The delivery event follows the post: a round trip on alice's stream shows it was handled.
    await alice.iq(xml('iq', { type: 'get', to: 'probed.example' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
    // The filter added its element on the way out.
    assert.ok(got.getChild('seen', 'urn:example:probe'));
    assert.ok(seen.inbound.includes('probe-1'));
    assert.equal(seen.outbound.filter((o) => o.stanza.includes('probe-1')).length, 1);
    const delivery = seen.delivered.find((d) => d.id === 'probe-1');
    assert.deepEqual(delivery, { id: 'probe-1', recipients: ['phone'], data: ['bob@probed.example/phone'] });
    await alice.stop();
    await bob.stop();
  });

  it('a filter that takes a stanza over: nothing is posted, and the sender hears no error', async () => {
    const alice = await login('alice', 'probed.example', 'a2');
    const bob = await login('bob', 'probed.example', 'b2');
    await available(bob);
    await alice.send(xml('message', { to: 'bob@probed.example/b2', type: 'chat', id: 'probe-swallow-1' }, xml('body', {}, 'x')));
    await alice.send(xml('message', { to: 'bob@probed.example/b2', type: 'chat', id: 'after-swallow' }, xml('body', {}, 'y')));
    // Stanzas of one connection are handled in order, so the second arriving proves the first was handled.
    await bob.waitFor(byName('message', { id: 'after-swallow' }));
    assert.equal(bob.received.filter((el) => el.attrs.id === 'probe-swallow-1').length, 0);
    assert.ok(seen.outbound.some((o) => o.stanza.includes('probe-swallow-1')));
    assert.equal(alice.received.filter((el) => el.attrs.type === 'error').length, 0);
    await alice.stop();
    await bob.stop();
  });

  it('message/undeliverable: a module ahead of offline storage keeps what it wants; the rest is stored offline', async () => {
    const alice = await login('alice', 'probed.example', 'a3');
    await alice.send(xml('message', { to: 'erin@probed.example', type: 'chat', id: 'probe-keep-1' }, xml('body', {}, 'mine')));
    await alice.send(xml('message', { to: 'erin@probed.example', type: 'chat', id: 'probe-2' }, xml('body', {}, 'offline')));
    await alice.iq(xml('iq', { type: 'get', to: 'probed.example' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
    assert.deepEqual(seen.undeliverable, ['probe-keep-1']);
    const stored = (await offlineOf(s.server).list('erin@probed.example')).map((m) => m.xml);
    assert.equal(stored.length, 1);
    assert.match(stored[0], /probe-2/);
    await alice.stop();
  });

  it('an optional module is off for tenants that do not list it: no hooks, no session data', async () => {
    const carol = await login('carol', 'localhost');
    const dave = await login('dave', 'localhost');
    await available(dave);
    const before = seen.delivered.length;
    await carol.send(xml('message', { to: 'dave@localhost', type: 'chat', id: 'probe-off' }, xml('body', {}, 'hi')));
    await dave.waitFor(byName('message', { id: 'probe-off' }));
    await carol.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
    // Outbound filters see every connection (they decide themselves); the hooks are per tenant.
    assert.equal(seen.delivered.length, before);
    assert.ok(!seen.inbound.includes('probe-off'));
    const entries = await s.server.sessions.list('dave@localhost');
    assert.equal(entries[0].data?.probe?.boundAs, undefined);
    await carol.stop();
    await dave.stop();
  });
});

describe('per-tenant features: XEP-0202 Entity Time, the worked example', () => {
  const timeIq = () => xml('iq', { type: 'get', to: 'localhost' }, xml('time', { xmlns: NS_TIME }));
  const features = async (c: Awaited<ReturnType<typeof login>>) => {
    const info = await c.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })));
    const features = info.getChild('query')!.getChildren('feature').map((f: Element) => f.attrs.var);
    // Never empty: this also proves the answer was read right.
    assert.ok(features.includes('urn:xmpp:ping'));
    return features;
  };

  it('is off by default, on once the tenant lists "time" in features, and off again when removed, without a restart', async () => {
    const carol = await login('carol', 'localhost', 'time');
    assert.ok(!(await features(carol)).includes(NS_TIME));
    await assert.rejects(carol.iq(timeIq()), (err: { condition?: string }) => err.condition === 'service-unavailable');

    const tenant = (await s.server.tenants.get('localhost', 0))!;
    await s.server.tenants.put({ ...tenant, features: ['time'] });
    assert.ok((await features(carol)).includes(NS_TIME));
    const answer = (await carol.iq(timeIq())).getChild('time', NS_TIME)!;
    assert.equal(answer.getChildText('tzo'), '+00:00');
    assert.match(answer.getChildText('utc') ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);

    await s.server.tenants.put({ ...tenant, features: [] });
    assert.ok(!(await features(carol)).includes(NS_TIME));
    await carol.stop();
  });
});

describe('module declarations', () => {
  it("the purge plan is the modules' declared account partitions and steps", () => {
    const plan = purgePlanOf(s.server);
    for (const prefix of ['sessions', 'roster', 'offline', 'mucowned', 'probe']) assert.ok(plan.accountPartitions.includes(prefix), prefix);
    assert.ok(plan.steps.length >= 1); // MUC's rooms of the tenant
  });

  const fakeServer = { log: { child: () => ({}) } } as unknown as XmppServer;
  const module = (name: string, depends: string[] = [], install: XmppModule['install'] = () => undefined): XmppModule => ({ name, depends, install });

  it('installs each module after those it depends on, and hands over what their install returned', () => {
    const order: string[] = [];
    const registry = new Registry();
    installModules(fakeServer, registry, [
      module('b', ['a'], (ctx) => {
        order.push('b');
        return ctx.depends<string>('a');
      }),
      module('a', [], () => (order.push('a'), 'api of a')),
    ]);
    assert.deepEqual(order, ['a', 'b']);
    assert.equal(registry.apis.get('b'), 'api of a');
  });

  it('refuses a missing dependency, a cycle, and an undeclared use, with the names', () => {
    assert.throws(() => installModules(fakeServer, new Registry(), [module('a', ['nope'])]), /a depends on nope/);
    assert.throws(() => installModules(fakeServer, new Registry(), [module('a', ['b']), module('b', ['a'])]), /cycle: a → b → a/);
    assert.throws(
      () => installModules(fakeServer, new Registry(), [module('a'), module('b', [], (ctx) => ctx.depends('a'))]),
      /b uses a without declaring it/,
    );
  });

  it('a module must declare the partitions it opens and that it keeps session data', () => {
    const registry = new Registry();
    installModules({ ...fakeServer, db: {}, table: 't' } as unknown as XmppServer, registry, [
      {
        name: 'm',
        storage: { partitions: ['mine'] },
        install(ctx) {
          const store = ctx.openStore();
          assert.equal(store.pk('mine', 'x'), 'mine#x');
          assert.throws(() => store.pk('theirs', 'x'), /did not declare the partition prefix theirs/);
          assert.throws(() => ctx.sessionData(), /does not declare sessionData/);
        },
      },
    ]);
  });
});
