// The layers the CDK app and the Lambda bundles rely on: only lib/infra (and bin/app.ts) may import the CDK,
// and no Lambda entry point or shared code may import lib/infra, so no function bundle pulls in aws-cdk-lib
// and code shared by the CDK app and a Lambda lives outside lib/infra (README "Layout").
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => relative(ROOT, join(e.parentPath, e.name)));
}

/** The module specifiers of a file's static and dynamic imports and re-exports. */
function importsOf(file: string): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  return [...text.matchAll(/(?:^|\n)\s*(?:import|export)[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g)].map((m) => m[1] ?? m[2]);
}

test('outside lib/infra, nothing under lib/ or functions/ imports the CDK or lib/infra', () => {
  const files = [...sources('lib'), ...sources('functions')].filter((f) => !f.startsWith('lib/infra/'));
  assert.ok(files.length > 20);
  const offending = files.flatMap((file) =>
    importsOf(file)
      .filter((spec) => /^(aws-cdk-lib|constructs)(\/|$)/.test(spec) || /(^|\/)infra\//.test(spec))
      .map((spec) => `${file} imports ${spec}`),
  );
  assert.deepEqual(offending, []);
});

test('the scan sees lib/infra\'s own CDK imports (it would notice one elsewhere)', () => {
  assert.ok(importsOf('lib/infra/ordered-ingest.ts').includes('aws-cdk-lib'));
  assert.ok(importsOf('lib/infra/ordered-ingest.ts').includes('../gateway/frame-envelope.ts'));
});
