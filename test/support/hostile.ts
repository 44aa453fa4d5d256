// What the hostile-input suites share (README "Hostile input, faults and abuse"): a server whose
// error-level log lines are collected (an input that reaches code unprepared for it shows there), a
// control client that must be served throughout, and an online, available recipient `bob`.
import { pino } from 'pino';
import { offlineOf } from '../../lib/extensions/offline/index.ts';
import type { LocalServerOptions } from '../../lib/local/local-server.ts';
import { parseFrame } from '../../lib/xmpp/xml.ts';
import { type TestClient, type TestServer, connectClient, startTestServer, xml } from './harness.ts';

export interface WatchedServer {
  s: TestServer;
  control: TestClient;
  /** bob@localhost/desk, available. */
  bob: TestClient;
  /** Log lines at level error (50) or above, in order; callers splice what they have checked. */
  errorLines: string[];
  /** Ids of the stanzas offline storage holds for a bare JID. */
  offlineIds(bare: string): Promise<string[]>;
  stop(): Promise<void>;
}

export async function startWatchedServer(opts: LocalServerOptions = {}, users: string[] = []): Promise<WatchedServer> {
  const errorLines: string[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void (JSON.parse(line).level >= 50 && errorLines.push(line)) });
  const s = await startTestServer({ logger, limits: { maxStanzaBytes: 30_000 }, ...opts });
  for (const name of ['control', 'bob', ...users]) await s.addUser(`${name}@localhost`);
  const control = await connectClient(s.url, { username: 'control' });
  const bob = await connectClient(s.url, { username: 'bob', resource: 'desk' });
  await bob.send(xml('presence'));
  await bob.waitFor((el) => el.name === 'presence' && el.attrs.from === bob.jid);
  return {
    s,
    control,
    bob,
    errorLines,
    offlineIds: async (bare) => (await offlineOf(s.server).list(bare)).map((m) => parseFrame(m.xml).attrs.id as string),
    async stop() {
      await control.stop();
      await bob.stop();
      await s.stop();
    },
  };
}
