// The bounded random fuzzer with a fixed seed (a longer run by hand: `npm run fuzz`, README "Hostile
// input"): mutated frames of a real session; nothing readable is lost silently, the control client is
// served throughout, and the server's log holds no error.
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { pino } from 'pino';
import { type TestClient, type TestServer, connectClient, startTestServer, xml } from '../support/harness.ts';
import { Fuzzer } from '../support/fuzzer.ts';
import { offlineOf } from '../../lib/extensions/offline/index.ts';
import { parseFrame } from '../../lib/xmpp/xml.ts';

const SEED = 20261201;
const FRAMES = 1000;

const errorLines: string[] = [];
const logger = pino({ level: 'info' }, { write: (line: string) => void (JSON.parse(line).level >= 50 && errorLines.push(line)) });

let s: TestServer;
let control: TestClient;
let bob: TestClient;

before(async () => {
  s = await startTestServer({ logger, limits: { maxStanzaBytes: 20_000 } });
  for (const name of ['control', 'bob', 'fuzzer']) await s.addUser(`${name}@localhost`);
  control = await connectClient(s.url, { username: 'control' });
  bob = await connectClient(s.url, { username: 'bob', resource: 'desk' });
  await bob.send(xml('presence'));
  await bob.waitFor((el) => el.name === 'presence' && el.attrs.from === bob.jid);
});
after(async () => {
  await control.stop();
  await bob.stop();
  await s.stop();
});

it(`${FRAMES} mutated frames (seed ${SEED}): nothing readable lost silently, the server serves on, no error logged`, async () => {
  const offline = offlineOf(s.server);
  const fuzzer = new Fuzzer(
    {
      url: s.url,
      sender: 'fuzzer',
      recipient: bob,
      control,
      offlineIds: async (bare) => (await offline.list(bare)).map((m) => parseFrame(m.xml).attrs.id as string),
    },
    SEED,
  );
  const report = await fuzzer.run(FRAMES);
  assert.deepEqual(report.lost, []);
  assert.deepEqual(errorLines, [], 'no error in the server log');
  // The run exercised both sides: stanzas the server read and accounted for, and streams it ended.
  assert.ok(report.accounted >= FRAMES / 3, JSON.stringify(report));
  assert.ok(report.streamsEnded >= 5, JSON.stringify(report));
});
