// XEP-0334 Message Processing Hints, and the XEP-0353 Jingle Message Initiation elements that rely on
// them: pure checks the modules that copy, store and archive messages share.
import { NS } from './namespaces.ts';
import type { Element } from './xml.ts';

/** XEP-0353 §3 (and the :1 namespace of 0.4/0.5): the actions of a call's life, each with the session `id`. */
export const JINGLE_MESSAGE_ACTIONS = ['propose', 'ringing', 'proceed', 'accept', 'reject', 'retract', 'finish'] as const;

/** The XEP-0353 action element of a message, if it carries one. */
export function jingleMessageAction(stanza: Element): Element | undefined {
  for (const c of stanza.children) {
    if (typeof c === 'string') continue;
    if ((c.attrs.xmlns === NS.JINGLE_MESSAGE || c.attrs.xmlns === NS.JINGLE_MESSAGE_1) && (JINGLE_MESSAGE_ACTIONS as readonly string[]).includes(c.name)) return c;
  }
  return undefined;
}

/** XEP-0334 §4.2 <no-store/>: kept neither permanently nor for later delivery. */
export const hasNoStore = (stanza: Element) => !!stanza.getChild('no-store', NS.HINTS);

/** XEP-0334 §4.2 <no-permanent-store/> (or <no-store/>): not archived. */
export const hasNoPermanentStore = (stanza: Element) => !!stanza.getChild('no-permanent-store', NS.HINTS) || hasNoStore(stanza);

/** XEP-0334 §4.4 <store/>: "A message containing the <store/> hint that is not of type 'error' SHOULD be stored". */
export const hasStore = (stanza: Element) => !!stanza.getChild('store', NS.HINTS) && stanza.attrs.type !== 'error';
