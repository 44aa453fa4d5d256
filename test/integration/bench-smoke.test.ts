// CI's only run of the benchmark (issue 17): `npm run bench -- --smoke` with tiny counts completes and prints its
// rows, the in-process table and the generator's table against a separate xmpp-edge process. Nothing is timed:
// benchmarks are not timed tests (docs/architecture.md "Cost is a feature").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';

async function bench(args: string[]): Promise<string> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/run.ts', ...args], {
    cwd: new URL('../..', import.meta.url).pathname,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d.toString()));
  child.stderr.on('data', (d) => (err += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  assert.equal(code, 0, `the bench failed:\n${err.slice(-2000)}`);
  return out;
}

test('the benchmark runs to the end with tiny counts and prints every row', async () => {
  const out = await bench(['--smoke']);
  for (const row of ['login (PLAIN), sequential', 'chat 1:1, one message at a time', 'presence update to 2 contacts', 'MUC message to 3 occupants']) {
    assert.match(out, new RegExp(`^${row.replace(/[()]/g, '\\$&')}\\s+\\d+`, 'm'), `row ${row}`);
  }
  // Logins cost what the README says once every account has logged in once (the warm-up is not cut short).
  assert.match(out, /^login \(PLAIN\), sequential\s+\d+\s+\S+\s+\S+\s+\S+\s+\S+\s+6\.00\s+6\.00\s+6\.00$/m);
  for (const metric of ['logins/s', 'KiB per idle connection', '1:1 messages/s', 'CPU µs per 1:1 message', 'p50 ms at fixed rate', 'p99 ms at fixed rate', 'MUC deliveries/s']) {
    assert.match(out, new RegExp(`^\\| ${metric.replace(/[()/]/g, '\\$&')}.*\\| [\\d.]+ +\\|$`, 'm'), `compare row ${metric}`);
  }
});

test('the cold-start and latency-model runs complete and print every function and figure', async () => {
  const out = await bench(['--cold-start', '--latency-model', '--smoke']);
  for (const fn of ['admin', 'connect', 'disconnect', 'host-meta', 'ingest', 'sweeper', 'tenant-changes']) {
    assert.match(out, new RegExp(`^\\| ${fn} \\| \\d+ \\| \\d+ \\| \\d+ \\| \\d+ \\|$`, 'm'), `cold start of ${fn}`);
  }
  assert.match(out, /^Latency model: AWS typical \(DynamoDB 5 ms a call, PostToConnection 10 ms, FIFO hop 30 ms\)$/m);
  for (const figure of ['1:1 message p50 ms', '1:1 message p99 ms', 'room message \\(3 occupants, last delivery\\) p99 ms']) {
    assert.match(out, new RegExp(`^\\| ${figure} \\| [\\d.]+ \\|$`, 'm'), figure);
  }
});
