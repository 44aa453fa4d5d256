// When failed logins lock an account or a source address, and for how long: pure functions of the
// tenant's settings and the time, so the rules are tested without a server (README "Failed logins").
import type { AuthLimitsSettings } from './settings.ts';

export interface AuthLimitsPolicy {
  enabled: boolean;
  windowMs: number;
  accountFailures: number;
  addressFailures: number;
  lockMs: number;
  maxLockMs: number;
}

export const DEFAULT_AUTH_LIMITS: Required<AuthLimitsSettings> = {
  enabled: true,
  windowSeconds: 600,
  accountFailures: 5,
  addressFailures: 20,
  lockSeconds: 60,
  maxLockSeconds: 900,
};

export function policyOf(settings: AuthLimitsSettings | undefined): AuthLimitsPolicy {
  const s = { ...DEFAULT_AUTH_LIMITS, ...settings };
  return {
    enabled: s.enabled,
    windowMs: s.windowSeconds * 1000,
    accountFailures: s.accountFailures,
    addressFailures: s.addressFailures,
    lockMs: s.lockSeconds * 1000,
    maxLockMs: Math.max(s.maxLockSeconds, s.lockSeconds) * 1000,
  };
}

/** The window a failure at `now` is counted in: fixed windows, so counting is one atomic ADD. */
export function windowOf(now: number, policy: AuthLimitsPolicy): number {
  return Math.floor(now / policy.windowMs);
}

/**
 * Whether the `failures`-th failure of a window locks: at the threshold and at each multiple of it,
 * so after a lock ends the next `threshold` failures lock again. Exactly one failure of concurrent
 * ones sees each multiple (the counter is an atomic ADD), so a burst locks once.
 */
export function locksAt(failures: number, threshold: number): boolean {
  return failures > 0 && failures % threshold === 0;
}

/** The length of the `level`-th lock in a row: doubling from lockMs, at most maxLockMs. */
export function lockDurationMs(level: number, policy: AuthLimitsPolicy): number {
  return Math.min(policy.lockMs * 2 ** Math.max(0, level - 1), policy.maxLockMs);
}

/**
 * How long a lock is remembered: the longest lock plus a window. Quiet for that long, a subject
 * starts again at the first, shortest lock; so the real user is never locked out for good.
 */
export function lockMemoryMs(policy: AuthLimitsPolicy): number {
  return policy.maxLockMs + policy.windowMs;
}

/** The end of a lock taken at `lockedAt`, the `level`-th in a row. */
export function lockedUntil(lock: { lockedAt: number; level: number }, policy: AuthLimitsPolicy): number {
  return lock.lockedAt + lockDurationMs(lock.level, policy);
}

/** What the client is told (RFC 6120 §6.5.12 says it may retry later; this says when). */
export function retryText(subject: 'account' | 'address', until: number, now: number): string {
  const seconds = Math.max(1, Math.ceil((until - now) / 1000));
  const who = subject === 'account' ? 'this account' : 'your address';
  return `too many failed logins for ${who}; try again in ${seconds} s (after ${new Date(until).toISOString()})`;
}
