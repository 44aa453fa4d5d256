// xmpp.js ships no type declarations; the tests use this much of it.
declare module '@xmpp/client' {
  import type { Element } from '@xmpp/xml';
  export interface XmppClient {
    start(): Promise<unknown>;
    stop(): Promise<void>;
    send(el: Element): Promise<void>;
    on(event: string, fn: (arg: any) => void): void;
    iqCaller: { request(el: Element, timeout?: number): Promise<Element> };
    jid?: { toString(): string };
    status: string;
    reconnect: { stop(): void };
    socket?: { socket?: { close(): void; terminate?(): void } };
    saslFactory: unknown;
  }
  export function client(opts: Record<string, unknown>): XmppClient;
  export const xml: typeof import('@xmpp/xml').default;
}
