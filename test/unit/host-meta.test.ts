// XEP-0156 §3.3: the host-meta documents, checked against the XEP's own examples (Examples 3 and 4,
// with their "..." placeholders left out).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HOST_META_JSON_PATH, HOST_META_PATH, hostMetaJrd, hostMetaResponse, hostMetaXrd } from '../../lib/gateway/host-meta.ts';
import { parseFrame } from '../../lib/xmpp/xml.ts';

const XEP_0156_EXAMPLE_3 = `<?xml version='1.0' encoding='utf-8'?>
<XRD xmlns='http://docs.oasis-open.org/ns/xri/xrd-1.0'>
  <Link rel="urn:xmpp:alt-connections:xbosh"
        href="https://web.example.com:5280/bosh" />
  <Link rel="urn:xmpp:alt-connections:websocket"
        href="wss://web.example.com:443/ws" />
</XRD>`;

const XEP_0156_EXAMPLE_4 = `{
  "links": [
    {
      "rel": "urn:xmpp:alt-connections:xbosh",
      "href": "https://web.example.com:5280/bosh"
    },
    {
      "rel": "urn:xmpp:alt-connections:websocket",
      "href": "wss://web.example.com:443/ws"
    }
  ]
}`;

const methods = { bosh: 'https://web.example.com:5280/bosh', websocket: 'wss://web.example.com:443/ws' };

/** The XRD as an element (parseFrame takes no XML declaration), and its links in order. */
const parseXrd = (text: string) => {
  assert.match(text, /^<\?xml version=["']1\.0["'] encoding=["']utf-8["']\?>\n/);
  const el = parseFrame(text.replace(/^<\?xml[^>]*\?>\s*/, '').trim());
  return { el, links: el.getChildren('Link').map((l) => ({ ...l.attrs })) };
};

describe('XEP-0156 host-meta', () => {
  it('XRD: the links of Example 3, in the XRD namespace, and nothing else', () => {
    const ours = parseXrd(hostMetaXrd(methods));
    const theirs = parseXrd(XEP_0156_EXAMPLE_3);
    assert.equal(ours.el.name, 'XRD');
    assert.equal(ours.el.getNS(), 'http://docs.oasis-open.org/ns/xri/xrd-1.0');
    assert.deepEqual(ours.links, theirs.links);
    assert.equal(ours.el.children.filter((c) => typeof c !== 'string').length, 2);
  });

  it('JRD: the document of Example 4', () => {
    assert.deepEqual(hostMetaJrd(methods), JSON.parse(XEP_0156_EXAMPLE_4));
  });

  it('advertises only the methods given (WebSocket alone until BOSH lands)', () => {
    assert.deepEqual(hostMetaJrd({ websocket: 'wss://xmpp.example.com/xmpp-websocket' }), {
      links: [{ rel: 'urn:xmpp:alt-connections:websocket', href: 'wss://xmpp.example.com/xmpp-websocket' }],
    });
    assert.deepEqual(parseXrd(hostMetaXrd({})).links, []);
  });

  it('escapes what an attribute cannot hold', () => {
    const href = `wss://example.com/ws?a=1&b="2"<'3'>`;
    assert.deepEqual(parseXrd(hostMetaXrd({ websocket: href })).links, [{ rel: 'urn:xmpp:alt-connections:websocket', href }]);
  });

  it('serves both paths with their media types, readable cross-origin; other paths are not its business', () => {
    const xrd = hostMetaResponse('GET', HOST_META_PATH, methods)!;
    assert.equal(xrd.status, 200);
    assert.equal(xrd.headers['content-type'], 'application/xrd+xml; charset=utf-8');
    assert.equal(xrd.headers['access-control-allow-origin'], '*');
    const jrd = hostMetaResponse('GET', HOST_META_JSON_PATH, methods)!;
    assert.equal(jrd.headers['content-type'], 'application/json');
    assert.deepEqual(JSON.parse(jrd.body), JSON.parse(XEP_0156_EXAMPLE_4));
    assert.equal(hostMetaResponse('POST', HOST_META_PATH, methods)!.status, 405);
    assert.equal(hostMetaResponse('GET', '/.well-known/host-meta.xml', methods), undefined);
    assert.equal(hostMetaResponse('GET', '/api/tenants', methods), undefined);
  });
});
