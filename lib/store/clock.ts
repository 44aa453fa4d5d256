// The time source of the server: the system clock in production; tests inject their own to move
// time (tenant cache expiry, MUC history `seconds`, the sweeper, stanza rates) instead of sleeping.
export interface Clock {
  /** Milliseconds since the epoch, as Date.now(). */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };
