// $connect: records the connection and accepts it only with the "xmpp" subprotocol (RFC 7395 §3.3).
import { createLambdaRuntime } from '../lib/runtime/lambda.ts';

export const handler = createLambdaRuntime().handlers.connect;
