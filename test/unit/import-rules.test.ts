// The dependency rules of docs/architecture.md ("Layers"), checked on the source: extensions →
// core → stores → xmpp values; transports → core; entry points wire everything; nothing at run time
// imports the CDK folder; no import cycles. Type-only imports are erased at compile time, so they
// cannot form a load-order cycle; they are exempt from the cycle rule, not from the layer rules.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

interface Import {
  from: string;
  /** Repository-relative path of a local target, or the package name. */
  to: string;
  local: boolean;
  typeOnly: boolean;
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(ROOT, dir))) {
    const path = join(dir, name);
    if (statSync(join(ROOT, path)).isDirectory()) out.push(...sourceFiles(path));
    else if (path.endsWith('.ts') && !path.endsWith('.d.ts')) out.push(path);
  }
  return out;
}

/** The import and re-export statements of a file (static and dynamic). */
export function importsOf(file: string, text: string): Import[] {
  const out: Import[] = [];
  const statement = /^\s*(import|export)\s+(type\s+)?([^'";]*?)\s*from\s*['"]([^'"]+)['"]|^\s*import\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/gms;
  for (const m of text.matchAll(statement)) {
    const spec = m[4] ?? m[5] ?? m[6];
    // `import { type A, type B } from` is as type-only as `import type { A, B } from`.
    const names = m[3] ?? '';
    const allTypeSpecifiers = /^\{[^}]*\}$/s.test(names.trim()) && names.replace(/[{}\s]/g, '').split(',').filter(Boolean).every((n) => n.startsWith('type'));
    const typeOnly = !!m[2] || (!!m[3] && allTypeSpecifiers);
    const local = spec.startsWith('.');
    out.push({ from: file, to: local ? relative(ROOT, resolve(ROOT, dirname(file), spec)) : spec.split('/').slice(0, spec.startsWith('@') ? 2 : 1).join('/'), local, typeOnly });
  }
  return out;
}

const files = [...sourceFiles('lib'), ...sourceFiles('functions'), ...sourceFiles('bin')];
const imports = files.flatMap((f) => importsOf(f, readFileSync(join(ROOT, f), 'utf8')));
const under = (path: string, dir: string) => path === dir || path.startsWith(`${dir}/`);

function violations(pred: (i: Import) => boolean): string[] {
  return imports.filter(pred).map((i) => `${i.from} → ${i.to}`);
}

test('the import parser sees static, re-exported, dynamic and type-only imports', () => {
  const found = importsOf(
    'lib/core/x.ts',
    "import { a } from './a.ts';\nimport type { B } from '../store/b.ts';\nimport {\n  type C,\n  type D,\n} from './c.ts';\nexport { e } from './e.ts';\nconst f = await import('../local/f.ts');\nimport '@aws-sdk/client-dynamodb';",
  );
  assert.deepEqual(
    found.map((i) => [i.to, i.typeOnly]),
    [
      ['lib/core/a.ts', false],
      ['lib/store/b.ts', true],
      ['lib/core/c.ts', true],
      ['lib/core/e.ts', false],
      ['lib/local/f.ts', false],
      ['@aws-sdk/client-dynamodb', false],
    ],
  );
});

test('xmpp values import nothing else of the project', () => {
  assert.deepEqual(violations((i) => under(i.from, 'lib/xmpp') && i.local && !under(i.to, 'lib/xmpp')), []);
});

test('the metrics registry imports nothing else of the project (the core, stores and extensions all count into it)', () => {
  assert.deepEqual(violations((i) => under(i.from, 'lib/metrics') && i.local && !under(i.to, 'lib/metrics')), []);
});

test('stores import only xmpp values, other stores and libraries (never core, extensions, admin, auth)', () => {
  assert.deepEqual(violations((i) => under(i.from, 'lib/store') && i.local && !under(i.to, 'lib/store') && !under(i.to, 'lib/xmpp')), []);
});

test('webhooks (signing, delivery) import only stores and xmpp values, so the core and extensions can both use them', () => {
  assert.deepEqual(violations((i) => under(i.from, 'lib/webhooks') && i.local && !under(i.to, 'lib/webhooks') && !under(i.to, 'lib/store') && !under(i.to, 'lib/xmpp')), []);
});

test('the core never imports extensions, admin, transports, the local runtime or the CDK folder', () => {
  const above = ['lib/extensions', 'lib/admin', 'lib/gateway', 'lib/local', 'lib/runtime', 'lib/infra'];
  assert.deepEqual(violations((i) => under(i.from, 'lib/core') && i.local && above.some((d) => under(i.to, d))), []);
});

test('extensions never import admin code, transports or the local runtime', () => {
  const above = ['lib/admin', 'lib/gateway', 'lib/local', 'lib/runtime', 'lib/infra'];
  assert.deepEqual(violations((i) => under(i.from, 'lib/extensions') && i.local && above.some((d) => under(i.to, d))), []);
});

/** lib/extensions/muc/x.ts → 'muc'; lib/extensions/ping.ts → 'ping.ts'; index.ts of the folder itself → undefined. */
function extensionOf(path: string): string | undefined {
  if (!under(path, 'lib/extensions')) return undefined;
  const rest = path.slice('lib/extensions/'.length);
  return rest.includes('/') ? rest.slice(0, rest.indexOf('/')) : rest === 'index.ts' ? undefined : rest;
}

test("an extension uses another only through the module API: at most a type import of that extension's index", () => {
  const bad = violations((i) => {
    const [a, b] = [extensionOf(i.from), extensionOf(i.to)];
    if (!i.local || !a || !b || a === b) return false;
    const isPublicFace = i.to.endsWith('/index.ts');
    return !(i.typeOnly && isPublicFace);
  });
  assert.deepEqual(bad, []);
});

test('nothing at run time imports the CDK folder or aws-cdk-lib (only lib/infra and bin/app.ts)', () => {
  const cdkSide = (f: string) => under(f, 'lib/infra') || f === 'bin/app.ts';
  assert.deepEqual(violations((i) => !cdkSide(i.from) && ((i.local && under(i.to, 'lib/infra')) || i.to === 'aws-cdk-lib' || i.to === 'constructs')), []);
});

test('no import cycles (value imports)', () => {
  const graph = new Map<string, string[]>();
  for (const i of imports) if (i.local && !i.typeOnly) graph.set(i.from, [...(graph.get(i.from) ?? []), i.to]);
  const cycles: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const visit = (node: string, path: string[]) => {
    if (state.get(node) === 'done') return;
    if (state.get(node) === 'open') {
      cycles.push([...path.slice(path.indexOf(node)), node].join(' → '));
      return;
    }
    state.set(node, 'open');
    for (const next of graph.get(node) ?? []) visit(next, [...path, node]);
    state.set(node, 'done');
  };
  for (const f of files) visit(f, []);
  assert.deepEqual(cycles, []);
});
