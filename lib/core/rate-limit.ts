// Per-connection stanza rate limiting: a token bucket (rate per second, bursts of twice the rate).
// A client over its rate is first slowed (its frames wait, which keeps their order), and told with
// a resource-constraint error when it stays far over. Counters live in memory: with SQS FIFO a
// connection's frames mostly reach the same warm container, so this is a soft limit by design.

interface Bucket {
  tokens: number;
  at: number;
}

export class TokenBuckets {
  private buckets = new Map<string, Bucket>();

  /** Takes one token (a bucket holds `burst` tokens at most). Returns 0 if granted now, else the milliseconds until one is available. */
  take(key: string, ratePerSecond: number, now = Date.now(), burst = ratePerSecond * 2): number {
    const b = this.buckets.get(key) ?? { tokens: burst, at: now };
    b.tokens = Math.min(burst, b.tokens + ((now - b.at) / 1000) * ratePerSecond);
    b.at = now;
    this.buckets.set(key, b);
    if (this.buckets.size > 100_000) this.buckets.delete(this.buckets.keys().next().value as string);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - b.tokens) / ratePerSecond) * 1000);
  }

  forget(key: string): void {
    this.buckets.delete(key);
  }
}
