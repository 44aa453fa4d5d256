// The call demo's route on the local gateway (README "Call demo"): the page, its stylesheet and its
// script bundled from demo/app.ts with StanzaJS on the first request, under a content security policy
// that keeps the page on its own origin. The call itself is test/browser/call-demo.test.ts.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type TestServer, startTestServer } from '../support/harness.ts';

describe('the call demo route (/demo/)', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer();
  });
  after(() => s.stop());

  it('redirects /demo to /demo/ and serves the page there, same-origin only', async () => {
    const redirect = await fetch(s.demoUrl.replace(/\/$/, ''), { redirect: 'manual' });
    assert.equal(redirect.status, 308);
    assert.equal(redirect.headers.get('location'), '/demo/');

    const res = await fetch(s.demoUrl);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.match(res.headers.get('content-security-policy') ?? '', /default-src 'self'/);
    const html = await res.text();
    assert.match(html, /<script type="module" src="app.js"><\/script>/);
    assert.match(html, /<link rel="stylesheet" href="style.css">/);
    // Accessible: every input has a label, the status is announced.
    for (const id of ['jid', 'password', 'register', 'contact']) assert.match(html, new RegExp(`<label[^>]*for="${id}"|<label[^>]*><input id="${id}"`), id);
    assert.match(html, /id="status" role="status" aria-live="polite"/);
    assert.doesNotMatch(html, /(src|href)="(https?:)?\/\//, 'nothing from another host');

    const css = await fetch(`${s.demoUrl}style.css`);
    assert.equal(css.status, 200);
    assert.equal(css.headers.get('content-type'), 'text/css; charset=utf-8');
  });

  it('serves the bundled script (StanzaJS, XEP-0353 elements) and its source map, built once', async () => {
    const first = await fetch(`${s.demoUrl}app.js`);
    assert.equal(first.status, 200);
    assert.equal(first.headers.get('content-type'), 'text/javascript; charset=utf-8');
    const js = await first.text();
    assert.ok(js.includes('urn:xmpp:jingle-message:0'), 'the JMI namespace is in the bundle');
    assert.ok(js.includes('urn:xmpp:extdisco:2'), "StanzaJS's XEP-0215 support is in the bundle");
    assert.match(js, /\/\/# sourceMappingURL=app\.js\.map\s*$/);
    // Self-contained: no import of another module is left for the browser to fetch.
    assert.doesNotMatch(js, /(^|[;}\n])import\s*(\{|\*|"|')/);
    const again = await fetch(`${s.demoUrl}app.js`);
    assert.equal(await again.text(), js);
    const map = await fetch(`${s.demoUrl}app.js.map`);
    assert.equal(map.status, 200);
    assert.ok(((await map.json()) as { sources: string[] }).sources.includes('app.ts'));
  });

  it('answers anything else under /demo/ with 404, and writes with 405', async () => {
    for (const path of ['nothing.js', 'constructor', 'app.ts', 'jmi.ts', 'tsconfig.json']) {
      assert.equal((await fetch(`${s.demoUrl}${path}`)).status, 404, path);
    }
    const post = await fetch(s.demoUrl, { method: 'POST', body: 'x' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET, HEAD');
  });
});
