// `npm run bench` — how fast the local server is on the hot paths, and what each operation costs.
//
// Performance is measured in benchmarks, not in timed tests (docs/architecture.md "Cost is a feature").
// This starts the in-memory local server (dynalite + the in-process API Gateway emulation + the real handlers, on ephemeral loopback ports; the test
// harness's startTestServer) and drives it with raw `ws` clients (xmpp.js would cost more CPU than the server on
// 2 cores). It measures logins (PLAIN), 1:1 chat latency and throughput, a presence broadcast to 20 contacts and a
// groupchat message in a 50-occupant room, each with the DynamoDB calls and management-API posts per operation
// from the server's CallCounter, and how long `cdk synth` of the app (with bundling) takes. Every loop is bounded by a count and a time budget, so the run ends by itself
// (about 40 s on 2 cores). The numbers are for the local emulator, not for AWS: there, Lambda, SQS FIFO and
// network round trips to DynamoDB and API Gateway dominate.
//
//   npm run bench            prints the table
//   npm run bench -- --json  also writes bench/results.json
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join as joinPath } from 'node:path';
import { App } from 'aws-cdk-lib';
import { buildApp } from '../lib/infra/app.ts';
import { performance } from 'node:perf_hooks';
import { summarize } from '../lib/store/call-counter.ts';
import { RawClient, startTestServer } from '../test/support/harness.ts';
import { rosterOf } from '../lib/extensions/roster/index.ts';

// --smoke: tiny counts, to check in CI that the whole run completes and prints its rows (not a measurement).
const SMOKE = process.argv.includes('--smoke');
const USERS = SMOKE ? 70 : 200; // the MUC phase logs in users 100…149 (smoke: 60…62)
const LOGINS = SMOKE ? 4 : 200; // per login phase
const LOGIN_CONCURRENCY = SMOKE ? 2 : 10;
const CHAT_MESSAGES = SMOKE ? 5 : 500;
const PAIRS = SMOKE ? 1 : 8;
const IN_FLIGHT = SMOKE ? 2 : 8; // per pair
const THROUGHPUT_MS = SMOKE ? 300 : 6000;
const CONTACTS = SMOKE ? 2 : 20;
const BROADCASTS = SMOKE ? 3 : 100;
const OCCUPANTS = SMOKE ? 3 : 50;
const MUC_FIRST_USER = SMOKE ? 60 : 100;
const ROOM_MESSAGES = SMOKE ? 3 : 100;
const PHASE_BUDGET_MS = 15_000; // no phase's loop runs longer than this, whatever the counts say
const TIMEOUT_MS = 10_000; // one awaited delivery

if (process.argv.includes('--compare')) {
  // xmpp-edge next to Prosody and ejabberd (bench/compare.ts); --loopback adds the local server with its
  // DynamoDB and @connections calls over loopback HTTP, as before issue 17; --archive has every server archive
  // each 1:1 message (XEP-0313), where without it none does.
  const { compare, FULL } = await import('./compare.ts');
  const rounds = Number(/--rounds=(\d+)/.exec(process.argv.join(' '))?.[1] ?? FULL.rounds);
  const work = process.argv.includes('--archive') ? 'archive' : 'no archive';
  const out = await compare({ ...FULL, rounds }, { peers: true, loopbackVariant: process.argv.includes('--loopback'), work, only: /--only=(\w+)/.exec(process.argv.join(' '))?.[1], log: (x) => process.stderr.write(x) });
  console.log(out);
  process.exit(0);
}

if (process.argv.includes('--cold-start') || process.argv.includes('--latency-model')) {
  // What AWS will see (issue 17): each function's bundle imported in a fresh process, and end-to-end latency with
  // AWS's typical per-call latencies added to the local server (--latency-model=dynamoMs,postMs,fifoMs to change them).
  if (process.argv.includes('--cold-start')) {
    const { coldStarts, coldStartTable } = await import('./cold-start.ts');
    console.log(`\nCold start, ${new Date().toISOString().slice(0, 10)}, load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}\n`);
    console.log(coldStartTable(await coldStarts(SMOKE ? 1 : 5)));
  }
  if (process.argv.includes('--latency-model')) {
    const { latencyUnderModel } = await import('./compare.ts');
    const { AWS_LATENCY } = await import('../lib/local/local-server.ts');
    const model = /--latency-model=([\d.]+,[\d.]+,[\d.]+)/.exec(process.argv.join(' '))?.[1] ?? '';
    const figures = await latencyUnderModel(model, SMOKE ? 3 : 50, SMOKE ? 3 : 10);
    console.log(`\nLatency model: ${model ? `dynamoMs,postMs,fifoMs = ${model}` : `AWS typical (DynamoDB ${AWS_LATENCY.dynamoMs} ms a call, PostToConnection ${AWS_LATENCY.postMs} ms, FIFO hop ${AWS_LATENCY.fifoMs} ms)`}\n`);
    for (const [k, v] of Object.entries(figures)) console.log(`| ${k} | ${v.toFixed(1)} |`);
  }
  process.exit(0);
}

const runStart = performance.now();
const s = await startTestServer({ tenantWatchMs: 3_600_000, tenantCacheMs: 3_600_000, purgeIntervalMs: 3_600_000 });
const jid = (i: number) => `u${i}@localhost`;

/** A logged-in raw client that resolves a waiter when a frame carrying its token (`bm<n>x`) arrives. */
class Client {
  private waiting = new Map<string, (at: number) => void>();
  constructor(readonly raw: RawClient) {
    raw.ws.on('message', (data) => {
      const token = /bm\d+x/.exec(data.toString())?.[0];
      const done = token && this.waiting.get(token);
      if (done) {
        this.waiting.delete(token);
        done(performance.now());
      }
    });
  }
  /** When the frame with `token` arrives (register before sending). */
  arrival(token: string): Promise<number> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${token}`)), TIMEOUT_MS);
      this.waiting.set(token, (at) => (clearTimeout(timer), resolve(at)));
    });
  }
  send(frame: string): void {
    this.raw.send(frame);
  }
}

let seq = 0;
const token = () => `bm${++seq}x`;
const elapsed = (since: number) => performance.now() - since;

async function login(i: number): Promise<Client> {
  const raw = await RawClient.connect(s.url);
  await raw.login(`u${i}`, 'pw', 'bench');
  return new Client(raw);
}

/** Logs in and sends initial presence (a message to a bare JID goes to available resources only). */
async function available(i: number): Promise<Client> {
  const c = await login(i);
  const t = token();
  const reflected = c.arrival(t);
  c.send(`<presence xmlns="jabber:client"><status>${t}</status></presence>`);
  await reflected;
  return c;
}

/** Closes the clients and waits until the server has processed their $disconnect. */
async function closeAll(cs: Client[]): Promise<void> {
  await Promise.all(cs.map((c) => (c.raw.ws.close(), c.raw.closed)));
  const deadline = Date.now() + TIMEOUT_MS;
  while (s.gateway.connectionIds().length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  await s.gateway.idle();
}

/** Runs `jobs` jobs on `workers` workers until done or the phase budget is spent; returns the jobs done. */
async function pool(jobs: number, workers: number, job: (n: number) => Promise<void>): Promise<number> {
  const start = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (next < jobs && elapsed(start) < PHASE_BUDGET_MS) await job(next++);
    }),
  );
  return next;
}

const percentile = (xs: number[], p: number) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
};

interface Row {
  operation: string;
  n: number;
  perSecond?: number;
  p50?: number;
  p95?: number;
  p99?: number;
  reads: number;
  writes: number;
  posts: number;
  calls: Record<string, number>;
}
const rows: Row[] = [];

/**
 * Measures one phase: `run` returns the number of operations and their times (ms); the CallCounter's
 * difference around it (after the gateway settles) is divided by that number.
 */
async function phase(operation: string, run: () => Promise<{ n: number; times: number[]; ms: number }>): Promise<void> {
  await s.gateway.idle();
  const before = s.counter.snapshot();
  const { n, times, ms } = await run();
  await s.gateway.idle();
  const calls = s.counter.since(before);
  const per = (x: number) => Math.round((x / n) * 100) / 100;
  const { reads, writes, posts } = summarize(calls);
  rows.push({
    operation,
    n,
    perSecond: (n / ms) * 1000,
    ...(times.length ? { p50: percentile(times, 50), p95: percentile(times, 95), p99: percentile(times, 99) } : {}),
    reads: per(reads),
    writes: per(writes),
    posts: per(posts),
    calls: Object.fromEntries(Object.entries(calls).map(([k, v]) => [k, per(v)])),
  });
  process.stderr.write(`  ${operation}: ${n} in ${(ms / 1000).toFixed(1)} s (at ${(elapsed(runStart) / 1000).toFixed(1)} s)\n`);
}

process.stderr.write(`setting up ${USERS} accounts…\n`);
for (let i = 0; i < USERS; i += 20) await Promise.all(Array.from({ length: 20 }, (_, k) => s.addUser(jid(i + k), 'pw')));
// An account's first login also creates its session item (one more write): log everyone in once, unmeasured.
// Bounded by the count only: a warm-up cut short by the phase budget (a loaded machine) left accounts whose first
// login then fell in a measured phase, which is why loaded runs showed 6.21–6.41 writes per login, not 6.00.
const warm: Client[] = [];
for (let i = 0; i < USERS; i += LOGIN_CONCURRENCY) {
  warm.push(...(await Promise.all(Array.from({ length: Math.min(LOGIN_CONCURRENCY, USERS - i) }, (_, k) => login(i + k)))));
}
await closeAll(warm);

// ---- logins: connect, open, PLAIN, restart, bind -------------------------------------------------------
for (const [name, workers] of [['login (PLAIN), sequential', 1], [`login (PLAIN), ${LOGIN_CONCURRENCY} concurrent`, LOGIN_CONCURRENCY]] as const) {
  const open: Client[] = [];
  await phase(name, async () => {
    const times: number[] = [];
    const start = performance.now();
    const n = await pool(LOGINS, workers, async (i) => {
      const t0 = performance.now();
      open.push(await login(i % USERS));
      times.push(elapsed(t0));
    });
    return { n, times, ms: elapsed(start) };
  });
  await closeAll(open);
}

// ---- 1:1 chat between two available users: one message at a time, then many pairs in parallel ----------
const chat = (to: number, t: string) => `<message xmlns="jabber:client" to="${jid(to)}" type="chat" id="${t}"><body>hello ${t}</body></message>`;
{
  const [a, b] = [await login(0), await available(1)];
  for (let k = 0; k < 20; k++) {
    const t = token();
    const got = b.arrival(t);
    a.send(chat(1, t));
    await got;
  }
  await phase('chat 1:1, one message at a time', async () => {
    const times: number[] = [];
    const start = performance.now();
    const n = await pool(CHAT_MESSAGES, 1, async () => {
      const t = token();
      const got = b.arrival(t);
      const t0 = performance.now();
      a.send(chat(1, t));
      times.push((await got) - t0);
    });
    return { n, times, ms: elapsed(start) };
  });
  await closeAll([a, b]);
}
{
  const senders = await Promise.all(Array.from({ length: PAIRS }, (_, p) => login(2 + 2 * p)));
  const receivers = await Promise.all(Array.from({ length: PAIRS }, (_, p) => available(3 + 2 * p)));
  await phase(`chat 1:1, ${PAIRS} pairs × ${IN_FLIGHT} in flight`, async () => {
    const times: number[] = [];
    const start = performance.now();
    await Promise.all(
      senders.flatMap((a, p) =>
        Array.from({ length: IN_FLIGHT }, async () => {
          while (elapsed(start) < THROUGHPUT_MS) {
            const t = token();
            const got = receivers[p].arrival(t);
            const t0 = performance.now();
            a.send(chat(3 + 2 * p, t));
            times.push((await got) - t0);
          }
        }),
      ),
    );
    return { n: times.length, times, ms: elapsed(start) };
  });
  await closeAll([...senders, ...receivers]);
}

// ---- presence broadcast: a user with 20 mutual contacts, all available, changes its status ---------------
{
  const star = SMOKE ? 50 : 40;
  const fans = Array.from({ length: CONTACTS }, (_, k) => star + 1 + k);
  const item = (contact: number) => ({ jid: jid(contact), groups: [], subscription: 'both' as const, pendingOut: false, pendingIn: false, approved: false, inRoster: true });
  for (const f of fans) {
    await rosterOf(s.server).put(jid(star), item(f));
    await rosterOf(s.server).put(jid(f), item(star));
  }
  const contacts = await Promise.all(fans.map((f) => available(f)));
  const me = await available(star);
  await phase(`presence update to ${CONTACTS} contacts`, async () => {
    const times: number[] = [];
    const start = performance.now();
    const n = await pool(BROADCASTS, 1, async () => {
      const t = token();
      const got = contacts.map((c) => c.arrival(t));
      const t0 = performance.now();
      me.send(`<presence xmlns="jabber:client"><show>away</show><status>${t}</status></presence>`);
      times.push(Math.max(...(await Promise.all(got))) - t0);
    });
    return { n, times, ms: elapsed(start) };
  });
  await closeAll([me, ...contacts]);
}

// ---- MUC: a groupchat message in a 50-occupant room, until every occupant (the sender too) has it --------
{
  const room = 'bench@conference.localhost';
  const occupants: Client[] = [];
  for (let i = 0; i < OCCUPANTS; i += 10) occupants.push(...(await Promise.all(Array.from({ length: Math.min(10, OCCUPANTS - i) }, (_, k) => login(MUC_FIRST_USER + i + k)))));
  const join = async (c: Client, nick: string) => {
    c.send(`<presence xmlns="jabber:client" to="${room}/${nick}"><x xmlns="http://jabber.org/protocol/muc"><history maxstanzas="0"/></x></presence>`);
    // A join is done when the subject arrives, its last frame (XEP-0045 §7.2.15).
    await c.raw.next((el) => el.name === 'message' && !!el.getChild('subject'), TIMEOUT_MS);
  };
  await join(occupants[0], 'n0');
  const t = token();
  const configured = occupants[0].arrival(t);
  occupants[0].send(`<iq xmlns="jabber:client" type="set" id="${t}" to="${room}"><query xmlns="http://jabber.org/protocol/muc#owner"><x xmlns="jabber:x:data" type="submit"/></query></iq>`);
  await configured;
  for (let i = 1; i < OCCUPANTS; i += 10) await Promise.all(occupants.slice(i, i + 10).map((c, k) => join(c, `n${i + k}`)));
  await phase(`MUC message to ${OCCUPANTS} occupants`, async () => {
    const times: number[] = [];
    const start = performance.now();
    const n = await pool(ROOM_MESSAGES, 1, async (k) => {
      const t = token();
      const got = occupants.map((c) => c.arrival(t));
      const t0 = performance.now();
      occupants[k % OCCUPANTS].send(`<message xmlns="jabber:client" to="${room}" type="groupchat" id="${t}"><body>to all ${t}</body></message>`);
      times.push(Math.max(...(await Promise.all(got))) - t0);
    });
    return { n, times, ms: elapsed(start) };
  });
  await closeAll(occupants);
}

await s.stop();

// ---- cdk synth -------------------------------------------------------------------------------------------
// The CDK app as `cdk synth` builds it (cdk.json context, functions bundled with esbuild). Not in a smoke run.
const synthStart = performance.now();
if (!SMOKE) {
  const synthOut = mkdtempSync(joinPath(tmpdir(), 'xmpp-edge-bench-cdk-'));
  try {
    const context = JSON.parse(readFileSync(new URL('../cdk.json', import.meta.url), 'utf8')).context as Record<string, unknown>;
    const app = new App({ context, outdir: synthOut });
    buildApp(app, undefined);
    app.synth();
  } finally {
    rmSync(synthOut, { recursive: true, force: true });
  }
}
const synthMs = elapsed(synthStart);

// ---- the same generator against a separate xmpp-edge process, as --compare drives it (smoke: tiny counts) ---
let compared = '';
if (SMOKE) {
  const { compare, SMOKE: counts } = await import('./compare.ts');
  compared = await compare(counts, { peers: false, loopbackVariant: false, work: 'no archive', log: (x) => process.stderr.write(x) });
}

// ---- report ----------------------------------------------------------------------------------------------
const machine = `${cpus().length} × ${cpus()[0]?.model.trim() ?? 'cpu'}, Node ${process.version}`;
const fmt = (x: number | undefined, digits = 1) => (x === undefined ? '' : x.toFixed(digits));
const header = ['operation', 'n', 'ops/s', 'p50 ms', 'p95 ms', 'p99 ms', 'reads/op', 'writes/op', 'posts/op'];
const table = rows.map((r) => [r.operation, String(r.n), fmt(r.perSecond), fmt(r.p50), fmt(r.p95), fmt(r.p99), fmt(r.reads, 2), fmt(r.writes, 2), fmt(r.posts, 2)]);
const widths = header.map((h, c) => Math.max(h.length, ...table.map((row) => row[c].length)));
const line = (cells: string[]) => cells.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ');
console.log(`\nxmpp-edge benchmark, ${new Date().toISOString().slice(0, 10)}, ${machine}`);
console.log('Local emulator (dynalite in memory + in-process API Gateway, one process), not AWS.');
console.log('Latency: from the send until the (last) recipient has the frame; reads/writes: DynamoDB calls; posts: PostToConnection.\n');
console.log(line(header));
console.log(widths.map((w) => '-'.repeat(w)).join('  '));
for (const row of table) console.log(line(row));
console.log('\nAWS SDK commands per operation:');
for (const r of rows) console.log(`  ${r.operation}: ${Object.entries(r.calls).map(([k, v]) => `${k.replace('Command', '')} ${v}`).join(', ')}`);
if (!SMOKE) console.log(`\ncdk synth with bundling: ${(synthMs / 1000).toFixed(1)} s`);
if (compared) console.log(compared);
console.log(`\ntotal ${(elapsed(runStart) / 1000).toFixed(1)} s`);

if (process.argv.includes('--json')) {
  const out = new URL('./results.json', import.meta.url);
  writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), machine, target: 'local emulator (dynalite + in-process gateway), not AWS', rows, synthMs: Math.round(synthMs) }, null, 2) + '\n');
  console.log(`wrote ${out.pathname}`);
}
