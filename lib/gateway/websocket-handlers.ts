// The $connect and $disconnect routes as Lambda proxy handlers over one XmppServer. The Lambda entry
// points in functions/ and the local gateway both use these, so the code path is the same. $default
// is not a Lambda proxy: frames go through an SQS FIFO queue to the ingest (ingest.ts), in AWS and locally.
import type { XmppServer } from '../core/server.ts';
import type { WebSocketEvent, WebSocketHandler, WebSocketRequestContext, WebSocketResult } from './events.ts';

/** How the management endpoint of a connection's own stage is derived from its events. */
export type EndpointOf = (ctx: Pick<WebSocketRequestContext, 'domainName' | 'stage'>) => string;

/** In AWS: https://{domainName}/{stage} (createLambdaRuntime uses MANAGEMENT_ENDPOINT instead when set). */
export const awsEndpointOf: EndpointOf = (ctx) => `https://${ctx.domainName}/${ctx.stage}`;

export interface WebSocketHandlers {
  connect: WebSocketHandler;
  disconnect: WebSocketHandler;
}

export function createWebSocketHandlers(server: XmppServer, endpointOf: EndpointOf = awsEndpointOf): WebSocketHandlers {
  return {
    async connect(event: WebSocketEvent): Promise<WebSocketResult> {
      const ctx = event.requestContext;
      const offered = headerValue(event, 'sec-websocket-protocol') ?? '';
      const protocols = offered.split(',').map((p) => p.trim()).filter(Boolean);
      const chosen = await server.connect({
        connectionId: ctx.connectionId,
        endpoint: endpointOf(ctx),
        connectedAt: ctx.connectedAt,
        sourceIp: ctx.identity?.sourceIp,
        protocols,
      });
      // RFC 7395 §3.3: the server echoes the "xmpp" subprotocol; without it the client must not proceed.
      if (!chosen) return { statusCode: 400, body: 'the xmpp WebSocket subprotocol is required (RFC 7395)' };
      // RFC 6585 §4: the client's address opened too many connections in this window.
      if (chosen === 'too-many') return { statusCode: 429, body: 'too many new connections from this address; try again later' };
      return { statusCode: 200, headers: { 'Sec-WebSocket-Protocol': chosen } };
    },
    async disconnect(event: WebSocketEvent): Promise<WebSocketResult> {
      const ctx = event.requestContext;
      await server.disconnect(ctx.connectionId, `disconnect ${ctx.disconnectStatusCode ?? ''} ${ctx.disconnectReason ?? ''}`.trim());
      await server.flush();
      return { statusCode: 200 };
    },
  };
}

function headerValue(event: WebSocketEvent, name: string): string | undefined {
  for (const [k, v] of Object.entries(event.headers ?? {})) if (k.toLowerCase() === name) return v;
  return undefined;
}
