// XEP-0313 query parsing (§4.1 form, urn:xmpp:mam:2#extended fields) and XEP-0059 paging (§2.1
// forward, §2.5 backward) as pure functions, plus the archive's time-ordered ids.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseFrame } from '../../lib/xmpp/xml.ts';
import {
  type ArchivedRef,
  archiveIdTime,
  firstIdAt,
  isArchiveId,
  lastIdAt,
  newArchiveId,
  parseQueryForm,
  parseRsm,
  planPage,
  rsmAnswer,
  takePage,
} from '../../lib/extensions/mam/query.ts';
import { archives, parsePrefs, stripStanzaIds } from '../../lib/extensions/mam/index.ts';
import { refusal } from '../support/stanza-errors.ts';


const form = (fields: Record<string, string | string[]>, formType = 'urn:xmpp:mam:2') =>
  parseFrame(
    `<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>${formType}</value></field>${Object.entries(fields)
      .map(([k, v]) => `<field var='${k}'>${(Array.isArray(v) ? v : [v]).map((x) => `<value>${x}</value>`).join('')}</field>`)
      .join('')}</x>`,
  );
const rsm = (inner: string) => parseFrame(`<set xmlns='http://jabber.org/protocol/rsm'>${inner}</set>`);

describe('archive ids', () => {
  it('sort as their times do, and carry the time', () => {
    const a = newArchiveId(1_700_000_000_000);
    const b = newArchiveId(1_700_000_000_001);
    const c = newArchiveId(1_800_000_000_000);
    assert.ok(a < b && b < c);
    assert.equal(archiveIdTime(b), 1_700_000_000_001);
    assert.ok(isArchiveId(a) && !isArchiveId('1234') && !isArchiveId(a.toUpperCase()));
    assert.ok(firstIdAt(1_700_000_000_000) <= a && a <= lastIdAt(1_700_000_000_000));
  });
});

describe('the query form (§4.1)', () => {
  it('reads with, start, end and the extended fields', () => {
    const f = parseQueryForm(
      form({ with: 'juliet@capulet.lit', start: '2010-06-07T00:00:00Z', end: '2010-07-07T13:23:54.5+02:00', 'after-id': 'x1', 'before-id': 'x2', ids: ['a', 'b'] }),
    );
    assert.deepEqual(f, {
      with: 'juliet@capulet.lit',
      start: Date.UTC(2010, 5, 7),
      end: Date.UTC(2010, 6, 7, 11, 23, 54, 500),
      afterId: 'x1',
      beforeId: 'x2',
      ids: ['a', 'b'],
    });
  });

  it('refuses another FORM_TYPE, unknown fields (§4.1.5: feature-not-implemented), bad dates and bad JIDs', () => {
    assert.equal(refusal(() => parseQueryForm(form({}, 'urn:xmpp:mam:1'))), 'bad-request');
    assert.equal(refusal(() => parseQueryForm(form({ colour: 'red' }))), 'feature-not-implemented');
    assert.equal(refusal(() => parseQueryForm(form({ start: 'yesterday' }))), 'bad-request');
    assert.equal(refusal(() => parseQueryForm(form({ with: 'a@b@c' }))), 'jid-malformed');
    assert.deepEqual(parseQueryForm(undefined), {});
  });
});

describe('RSM (XEP-0059)', () => {
  it('reads max, after, and before (empty = the last page)', () => {
    assert.deepEqual(parseRsm(rsm('<max>10</max><after>abc</after>')), { max: 10, after: 'abc' });
    assert.deepEqual(parseRsm(rsm('<max>5</max><before/>')), { max: 5, before: '' });
    assert.equal(refusal(() => parseRsm(rsm('<max>-1</max>'))), 'bad-request');
    assert.deepEqual(parseRsm(undefined), {});
  });

  it('answers <first/> and <last/>, and an empty set for an empty page', () => {
    assert.equal(rsmAnswer([{ id: 'a' }, { id: 'b' }]).toString(), "<set xmlns=\"http://jabber.org/protocol/rsm\"><first>a</first><last>b</last></set>");
    assert.equal(rsmAnswer([]).toString(), '<set xmlns="http://jabber.org/protocol/rsm"/>');
  });
});

describe('paging', () => {
  // Ten messages, one a second, alternating peers.
  const t0 = 1_700_000_000_000;
  const items: ArchivedRef[] = Array.from({ length: 10 }, (_, i) => ({
    id: newArchiveId(t0 + i * 1000),
    peer: i % 2 ? 'romeo@x' : 'nurse@x',
    peerFull: i % 2 ? 'romeo@x/balcony' : undefined,
  }));
  const ids = items.map((i) => i.id);
  // What the store reads: the range in the plan's direction.
  const read = (plan: ReturnType<typeof planPage>) => {
    const inRange = items.filter((i) => i.id >= plan.from && i.id <= plan.to);
    return plan.forward ? inRange : [...inRange].reverse();
  };
  const page = (f: Parameters<typeof planPage>[0], r: Parameters<typeof planPage>[1], oldest = 0) => {
    const plan = planPage(f, r, oldest);
    const { page: p, complete } = takePage(plan, read(plan));
    return { ids: p.map((i) => i.id), complete };
  };

  it('forward: the oldest first, then after the last id, complete at the end', () => {
    assert.deepEqual(page({}, { max: 4 }), { ids: ids.slice(0, 4), complete: false });
    assert.deepEqual(page({}, { max: 4, after: ids[3] }), { ids: ids.slice(4, 8), complete: false });
    assert.deepEqual(page({}, { max: 4, after: ids[7] }), { ids: ids.slice(8), complete: true });
    assert.deepEqual(page({}, { max: 2, after: ids[7] }), { ids: ids.slice(8), complete: true });
  });

  it('backward: <before/> is the last page, then before the first id; pages are in time order', () => {
    assert.deepEqual(page({}, { max: 4, before: '' }), { ids: ids.slice(6), complete: false });
    assert.deepEqual(page({}, { max: 4, before: ids[6] }), { ids: ids.slice(2, 6), complete: false });
    assert.deepEqual(page({}, { max: 4, before: ids[2] }), { ids: ids.slice(0, 2), complete: true });
  });

  it('filters by time, by id and by bare or full with', () => {
    assert.deepEqual(page({ start: t0 + 2000, end: t0 + 4000 }, {}).ids, ids.slice(2, 5));
    assert.deepEqual(page({ afterId: ids[1], beforeId: ids[5] }, {}).ids, ids.slice(2, 5));
    assert.deepEqual(page({ with: 'romeo@x' }, { max: 2 }), { ids: [ids[1], ids[3]], complete: false });
    assert.deepEqual(page({ with: 'romeo@x/balcony' }, { before: '' }).ids, [1, 3, 5, 7, 9].map((i) => ids[i]));
    assert.deepEqual(page({ with: 'romeo@x/hall' }, {}).ids, []);
    assert.deepEqual(page({ ids: [ids[4], ids[0]] }, {}).ids, [ids[0], ids[4]]);
  });

  it('leaves out what retention expired', () => {
    assert.deepEqual(page({}, {}, t0 + 7000).ids, ids.slice(7));
  });

  it('caps max at 100 and refuses ids it never gives out as item-not-found', () => {
    assert.equal(planPage({}, { max: 10_000 }, 0).max, 100);
    assert.equal(planPage({}, {}, 0).max, 50);
    assert.equal(refusal(() => planPage({}, { after: 'not-an-id' }, 0)), 'item-not-found');
    assert.deepEqual(planPage({}, { after: ids[1], before: ids[5] }, 0).anchors, [ids[1], ids[5]]);
  });
});

describe('preferences (XEP-0441) and stanza ids (XEP-0359 §3)', () => {
  it('never and always lists beat the default; roster asks the roster', async () => {
    const prefs = parsePrefs(parseFrame("<prefs xmlns='urn:xmpp:mam:2' default='roster'><always><jid>a@x/r</jid></always><never><jid>b@x</jid></never></prefs>"));
    assert.deepEqual(prefs, { default: 'roster', always: ['a@x'], never: ['b@x'] });
    assert.equal(await archives(prefs, 'a@x', async () => false), true);
    assert.equal(await archives(prefs, 'b@x', async () => true), false);
    assert.equal(await archives(prefs, 'c@x', async () => true), true);
    assert.equal(await archives(prefs, 'c@x', async () => false), false);
    assert.equal(await archives({ default: 'never', always: [], never: [] }, 'c@x', async () => true), false);
    assert.equal(refusal(() => parsePrefs(parseFrame("<prefs xmlns='urn:xmpp:mam:2' default='sometimes'/>"))), 'bad-request');
  });

  it('only the stanza ids claiming the archive are removed', () => {
    const m = parseFrame(
      "<message><body>x</body><stanza-id xmlns='urn:xmpp:sid:0' id='forged' by='juliet@x'/><stanza-id xmlns='urn:xmpp:sid:0' id='room' by='room@muc.x'/><origin-id xmlns='urn:xmpp:sid:0' id='o1'/></message>",
    );
    stripStanzaIds(m, 'juliet@x');
    assert.deepEqual(
      m.getChildren('stanza-id').map((c) => c.attrs.by),
      ['room@muc.x'],
    );
    assert.equal(m.getChild('origin-id')?.attrs.id, 'o1');
  });
});
