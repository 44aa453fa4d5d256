// RFC 7622: XMPP address format.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { JID, JIDError, makeJID, parseJID, tryParseJID } from '../../lib/xmpp/jid.ts';

function parts(s: string): [string, string, string] {
  const jid = parseJID(s);
  return [jid.local, jid.domain, jid.resource];
}

describe('parseJID', () => {
  // RFC 7622 §3.5, Table 1: a sample of legal JIDs.
  const valid: Array<[string, [string, string, string]]> = [
    ['juliet@example.com', ['juliet', 'example.com', '']],
    ['juliet@example.com/foo', ['juliet', 'example.com', 'foo']],
    ['juliet@example.com/foo bar', ['juliet', 'example.com', 'foo bar']],
    ['juliet@example.com/foo@bar', ['juliet', 'example.com', 'foo@bar']],
    ['foo\\20bar@example.com', ['foo\\20bar', 'example.com', '']],
    ['fussball@example.com', ['fussball', 'example.com', '']],
    ['fußball@example.com', ['fußball', 'example.com', '']],
    ['π@example.com', ['π', 'example.com', '']],
    ['Σ@example.com/foo', ['σ', 'example.com', 'foo']],
    ['σ@example.com/foo', ['σ', 'example.com', 'foo']],
    ['ς@example.com/foo', ['ς', 'example.com', 'foo']],
    ['king@example.com/♚', ['king', 'example.com', '♚']],
    ['example.com', ['', 'example.com', '']],
    ['example.com/foobar', ['', 'example.com', 'foobar']],
    ['a.example.com/b@example.net', ['', 'a.example.com', 'b@example.net']],
    // RFC 7622 Erratum 4560: "juliet@example.com/ foo" is legal; OpaqueString keeps the leading space.
    ['juliet@example.com/ foo', ['juliet', 'example.com', ' foo']],
  ];
  for (const [input, expected] of valid) {
    it(`accepts ${input} (RFC 7622 §3.5 Table 1)`, () => {
      assert.deepEqual(parts(input), expected);
    });
  }

  // RFC 7622 §3.5, Table 2: a sample of strings that violate the JID rules.
  const invalid: Array<[string, string]> = [
    ['"juliet"@example.com', 'quotation marks in localpart'],
    ['foo bar@example.com', 'space in localpart'],
    ['@example.com/', 'zero-length localpart and resourcepart'],
    ['henry\u2163@example.com', 'ROMAN NUMERAL FOUR has a compatibility decomposition'],
    ['♚@example.com', 'localpart is a symbol'],
    ['juliet@', 'zero-length domainpart'],
    ['/foobar', 'zero-length domainpart'],
  ];
  for (const [input, why] of invalid) {
    it(`rejects ${input}: ${why} (RFC 7622 §3.5 Table 2)`, () => {
      assert.throws(() => parseJID(input), JIDError);
    });
  }

  it('splits the resource at the first slash, so a resource may contain "/" and "@" (RFC 7622 §3.1)', () => {
    assert.deepEqual(parts('juliet@example.com/balcony/a@b/c'), ['juliet', 'example.com', 'balcony/a@b/c']);
    assert.deepEqual(parts('example.com/@'), ['', 'example.com', '@']);
  });

  it('rejects a second "@" before the resource', () => {
    assert.throws(() => parseJID('a@b@example.com'), JIDError);
  });

  it('rejects every character that RFC 7622 §3.3.1 excludes from the localpart', () => {
    for (const c of ['"', '&', "'", ':', '<', '>']) {
      assert.throws(() => parseJID(`a${c}b@example.com`), JIDError, c);
    }
  });

  it('rejects control characters in localpart and resourcepart', () => {
    assert.throws(() => parseJID('jul\u0001iet@example.com'), JIDError);
    assert.throws(() => parseJID('juliet@example.com/a\u0000b'), JIDError);
    assert.throws(() => parseJID('juliet@example.com/a\nb'), JIDError);
  });
});

describe('localpart: UsernameCaseMapped (RFC 8265 §3.3)', () => {
  it('lower-cases the localpart and the domainpart but not the resourcepart', () => {
    assert.equal(parseJID('Juliet@Example.COM/Balcony').toString(), 'juliet@example.com/Balcony');
  });

  it('maps fullwidth characters to their ASCII equivalents (width mapping)', () => {
    assert.equal(parseJID('ＪＵＬＩＥＴ@example.com').local, 'juliet');
  });

  it('normalizes to NFC, so composed and decomposed forms are one account', () => {
    const composed = parseJID('r\u00E9my@example.com');
    const decomposed = parseJID('re\u0301my@example.com');
    assert.ok(composed.equals(decomposed));
    assert.equal(decomposed.local, 'r\u00E9my');
  });

  it('rejects a localpart over 1023 octets and accepts one of exactly 1023', () => {
    assert.equal(parseJID(`${'a'.repeat(1023)}@example.com`).local.length, 1023);
    assert.throws(() => parseJID(`${'a'.repeat(1024)}@example.com`), JIDError);
    // Octets, not characters: 512 two-octet characters are 1024 octets.
    assert.throws(() => parseJID(`${'é'.repeat(512)}@example.com`), JIDError);
  });
});

describe('domainpart (RFC 7622 §3.2)', () => {
  it('removes one trailing dot', () => {
    assert.equal(parseJID('juliet@example.com./x').toString(), 'juliet@example.com/x');
  });

  it('accepts IPv4 and bracketed IPv6 literals', () => {
    assert.equal(parseJID('juliet@192.0.2.1').domain, '192.0.2.1');
    assert.equal(parseJID('juliet@[::1]/x').domain, '[::1]');
    assert.equal(parseJID('[2001:DB8::1]').domain, '[2001:db8::1]');
    assert.throws(() => parseJID('juliet@[not-an-address]'), JIDError);
  });

  it('converts A-labels to U-labels so each domain has one form', () => {
    assert.equal(parseJID('xn--mnchen-3ya.de').domain, 'münchen.de');
    assert.ok(parseJID('juliet@MÜNCHEN.de').equals(parseJID('juliet@xn--mnchen-3ya.de')));
  });

  it('rejects empty labels, long labels, spaces and "@"', () => {
    assert.throws(() => parseJID('example..com'), JIDError);
    assert.throws(() => parseJID('.example.com'), JIDError);
    assert.throws(() => parseJID(`${'a'.repeat(64)}.com`), JIDError);
    assert.doesNotThrow(() => parseJID(`${'a'.repeat(63)}.com`));
    assert.throws(() => parseJID('exa mple.com'), JIDError);
    assert.throws(() => parseJID('exa\u00A0mple.com'), JIDError);
    assert.throws(() => parseJID('-example.com'), JIDError);
  });

  it('rejects a domainpart over 1023 octets', () => {
    const label = 'a'.repeat(63);
    const long = Array.from({ length: 16 }, () => label).join('.'); // 16 * 64 - 1 = 1023 octets
    assert.doesNotThrow(() => parseJID(long));
    assert.throws(() => parseJID(`a.${long}`), JIDError);
  });
});

describe('resourcepart: OpaqueString (RFC 8265 §4.2)', () => {
  it('maps non-ASCII spaces to U+0020 and keeps case', () => {
    assert.equal(parseJID('juliet@example.com/Foo\u00A0Bar\u3000Baz').resource, 'Foo Bar Baz');
  });

  it('normalizes to NFC', () => {
    assert.equal(parseJID('juliet@example.com/cafe\u0301').resource, 'caf\u00E9');
  });

  it('rejects a resourcepart over 1023 octets', () => {
    assert.doesNotThrow(() => parseJID(`juliet@example.com/${'r'.repeat(1023)}`));
    assert.throws(() => parseJID(`juliet@example.com/${'r'.repeat(1024)}`), JIDError);
  });
});

describe('JID', () => {
  it('round-trips through toString', () => {
    for (const s of ['juliet@example.com', 'juliet@example.com/balcony', 'example.com', 'example.com/x@y/z', 'π@[::1]/♚']) {
      assert.equal(parseJID(s).toString(), s);
      assert.ok(parseJID(parseJID(s).toString()).equals(parseJID(s)));
    }
  });

  it('bare() drops the resource and isBare reports it', () => {
    const full = parseJID('juliet@example.com/balcony');
    assert.equal(full.isBare, false);
    assert.equal(full.bare().toString(), 'juliet@example.com');
    assert.equal(full.bare().isBare, true);
    const bare = parseJID('juliet@example.com');
    assert.equal(bare.bare(), bare);
  });

  it('withResource() prepares the new resource', () => {
    const jid = parseJID('juliet@example.com/balcony').withResource('orchard\u00A0wall');
    assert.equal(jid.toString(), 'juliet@example.com/orchard wall');
    assert.throws(() => jid.withResource('a\u0007'), JIDError);
  });

  it('equals() compares the prepared parts', () => {
    assert.ok(parseJID('JULIET@EXAMPLE.COM/balcony').equals(parseJID('juliet@example.com/balcony')));
    assert.ok(!parseJID('juliet@example.com/Balcony').equals(parseJID('juliet@example.com/balcony')));
    assert.ok(!parseJID('juliet@example.com').equals(parseJID('juliet@example.com/balcony')));
  });

  it('serializes to its string form in JSON', () => {
    assert.equal(JSON.stringify({ to: parseJID('juliet@example.com/a') }), '{"to":"juliet@example.com/a"}');
  });
});

describe('makeJID and tryParseJID', () => {
  it('makeJID validates and normalizes each part', () => {
    assert.equal(makeJID('Juliet', 'Example.com.', 'Balcony').toString(), 'juliet@example.com/Balcony');
    assert.equal(makeJID('', 'example.com').toString(), 'example.com');
    assert.ok(makeJID('juliet', 'example.com') instanceof JID);
    assert.throws(() => makeJID('ju@liet', 'example.com'), JIDError);
    assert.throws(() => makeJID('juliet', ''), JIDError);
  });

  it('makeJID keeps "@" and "/" inside the resource', () => {
    assert.equal(makeJID('room', 'conference.example.com', 'a/b@c').resource, 'a/b@c');
  });

  it('tryParseJID returns null instead of throwing', () => {
    assert.equal(tryParseJID(undefined), null);
    assert.equal(tryParseJID(''), null);
    assert.equal(tryParseJID('@example.com'), null);
    assert.equal(tryParseJID('juliet@example.com')?.toString(), 'juliet@example.com');
  });
});
