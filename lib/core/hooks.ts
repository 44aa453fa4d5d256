// Events, after Prosody's module API: the core fires coarse events ("message/bare",
// "iq-get/host/urn:xmpp:ping:ping"), modules hook them (lib/core/modules.ts).

/** A handler returns undefined to pass the event on, anything else to stop it there. */
export type Hook<E> = (event: E) => unknown | Promise<unknown>;

export class Hooks<E> {
  private handlers = new Map<string, { priority: number; fn: Hook<E> }[]>();

  on(name: string, fn: Hook<E>, priority = 0): void {
    const list = this.handlers.get(name) ?? [];
    list.push({ priority, fn });
    list.sort((a, b) => b.priority - a.priority);
    this.handlers.set(name, list);
  }

  /** Whether anything hooks `name` (so a caller can skip building an event nobody reads). */
  has(name: string): boolean {
    return !!this.handlers.get(name)?.length;
  }

  /** Runs handlers by priority until one returns something other than undefined; returns that. */
  async fire(name: string, event: E): Promise<unknown> {
    for (const { fn } of this.handlers.get(name) ?? []) {
      const result = await fn(event);
      if (result !== undefined) return result;
    }
    return undefined;
  }

  /** Runs every handler (for notifications such as "session-ended"). */
  async fireAll(name: string, event: E): Promise<void> {
    for (const { fn } of this.handlers.get(name) ?? []) await fn(event);
  }
}
