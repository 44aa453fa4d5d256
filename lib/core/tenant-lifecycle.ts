// What happens to live sessions when an admin disables or deletes a tenant: they are closed with
// host-gone (RFC 6120 §4.9.3.5) within seconds. In AWS the table's stream reports the change; on a
// laptop (dynalite has no streams) the watcher below polls the tenants that have open connections.
import { StreamError } from '../xmpp/errors.ts';
import type { TenantStore } from '../store/tenants.ts';
import type { XmppServer } from './server.ts';

/** Closes every open connection of `domain` with host-gone. Returns how many were closed. */
export async function closeTenantSessions(server: XmppServer, domain: string, why: string): Promise<number> {
  const ids = await server.connections.idsOfTenant(domain);
  await Promise.all(ids.map((id) => server.endConnection(id, why, { streamError: new StreamError('host-gone', `${domain} is no longer served here`) })));
  if (ids.length) server.log.info({ domain, closed: ids.length, why }, 'closed tenant sessions');
  return ids.length;
}

/** Polls the tenants of this process's open connections; closes those whose tenant went away. */
export class TenantWatcher {
  private timer?: NodeJS.Timeout;
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
    if (!domains.length) return;
    const tenants = await this.tenants.getMany(domains);
    for (const [domain, tenant] of tenants) {
      if (!tenant?.enabled) await closeTenantSessions(this.server, domain, tenant ? 'tenant disabled' : 'tenant deleted');
    }
  }
}
