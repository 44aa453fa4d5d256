// XML values and the frame parser for RFC 7395 (one complete element per WebSocket message) with the
// restrictions of RFC 6120 §11 (no comments, processing instructions, DTDs or undeclared entities).
import { SaxesParser } from 'saxes';
import xml, { Element } from '@xmpp/xml';

export { Element, xml };

export type FrameErrorCondition = 'not-well-formed' | 'restricted-xml' | 'policy-violation';

/**
 * The deepest element a frame may hold, counting its top-level element (the stanza) as level 1.
 * Real stanzas nest a handful of levels (a forwarded message in a MUC invitation stays under 10); the
 * bound keeps every recursive walk of an element (clone, toString) far from the call stack's limit,
 * whatever a client sends. Deeper frames are a policy-violation (RFC 6120 §4.9.3.18).
 */
export const MAX_ELEMENT_DEPTH = 64;

/**
 * An upper bound for a payload a client stores and gets back in one stanza: API Gateway posts and
 * receives at most 128 KiB per WebSocket message, and the reply wraps the payload in an <iq/>.
 */
export const MAX_PAYLOAD_BYTES = 130_000;

/** Thrown inside the parser's handlers to stop at once, without reading the rest of the frame. */
class StopParsing extends Error {}

export class FrameError extends Error {
  constructor(readonly condition: FrameErrorCondition, message: string) {
    super(message);
    this.name = 'FrameError';
  }
}

/**
 * Parses one WebSocket message into one element. RFC 7395 §3.3.3: each message carries exactly one
 * complete, namespace-well-formed XML element; anything else is a stream error.
 */
export function parseFrame(text: string): Element {
  const parser = new SaxesParser({ xmlns: true, position: false });
  let root: Element | undefined;
  let cursor: Element | undefined;
  let depth = 0;
  let failure: FrameError | undefined;
  const fail = (condition: FrameErrorCondition, message: string) => {
    failure ??= new FrameError(condition, message);
  };

  parser.on('opentag', (tag) => {
    if (++depth > MAX_ELEMENT_DEPTH) {
      fail('policy-violation', `elements nested deeper than ${MAX_ELEMENT_DEPTH} levels`);
      throw new StopParsing();
    }
    const attrs: Record<string, string> = {};
    for (const attr of Object.values(tag.attributes)) attrs[attr.name] = attr.value;
    const el = new Element(tag.name, attrs);
    if (cursor) cursor.cnode(el);
    else if (root) fail('not-well-formed', 'more than one element in a WebSocket message');
    else root = el;
    cursor = el;
  });
  parser.on('closetag', () => {
    depth--;
    cursor = cursor?.parent as Element | undefined;
  });
  parser.on('text', (text) => {
    if (cursor) cursor.t(text);
  });
  parser.on('cdata', (text) => {
    if (cursor) cursor.t(text);
  });
  // RFC 6120 §11.1: these constructs MUST NOT be sent.
  parser.on('comment', () => fail('restricted-xml', 'XML comments are not allowed'));
  parser.on('processinginstruction', () => fail('restricted-xml', 'processing instructions are not allowed'));
  parser.on('doctype', () => fail('restricted-xml', 'document type declarations are not allowed'));
  // A reference to an entity other than the five predefined ones (an undeclared one, since no DTD
  // may declare any) is restricted XML too, RFC 6120 §11.1, rather than merely ill-formed.
  parser.on('error', (err) => fail(/undefined entity/.test(err.message) ? 'restricted-xml' : 'not-well-formed', err.message));

  try {
    parser.write(text).close();
  } catch (err) {
    if (!(err instanceof StopParsing)) fail('not-well-formed', (err as Error).message);
  }
  if (failure) throw failure;
  if (!root) throw new FrameError('not-well-formed', 'no element in WebSocket message');
  return root;
}

/** A deep copy (ltx 3 has no Element#clone). Recursive: elements are at most MAX_ELEMENT_DEPTH deep. */
export function clone(el: Element): Element {
  const copy = new Element(el.name, { ...el.attrs });
  for (const child of el.children) {
    if (typeof child === 'string') copy.t(child);
    else copy.cnode(clone(child as Element));
  }
  return copy;
}
