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

/** Polls the tenants of this process's open connections; closes those whose tenant went away, tells the modules of other changes. */
export class TenantWatcher {
  private timer?: NodeJS.Timeout;
  /** Each watched tenant's item as the last tick read it (its JSON, to tell a change). */
  private readonly seen = new Map<string, { json: string; tenant: TenantRecord | undefined }>();
  private running: Promise<void> = Promise.resolve();

  constructor(
    private readonly server: XmppServer,
    /** Read fresh each tick (a store without cache). */
    private readonly tenants: TenantStore,
    private readonly domainsInUse: () => Iterable<string>,
    private readonly intervalMs = 1000,
  ) {}

  start(): void {
    this.timer = setInterval(() => {
      this.running = this.running.then(() => this.tick()).catch((err) => this.server.log.error({ err }, 'tenant watch failed'));
    }, this.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  async tick(): Promise<void> {
    const domains = [...new Set(this.domainsInUse())];
    for (const d of this.seen.keys()) if (!domains.includes(d)) this.seen.delete(d);
    if (!domains.length) return;
    const tenants = await this.tenants.getMany(domains);
    for (const [domain, tenant] of tenants) {
      if (!tenant?.enabled) await closeTenantSessions(this.server, domain, tenant ? 'tenant disabled' : 'tenant deleted');
      const json = JSON.stringify(tenant ?? null);
      const last = this.seen.get(domain);
      this.seen.set(domain, { json, tenant });
      if (last && last.json !== json) await tenantChanged(this.server, domain, last.tenant, tenant);
    }
  }
}
