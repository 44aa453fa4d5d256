// The MUC service's admin API routes (README "Admin API"): rooms of a tenant, through the same code
// paths as XMPP clients, so occupants hear of every change an operator makes.
import { type AdminRoute, OperatorError } from '../../core/modules.ts';
import type { XmppServer } from '../../core/server.ts';
import { configureRoom, createRoom, listRooms, mucContext, removeRoom, setAffiliation, showRoom } from './operations.ts';
import type { Ctx } from './service.ts';

const invalid = (message: string) => new OperatorError(400, 'invalid-request', message);

function requireString(body: Record<string, unknown>, field: string): string {
  const v = body[field];
  if (typeof v !== 'string' || !v) throw invalid(`${field} (string) is required`);
  return v;
}

function optionalString(body: Record<string, unknown>, field: string): string | undefined {
  const v = body[field];
  if (v !== undefined && typeof v !== 'string') throw invalid(`${field} must be a string`);
  return v as string | undefined;
}

function objectField(body: Record<string, unknown>, field: string): Record<string, unknown> | undefined {
  const v = body[field];
  if (v !== undefined && (typeof v !== 'object' || v === null || Array.isArray(v))) throw invalid(`${field} must be an object`);
  return v as Record<string, unknown> | undefined;
}

export function roomAdminRoutes(server: XmppServer): AdminRoute[] {
  const rooms = async <T>(domain: string, fn: (ctx: Ctx) => Promise<T>): Promise<T> => {
    if (!(await server.tenants.get(domain, 0))) throw new OperatorError(404, 'tenant-not-found', `no tenant ${domain}`);
    return fn(await mucContext(server, domain));
  };
  return [
    { method: 'GET', pattern: '/tenants/{domain}/rooms', handler: async (_r, p) => ({ status: 200, body: { rooms: await rooms(p.domain, (ctx) => listRooms(ctx)) } }) },
    {
      method: 'POST',
      pattern: '/tenants/{domain}/rooms',
      handler: async (_r, p, json) => {
        const body = json();
        const owners = body.owners;
        if (owners !== undefined && (!Array.isArray(owners) || owners.some((o) => typeof o !== 'string'))) throw invalid('owners must be an array of JIDs');
        const view = await rooms(p.domain, (ctx) => createRoom(ctx, requireString(body, 'name'), { owners: owners as string[] | undefined, config: objectField(body, 'config') }));
        return { status: 201, body: view };
      },
    },
    { method: 'GET', pattern: '/tenants/{domain}/rooms/{room}', handler: async (_r, p) => ({ status: 200, body: await rooms(p.domain, (ctx) => showRoom(ctx, p.room)) }) },
    { method: 'PATCH', pattern: '/tenants/{domain}/rooms/{room}', handler: async (_r, p, json) => ({ status: 200, body: await rooms(p.domain, (ctx) => configureRoom(ctx, p.room, json())) }) },
    {
      method: 'DELETE',
      pattern: '/tenants/{domain}/rooms/{room}',
      handler: async (req, p) => {
        await rooms(p.domain, (ctx) => removeRoom(ctx, p.room, { reason: req.query.get('reason') ?? undefined, alternate: req.query.get('alternate') ?? undefined }));
        return { status: 204 };
      },
    },
    {
      method: 'GET',
      pattern: '/tenants/{domain}/rooms/{room}/affiliations',
      handler: async (_r, p) => ({ status: 200, body: { affiliations: (await rooms(p.domain, (ctx) => showRoom(ctx, p.room))).affiliations } }),
    },
    {
      method: 'PUT',
      pattern: '/tenants/{domain}/rooms/{room}/affiliations/{jid}',
      handler: async (_r, p, json) => {
        const body = json();
        const view = await rooms(p.domain, (ctx) => setAffiliation(ctx, p.room, p.jid, requireString(body, 'affiliation'), { reason: optionalString(body, 'reason'), nick: optionalString(body, 'nick') }));
        return { status: 200, body: view };
      },
    },
  ];
}
