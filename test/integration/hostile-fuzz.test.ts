// The bounded random fuzzer with a fixed seed (a longer run by hand: `npm run fuzz`, README "Hostile
// input, faults and abuse"): mutated frames of a real session; nothing readable is lost silently, the control client is
// served throughout, and the server's log holds no error.
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { type WatchedServer, startWatchedServer } from '../support/hostile.ts';
import { Fuzzer } from '../support/fuzzer.ts';

const SEED = 20261201;
const FRAMES = 1000;

let w: WatchedServer;
before(async () => {
  w = await startWatchedServer({}, ['fuzzer']);
});
after(() => w.stop());

it(`${FRAMES} mutated frames (seed ${SEED}): nothing readable lost silently, the server serves on, no error logged`, async () => {
  const fuzzer = new Fuzzer(
    {
      url: w.s.url,
      sender: 'fuzzer',
      recipient: w.bob,
      control: w.control,
      offlineIds: w.offlineIds,
    },
    SEED,
  );
  const report = await fuzzer.run(FRAMES);
  assert.deepEqual(report.lost, []);
  assert.deepEqual(w.errorLines, [], 'no error in the server log');
  // The run exercised both sides: stanzas the server read and accounted for, and streams it ended.
  assert.ok(report.accounted >= FRAMES / 3, JSON.stringify(report));
  assert.ok(report.streamsEnded >= 5, JSON.stringify(report));
});
