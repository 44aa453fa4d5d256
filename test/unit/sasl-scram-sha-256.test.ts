// The test client's SCRAM-SHA-256 mechanism (RFC 7677) and the way tests force a mechanism in xmpp.js.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { authenticateWith, ScramSha256Mechanism, useScramSha256 } from '../support/sasl-scram-sha-256.ts';
import { createServerFirst, deriveScramCredentials, parseClientFirst, verifyClientFinal } from '../../lib/auth/scram.ts';

// xmpp.js ships no type declarations; these tests only poke at a few members.
type Untyped = any;
const importUntyped = (specifier: string): Promise<Untyped> => import(specifier);

// RFC 7677 §3.
const CLIENT_FIRST = 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO';
const SERVER_FIRST = 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096';
const CLIENT_FINAL =
  'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=';
const SERVER_FINAL = 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=';

describe('ScramSha256Mechanism', () => {
  it('produces the client messages of RFC 7677 §3 and accepts its server signature', () => {
    const mech = new ScramSha256Mechanism({ nonce: 'rOprNGfwEbeRWgbNEkqO' });
    assert.equal(mech.name, 'SCRAM-SHA-256');
    assert.equal(mech.clientFirst, true);
    assert.equal(mech.response({ username: 'user', password: 'pencil' }), CLIENT_FIRST);
    mech.challenge(SERVER_FIRST);
    assert.equal(mech.response({ username: 'user', password: 'pencil' }), CLIENT_FINAL);
    assert.doesNotThrow(() => mech.verifyServerFinal(SERVER_FINAL));
    assert.throws(() => mech.verifyServerFinal('v=rmF9pqV8S7suAoZWja4dJRkFsKQ='), /mismatch/);
    assert.throws(() => mech.verifyServerFinal('e=invalid-proof'), /invalid-proof/);
  });

  it('refuses a server nonce that does not extend its own', () => {
    const mech = new ScramSha256Mechanism({ nonce: 'abc' });
    mech.response({ username: 'user', password: 'pencil' });
    mech.challenge('r=xyz123,s=QSXCR+Q6sek8bf92,i=4096');
    assert.throws(() => mech.response({ username: 'user', password: 'pencil' }), /nonce/);
  });

  it('escapes the username and sends UTF-8 as a binary string for btoa()', () => {
    const mech = new ScramSha256Mechanism({ nonce: 'n0nce' });
    const first = mech.response({ username: 'jü,li=et', password: 'x', authzid: 'admin' });
    assert.equal(Buffer.from(btoa(first), 'base64').toString('utf8'), 'n,a=admin,n=jü=2Cli=3Det,r=n0nce');
  });

  it('completes an exchange with the server code in lib/auth/scram.ts, authzid and non-ASCII included', () => {
    const creds = deriveScramCredentials('SHA-256', 'pässwörd');
    const mech = new ScramSha256Mechanism();
    const cred = { username: 'jülïet', password: 'pässwörd', authzid: 'jülïet@example.com' };
    const fromBinary = (s: string) => Buffer.from(s, 'latin1').toString('utf8');
    const toBinary = (s: string) => Buffer.from(s, 'utf8').toString('latin1');

    const first = parseClientFirst(fromBinary(mech.response(cred)));
    assert.equal(first.username, 'jülïet');
    assert.equal(first.authzid, 'jülïet@example.com');
    const { serverFirstMessage, nonce } = createServerFirst(first, creds);
    mech.challenge(toBinary(serverFirstMessage));
    const state = { gs2Header: first.gs2Header, clientFirstBare: first.clientFirstBare, serverFirstMessage, nonce };
    const { serverFinalMessage } = verifyClientFinal('SHA-256', fromBinary(mech.response(cred)), state, creds);
    assert.doesNotThrow(() => mech.verifyServerFinal(serverFinalMessage));
  });
});

describe('xmpp.js integration', () => {
  const NS = 'urn:ietf:params:xml:ns:xmpp-sasl';

  async function offered(xmpp: Untyped, names: string[]): Promise<string[]> {
    const { default: xml } = await importUntyped('@xmpp/xml');
    const { getAvailableMechanisms } = await importUntyped('@xmpp/sasl');
    const features = xml('mechanisms', { xmlns: NS }, ...names.map((n) => xml('mechanism', {}, n)));
    return getAvailableMechanisms(features, NS, xmpp.saslFactory);
  }

  it('useScramSha256 registers the mechanism ahead of SCRAM-SHA-1, once', async () => {
    const { client } = await importUntyped('@xmpp/client');
    const xmpp = client({ service: 'ws://localhost:1/xmpp-websocket', domain: 'localhost' });
    assert.deepEqual(await offered(xmpp, ['PLAIN', 'SCRAM-SHA-1', 'SCRAM-SHA-256']), ['SCRAM-SHA-1', 'PLAIN']);
    useScramSha256(xmpp);
    useScramSha256(xmpp);
    assert.deepEqual(await offered(xmpp, ['PLAIN', 'SCRAM-SHA-1', 'SCRAM-SHA-256']), ['SCRAM-SHA-256', 'SCRAM-SHA-1', 'PLAIN']);
    assert.ok(xmpp.saslFactory.create(['SCRAM-SHA-256']) instanceof ScramSha256Mechanism);
  });

  it("xmpp.js's default choice never picks PLAIN on an insecure transport", async () => {
    const { getMechanism } = await importUntyped('@xmpp/client/lib/createOnAuthenticate.js');
    const insecure = { isSecure: () => false };
    const credentials = { username: 'u', password: 'p' };
    assert.equal(getMechanism({ mechanisms: ['SCRAM-SHA-1', 'PLAIN'], entity: insecure, credentials }), 'SCRAM-SHA-1');
    assert.equal(getMechanism({ mechanisms: ['PLAIN'], entity: insecure, credentials }), undefined);
  });

  it('authenticateWith forces the named mechanism through createOnAuthenticate, PLAIN on ws:// included', async () => {
    const { default: createOnAuthenticate } = await importUntyped('@xmpp/client/lib/createOnAuthenticate.js');
    const insecure = { isSecure: () => false };
    const offeredList = ['SCRAM-SHA-256', 'SCRAM-SHA-1', 'PLAIN'];
    for (const name of ['PLAIN', 'SCRAM-SHA-1', 'SCRAM-SHA-256'] as const) {
      const calls: Array<[unknown, string]> = [];
      const onAuthenticate = createOnAuthenticate(authenticateWith(name, { username: 'u', password: 'p' }));
      await onAuthenticate(async (creds: unknown, mech: string) => void calls.push([creds, mech]), offeredList, null, insecure);
      assert.deepEqual(calls, [[{ username: 'u', password: 'p' }, name]]);
    }
  });

  it('authenticateWith fails clearly when the mechanism is not offered', async () => {
    const fn = authenticateWith('SCRAM-SHA-256', { username: 'u', password: 'p' });
    await assert.rejects(fn(async () => {}, ['SCRAM-SHA-1', 'PLAIN']), /SCRAM-SHA-256 not available/);
  });
});
