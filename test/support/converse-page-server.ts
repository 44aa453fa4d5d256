// A loopback HTTP server for the browser tests: Converse.js's `dist/` build from node_modules under
// /dist (Converse's default assets_path) and one page that initialises Converse from the JSON in its
// `cfg` query parameter, so a reload brings the same configuration back. Nothing here or in the page
// refers to a host other than the loopback addresses the tests use.
import { createServer, type Server } from 'node:http';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, extname, join, normalize, sep } from 'node:path';
import type { AddressInfo } from 'node:net';

const require = createRequire(import.meta.url);
/** node_modules/converse.js/dist, found the way Node resolves the package (its exports map lists dist/*). */
export const CONVERSE_DIST = dirname(require.resolve('converse.js/dist/converse.min.js'));

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.ttf': 'font/ttf',
  '.mp3': 'audio/mpeg',
  '.ogg': 'audio/ogg',
};

// Converse 14's dist build is an ES module that sets window.converse (module scripts run in document
// order, so the inline one finds it). The probe plugin hands the driver Converse's private API (window.xeProbe) and a log of its
// events; the test drives the UI and uses the API only to wait and to look at state.
const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>xmpp-edge browser test</title>
<link rel="stylesheet" href="/dist/converse.min.css">
<script>
  // Converse's fullscreen login footer shows sponsor logos from conversejs.org, with no setting to turn
  // it off; Converse defines only the element names not yet taken, so an empty one takes its place.
  customElements.define('converse-footer', class extends HTMLElement {});
</script>
<script type="module" src="/dist/converse.min.js"></script>
</head>
<body class="converse-fullscreen">
<script type="module">
  const cfg = JSON.parse(new URLSearchParams(location.search).get('cfg'));
  window.xeEvents = [];
  converse.plugins.add('xe-probe', {
    initialize() {
      const { api } = this._converse;
      window.xeProbe = this._converse;
      for (const name of ['connected', 'reconnected', 'disconnected', 'connectionInitialized']) {
        api.listen.on(name, () => window.xeEvents.push(name));
      }
    },
  });
  converse.initialize({ ...cfg, whitelisted_plugins: ['xe-probe'] });
</script>
</body>
</html>
`;

export interface PageServer {
  /** http://127.0.0.1:port */
  origin: string;
  close(): Promise<void>;
}

export async function startConversePageServer(): Promise<PageServer> {
  const server: Server = createServer(async (req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://127.0.0.1').pathname);
    if (path === '/' || path === '/index.html') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(PAGE);
      return;
    }
    if (path.startsWith('/dist/')) {
      const file = normalize(join(CONVERSE_DIST, path.slice('/dist/'.length)));
      if (file.startsWith(CONVERSE_DIST + sep)) {
        try {
          const body = await readFile(file);
          res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' });
          res.end(body);
          return;
        } catch {
          // falls through to 404
        }
      }
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
