// How every function is bundled (esbuild), in one place for XmppFunction (`cdk synth`) and for the
// cold-start benchmark (bench/cold-start.ts), which must measure the same bundles that deploy
// (README "Bundle sizes and cold start").

import type { BuildOptions } from 'esbuild';

/** esbuild's target for the functions' runtime (LAMBDA_RUNTIME in xmpp-function.ts). */
export const BUNDLE_TARGET = 'node24';

/**
 * Left out of every bundle: the AWS SDK's credential providers that Lambda never reaches, and what only
 * they use (the STS/SSO clients of nested-clients). Lambda puts the role's credentials in the
 * environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), the first source of the
 * default chain; the others are loaded by the chain with dynamic imports only when that one has nothing,
 * and would then come from the runtime's own SDK (every Node.js runtime since nodejs18.x ships SDK v3
 * with these packages). About 100 KB less in every bundle, and nothing less evaluated at a cold start.
 * Lambda's Node.js runtimes since nodejs18.x resolve ES module imports from NODE_PATH too, where the
 * runtime's SDK is: https://aws.amazon.com/blogs/compute/node-js-18-x-runtime-now-available-in-aws-lambda/
 *
 * The rest of the SDK stays in the bundles, measured (README "Bundle sizes and cold start"): with all of
 * @aws-sdk/* and @smithy/* external a bundle is 570 KB instead of 960 KB, but its import takes about
 * 100 ms more, since the SDK is then loaded from hundreds of files of node_modules rather than parsed
 * from one minified file; and the code would run the runtime's SDK version instead of the one tested.
 * https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime
 * https://docs.aws.amazon.com/lambda/latest/dg/lambda-nodejs.html#nodejs-sdk-included
 */
export const BUNDLE_EXTERNALS: readonly string[] = [
  '@aws-sdk/credential-provider-http',
  '@aws-sdk/credential-provider-ini',
  '@aws-sdk/credential-provider-login',
  '@aws-sdk/credential-provider-process',
  '@aws-sdk/credential-provider-sso',
  '@aws-sdk/credential-provider-web-identity',
  '@aws-sdk/nested-clients',
  '@aws-sdk/token-providers',
  '@smithy/credential-provider-imds',
  // Event push's SNS and EventBridge clients (about 55 KB), imported only when a tenant's events go to
  // SNS or EventBridge (lib/extensions/event-push/publishers.ts), then from the runtime's SDK. PublishBatch
  // (2021) and PutEvents (2019) are in every SDK a Node.js runtime ships.
  '@aws-sdk/client-eventbridge',
  '@aws-sdk/client-sns',
  // The SDK's event stream codec (about 15 KB), which its HTTP protocols import dynamically, only for an
  // operation with an event stream in its input or output. DynamoDB and the API Gateway Management API
  // have none, so a bundle never loads it (test/unit/bundling.test.ts runs both clients from a bundle
  // that cannot resolve it).
  '@smithy/core/event-streams',
];

const ROOT = new URL('../../', import.meta.url).pathname;

/**
 * Packages replaced in every bundle by a stub that throws a clear error if called (lib/runtime/bundle-stubs/):
 * pino's transport worker (thread-stream, about 11 KB with its package.json) and its redaction
 * (@pinojs/redact, 5 KB). The Lambda logger (createLambdaLogger in lib/runtime/lambda.ts) writes JSON lines
 * to stdout synchronously with neither a transport nor `redact`, so pino never calls them there; its log
 * lines are the same with the stubs (test/unit/bundling.test.ts compares them). pino requires both at load
 * time, which is why they are stubs rather than externals.
 */
export const BUNDLE_ALIAS: Readonly<Record<string, string>> = {
  'thread-stream': `${ROOT}lib/runtime/bundle-stubs/thread-stream.cjs`,
  '@pinojs/redact': `${ROOT}lib/runtime/bundle-stubs/pinojs-redact.cjs`,
};

/** CommonJS dependencies call require(); an ES module has none unless it makes one. */
export const ESM_REQUIRE_BANNER = "import{createRequire as __xmppEdgeRequire}from'node:module';const require=__xmppEdgeRequire(import.meta.url);";

/** Prefer a package's ES module build (tree-shaken) over its CommonJS one. */
export const BUNDLE_MAIN_FIELDS: readonly string[] = ['module', 'main'];

/**
 * The X-Ray part of the code (lib/runtime/xray-tracing.ts and the parts of aws-xray-sdk-core it uses,
 * about 70 KB) is built into a file of its own beside index.mjs, which createLambdaRuntime imports only
 * with TRACING=true: a function without tracing neither carries nor parses it. The define tells the
 * bundled code where that file is (lib/runtime/lambda.ts, loadXRayModule).
 */
export const XRAY_CHUNK = { file: 'xray-tracing.mjs', entry: 'lib/runtime/xray-tracing.ts' } as const;
export const BUNDLE_DEFINE: Readonly<Record<string, string>> = { XMPP_EDGE_XRAY_CHUNK: JSON.stringify(`./${XRAY_CHUNK.file}`) };

/**
 * The options above as esbuild's JS API takes them, for the builds outside `cdk synth` that must match it:
 * the cold-start benchmark (bench/cold-start.ts) and test/unit/bundling.test.ts. Without the source map.
 */
/**
 * The functions' NODE_OPTIONS with context sourceMaps=true (lib/infra/config.ts): stack traces in the logs name the
 * TypeScript files and lines, from the source map each package carries. The cold-start benchmark measures
 * each bundle both ways.
 */
export const SOURCE_MAPS_NODE_OPTIONS = '--enable-source-maps';

export const BUNDLE_OPTIONS: Readonly<BuildOptions> = {
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: BUNDLE_TARGET,
  mainFields: [...BUNDLE_MAIN_FIELDS],
  external: [...BUNDLE_EXTERNALS],
  alias: { ...BUNDLE_ALIAS },
  define: { ...BUNDLE_DEFINE },
  banner: { js: ESM_REQUIRE_BANNER },
  minify: true,
  tsconfig: `${ROOT}tsconfig.json`,
  logLevel: 'error',
};

/** Single quotes for a POSIX shell. */
const shellQuote = (arg: string) => `'${arg.replaceAll("'", "'\\''")}'`;

/**
 * The shell command that builds the X-Ray file into `outputDir` with the functions' own options, run by
 * the esbuild in node_modules after the function's bundle (XmppFunction's afterBundling hook).
 */
export function xrayChunkCommand(inputDir: string, outputDir: string): string {
  return [
    `${inputDir}/node_modules/.bin/esbuild`,
    `${inputDir}/${XRAY_CHUNK.entry}`,
    '--bundle',
    '--platform=node',
    '--format=esm',
    `--target=${BUNDLE_TARGET}`,
    `--main-fields=${BUNDLE_MAIN_FIELDS.join(',')}`,
    ...BUNDLE_EXTERNALS.map((e) => `--external:${e}`),
    ...Object.entries(BUNDLE_ALIAS).map(([from, to]) => `--alias:${from}=${to}`),
    `--banner:js=${ESM_REQUIRE_BANNER}`,
    '--minify',
    '--sourcemap',
    '--sources-content=false',
    `--tsconfig=${inputDir}/tsconfig.json`,
    '--log-level=warning',
    `--outfile=${outputDir}/${XRAY_CHUNK.file}`,
  ].map(shellQuote).join(' ');
}
