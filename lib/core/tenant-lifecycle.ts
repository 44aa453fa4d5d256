// What happens to live sessions when an admin disables or deletes a tenant: they are closed with
// host-gone (RFC 6120 §4.9.3.5) within seconds; and any other change of a tenant item is told to the
// modules ("tenant/changed"). In AWS the table's stream reports the change; on a laptop (dynalite has
// no streams) the watcher below polls the tenants that have open connections.
import { StreamError } from '../xmpp/errors.ts';
import type { TenantRecord, TenantStore } from '../store/tenants.ts';
import type { XmppServer } from './server.ts';

/** Closes every open connection of `domain` with host-gone. Returns how many were closed. */
export async function closeTenantSessions(server: XmppServer, domain: string, why: string): Promise<number> {
  const ids = await server.connections.idsOfTenant(domain);
  await Promise.all(ids.map((id) => server.endConnection(id, why, { streamError: new StreamError('host-gone', `${domain} is no longer served here`) })));
  if (ids.length) server.log.info({ domain, closed: ids.length, why }, 'closed tenant sessions');
  return ids.length;
}

/**
 * What follows a change of a tenant item, for both reporters (the watcher here, the tenant-changes
 * function): the modules' "tenant/changed" handlers. A disabled or deleted tenant's sessions are
 * closed before (closeTenantSessions), so handlers see only what is left to do.
 */
export async function tenantChanged(server: XmppServer, tenant: string, before: TenantRecord | undefined, after: TenantRecord | undefined): Promise<void> {
  await server.registry.events.fireAll('tenant/changed', { server, tenant, before, after });
}

/**
 * Polls the tenants of this process's open connections; closes those whose tenant went away, tells the
 * modules of other changes. A change is told against what this process last acted on: the item the
 * previous tick read, or, for a domain not watched at that tick (its first stream just opened), the
 * item the server's handlers last read (`lastServed`), so a change made between a stream's opening and
 * the next tick is told too. A tick that fails for a domain leaves its last item in place, so the next
 * tick tells the change again; a tick that hangs does not hold up the later ones.
 */
export class TenantWatcher {
  private timer?: NodeJS.Timeout;
  /** Each watched tenant's item as the last tick read it (its JSON, to tell a change). */
  private readonly seen = new Map<string, { json: string; tenant: TenantRecord | undefined }>();
  /** The tick in flight, if any, and when it started. */
  private current?: { startedAt: number; done: Promise<void>; stallReported: boolean };

  constructor(
    private readonly server: XmppServer,
    /** Read fresh each tick (a store without cache). */
    private readonly tenants: TenantStore,
    private readonly domainsInUse: () => Iterable<string>,
    private readonly intervalMs = 1000,
    /** What the server's handlers last read of a tenant (TenantStore.lastServed), if anything. */
    private readonly lastServed: (domain: string) => { tenant: TenantRecord | undefined } | undefined = () => undefined,
    /** How long a tick may run before the next ones stop waiting for it. */
    private readonly stallMs = Math.max(10 * intervalMs, 10_000),
  ) {}

  start(): void {
    this.timer = setInterval(() => this.onTimer(), this.intervalMs);
    this.timer.unref();
  }

  private onTimer(): void {
    const now = Date.now();
    const current = this.current;
    if (current) {
      if (now - current.startedAt < this.stallMs) return;
      if (!current.stallReported) {
        current.stallReported = true;
        this.server.log.error({ runningMs: now - current.startedAt }, 'tenant watch tick stalled: the next ticks no longer wait for it');
      }
    }
    void this.startTick(now);
  }

  /** Runs a tick as the one in flight (the timer's next ones wait for it, as for their own). */
  private startTick(now = Date.now()): Promise<void> {
    const done = this.tick().catch((err) => this.server.log.error({ err }, 'tenant watch failed'));
    const entry = { startedAt: now, done, stallReported: false };
    this.current = entry;
    void done.then(() => {
      if (this.current === entry) this.current = undefined;
    });
    return done;
  }

  /**
   * Acts now on every change written before the call: waits for the tick in flight (unless it has
   * stalled), then runs one. For callers that must not see a change handled later: the tests' cost
   * measurements, where a tenant an earlier test deleted has its sessions closed here, not inside the
   * next measurement.
   */
  async catchUp(): Promise<void> {
    await this.inFlightSettled();
    await this.startTick();
  }

  /** Stops polling; waits for the tick in flight, unless it has stalled. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.inFlightSettled();
  }

  /** Waits for the tick in flight, if any, until it ends or has run stallMs. */
  private async inFlightSettled(): Promise<void> {
    const current = this.current;
    if (!current) return;
    let timer: NodeJS.Timeout | undefined;
    const stalled = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, Math.max(0, this.stallMs - (Date.now() - current.startedAt)));
      timer.unref();
    });
    await Promise.race([current.done, stalled]);
    clearTimeout(timer);
  }

  async tick(): Promise<void> {
    const domains = [...new Set(this.domainsInUse())];
    // A domain no stream uses is forgotten; when one opens again, lastServed is its baseline.
    for (const d of this.seen.keys()) if (!domains.includes(d)) this.seen.delete(d);
    if (!domains.length) return;
    const tenants = await this.tenants.getMany(domains);
    for (const [domain, tenant] of tenants) {
      const json = JSON.stringify(tenant ?? null);
      const last = this.seen.get(domain) ?? this.baseline(domain);
      try {
        if (!tenant?.enabled) await closeTenantSessions(this.server, domain, tenant ? 'tenant disabled' : 'tenant deleted');
        if (last && last.json !== json) await tenantChanged(this.server, domain, last.tenant, tenant);
      } catch (err) {
        // The last item stays, so the next tick tells this change again (the handlers are idempotent).
        if (last) this.seen.set(domain, last);
        this.server.log.error({ err, domain }, 'tenant change not handled: retried at the next tick');
        continue;
      }
      this.seen.set(domain, { json, tenant });
    }
  }

  private baseline(domain: string): { json: string; tenant: TenantRecord | undefined } | undefined {
    const served = this.lastServed(domain);
    return served && { json: JSON.stringify(served.tenant ?? null), tenant: served.tenant };
  }
}
