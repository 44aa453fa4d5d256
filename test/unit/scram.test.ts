// SCRAM (RFC 5802, RFC 7677) and PLAIN (RFC 4616), replaying the RFC test vectors against the server side.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import {
  createServerFirst,
  decodeScramMessage,
  deriveScramCredentials,
  fakeScramSalt,
  parseClientFirst,
  parsePlainMessage,
  ScramError,
  verifyClientFinal,
  verifyPassword,
  type ScramHash,
} from '../../lib/auth/scram.ts';

interface Vector {
  hash: ScramHash;
  clientFirst: string;
  serverNonce: string;
  salt: string;
  serverFirst: string;
  clientFinal: string;
  serverFinal: string;
}

// RFC 5802 §5: SCRAM-SHA-1, user "user", password "pencil".
const RFC5802: Vector = {
  hash: 'SHA-1',
  clientFirst: 'n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL',
  serverNonce: '3rfcNHYJY1ZVvWVs7j',
  salt: 'QSXCR+Q6sek8bf92',
  serverFirst: 'r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096',
  clientFinal: 'c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=',
  serverFinal: 'v=rmF9pqV8S7suAoZWja4dJRkFsKQ=',
};

// RFC 7677 §3: SCRAM-SHA-256, same user and password.
const RFC7677: Vector = {
  hash: 'SHA-256',
  clientFirst: 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO',
  serverNonce: '%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0',
  salt: 'W22ZaJ0SNY7soEsUEjb6gQ==',
  serverFirst: 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
  clientFinal:
    'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
  serverFinal: 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=',
};

/** Runs the server through a vector's first round trip and returns what verifyClientFinal needs. */
function start(v: Vector) {
  const creds = deriveScramCredentials(v.hash, 'pencil', Buffer.from(v.salt, 'base64'), 4096);
  const first = parseClientFirst(v.clientFirst);
  const { serverFirstMessage, nonce } = createServerFirst(first, creds, v.serverNonce);
  const state = { gs2Header: first.gs2Header, clientFirstBare: first.clientFirstBare, serverFirstMessage, nonce };
  return { creds, first, state };
}

function assertCondition(fn: () => unknown, condition: ScramError['condition']) {
  assert.throws(fn, (err: unknown) => err instanceof ScramError && err.condition === condition);
}

for (const [name, v] of [
  ['SCRAM-SHA-1 (RFC 5802 §5)', RFC5802],
  ['SCRAM-SHA-256 (RFC 7677 §3)', RFC7677],
] as const) {
  describe(name, () => {
    it('parses the client-first message', () => {
      const { first } = start(v);
      assert.equal(first.gs2Header, 'n,,');
      assert.equal(first.username, 'user');
      assert.equal(first.authzid, undefined);
      assert.equal(first.clientFirstBare, v.clientFirst.slice(3));
    });

    it('sends the server-first message of the RFC', () => {
      assert.equal(start(v).state.serverFirstMessage, v.serverFirst);
    });

    it('accepts the client proof of the RFC and answers with its server signature', () => {
      const { creds, state } = start(v);
      assert.deepEqual(verifyClientFinal(v.hash, v.clientFinal, state, creds), { serverFinalMessage: v.serverFinal });
    });

    it('rejects a wrong proof with not-authorized', () => {
      const { creds, state } = start(v);
      const other = deriveScramCredentials(v.hash, 'pencil2', Buffer.from(v.salt, 'base64'));
      assertCondition(() => verifyClientFinal(v.hash, v.clientFinal, state, other), 'not-authorized');
      const flipped = v.clientFinal.replace(/p=./, (m) => (m.endsWith('A') ? 'p=B' : 'p=A'));
      assertCondition(() => verifyClientFinal(v.hash, flipped, state, creds), 'not-authorized');
    });

    it('rejects a tampered nonce with malformed-request', () => {
      const { creds, state } = start(v);
      const tampered = v.clientFinal.replace(v.serverNonce, `${v.serverNonce}x`);
      assertCondition(() => verifyClientFinal(v.hash, tampered, state, creds), 'malformed-request');
      assertCondition(
        () => verifyClientFinal(v.hash, v.clientFinal, { ...state, nonce: `${state.nonce.slice(0, -1)}X` }, creds),
        'malformed-request',
      );
    });

    it('rejects a channel binding that is not the GS2 header', () => {
      const { creds, state } = start(v);
      for (const c of ['c=eSws', 'c=cD10bHMtdW5pcXVlLCw=', 'c=bi*s', 'c=']) {
        assertCondition(() => verifyClientFinal(v.hash, v.clientFinal.replace('c=biws', c), state, creds), 'malformed-request');
      }
    });

    it('rejects a client-final message without proof or with a proof of the wrong size', () => {
      const { creds, state } = start(v);
      const withoutProof = v.clientFinal.slice(0, v.clientFinal.indexOf(',p='));
      assertCondition(() => verifyClientFinal(v.hash, withoutProof, state, creds), 'malformed-request');
      assertCondition(() => verifyClientFinal(v.hash, `${withoutProof},p=AAAA`, state, creds), 'malformed-request');
      assertCondition(() => verifyClientFinal(v.hash, `${withoutProof},p=not base64!`, state, creds), 'malformed-request');
    });
  });
}

describe('parseClientFirst', () => {
  it('accepts the "y" flag, since no -PLUS mechanism is offered (RFC 5802 §6)', () => {
    assert.equal(parseClientFirst('y,,n=user,r=abc').gs2Header, 'y,,');
  });

  it('refuses channel binding (p=) with malformed-request', () => {
    assertCondition(() => parseClientFirst('p=tls-unique,,n=user,r=abc'), 'malformed-request');
    assertCondition(() => parseClientFirst('p=tls-exporter,,n=user,r=abc'), 'malformed-request');
  });

  it('rejects an unknown GS2 flag or a missing GS2 header', () => {
    assertCondition(() => parseClientFirst('x,,n=user,r=abc'), 'malformed-request');
    assertCondition(() => parseClientFirst('n=user,r=abc'), 'malformed-request');
    assertCondition(() => parseClientFirst(''), 'malformed-request');
  });

  it('unescapes =2C and =3D in username and authzid (RFC 5802 §5.1)', () => {
    const first = parseClientFirst('n,a=admin=2Cx=3Dy,n=a=2Cb=3Dc,r=abc,x=1');
    assert.equal(first.authzid, 'admin,x=y');
    assert.equal(first.username, 'a,b=c');
    assert.equal(first.gs2Header, 'n,a=admin=2Cx=3Dy,');
    assert.equal(first.clientFirstBare, 'n=a=2Cb=3Dc,r=abc,x=1');
    assert.equal(first.clientNonce, 'abc');
  });

  it('rejects any other "=" escape', () => {
    assertCondition(() => parseClientFirst('n,,n=user=40x,r=abc'), 'malformed-request');
    assertCondition(() => parseClientFirst('n,,n=user=,r=abc'), 'malformed-request');
    assertCondition(() => parseClientFirst('n,a=x=2,n=user,r=abc'), 'malformed-request');
  });

  it('rejects a missing username or nonce, and a mandatory extension', () => {
    assertCondition(() => parseClientFirst('n,,r=abc'), 'malformed-request');
    assertCondition(() => parseClientFirst('n,,n=user'), 'malformed-request');
    assertCondition(() => parseClientFirst('n,,n=user,r='), 'malformed-request');
    assertCondition(() => parseClientFirst('n,,n=,r=abc'), 'malformed-request');
    assertCondition(() => parseClientFirst('n,,m=ext,n=user,r=abc'), 'malformed-request');
    assertCondition(() => parseClientFirst('n,,r=abc,n=user'), 'malformed-request');
  });
});

describe('client-first-message against the RFC 5802 §7 grammar', () => {
  const reasonOf = (fn: () => unknown) => {
    try {
      fn();
    } catch (err) {
      assert.ok(err instanceof ScramError);
      return { condition: err.condition, message: err.message };
    }
    assert.fail('accepted');
  };

  it('fails a mandatory extension (m=) wherever it is, as extensions-not-supported (RFC 5802 §5.1)', () => {
    for (const message of ['n,,n=alice,r=abc,m=ext', 'n,,n=alice,r=abc,x=1,m=ext', 'n,,m=ext,n=alice,r=abc']) {
      const { condition, message: text } = reasonOf(() => parseClientFirst(message));
      assert.equal(condition, 'malformed-request', message);
      assert.match(text, /^extensions-not-supported/, message);
    }
  });

  it('refuses extensions that break the grammar, and ignores well-formed unknown ones', () => {
    // RFC 5802 §7: unrecognized extensions MUST be ignored.
    assert.equal(parseClientFirst('n,,n=alice,r=abc,x=anything=goes,y=2').clientNonce, 'abc');
    for (const message of [
      'n,,n=alice,r=abc,', // an empty attr-val
      'n,,n=alice,r=abc,ext=1', // an attribute name is one letter
      'n,,n=alice,r=abc,x=', // value = 1*value-char
      'n,,n=alice,r=abc,1=x', // ALPHA
      'n,,n=alice,r=abc,x=a\0b', // value-char excludes NUL
      'n,,n=alice,r=abc,r=again', // a defined attribute out of its place
      'n,,n=alice,r=abc,p=proof',
    ]) {
      assert.equal(reasonOf(() => parseClientFirst(message)).condition, 'malformed-request', JSON.stringify(message));
    }
  });

  it('refuses a message that is not UTF-8 instead of turning it into U+FFFD', () => {
    assert.equal(reasonOf(() => decodeScramMessage(Buffer.from([0x6e, 0x2c, 0x2c, 0x6e, 0x3d, 0xff, 0x2c, 0x72, 0x3d, 0x61]))).condition, 'malformed-request');
    assert.equal(decodeScramMessage(Buffer.from('n,,n=zoë,r=abc')), 'n,,n=zoë,r=abc');
  });
});

describe('a whole exchange with an authzid and generated nonces', () => {
  it('round-trips with a client computed independently of the server code', async () => {
    const { createHash, createHmac, pbkdf2Sync } = await import('node:crypto');
    const creds = deriveScramCredentials('SHA-256', 'pencil');
    const first = parseClientFirst('n,a=juliet,n=juliet,r=clientnonce');
    const { serverFirstMessage, nonce } = createServerFirst(first, creds);
    assert.ok(nonce.startsWith('clientnonce') && nonce.length > 'clientnonce'.length);

    const salted = pbkdf2Sync('pencil', Buffer.from(creds.salt, 'base64'), creds.iterations, 32, 'sha256');
    const clientKey = createHmac('sha256', salted).update('Client Key').digest();
    const withoutProof = `c=${Buffer.from('n,a=juliet,').toString('base64')},r=${nonce}`;
    const authMessage = `${first.clientFirstBare},${serverFirstMessage},${withoutProof}`;
    const signature = createHmac('sha256', createHash('sha256').update(clientKey).digest()).update(authMessage).digest();
    const proof = Buffer.from(clientKey.map((b, i) => b ^ signature[i]));
    const state = { gs2Header: first.gs2Header, clientFirstBare: first.clientFirstBare, serverFirstMessage, nonce };

    const { serverFinalMessage } = verifyClientFinal('SHA-256', `${withoutProof},p=${proof.toString('base64')}`, state, creds);
    const expected = createHmac('sha256', createHmac('sha256', salted).update('Server Key').digest()).update(authMessage).digest();
    assert.equal(serverFinalMessage, `v=${expected.toString('base64')}`);
  });
});

describe('deriveScramCredentials and verifyPassword', () => {
  it('derives the stored keys of the RFC 5802 vector', () => {
    const creds = deriveScramCredentials('SHA-1', 'pencil', Buffer.from(RFC5802.salt, 'base64'));
    assert.equal(creds.salt, RFC5802.salt);
    assert.equal(creds.iterations, 4096);
    assert.ok(verifyPassword('SHA-1', creds, 'pencil'));
  });

  it('uses a fresh 16-byte salt by default', () => {
    const a = deriveScramCredentials('SHA-256', 'pencil');
    const b = deriveScramCredentials('SHA-256', 'pencil');
    assert.notEqual(a.salt, b.salt);
    assert.equal(Buffer.from(a.salt, 'base64').length, 16);
  });

  it('verifyPassword is true for the password and false otherwise', () => {
    for (const hash of ['SHA-1', 'SHA-256'] as const) {
      const creds = deriveScramCredentials(hash, 'pencil', undefined, 1000);
      assert.equal(verifyPassword(hash, creds, 'pencil'), true);
      assert.equal(verifyPassword(hash, creds, 'Pencil'), false);
      assert.equal(verifyPassword(hash, creds, ''), false);
      assert.equal(verifyPassword(hash, creds, 'pen\u0007cil'), false);
    }
  });

  it('SASLpreps the password (RFC 4013): soft hyphen dropped, non-ASCII space mapped', () => {
    const creds = deriveScramCredentials('SHA-256', 'pen cil', undefined, 1000);
    assert.ok(verifyPassword('SHA-256', creds, 'pen\u00A0ci\u00ADl'));
  });

  it('refuses to store an empty password or one with prohibited characters', () => {
    assertCondition(() => deriveScramCredentials('SHA-256', ''), 'malformed-request');
    assertCondition(() => deriveScramCredentials('SHA-256', 'pen\u0007cil'), 'malformed-request');
  });
});

describe('fakeScramSalt', () => {
  it('is stable per user and server secret, and differs between users and secrets', () => {
    const secret = Buffer.from('server secret');
    assert.equal(fakeScramSalt(secret, 'nobody'), fakeScramSalt(secret, 'nobody'));
    assert.notEqual(fakeScramSalt(secret, 'nobody'), fakeScramSalt(secret, 'nobody2'));
    assert.notEqual(fakeScramSalt(secret, 'nobody'), fakeScramSalt(Buffer.from('other'), 'nobody'));
  });

  it('looks like a real salt (16 bytes, base64)', () => {
    assert.equal(Buffer.from(fakeScramSalt(Buffer.from('s'), 'x'), 'base64').length, 16);
  });
});

describe('parsePlainMessage (RFC 4616 §2)', () => {
  const plain = (s: string) => parsePlainMessage(Buffer.from(s, 'utf8'));

  it('parses authcid and password with and without authzid', () => {
    assert.deepEqual(plain('\0juliet\0r0m30'), { authzid: '', authcid: 'juliet', password: 'r0m30' });
    assert.deepEqual(plain('juliet@example.com\0juliet\0r0m30'), {
      authzid: 'juliet@example.com',
      authcid: 'juliet',
      password: 'r0m30',
    });
  });

  it('decodes UTF-8', () => {
    assert.equal(plain('\0jülïet\0pässwörd').password, 'pässwörd');
  });

  it('rejects a wrong number of NULs', () => {
    for (const s of ['juliet', '\0juliet', '\0juliet\0pass\0', 'a\0b\0c\0d']) {
      assertCondition(() => plain(s), 'malformed-request');
    }
  });

  it('rejects an empty authcid or password', () => {
    assertCondition(() => plain('\0\0pass'), 'malformed-request');
    assertCondition(() => plain('\0juliet\0'), 'malformed-request');
  });

  it('rejects over-long fields', () => {
    assert.doesNotThrow(() => plain(`\0${'a'.repeat(1023)}\0${'p'.repeat(1023)}`));
    assertCondition(() => plain(`\0${'a'.repeat(1024)}\0pass`), 'malformed-request');
    assertCondition(() => plain(`\0juliet\0${'p'.repeat(1024)}`), 'malformed-request');
  });

  it('rejects invalid UTF-8', () => {
    assertCondition(() => parsePlainMessage(Buffer.from([0, 0x6a, 0, 0xff, 0xfe])), 'malformed-request');
  });
});
