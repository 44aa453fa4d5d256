// Hostile logins over the local gateway with raw WebSocket clients: failed logins counted per account
// and per source address lock them for growing periods (lib/extensions/auth-limits), with
// <temporary-auth-failure/> (RFC 6120 §6.5.12) while locked; the tenant's authLimits block; what a
// login costs; and SCRAM's reserved mandatory-extension attribute (RFC 5802 §5.1).
//
// Each test uses source addresses of its own (127.0.0.0/8 all reach the gateway on Linux), so the
// per-address counters of one test do not lock another's logins. The server's clock is frozen at
// the start of a counting window, so a window never ends halfway through a test.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { type Element, RawClient, type TestServer, startTestServer, until } from '../support/harness.ts';

const WINDOW_MS = 600_000; // the default windowSeconds
let s: TestServer;
/** The server's log lines, parsed (what an operator's log tooling would see). */
const logLines: Record<string, unknown>[] = [];
const logSink = new Writable({
  write(chunk: Buffer, _encoding, done) {
    for (const line of chunk.toString().split('\n')) if (line) logLines.push(JSON.parse(line));
    done();
  },
});

before(async () => {
  s = await startTestServer({ adminToken: 'test-admin-token', logger: pino({ level: 'info' }, logSink) });
  s.clock.freeze();
  s.clock.advance(WINDOW_MS - (s.clock.now() % WINDOW_MS));
});
after(() => s.stop());

const b64 = (text: string) => Buffer.from(text).toString('base64');
const open = (domain: string) => `<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="${domain}" version="1.0"/>`;

/** A connection with its stream open and features received, from `from`. */
async function openStream(opts: { from: string; domain?: string }): Promise<RawClient> {
  const raw = await RawClient.connect(s.url, { localAddress: opts.from });
  raw.send(open(opts.domain ?? 'localhost'));
  await raw.next((el) => el.name === 'stream:features');
  return raw;
}

/** Sends one <auth/> and returns the outcome: 'success', or the failure's condition and text. */
async function auth(raw: RawClient, mechanism: string, initial: string): Promise<{ outcome: string; text?: string; element: Element }> {
  raw.send(`<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="${mechanism}">${b64(initial)}</auth>`);
  const element = await raw.next((el) => ['success', 'failure', 'challenge'].includes(el.name));
  if (element.name !== 'failure') return { outcome: element.name, element };
  const condition = element.children.find((c): c is Element => typeof c !== 'string' && c.name !== 'text');
  return { outcome: condition?.name ?? '?', text: element.getChildText('text') ?? undefined, element };
}

/** One login attempt with PLAIN on a fresh connection (as a client that reconnects after each try). */
async function plainLogin(user: string, password: string, opts: { from: string; domain?: string }) {
  const raw = await openStream(opts);
  try {
    return await auth(raw, 'PLAIN', `\0${user}\0${password}`);
  } finally {
    raw.ws.close();
  }
}

async function failTimes(n: number, user: string, opts: { from: string; domain?: string }): Promise<void> {
  for (let i = 0; i < n; i++) assert.equal((await plainLogin(user, `guess-${i}`, opts)).outcome, 'not-authorized', `guess ${i + 1}`);
}

async function admin(method: string, path: string, body?: unknown) {
  const res = await fetch(`${s.adminUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${s.adminToken}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json().catch(() => undefined)) as Record<string, any> };
}

describe('failed logins lock the account, for a while', () => {
  it('locks an account after 5 wrong passwords across reconnects, even for the right password, until the clock passes the lock', async () => {
    await s.addUser('victim@localhost', 'right');
    const from = '127.0.0.11';
    await failTimes(5, 'victim', { from });
    // One line an operator (or fail2ban) can act on: who, from where, how often, for how long.
    const lockLine = (await until('the lock log line', () => logLines.find((l) => l.msg === 'account locked after 5 failed logins' && l.user === 'victim@localhost')))!;
    const { sourceIp, failures, lockedForSeconds, module, locksInRow } = lockLine;
    assert.deepEqual({ sourceIp, failures, lockedForSeconds, module, locksInRow }, { sourceIp: from, failures: 5, lockedForSeconds: 60, module: 'auth-limits', locksInRow: 1 });

    const locked = await plainLogin('victim', 'right', { from: '127.0.0.12' });
    assert.equal(locked.outcome, 'temporary-auth-failure');
    assert.match(locked.text!, /this account; try again in 60 s/);
    // SCRAM is refused before its challenge: no salt, no chance to send a proof.
    const raw = await openStream({ from: '127.0.0.12' });
    assert.equal((await auth(raw, 'SCRAM-SHA-256', 'n,,n=victim,r=abcdefgh')).outcome, 'temporary-auth-failure');
    raw.ws.close();

    s.clock.advance(59_000);
    assert.equal((await plainLogin('victim', 'right', { from })).outcome, 'temporary-auth-failure');
    s.clock.advance(1_000);
    assert.equal((await plainLogin('victim', 'right', { from })).outcome, 'success');
  });

  it('locks again after the next 5 failures, twice as long', async () => {
    await s.addUser('again@localhost', 'right');
    const from = '127.0.0.13';
    await failTimes(5, 'again', { from });
    s.clock.advance(60_000);
    await failTimes(5, 'again', { from });
    const second = await plainLogin('again', 'right', { from });
    assert.equal(second.outcome, 'temporary-auth-failure');
    assert.match(second.text!, /try again in 120 s/);
    s.clock.advance(120_000);
    assert.equal((await plainLogin('again', 'right', { from })).outcome, 'success');
  });

  it('refuses a locked account without checking the password: the account is not even read', async () => {
    await s.addUser('cheap@localhost', 'right');
    await failTimes(5, 'cheap', { from: '127.0.0.14' });
    const raw = await openStream({ from: '127.0.0.14' });
    let outcome = '';
    const cost = await s.cost(async () => {
      outcome = (await auth(raw, 'PLAIN', '\0cheap\0right')).outcome;
    });
    raw.ws.close();
    assert.equal(outcome, 'temporary-auth-failure');
    // The connection item (read for every frame) and the locks, but not the account; then the
    // connection's failure count (RFC 6120 §6.4.5) and the answer.
    assert.deepEqual({ reads: cost.reads, writes: cost.writes, posts: cost.posts }, { reads: 2, writes: 1, posts: 1 }, JSON.stringify(cost.calls));
    assert.equal(cost.calls['dynamodb:GetItemCommand'], 1, 'the account is not read');
  });
});

describe('failed logins from one address lock the address', () => {
  it('after the tenant\'s addressFailures failures to any accounts, that address is refused, another is not', async () => {
    assert.equal((await admin('POST', '/tenants', { domain: 'addr.example', enabled: true, authLimits: { addressFailures: 3 } })).status < 300, true);
    await s.addUser('bystander@addr.example', 'right');
    const attacker = { from: '127.0.0.21', domain: 'addr.example' };
    for (const name of ['a1', 'a2', 'a3']) assert.equal((await plainLogin(name, 'guess', attacker)).outcome, 'not-authorized');

    const refused = await plainLogin('bystander', 'right', attacker);
    assert.equal(refused.outcome, 'temporary-auth-failure');
    assert.match(refused.text!, /your address; try again in 60 s/);
    assert.equal((await plainLogin('bystander', 'right', { from: '127.0.0.22', domain: 'addr.example' })).outcome, 'success');
  });

  it('counts failed token logins (X-OAUTH) against the address too', async () => {
    const tenant = { domain: 'tok.example', enabled: true, loginMethods: ['password', 'token'], tokens: { secret: 'token secret of tok.example' }, authLimits: { addressFailures: 2 } };
    assert.ok((await admin('POST', '/tenants', tenant)).status < 300);
    await s.addUser('tokuser@tok.example', 'right');
    const from = { from: '127.0.0.23', domain: 'tok.example' };
    for (let i = 0; i < 2; i++) {
      const raw = await openStream(from);
      assert.equal((await auth(raw, 'X-OAUTH', 'not a token')).outcome, 'not-authorized');
      raw.ws.close();
    }
    assert.equal((await plainLogin('tokuser', 'right', from)).outcome, 'temporary-auth-failure');
  });
});

describe('the authLimits block of the tenant item', () => {
  it('changes the threshold live', async () => {
    assert.ok((await admin('POST', '/tenants', { domain: 'live.example', enabled: true })).status < 300);
    await s.addUser('before@live.example', 'right');
    await s.addUser('after@live.example', 'right');
    const opts = { from: '127.0.0.31', domain: 'live.example' };
    await failTimes(2, 'before', opts);
    assert.equal((await plainLogin('before', 'right', opts)).outcome, 'success', 'two failures do not lock with the default of 5');

    assert.equal((await admin('PATCH', '/tenants/live.example', { authLimits: { accountFailures: 2 } })).status, 200);
    await failTimes(2, 'after', opts);
    assert.equal((await plainLogin('after', 'right', opts)).outcome, 'temporary-auth-failure');
  });

  it('refuses a bad value, naming the field, and keeps what was there', async () => {
    assert.ok((await admin('POST', '/tenants', { domain: 'bad.example', enabled: true, authLimits: { accountFailures: 7 } })).status < 300);
    for (const [authLimits, path] of [
      [{ accountFailures: 0 }, 'authLimits.accountFailures'],
      [{ lockSeconds: 'a minute' }, 'authLimits.lockSeconds'],
      [{ maxFailures: 5 }, 'authLimits.maxFailures'],
    ] as const) {
      const res = await admin('PATCH', '/tenants/bad.example', { authLimits });
      assert.equal(res.status, 400, JSON.stringify(authLimits));
      assert.deepEqual(res.body.error.fields.map((f: { path: string }) => f.path), [path]);
    }
    assert.deepEqual((await admin('GET', '/tenants/bad.example')).body.authLimits, { accountFailures: 7 });
  });
});

describe('what it costs', () => {
  it('a successful password <auth/> costs one read more than before (the locks), and no write beyond the stream state', async () => {
    await s.addUser('costly@localhost', 'right');
    const raw = await openStream({ from: '127.0.0.41' });
    let outcome = '';
    const cost = await s.cost(async () => {
      outcome = (await auth(raw, 'PLAIN', '\0costly\0right')).outcome;
    });
    raw.ws.close();
    assert.equal(outcome, 'success');
    // The connection item, the locks (one BatchGetItem for the account and the address), the
    // account; the connection's new stage.
    assert.deepEqual({ reads: cost.reads, writes: cost.writes, posts: cost.posts }, { reads: 3, writes: 1, posts: 1 }, JSON.stringify(cost.calls));
    assert.equal(cost.calls['dynamodb:BatchGetItemCommand'], 1, JSON.stringify(cost.calls));
  });

  it('a failed one costs a counter write for the account and one for the address', async () => {
    await s.addUser('costfail@localhost', 'right');
    const raw = await openStream({ from: '127.0.0.42' });
    let outcome = '';
    const cost = await s.cost(async () => {
      outcome = (await auth(raw, 'PLAIN', '\0costfail\0wrong')).outcome;
    });
    raw.ws.close();
    assert.equal(outcome, 'not-authorized');
    assert.deepEqual({ reads: cost.reads, writes: cost.writes, posts: cost.posts }, { reads: 3, writes: 3, posts: 1 }, JSON.stringify(cost.calls));
  });
});

describe('SCRAM mandatory extensions (RFC 5802 §5.1)', () => {
  it('fails m= after the nonce with malformed-request naming extensions-not-supported, without a challenge', async () => {
    const raw = await openStream({ from: '127.0.0.51' });
    const answer = await auth(raw, 'SCRAM-SHA-256', 'n,,n=alice,r=abcdefgh,m=ext');
    raw.ws.close();
    assert.equal(answer.outcome, 'malformed-request', answer.element.toString());
    assert.match(answer.text!, /^extensions-not-supported/);
  });
});
