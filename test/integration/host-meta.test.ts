// XEP-0156 connection discovery on the local server: both host-meta documents, served next to the admin
// API without its token, name the WebSocket URL a client then connects to.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { parseFrame } from '../../lib/xmpp/xml.ts';
import { type TestServer, connectClient, startTestServer } from '../support/harness.ts';

describe('XEP-0156 host-meta on the local gateway', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer();
    await s.addUser('alice@localhost');
  });
  after(() => s.stop());

  it('serves the XRD at /.well-known/host-meta with the BOSH and WebSocket links, to anyone, cross-origin', async () => {
    const res = await fetch(s.hostMetaUrl, { headers: { origin: 'https://app.example' } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/xrd+xml; charset=utf-8');
    assert.equal(res.headers.get('access-control-allow-origin'), '*');
    const xrd = parseFrame((await res.text()).replace(/^<\?xml[^>]*\?>\s*/, '').trim());
    assert.equal(xrd.getNS(), 'http://docs.oasis-open.org/ns/xri/xrd-1.0');
    assert.deepEqual(
      xrd.getChildren('Link').map((l) => ({ ...l.attrs })),
      [
        { rel: 'urn:xmpp:alt-connections:xbosh', href: s.boshUrl },
        { rel: 'urn:xmpp:alt-connections:websocket', href: s.url },
      ],
    );
  });

  it('serves the JRD at /.well-known/host-meta.json, and a client logs in at the URL it names', async () => {
    const res = await fetch(`${s.hostMetaUrl}.json`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/json');
    const jrd = (await res.json()) as { links: { rel: string; href: string }[] };
    const websocket = jrd.links.find((l) => l.rel === 'urn:xmpp:alt-connections:websocket')!.href;
    assert.equal(websocket, s.url);
    const alice = await connectClient(websocket, { username: 'alice' });
    assert.match(alice.jid, /^alice@localhost\//);
    await alice.stop();
  });

  it('leaves the admin API and its token as they were', async () => {
    assert.equal((await fetch(`${s.adminUrl}/tenants`)).status, 401);
    const ok = await fetch(`${s.adminUrl}/tenants`, { headers: { authorization: `Bearer ${s.adminToken}` } });
    assert.equal(ok.status, 200);
    assert.equal((await fetch(s.hostMetaUrl, { method: 'POST' })).status, 405);
  });
});
