// No password, token or message body in the logs, at any level (README "Metrics and usage"): a full
// session with the logger at trace, captured line by line: SASL PLAIN and SCRAM logins with known
// passwords, a wrong password, an account created through the admin API, server-issued tokens asked
// for and used (X-OAUTH), a JWT login (OAUTHBEARER), a chat message with a known body. None of those
// secrets (nor their base64 forms on the wire) may appear; the one line per frame outcome must.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { SignJWT } from 'jose';
import { type TestServer, byName, connectClient, startTestServer, xml } from '../support/harness.ts';
import { connectWithToken } from '../support/sasl-token.ts';

const DOMAIN = 'secrets.example';
const NS_TOKEN = 'erlang-solutions.com:xmpp:token-auth:0';
const PASSWORD = 'Pw-alice-4f9d1c7e';
const BOB_PASSWORD = 'Pw-bob-8a2e6b90';
const WRONG = 'Pw-wrong-31c5d7aa';
const ADMIN_PASSWORD = 'Pw-admin-made-77e0b3f2';
const JWT_SECRET = 'jwt-secret-of-secrets-example-0d4c9b';
const TOKEN_SECRET = 'token-secret-of-secrets-example-5ae1';
const BODY = 'Body-of-a-private-message-9e3f27';

describe('logs carry no secrets and no message bodies', () => {
  let s: TestServer;
  const lines: string[] = [];
  before(async () => {
    const sink = new Writable({
      write(chunk, _enc, done) {
        lines.push(...String(chunk).split('\n').filter(Boolean));
        done();
      },
    });
    s = await startTestServer({ seedDomains: [DOMAIN], logger: pino({ level: 'trace' }, sink) });
    await s.server.tenants.put({ domain: DOMAIN, enabled: true, loginMethods: ['password', 'jwt', 'token'], jwt: { secret: JWT_SECRET }, tokens: { secret: TOKEN_SECRET } });
    await s.addUser(`alice@${DOMAIN}`, PASSWORD);
  });
  after(() => s.stop());

  it('a full session logged at trace: none of its secrets or bodies, one line per frame outcome', async () => {
    const created = await fetch(`${s.adminUrl}/tenants/${DOMAIN}/users`, {
      method: 'POST',
      headers: { authorization: `Bearer ${s.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'bob', password: BOB_PASSWORD }),
    });
    assert.equal(created.status, 201);

    const alice = await connectWithToken(s.url, { domain: DOMAIN, username: 'alice', password: PASSWORD, mechanism: 'PLAIN' });
    const bob = await connectClient(s.url, { username: 'bob', password: BOB_PASSWORD, domain: DOMAIN, mechanism: 'SCRAM-SHA-256' });
    await assert.rejects(connectClient(s.url, { username: 'bob', password: WRONG, domain: DOMAIN, mechanism: 'PLAIN' }));

    const tokens = await alice.iq(xml('iq', { type: 'get', to: `alice@${DOMAIN}` }, xml('query', { xmlns: NS_TOKEN })));
    const items = tokens.getChild('items', NS_TOKEN)!;
    const access = items.getChildText('access_token')!;
    const refresh = items.getChildText('refresh_token')!;
    assert.ok(access && refresh);
    const viaToken = await connectWithToken(s.url, { domain: DOMAIN, password: access, mechanism: 'X-OAUTH', resource: 'token' });
    const jwt = await new SignJWT({ sub: 'carol' })
      .setProtectedHeader({ alg: 'HS256' })
      .setExpirationTime(Math.floor(Date.now() / 1000) + 300)
      .sign(new TextEncoder().encode(JWT_SECRET));
    const carol = await connectWithToken(s.url, { domain: DOMAIN, password: jwt, mechanism: 'OAUTHBEARER' });

    await alice.send(xml('message', { to: bob.jid, type: 'chat', id: 'secret-1' }, xml('body', {}, BODY)));
    await bob.waitFor(byName('message', { id: 'secret-1' }));
    for (const c of [alice, bob, viaToken, carol]) await c.stop();
    await s.gateway.idle();

    const text = lines.join('\n');
    // The capture saw the paths that handle the secrets: each login, the failure, the account creation.
    const msgs = lines.map((l) => JSON.parse(l));
    for (const mechanism of ['PLAIN', 'SCRAM-SHA-256', 'X-OAUTH', 'OAUTHBEARER']) assert.ok(msgs.some((l) => l.msg === 'authenticated' && l.mechanism === mechanism), mechanism);
    assert.ok(msgs.some((l) => l.msg === 'authentication failed' && l.mechanism === 'PLAIN'));
    assert.ok(lines.some((l) => JSON.parse(l).level <= 20), 'debug and trace lines were written');
    const secrets: Record<string, string> = {
      PASSWORD,
      BOB_PASSWORD,
      WRONG,
      JWT_SECRET,
      TOKEN_SECRET,
      BODY,
      access,
      refresh,
      jwt,
      // What PLAIN puts on the wire (RFC 4616), and the body's and password's base64.
      plain: Buffer.from(`\0alice\0${PASSWORD}`).toString('base64'),
      plainWrong: Buffer.from(`\0bob\0${WRONG}`).toString('base64'),
      bodyBase64: Buffer.from(BODY).toString('base64'),
    };
    for (const [name, secret] of Object.entries(secrets)) assert.ok(!text.includes(secret), `${name} appears in the logs: ${lines.find((l) => l.includes(secret))}`);

    // One line per frame outcome, with tenant, connection id, kind, latency and outcome.
    const frames = lines.map((l) => JSON.parse(l)).filter((l) => l.msg === 'frame handled');
    const chat = frames.find((f) => f.kind === 'message:chat' && f.tenant === DOMAIN);
    assert.ok(chat, 'a frame line for the chat message');
    assert.equal(chat.outcome, 'ok');
    assert.equal(typeof chat.connectionId, 'string');
    assert.equal(typeof chat.ms, 'number');
    assert.deepEqual(Object.keys(chat).filter((k) => !['level', 'time', 'pid', 'hostname', 'msg'].includes(k)).sort(), ['connectionId', 'kind', 'ms', 'outcome', 'tenant']);
    assert.ok(frames.some((f) => f.kind === 'auth' && f.tenant === DOMAIN), 'the SASL frames are logged by kind');
    assert.ok(frames.every((f) => f.level === 30), 'at info');
  });
});
