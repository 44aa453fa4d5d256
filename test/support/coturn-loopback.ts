// A real coturn (Debian package `coturn`) on 127.0.0.1 for tests, in the shared-secret mode
// (use-auth-secret / static-auth-secret) that XEP-0215 credentials are made for, with its state
// (pid file, user database, log) in a temporary folder. Tests that need it skip where coturn is not
// installed, unless REQUIRE_COTURN=1 (then they fail).
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createSocket } from 'node:dgram';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { until } from './harness.ts';

export const TURNSERVER = process.env.TURNSERVER_PATH ?? '/usr/bin/turnserver';
export const TURN_CLIENT = process.env.TURNUTILS_UCLIENT_PATH ?? '/usr/bin/turnutils_uclient';

/** Why coturn tests cannot run here, or undefined when they can. */
export function coturnMissing(): string | undefined {
  const missing = [TURNSERVER, TURN_CLIENT].filter((p) => !existsSync(p));
  if (!missing.length) return undefined;
  const why = `no ${missing.join(' or ')} (apt-get install coturn, or set TURNSERVER_PATH and TURNUTILS_UCLIENT_PATH)`;
  if (process.env.REQUIRE_COTURN === '1') throw new Error(`REQUIRE_COTURN=1 but ${why}`);
  return `coturn test skipped: ${why}`;
}

/** A UDP port free now on 127.0.0.1 (coturn listens on it for UDP and TCP). */
async function freePort(): Promise<number> {
  const sock = createSocket('udp4');
  await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', resolve));
  const { port } = sock.address();
  await new Promise<void>((resolve) => sock.close(() => resolve()));
  return port;
}

export interface Coturn {
  port: number;
  /** Allocates a relay with these credentials and sends a few packets through it: true if coturn let it. */
  allocates(username: string, password: string): Promise<boolean>;
  stop(): Promise<void>;
}

export async function startCoturn(secret: string, realm = 'turn.test'): Promise<Coturn> {
  const dir = mkdtempSync(join(tmpdir(), 'coturn-'));
  const port = await freePort();
  let log = '';
  const proc: ChildProcess = spawn(
    TURNSERVER,
    [
      '-n', // no configuration file
      '--listening-ip=127.0.0.1',
      '--relay-ip=127.0.0.1',
      `--listening-port=${port}`,
      '--use-auth-secret',
      `--static-auth-secret=${secret}`,
      `--realm=${realm}`,
      '--allow-loopback-peers', // the test's peer is on loopback too
      '--no-cli',
      '--no-tls',
      '--no-dtls',
      `--pidfile=${join(dir, 'turnserver.pid')}`,
      `--userdb=${join(dir, 'turndb')}`,
      '--log-file=stdout',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  proc.stdout!.on('data', (d: Buffer) => (log += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  // The admin thread starts last, once the listeners and the auth threads are up.
  await until('coturn to start', () => log.includes('IO method (admin thread)') || proc.exitCode !== null, () => log.slice(-2000));
  if (proc.exitCode !== null) throw new Error(`coturn exited: ${log.slice(-2000)}`);
  return {
    port,
    allocates: (username, password) =>
      new Promise((resolve) => {
        // -y: client-to-client through two relays; -n 1 -m 1: one message, one client pair; -e: the peer.
        execFile(TURN_CLIENT, ['-p', String(port), '-u', username, '-w', password, '-e', '127.0.0.1', '-y', '-n', '1', '-m', '1', '127.0.0.1'], { timeout: 30_000 }, (err) => resolve(!err));
      }),
    async stop() {
      proc.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
