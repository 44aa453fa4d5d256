// XEP-0124/0206 BOSH behind the region's HTTP API (POST and OPTIONS /http-bind, no authorizer: the
// stream authenticates with SASL like a WebSocket one). The logic is lib/gateway/bosh/endpoint.ts,
// which the local gateway serves too; this file is the deployed wiring (docs/architecture.md "BOSH").
// An HTTP API waits at most 30 s for its integration, so `wait` is at most BOSH_MAX_WAIT (25 s), and a
// waiting request reads its session's item every BOSH_POLL_MS: posts come from other containers.
import { BoshEndpoint, boshEndpointOf } from '../lib/gateway/bosh/endpoint.ts';
import { createIngestHandler } from '../lib/gateway/ingest.ts';
import type { HttpApiEvent, HttpApiResult } from '../lib/runtime/http-api.ts';
import { createLambdaRuntime, type LambdaRuntime } from '../lib/runtime/lambda.ts';
import { createDynamoClient } from '../lib/store/dynamo.ts';
import { FrameClaimStore } from '../lib/store/frame-dedup.ts';

/** An HTTP API integration may take 30 s; the response must be sent well before. */
export const BOSH_MAX_WAIT_SECONDS = 25;
/** How often a waiting request reads its session's item: a stanza reaches it within this (plus a read). */
export const BOSH_POLL_MS = 900;

export function boshFromEnvironment(env: Record<string, string | undefined> = process.env): { bosh: BoshEndpoint; runtime: LambdaRuntime } {
  const claimsTable = env.FRAME_CLAIMS_TABLE?.trim();
  if (!claimsTable) throw new Error('FRAME_CLAIMS_TABLE is not set: BOSH requests are claimed in the frame claims table');
  const runtime = createLambdaRuntime(env);
  const { server, boshStore, tracer } = runtime;
  const ingest = createIngestHandler({
    processor: server,
    claims: new FrameClaimStore(createDynamoClient({ region: env.AWS_REGION, tracer }), claimsTable),
    endpointOf: () => boshEndpointOf(server.connections.region),
    log: server.log,
  });
  const bosh = new BoshEndpoint({ server, store: boshStore, ingest, limits: { maxWait: BOSH_MAX_WAIT_SECONDS }, pollMs: BOSH_POLL_MS });
  return { bosh, runtime };
}

/** One HTTP API (payload 2.0) event as a BOSH request. */
export async function serveBosh(bosh: BoshEndpoint, event: HttpApiEvent): Promise<HttpApiResult> {
  const headers: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(event.headers ?? {})) headers[k.toLowerCase()] = v;
  const body = event.body === undefined ? '' : event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString('utf8') : event.body;
  const out = await bosh.handle({ method: event.requestContext.http.method, headers, body, sourceIp: event.requestContext.http.sourceIp });
  return { statusCode: out.status, headers: out.headers, body: out.body };
}

// Built on the first request rather than at import, so tests can import this file without an environment.
// The request ends with the invocation's one flush (docs/architecture.md "The end of an invocation").
let handle: ((event: HttpApiEvent) => Promise<HttpApiResult>) | undefined;
export const handler = (event: HttpApiEvent): Promise<HttpApiResult> =>
  (handle ??= (() => {
    const { bosh, runtime } = boshFromEnvironment();
    return runtime.invocation((e: HttpApiEvent) => serveBosh(bosh, e));
  })())(event);
