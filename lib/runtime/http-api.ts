// API Gateway HTTP API (payload format 2.0) events and results, and their mapping to the
// framework-neutral admin API (lib/admin/api.ts). Type-only imports: the host-meta function's bundle
// includes this file and must stay small.
// https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html
import type { ApiRequest, ApiResponse } from '../admin/api.ts';

/** Where the admin API is mounted: on the region's HTTP API as under the local gateway (nodeHttpRoutes). */
export const ADMIN_BASE_PATH = '/api';

/** The fields of an HTTP API v2 event read here. */
export interface HttpApiEvent {
  version: '2.0';
  routeKey: string;
  /** Percent-encoded as sent; with a named stage (not $default) it starts with /{stage}. */
  rawPath: string;
  rawQueryString: string;
  /** Lower-case names; repeated headers joined with commas. */
  headers?: Record<string, string | undefined>;
  body?: string;
  isBase64Encoded: boolean;
  requestContext: {
    http: { method: string; path: string; sourceIp?: string };
    stage: string;
    requestId?: string;
    domainName?: string;
    /** With IAM authorization: who signed the request. */
    authorizer?: { iam?: { accountId?: string; userArn?: string; callerId?: string } };
  };
}

export interface HttpApiResult {
  statusCode: number;
  headers?: Record<string, string>;
  body?: string;
  isBase64Encoded?: boolean;
}

/** The request path without a named stage's prefix. */
export function pathOf(event: HttpApiEvent): string {
  const { stage } = event.requestContext;
  const path = event.rawPath || '/';
  if (stage && stage !== '$default' && (path === `/${stage}` || path.startsWith(`/${stage}/`))) return path.slice(stage.length + 1) || '/';
  return path;
}

/** The admin API's request for an event under `base` (e.g. /api/tenants → /tenants), or undefined if outside it. */
export function toApiRequest(event: HttpApiEvent, base = ADMIN_BASE_PATH): ApiRequest | undefined {
  const path = pathOf(event);
  if (path !== base && !path.startsWith(`${base}/`)) return undefined;
  const headers: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(event.headers ?? {})) headers[k.toLowerCase()] = v;
  return {
    method: event.requestContext.http.method,
    path: path.slice(base.length) || '/',
    query: new URLSearchParams(event.rawQueryString ?? ''),
    headers,
    body: event.body === undefined ? '' : event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString('utf8') : event.body,
  };
}

/** The admin API's response as an HTTP API result: JSON, as nodeHttpRoutes writes it locally. */
export function toHttpResult(out: ApiResponse): HttpApiResult {
  if (out.body === undefined) return { statusCode: out.status };
  if (out.contentType !== undefined && typeof out.body === 'string') return { statusCode: out.status, headers: { 'content-type': out.contentType }, body: out.body };
  return { statusCode: out.status, headers: { 'content-type': 'application/json' }, body: JSON.stringify(out.body, null, 2) };
}
