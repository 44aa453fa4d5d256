// `npm run bench -- --compare`: xmpp-edge's local server next to Prosody and ejabberd (issue 17), each in its own
// process, driven by the same generator (raw XMPP over WebSocket, RFC 7395: PLAIN login, 1:1 chat, a MUC room),
// the servers' runs of each figure interleaved. Prosody and ejabberd run from their Debian packages when
// installed, with a private configuration and data under a temporary folder, on free loopback ports (never /etc,
// never the system services); without them xmpp-edge runs alone. Accounts are created with each server's own
// tool: the admin API for xmpp-edge, `prosodyctl --config`, `ejabberdctl --config-dir`. Every loop is bounded by
// a count and a time budget.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { WebSocket } from 'ws';

export interface CompareCounts {
  users: number;
  loginsInFlight: number;
  pairs: number;
  inFlight: number;
  chatMs: number;
  fixedRate: number;
  fixedMs: number;
  occupants: number;
  roomMessages: number;
  rounds: number;
}
export const FULL: CompareCounts = { users: 400, loginsInFlight: 50, pairs: 8, inFlight: 8, chatMs: 5000, fixedRate: 50, fixedMs: 5000, occupants: 50, roomMessages: 100, rounds: 1 };
export const SMOKE: CompareCounts = { users: 6, loginsInFlight: 3, pairs: 1, inFlight: 2, chatMs: 300, fixedRate: 20, fixedMs: 300, occupants: 3, roomMessages: 3, rounds: 1 };

const TIMEOUT_MS = 15_000;
const PHASE_BUDGET_MS = 60_000;
const DOMAIN = 'localhost';
const ROOM = `bench@conference.${DOMAIN}`;
const PASSWORD = 'bench-pw';

interface Target {
  name: string;
  url: string;
  pid: number;
  /** Where the server can be asked (xmpp-edge: SIGUSR2): collects garbage and returns the bytes held then. */
  collect?(): Promise<number>;
  createUsers(names: string[]): Promise<void>;
  stop(): Promise<void>;
}

/**
 * What each server does with a 1:1 message besides delivering it. Prosody's and ejabberd's configurations below
 * enable no archive unless asked; xmpp-edge archives by default (XEP-0313, both accounts), so without --archive
 * its bench tenant has the archive turned off, and with --archive all three archive every 1:1 message in the
 * sender's and the recipient's archive: the same work either way. The first delivered message shows which
 * (an archived one carries an XEP-0359 stanza id), and a server that does otherwise stops the run.
 */
export type Work = 'no archive' | 'archive';

// ---- generator: one raw XMPP-over-WebSocket client ------------------------------------------------------------

class Conn {
  private frames: string[] = [];
  private waiters: Array<{ test: (f: string) => boolean; resolve: (f: string) => void; timer: NodeJS.Timeout }> = [];
  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const f = data.toString();
      const i = this.waiters.findIndex((w) => w.test(f));
      if (i < 0) return void (this.frames.length < 200 && this.frames.push(f));
      const [w] = this.waiters.splice(i, 1);
      clearTimeout(w.timer);
      w.resolve(f);
    });
  }
  static open(url: string): Promise<Conn> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, 'xmpp', { perMessageDeflate: false });
      ws.once('open', () => resolve(new Conn(ws)));
      ws.once('error', reject);
    });
  }
  /** The next frame matching `test` (one already received counts). */
  next(test: (f: string) => boolean, what = 'frame'): Promise<string> {
    const i = this.frames.findIndex(test);
    if (i >= 0) return Promise.resolve(this.frames.splice(i, 1)[0]);
    const p = new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), TIMEOUT_MS);
      this.waiters.push({ test, resolve, timer });
    });
    p.catch(() => undefined); // awaited by the caller; one of many (a room's deliveries) may be left behind
    return p;
  }
  send(frame: string): void {
    this.ws.send(frame);
  }
  async login(user: string): Promise<void> {
    const open = `<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="${DOMAIN}" version="1.0"/>`;
    this.send(open);
    await this.next((f) => f.includes('<stream:features') || f.includes('<features'), 'features');
    this.send(`<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="PLAIN">${Buffer.from(`\0${user}\0${PASSWORD}`).toString('base64')}</auth>`);
    const answer = await this.next((f) => f.startsWith('<success') || f.startsWith('<failure'), 'sasl');
    if (answer.startsWith('<failure')) throw new Error(`login of ${user} refused: ${answer}`);
    this.frames = [];
    this.send(open);
    await this.next((f) => f.includes('urn:ietf:params:xml:ns:xmpp-bind'), 'features after restart');
    this.send(`<iq xmlns="jabber:client" type="set" id="bind"><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"><resource>b</resource></bind></iq>`);
    await this.next((f) => f.startsWith('<iq') && /id=["']bind["']/.test(f), 'bind');
  }
  /** Initial presence, done when its reflection arrives (RFC 6121 §4.2.2). */
  async available(): Promise<void> {
    this.send(`<presence xmlns="jabber:client"/>`);
    await this.next((f) => f.startsWith('<presence'), 'own presence');
  }
  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.ws.readyState === WebSocket.CLOSED) return resolve();
      this.ws.once('close', () => resolve());
      try {
        this.ws.send(`<close xmlns="urn:ietf:params:xml:ns:xmpp-framing"/>`);
      } catch {
        /* already closing */
      }
      this.ws.close();
      setTimeout(() => (this.ws.terminate(), resolve()), 2000).unref();
    });
  }
}

/** Runs `jobs` jobs on `workers` workers until done or `budgetMs` is spent (setup work passes Infinity). */
async function pool(jobs: number, workers: number, job: (n: number) => Promise<void>, budgetMs = PHASE_BUDGET_MS): Promise<number> {
  const start = performance.now();
  let next = 0;
  let done = 0;
  await Promise.all(
    Array.from({ length: Math.min(workers, jobs) }, async () => {
      while (next < jobs && performance.now() - start < budgetMs) {
        await job(next++);
        done++;
      }
    }),
  );
  return done;
}

const percentile = (xs: number[], p: number) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? NaN;
};

/** CPU seconds (user + system) of a process and its children that have ended, from /proc. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}
function rssKiB(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);
}
const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---- the figures ------------------------------------------------------------------------------------------------

type Figures = Record<string, number>;
const user = (i: number) => `u${i}`;
let seq = 0;
const token = () => `t${++seq}x`;
const chat = (to: string, t: string) => `<message xmlns="jabber:client" to="${to}@${DOMAIN}" type="chat" id="${t}"><body>hello ${t}</body></message>`;

async function loginsAndMemory(t: Target, c: CompareCounts): Promise<Figures> {
  const conns: Conn[] = [];
  const heldBefore = await t.collect?.();
  const before = rssKiB(t.pid);
  const start = performance.now();
  const n = await pool(c.users, c.loginsInFlight, async (i) => {
    const conn = await Conn.open(t.url);
    await conn.login(user(i));
    conns.push(conn);
  });
  const ms = performance.now() - start;
  await settle(1000); // let the server finish what the logins started before reading its memory
  const after = rssKiB(t.pid);
  const heldAfter = await t.collect?.();
  await Promise.all(conns.map((x) => x.close()));
  return {
    'logins/s': (n / ms) * 1000,
    'KiB per idle connection': (after - before) / n,
    ...(heldBefore !== undefined && heldAfter !== undefined ? { 'KiB per idle connection, held after GC (Node heap)': (heldAfter - heldBefore) / 1024 / n } : {}),
  };
}

async function chatPairs(t: Target, c: CompareCounts): Promise<{ senders: Conn[]; receivers: Conn[] }> {
  const senders: Conn[] = [];
  const receivers: Conn[] = [];
  for (let p = 0; p < c.pairs; p++) {
    const [a, b] = await Promise.all([Conn.open(t.url), Conn.open(t.url)]);
    await Promise.all([a.login(user(2 * p)), b.login(user(2 * p + 1)).then(() => b.available())]);
    senders.push(a);
    receivers.push(b);
  }
  return { senders, receivers };
}

async function chatThroughput(t: Target, c: CompareCounts, work: Work): Promise<Figures> {
  const { senders, receivers } = await chatPairs(t, c);
  await checkWork(t, senders[0], receivers[0], work);
  const cpu0 = cpuSeconds(t.pid);
  const start = performance.now();
  let n = 0;
  await Promise.all(
    senders.flatMap((a, p) =>
      Array.from({ length: c.inFlight }, async () => {
        while (performance.now() - start < c.chatMs) {
          const tk = token();
          const got = receivers[p].next((f) => f.includes(tk), tk);
          a.send(chat(user(2 * p + 1), tk));
          await got;
          n++;
        }
      }),
    ),
  );
  const ms = performance.now() - start;
  const cpu = cpuSeconds(t.pid) - cpu0;
  await Promise.all([...senders, ...receivers].map((x) => x.close()));
  return { '1:1 messages/s': (n / ms) * 1000, 'CPU µs per 1:1 message': (cpu / n) * 1e6 };
}

/** One message from the first pair: does the server archive it (an XEP-0359 stanza id on the delivery), as `work` says? */
async function checkWork(t: Target, a: Conn, b: Conn, work: Work): Promise<void> {
  const tk = token();
  const got = b.next((f) => f.includes(tk), tk);
  a.send(chat(user(1), tk));
  const archived = (await got).includes('urn:xmpp:sid:0');
  if (archived !== (work === 'archive')) throw new Error(`${t.name} ${archived ? 'archives' : 'does not archive'} 1:1 messages; the run compares servers that do ${work === 'archive' ? '' : 'not '}archive them`);
}

async function fixedRateLatency(t: Target, c: CompareCounts): Promise<Figures> {
  const { senders, receivers } = await chatPairs(t, { ...c, pairs: 1 });
  const [a, b] = [senders[0], receivers[0]];
  const times: Array<Promise<number>> = [];
  const count = Math.max(1, Math.round((c.fixedMs / 1000) * c.fixedRate));
  const start = performance.now();
  for (let k = 0; k < count; k++) {
    // The send schedule is fixed in advance, so a slow answer does not slow the offered rate.
    const due = start + (k * 1000) / c.fixedRate;
    const wait = due - performance.now();
    if (wait > 0) await settle(wait);
    const tk = token();
    const t0 = performance.now();
    times.push(b.next((f) => f.includes(tk), tk).then(() => performance.now() - t0));
    a.send(chat(user(1), tk));
  }
  const ms = await Promise.all(times);
  await Promise.all([a.close(), b.close()]);
  return { 'p50 ms at fixed rate': percentile(ms, 50), 'p99 ms at fixed rate': percentile(ms, 99) };
}

async function mucDeliveries(t: Target, c: CompareCounts): Promise<Figures> {
  const occupants: Conn[] = [];
  for (let i = 0; i < c.occupants; i += 10) {
    occupants.push(
      ...(await Promise.all(
        Array.from({ length: Math.min(10, c.occupants - i) }, async (_, k) => {
          const conn = await Conn.open(t.url);
          await conn.login(user(i + k));
          return conn;
        }),
      )),
    );
  }
  const room = `${ROOM.split('@')[0]}${++seq}@${ROOM.split('@')[1]}`;
  const join = async (conn: Conn, nick: string) => {
    conn.send(`<presence xmlns="jabber:client" to="${room}/${nick}"><x xmlns="http://jabber.org/protocol/muc"><history maxstanzas="0"/></x></presence>`);
    await conn.next((f) => f.startsWith('<presence') && f.includes(`${room}/${nick}`) && /status code=["']110["']/.test(f), `join ${nick}`);
  };
  await join(occupants[0], 'n0');
  // XEP-0045 §10.1.2: an instant room (the owner accepts the default configuration).
  occupants[0].send(`<iq xmlns="jabber:client" type="set" id="cfg" to="${room}"><query xmlns="http://jabber.org/protocol/muc#owner"><x xmlns="jabber:x:data" type="submit"/></query></iq>`);
  await occupants[0].next((f) => f.startsWith('<iq') && /id=["']cfg["']/.test(f), 'room configured');
  for (let i = 1; i < occupants.length; i += 10) await Promise.all(occupants.slice(i, i + 10).map((conn, k) => join(conn, `n${i + k}`)));
  const start = performance.now();
  const n = await pool(c.roomMessages, 4, async (k) => {
    const tk = token();
    const got = occupants.map((o) => o.next((f) => f.includes(tk), tk));
    occupants[k % occupants.length].send(`<message xmlns="jabber:client" to="${room}" type="groupchat" id="${tk}"><body>to all ${tk}</body></message>`);
    await Promise.all(got);
  });
  const ms = performance.now() - start;
  await Promise.all(occupants.map((o) => o.close()));
  return { [`MUC deliveries/s (${c.occupants} occupants)`]: ((n * occupants.length) / ms) * 1000 };
}

// ---- the servers ------------------------------------------------------------------------------------------------

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as { port: number };
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

function firstLine(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    child.stdout!.on('data', (d) => {
      buf += d.toString();
      const nl = buf.indexOf('\n');
      if (nl >= 0) resolve(buf.slice(0, nl));
    });
    child.once('exit', (code) => reject(new Error(`exited with ${code} before it was ready`)));
  });
}

async function waitForPort(port: number, what: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/`, 'xmpp');
      ws.once('error', () => resolve(false));
      ws.once('unexpected-response', () => (ws.terminate(), resolve(true)));
      ws.once('open', () => (ws.terminate(), resolve(true)));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${what} did not listen on ${port}`);
    await settle(200);
  }
}

/** Pins a server to the last core when taskset is there (the generator is left the others). */
function pinned(cmd: string, args: string[]): [string, string[]] {
  return cpus().length > 1 && existsSync('/usr/bin/taskset') ? ['taskset', ['-c', String(cpus().length - 1), cmd, ...args]] : [cmd, args];
}

async function startEdge(name: string, work: Work, extra: string[] = []): Promise<Target> {
  const port = await freePort();
  // BENCH_CPU_PROF=<dir>: a CPU profile of each xmpp-edge process (node --cpu-prof), written when it stops.
  const prof = process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [];
  const [cmd, args] = pinned(process.execPath, [...prof, '--expose-gc', '--import', 'tsx', new URL('./edge-server.ts', import.meta.url).pathname, String(port), ...extra]);
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const info = JSON.parse(await firstLine(child)) as { url: string; adminUrl: string; adminToken: string };
  const node = child.pid!; // taskset execs the command: the same process
  if (work === 'no archive') {
    // The tenant's archive off, as an admin would turn it off (README "Message archive").
    const res = await fetch(`${info.adminUrl}/tenants/${DOMAIN}`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${info.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ archive: { enabled: false } }),
    });
    if (res.status !== 200) throw new Error(`${name}: archive not turned off: ${res.status} ${await res.text()}`);
  }
  return {
    name,
    url: info.url,
    pid: node,
    collect: () =>
      new Promise<number>((resolve) => {
        const onData = (d: Buffer) => {
          const held = /gc (\d+)/.exec(d.toString())?.[1];
          if (held) (child.stdout!.off('data', onData), resolve(Number(held)));
        };
        child.stdout!.on('data', onData);
        process.kill(node, 'SIGUSR2');
      }),
    async createUsers(names) {
      await pool(names.length, 8, async (i) => {
        const res = await fetch(`${info.adminUrl}/tenants/${DOMAIN}/users`, {
          method: 'POST',
          headers: { authorization: `Bearer ${info.adminToken}`, 'content-type': 'application/json' },
          body: JSON.stringify({ username: names[i], password: PASSWORD }),
        });
        if (res.status !== 201 && res.status !== 409) throw new Error(`${name}: user ${names[i]}: ${res.status} ${await res.text()}`);
      }, Infinity);
    },
    stop: () => stopChild(child),
  };
}

function stopChild(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
  });
}

async function startProsody(dir: string, work: Work): Promise<Target | undefined> {
  if (!existsSync('/usr/bin/prosody')) return undefined;
  const port = await freePort();
  const c2s = await freePort();
  const data = join(dir, 'prosody-data');
  mkdirSync(data, { recursive: true });
  const config = join(dir, 'prosody.cfg.lua');
  writeFileSync(
    config,
    `-- written by bench/compare.ts: a private Prosody on loopback ports, data under ${dir}
run_as_root = true
daemonize = false
pidfile = "${dir}/prosody.pid"
data_path = "${data}"
log = { { levels = { min = "error" }, to = "file", filename = "${dir}/prosody.log" } }
modules_enabled = { "disco", "roster", "saslauth", "ping", "websocket", "presence"${work === 'archive' ? ', "mam"' : ''} }
${work === 'archive' ? 'default_archive_policy = true\narchive_expires_after = "1w"\n' : ''}modules_disabled = { "s2s", "tls", "posix" }
authentication = "internal_hashed"
storage = "internal"
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
consider_websocket_secure = true
http_ports = { ${port} }
http_interfaces = { "127.0.0.1" }
https_ports = { }
c2s_ports = { ${c2s} }
c2s_interfaces = { "127.0.0.1" }
s2s_ports = { }
limits = { }
VirtualHost "${DOMAIN}"
Component "conference.${DOMAIN}" "muc"
  restrict_room_creation = false
`,
  );
  const [cmd, args] = pinned('/usr/bin/prosody', ['--config', config]);
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'] });
  await waitForPort(port, 'Prosody');
  return {
    name: 'Prosody',
    url: `ws://127.0.0.1:${port}/xmpp-websocket`,
    pid: child.pid!,
    async createUsers(names) {
      // prosodyctl reads the same private configuration and writes to its data_path.
      await pool(names.length, 4, async (i) => {
        await run('/usr/bin/prosodyctl', ['--config', config, 'register', names[i], DOMAIN, PASSWORD]);
      }, Infinity);
    },
    stop: () => stopChild(child),
  };
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env, as: { uid?: number; gid?: number } = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], env, ...as });
    let err = '';
    child.stderr!.on('data', (d) => (err += d.toString()));
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')}: exit ${code} ${err.slice(0, 300)}`))));
  });
}

async function startEjabberd(dir: string, work: Work): Promise<Target | undefined> {
  if (!existsSync('/usr/sbin/ejabberdctl') || process.env.BENCH_EJABBERD === '0') return undefined;
  const port = await freePort();
  const confDir = join(dir, 'ejabberd');
  const spool = join(confDir, 'spool');
  const logs = join(confDir, 'logs');
  mkdirSync(spool, { recursive: true });
  mkdirSync(logs, { recursive: true });
  const node = `bench${process.pid}@localhost`;
  writeFileSync(
    join(confDir, 'ejabberd.yml'),
    `# written by bench/compare.ts: a private ejabberd on a loopback port, data under ${dir}
hosts: ["${DOMAIN}"]
loglevel: error
auth_method: internal
auth_password_format: scram
listen:
  - port: ${port}
    ip: "127.0.0.1"
    module: ejabberd_http
    request_handlers:
      /xmpp-websocket: ejabberd_http_ws
acl:
  local:
    user_regexp: ""
access_rules:
  local:
    allow: local
  c2s:
    allow: all
shaper_rules:
  c2s_shaper: none
modules:
  mod_disco: {}
  mod_roster: {}
  mod_ping: {}
${work === 'archive' ? '  mod_mam:\n    default: always\n' : ''}  mod_muc:
    access: all
    access_create: all
    access_persistent: all
    default_room_options:
      mam: false
`,
  );
  writeFileSync(join(confDir, 'ejabberdctl.cfg'), `ERLANG_NODE=${node}\n`);
  writeFileSync(join(confDir, 'inetrc'), `{lookup,["file","native"]}.\n{host,{127,0,0,1}, ["localhost"]}.\n`);
  // ejabberdctl run by root switches to the package's user with su; run as that user from the start instead, with
  // the private folder (its HOME too, for the Erlang cookie) handed to it.
  const uid = Number(spawnSync('id', ['-u', 'ejabberd']).stdout.toString().trim());
  const gid = Number(spawnSync('id', ['-g', 'ejabberd']).stdout.toString().trim());
  if (!Number.isInteger(uid) || !Number.isInteger(gid)) throw new Error('no ejabberd system user');
  spawnSync('chown', ['-R', `${uid}:${gid}`, confDir]);
  const env = { ...process.env, HOME: confDir, EJABBERD_BYPASS_WARNINGS: 'true', ERL_EPMD_ADDRESS: '127.0.0.1' };
  const as = process.getuid?.() === 0 ? { uid, gid } : {};
  const ctl = (...args: string[]) => ['--config-dir', confDir, '--spool', spool, '--logs', logs, '--node', node, ...args];
  const epmdBefore = processesWith((cmd) => cmd.includes('epmd')).length > 0;
  const [cmd, args] = pinned('/usr/sbin/ejabberdctl', ctl('foreground'));
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'], env, cwd: confDir, ...as });
  await waitForPort(port, 'ejabberd');
  // The Erlang VM (beam.smp) is the server; ejabberdctl's shell is its parent.
  const beam = processesWith((cmd) => cmd.includes('beam') && cmd.includes(node.split('@')[0]));
  if (!beam.length) throw new Error('ejabberd started, but its Erlang VM was not found');
  return {
    name: 'ejabberd',
    url: `ws://127.0.0.1:${port}/xmpp-websocket`,
    pid: beam[0],
    async createUsers(names) {
      await pool(names.length, 4, async (i) => run('/usr/sbin/ejabberdctl', ctl('register', names[i], DOMAIN, PASSWORD), env, as), Infinity);
    },
    async stop() {
      await run('/usr/sbin/ejabberdctl', ctl('stop'), env, as).catch(() => undefined);
      await stopChild(child);
      // The Erlang port mapper the VM started, if none ran before (it outlives the VM).
      if (!epmdBefore) for (const pid of processesWith((cmd) => cmd.includes('epmd') && cmd.includes('-daemon'))) process.kill(pid, 'SIGTERM');
    },
  };
}

/** Pids of the processes whose command line passes `test`. */
function processesWith(test: (cmdline: string) => boolean): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (test(readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' '))) pids.push(Number(entry));
    } catch {
      /* gone meanwhile */
    }
  }
  return pids;
}

// ---- the latency model ----------------------------------------------------------------------------------------------

/**
 * End-to-end latency under the latency model (README "Latency model"): one 1:1 message at a time, then one room
 * message at a time until every occupant has it, on an xmpp-edge whose DynamoDB calls, posts and FIFO hops wait
 * as in AWS. `model` is `dynamoMs,postMs,fifoMs`, or empty for AWS_LATENCY.
 */
export async function latencyUnderModel(model: string, messages: number, occupants: number): Promise<Figures> {
  const t = await startEdge('xmpp-edge, latency model', 'archive', [model ? `--latency=${model}` : '--latency']);
  try {
    const names = Array.from({ length: Math.max(2, occupants) }, (_, i) => user(i));
    await t.createUsers(names);
    const [a, b] = await Promise.all([Conn.open(t.url), Conn.open(t.url)]);
    await Promise.all([a.login(user(0)), b.login(user(1)).then(() => b.available())]);
    const oneToOne: number[] = [];
    for (let k = 0; k < messages; k++) {
      const tk = token();
      const got = b.next((f) => f.includes(tk), tk);
      const t0 = performance.now();
      a.send(chat(user(1), tk));
      await got;
      oneToOne.push(performance.now() - t0);
    }
    await Promise.all([a.close(), b.close()]);
    const conns = await Promise.all(names.slice(0, occupants).map(async (n) => {
      const conn = await Conn.open(t.url);
      await conn.login(n);
      return conn;
    }));
    const room = `model${++seq}@conference.${DOMAIN}`;
    const join = async (conn: Conn, nick: string) => {
      conn.send(`<presence xmlns="jabber:client" to="${room}/${nick}"><x xmlns="http://jabber.org/protocol/muc"><history maxstanzas="0"/></x></presence>`);
      await conn.next((f) => f.startsWith('<presence') && f.includes(`${room}/${nick}`) && /status code=["']110["']/.test(f), `join ${nick}`);
    };
    await join(conns[0], 'n0');
    conns[0].send(`<iq xmlns="jabber:client" type="set" id="cfg" to="${room}"><query xmlns="http://jabber.org/protocol/muc#owner"><x xmlns="jabber:x:data" type="submit"/></query></iq>`);
    await conns[0].next((f) => f.startsWith('<iq') && /id=["']cfg["']/.test(f), 'room configured');
    for (let i = 1; i < conns.length; i++) await join(conns[i], `n${i}`);
    const roomTimes: number[] = [];
    for (let k = 0; k < messages; k++) {
      const tk = token();
      const got = conns.map((o) => o.next((f) => f.includes(tk), tk));
      const t0 = performance.now();
      conns[k % conns.length].send(`<message xmlns="jabber:client" to="${room}" type="groupchat" id="${tk}"><body>to all ${tk}</body></message>`);
      await Promise.all(got);
      roomTimes.push(performance.now() - t0);
    }
    await Promise.all(conns.map((o) => o.close()));
    return {
      '1:1 message p50 ms': percentile(oneToOne, 50),
      '1:1 message p99 ms': percentile(oneToOne, 99),
      [`room message (${occupants} occupants, last delivery) p50 ms`]: percentile(roomTimes, 50),
      [`room message (${occupants} occupants, last delivery) p99 ms`]: percentile(roomTimes, 99),
    };
  } finally {
    await t.stop();
  }
}

// ---- the run ----------------------------------------------------------------------------------------------------

export async function compare(c: CompareCounts, opts: { peers: boolean; loopbackVariant: boolean; work: Work; only?: string; log: (s: string) => void }): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'xmpp-edge-compare-'));
  chmodSync(dir, 0o755); // ejabberd runs as its own user and must reach its folder inside
  const targets: Target[] = [];
  try {
    targets.push(await startEdge('xmpp-edge', opts.work));
    if (opts.loopbackVariant) targets.push(await startEdge('xmpp-edge, loopback HTTP', opts.work, ['--loopback']));
    if (opts.peers) {
      for (const start of [startProsody, startEjabberd]) {
        try {
          const t = await start(dir, opts.work);
          if (t) targets.push(t);
        } catch (err) {
          opts.log(`  ${start.name.slice(5)} not compared: ${(err as Error).message}\n`);
        }
      }
    }
    const names = Array.from({ length: c.users }, (_, i) => user(i));
    for (const t of targets) {
      opts.log(`  creating ${names.length} accounts on ${t.name}…\n`);
      await t.createUsers(names);
      // Each account logs in once before anything is measured (xmpp-edge writes a session item at the first login).
      await pool(names.length, c.loginsInFlight, async (i) => {
        const conn = await Conn.open(t.url);
        await conn.login(names[i]);
        await conn.close();
      }, Infinity);
    }
    const figures = new Map<string, Figures[]>(targets.map((t) => [t.name, []]));
    // --only=<name>: one phase (its function's name, e.g. chatThroughput), as when profiling it (BENCH_CPU_PROF).
    const phases = [loginsAndMemory, chatThroughput, fixedRateLatency, mucDeliveries].filter((p) => !opts.only || p.name === opts.only);
    if (!phases.length) throw new Error(`no phase named ${opts.only}`);
    for (let round = 0; round < c.rounds; round++) {
      for (const phase of phases) {
        // Interleaved: each figure is taken on every server in turn, so a change of load hits them alike.
        for (const t of targets) {
          opts.log(`  ${phase.name} on ${t.name}\n`);
          figures.get(t.name)!.push(await phase(t, c, opts.work));
        }
      }
    }
    return table(targets.map((t) => t.name), figures, c, opts.work);
  } finally {
    for (const t of targets.reverse()) await t.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

const LOWER_IS_BETTER = /CPU|ms|KiB/;

function table(names: string[], figures: Map<string, Figures[]>, c: CompareCounts, work: Work): string {
  const merged = new Map<string, Figures>();
  for (const [name, list] of figures) {
    const keys = [...new Set(list.flatMap((f) => Object.keys(f)))];
    // Median of the rounds.
    merged.set(name, Object.fromEntries(keys.map((k) => [k, percentile(list.map((f) => f[k]).filter((x) => x !== undefined), 50)])));
  }
  const metrics = [...new Set([...merged.values()].flatMap((f) => Object.keys(f)))];
  const peers = names.slice(1);
  const header = ['metric', ...names, ...peers.map((p) => `xmpp-edge ÷ ${p}`)];
  const fmt = (x: number) => (Number.isFinite(x) ? (Math.abs(x) >= 100 ? x.toFixed(0) : x.toFixed(1)) : '–');
  const rows = metrics.map((m) => {
    const edge = merged.get(names[0])![m];
    return [
      m,
      ...names.map((n) => fmt(merged.get(n)![m])),
      ...peers.map((p) => {
        const r = edge / merged.get(p)![m];
        return Number.isFinite(r) ? `${r.toFixed(2)}${LOWER_IS_BETTER.test(m) ? ' (lower is better)' : ''}` : '–';
      }),
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => '| ' + cells.map((cell, i) => cell.padEnd(widths[i])).join(' | ') + ' |';
  const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  return [
    `\nxmpp-edge vs peers, ${new Date().toISOString().slice(0, 16)}Z, ${cpus().length} × ${cpus()[0]?.model.trim()}, Node ${process.version}, load average ${load}`,
    `${c.users} users (${c.loginsInFlight} logins in flight), ${c.pairs} pairs × ${c.inFlight} in flight for ${c.chatMs} ms, ${c.fixedRate} msg/s for ${c.fixedMs} ms, ${c.occupants} occupants × ${c.roomMessages} messages, ${c.rounds} round(s), median; 1:1 messages ${work === 'archive' ? 'archived by every server (sender and recipient)' : 'not archived by any server'}`,
    '',
    line(header),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map(line),
  ].join('\n');
}
