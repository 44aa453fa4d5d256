// TURN credentials in the shared-secret scheme coturn checks with `use-auth-secret` (its README.turnserver:
// "usercombo -> "timestamp:username", turn user -> usercombo, turn password -> base64(hmac(input_buffer
// = usercombo, key = shared-secret))"; draft-uberti-behave-turn-rest-00 §2.2), the `turn` block's
// schema, and the <service/> elements XEP-0215 answers with.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { serviceElements } from '../../lib/extensions/extdisco/index.ts';
import { turnCredentials, turnPassword, xep0082DateTime } from '../../lib/extensions/extdisco/credentials.ts';
import { TurnSettingsSchema } from '../../lib/extensions/extdisco/settings.ts';
import { InvalidTenantError, parseTenantItem, validateTenantItem, redactSecrets } from '../../lib/store/tenant-schema.ts';

const BLOCKS = [{ key: 'turn', schema: TurnSettingsSchema }];

describe('the shared-secret credential scheme', () => {
  test('the password is base64(HMAC-SHA1(secret, username)): RFC 2202 §3 test case 2', () => {
    // Neither coturn's documents nor the draft publish a computed triple (the draft's example password,
    // "adfsaflsjfldssia", is a placeholder), so the HMAC-SHA1 test vector of RFC 2202 stands in:
    // key "Jefe", data "what do ya want for nothing?", digest 0xeffcdf6ae5eb2fa2d27416d5f184df9c259a7c79.
    assert.equal(turnPassword('Jefe', 'what do ya want for nothing?'), Buffer.from('effcdf6ae5eb2fa2d27416d5f184df9c259a7c79', 'hex').toString('base64'));
    assert.equal(turnPassword('Jefe', 'what do ya want for nothing?'), '7/zfauXrL6LSdBbV8YTfnCWafHk=');
  });

  test('the username is "<expiry unix seconds>:<bare JID>", and the password matches openssl for it', () => {
    // `printf '1733090400:alice@localhost' | openssl dgst -sha1 -hmac north-gov-test-secret -binary | base64`
    const c = turnCredentials('north-gov-test-secret', 'alice@localhost', 1733086800_500, 3600);
    assert.deepEqual(c, { username: '1733090400:alice@localhost', password: 'qlbnoWp3rHlRAKdPyoDTMJzON3I=', expiresAt: 1733090400 });
  });

  test('the draft\'s example username format: the timestamp is the expiry, a colon, then the user id', () => {
    // draft-uberti-behave-turn-rest-00 §2.2: "username": "12334939:mbzrxpgjys" for user mbzrxpgjys.
    const c = turnCredentials('secret', 'mbzrxpgjys', 12334939_000 - 86400_000, 86400);
    assert.equal(c.username, '12334939:mbzrxpgjys');
  });

  test('expires is an XEP-0082 DateTime in UTC without fractions', () => {
    assert.equal(xep0082DateTime(1733090400), '2024-12-01T22:00:00Z');
  });
});

describe('the turn block of the tenant item', () => {
  const turn = { secret: 'a-long-enough-secret', services: [{ type: 'turn', host: 'turn.example.com' }] };
  const item = { domain: 'acme.example', enabled: true };

  test('a block with services and a secret is accepted; its secret is shown as (set)', () => {
    assert.deepEqual(validateTenantItem({ ...item, turn }, BLOCKS).turn, turn);
    assert.equal((redactSecrets({ ...item, turn }, BLOCKS).turn as { secret: string }).secret, '(set)');
  });

  test('bad values get an error naming each field', () => {
    const bad = { secret: 'short', services: [{ type: 'ftp', host: 'turn example', port: 70000, transport: 'sctp' }], ttlSeconds: 5 };
    let err: unknown;
    try {
      validateTenantItem({ ...item, turn: bad }, BLOCKS);
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof InvalidTenantError);
    const paths = err.fields.map((f) => f.path).sort();
    assert.deepEqual(paths, ['turn.secret', 'turn.services.0.host', 'turn.services.0.port', 'turn.services.0.transport', 'turn.services.0.type', 'turn.ttlSeconds']);
    assert.match(err.message, /turn\.services\.0\.type: must be one of "stun", "turn", "turns"/);
  });

  test('the secret is required, and a hand-edited item without it loses the block, with a warning that does not show the rest', () => {
    assert.throws(() => validateTenantItem({ ...item, turn: { services: turn.services } }, BLOCKS), /turn\.secret: is required/);
    const warnings: string[] = [];
    const parsed = parseTenantItem({ ...item, turn: { services: turn.services } }, BLOCKS, { warn: (_o, m) => warnings.push(m), error: (_o, m) => warnings.push(m) });
    assert.equal(parsed.tenant?.turn, undefined);
    assert.match(warnings.join('\n'), /turn: turn\.secret: is required/);
  });
});

describe('service elements', () => {
  const settings = {
    secret: 'north-gov-test-secret',
    ttlSeconds: 3600,
    services: [
      { type: 'stun' as const, host: 'stun.example.com' },
      { type: 'turn' as const, host: 'turn.example.com', name: 'Relay' },
      { type: 'turns' as const, host: 'turn.example.com' },
    ],
  };

  test('STUN carries no credentials; TURN and TURNS carry the same username, password, expires and restricted', () => {
    const [stun, turn, turns] = serviceElements(settings, settings.services, 'alice@localhost', 1733086800_500).map((e) => e.attrs);
    assert.deepEqual(stun, { type: 'stun', host: 'stun.example.com', port: '3478', transport: 'udp' });
    assert.deepEqual(turn, { type: 'turn', host: 'turn.example.com', port: '3478', transport: 'udp', name: 'Relay', username: '1733090400:alice@localhost', password: 'qlbnoWp3rHlRAKdPyoDTMJzON3I=', expires: '2024-12-01T22:00:00Z', restricted: '1' });
    assert.deepEqual(turns, { type: 'turns', host: 'turn.example.com', port: '5349', transport: 'tcp', username: turn.username, password: turn.password, expires: turn.expires, restricted: '1' });
  });

  test('the secret never appears in what a user gets', () => {
    const text = serviceElements(settings, settings.services, 'alice@localhost', Date.now()).join('');
    assert.ok(!text.includes(settings.secret));
  });
});
