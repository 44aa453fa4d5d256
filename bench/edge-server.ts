// One xmpp-edge local server in its own process for `npm run bench -- --compare`, so its CPU and memory are
// measured apart from the load generator, as Prosody's and ejabberd's are: dynalite in memory, the gateway on
// the port given, MUC on (the default tenant's features), open registration off. Prints one JSON line when
// listening ({ url, adminUrl, adminToken }), stops on SIGTERM.
//   node --import tsx bench/edge-server.ts <port> [--loopback] [--latency[=dynamoMs,postMs,fifoMs]]
import { pino } from 'pino';
import { AWS_LATENCY, startLocalServer } from '../lib/local/local-server.ts';

const port = Number(process.argv[2] ?? 0);
// --latency: the latency model with AWS's typical figures (AWS_LATENCY), or the three delays given.
const latencyArg = process.argv.find((a) => a.startsWith('--latency'));
const given = latencyArg?.split('=')[1]?.split(',').map(Number);
const latency = !latencyArg ? undefined : given?.length === 3 && given.every((x) => x >= 0) ? { dynamoMs: given[0], postMs: given[1], fifoMs: given[2] } : AWS_LATENCY;
const logger = pino({ level: 'warn' }, pino.destination({ dest: 2, sync: false }));
const s = await startLocalServer({
  port,
  dynamoPort: 0,
  logger,
  seedFeatures: ['blocking', 'carbons', 'vcard-avatars'],
  adminToken: 'bench',
  tenantWatchMs: 3_600_000,
  purgeIntervalMs: 3_600_000,
  loopbackHttp: process.argv.includes('--loopback'),
  // No XEP-0114 listener: two of these run side by side (--loopback), and the bench uses none.
  componentPort: false,
  latency,
});
// SIGUSR2: a full garbage collection (node --expose-gc), answered with the bytes then held (V8 heap in use plus
// external memory) on stdout: what the process holds, without the garbage and free pages RSS also counts.
process.on('SIGUSR2', () => {
  (globalThis as { gc?: () => void }).gc?.();
  const m = process.memoryUsage();
  process.stdout.write(`gc ${m.heapUsed + m.external}\n`);
});
process.stdout.write(JSON.stringify({ url: s.url, adminUrl: s.adminUrl, adminToken: s.adminToken }) + '\n');
// Frames still in flight when the clients are gone may fail noisily as the store closes: not worth a log line.
process.once('SIGTERM', () => void ((logger.level = 'silent'), s.stop().then(() => process.exit(0))));
