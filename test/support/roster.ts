// Roster state for tests that need contacts but are not about the subscription handshake (RFC 6121 §3).
import { rosterOf } from '../../lib/extensions/roster/index.ts';
import type { TestServer } from './harness.ts';

/** A mutual presence subscription between two bare JIDs, written straight into both rosters. */
export async function mutualSubscription(s: Pick<TestServer, 'server'>, a: string, b: string): Promise<void> {
  const item = (jid: string) => ({ jid, groups: [], subscription: 'both' as const, pendingOut: false, pendingIn: false, approved: false, inRoster: true });
  await rosterOf(s.server).put(a, item(b));
  await rosterOf(s.server).put(b, item(a));
}
