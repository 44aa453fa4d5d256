// Throttling of failed logins, after Prosody's mod_limit_auth and ejabberd's mod_fail2ban: failed
// logins (RFC 6120 §6.5.10 <not-authorized/>) are counted per account and per source address; a
// subject that reaches its tenant's threshold within a window is locked for a while, each lock in a
// row twice as long as the one before, up to a maximum. While locked, an attempt is refused with
// <temporary-auth-failure/> (RFC 6120 §6.5.12) and a text that says when to retry, before any
// credential is checked (the core's "auth/check" event, docs/modules.md "Hooks").
//
// Cost (README "Cost per operation"): one read per password login (both locks in one BatchGetItem)
// and no write when nothing fails; a failure costs one write per counter (account, address), and a
// lock one more (two for a subject's first lock in a while).
import type { AuthAttemptEvent, AuthRefusal } from '../../core/events.ts';
import type { ModuleContext, XmppModule } from '../../core/modules.ts';
import { AuthCounters, type Lock, type Subject } from './counters.ts';
import { type AuthLimitsPolicy, locksAt, lockMemoryMs, lockedUntil, policyOf, retryText, windowOf } from './policy.ts';
import { type AuthLimitsSettings, AuthLimitsSettingsSchema } from './settings.ts';

export const authLimits: XmppModule = {
  name: 'auth-limits',
  settings: { key: 'authLimits', schema: AuthLimitsSettingsSchema },
  storage: { accountPartitions: ['authfail'], partitions: ['authaddr'] },
  install(ctx) {
    const counters = new AuthCounters(ctx.openStore());
    const policyFor = (e: AuthAttemptEvent) => policyOf(ctx.settingsOf<AuthLimitsSettings>(e.tenantItem));
    ctx.hook('auth/check', (e) => refuseIfLocked(ctx, counters, policyFor(e), e));
    ctx.hook('auth/failed', async (e) => {
      // The client's answer must not wait on a retry of the whole frame if a counter write fails
      // (the attempt would be answered twice): log it, the next failure counts again.
      await countFailure(ctx, counters, policyFor(e), e).catch((err: Error) =>
        ctx.log.error({ sourceIp: e.sourceIp, user: userOf(e), err: err.message }, 'failed login not counted'),
      );
      return undefined;
    });
  },
};

/** The subjects an attempt is counted against, with the threshold of each. */
function subjectsOf(e: AuthAttemptEvent, policy: AuthLimitsPolicy): { subject: Subject; threshold: number }[] {
  const out: { subject: Subject; threshold: number }[] = [];
  if (e.account) out.push({ subject: { kind: 'account', tenant: e.tenant, account: e.account }, threshold: policy.accountFailures });
  if (e.sourceIp) out.push({ subject: { kind: 'address', tenant: e.tenant, address: e.sourceIp }, threshold: policy.addressFailures });
  return out;
}

const userOf = (e: AuthAttemptEvent) => (e.account ? `${e.account}@${e.tenant}` : undefined);

async function refuseIfLocked(ctx: ModuleContext, counters: AuthCounters, policy: AuthLimitsPolicy, e: AuthAttemptEvent): Promise<AuthRefusal | undefined> {
  const subjects = subjectsOf(e, policy);
  if (!policy.enabled || subjects.length === 0) return undefined;
  const now = e.server.clock.now();
  const locks = await counters.locksOf(subjects.map((s) => s.subject), now);
  let refusal: { kind: Subject['kind']; until: number } | undefined;
  locks.forEach((lock: Lock | undefined, i) => {
    const until = lock && lockedUntil(lock, policy);
    if (until && until > now && (!refusal || until > refusal.until)) refusal = { kind: subjects[i].subject.kind, until };
  });
  if (!refusal) return undefined;
  ctx.log.warn({ sourceIp: e.sourceIp, user: userOf(e), lockedBy: refusal.kind, until: new Date(refusal.until).toISOString() }, 'login refused while locked');
  return { text: retryText(refusal.kind, refusal.until, now) };
}

async function countFailure(ctx: ModuleContext, counters: AuthCounters, policy: AuthLimitsPolicy, e: AuthAttemptEvent): Promise<void> {
  if (!policy.enabled) return;
  const now = e.server.clock.now();
  const window = windowOf(now, policy);
  for (const { subject, threshold } of subjectsOf(e, policy)) {
    const failures = await counters.addFailure(subject, window, (window + 1) * policy.windowMs);
    if (!locksAt(failures, threshold)) continue;
    const lock = await counters.lock(subject, now, now + lockMemoryMs(policy));
    const until = lockedUntil(lock, policy);
    // One line per lock with what fail2ban-style tooling needs: the address, the account, the count.
    ctx.log.warn(
      { sourceIp: e.sourceIp, user: userOf(e), locked: subject.kind, failures, windowSeconds: policy.windowMs / 1000, locksInRow: lock.level, lockedForSeconds: (until - now) / 1000 },
      `${subject.kind} locked after ${failures} failed logins`,
    );
  }
}
