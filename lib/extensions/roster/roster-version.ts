// RFC 6121 §2.6 roster versioning, the pure part: version strings (`<epoch>-<counter>`, see store.ts)
// and what a roster get with a version the client knows answers (§2.6.3).
import type { RosterItem } from './store.ts';

/** The state of a roster's version counter (RFC 6121 §2.6). */
export interface RosterVersion {
  /** Drawn when the counter is created. */
  epoch: string;
  /** Visible changes so far. */
  n: number;
  /** The counter value of the latest removal, if any. */
  removedAt?: number;
}

/** The version string of a counter state: `<epoch>-<n>`. */
export const versionString = (v: Pick<RosterVersion, 'epoch' | 'n'>) => `${v.epoch}-${v.n}`;

/** The counter value a version string of this roster stands for, if it is one of this roster's (same epoch). */
export function counterOf(ver: string, current: RosterVersion): number | undefined {
  const dash = ver.lastIndexOf('-');
  if (dash < 0 || ver.slice(0, dash) !== current.epoch) return undefined;
  const digits = ver.slice(dash + 1);
  if (!/^(0|[1-9][0-9]{0,14})$/.test(digits)) return undefined;
  return Number(digits);
}

/**
 * §2.6.3: what a get with `clientVer` answers: `current` (an empty result: the client is up to date),
 * `pushes` (an empty result, then these items as roster pushes, oldest change first), or `full` (the whole
 * roster, which §2.6.3 always allows). Pushes only when they bring the client exactly to the current
 * version: the version is this roster's (same epoch) and not in the future, no item was removed since
 * (a removed item leaves nothing to push), and the newest change is the current version (a bump whose
 * write never happened leaves nothing to push for it).
 */
export function answerFor(clientVer: string, ver: string, counter: RosterVersion | undefined, items: RosterItem[]): { kind: 'current' } | { kind: 'full' } | { kind: 'pushes'; items: RosterItem[] } {
  if (clientVer === ver) return { kind: 'current' };
  if (!counter) return { kind: 'full' };
  const known = counterOf(clientVer, counter);
  if (known === undefined || known >= counter.n || known < (counter.removedAt ?? 0)) return { kind: 'full' };
  const changed = items.filter((i) => i.inRoster && (i.ver ?? 0) > known).sort((a, b) => a.ver! - b.ver!);
  if (!changed.length || changed[changed.length - 1].ver !== counter.n) return { kind: 'full' };
  return { kind: 'pushes', items: changed };
}
