// On the table's DynamoDB stream in each region: when a tenant is disabled or deleted (by the admin
// API, the CLI, or by hand in the console), its sessions connected to this region are closed with
// host-gone (RFC 6120 §4.9.3.5) within seconds, and the modules hear of every change of a tenant item
// it is invoked for ("tenant/changed": a disabled connected component is ended). Every region runs one:
// closeTenantSessions touches only this region's connections, and the change reaches every replica's stream.
// https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-batchfailurereporting.html
import { closeTenantSessions, tenantChanged } from '../lib/core/tenant-lifecycle.ts';
import type { TenantRecord } from '../lib/store/tenants.ts';
import type { XmppServer } from '../lib/core/server.ts';
import { type StreamEvent, changeOf, tenantsToClose } from '../lib/runtime/tenant-stream.ts';
import { createLambdaRuntime } from '../lib/runtime/lambda.ts';

export interface StreamBatchResponse {
  batchItemFailures: { itemIdentifier: string }[];
}

/**
 * Closes the batch's tenants one after another. On the first failure it reports that record's
 * sequence number: Lambda retries the shard from there, so nothing after it is skipped (closing
 * again what was already closed is harmless).
 */
export async function closeTenantsOf(event: StreamEvent, server: XmppServer): Promise<StreamBatchResponse> {
  return closeAll(event, server);
}

/**
 * In stream order, each tenant record: its sessions closed (a disabled or deleted tenant, once per
 * domain in the batch), then the modules told of the change ("tenant/changed").
 */
async function closeAll(event: StreamEvent, server: XmppServer): Promise<StreamBatchResponse> {
  const closing = new Map(tenantsToClose(event.Records).map((c) => [c.sequenceNumber, c]));
  for (const record of event.Records) {
    const sequenceNumber = record.dynamodb?.SequenceNumber;
    const close = closing.get(sequenceNumber);
    const change = changeOf(record);
    if (!close && !change) continue;
    const domain = close?.domain ?? change!.domain;
    try {
      if (close) await closeTenantSessions(server, close.domain, close.why);
      if (change) await tenantChanged(server, change.domain, change.before as TenantRecord | undefined, change.after as TenantRecord | undefined);
    } catch (err) {
      server.log.error({ err, domain, why: close?.why ?? 'tenant changed' }, 'acting on a tenant change failed; the batch is retried from this record');
      if (!sequenceNumber) throw err;
      return { batchItemFailures: [{ itemIdentifier: sequenceNumber }] };
    }
  }
  return { batchItemFailures: [] };
}

// Built on the first batch rather than at import, so tests can import this file without an environment.
let run: ((event: StreamEvent) => Promise<StreamBatchResponse>) | undefined;
// The invocation ends with the one flush (docs/architecture.md "The end of an invocation"): the closed
// sessions' events (event push), the minutes they add to the usage records, the metrics as EMF.
export const handler = (event: StreamEvent): Promise<StreamBatchResponse> => {
  run ??= (() => {
    const rt = createLambdaRuntime();
    return rt.invocation((e: StreamEvent) => closeTenantsOf(e, rt.server));
  })();
  return run(event);
};
