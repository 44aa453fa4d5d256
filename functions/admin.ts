// The admin API (lib/admin/api.ts) behind the region's HTTP API, under /api. No bearer token here:
// every /api route has IAM authorization, so API Gateway has already checked the caller's SigV4
// signature and execute-api:Invoke permission before this runs (README "Deploy to AWS").
import { type AdminApi, createAdminApi } from '../lib/admin/api.ts';
import { TenantPurger, purgePlanOf } from '../lib/admin/purge.ts';
import { ADMIN_BASE_PATH, type HttpApiEvent, type HttpApiResult, toApiRequest, toHttpResult } from '../lib/runtime/http-api.ts';
import { createLambdaRuntime } from '../lib/runtime/lambda.ts';

/** Serves one event with `api`; paths outside /api are not the admin API's. */
export async function serveAdmin(api: AdminApi, event: HttpApiEvent): Promise<HttpApiResult> {
  const request = toApiRequest(event, ADMIN_BASE_PATH);
  if (!request) return toHttpResult({ status: 404, body: { error: { code: 'not-found', message: `no route ${event.rawPath}` } } });
  return toHttpResult(await api(request));
}

// Built on the first request rather than at import, so tests can import this file without an environment.
let api: ((event: HttpApiEvent) => Promise<HttpApiResult>) | undefined;
export const handler = (event: HttpApiEvent): Promise<HttpApiResult> => {
  api ??= (() => {
    const { server, table, invocation } = createLambdaRuntime();
    // token undefined: authorization is IAM's (createAdminApi leaves it to the platform). No /metrics:
    // in AWS the counters are CloudWatch metrics, written after each request like every function's.
    const admin: AdminApi = createAdminApi(server, { token: undefined, purger: new TenantPurger(server.db, table, purgePlanOf(server)) });
    return invocation((e: HttpApiEvent) => serveAdmin(admin, e));
  })();
  return api(event);
};
