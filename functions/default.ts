// $default as a direct Lambda proxy: one WebSocket message (one XMPP element, RFC 7395 §3.3.3) per
// invocation. API Gateway does not keep one connection's invocations in order, so this is not the
// deployed path for production traffic: that is the SQS FIFO ingest (DESIGN.md "Order"), to come.
import { createLambdaRuntime } from '../lib/runtime/lambda.ts';

export const handler = createLambdaRuntime().handlers.default;
