// A webhook receiver for tests: a real HTTP server on 127.0.0.1 that verifies each request's signature
// with lib/webhooks/signing.ts (401 when it fails) and answers as the test scripts it.
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { verify, type VerifyResult } from '../../lib/webhooks/signing.ts';

export interface ReceivedRequest {
  headers: IncomingHttpHeaders;
  body: string;
  verified: VerifyResult;
}

/** What the server answers a request with; may wait (a slow receiver) before answering. */
export type Answer = (req: ReceivedRequest) => Promise<{ status: number; body?: string; contentType?: string }> | { status: number; body?: string; contentType?: string };

export interface WebhookServer {
  url: string;
  /** Every request, in the order received, including refused ones. */
  received: ReceivedRequest[];
  /** Requests that passed verification and were answered 2xx. */
  accepted: ReceivedRequest[];
  answer: Answer;
  close(): Promise<void>;
}

export async function startWebhookServer(secret: string, opts: { nowMs?: () => number; path?: string } = {}): Promise<WebhookServer> {
  const ws: WebhookServer = {
    url: '',
    received: [],
    accepted: [],
    answer: () => ({ status: 204 }),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const verified = verify(secret, req.headers, body, { nowMs: opts.nowMs?.() });
      const r: ReceivedRequest = { headers: req.headers, body, verified };
      ws.received.push(r);
      if (!verified.ok) {
        res.writeHead(401, { 'content-type': 'text/plain' }).end(`bad signature: ${verified.reason}`);
        return;
      }
      void Promise.resolve(ws.answer(r)).then((a) => {
        if (a.status >= 200 && a.status < 300) ws.accepted.push(r);
        res.writeHead(a.status, a.contentType ? { 'content-type': a.contentType } : {}).end(a.body ?? '');
      });
    });
  });
  server.keepAliveTimeout = 1;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  ws.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}${opts.path ?? '/hook'}`;
  const close = ws.close;
  ws.close = () => {
    server.closeAllConnections();
    return close();
  };
  return ws;
}
