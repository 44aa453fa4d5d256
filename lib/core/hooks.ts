// Events and registries, after Prosody's module API: the core fires coarse events
// ("message/bare", "iq-get/host/urn:xmpp:ping:ping"), extensions hook them and register the
// stream features and disco features they provide, so nothing keeps a central list.
import type { Element } from '../xmpp/xml.ts';

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

export interface DiscoItem {
  jid: string;
  name?: string;
}

export interface DiscoIdentity {
  category: string;
  type: string;
  name?: string;
}

/** What the server says about itself in XEP-0030 disco#info, filled by the extensions. */
export class DiscoRegistry {
  readonly identities: DiscoIdentity[] = [];
  readonly features = new Set<string>();
  /** Items of the server's disco#items (components such as conference.<domain>), per domain; a source may read the tenant. */
  readonly items: ((domain: string) => DiscoItem[] | Promise<DiscoItem[]>)[] = [];
  /** XEP-0128 extended info forms. */
  readonly forms: ((domain: string) => Element)[] = [];

  addFeature(...namespaces: string[]): void {
    for (const ns of namespaces) this.features.add(ns);
  }

  addIdentity(identity: DiscoIdentity): void {
    this.identities.push(identity);
  }
}
