// A longer fuzzing run by hand (README "Hostile input"): `npm run fuzz -- --seed 7 --frames 20000`.
// The same fuzzer as test/integration/hostile-fuzz.test.ts, against an in-memory server of its own.
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { connectClient, startTestServer, xml } from '../test/support/harness.ts';
import { Fuzzer } from '../test/support/fuzzer.ts';
import { offlineOf } from '../lib/extensions/offline/index.ts';
import { parseFrame } from '../lib/xmpp/xml.ts';

const { values } = parseArgs({
  options: {
    seed: { type: 'string', default: String(Date.now() % 2 ** 31) },
    frames: { type: 'string', default: '5000' },
  },
});
const seed = Number(values.seed);
const frames = Number(values.frames);
if (!Number.isInteger(seed) || !Number.isInteger(frames) || frames <= 0) {
  console.error('usage: npm run fuzz -- [--seed <integer>] [--frames <count>]');
  process.exit(2);
}

const errors: string[] = [];
const logger = pino({ level: 'info' }, { write: (line: string) => void (JSON.parse(line).level >= 50 && errors.push(line)) });
const s = await startTestServer({ logger, limits: { maxStanzaBytes: 20_000 } });
for (const name of ['control', 'bob', 'fuzzer']) await s.addUser(`${name}@localhost`);
const control = await connectClient(s.url, { username: 'control' });
const bob = await connectClient(s.url, { username: 'bob', resource: 'desk' });
await bob.send(xml('presence'));
await bob.waitFor((el) => el.name === 'presence' && el.attrs.from === bob.jid);

const offline = offlineOf(s.server);
console.log(`fuzzing ${frames} frames with seed ${seed}`);
const started = Date.now();
const report = await new Fuzzer(
  { url: s.url, sender: 'fuzzer', recipient: bob, control, offlineIds: async (bare) => (await offline.list(bare)).map((m) => parseFrame(m.xml).attrs.id as string) },
  seed,
).run(frames);
await control.stop();
await bob.stop();
await s.stop();

console.log(JSON.stringify({ seed, ...report, lost: report.lost.length, errorsLogged: errors.length, seconds: (Date.now() - started) / 1000 }));
for (const line of report.lost) console.log(`LOST ${line}`);
for (const line of errors) console.log(`ERROR ${line}`);
process.exit(report.lost.length || errors.length ? 1 : 0);
