// TenantWatcher (lib/core/tenant-lifecycle.ts), the local stand-in for the table stream: which changes
// of a tenant item it tells the modules ("tenant/changed"), against which baseline, and that a handler
// that fails or never settles does not lose the change or stop the later polls.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TenantWatcher } from '../../lib/core/tenant-lifecycle.ts';
import { Hooks } from '../../lib/core/hooks.ts';
import type { XmppServer } from '../../lib/core/server.ts';
import type { TenantRecord, TenantStore } from '../../lib/store/tenants.ts';

interface Changed {
  tenant: string;
  before?: TenantRecord;
  after?: TenantRecord;
}

/** The parts of the server the watcher uses: its events, the tenant's connections (none here), its log. */
function fakeServer() {
  const events = new Hooks<unknown>();
  const errors: { fields: Record<string, unknown>; msg: string }[] = [];
  const log = { error: (fields: Record<string, unknown>, msg: string) => errors.push({ fields, msg }), info() {}, warn() {}, debug() {} };
  const server = { registry: { events }, connections: { idsOfTenant: async () => [] }, endConnection: async () => undefined, log } as unknown as XmppServer;
  return { server, events, errors };
}

/** A tenant table: `items` is what the next poll reads. */
function fakeStore(items: Map<string, TenantRecord>) {
  let polls = 0;
  const store = {
    async getMany(domains: string[]) {
      polls++;
      return new Map(domains.map((d) => [d, items.get(d) && structuredClone(items.get(d))]));
    },
  } as unknown as TenantStore;
  return { store, polls: () => polls };
}

const A = 'a.example';
const enabled: TenantRecord = { domain: A, enabled: true, components: [{ domain: `bot.${A}`, kind: 'connected', enabled: true, secret: 's' }] } as TenantRecord;
const botOff: TenantRecord = { ...enabled, components: [{ domain: `bot.${A}`, kind: 'connected', enabled: false, secret: 's' }] } as TenantRecord;

describe('TenantWatcher', () => {
  it("tells a change made right after a domain's first stream opened, before any poll, against what the handlers read", async () => {
    const { server, events } = fakeServer();
    const changes: Changed[] = [];
    events.on('tenant/changed', (e) => void changes.push(e as Changed));
    const items = new Map([[A, enabled]]);
    const { store } = fakeStore(items);
    const inUse: string[] = [];
    // The handlers read the item as the stream opened (TenantStore.lastServed), then an admin disables the component.
    const served = new Map<string, { tenant: TenantRecord | undefined }>([[A, { tenant: structuredClone(enabled) }]]);
    const watcher = new TenantWatcher(server, store, () => inUse, 1000, (d) => served.get(d));
    await watcher.tick();
    inUse.push(A);
    items.set(A, botOff);
    await watcher.tick();
    assert.deepEqual(changes, [{ server, tenant: A, before: enabled, after: botOff }]);
    // Polled again unchanged: nothing more.
    await watcher.tick();
    assert.equal(changes.length, 1);
  });

  it('tells nothing at the first poll of a domain the handlers have not read, nor when the item is what they read', async () => {
    const { server, events } = fakeServer();
    const changes: Changed[] = [];
    events.on('tenant/changed', (e) => void changes.push(e as Changed));
    const items = new Map([[A, enabled], ['b.example', { domain: 'b.example', enabled: true } as TenantRecord]]);
    const { store } = fakeStore(items);
    const served = new Map<string, { tenant: TenantRecord | undefined }>([[A, { tenant: structuredClone(enabled) }]]);
    const watcher = new TenantWatcher(server, store, () => [A, 'b.example'], 1000, (d) => served.get(d));
    await watcher.tick();
    assert.equal(changes.length, 0);
    items.set('b.example', { domain: 'b.example', enabled: true, limits: { stanzasPerSecond: 5 } } as TenantRecord);
    await watcher.tick();
    assert.deepEqual(changes.map((c) => c.tenant), ['b.example']);
  });

  it('a handler that throws is logged, and the same change is told again at the next poll until it is handled', async () => {
    const { server, events, errors } = fakeServer();
    const changes: Changed[] = [];
    let failures = 1;
    events.on('tenant/changed', (e) => {
      if (failures-- > 0) throw new Error('DynamoDB unavailable');
      changes.push(e as Changed);
    });
    const items = new Map([[A, enabled]]);
    const { store } = fakeStore(items);
    const watcher = new TenantWatcher(server, store, () => [A]);
    await watcher.tick();
    items.set(A, botOff);
    await watcher.tick();
    assert.deepEqual(changes, []);
    assert.equal(errors.length, 1);
    assert.equal(errors[0].msg, 'tenant change not handled: retried at the next tick');
    assert.equal(errors[0].fields.domain, A);
    await watcher.tick();
    assert.deepEqual(changes, [{ server, tenant: A, before: enabled, after: botOff }]);
    await watcher.tick();
    assert.equal(changes.length, 1);
  });

  it('a tick whose handler never settles does not stop the later ones: past stallMs they go on, and the log says so', { timeout: 30_000 }, async () => {
    const { server, events, errors } = fakeServer();
    let calls = 0;
    let retried!: () => void;
    const second = new Promise<void>((resolve) => (retried = resolve));
    events.on('tenant/changed', () => {
      calls++;
      if (calls === 1) return new Promise(() => {}); // never settles
      retried();
      return undefined;
    });
    const items = new Map([[A, enabled]]);
    const { store, polls } = fakeStore(items);
    const watcher = new TenantWatcher(server, store, () => [A], 5, () => ({ tenant: enabled }), 50);
    items.set(A, botOff);
    watcher.start();
    // The watcher's timer does not hold the process open (unref); this does, while the test waits.
    const keepAlive = setInterval(() => {}, 1000);
    try {
      // The first tick hangs in the handler; a later one, started past stallMs, tells the change again.
      await second;
      assert.equal(calls, 2);
      assert.ok(polls() >= 2);
      assert.ok(errors.length >= 1);
      for (const e of errors) assert.equal(e.msg, 'tenant watch tick stalled: the next ticks no longer wait for it');
    } finally {
      // stop() does not wait for the stalled tick either.
      await watcher.stop();
      clearInterval(keepAlive);
    }
  });

  it('catchUp() waits for the tick in flight, then polls once more: a change written before the call is told by then, once, and no two ticks run side by side', async () => {
    const { server, events } = fakeServer();
    const changes: Changed[] = [];
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let entered!: () => void;
    const inHandler = new Promise<void>((resolve) => (entered = resolve));
    events.on('tenant/changed', async (e) => {
      changes.push(e as Changed);
      if (changes.length === 1) {
        entered();
        await held;
      }
    });
    const items = new Map([[A, enabled]]);
    const { store } = fakeStore(items);
    let inFlight = 0;
    let most = 0;
    const counting = {
      async getMany(domains: string[]) {
        most = Math.max(most, ++inFlight);
        try {
          return await store.getMany(domains);
        } finally {
          inFlight--;
        }
      },
    } as unknown as TenantStore;
    const watcher = new TenantWatcher(server, counting, () => [A], 5, () => ({ tenant: enabled }));
    items.set(A, botOff);
    watcher.start();
    const keepAlive = setInterval(() => {}, 1000);
    try {
      await inHandler; // the timer's tick is telling the first change, and waits
      const noBot = { ...enabled, components: [] } as TenantRecord;
      items.set(A, noBot);
      let caughtUp = false;
      const catching = watcher.catchUp().then(() => (caughtUp = true));
      await new Promise((r) => setImmediate(r));
      assert.equal(caughtUp, false, 'not before the tick in flight is done');
      release();
      await catching;
      assert.deepEqual(changes.map((c) => [c.before, c.after]), [[enabled, botOff], [botOff, noBot]]);
      assert.equal(most, 1);
    } finally {
      await watcher.stop();
      clearInterval(keepAlive);
    }
  });
});
