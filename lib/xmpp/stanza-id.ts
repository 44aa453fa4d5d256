// XEP-0359 Unique and Stable Stanza IDs as the archives (XEP-0313) give them: an id is the time in ms
// as 12 hex digits and 8 random hex digits, so ids sort as their times do (a time range is a range of
// DynamoDB sort keys) and ids within one millisecond are still unique. User archives and room
// history share the format.
import { randomBytes } from 'node:crypto';
import { type Element, xml } from './xml.ts';

export const NS_SID = 'urn:xmpp:sid:0';

const ID = /^[0-9a-f]{20}$/;
const timePart = (ms: number) => Math.max(0, Math.floor(ms)).toString(16).padStart(12, '0');

export function newArchiveId(now: number): string {
  return timePart(now) + randomBytes(4).toString('hex');
}

export function isArchiveId(id: string): boolean {
  return ID.test(id);
}

/** The time an archive id was given (ms since the epoch). */
export function archiveIdTime(id: string): number {
  return parseInt(id.slice(0, 12), 16);
}

/** The smallest id of the millisecond `ms`. */
export const firstIdAt = (ms: number) => timePart(ms) + '00000000';
/** The largest id of the millisecond `ms`. */
export const lastIdAt = (ms: number) => timePart(ms) + 'ffffffff';

/** XEP-0359 §3 rules 3, 4: only `by` sets a stanza id with its address; any other such id is removed. */
export function stripStanzaIds(stanza: Element, by: string): void {
  stanza.children = stanza.children.filter((c) => typeof c === 'string' || !(c.name === 'stanza-id' && c.attrs.xmlns === NS_SID && c.attrs.by === by));
}

/** Puts `by`'s stanza id on the stanza, replacing any that claims to be `by`'s. */
export function setStanzaId(stanza: Element, by: string, id: string): void {
  stripStanzaIds(stanza, by);
  stanza.cnode(xml('stanza-id', { xmlns: NS_SID, id, by }));
}
