// Stanza errors (RFC 6120 §8.3) and stream errors (RFC 6120 §4.9, framed per RFC 7395 §3.6).
import { NS } from './namespaces.ts';
import { Element, clone, xml } from './xml.ts';

export type StanzaErrorType = 'auth' | 'cancel' | 'continue' | 'modify' | 'wait';

/** RFC 6120 §8.3.3, with the error type each condition usually carries. */
const DEFAULT_TYPE: Record<string, StanzaErrorType> = {
  'bad-request': 'modify',
  conflict: 'cancel',
  'feature-not-implemented': 'cancel',
  forbidden: 'auth',
  gone: 'cancel',
  'internal-server-error': 'cancel',
  'item-not-found': 'cancel',
  'jid-malformed': 'modify',
  'not-acceptable': 'modify',
  'not-allowed': 'cancel',
  'not-authorized': 'auth',
  'policy-violation': 'modify',
  'recipient-unavailable': 'wait',
  redirect: 'modify',
  'registration-required': 'auth',
  'remote-server-not-found': 'cancel',
  'remote-server-timeout': 'wait',
  'resource-constraint': 'wait',
  'service-unavailable': 'cancel',
  'subscription-required': 'auth',
  'undefined-condition': 'cancel',
  'unexpected-request': 'wait',
};

export class StanzaError extends Error {
  readonly type: StanzaErrorType;
  constructor(
    readonly condition: string,
    readonly text?: string,
    type?: StanzaErrorType,
  ) {
    super(text ? `${condition}: ${text}` : condition);
    this.name = 'StanzaError';
    this.type = type ?? DEFAULT_TYPE[condition] ?? 'cancel';
  }

  toElement(by?: string): Element {
    const el = xml('error', { type: this.type, ...(by ? { by } : {}) }, xml(this.condition, { xmlns: NS.STANZA_ERRORS }));
    if (this.text) el.c('text', { xmlns: NS.STANZA_ERRORS }).t(this.text);
    return el;
  }
}

/**
 * RFC 6120 §8.3.1: an error reply swaps to/from, keeps id, sets type="error" and MAY include the
 * original payload; we include it for messages and IQs (clients use it to match the failure).
 * Never call this for a stanza that is itself of type error (§8.3.1 rule 2: no error loops).
 */
export function errorReply(stanza: Element, error: StanzaError): Element {
  const reply = new Element(stanza.name, {
    xmlns: NS.CLIENT,
    type: 'error',
    ...(stanza.attrs.id !== undefined ? { id: stanza.attrs.id } : {}),
    ...(stanza.attrs.from ? { to: stanza.attrs.from } : {}),
    ...(stanza.attrs.to ? { from: stanza.attrs.to } : {}),
  });
  if (stanza.name !== 'presence') {
    for (const child of stanza.children) if (typeof child !== 'string' && child.name !== 'error') reply.cnode(clone(child));
  }
  reply.cnode(error.toElement());
  return reply;
}

export type StreamErrorCondition =
  | 'bad-format'
  | 'bad-namespace-prefix'
  | 'conflict'
  | 'connection-timeout'
  | 'host-gone'
  | 'host-unknown'
  | 'improper-addressing'
  | 'internal-server-error'
  | 'invalid-from'
  | 'invalid-namespace'
  | 'invalid-xml'
  | 'not-authorized'
  | 'not-well-formed'
  | 'policy-violation'
  | 'remote-connection-failed'
  | 'reset'
  | 'resource-constraint'
  | 'restricted-xml'
  | 'see-other-host'
  | 'system-shutdown'
  | 'undefined-condition'
  | 'unsupported-encoding'
  | 'unsupported-feature'
  | 'unsupported-stanza-type'
  | 'unsupported-version';

export class StreamError extends Error {
  constructor(
    readonly condition: StreamErrorCondition,
    readonly text?: string,
  ) {
    super(text ? `${condition}: ${text}` : condition);
    this.name = 'StreamError';
  }

  /** RFC 7395 §3.6: `<stream:error/>` with the streams prefix declared on the element itself. */
  toElement(): Element {
    const el = xml('stream:error', { 'xmlns:stream': NS.STREAMS }, xml(this.condition, { xmlns: NS.STREAM_ERRORS }));
    if (this.text) el.c('text', { xmlns: NS.STREAM_ERRORS }).t(this.text);
    return el;
  }
}
