// $disconnect (best effort in API Gateway): ends the connection's session and cleans up its items.
import { createLambdaRuntime } from '../lib/runtime/lambda.ts';

export const handler = createLambdaRuntime().handlers.disconnect;
