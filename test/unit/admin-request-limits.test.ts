// The admin API's limits on what a request may carry (README "Admin API"): JSON nesting counted
// without parsing, broken percent-encoding, and the password rule of accounts.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MAX_PASSWORD_CHARS, passwordProblem } from '../../lib/core/accounts.ts';
import { decodePathSegment, jsonNestingExceeds } from '../../lib/admin/request-limits.ts';

describe('jsonNestingExceeds', () => {
  test('counts arrays and objects, stops at the limit', () => {
    assert.equal(jsonNestingExceeds('{"a":[{"b":[]}]}', 4), false);
    assert.equal(jsonNestingExceeds('{"a":[{"b":[[]]}]}', 4), true);
    assert.equal(jsonNestingExceeds('['.repeat(1_000_000), 32), true);
  });

  test('brackets in strings, escaped quotes included, are text', () => {
    assert.equal(jsonNestingExceeds(JSON.stringify({ a: '[[[[{{{{', b: 'say \\"[[[[\\"' }), 1), false);
    assert.equal(jsonNestingExceeds('{"a":"\\\\"}', 1), false, 'an escaped backslash ends before the quote');
  });
});

describe('decodePathSegment', () => {
  test('decodes, or says the encoding is broken', () => {
    assert.equal(decodePathSegment('a%23b'), 'a#b');
    assert.equal(decodePathSegment('%'), undefined);
    assert.equal(decodePathSegment('%E0%A4%A'), undefined);
  });
});

describe('passwordProblem (RFC 4013 SASLprep, and a length bound)', () => {
  test('accepts what SASLprep accepts, up to the limit in characters', () => {
    assert.equal(passwordProblem('correct horse battery staple'), undefined);
    assert.equal(passwordProblem('\u00e9'.repeat(MAX_PASSWORD_CHARS)), undefined);
    assert.equal(passwordProblem('\u{1F600}'.repeat(MAX_PASSWORD_CHARS)), undefined, 'counted in code points, not UTF-16 units');
  });

  test('names the reason it refuses', () => {
    assert.match(passwordProblem('')!, /empty/);
    assert.match(passwordProblem('a\u0007b')!, /U\+0007.*RFC 4013 §2\.3/);
    assert.match(passwordProblem('\u0000')!, /U\+0000/);
    assert.match(passwordProblem('\u00AD')!, /empty once SASLprep/);
    assert.match(passwordProblem('\u05D0a')!, /right-to-left/);
    assert.match(passwordProblem('x'.repeat(MAX_PASSWORD_CHARS + 1))!, /longer than 1024 characters/);
    assert.match(passwordProblem('p'.repeat(900_000))!, /longer than 1024 characters/);
  });
});
