// The admin HTTP API (JSON), framework-neutral so the local gateway and an API Gateway HTTP API
// Lambda serve the same code: tenants, users, sessions, and sending stanzas for backend services.
// The OpenAPI document it serves is in openapi.ts; keep both in step (a test checks the routes).
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { UserExistsError } from '../store/users.ts';
import { type FieldError, InvalidTenantError, type TenantRecord, redactSecrets, restoreSecrets, tenantDomain, validateTenantItem } from '../store/tenant-schema.ts';
import type { Session, XmppServer } from '../core/server.ts';
import { routeStanza } from '../core/router.ts';
import { StreamError } from '../xmpp/errors.ts';
import { JIDError, makeJID, parseJID } from '../xmpp/jid.ts';
import { FrameError, parseFrame } from '../xmpp/xml.ts';
import { revokeTokens } from '../auth/access-tokens.ts';
import { InvalidPasswordError, accountDataOf, addUser, removeUser, setPassword } from '../core/accounts.ts';
import { OperatorError } from '../core/modules.ts';
import { type TenantWriteProblem, tenantWriteProblem } from '../core/tenant-domains.ts';
import { openApiDocumentFor } from './openapi.ts';
import { UsageRangeError, usageRange, usageReport } from '../store/usage.ts';
import { utcDay } from '../metrics/metrics.ts';
import { MAX_BODY_BYTES, MAX_JSON_DEPTH, decodePathSegment, jsonNestingExceeds } from './request-limits.ts';
import type { TenantPurger } from './purge.ts';

export interface ApiRequest {
  method: string;
  /** Path below the API's base, e.g. /tenants/acme.example. */
  path: string;
  query: URLSearchParams;
  headers: Record<string, string | undefined>;
  body: string;
}

export interface ApiResponse {
  status: number;
  body?: unknown;
  /** A body that is text of this type (Prometheus), written as is rather than as JSON. */
  contentType?: string;
}

/** A refusal the API answers with `status` and `{ error: { code, message } }` (modules throw OperatorError, the same). */
export class ApiError extends OperatorError {
  constructor(
    status: number,
    code: string,
    message: string,
    /** For invalid-tenant: each bad field and why. */
    readonly fields?: FieldError[],
  ) {
    super(status, code, message);
  }
}

type Params = Record<string, string>;
type Handler = (req: ApiRequest, params: Params, json: () => Record<string, unknown>) => Promise<ApiResponse>;

interface Route {
  method: string;
  pattern: string;
  regex: RegExp;
  keys: string[];
  handler: Handler;
}

export interface AdminApiOptions {
  /** Bearer token; when undefined, authorization is left to the platform (IAM in AWS). */
  token?: string;
  purger: TenantPurger;
  /** Extra operations from extensions (e.g. token revocation). */
  extraRoutes?: { method: string; pattern: string; handler: Handler }[];
  /**
   * The process's counters, served at GET /metrics in the Prometheus text format (the local server
   * only: in AWS they go to CloudWatch as EMF, and one Lambda container's counters mean nothing).
   */
  metrics?: { prometheus(): string };
}

/** What can be decided from a request's line and headers alone, before its body is read. */
export type RequestHead = Pick<ApiRequest, 'path' | 'headers'>;

export type AdminApi = ((req: ApiRequest) => Promise<ApiResponse>) & {
  routes: { method: string; pattern: string }[];
  /** The refusal of a request whose body must not be read (no valid token, too large a body), else undefined. */
  refuseBeforeBody(head: RequestHead): ApiResponse | undefined;
};

export function createAdminApi(server: XmppServer, opts: AdminApiOptions): AdminApi {
  const routes: Route[] = [];
  const route = (method: string, pattern: string, handler: Handler) => {
    const keys: string[] = [];
    const regex = new RegExp(`^${pattern.replace(/\{(\w+)\}/g, (_, k) => (keys.push(k), '([^/]+)'))}$`);
    routes.push({ method, pattern, regex, keys, handler });
  };

  const tenantOr404 = async (domain: string) => {
    const t = await server.tenants.get(domain, 0);
    if (!t) throw new ApiError(404, 'tenant-not-found', `no tenant ${domain}`);
    return t;
  };
  const accountJid = (domain: string, username: string) => {
    try {
      return makeJID(username, domain).toString();
    } catch (err) {
      if (err instanceof JIDError) throw new ApiError(400, 'invalid-jid', err.message);
      throw err;
    }
  };
  const requireString = (body: Record<string, unknown>, field: string) => {
    const v = body[field];
    if (typeof v !== 'string' || !v) throw new ApiError(400, 'invalid-request', `${field} (string) is required`);
    return v;
  };

  /**
   * The whole item as it would be written, checked strictly (README "The tenant item"): all or
   * nothing. A secret that reads "(set)", as the API shows it, keeps the value `current` has.
   */
  const checkedTenant = (item: Record<string, unknown>, current?: TenantRecord): TenantRecord => {
    try {
      return validateTenantItem(restoreSecrets(item, current, server.tenants.blocks), server.tenants.blocks);
    } catch (err) {
      if (err instanceof InvalidTenantError) throw new ApiError(400, 'invalid-tenant', err.message, err.fields);
      throw err;
    }
  };
  /** The tenant as the API answers with it: secrets read "(set)" (README "Admin API"). */
  const shown = (tenant: TenantRecord | undefined) => tenant && redactSecrets(tenant, server.tenants.blocks);
  /** The checks beyond the schema (lib/core/tenant-domains.ts): the deployment's rules, then overlaps. */
  const refuseProblem = (problem: TenantWriteProblem | undefined) => {
    if (problem) throw new ApiError(problem.status, problem.code, problem.message);
  };
  /** Runs `use` with the body's password; one the account rule refuses (lib/core/accounts.ts) is 400 invalid-password. */
  const withPassword = <T>(body: Record<string, unknown>, use: (password: string) => Promise<T>): Promise<T> =>
    use(requireString(body, 'password')).catch((err) => {
      if (err instanceof InvalidPasswordError) throw new ApiError(400, 'invalid-password', err.message);
      throw err;
    });

  const openApi = openApiDocumentFor(server.tenants.blocks);
  route('GET', '/openapi.json', async () => ({ status: 200, body: openApi }));

  // ---- metrics and usage (README "Metrics and usage")
  const metrics = opts.metrics;
  // Behind the bearer token like every route: tenant names and their traffic are the operator's business.
  if (metrics) route('GET', '/metrics', async () => ({ status: 200, body: metrics.prometheus(), contentType: 'text/plain; version=0.0.4; charset=utf-8' }));
  route('GET', '/tenants/{domain}/usage', async (req, p) => {
    let range;
    try {
      range = usageRange({ from: req.query.get('from') ?? undefined, to: req.query.get('to') ?? undefined }, utcDay(server.clock.now()));
    } catch (err) {
      if (err instanceof UsageRangeError) throw new ApiError(400, 'invalid-range', err.message);
      throw err;
    }
    await tenantOr404(p.domain);
    return { status: 200, body: await usageReport(server.usage, p.domain, range.from, range.to) };
  });

  // ---- tenants
  route('GET', '/tenants', async () => ({ status: 200, body: { tenants: await server.tenants.list() } }));
  route('POST', '/tenants', async (_req, _p, json) => {
    const body = json();
    // createdAt and updatedAt are the server's to set; enabled defaults to true. The domain is kept in
    // its normal form (upper case and A-labels as a JID reads them); one that has none is refused whole.
    const { createdAt: _c, updatedAt: _u, ...fields } = body;
    const domain = typeof body.domain === 'string' ? (tenantDomain(body.domain).domain ?? body.domain) : body.domain;
    const tenant = checkedTenant({ enabled: true, ...fields, domain, createdAt: Date.now() });
    if (await server.tenants.get(tenant.domain, 0)) throw new ApiError(409, 'tenant-exists', `${tenant.domain} exists`);
    refuseProblem(await tenantWriteProblem(server, tenant, { isNew: true }));
    await server.tenants.put(tenant);
    return { status: 201, body: shown(await server.tenants.get(tenant.domain, 0)) };
  });
  route('GET', '/tenants/{domain}', async (_r, p) => ({ status: 200, body: shown(await tenantOr404(p.domain)) }));
  route('PATCH', '/tenants/{domain}', async (_r, p, json) => {
    // The changes are applied to the item as the server reads it (fields it ignores are gone) and the
    // result is checked whole; a null removes a field (JSON merge patch, RFC 7396).
    const current = await tenantOr404(p.domain);
    const { createdAt: _c, updatedAt: _u, ...changes } = json();
    refuseDomainChange(changes.domain, current.domain);
    const merged: Record<string, unknown> = { ...current };
    for (const [k, v] of Object.entries(changes)) {
      if (v === null) delete merged[k];
      else merged[k] = v;
    }
    return replaceTenant(checkedTenant(merged, current));
  });
  route('PUT', '/tenants/{domain}', async (_r, p, json) => {
    // The body is the whole item (what GET returned, edited): fields left out are gone; the path
    // names the tenant, and createdAt stays the tenant's.
    const current = await tenantOr404(p.domain);
    const { createdAt: _c, updatedAt: _u, ...item } = json();
    refuseDomainChange(item.domain, current.domain);
    return replaceTenant(checkedTenant({ ...item, domain: current.domain, ...(current.createdAt !== undefined ? { createdAt: current.createdAt } : {}) }, current));
  });
  const replaceTenant = async (tenant: TenantRecord): Promise<ApiResponse> => {
    refuseProblem(await tenantWriteProblem(server, tenant));
    await server.tenants.put(tenant);
    return { status: 200, body: shown(await server.tenants.get(tenant.domain, 0)) };
  };
  for (const [name, enabled] of [['disable', false], ['enable', true]] as const) {
    route('POST', `/tenants/{domain}/${name}`, async (_r, p) => {
      // Only `enabled` changes: the rest of the item stays as written (README "Tenants").
      if (!(await server.tenants.setEnabled(p.domain, enabled))) throw new ApiError(404, 'tenant-not-found', `no tenant ${p.domain}`);
      return { status: 200, body: shown(await tenantOr404(p.domain)) };
    });
  }
  route('DELETE', '/tenants/{domain}', async (req, p) => {
    await tenantOr404(p.domain);
    await server.tenants.remove(p.domain);
    const purge = req.query.get('purge') === 'true';
    if (purge) await opts.purger.request(p.domain);
    return { status: 202, body: { domain: p.domain, deleted: true, purge: purge ? 'pending' : 'not requested' } };
  });
  route('GET', '/tenants/{domain}/purge', async (_r, p) => {
    const job = await opts.purger.status(p.domain);
    return { status: 200, body: job ? { ...job, state: 'pending' } : { domain: p.domain, state: 'none' } };
  });

  // ---- users
  route('GET', '/tenants/{domain}/users', async (_r, p) => {
    await tenantOr404(p.domain);
    return { status: 200, body: { users: await server.users.list(p.domain) } };
  });
  route('POST', '/tenants/{domain}/users', async (_r, p, json) => {
    await tenantOr404(p.domain);
    const body = json();
    const jid = accountJid(p.domain, requireString(body, 'username'));
    try {
      await withPassword(body, (password) => addUser(server.users, jid, password));
    } catch (err) {
      if (err instanceof UserExistsError) throw new ApiError(409, 'user-exists', err.message);
      throw err;
    }
    return { status: 201, body: { jid } };
  });
  route('PUT', '/tenants/{domain}/users/{username}/password', async (_r, p, json) => {
    const jid = accountJid(p.domain, p.username);
    if (!(await withPassword(json(), (password) => setPassword(server.users, jid, password)))) throw new ApiError(404, 'user-not-found', `no user ${jid}`);
    return { status: 204 };
  });
  route('DELETE', '/tenants/{domain}/users/{username}', async (_r, p) => {
    const jid = accountJid(p.domain, p.username);
    if (!(await removeUser(server.users, jid, accountDataOf(server)))) throw new ApiError(404, 'user-not-found', `no user ${jid}`);
    await kick(server, jid, 'account removed');
    return { status: 204 };
  });

  // MongooseIM-style refresh tokens are revoked by bumping the account's sequence number.
  route('POST', '/tenants/{domain}/users/{username}/tokens/revoke', async (_r, p) => {
    const jid = accountJid(p.domain, p.username);
    const local = jid.slice(0, jid.lastIndexOf('@'));
    if (!(await revokeTokens(server.users, p.domain, local))) throw new ApiError(404, 'user-not-found', `no user ${jid}`);
    return { status: 204 };
  });

  // ---- sessions
  route('GET', '/tenants/{domain}/sessions', async (_r, p) => {
    const ids = await server.connections.idsOfTenant(p.domain);
    const sessions = [];
    for (const id of ids) {
      const rec = await server.connections.get(id);
      if (rec) sessions.push({ connectionId: id, stage: rec.stage, jid: rec.username ? `${rec.username}@${rec.domain}${rec.resource !== undefined ? `/${rec.resource}` : ''}` : undefined, connectedAt: new Date(rec.connectedAt).toISOString(), sourceIp: rec.sourceIp });
    }
    return { status: 200, body: { sessions } };
  });
  route('DELETE', '/tenants/{domain}/users/{username}/sessions', async (_r, p) => {
    const closed = await kick(server, accountJid(p.domain, p.username), 'kicked by an administrator');
    return { status: 200, body: { closed } };
  });

  // ---- stanzas from backend services
  route('POST', '/tenants/{domain}/stanzas', async (_r, p, json) => {
    await tenantOr404(p.domain);
    const body = json();
    let stanza;
    try {
      stanza = parseFrame(requireString(body, 'stanza'));
    } catch (err) {
      if (err instanceof FrameError) throw new ApiError(400, 'invalid-xml', err.message);
      throw err;
    }
    if (!['message', 'presence', 'iq'].includes(stanza.name)) throw new ApiError(400, 'invalid-stanza', 'stanza must be a message, presence or iq');
    let from;
    try {
      from = typeof body.from === 'string' ? parseJID(body.from) : parseJID(p.domain);
    } catch (err) {
      if (err instanceof JIDError) throw new ApiError(400, 'invalid-jid', err.message);
      throw err;
    }
    if (from.domain !== p.domain) throw new ApiError(400, 'invalid-jid', `from must be in ${p.domain}`);
    if (from.local && !from.resource) from = from.withResource('admin-api');
    const replies: string[] = [];
    const origin: Session = { connectionId: `api-${randomBytes(8).toString('hex')}`, endpoint: 'internal:admin-api', jid: from, expiresAt: Date.now() + 60_000 };
    const close = server.openSink(origin.connectionId, (frame) => replies.push(frame));
    try {
      await routeStanza(server, origin, stanza);
    } finally {
      close();
    }
    return { status: 200, body: { replies } };
  });

  // ---- what the modules add (rooms of the MUC service, …)
  for (const r of server.registry.adminRoutes) route(r.method, r.pattern, r.handler);
  for (const r of opts.extraRoutes ?? []) route(r.method, r.pattern, r.handler);

  /** Refuses what must not be read: a caller without the token (401), a body announced too large (413). */
  const checkHead = (head: RequestHead) => {
    if (head.path !== '/openapi.json' && opts.token !== undefined && !authorized(head.headers.authorization, opts.token)) {
      throw new ApiError(401, 'unauthorized', 'a valid bearer token is required');
    }
    const announced = Number(head.headers['content-length'] ?? 0);
    if (announced > MAX_BODY_BYTES) throw bodyTooLarge();
  };

  const api = async (req: ApiRequest): Promise<ApiResponse> => {
    try {
      checkHead(req);
      if (Buffer.byteLength(req.body) > MAX_BODY_BYTES) throw bodyTooLarge();
      const { route: r, params } = routeOf(req);
      return await r.handler(req, params, () => jsonObject(req.body));
    } catch (err) {
      return errorResponse(err, req.path);
    } finally {
      // What the request set off (a room created through the admin API: its events) ends inside the invocation.
      await server.flush();
    }
  };

  /** The route of a request and its path parameters, decoded; a `domain` parameter in its normal form. */
  const routeOf = (req: ApiRequest): { route: Route; params: Params } => {
    // RFC 3986 §2.1: every segment must decode, whatever the route makes of it.
    const broken = req.path.split('/').find((segment) => decodePathSegment(segment) === undefined);
    if (broken !== undefined) throw new ApiError(400, 'invalid-path', `the path has broken percent-encoding (RFC 3986 §2.1) in "${broken.slice(0, 100)}"`);
    const matching = routes.filter((r) => r.regex.test(req.path));
    if (!matching.length) throw new ApiError(404, 'not-found', `no route ${req.path.slice(0, 200)}`);
    const r = matching.find((m) => m.method === req.method);
    if (!r) throw new ApiError(405, 'method-not-allowed', `${req.method} is not allowed on ${req.path.slice(0, 200)}`);
    const decoded = r.regex.exec(req.path)!.slice(1).map((v) => decodePathSegment(v)!);
    const values: Params = Object.fromEntries(r.keys.map((k, i) => [k, decoded[i]]));
    if (values.domain !== undefined) {
      // Every route of a tenant, the modules' too, gets the tenant's normal form, or a reason it has none.
      const t = tenantDomain(values.domain);
      if (t.error !== undefined) throw new ApiError(400, 'invalid-domain', `"${values.domain.slice(0, 100)}" cannot be a tenant domain: ${t.error}`);
      values.domain = t.domain;
    }
    return { route: r, params: values };
  };

  /** A refusal as the caller gets it (and one info line for the operator); anything else is our bug: 500, logged at error. */
  const errorResponse = (err: unknown, path: string): ApiResponse => {
    if (err instanceof OperatorError) {
      // Paths and messages may carry what a caller sent: bounded, and never a body (it may hold a password).
      server.log.info({ status: err.status, code: err.code, path: path.slice(0, 200) }, `admin API refused: ${err.message.slice(0, 300)}`);
      return { status: err.status, body: { error: { code: err.code, message: err.message, ...(err instanceof ApiError && err.fields ? { fields: err.fields } : {}) } } };
    }
    server.log.error({ err, path: path.slice(0, 200) }, 'admin API failure');
    return { status: 500, body: { error: { code: 'internal', message: 'internal error' } } };
  };

  const refuseBeforeBody = (head: RequestHead): ApiResponse | undefined => {
    try {
      checkHead(head);
      return undefined;
    } catch (err) {
      return errorResponse(err, head.path);
    }
  };
  return Object.assign(api, { routes: routes.map(({ method, pattern }) => ({ method, pattern })), refuseBeforeBody });
}

function bodyTooLarge(): ApiError {
  return new ApiError(413, 'payload-too-large', `the body is larger than ${MAX_BODY_BYTES} bytes`);
}

/** The body as a JSON object; an empty body is an empty object. Nesting is bounded before parsing. */
function jsonObject(body: string): Record<string, unknown> {
  if (!body) return {};
  if (jsonNestingExceeds(body, MAX_JSON_DEPTH)) throw new ApiError(400, 'json-too-deep', `the body nests arrays and objects deeper than ${MAX_JSON_DEPTH} levels`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    throw new ApiError(400, 'invalid-json', 'the body must be a JSON object');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new ApiError(400, 'invalid-json', 'the body must be a JSON object');
  return parsed as Record<string, unknown>;
}

/** PATCH and PUT name the tenant in the path; a body naming another is refused, not obeyed. */
function refuseDomainChange(written: unknown, domain: string): void {
  if (written !== undefined && written !== domain) {
    throw new ApiError(400, 'invalid-tenant', 'invalid tenant: domain: cannot be changed', [{ path: 'domain', message: 'cannot be changed' }]);
  }
}

function authorized(header: string | undefined, token: string): boolean {
  const given = /^Bearer (.+)$/i.exec(header ?? '')?.[1];
  if (!given) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Closes every session of an account with a policy-violation stream error; returns how many. */
async function kick(server: XmppServer, bareJid: string, why: string): Promise<number> {
  const sessions = await server.sessions.list(bareJid);
  for (const s of sessions) await server.endConnection(s.connectionId, why, { streamError: new StreamError('policy-violation', why), endpoint: s.endpoint });
  return sessions.length;
}

/**
 * Mounts the API on a Node HTTP server under `base` (the local gateway's httpRoutes). The token and
 * an announced length are checked before the body is read, and the body is read only up to
 * MAX_BODY_BYTES: a refused request costs no more than its head.
 */
export function nodeHttpRoutes(api: AdminApi, base = '/api') {
  return async (req: IncomingMessage, res: ServerResponse): Promise<boolean> => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== base && !url.pathname.startsWith(`${base}/`)) return false;
    const headers: Record<string, string | undefined> = {};
    for (const [k, v] of Object.entries(req.headers)) headers[k.toLowerCase()] = Array.isArray(v) ? v.join(',') : v;
    const path = url.pathname.slice(base.length) || '/';
    const refusal = api.refuseBeforeBody({ path, headers });
    if (refusal) return answer(res, refusal, { unread: true });
    const body = await bodyUpTo(req, MAX_BODY_BYTES);
    if (body === undefined) return answer(res, { status: 413, body: { error: { code: 'payload-too-large', message: bodyTooLarge().message } } }, { unread: true });
    return answer(res, await api({ method: req.method ?? 'GET', path, query: url.searchParams, headers, body }));
  };
}

/** The body as text, or undefined once it passes `limit` bytes (the rest is left unread). */
async function bodyUpTo(req: IncomingMessage, limit: number): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) return undefined;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Writes the API's answer. `unread`: the body was not read, so the connection closes after the
 * answer rather than wait for (or parse as a next request) what the client still sends.
 */
function answer(res: ServerResponse, out: ApiResponse, { unread = false } = {}): true {
  const text = out.contentType !== undefined && typeof out.body === 'string';
  const payload = out.body === undefined ? '' : text ? (out.body as string) : JSON.stringify(out.body, null, 2);
  res.writeHead(out.status, {
    ...(payload ? { 'content-type': text ? out.contentType! : 'application/json' } : {}),
    ...(out.status === 401 ? { 'www-authenticate': 'Bearer realm="xmpp-edge admin"' } : {}),
    ...(unread ? { connection: 'close' } : {}),
  });
  res.end(payload);
  return true;
}
