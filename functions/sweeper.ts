// Scheduled every minute. In every region: ends this region's connections whose $disconnect never came
// (the gateway answers 410 for them), since API Gateway's $disconnect is best effort, and pings the live
// bound ones, ending those that left the last ping unanswered (XEP-0199 §4.2; docs/architecture.md
// "Connections die silently"). In the table's home region only (PURGE_TENANTS=true; one region is
// enough for a global table and two would do the same deletes twice): works on pending tenant purges,
// resumably, until a deadline well inside the function's timeout.
import { TenantPurger, purgePlanOf } from '../lib/admin/purge.ts';
import { createLambdaRuntime, type LambdaRuntime } from '../lib/runtime/lambda.ts';

/** The part of Lambda's context object read here. */
export interface LambdaContext {
  getRemainingTimeInMillis(): number;
}

/** Time left for the last page of a purge, its job write and the return; a page is 25 accounts. */
export const PURGE_MARGIN_MS = 20_000;

/**
 * When the purge must stop starting new pages: the invocation's remaining time minus the margin, or
 * now if there is no time left (TenantPurger still finishes one page, so a purge always progresses).
 */
export function purgeDeadline(now: number, remainingMs: number | undefined, timeoutMs = 50_000): number {
  return now + Math.max(0, (remainingMs ?? timeoutMs) - PURGE_MARGIN_MS);
}

export interface SweepResult {
  checked: number;
  ended: number;
  /** Tenants whose purge was pending when this run started (home region only). */
  purgesPending?: number;
}

export async function sweepAndPurge(runtime: Pick<LambdaRuntime, 'server'>, purger: TenantPurger | undefined, context?: LambdaContext): Promise<SweepResult> {
  const swept = await runtime.server.sweep();
  if (!purger) return swept;
  const pending = (await purger.pending()).length;
  if (pending) await purger.runPending(purgeDeadline(Date.now(), context?.getRemainingTimeInMillis()));
  return { ...swept, purgesPending: pending };
}

// Built on the first run rather than at import, so tests can import this file without an environment.
let run: ((context?: LambdaContext) => Promise<SweepResult>) | undefined;
export const handler = (_event: unknown, context?: LambdaContext): Promise<SweepResult> => {
  run ??= (() => {
    const runtime = createLambdaRuntime();
    const purger = process.env.PURGE_TENANTS === 'true' ? new TenantPurger(runtime.server.db, runtime.table, purgePlanOf(runtime.server)) : undefined;
    // Connections the sweep ends add their minutes to the usage records; its metrics go out as EMF.
    return runtime.invocation((ctx?: LambdaContext) => sweepAndPurge(runtime, purger, ctx));
  })();
  return run(context);
};
