// XEP-0156 §3 (HTTP lookup method): the host-meta documents that tell a client, typically a browser
// that cannot query DNS, where to connect: /.well-known/host-meta (XRD, RFC 6415 — required) and
// /.well-known/host-meta.json (JRD, RFC 6415 Appendix A). Each region serves its own WebSocket URL
// (or the custom domain's, which Route 53 resolves to the nearest region). Pure: the API Gateway HTTP
// API Lambda (functions/host-meta.ts) and the local gateway (lib/local/local-server.ts) serve the same
// responses. No XML library on purpose: this goes into the smallest bundle.
// https://xmpp.org/extensions/xep-0156.html#http
import type { IncomingMessage, ServerResponse } from 'node:http';

/** XEP-0156 §3.1 link relations. */
export const ALT_CONNECTIONS = {
  websocket: 'urn:xmpp:alt-connections:websocket',
  xbosh: 'urn:xmpp:alt-connections:xbosh',
} as const;

export const XRD_NS = 'http://docs.oasis-open.org/ns/xri/xrd-1.0';
export const HOST_META_PATH = '/.well-known/host-meta';
export const HOST_META_JSON_PATH = '/.well-known/host-meta.json';

/** Where this server takes connections; unset methods are not advertised. */
export interface ConnectionMethods {
  /** RFC 7395 endpoint, ws: or wss: */
  websocket?: string;
  /** XEP-0206 BOSH endpoint, http: or https: */
  bosh?: string;
}

export interface Link {
  rel: string;
  href: string;
}

export function linksOf(methods: ConnectionMethods): Link[] {
  const links: Link[] = [];
  if (methods.bosh) links.push({ rel: ALT_CONNECTIONS.xbosh, href: methods.bosh });
  if (methods.websocket) links.push({ rel: ALT_CONNECTIONS.websocket, href: methods.websocket });
  return links;
}

const attr = (v: string) => v.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');

/** /.well-known/host-meta: the XRD document (XEP-0156 Example 3). */
export function hostMetaXrd(methods: ConnectionMethods): string {
  const links = linksOf(methods).map((l) => `  <Link rel="${attr(l.rel)}" href="${attr(l.href)}"/>\n`);
  return `<?xml version="1.0" encoding="utf-8"?>\n<XRD xmlns="${XRD_NS}">\n${links.join('')}</XRD>\n`;
}

/** /.well-known/host-meta.json: the JRD document (XEP-0156 Example 4). */
export function hostMetaJrd(methods: ConnectionMethods): { links: Link[] } {
  return { links: linksOf(methods) };
}

export interface HostMetaResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * The response for a request, or undefined if `path` is not a host-meta document. XEP-0156 §3: web
 * clients on other origins must be able to read it (CORS); it changes only with a deploy.
 */
export function hostMetaResponse(method: string, path: string, methods: ConnectionMethods): HostMetaResponse | undefined {
  const json = path === HOST_META_JSON_PATH;
  if (!json && path !== HOST_META_PATH) return undefined;
  const common = { 'access-control-allow-origin': '*', 'cache-control': 'public, max-age=300' };
  if (method !== 'GET' && method !== 'HEAD') return { status: 405, headers: { ...common, allow: 'GET, HEAD' }, body: '' };
  return json
    ? { status: 200, headers: { ...common, 'content-type': 'application/json' }, body: JSON.stringify(hostMetaJrd(methods), null, 2) + '\n' }
    : { status: 200, headers: { ...common, 'content-type': 'application/xrd+xml; charset=utf-8' }, body: hostMetaXrd(methods) };
}

/** The documents as a route of the local gateway's HTTP server (LocalGatewayOptions.httpRoutes). */
export function hostMetaHttpRoute(methods: () => ConnectionMethods) {
  return (req: IncomingMessage, res: ServerResponse): boolean => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    const out = hostMetaResponse(req.method ?? 'GET', path, methods());
    if (!out) return false;
    req.resume();
    res.writeHead(out.status, { ...out.headers, 'content-length': Buffer.byteLength(out.body) });
    res.end(req.method === 'HEAD' ? undefined : out.body);
    return true;
  };
}
