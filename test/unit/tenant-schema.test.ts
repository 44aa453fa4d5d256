// The tenant item's schema (README "The tenant item"): the lenient parse of items read from DynamoDB
// (a bad field is logged and dropped so its default applies; an item without domain or boolean
// enabled is refused), the strict check of what an admin writes, and secrets never reaching the log.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { MucSettingsSchema } from '../../lib/extensions/muc/settings.ts';
import { Type } from '@sinclair/typebox';
import { InvalidTenantError, REDACTED, SECRET, type SettingBlock, parseTenantItem, redactSecrets, restoreSecrets, secretPaths, tenantDomain, tenantItemSchema, validateTenantItem } from '../../lib/store/tenant-schema.ts';
import { TenantStore } from '../../lib/store/tenants.ts';

const BLOCKS: SettingBlock[] = [{ key: 'muc', schema: MucSettingsSchema }];

interface Line {
  level: 'warn' | 'error';
  obj: Record<string, unknown>;
  msg: string;
}

function capture() {
  const lines: Line[] = [];
  return {
    lines,
    log: { warn: (obj: object, msg: string) => lines.push({ level: 'warn', obj: obj as Record<string, unknown>, msg }), error: (obj: object, msg: string) => lines.push({ level: 'error', obj: obj as Record<string, unknown>, msg }) },
    fields: () => lines.filter((l) => l.level === 'warn' && 'field' in l.obj).map((l) => l.obj.field),
    text: () => JSON.stringify(lines),
  };
}

const base = { domain: 'acme.example', enabled: true };

describe('parseTenantItem (items read from DynamoDB)', () => {
  test('a valid item with every field comes back unchanged and logs nothing', () => {
    const item = {
      ...base,
      createdAt: 1,
      updatedAt: 2,
      loginMethods: ['password', 'jwt', 'token'],
      jwt: { secret: 's', keys: ['-----BEGIN PUBLIC KEY-----', { kty: 'RSA' }], jwksUrl: 'https://idp.example/jwks', jwksCooldownSeconds: 0, jwksCacheSeconds: 600, algorithms: ['HS256'], issuer: 'i', audience: ['a', 'b'], usernameClaim: 'sub', clockToleranceSeconds: 30 },
      tokens: { secret: 't', accessValiditySeconds: 3600, refreshValiditySeconds: 2160000 },
      registration: 'open',
      limits: { sessionsPerUser: 2, maxStanzaBytes: 20000, stanzasPerSecond: 0.5, roomsPerUser: 0 },
      features: ['x'],
      federation: ['other.example'],
      labels: { plan: 'gold' },
      muc: { enabled: true, subdomain: 'chat', name: 'Rooms', roomCreation: 'admins', maxOccupants: 500, historyLength: 200, historyRetentionSeconds: 60, enforceReservedNicks: true },
    };
    const c = capture();
    assert.deepEqual(parseTenantItem(item, BLOCKS, c.log).tenant, item);
    assert.deepEqual(c.lines, []);
  });

  test('each bad field is logged at warn and dropped, so its default applies; the rest stays', () => {
    const cases: [string, Record<string, unknown>, Record<string, unknown>][] = [
      ['limits.maxStanzaBytes', { limits: { maxStanzaBytes: '1k', sessionsPerUser: 3 } }, { limits: { sessionsPerUser: 3 } }],
      ['limits.maxStanzaBytes', { limits: { maxStanzaBytes: 500 } }, {}], // below RFC 6120 §13.12's 10000
      ['limits.sessionsPerUser', { limits: { sessionsPerUser: 1.5 } }, {}],
      ['limits.stanzasPerSecond', { limits: { stanzasPerSecond: 0 } }, {}],
      ['limits', { limits: 'none' }, {}],
      ['loginMethods', { loginMethods: 'password' }, {}],
      ['loginMethods', { loginMethods: ['password', 'magic'] }, {}],
      ['loginMethods', { loginMethods: [] }, {}],
      ['registration', { registration: 'maybe' }, {}],
      ['features', { features: 'muc' }, {}],
      ['federation', { federation: [1] }, {}],
      ['labels', { labels: { plan: 1 } }, {}],
      ['createdAt', { createdAt: 'yesterday' }, {}],
      ['jwt.clockToleranceSeconds', { jwt: { issuer: 'i', clockToleranceSeconds: -1 } }, { jwt: { issuer: 'i' } }],
      ['jwt.jwksUrl', { jwt: { jwksUrl: 'ftp://x' } }, {}],
      ['jwt.audience', { jwt: { issuer: 'i', audience: 3 } }, { jwt: { issuer: 'i' } }],
      ['tokens.accessValiditySeconds', { tokens: { secret: 't', accessValiditySeconds: '1h' } }, { tokens: { secret: 't' } }],
      ['muc.maxOccupants', { muc: { maxOccupants: 501, name: 'R' } }, { muc: { name: 'R' } }],
      ['muc.roomCreation', { muc: { roomCreation: 'owners' } }, {}],
      ['muc.subdomain', { muc: { subdomain: 'two.labels' } }, {}],
    ];
    for (const [field, extra, kept] of cases) {
      const c = capture();
      const parsed = parseTenantItem({ ...base, ...extra }, BLOCKS, c.log);
      assert.deepEqual(parsed.tenant, { ...base, ...kept }, field);
      assert.deepEqual(c.fields(), [field], field);
      const line = c.lines[0];
      assert.equal(line.obj.tenant, 'acme.example');
      assert.equal(typeof line.obj.error, 'string');
      assert.match(line.msg, new RegExp(`^tenant field ignored: ${field.replace('.', '\\.')}`));
    }
  });

  test('a map that no longer fits once its bad entries are gone is dropped whole (tokens without a secret)', () => {
    const c = capture();
    assert.deepEqual(parseTenantItem({ ...base, tokens: { secret: 42, accessValiditySeconds: 60 } }, BLOCKS, c.log).tenant, base);
    assert.deepEqual(c.fields(), ['tokens.secret', 'tokens']);
    const none = capture();
    assert.deepEqual(parseTenantItem({ ...base, tokens: { accessValiditySeconds: 60 } }, BLOCKS, none.log).tenant, base);
    assert.deepEqual(none.fields(), ['tokens']);
  });

  test('unknown fields are dropped with one warning that names them but not their values', () => {
    const c = capture();
    const parsed = parseTenantItem({ ...base, colour: 'crimson', jwtSecret: 'typo-secret', limits: { maxStanzas: 5 } }, BLOCKS, c.log);
    assert.deepEqual(parsed.tenant, base);
    assert.equal(c.lines.length, 1);
    assert.equal(c.lines[0].level, 'warn');
    assert.deepEqual(c.lines[0].obj.fields, ['colour', 'jwtSecret', 'limits.maxStanzas']);
    assert.doesNotMatch(c.text(), /typo-secret|crimson/);
  });

  test("a module's block is a known field only when the block is registered", () => {
    const c = capture();
    assert.deepEqual(parseTenantItem({ ...base, muc: { name: 'R' } }, [], c.log).tenant, base);
    assert.deepEqual(c.lines[0].obj.fields, ['muc']);
  });

  test('an item that cannot be served is refused and logged at error', () => {
    const bad: unknown[] = [null, 'acme.example', [base], { enabled: true }, { domain: 5, enabled: true }, { domain: '', enabled: true }, { domain: 'a.example' }, { domain: 'a.example', enabled: 'yes' }, { domain: 'a.example', enabled: 1 }];
    for (const item of bad) {
      const c = capture();
      const parsed = parseTenantItem(item, BLOCKS, c.log, 'a.example');
      assert.equal(parsed.tenant, undefined, JSON.stringify(item));
      assert.match(parsed.error!, /map|domain|enabled/);
      assert.equal(c.lines.length, 1);
      assert.equal(c.lines[0].level, 'error');
      assert.equal(c.lines[0].obj.tenant, 'a.example');
    }
  });

  test('secret values never reach the log, whatever is wrong with them', () => {
    const c = capture();
    parseTenantItem({ ...base, jwt: 'jwt-secret-1', tokens: { secret: 'token-secret-2', refreshValiditySeconds: 'x' } }, BLOCKS, c.log);
    parseTenantItem({ ...base, jwt: { secret: ['jwt-secret-3'], keys: 'jwt-key-4' } }, BLOCKS, c.log);
    parseTenantItem({ ...base, tokens: 'token-secret-5' }, BLOCKS, c.log);
    assert.deepEqual(c.fields(), ['jwt', 'tokens.refreshValiditySeconds', 'jwt.secret', 'jwt.keys', 'tokens']);
    assert.doesNotMatch(c.text(), /secret-\d|key-4/);
    // Other bad values are shown, to help whoever edits the item.
    assert.equal(c.lines.find((l) => l.obj.field === 'tokens.refreshValiditySeconds')!.obj.value, 'x');
  });
});

describe('validateTenantItem (what an admin writes)', () => {
  test('a valid item passes', () => {
    assert.deepEqual(validateTenantItem({ ...base, limits: { maxStanzaBytes: 20000 }, muc: { subdomain: 'chat' } }, BLOCKS), { ...base, limits: { maxStanzaBytes: 20000 }, muc: { subdomain: 'chat' } });
  });

  test('any error throws, naming each bad field path and why', () => {
    assert.throws(
      () => validateTenantItem({ ...base, limits: { maxStanzaBytes: '1k' }, loginMethods: 'password', colour: 'red', muc: { maxOccupants: 0 }, jwt: { audience: 3 } }, BLOCKS),
      (err: unknown) => {
        assert.ok(err instanceof InvalidTenantError);
        assert.deepEqual(
          [...err.fields].sort((a, b) => a.path.localeCompare(b.path)),
          [
            { path: 'colour', message: 'unknown field' },
            { path: 'jwt.audience', message: 'expected string or a list of string' },
            { path: 'limits.maxStanzaBytes', message: 'expected integer' },
            { path: 'loginMethods', message: 'expected array' },
            { path: 'muc.maxOccupants', message: 'expected integer to be greater or equal to 1' },
          ],
        );
        assert.match(err.message, /limits\.maxStanzaBytes: expected integer/);
        return true;
      },
    );
    assert.throws(() => validateTenantItem({ enabled: true }, BLOCKS), /domain: is required/);
    assert.throws(() => validateTenantItem({ ...base, loginMethods: ['password', 'magic'] }, BLOCKS), /loginMethods\.1: must be one of "password", "jwt", "token"/);
  });

  test('a block may not take the name of a core field', () => {
    assert.throws(() => tenantItemSchema([{ key: 'limits', schema: MucSettingsSchema }]), /clashes/);
  });
});

describe('TenantStore reads through the parser', () => {
  function oneItem(item: Record<string, unknown>): DynamoDBDocumentClient {
    return { send: async () => ({ Item: { pk: 'tenant#a.example', sk: 'tenant', ...item } }) } as unknown as DynamoDBDocumentClient;
  }

  test('a bad field is dropped, and an unchanged item is reported once, not at every read', async () => {
    const c = capture();
    const store = new TenantStore(oneItem({ domain: 'a.example', enabled: true, limits: { maxStanzaBytes: '1k' } }), 't', { cacheMs: 0, blocks: BLOCKS, log: c.log });
    assert.deepEqual(await store.get('a.example'), { domain: 'a.example', enabled: true });
    assert.deepEqual(await store.get('a.example'), { domain: 'a.example', enabled: true });
    assert.deepEqual(c.fields(), ['limits.maxStanzaBytes']);
  });

  test('a refused item reads as no tenant', async () => {
    const c = capture();
    const store = new TenantStore(oneItem({ domain: 'a.example', enabled: 'yes' }), 't', { cacheMs: 0, log: c.log });
    assert.equal(await store.get('a.example'), undefined);
    assert.equal(c.lines[0].level, 'error');
  });
});

describe('tenantDomain (the one rule for tenant domains)', () => {
  test('normalises as a JID does: lower case, A-labels read as U-labels, single labels allowed', () => {
    assert.deepEqual(tenantDomain('Acme.Example'), { domain: 'acme.example' });
    assert.deepEqual(tenantDomain('xn--mnchen-3ya.example'), { domain: 'münchen.example' });
    assert.deepEqual(tenantDomain('localhost'), { domain: 'localhost' });
    assert.deepEqual(tenantDomain(`${'a'.repeat(63)}.example`), { domain: `${'a'.repeat(63)}.example` });
  });

  test('refuses what is not a DNS host name, with the reason', () => {
    const cases: [string, RegExp][] = [
      ['', /empty/],
      ['.', /dot/],
      ['acme.example.', /must not end with a dot/],
      ['a..b', /empty label/],
      ['localhost:5280', /port/],
      ['[::1]', /IP address/],
      ['10.0.0.1', /IP address/],
      ['::1', /IP address/],
      ['a@b', /"@"/],
      ['a/b', /"\/"/],
      ['a_b.example', /letters, digits and "-"/],
      [`${'a'.repeat(64)}.example`, /63 octets/],
      [Array.from({ length: 64 }, () => 'abc').join('.'), /253/],
      ['x'.repeat(5000), /253/],
      ['evil\u202Ecom', /U\+202E/],
    ];
    for (const [input, reason] of cases) {
      const t = tenantDomain(input);
      assert.equal(t.domain, undefined, JSON.stringify(input));
      assert.match(t.error!, reason, JSON.stringify(input));
    }
  });

  test('an item must hold its domain in the normal form; one read from the table that breaks the rule is refused', () => {
    assert.throws(() => validateTenantItem({ domain: 'Acme.Example', enabled: true }, BLOCKS), /domain: must be written in its normal form "acme\.example"/);
    const c = capture();
    assert.equal(parseTenantItem({ domain: 'a#b', enabled: true }, BLOCKS, c.log).tenant, undefined);
    assert.match(c.lines[0].msg, /tenant refused: domain: invalid character/);
  });
});

describe('secrets of the tenant item', () => {
  const withSecretBlock: SettingBlock[] = [...BLOCKS, { key: 'turn', schema: Type.Object({ url: Type.String(), password: Type.String({ ...SECRET }) }) }];
  const item = { ...base, jwt: { secret: 'j', keys: ['k'], issuer: 'i' }, tokens: { secret: 't' }, turn: { url: 'turn:x', password: 'p' } };

  test("the schema's marks are the secrets: the core's and a module block's", () => {
    assert.deepEqual(secretPaths(withSecretBlock), ['jwt.secret', 'jwt.keys', 'tokens.secret', 'turn.password']);
  });

  test('redacting replaces each secret that is set, and leaves the item as it was', () => {
    const shown = redactSecrets(item, withSecretBlock);
    assert.deepEqual(shown, { ...base, jwt: { secret: REDACTED, keys: REDACTED, issuer: 'i' }, tokens: { secret: REDACTED }, turn: { url: 'turn:x', password: REDACTED } });
    assert.equal(item.jwt.secret, 'j');
    assert.deepEqual(redactSecrets(base, withSecretBlock), base, 'nothing set, nothing shown');
  });

  test('restoring puts the kept value where the placeholder was written, and refuses a placeholder with nothing kept', () => {
    const written = { ...redactSecrets(item, withSecretBlock), jwt: { secret: 'new', keys: REDACTED } };
    assert.deepEqual(restoreSecrets(written, item, withSecretBlock), { ...item, jwt: { secret: 'new', keys: ['k'] } });
    assert.throws(
      () => restoreSecrets({ ...base, tokens: { secret: REDACTED } }, base, withSecretBlock),
      (err: unknown) => err instanceof InvalidTenantError && err.fields[0].path === 'tokens.secret',
    );
  });
});
