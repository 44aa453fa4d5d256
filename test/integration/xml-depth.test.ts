// Over the wire: a message nested 3,000 levels deep (about 20 KB, well inside the size limit) is refused
// with a policy-violation stream error naming the depth limit (RFC 6120 §4.9.3.18), instead of vanishing
// in a stack overflow; the server goes on serving everyone else. Parser details: test/unit/xml-depth.test.ts.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MAX_ELEMENT_DEPTH } from '../../lib/xmpp/xml.ts';
import { RawClient, type TestClient, type TestServer, byName, connectClient, startTestServer } from '../support/harness.ts';

const STREAMS_NS = 'urn:ietf:params:xml:ns:xmpp-streams';

describe('deeply nested stanzas', () => {
  let s: TestServer;
  let other: TestClient;

  before(async () => {
    s = await startTestServer({ tenantWatchMs: 3_600_000 });
    for (const u of ['deep', 'other']) await s.addUser(`${u}@localhost`);
    other = await connectClient(s.url, { username: 'other' });
  });
  after(async () => {
    await other.stop();
    await s.stop();
  });

  it('a 3,000-deep message gets policy-violation, and another client is still served', async () => {
    const raw = await RawClient.connect(s.url);
    await raw.login('deep');
    const frame = `<message xmlns="jabber:client" to="other@localhost"><body>hi</body>${'<a>'.repeat(3000)}${'</a>'.repeat(3000)}</message>`;
    assert.ok(Buffer.byteLength(frame) < s.server.limits.maxStanzaBytes);
    raw.send(frame);

    const err = await raw.next(byName('stream:error'));
    const condition = err.children.find((c) => typeof c !== 'string' && c.attrs.xmlns === STREAMS_NS);
    assert.equal(typeof condition !== 'string' && condition?.name, 'policy-violation');
    assert.match(err.getChildText('text', STREAMS_NS) ?? '', new RegExp(`deeper than ${MAX_ELEMENT_DEPTH} levels`));
    await raw.next(byName('close'));
    await raw.closed;

    await other.roundTrip();
    await other.expectNothing(s, byName('message', { from: 'deep@localhost/raw' }));
    assert.equal(s.gateway.connectionIds().length, 1, 'only the other client is connected');
  });
});
