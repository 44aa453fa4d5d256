// Stands in for @pinojs/redact in the deployed bundles (lib/infra/bundling.ts, BUNDLE_ALIAS): pino calls it
// only for its `redact` option, which the Lambda logger does not set (lib/runtime/lambda.ts,
// createLambdaLogger). Asked for anyway, it fails at once and says why rather than logging unredacted.
'use strict';
module.exports = function redact() {
  throw new Error('pino redaction is not in the Lambda bundles (lib/infra/bundling.ts)');
};
