// XEP-0198 counter arithmetic, pure. The server keeps absolute counts (stanzas sent to a session,
// stanzas acknowledged, stanzas handled from it) that never wrap; on the wire every `h` is that count
// modulo 2^32 (§4: "the value of 'h' ... MUST be reset to zero" after 2^32 - 1). An `h` from the
// client is mapped back onto the absolute count inside the window of unacknowledged stanzas.

export const H_MODULUS = 2 ** 32;

/** The wire value of an absolute count (XEP-0198 §4, the wrap at 2^32). */
export function wire(count: number): number {
  return count % H_MODULUS;
}

/**
 * The absolute count an `h` from the client stands for, given what was acknowledged before and how
 * many were sent: the one value in [acked, sent] congruent to h modulo 2^32 (the window is always
 * narrower than 2^32). An h a little behind what was acknowledged (less than 2^31 back: an old ack)
 * acknowledges nothing new and maps to `acked`. 'too-high' when h names stanzas never sent (XEP-0198
 * §4 handled-count-too-high).
 */
export function unwrapAck(h: number, acked: number, sent: number): number | 'too-high' {
  if (!Number.isInteger(h) || h < 0 || h >= H_MODULUS) return 'too-high';
  const forward = (h - wire(acked) + H_MODULUS) % H_MODULUS;
  if (forward <= sent - acked) return acked + forward;
  const back = H_MODULUS - forward;
  return back < H_MODULUS / 2 && back <= acked ? acked : 'too-high';
}

/** Parses an `h` attribute: a non-negative integer below 2^32, else undefined. */
export function parseH(value: unknown): number | undefined {
  if (typeof value !== 'string' || !/^\d{1,10}$/.test(value)) return undefined;
  const n = Number(value);
  return n < H_MODULUS ? n : undefined;
}

/**
 * The queue entries still unacknowledged once the client acknowledged `h` (absolute): the queue
 * holds the stanzas numbered acked+1 … acked+queue.length, in order.
 */
export function unackedAfter<T>(queue: readonly T[], acked: number, h: number): T[] {
  return queue.slice(Math.max(0, h - acked));
}

/**
 * Whether the server asks for an ack along with stanza number `sent`: every `every` stanzas not yet
 * acknowledged (the server's <r/> is batched, not sent after each stanza).
 */
export function ackRequestDue(sent: number, acked: number, every: number): boolean {
  const unacked = sent - acked;
  return unacked > 0 && unacked % every === 0;
}
