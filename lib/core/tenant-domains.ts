// Tenant domains and the addresses of their components (the MUC service at conference.<domain>) must
// not overlap: the router hands a component's address to the component (docs/architecture.md "The
// core"), so a tenant at another tenant's service address would never get its stanzas, and a service
// at a tenant's domain would take them. The admin API and the CLI ask here before writing a tenant.
// tenantWriteProblem is the one check every admin path runs on an item it writes, after its schema:
// modules' write checks (ctx.addTenantWriteCheck), then these overlaps.
import type { TenantRecord } from '../store/tenants.ts';
import type { XmppServer } from './server.ts';

export interface TenantWriteProblem {
  /** 400: the item asks for what this deployment refuses; 409: it overlaps another tenant. */
  status: 400 | 409;
  code: string;
  message: string;
}

/**
 * Why `tenant` may not be written by an admin tool (the admin API, the CLI, a module's routes), beyond
 * its schema; undefined if it may. `isNew`: a tenant being created (its own domain must be free too).
 */
export async function tenantWriteProblem(server: XmppServer, tenant: TenantRecord, opts: { isNew?: boolean } = {}): Promise<TenantWriteProblem | undefined> {
  for (const { check } of server.registry.tenantWriteChecks) {
    const problem = check(tenant);
    if (problem) return { status: 400, ...problem };
  }
  const conflict = opts.isNew ? await newTenantConflict(server, tenant) : await servicesOnTenants(server, tenant);
  return conflict ? { status: 409, code: 'domain-conflict', message: conflict } : undefined;
}

/** Why `tenant` may not be written as a new tenant (its domain or its services overlap another's); undefined if it may. */
export async function newTenantConflict(server: XmppServer, tenant: TenantRecord): Promise<string | undefined> {
  return (await serviceAtDomain(server, tenant.domain)) ?? (await servicesOnTenants(server, tenant));
}

/**
 * Why `tenant`'s services may not be where its item puts them (one is another tenant's domain);
 * undefined if they may. For a changed tenant, whose own domain cannot change.
 */
export async function servicesOnTenants(server: XmppServer, tenant: TenantRecord): Promise<string | undefined> {
  for (const c of server.registry.components) {
    const problems = c.problemsOf?.(tenant) ?? [];
    if (problems.length) return problems.join('; ');
  }
  for (const { domain, component } of server.componentDomainsOf(tenant)) {
    if (await server.tenants.get(domain, 0)) return `${domain} is a tenant: the ${component} service of ${tenant.domain} would take its address; change the service's settings`;
  }
  return undefined;
}

/** Whose service already answers at `domain`: a component's address is below its tenant's domain, so ask each parent domain. */
async function serviceAtDomain(server: XmppServer, domain: string): Promise<string | undefined> {
  const parents = domain.split('.').slice(1).map((_, i, labels) => labels.slice(i).join('.'));
  if (!parents.length) return undefined;
  for (const [parent, owner] of await server.tenants.getMany(parents)) {
    const service = owner && server.componentDomainsOf(owner).find((c) => c.domain === domain);
    if (service) return `${domain} is the address of the ${service.component} service of tenant ${parent}`;
  }
  return undefined;
}
