// $default as a direct Lambda proxy: one WebSocket message (one XMPP element, RFC 7395 §3.3.3) per
// invocation. API Gateway does not keep one connection's invocations in order, so the stacks do not
// deploy it: $default goes to the SQS FIFO queue and functions/ingest.ts (DESIGN.md "Order").
import { createLambdaRuntime } from '../lib/runtime/lambda.ts';

export const handler = createLambdaRuntime().handlers.default;
