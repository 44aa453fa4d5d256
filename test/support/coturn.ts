// A real TURN server for the tests: Debian's coturn (`turnserver`) on 127.0.0.1 with a random free
// port, the shared-secret scheme (`use-auth-secret`, as the XEP-0215 credentials the server hands
// out), no TLS/DTLS, no CLI, relays on loopback only, and every file it writes (pid file, user
// database, log) in a fresh temporary folder: nothing under /etc or /var. Ready means it answered a
// STUN Binding request (RFC 8489 §6), not that some time has passed. See README, Tests.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { until } from './harness.ts';

export const TURNSERVER = process.env.TURNSERVER_PATH ?? '/usr/bin/turnserver';
export const TURN_CLIENT = process.env.TURNUTILS_UCLIENT_PATH ?? '/usr/bin/turnutils_uclient';

/**
 * Why coturn tests cannot run here, or undefined when they can. REQUIRE_COTURN=1 (set by CI, with
 * REQUIRE_BROWSER) turns the skip into a failure.
 */
export function coturnMissing(): string | undefined {
  const missing = [TURNSERVER, TURN_CLIENT].filter((p) => !existsSync(p));
  if (!missing.length) return undefined;
  const why = `no ${missing.join(' or ')} (apt-get install coturn, or set TURNSERVER_PATH and TURNUTILS_UCLIENT_PATH)`;
  if (process.env.REQUIRE_COTURN === '1') throw new Error(`REQUIRE_COTURN=1 but ${why}`);
  return `coturn test skipped: ${why}`;
}

export interface Coturn {
  host: string;
  port: number;
  /** The static-auth-secret: what a tenant's `turn.secret` must be for its credentials to work here. */
  secret: string;
  realm: string;
  /** Everything coturn logged so far. */
  log(): string;
  /** Writes the log to `file` (test artifacts). */
  saveLog(file: string): void;
  /**
   * Allocates a relay with these credentials and sends a message through it with coturn's own client
   * (`turnutils_uclient`): true if coturn let it.
   */
  allocates(username: string, password: string): Promise<boolean>;
  stop(): Promise<void>;
}

/** A port no one listens on now, TCP and UDP (coturn takes both). */
async function freePort(): Promise<number> {
  const tcp = createServer();
  await new Promise<void>((resolve, reject) => tcp.once('error', reject).listen(0, '127.0.0.1', resolve));
  const { port } = tcp.address() as { port: number };
  const udp = createSocket('udp4');
  try {
    await new Promise<void>((resolve, reject) => udp.once('error', reject).bind(port, '127.0.0.1', resolve));
  } finally {
    udp.close();
    await new Promise<void>((resolve) => tcp.close(() => resolve()));
  }
  return port;
}

/** One STUN Binding request (RFC 8489 §6.1); true if a Binding success response (0x0101) came back. */
function stunBinding(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createSocket('udp4');
    const txid = randomBytes(12);
    const request = Buffer.concat([Buffer.from([0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42]), txid]);
    const done = (ok: boolean) => {
      clearTimeout(timer);
      socket.close();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.on('error', () => done(false));
    socket.on('message', (msg) => done(msg.length >= 20 && msg.readUInt16BE(0) === 0x0101 && msg.subarray(8, 20).equals(txid)));
    socket.send(request, port, host);
  });
}

export async function startCoturn(opts: { secret?: string; realm?: string; attempts?: number } = {}): Promise<Coturn> {
  const host = '127.0.0.1';
  const realm = opts.realm ?? 'xmpp-edge.test';
  const secret = opts.secret ?? randomBytes(24).toString('base64url');
  let lastError: unknown;
  for (let attempt = 0; attempt < (opts.attempts ?? 3); attempt++) {
    const dir = mkdtempSync(join(tmpdir(), 'xmpp-edge-coturn-'));
    const port = await freePort();
    let output = '';
    const args = [
      '-n', // no turnserver.conf: every setting is on this command line
      `--listening-ip=${host}`,
      `--relay-ip=${host}`,
      `--listening-port=${port}`,
      '--use-auth-secret',
      `--static-auth-secret=${secret}`,
      `--realm=${realm}`,
      '--no-tls',
      '--no-dtls',
      '--no-cli',
      '--allow-loopback-peers', // both browsers' relays are on 127.0.0.1
      '--log-file=stdout',
      '--simple-log',
      `--pidfile=${join(dir, 'turnserver.pid')}`,
      `--userdb=${join(dir, 'turndb')}`,
      // Relay ports away from the listening port's neighbourhood, and few: the tests need a handful.
      '--min-port=40000',
      '--max-port=40999',
      '--verbose',
    ];
    const child: ChildProcess = spawn(TURNSERVER, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (d) => (output += d));
    child.stderr!.on('data', (d) => (output += d));
    let exited = false;
    const exit = new Promise<void>((resolve) => child.once('exit', () => ((exited = true), resolve())));
    child.once('error', (err) => {
      output += `\nspawn failed: ${err.message}`;
      exited = true;
    });
    const stop = async () => {
      if (!exited) {
        child.kill('SIGTERM');
        const killTimer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exit;
        clearTimeout(killTimer);
      }
      rmSync(dir, { recursive: true, force: true });
    };
    try {
      await until(`coturn answering STUN on ${host}:${port}`, async () => exited || (await stunBinding(host, port)), () => output.slice(-2000));
      if (exited) throw new Error(`coturn exited at start:\n${output.slice(-2000)}`);
    } catch (err) {
      lastError = err;
      await stop();
      continue; // most likely the port was taken between freePort() and coturn's bind: try another
    }
    return {
      host,
      port,
      secret,
      realm,
      log: () => output,
      saveLog: (file) => writeFileSync(file, output),
      allocates: (username, password) =>
        new Promise((resolve) => {
          // -y: client to client through two relays; -n 1 -m 1: one message, one client pair; -e: the peer.
          const args = ['-p', String(port), '-u', username, '-w', password, '-e', host, '-y', '-n', '1', '-m', '1', host];
          execFile(TURN_CLIENT, args, { timeout: 30_000 }, (err) => resolve(!err));
        }),
      stop,
    };
  }
  throw lastError;
}
