// Stands in for thread-stream in the deployed bundles (lib/infra/bundling.ts, BUNDLE_ALIAS): pino loads it
// for transports (log shipping on a worker thread), which a Lambda function never uses: its logger writes
// JSON lines to stdout synchronously (lib/runtime/lambda.ts, createLambdaLogger). A transport asked for
// anyway fails at once and says why, instead of starting a worker whose code is not in the bundle.
'use strict';
module.exports = function ThreadStream() {
  throw new Error('pino transports are not in the Lambda bundles (lib/infra/bundling.ts): log to stdout');
};
