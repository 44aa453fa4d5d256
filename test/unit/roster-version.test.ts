// RFC 6121 §2.6.3 as a pure function (lib/extensions/roster/roster-version.ts): which roster get is
// answered with nothing, with the changes as pushes, or with the whole roster.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { answerFor, counterOf } from '../../lib/extensions/roster/roster-version.ts';
import type { RosterItem } from '../../lib/extensions/roster/store.ts';

const item = (jid: string, ver?: number, inRoster = true): RosterItem => ({ jid, groups: [], subscription: 'none', pendingIn: false, pendingOut: false, approved: false, inRoster, ...(ver !== undefined ? { ver } : {}) });
const counter = { epoch: 'e1', n: 5 };
const items = [item('old@x', undefined), item('a@x', 2), item('c@x', 5), item('b@x', 4), item('hidden@x', 3, false)];

describe('roster versions (RFC 6121 §2.6)', () => {
  it('reads a counter only from a version of the same epoch, in canonical form', () => {
    assert.equal(counterOf('e1-3', counter), 3);
    assert.equal(counterOf('e1-0', counter), 0);
    for (const v of ['e2-3', 'e1-03', 'e1-', 'e1--3', 'e1-3.0', 'e1-1e3', '3', '', 'e1-3-4']) assert.equal(counterOf(v, counter), undefined, v);
  });

  it('the current version: nothing to send', () => {
    assert.deepEqual(answerFor('e1-5', 'e1-5', counter, items), { kind: 'current' });
    assert.deepEqual(answerFor('0', '0', undefined, []), { kind: 'current' });
  });

  it('an older version: the visible items changed since, oldest change first', () => {
    const answer = answerFor('e1-2', 'e1-5', counter, items);
    assert.equal(answer.kind, 'pushes');
    assert.deepEqual(answer.kind === 'pushes' && answer.items.map((i) => i.jid), ['b@x', 'c@x']);
    const fromStart = answerFor('e1-0', 'e1-5', counter, items);
    assert.deepEqual(fromStart.kind === 'pushes' && fromStart.items.map((i) => i.jid), ['a@x', 'b@x', 'c@x']);
  });

  it('the whole roster: another epoch, the future, a removal since, or a newest change that was never written', () => {
    assert.deepEqual(answerFor('e0-2', 'e1-5', counter, items), { kind: 'full' });
    assert.deepEqual(answerFor('e1-6', 'e1-5', counter, items), { kind: 'full' });
    assert.deepEqual(answerFor('e1-2', 'e1-5', { ...counter, removedAt: 3 }, items), { kind: 'full' });
    assert.equal(answerFor('e1-3', 'e1-5', { ...counter, removedAt: 3 }, items).kind, 'pushes', 'a removal the client already knows');
    assert.deepEqual(answerFor('e1-2', 'e1-6', { ...counter, n: 6 }, items), { kind: 'full' });
    assert.deepEqual(answerFor('anything', '0', undefined, items), { kind: 'full' });
    assert.deepEqual(answerFor('', 'e1-5', counter, items), { kind: 'full' });
  });
});
