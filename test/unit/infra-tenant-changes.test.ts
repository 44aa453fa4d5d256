// The tenant-changes Lambda on DynamoDB-stream-shaped events (test/fixtures/ddb-stream-*.json): which
// records close a tenant's sessions, that the event filter lets all of those through, and that a
// failure is reported so Lambda retries from that record.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { closeTenantsOf } from '../../functions/tenant-changes.ts';
import type { XmppServer } from '../../lib/core/server.ts';
import { type AttributeValue, type StreamEvent, type StreamRecord, TENANT_CHANGE_FILTERS, changeOf, closingOf, tenantsToClose, truthy } from '../../lib/runtime/tenant-stream.ts';

const fixture = (name: string): StreamEvent => JSON.parse(readFileSync(new URL(`../fixtures/${name}`, import.meta.url), 'utf8'));
const tenantRecord = (eventName: string, enabled: unknown, domain = 'acme.example'): StreamRecord => ({
  eventName,
  dynamodb: {
    Keys: { pk: { S: `tenant#${domain}` }, sk: { S: 'tenant' } },
    ...(eventName === 'REMOVE' ? {} : { NewImage: { pk: { S: `tenant#${domain}` }, sk: { S: 'tenant' }, ...(enabled === undefined ? {} : { enabled: enabled as AttributeValue }) } }),
    SequenceNumber: '1',
  },
});

/**
 * Lambda's filter rules, as far as TENANT_CHANGE_FILTERS uses them: exact values, `prefix`, and
 * `exists` on leaves; a pattern matches if every field in it matches.
 * https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventfiltering.html#filtering-syntax
 */
function matches(pattern: unknown, value: unknown): boolean {
  if (Array.isArray(pattern)) {
    return pattern.some((rule) => {
      if (rule && typeof rule === 'object') {
        const r = rule as { prefix?: string; exists?: boolean };
        if ('exists' in r) return r.exists === (value !== undefined);
        if ('prefix' in r) return typeof value === 'string' && value.startsWith(r.prefix!);
        throw new Error(`rule not modelled: ${JSON.stringify(rule)}`);
      }
      return value === rule;
    });
  }
  // An array of objects in the event matches a pattern object if any element does.
  if (Array.isArray(value)) return value.some((v) => matches(pattern, v));
  return Object.entries(pattern as Record<string, unknown>).every(([k, p]) => matches(p, (value as Record<string, unknown> | undefined)?.[k]));
}
const passesFilter = (record: StreamRecord) => TENANT_CHANGE_FILTERS.some((f) => matches(f, record));

describe('tenant changes from the table stream', () => {
  it('closes a tenant whose item was deleted, or written with enabled not true; each domain once, in stream order', () => {
    const closings = tenantsToClose(fixture('ddb-stream-tenant-changes.json').Records);
    assert.deepEqual(closings, [
      { domain: 'acme.example', why: 'tenant disabled', sequenceNumber: '4421584500000000017450439092' },
      { domain: 'gone.example', why: 'tenant deleted', sequenceNumber: '4421584500000000017450439094' },
      { domain: 'handmade.example', why: 'tenant disabled', sequenceNumber: '4421584500000000017450439097' },
    ]);
  });

  it('ignores every other item: connections, the tenant list, a new or edited enabled tenant', () => {
    const records = fixture('ddb-stream-tenant-changes.json').Records;
    const ignored = records.filter((r) => !closingOf(r)).map((r) => `${r.eventName} ${r.dynamodb?.Keys?.pk && JSON.stringify(r.dynamodb.Keys.pk)}`);
    assert.deepEqual(ignored, ['INSERT {"S":"tenant#new.example"}', 'MODIFY {"S":"conn#Ab1CdEfGhIkCFwA="}', 'REMOVE {"S":"tenants"}']);
    assert.equal(closingOf(tenantRecord('MODIFY', { BOOL: true })), undefined);
    assert.equal(closingOf({ eventName: 'MODIFY', dynamodb: { Keys: { pk: { S: 'tenant#acme.example' }, sk: { S: 'secret' } } } }), undefined);
    assert.equal(closingOf({ eventName: 'REMOVE', dynamodb: { Keys: { pk: { S: 'tenant#' }, sk: { S: 'tenant' } } } }), undefined);
  });

  it('reads a hand-edited `enabled` as the handlers do: only a boolean true serves the tenant (the tenant schema refuses others)', () => {
    const cases: [unknown, boolean][] = [
      [{ BOOL: true }, true],
      [{ BOOL: false }, false],
      [undefined, false],
      [{ NULL: true }, false],
      [{ N: '0' }, false],
      [{ N: '1' }, false],
      [{ S: '' }, false],
      // The handlers refuse an item whose `enabled` is not a boolean (host-unknown): so does this.
      [{ S: 'yes' }, false],
      [{ S: 'false' }, false],
      [{ M: {} }, false],
    ];
    for (const [value, served] of cases) {
      assert.equal(truthy(value as never), served, JSON.stringify(value));
      assert.equal(!!closingOf(tenantRecord('MODIFY', value)), !served, JSON.stringify(value));
    }
  });

  it('filters out nothing the function would act on, and most of what it would not', () => {
    const records = fixture('ddb-stream-tenant-changes.json').Records;
    for (const r of records) if (closingOf(r)) assert.ok(passesFilter(r), `filtered out: ${JSON.stringify(r.dynamodb?.Keys)}`);
    for (const enabled of [{ BOOL: false }, undefined, { N: '0' }, { NULL: true }, { S: '' }]) {
      for (const name of ['INSERT', 'MODIFY', 'REMOVE']) {
        const r = tenantRecord(name, enabled);
        if (closingOf(r)) assert.ok(passesFilter(r), `${name} ${JSON.stringify(enabled)}`);
      }
    }
    // The cost side: connections, the tenant list and enabled tenants never invoke the function.
    assert.deepEqual(records.filter(passesFilter).map((r) => r.dynamodb?.SequenceNumber), [
      '4421584500000000017450439092',
      '4421584500000000017450439094',
      '4421584500000000017450439096',
      '4421584500000000017450439097',
    ]);
    assert.equal(passesFilter(tenantRecord('MODIFY', { BOOL: true })), false);
  });

  it('closes each tenant once and reports the record of the first failure, so Lambda retries from there', async () => {
    const closed: string[] = [];
    const fake = (failOn?: string) =>
      ({
        log: pino({ level: 'silent' }),
        connections: {
          idsOfTenant: async (domain: string) => {
            if (domain === failOn) throw new Error('ProvisionedThroughputExceededException');
            return [`${domain}-c1`];
          },
        },
        endConnection: async (id: string) => void closed.push(id),
        registry: { events: { fireAll: async (name: string, e: { tenant: string }) => void closed.push(`${name} ${e.tenant}`) } },
        flush: async () => undefined,
      }) as unknown as XmppServer;
    const event = fixture('ddb-stream-tenant-changes.json');
    assert.deepEqual(await closeTenantsOf(event, fake()), { batchItemFailures: [] });
    // Each tenant record with an old image is also told to the modules, after its tenant's closing.
    assert.deepEqual(closed, [
      'acme.example-c1',
      'tenant/changed acme.example',
      'gone.example-c1',
      'tenant/changed gone.example',
      'tenant/changed acme.example',
      'handmade.example-c1',
      'tenant/changed handmade.example',
    ]);

    closed.length = 0;
    assert.deepEqual(await closeTenantsOf(event, fake('gone.example')), { batchItemFailures: [{ itemIdentifier: '4421584500000000017450439094' }] });
    assert.deepEqual(closed, ['acme.example-c1', 'tenant/changed acme.example'], 'nothing after the failed record is done in this attempt');
  });

  it('a tenant that had a connected component: any change of its item passes the filter, with both images for the modules', () => {
    const component = (enabled: boolean) => ({ L: [{ M: { domain: { S: 'bot.acme.example' }, kind: { S: 'connected' }, enabled: { BOOL: enabled }, secret: { S: 'bot-secret-123' } } }] });
    const image = (enabled: boolean) => ({ pk: { S: 'tenant#acme.example' }, sk: { S: 'tenant' }, domain: { S: 'acme.example' }, enabled: { BOOL: true }, components: component(enabled) });
    const record: StreamRecord = { eventName: 'MODIFY', dynamodb: { Keys: { pk: { S: 'tenant#acme.example' }, sk: { S: 'tenant' } }, OldImage: image(true), NewImage: image(false), SequenceNumber: '9' } };
    assert.ok(passesFilter(record));
    assert.equal(closingOf(record), undefined);
    assert.deepEqual(changeOf(record), {
      domain: 'acme.example',
      before: { pk: 'tenant#acme.example', sk: 'tenant', domain: 'acme.example', enabled: true, components: [{ domain: 'bot.acme.example', kind: 'connected', enabled: true, secret: 'bot-secret-123' }] },
      after: { pk: 'tenant#acme.example', sk: 'tenant', domain: 'acme.example', enabled: true, components: [{ domain: 'bot.acme.example', kind: 'connected', enabled: false, secret: 'bot-secret-123' }] },
      sequenceNumber: '9',
    });
    // Only webhook components (nothing connected to end): filtered out, as any enabled tenant's edit is.
    const webhooks = { L: [{ M: { domain: { S: 'hook.acme.example' }, kind: { S: 'webhook' } } }] };
    assert.equal(passesFilter({ ...record, dynamodb: { ...record.dynamodb, OldImage: { ...image(true), components: webhooks } } }), false);
  });
});
