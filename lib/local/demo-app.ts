// The call demo (README "Call demo") as a route of the local gateway's HTTP server: /demo/ serves
// demo/index.html and its stylesheet, and /demo/app.js is demo/app.ts with StanzaJS bundled by esbuild
// on the first request, in memory, from node_modules: nothing is fetched from the internet and nothing
// is written to disk. esbuild and StanzaJS are dev dependencies (a deployment never serves the demo), so
// the bundler is loaded only when the page's script is first asked for; without them the route says
// what to install.
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';

export const DEMO_PATH = '/demo/';
const DEMO_DIR = fileURLToPath(new URL('../../demo/', import.meta.url));

interface Asset {
  type: string;
  body: Buffer;
}

const STATIC: Record<string, { file: string; type: string }> = {
  '': { file: 'index.html', type: 'text/html; charset=utf-8' },
  'index.html': { file: 'index.html', type: 'text/html; charset=utf-8' },
  'style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
};

// The page loads only its own files; it talks to XMPP over WebSocket (its own server unless ?ws= says
// otherwise) and shows camera streams.
const PAGE_HEADERS = {
  'content-security-policy': "default-src 'self'; connect-src 'self' ws: wss:; media-src 'self' blob: mediastream:; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'cache-control': 'no-cache',
};

/** The page's script and its source map, bundled once per process. */
export async function bundleDemo(): Promise<Record<string, Asset>> {
  let esbuild: typeof import('esbuild');
  try {
    esbuild = await import('esbuild');
  } catch {
    throw new DemoUnavailable('the call demo is bundled by esbuild, a dev dependency: run `npm install` (without --omit=dev)');
  }
  const out = await esbuild.build({
    entryPoints: [`${DEMO_DIR}app.ts`],
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    sourcemap: 'linked',
    outdir: DEMO_DIR,
    logLevel: 'silent',
    // StanzaJS's dependencies (events, buffer) look for Node's `global`.
    define: { global: 'globalThis' },
  });
  const assets: Record<string, Asset> = {};
  for (const f of out.outputFiles) {
    const name = f.path.slice(f.path.lastIndexOf('/') + 1);
    assets[name] = { type: name.endsWith('.map') ? 'application/json' : 'text/javascript; charset=utf-8', body: Buffer.from(f.contents) };
  }
  return assets;
}

class DemoUnavailable extends Error {}

/** The demo as a route of the local gateway (LocalGatewayOptions.httpRoutes); true when it answered. */
export function demoHttpRoute(log: Logger) {
  let bundle: Promise<Record<string, Asset>> | undefined;
  const bundled = () => {
    bundle ??= bundleDemo().catch((err) => {
      bundle = undefined; // a later request tries again (after `npm install`, or a fixed source)
      throw err;
    });
    return bundle;
  };
  return async (req: IncomingMessage, res: ServerResponse): Promise<boolean> => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (path === '/demo') {
      req.resume();
      res.writeHead(308, { location: DEMO_PATH, 'content-length': 0 });
      res.end();
      return true;
    }
    if (!path.startsWith(DEMO_PATH)) return false;
    req.resume();
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' });
      res.end('Method Not Allowed');
      return true;
    }
    const name = path.slice(DEMO_PATH.length);
    let asset: Asset | undefined;
    try {
      if (Object.hasOwn(STATIC, name)) asset = { type: STATIC[name].type, body: await readFile(DEMO_DIR + STATIC[name].file) };
      else if (name === 'app.js' || name === 'app.js.map') asset = (await bundled())[name];
    } catch (err) {
      const why = err instanceof DemoUnavailable ? err.message : 'the call demo could not be built; see the server log';
      log.error({ err }, `call demo: ${why}`);
      res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(`${why}\n`);
      return true;
    }
    if (!asset) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('Not Found');
      return true;
    }
    const { body } = asset;
    res.writeHead(200, { ...PAGE_HEADERS, 'content-type': asset.type, 'content-length': body.length });
    res.end(req.method === 'HEAD' ? undefined : body);
    return true;
  };
}
