// The shapes API Gateway WebSocket APIs hand to Lambda proxy integrations, and what a handler returns.
// https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-websocket-api-mapping-template-reference.html
// Kept to the fields xmpp-edge reads or the local gateway must produce faithfully.

export type RouteKey = '$connect' | '$disconnect' | '$default';
export type EventType = 'CONNECT' | 'DISCONNECT' | 'MESSAGE';

export interface WebSocketRequestContext {
  routeKey: RouteKey;
  eventType: EventType;
  connectionId: string;
  /** Present on MESSAGE events. */
  messageId?: string;
  messageDirection: 'IN';
  requestId: string;
  extendedRequestId: string;
  requestTime: string;
  requestTimeEpoch: number;
  connectedAt: number;
  domainName: string;
  stage: string;
  apiId: string;
  identity: { sourceIp: string; userAgent?: string };
  /** Present on DISCONNECT events. */
  disconnectStatusCode?: number;
  disconnectReason?: string;
  authorizer?: Record<string, unknown>;
}

export interface WebSocketEvent {
  requestContext: WebSocketRequestContext;
  /** $connect only. */
  headers?: Record<string, string>;
  multiValueHeaders?: Record<string, string[]>;
  queryStringParameters?: Record<string, string>;
  multiValueQueryStringParameters?: Record<string, string[]>;
  /** $default only. */
  body?: string;
  isBase64Encoded: boolean;
}

export interface WebSocketResult {
  statusCode: number;
  headers?: Record<string, string>;
  body?: string;
}

export type WebSocketHandler = (event: WebSocketEvent) => Promise<WebSocketResult | void>;
