// Reading and writing a tenant's `events` block and listing its dead letters: what the admin API routes
// and the CLI commands both do (README "Event push"), with the same checks and the same errors.
import { OperatorError } from '../../core/modules.ts';
import type { XmppServer } from '../../core/server.ts';
import { InvalidTenantError, REDACTED, restoreSecrets, validateTenantItem } from '../../store/tenant-schema.ts';
import type { TenantRecord } from '../../store/tenants.ts';
import type { DeadLetter } from '../../webhooks/store.ts';
import { tenantWriteProblem } from '../../core/tenant-domains.ts';
import type { EventPushRuntime } from './runtime.ts';
import type { EventsSettings } from './schema.ts';

export const EVENTS_KEY = 'events';

async function tenantOr404(server: XmppServer, domain: string): Promise<TenantRecord> {
  const t = await server.tenants.get(domain, 0);
  if (!t) throw new OperatorError(404, 'tenant-not-found', `no tenant ${domain}`);
  return t;
}

/** The block as an operator sees it: the webhook secret reads "(set)". */
export function shownBlock(block: EventsSettings | undefined): EventsSettings | null {
  if (!block) return null;
  return block.target.webhook ? { ...block, target: { webhook: { ...block.target.webhook, secret: REDACTED } } } : block;
}

export async function showEvents(server: XmppServer, domain: string): Promise<EventsSettings | null> {
  const t = await tenantOr404(server, domain);
  return shownBlock(t[EVENTS_KEY] as EventsSettings | undefined);
}

/**
 * Replaces the tenant's events block with `block`, checked whole against the tenant item's schema (the
 * same errors as PUT /tenants), a secret written as "(set)" keeping the stored one, and an SNS topic or
 * EventBridge bus only if the deployment allows it (its IAM grants name only those: README "Event push"):
 * eventsWriteCheck, which every path that writes a tenant item runs (ctx.addTenantWriteCheck).
 */
export async function setEvents(server: XmppServer, domain: string, block: unknown): Promise<EventsSettings | null> {
  const current = await tenantOr404(server, domain);
  let tenant: TenantRecord;
  try {
    tenant = validateTenantItem(restoreSecrets({ ...current, [EVENTS_KEY]: block }, current, server.tenants.blocks), server.tenants.blocks);
  } catch (err) {
    if (err instanceof InvalidTenantError) throw new OperatorError(400, 'invalid-events', err.message);
    throw err;
  }
  const written = tenant[EVENTS_KEY] as EventsSettings;
  // The same check as every other write of the item (the module's tenant write check, targetCheck).
  const problem = await tenantWriteProblem(server, tenant);
  if (problem) throw new OperatorError(problem.status, problem.code, problem.message);
  await server.tenants.put(tenant);
  return shownBlock(written);
}

export async function clearEvents(server: XmppServer, domain: string): Promise<boolean> {
  const current = await tenantOr404(server, domain);
  if (current[EVENTS_KEY] === undefined) return false;
  const { [EVENTS_KEY]: _gone, ...rest } = current;
  await server.tenants.put(rest as TenantRecord);
  return true;
}

export async function listDeadLetters(server: XmppServer, rt: EventPushRuntime, domain: string, opts: { limit?: number; after?: string }): Promise<{ deadLetters: DeadLetter[]; next?: string }> {
  await tenantOr404(server, domain);
  if (opts.limit !== undefined && (!Number.isInteger(opts.limit) || opts.limit < 1 || opts.limit > 100)) throw new OperatorError(400, 'invalid-request', 'limit must be an integer from 1 to 100');
  const { items, next } = await rt.store.deadLetters(domain, { limit: opts.limit, after: opts.after, now: server.clock.now() });
  return { deadLetters: items, ...(next ? { next } : {}) };
}

/**
 * The events block of an item an admin tool is about to write, against this deployment: an SNS topic or
 * EventBridge bus on its allow-list, a webhook URL it will send to. The one check of every tenant write
 * (admin API PUT/PATCH/POST /tenants, the events routes and CLI); a hand-edited item skips it and is
 * refused when publishing instead (runtime.ts).
 */
export function eventsWriteCheck(rt: EventPushRuntime, tenant: TenantRecord): { code: string; message: string } | undefined {
  const block = tenant[EVENTS_KEY] as EventsSettings | undefined;
  const refusal = block && rt.targetProblem(block.target);
  return refusal ? { code: 'target-not-allowed', message: `events.target: ${refusal}` } : undefined;
}
