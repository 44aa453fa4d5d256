// $connect: records the connection and accepts it only with the "xmpp" subprotocol (RFC 7395 §3.3), or a
// module's own. Only the modules that add a subprotocol are loaded (CONNECT_MODULES: lib/runtime/lambda.ts
// says why that is the same), so this bundle carries fewer of them.
import { CONNECT_MODULES, createLambdaRuntimeOf } from '../lib/runtime/lambda.ts';

export const handler = createLambdaRuntimeOf(CONNECT_MODULES).handlers.connect;
