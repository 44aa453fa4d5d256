// The admin HTTP API as an operator's tooling calls it (README "Admin API"): the test server's token, a
// JSON body when there is one, the answer's status and parsed JSON body.
import type { TestServer } from './harness.ts';

// The body is whatever JSON a route answers; each test reads the fields it asserts.
export async function adminCall(s: Pick<TestServer, 'adminUrl' | 'adminToken'>, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${s.adminUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${s.adminToken}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}
