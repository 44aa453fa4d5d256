// A longer fuzzing run by hand (README "Hostile input, faults and abuse"): `npm run fuzz -- --seed 7 --frames 20000`.
// The same fuzzer as test/integration/hostile-fuzz.test.ts, against an in-memory server of its own.
import { parseArgs } from 'node:util';
import { startWatchedServer } from '../test/support/hostile.ts';
import { Fuzzer } from '../test/support/fuzzer.ts';

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

const w = await startWatchedServer({}, ['fuzzer']);
console.log(`fuzzing ${frames} frames with seed ${seed}`);
const started = Date.now();
const report = await new Fuzzer(
  { url: w.s.url, sender: 'fuzzer', recipient: w.bob, control: w.control, offlineIds: w.offlineIds },
  seed,
).run(frames);
await w.stop();
const errors = w.errorLines;

console.log(JSON.stringify({ seed, ...report, lost: report.lost.length, errorsLogged: errors.length, seconds: (Date.now() - started) / 1000 }));
for (const line of report.lost) console.log(`LOST ${line}`);
for (const line of errors) console.log(`ERROR ${line}`);
process.exit(report.lost.length || errors.length ? 1 : 0);
