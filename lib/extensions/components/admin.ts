// Managing a tenant's components (README "Components"): the admin API routes and the
// `xmpp-edge component` CLI commands, over one set of operations that edit the tenant item's
// `components` list, checked whole against the tenant schema, as any tenant write is.
import type { Command } from 'commander';
import { type AdminRoute, type CliCommand, OperatorError } from '../../core/modules.ts';
import type { XmppServer } from '../../core/server.ts';
import { tenantWriteProblem } from '../../core/tenant-domains.ts';
import { InvalidTenantError, redactSecrets, restoreSecrets, validateTenantItem } from '../../store/tenant-schema.ts';
import type { TenantRecord } from '../../store/tenants.ts';
import { type ComponentDeclaration, componentsProblems } from './settings.ts';

const invalid = (message: string) => new OperatorError(400, 'invalid-request', message);

async function tenantOf(server: XmppServer, domain: string): Promise<TenantRecord> {
  const t = await server.tenants.get(domain, 0);
  if (!t) throw new OperatorError(404, 'tenant-not-found', `no tenant ${domain}`);
  return t;
}

const listOf = (t: TenantRecord) => (t.components ?? []) as ComponentDeclaration[];

/** The tenant's components as an operator sees them: secrets read "(set)". */
export async function listComponents(server: XmppServer, domain: string): Promise<ComponentDeclaration[]> {
  const t = await tenantOf(server, domain);
  return listOf(redactSecrets(t, server.tenants.blocks));
}

/** Writes the tenant with `components` changed by `edit`, checked whole; returns the component as shown. */
async function editComponents(server: XmppServer, domain: string, component: string, edit: (list: ComponentDeclaration[]) => ComponentDeclaration[]): Promise<ComponentDeclaration | undefined> {
  const current = await tenantOf(server, domain);
  const list = edit(listOf(current).map((c) => ({ ...c })));
  const item: Record<string, unknown> = { ...current };
  if (list.length) item.components = list;
  else delete item.components;
  let tenant: TenantRecord;
  try {
    tenant = validateTenantItem(restoreSecrets(item, current, server.tenants.blocks), server.tenants.blocks);
  } catch (err) {
    if (err instanceof InvalidTenantError) throw new OperatorError(400, 'invalid-tenant', err.message);
    throw err;
  }
  const problems = componentsProblems(tenant);
  if (problems.length) throw new OperatorError(400, 'invalid-component', problems.join('; '));
  const problem = await tenantWriteProblem(server, tenant);
  if (problem) throw new OperatorError(problem.status, problem.code, problem.message);
  await server.tenants.put(tenant);
  server.log.info({ tenant: domain, component }, 'components changed');
  return listOf(redactSecrets(tenant, server.tenants.blocks)).find((c) => c.domain === component);
}

/** Adds or replaces one component (`fields` without its domain); kind defaults to connected, enabled to true. */
export function putComponent(server: XmppServer, domain: string, component: string, fields: Record<string, unknown>): Promise<ComponentDeclaration | undefined> {
  if (fields.domain !== undefined && fields.domain !== component) throw invalid('the path names the component: domain must match or be left out');
  const declaration = { kind: 'connected', enabled: true, ...fields, domain: component } as ComponentDeclaration;
  return editComponents(server, domain, component, (list) => {
    const i = list.findIndex((c) => c.domain === component);
    if (i >= 0) list[i] = declaration;
    else list.push(declaration);
    return list;
  });
}

/** Changes some fields of one component (JSON merge patch: null removes a field). */
export async function patchComponent(server: XmppServer, domain: string, component: string, changes: Record<string, unknown>): Promise<ComponentDeclaration | undefined> {
  if (changes.domain !== undefined && changes.domain !== component) throw invalid('a component cannot change its domain: remove it and add another');
  return editComponents(server, domain, component, (list) => {
    const c = list.find((x) => x.domain === component) as Record<string, unknown> | undefined;
    if (!c) throw new OperatorError(404, 'component-not-found', `no component ${component} in ${domain}`);
    for (const [k, v] of Object.entries(changes)) {
      if (v === null) delete c[k];
      else c[k] = v;
    }
    return list;
  });
}

export async function removeComponent(server: XmppServer, domain: string, component: string): Promise<void> {
  await editComponents(server, domain, component, (list) => {
    if (!list.some((c) => c.domain === component)) throw new OperatorError(404, 'component-not-found', `no component ${component} in ${domain}`);
    return list.filter((c) => c.domain !== component);
  });
}

export function componentAdminRoutes(server: XmppServer): AdminRoute[] {
  return [
    { method: 'GET', pattern: '/tenants/{domain}/components', handler: async (_r, p) => ({ status: 200, body: { components: await listComponents(server, p.domain) } }) },
    {
      method: 'GET',
      pattern: '/tenants/{domain}/components/{component}',
      handler: async (_r, p) => {
        const c = (await listComponents(server, p.domain)).find((x) => x.domain === p.component);
        if (!c) throw new OperatorError(404, 'component-not-found', `no component ${p.component} in ${p.domain}`);
        return { status: 200, body: c };
      },
    },
    { method: 'PUT', pattern: '/tenants/{domain}/components/{component}', handler: async (_r, p, json) => ({ status: 200, body: await putComponent(server, p.domain, p.component, json()) }) },
    { method: 'PATCH', pattern: '/tenants/{domain}/components/{component}', handler: async (_r, p, json) => ({ status: 200, body: await patchComponent(server, p.domain, p.component, json()) }) },
    ...(['enable', 'disable'] as const).map((action) => ({
      method: 'POST',
      pattern: `/tenants/{domain}/components/{component}/${action}`,
      handler: async (_r: unknown, p: Record<string, string>) => ({ status: 200, body: await patchComponent(server, p.domain, p.component, { enabled: action === 'enable' }) }),
    })),
    {
      method: 'DELETE',
      pattern: '/tenants/{domain}/components/{component}',
      handler: async (_r, p) => {
        await removeComponent(server, p.domain, p.component);
        return { status: 204 };
      },
    },
  ];
}

/** The tenant of a component domain as the CLI takes it: the parent domain unless --tenant says otherwise. */
const tenantFor = (component: string, tenant?: string) => tenant ?? component.slice(component.indexOf('.') + 1);

export const componentCommands: CliCommand = {
  name: 'component',
  description: "manage a tenant's XEP-0114 and webhook components (README \"Components\")",
  register(group, { withServer, out, err }) {
    const cmd = group as Command;
    const show = (c: ComponentDeclaration | undefined) => out(`${JSON.stringify(c, null, 2)}\n`);
    cmd
      .command('list <tenant>')
      .description("print a tenant's components: domain, kind, enabled or disabled, url")
      .action(
        withServer(async (server, _t, tenant: string) => {
          const list = await listComponents(server, tenant);
          for (const c of list) out(`${c.domain}\t${c.kind}\t${c.enabled ? 'enabled' : 'disabled'}${c.url ? `\t${c.url}` : ''}\n`);
          if (!list.length) err(`xmpp-edge: no components in ${tenant}\n`);
        }),
      );
    cmd
      .command('add <domain>')
      .description('add (or replace) a component at a subdomain of its tenant: --secret for XEP-0114, or --url and --signing-secret for a webhook')
      .option('--tenant <domain>', 'its tenant (default: the domain without its first label)')
      .option('--secret <secret>', 'the XEP-0114 handshake secret (a connected component)')
      .option('--url <url>', 'the webhook URL (a webhook component): https, or http://127.0.0.1 locally')
      .option('--signing-secret <secret>', "the webhook's HMAC key")
      .option('--disabled', 'add it switched off')
      .action(
        withServer(async (server, _t, domain: string, o: { tenant?: string; secret?: string; url?: string; signingSecret?: string; disabled?: boolean }) => {
          const kind = o.url !== undefined || o.signingSecret !== undefined ? 'webhook' : 'connected';
          const fields = { kind, enabled: !o.disabled, ...(o.secret !== undefined ? { secret: o.secret } : {}), ...(o.url !== undefined ? { url: o.url } : {}), ...(o.signingSecret !== undefined ? { signingSecret: o.signingSecret } : {}) };
          show(await putComponent(server, tenantFor(domain, o.tenant), domain, fields));
        }),
      );
    for (const action of ['enable', 'disable'] as const) {
      cmd
        .command(`${action} <domain>`)
        .description(action === 'enable' ? 'switch a component on' : 'switch a component off: a connected one is disconnected within seconds (host-gone), stanzas to it get service-unavailable')
        .option('--tenant <domain>', 'its tenant (default: the domain without its first label)')
        .action(withServer(async (server, _t, domain: string, o: { tenant?: string }) => show(await patchComponent(server, tenantFor(domain, o.tenant), domain, { enabled: action === 'enable' }))));
    }
    cmd
      .command('remove <domain>')
      .description('remove a component')
      .option('--tenant <domain>', 'its tenant (default: the domain without its first label)')
      .action(
        withServer(async (server, _t, domain: string, o: { tenant?: string }) => {
          await removeComponent(server, tenantFor(domain, o.tenant), domain);
          out(`removed ${domain}\n`);
        }),
      );
  },
};
