// The rules of lib/extensions/auth-limits/policy.ts: when failures lock, for how long, and when the
// growth of locks starts again (README "Failed logins").
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { lockDurationMs, lockMemoryMs, locksAt, policyOf, retryText } from '../../lib/extensions/auth-limits/policy.ts';

describe('auth-limits policy', () => {
  it('doubles each lock in a row from lockSeconds and stops at maxLockSeconds', () => {
    const policy = policyOf(undefined);
    assert.deepEqual([1, 2, 3, 4, 5, 6, 20].map((level) => lockDurationMs(level, policy) / 1000), [60, 120, 240, 480, 900, 900, 900]);
    const short = policyOf({ lockSeconds: 10, maxLockSeconds: 25 });
    assert.deepEqual([1, 2, 3].map((level) => lockDurationMs(level, short) / 1000), [10, 20, 25]);
  });

  it('never locks for less than the first lock, even if maxLockSeconds is set below it', () => {
    assert.equal(lockDurationMs(1, policyOf({ lockSeconds: 120, maxLockSeconds: 30 })), 120_000);
  });

  it('locks at the threshold and at each multiple of it, so the next failures after a lock lock again', () => {
    assert.deepEqual([1, 2, 3, 4, 5, 6, 9, 10, 11].filter((n) => locksAt(n, 5)), [5, 10]);
  });

  it('remembers a lock for the longest lock plus a window, so the real user is never locked out for good', () => {
    assert.equal(lockMemoryMs(policyOf(undefined)), (900 + 600) * 1000);
  });

  it('tells the client when to retry, in whole seconds, at least one', () => {
    assert.equal(retryText('account', 61_500, 1_000), 'too many failed logins for this account; try again in 61 s (after 1970-01-01T00:01:01.500Z)');
    assert.match(retryText('address', 1_001, 1_000), /your address; try again in 1 s/);
  });
});
