// XEP-0156 connection discovery for this region: /.well-known/host-meta and host-meta.json on the
// region's HTTP API, without authorization. WEBSOCKET_URL is the region's WebSocket URL, or the custom
// domain's (latency-routed to the nearest region) when the stack has one.
import { hostMetaResponse } from '../lib/gateway/host-meta.ts';
import { type HttpApiEvent, type HttpApiResult, pathOf } from '../lib/runtime/http-api.ts';

export function serveHostMeta(event: HttpApiEvent, env: Record<string, string | undefined> = process.env): HttpApiResult {
  const out = hostMetaResponse(event.requestContext.http.method, pathOf(event), { websocket: env.WEBSOCKET_URL, bosh: env.BOSH_URL });
  if (!out) return { statusCode: 404, headers: { 'content-type': 'text/plain' }, body: 'Not Found' };
  return { statusCode: out.status, headers: out.headers, body: out.body };
}

export const handler = async (event: HttpApiEvent): Promise<HttpApiResult> => serveHostMeta(event);
