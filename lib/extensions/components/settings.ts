// The `components` block of the tenant item (README "Components"): the XEP-0114 components and webhook
// components a tenant runs, each at its own domain below the tenant's.
import { type Static, Type } from '@sinclair/typebox';
import { SECRET, listKey } from '../../store/tenant-schema.ts';
import type { TenantRecord } from '../../store/tenants.ts';

/** The name the components module's service registers under (the router's `<kind>/component/components` events). */
export const COMPONENTS_SERVICE = 'components';

export const ComponentSchema = Type.Object(
  {
    domain: Type.String({ minLength: 3, maxLength: 253, pattern: '^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$', description: "The component's domain: a subdomain of the tenant's (bot.acme.example), lower case." }),
    kind: Type.Union([Type.Literal('connected'), Type.Literal('webhook')], { description: "connected: an XEP-0114 component connects with `secret`; webhook: stanzas are POSTed to `url`. Default 'connected'." }),
    enabled: Type.Boolean({ description: 'false: a connected component is refused at its handshake and disconnected; stanzas to it get service-unavailable.' }),
    secret: Type.Optional(Type.String({ minLength: 8, maxLength: 256, description: "XEP-0114 handshake secret (kind connected). Kept as it is: the handshake proves SHA-1(stream id + secret), which needs the secret itself (README \"Components\").", ...SECRET })),
    url: Type.Optional(Type.String({ pattern: '^https?://', maxLength: 2048, description: 'Where stanzas are POSTed (kind webhook): https; http://127.0.0.1 only on the local server.' })),
    stanzasPerSecond: Type.Optional(
      Type.Number({
        exclusiveMinimum: 0,
        maximum: 100_000,
        description: "Sustained stanzas per second from the component's connection (bursts of twice that), slowed then answered resource-constraint as a client's; default the tenant's limits.stanzasPerSecond (kind connected).",
      }),
    ),
    signingSecret: Type.Optional(Type.String({ minLength: 16, maxLength: 256, description: 'HMAC-SHA-256 key of the X-XMPP-Edge-Signature header (kind webhook).', ...SECRET })),
  },
  { additionalProperties: false },
);

export const ComponentsSchema = Type.Array(ComponentSchema, {
  maxItems: 50,
  description: "The tenant's components (README \"Components\"), each at a subdomain of the tenant.",
  ...listKey('domain'),
});

export type ComponentDeclaration = Static<typeof ComponentSchema>;

/** Why a declaration cannot serve in `tenant`; undefined if it can. Checked on read and on write. */
export function declarationProblem(tenantDomain: string, c: ComponentDeclaration): string | undefined {
  // A component at the tenant's own domain would take its users' stanzas: only subdomains.
  if (!c.domain.endsWith(`.${tenantDomain}`)) return `${c.domain} is not a subdomain of ${tenantDomain}`;
  if (c.kind === 'connected' && !c.secret) return `${c.domain}: a connected component needs a secret`;
  if (c.kind === 'webhook' && (!c.url || !c.signingSecret)) return `${c.domain}: a webhook component needs a url and a signingSecret`;
  return undefined;
}

/** Every problem of a tenant's components block, for the admin tools (nothing is written if any). */
export function componentsProblems(tenant: TenantRecord): string[] {
  const list = (tenant.components ?? []) as ComponentDeclaration[];
  const problems = list.flatMap((c) => declarationProblem(tenant.domain, c) ?? []);
  const seen = new Set<string>();
  for (const c of list) {
    if (seen.has(c.domain)) problems.push(`${c.domain} is declared twice`);
    seen.add(c.domain);
  }
  return problems;
}

/** The declaration of `domain` in a tenant item, if it may serve (see declarationProblem). */
export function declarationOf(tenant: TenantRecord | undefined, domain: string): ComponentDeclaration | undefined {
  const list = (tenant?.components ?? []) as ComponentDeclaration[];
  const c = list.find((x) => x.domain === domain);
  return c && tenant && !declarationProblem(tenant.domain, c) ? c : undefined;
}

/** The tenants that could own `domain` (each parent domain), nearest first. */
export function parentDomains(domain: string): string[] {
  const labels = domain.split('.');
  return labels.slice(1).map((_, i) => labels.slice(i + 1).join('.'));
}
