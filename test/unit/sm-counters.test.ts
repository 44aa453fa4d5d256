// XEP-0198 counter arithmetic: the wrap of `h` at 2^32 (§4) and the queue the acks trim.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { H_MODULUS, ackRequestDue, parseH, unackedAfter, unwrapAck, wire } from '../../lib/extensions/stream-management/counters.ts';

describe('XEP-0198 counters', () => {
  it('an h on the wire is the count modulo 2^32 (§4: after 2^32 - 1 comes 0)', () => {
    assert.equal(wire(0), 0);
    assert.equal(wire(H_MODULUS - 1), 4294967295);
    assert.equal(wire(H_MODULUS), 0);
    assert.equal(wire(H_MODULUS + 5), 5);
  });

  it('an ack maps back onto the absolute count inside the unacknowledged window, across the wrap', () => {
    assert.equal(unwrapAck(3, 0, 5), 3);
    assert.equal(unwrapAck(5, 5, 5), 5, 'acknowledging nothing new');
    // Sent 2^32 + 2 in all, 2^32 - 3 acknowledged: h = 1 is 2^32 + 1.
    assert.equal(unwrapAck(1, H_MODULUS - 3, H_MODULUS + 2), H_MODULUS + 1);
    assert.equal(unwrapAck(4294967295, H_MODULUS - 3, H_MODULUS + 2), H_MODULUS - 1);
    // A second wrap.
    assert.equal(unwrapAck(7, 2 * H_MODULUS - 1, 2 * H_MODULUS + 10), 2 * H_MODULUS + 7);
  });

  it('an old ack (behind what was acknowledged) acknowledges nothing new, across the wrap too', () => {
    assert.equal(unwrapAck(3, 5, 8), 5);
    assert.equal(unwrapAck(4294967294, H_MODULUS + 1, H_MODULUS + 4), H_MODULUS + 1);
  });

  it('an ack of stanzas never sent is handled-count-too-high (§4)', () => {
    assert.equal(unwrapAck(6, 0, 5), 'too-high');
    assert.equal(unwrapAck(3, H_MODULUS - 3, H_MODULUS + 2), 'too-high', 'one past what was sent, after the wrap');
    assert.equal(unwrapAck(-1, 0, 5), 'too-high');
    assert.equal(unwrapAck(H_MODULUS, 0, 5), 'too-high');
  });

  it('parses h attributes: digits below 2^32 only', () => {
    assert.equal(parseH('0'), 0);
    assert.equal(parseH('4294967295'), 4294967295);
    assert.equal(parseH('4294967296'), undefined);
    assert.equal(parseH('-1'), undefined);
    assert.equal(parseH('1e3'), undefined);
    assert.equal(parseH(undefined), undefined);
  });

  it('the stanzas left after an ack are those numbered above it, in order', () => {
    const q = ['s11', 's12', 's13', 's14'];
    assert.deepEqual(unackedAfter(q, 10, 10), q);
    assert.deepEqual(unackedAfter(q, 10, 12), ['s13', 's14']);
    assert.deepEqual(unackedAfter(q, 10, 14), []);
    assert.deepEqual(unackedAfter(q, 10, 9), q, 'an h below what was already acknowledged removes nothing');
  });

  it('the server asks for an ack with every N-th unacknowledged stanza, not after each one', () => {
    const due = Array.from({ length: 25 }, (_, i) => i + 1).filter((sent) => ackRequestDue(sent, 0, 10));
    assert.deepEqual(due, [10, 20]);
    assert.equal(ackRequestDue(15, 5, 10), true);
    assert.equal(ackRequestDue(5, 5, 10), false);
  });
});
