// Scheduled: ends connections whose $disconnect never came (the gateway answers 410 for them), since
// API Gateway's $disconnect is best effort (DESIGN.md "Connections die silently").
import { createLambdaRuntime } from '../lib/runtime/lambda.ts';

const { server } = createLambdaRuntime();

export const handler = (): Promise<{ checked: number; ended: number }> => server.sweep();
