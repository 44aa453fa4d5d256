// Managing components (README "Components"): the admin API routes and the `xmpp-edge component`
// commands edit the tenant item's `components` list, checked whole; the changes reach a running
// server (a component added can connect, a disabled one is refused, secrets are never shown).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { runCli } from '../../bin/cli.ts';
import { handshakeDigest } from '../../lib/extensions/components/handshake.ts';
import { type TestServer, startTestServer, until } from '../support/harness.ts';
import { adminCall } from '../support/admin.ts';
import { type Element, parseFrame, xml } from '../../lib/xmpp/xml.ts';

let s: TestServer;

const call = (method: string, path: string, body?: unknown) => adminCall(s, method, path, body);

async function cli(...args: string[]) {
  let stdout = '';
  let stderr = '';
  const env = { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' };
  const code = await runCli(['component', ...args, '--endpoint', s.dynamoEndpoint, '--table', s.table], { stdout: { write: (t: string) => (stdout += t) }, stderr: { write: (t: string) => (stderr += t) }, env });
  return { code, stdout, stderr };
}

/** Opens a component stream over WebSocket and answers the handshake; resolves with the server's answer. */
async function handshake(domain: string, secret: string): Promise<Element> {
  const ws = new WebSocket(s.url, 'xmpp-component');
  const frames: Element[] = [];
  ws.on('message', (d) => frames.push(parseFrame(d.toString())));
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  ws.send(`<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="${domain}"/>`);
  const open = (await until('open', () => frames.find((f) => f.name === 'open')))!;
  ws.send(xml('handshake', { xmlns: 'jabber:component:accept' }, handshakeDigest(String(open.attrs.id), secret)).toString());
  const answer = (await until('handshake answer', () => frames.find((f) => f.name === 'handshake' || f.name === 'stream:error')))!;
  ws.terminate();
  return answer;
}

before(async () => {
  s = await startTestServer({ adminToken: 'components-admin', tenantCacheMs: 0 });
});
after(() => s.stop());

describe('admin API: components', () => {
  it('adds a component, shows its secret as "(set)", keeps it when "(set)" is written back, disables and removes it', async () => {
    const put = await call('PUT', '/tenants/localhost/components/bot.localhost', { secret: 'api-secret-123' });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    assert.deepEqual(put.body, { domain: 'bot.localhost', kind: 'connected', enabled: true, secret: '(set)' });
    assert.equal((await handshake('bot.localhost', 'api-secret-123')).name, 'handshake');

    const list = await call('GET', '/tenants/localhost/components');
    assert.deepEqual(list.body.components, [{ domain: 'bot.localhost', kind: 'connected', enabled: true, secret: '(set)' }]);
    // What GET returned, written back whole: the stored secret stays.
    assert.equal((await call('PUT', '/tenants/localhost/components/bot.localhost', list.body.components[0])).status, 200);
    assert.equal((await handshake('bot.localhost', 'api-secret-123')).name, 'handshake');
    const tenant = await call('GET', '/tenants/localhost');
    assert.equal(tenant.body.components[0].secret, '(set)');

    const disabled = await call('POST', '/tenants/localhost/components/bot.localhost/disable');
    assert.equal(disabled.body.enabled, false);
    const refused = await handshake('bot.localhost', 'api-secret-123');
    assert.equal(refused.name, 'stream:error');
    assert.ok(refused.getChild('not-authorized'));
    assert.equal((await call('POST', '/tenants/localhost/components/bot.localhost/enable')).body.enabled, true);

    assert.equal((await call('DELETE', '/tenants/localhost/components/bot.localhost')).status, 204);
    assert.deepEqual((await call('GET', '/tenants/localhost/components')).body.components, []);
    assert.equal((await call('DELETE', '/tenants/localhost/components/bot.localhost')).status, 404);
  });

  it('refuses what cannot serve: another domain, a missing secret, an unknown field, a webhook without its key', async () => {
    const foreign = await call('PUT', '/tenants/localhost/components/bot.example.com', { secret: 'api-secret-123' });
    assert.equal(foreign.status, 400);
    assert.match(foreign.body.error.message, /not a subdomain of localhost/);
    const noSecret = await call('PUT', '/tenants/localhost/components/nosecret.localhost', {});
    assert.equal(noSecret.status, 400);
    assert.match(noSecret.body.error.message, /needs a secret/);
    const unknown = await call('PUT', '/tenants/localhost/components/x.localhost', { secret: 'api-secret-123', colour: 'red' });
    assert.equal(unknown.status, 400);
    assert.match(unknown.body.error.message, /components\.0\.colour: unknown field/);
    const webhookNoKey = await call('PUT', '/tenants/localhost/components/hook.localhost', { kind: 'webhook', url: 'https://example.com/hook' });
    assert.equal(webhookNoKey.status, 400);
    // The tenant routes check the same rules.
    const patched = await call('PATCH', '/tenants/localhost', { components: [{ domain: 'bot.elsewhere.org', kind: 'connected', enabled: true, secret: 'api-secret-123' }] });
    assert.equal(patched.status, 409);
    assert.match(patched.body.error.message, /not a subdomain/);
  });
});

describe('CLI: xmpp-edge component', () => {
  it('adds, lists, disables and removes components; secrets are not printed', async () => {
    const added = await cli('add', 'cli.localhost', '--secret', 'cli-secret-123');
    assert.equal(added.code, 0, added.stderr);
    assert.doesNotMatch(added.stdout, /cli-secret-123/);
    assert.equal((await handshake('cli.localhost', 'cli-secret-123')).name, 'handshake');
    const hook = await cli('add', 'hook.localhost', '--url', 'http://127.0.0.1:9/hook', '--signing-secret', 'signing-secret-123456');
    assert.equal(hook.code, 0, hook.stderr);
    assert.equal((await cli('list', 'localhost')).stdout, 'cli.localhost\tconnected\tenabled\nhook.localhost\twebhook\tenabled\thttp://127.0.0.1:9/hook\n');
    assert.equal((await cli('disable', 'cli.localhost')).code, 0);
    assert.match((await cli('list', 'localhost')).stdout, /cli\.localhost\tconnected\tdisabled/);
    assert.equal((await handshake('cli.localhost', 'cli-secret-123')).name, 'stream:error');
    assert.equal((await cli('remove', 'hook.localhost')).code, 0);
    const bad = await cli('add', 'bot.example.org', '--tenant', 'localhost', '--secret', 'cli-secret-123');
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /not a subdomain of localhost/);
  });
});
