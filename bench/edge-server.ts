// One xmpp-edge local server in its own process for `npm run bench -- --compare`, so its CPU and memory are
// measured apart from the load generator, as Prosody's and ejabberd's are: dynalite in memory, the gateway on
// the port given, MUC on (the default tenant's features), open registration off. Prints one JSON line when
// listening ({ url, adminUrl, adminToken }), stops on SIGTERM.
//   node --import tsx bench/edge-server.ts <port> [--loopback]
import { pino } from 'pino';
import { startLocalServer } from '../lib/local/local-server.ts';

const port = Number(process.argv[2] ?? 0);
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
});
process.stdout.write(JSON.stringify({ url: s.url, adminUrl: s.adminUrl, adminToken: s.adminToken }) + '\n');
// Frames still in flight when the clients are gone may fail noisily as the store closes: not worth a log line.
process.once('SIGTERM', () => void ((logger.level = 'silent'), s.stop().then(() => process.exit(0))));
