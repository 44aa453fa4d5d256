// The event push records (schema.ts, version 1) built from what the core tells: pure functions, one per kind.
import { randomUUID } from 'node:crypto';
import type { Element } from '../../xmpp/xml.ts';
import { EVENT_VERSION, type EventKind, type PushEvent } from './schema.ts';

export function pushEvent(kind: EventKind, tenant: string, now: number, fields: Record<string, unknown>): PushEvent {
  const out: PushEvent = { version: EVENT_VERSION, id: randomUUID(), kind, tenant, time: new Date(now).toISOString() };
  for (const [k, v] of Object.entries(fields)) if (v !== undefined) out[k] = v;
  return out;
}

/** The message fields of message/sent, delivered, stored; undefined for a message without a <body/>. */
export function messageFields(stanza: Element, from: string, to: string, includeBody: boolean): Record<string, unknown> | undefined {
  const body = stanza.getChildText('body');
  if (body === null || body === undefined) return undefined;
  return { from, to, stanzaId: stanza.attrs.id, type: stanza.attrs.type ?? 'normal', ...(includeBody ? { body } : {}) };
}

/** A client's broadcast presence (RFC 6121 §4.2, §4.5): available or unavailable; anything else is no change. */
export function presenceFields(stanza: Element, jid: string): Record<string, unknown> | undefined {
  const type = stanza.attrs.type as string | undefined;
  if (stanza.attrs.to !== undefined || (type !== undefined && type !== 'unavailable')) return undefined;
  const priority = stanza.getChildText('priority');
  return {
    jid,
    available: type === undefined,
    show: stanza.getChildText('show') ?? undefined,
    status: stanza.getChildText('status') ?? undefined,
    priority: priority !== null && priority !== undefined && /^-?\d+$/.test(priority.trim()) ? Number(priority.trim()) : undefined,
  };
}
