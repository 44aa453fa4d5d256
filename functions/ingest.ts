// The ingest Lambda: WebSocket frames from the SQS FIFO queue the $default route writes to, in order
// per connection, at most once each (docs/architecture.md "Order"). The logic is lib/gateway/ingest.ts,
// which the local gateway runs too; this file is the deployed wiring.
import { createIngestHandler, type IngestDeps, type SqsBatchResponse, type SqsEvent } from '../lib/gateway/ingest.ts';
import { createLambdaRuntime, type LambdaRuntime } from '../lib/runtime/lambda.ts';
import { createDynamoClient } from '../lib/store/dynamo.ts';
import { FrameClaimStore } from '../lib/store/frame-dedup.ts';

/** The deployed wiring: the same server as the WebSocket routes, plus the frame claims table. */
function fromEnvironment(env: Record<string, string | undefined> = process.env): { deps: IngestDeps; runtime: LambdaRuntime } {
  const claimsTable = env.FRAME_CLAIMS_TABLE?.trim();
  if (!claimsTable) throw new Error('FRAME_CLAIMS_TABLE is not set: the ingest needs the name of its frame claims table');
  const runtime = createLambdaRuntime(env);
  const { server, endpointOf, tracer } = runtime;
  const deps: IngestDeps = {
    processor: server,
    claims: new FrameClaimStore(createDynamoClient({ region: env.AWS_REGION, tracer }), claimsTable),
    endpointOf: (e) => endpointOf({ domainName: e.domainName, stage: e.stage }),
    log: server.log,
  };
  return { deps, runtime };
}

// Built on the first batch rather than at import, so tests can import this file without an environment.
let handle: ((event: SqsEvent) => Promise<SqsBatchResponse>) | undefined;
// After the batch, the invocation's one flush (docs/architecture.md "The end of an invocation"): event
// push and other deferred work, the batch's per-tenant metrics (EMF) and, now and then, usage records.
export const handler = async (event: SqsEvent): Promise<SqsBatchResponse> =>
  (handle ??= (() => {
    const { deps, runtime } = fromEnvironment();
    return runtime.invocation(createIngestHandler(deps));
  })())(event);
