// XEP-0215 credentials against a real coturn in use-auth-secret mode: what a user gets from
// <services/> allocates a relay; past `expires`, or made with another tenant's secret, it does not.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type TestClient, type TestServer, connectClient, startTestServer, xml } from '../support/harness.ts';
import { type Coturn, coturnMissing, startCoturn } from '../support/coturn.ts';

const NS = 'urn:xmpp:extdisco:2';
const SECRET = 'coturn-loopback-test-secret';
const TTL = 600;

describe('XEP-0215 credentials at a real coturn', { skip: coturnMissing() }, () => {
  let s: TestServer;
  let coturn: Coturn;
  let alice: TestClient;
  let mallory: TestClient;

  before(async () => {
    coturn = await startCoturn({ secret: SECRET });
    s = await startTestServer({ seedDomains: [] });
    const services = [{ type: 'turn', host: '127.0.0.1', port: coturn.port }];
    await s.server.tenants.put({ domain: 'calls.example', enabled: true, turn: { secret: SECRET, ttlSeconds: TTL, services } });
    await s.server.tenants.put({ domain: 'other.example', enabled: true, turn: { secret: 'another-tenants-secret', services } });
    await s.addUser('alice@calls.example');
    await s.addUser('mallory@other.example');
    alice = await connectClient(s.url, { username: 'alice', domain: 'calls.example' });
    mallory = await connectClient(s.url, { username: 'mallory', domain: 'other.example' });
  });
  after(async () => {
    await alice?.stop();
    await mallory?.stop();
    await s?.stop();
    await coturn?.stop();
  });

  const turnOf = async (c: TestClient) => {
    const reply = await c.iq(xml('iq', { type: 'get' }, xml('services', { xmlns: NS, type: 'turn' })));
    const [service] = reply.getChild('services', NS)!.getChildren('service');
    return service.attrs as { username: string; password: string };
  };

  it('the credentials a user gets allocate a relay; a wrong password does not', async () => {
    const { username, password } = await turnOf(alice);
    assert.equal(await coturn.allocates(username, password), true);
    assert.equal(await coturn.allocates(username, `${password.slice(1)}x`), false);
  });

  it('credentials past their expiry are refused', async () => {
    s.clock.advance(-(TTL + 120) * 1000); // made as if two minutes more than their lifetime ago
    try {
      const { username, password } = await turnOf(alice);
      assert.equal(await coturn.allocates(username, password), false);
    } finally {
      s.clock.advance((TTL + 120) * 1000);
    }
  });

  it('credentials made with another tenant\'s secret are refused by this TURN server', async () => {
    const { username, password } = await turnOf(mallory);
    assert.equal(await coturn.allocates(username, password), false);
  });
});
