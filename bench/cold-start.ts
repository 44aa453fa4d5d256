// `npm run bench -- --cold-start`: what a Lambda cold start costs in code (issue 17). Each function under
// functions/ is bundled as XmppFunction bundles it for `cdk synth` (esbuild, ESM, minified, with the
// options of lib/infra/bundling.ts), then imported in a fresh Node process, which runs its module code:
// connect and disconnect construct the runtime (clients, server and modules) at import, the others at
// their first event, so for them the figure is the import alone. Reported: the bundle's size and the
// import time (median of `runs`). Lambda adds its own runtime start and the download of the package;
// this is the part the code decides.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { BUNDLE_OPTIONS, SOURCE_MAPS_NODE_OPTIONS } from '../lib/infra/bundling.ts';

const ROOT = new URL('../', import.meta.url).pathname;

export interface ColdStart {
  fn: string;
  kb: number;
  importMs: number;
  /**
   * The CPU time of the same (median): what the process itself spent, user and system, which a loaded
   * machine changes far less than the wall time (Lambda gives a starting container its own CPU share).
   */
  cpuMs: number;
  /** The same CPU time with context sourceMaps=true (NODE_OPTIONS=--enable-source-maps: the map is read at import). */
  cpuMsSourceMaps: number;
}

export async function coldStarts(runs = 3): Promise<ColdStart[]> {
  const out = mkdtempSync(join(tmpdir(), 'xmpp-edge-cold-'));
  // What the bundles leave out (lib/infra/bundling.ts) they would import from node_modules, as in Lambda
  // from the runtime's copy of the SDK.
  symlinkSync(join(ROOT, 'node_modules'), join(out, 'node_modules'));
  try {
    const fns = readdirSync(join(ROOT, 'functions')).filter((f) => f.endsWith('.ts')).map((f) => f.slice(0, -3));
    const results: ColdStart[] = [];
    for (const fn of fns) {
      const file = join(out, `${fn}.mjs`);
      // The options of XmppFunction's bundling (lib/infra/xmpp-function.ts), its source map included (read only
      // with context sourceMaps=true).
      await build({ ...BUNDLE_OPTIONS, sourcemap: true, sourcesContent: false, entryPoints: [join(ROOT, 'functions', `${fn}.ts`)], outfile: file });
      const probe = join(out, `${fn}-probe.mjs`);
      writeFileSync(probe, `const t0 = performance.now(); const c0 = process.cpuUsage(); const m = await import(${JSON.stringify(file)}); if (typeof m.handler !== 'function') throw new Error('no handler'); const c = process.cpuUsage(c0); process.stdout.write(JSON.stringify([performance.now() - t0, (c.user + c.system) / 1000]));`);
      const times: number[] = [];
      const cpu: number[] = [];
      const cpuSourceMaps: number[] = [];
      // Runs with and without source maps alternate, so a change of load hits both alike.
      for (let r = 0; r < 2 * runs; r++) {
        const sourceMaps = r % 2 === 1;
        const res = spawnSync(process.execPath, [probe], {
          env: {
            PATH: process.env.PATH,
            AWS_REGION: 'eu-west-1',
            AWS_ACCESS_KEY_ID: 'cold',
            AWS_SECRET_ACCESS_KEY: 'cold',
            TABLE_NAME: 'xmpp-edge',
            FRAME_CLAIMS_TABLE: 'xmpp-edge-frame-claims',
            MANAGEMENT_ENDPOINT: 'https://abc123.execute-api.eu-west-1.amazonaws.com/prod',
            LOG_LEVEL: 'error',
            ...(sourceMaps ? { NODE_OPTIONS: SOURCE_MAPS_NODE_OPTIONS } : {}),
          },
          encoding: 'utf8',
        });
        if (res.status !== 0) throw new Error(`${fn}: ${res.stderr.slice(0, 500)}`);
        const [wall, used] = JSON.parse(res.stdout) as [number, number];
        if (sourceMaps) cpuSourceMaps.push(used);
        else (times.push(wall), cpu.push(used));
      }
      const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
      results.push({ fn, kb: statSync(file).size / 1024, importMs: median(times), cpuMs: median(cpu), cpuMsSourceMaps: median(cpuSourceMaps) });
    }
    return results;
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

export function coldStartTable(rows: ColdStart[]): string {
  return [
    '| function | bundle KB | import + construct ms (median) | of which CPU ms | CPU ms with sourceMaps=true |',
    '| --- | --- | --- | --- | --- |',
    ...rows.map((r) => `| ${r.fn} | ${r.kb.toFixed(0)} | ${r.importMs.toFixed(0)} | ${r.cpuMs.toFixed(0)} | ${r.cpuMsSourceMaps.toFixed(0)} |`),
  ].join('\n');
}
