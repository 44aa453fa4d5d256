// XEP-0313 archiving of a 1:1 message in one call: both archive items in one BatchWriteItem, what
// DynamoDB leaves unprocessed written again by a bounded number of further calls, and an archive write
// that fails for good logged (with the owners) and counted without costing the delivery. Faults are
// injected into the server's real DynamoDB client (a middleware on its stack), against dynalite.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { archiveOf } from '../../lib/extensions/mam/index.ts';
import { ArchiveWriteError, BATCH_WRITE_ATTEMPTS, type ArchivedMessage } from '../../lib/extensions/mam/store.ts';
import { offlineOf } from '../../lib/extensions/offline/index.ts';
import { type TestClient, type TestServer, byName, connectClient, startTestServer, xml } from '../support/harness.ts';

/**
 * What the next BatchWriteItem calls meet: `partial-once` writes the first request of the next call
 * and leaves the rest unprocessed (then no fault), `partial` does so and then processes nothing more,
 * `unprocessed` writes nothing and leaves everything unprocessed, `throw` fails the call; `throw-put`
 * fails a PutItem of an archive item.
 */
type Fault = 'none' | 'partial-once' | 'partial' | 'unprocessed' | 'throw' | 'throw-put';
let fault: Fault = 'none';
/** The number of requests in each BatchWriteItem call made. */
const batchCalls: number[] = [];

type Requests = Record<string, { PutRequest: { Item: Record<string, unknown> } }[]>;
type Next = (args: unknown) => Promise<{ output: { UnprocessedItems?: Requests } }>;

let s: TestServer;
const logs: Array<{ msg: string; level: number; [k: string]: unknown }> = [];
let n = 0;

async function user(prefix: string): Promise<string> {
  const name = await s.freshUser(prefix);
  return `${name}@localhost`;
}
const login = (jid: string) => connectClient(s.url, { username: jid.split('@')[0], domain: 'localhost', password: 'secret', resource: 'r1' });
async function online(jid: string): Promise<TestClient> {
  const c = await login(jid);
  await c.send(xml('presence'));
  await c.waitFor((el) => el.name === 'presence' && el.attrs.from === c.jid);
  return c;
}
const chat = (to: string, id: string, body: string) => xml('message', { to, type: 'chat', id }, xml('body', {}, body));
/** Everything in `owner`'s archive. */
const archived = async (owner: string) =>
  (await archiveOf(s.server).page(owner, { from: '0', to: 'g', forward: true, max: 50, anchors: [] }, s.clock.now())) as { page: ArchivedMessage[] };
const bodiesOf = async (owner: string) => (await archived(owner)).page.map((m) => /<body>([^<]*)<\/body>/.exec(m.xml)?.[1]);
const archiveBytes = () => s.server.metrics.usageToday('localhost', 'archiveBytes');
const notArchivedLogs = () => logs.filter((l) => l.msg === 'message not archived: archive write failed');

before(async () => {
  s = await startTestServer({ logger: pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line)) }) });
  (s.server.db as unknown as { middlewareStack: { add: Function } }).middlewareStack.add(
    (next: Next, ctx: { commandName?: string }) => async (args: { input: { RequestItems: Requests; Item?: { pk?: string } } }) => {
      if (fault === 'throw-put' && ctx.commandName === 'PutItemCommand' && args.input.Item?.pk?.startsWith('mam#')) throw Object.assign(new Error('injected put failure'), { name: 'InternalServerError' });
      if (ctx.commandName !== 'BatchWriteItemCommand') return next(args);
      const [table, requests] = Object.entries(args.input.RequestItems)[0];
      batchCalls.push(requests.length);
      if (fault === 'throw') throw Object.assign(new Error('injected failure'), { name: 'InternalServerError' });
      if (fault === 'unprocessed') return { output: { UnprocessedItems: args.input.RequestItems, $metadata: {} }, response: {} };
      if (fault === 'partial' || fault === 'partial-once') {
        if (fault === 'partial-once') fault = 'none';
        if (requests.length === 1) return { output: { UnprocessedItems: args.input.RequestItems, $metadata: {} }, response: {} };
        const [first, ...rest] = requests;
        const res = await next({ ...args, input: { ...args.input, RequestItems: { [table]: [first] } } });
        res.output.UnprocessedItems = rest.length ? { [table]: rest } : {};
        return res;
      }
      return next(args);
    },
    { step: 'initialize', name: 'archiveWriteFaults' },
  );
});
afterEach(() => {
  fault = 'none';
  batchCalls.length = 0;
  logs.length = 0;
});
after(() => s.stop());

describe('a message into both archives in one BatchWriteItem', () => {
  it('items left unprocessed are written by a second call: both archives have the message, and both copies are counted', async () => {
    const [a, b] = [await user('pa'), await user('pb')];
    const [ca, cb] = [await login(a), await online(b)];
    const bytesBefore = archiveBytes();
    fault = 'partial-once';
    await ca.send(chat(b, 'p1', 'retried'));
    await cb.waitFor(byName('message', { id: 'p1' }));
    await ca.roundTrip(); // the message's frame, and its archive write, are done
    assert.deepEqual(batchCalls, [2, 1], 'both items, then the one left unprocessed');
    assert.deepEqual(await bodiesOf(a), ['retried']);
    assert.deepEqual(await bodiesOf(b), ['retried']);
    const [mine, theirs] = [(await archived(a)).page[0], (await archived(b)).page[0]];
    assert.equal(archiveBytes() - bytesBefore, Buffer.byteLength(mine.xml) + Buffer.byteLength(theirs.xml));
    assert.deepEqual(notArchivedLogs(), []);
    await ca.stop();
    await cb.stop();
  });

  it(`a copy still unprocessed after ${BATCH_WRITE_ATTEMPTS} calls: the message is delivered, the sender hears no error, the owner is logged, Errors counted, only the copy written is counted`, async () => {
    const [a, b] = [await user('pc'), await user('pd')];
    const [ca, cb] = [await login(a), await online(b)];
    const bytesBefore = archiveBytes();
    const errorsBefore = s.server.metrics.total('Errors', 'localhost');
    fault = 'partial';
    await ca.send(chat(b, 'p2', 'half archived'));
    const got = await cb.waitFor(byName('message', { id: 'p2' }));
    assert.equal(got.getChildText('body'), 'half archived');
    await cb.expectNothing(s, (el) => el.attrs.type === 'error', ca);
    await ca.expectNothing(s, (el) => el.attrs.type === 'error');
    assert.deepEqual(batchCalls, [2, ...Array(BATCH_WRITE_ATTEMPTS - 1).fill(1)]);
    assert.deepEqual(await bodiesOf(a), ['half archived']);
    assert.deepEqual(await bodiesOf(b), []);
    const [line] = notArchivedLogs();
    assert.ok(line, 'an error line for the copy not written');
    assert.equal(line.level, 50, 'logged at error level');
    assert.deepEqual([line.unwritten, line.written], [[b], [a]]);
    assert.equal(s.server.metrics.total('Errors', 'localhost') - errorsBefore, 1);
    assert.equal(archiveBytes() - bytesBefore, Buffer.byteLength((await archived(a)).page[0].xml));

    // The server goes on: the next message is archived on both sides.
    fault = 'none';
    await ca.send(chat(b, 'p3', 'archived'));
    await cb.waitFor(byName('message', { id: 'p3' }));
    await ca.roundTrip();
    assert.deepEqual(await bodiesOf(a), ['half archived', 'archived']);
    assert.deepEqual(await bodiesOf(b), ['archived']);
    await ca.stop();
    await cb.stop();
  });

  it('a message to an offline user whose archive write fails is still kept offline, and the failure is logged', async () => {
    const [a, b] = [await user('pe'), await user('pf')];
    const ca = await login(a);
    fault = 'throw';
    await ca.send(chat(b, 'p4', 'kept offline'));
    await ca.expectNothing(s, (el) => el.attrs.type === 'error');
    const kept = await offlineOf(s.server).list(b);
    assert.equal(kept.length, 1);
    assert.match(kept[0].xml, /kept offline/);
    assert.deepEqual(batchCalls, [2], 'a call that fails is not repeated');
    const [line] = notArchivedLogs();
    assert.deepEqual([line?.unwritten, line?.written], [[a, b], []]);
    assert.match(String((line?.err as { message?: string })?.message), /injected failure/);
    await ca.stop();
  });
});

describe('a message into one archive: one PutItem', () => {
  it('a PutItem that fails: the message is delivered, the sender hears no error, the owner is logged', async () => {
    const [a, b] = [await user('pg'), await user('ph')];
    const [ca, cb] = [await login(a), await online(b)];
    // XEP-0441: the sender keeps nothing, so only the recipient's archive is written.
    await ca.iq(xml('iq', { type: 'set' }, xml('prefs', { xmlns: 'urn:xmpp:mam:2', default: 'never' }, xml('always'), xml('never'))));
    const errorsBefore = s.server.metrics.total('Errors', 'localhost');
    fault = 'throw-put';
    await ca.send(chat(b, 'p5', 'not archived'));
    await cb.waitFor(byName('message', { id: 'p5' }));
    await ca.expectNothing(s, (el) => el.attrs.type === 'error');
    assert.deepEqual(batchCalls, []);
    const [line] = notArchivedLogs();
    assert.deepEqual([line?.unwritten, line?.written], [[b], []]);
    assert.match(String((line?.err as { message?: string })?.message), /injected put failure/);
    assert.equal(s.server.metrics.total('Errors', 'localhost') - errorsBefore, 1);
    assert.deepEqual(await bodiesOf(b), []);
    await ca.stop();
    await cb.stop();
  });
});

describe('ArchiveStore.appendToAll', () => {
  const message = (id: string, body: string): ArchivedMessage => ({ id, peer: 'peer@localhost', xml: `<message><body>${body}</body></message>`, expiresAt: s.clock.now() + 86_400_000 });
  const owners = (count: number) => Array.from({ length: count }, () => `batch${++n}@localhost`);

  it('more than 25 archives: one BatchWriteItem per 25', async () => {
    const all = owners(30);
    await archiveOf(s.server).appendToAll(all.map((owner) => ({ owner, message: message('0000000000010000000a', 'many') })));
    assert.deepEqual(batchCalls, [25, 5]);
    for (const owner of [all[0], all[24], all[29]]) assert.deepEqual(await bodiesOf(owner), ['many']);
  });

  it('one archive: one PutItem, no BatchWriteItem', async () => {
    const [owner] = owners(1);
    const cost = await s.cost(() => archiveOf(s.server).appendToAll([{ owner, message: message('0000000000010000000b', 'one') }]));
    assert.deepEqual(cost.calls, { 'dynamodb:PutItemCommand': 1 });
    assert.deepEqual(await bodiesOf(owner), ['one']);
  });

  it('nothing processed: an ArchiveWriteError naming every owner, after the bounded attempts', async () => {
    const all = owners(2);
    fault = 'unprocessed';
    const err = await archiveOf(s.server)
      .appendToAll(all.map((owner) => ({ owner, message: message('0000000000010000000c', 'lost') })))
      .then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof ArchiveWriteError, String(err));
    assert.deepEqual([err.unwritten, err.written], [all, []]);
    assert.equal(batchCalls.length, BATCH_WRITE_ATTEMPTS);
  });
});
