// lib/xmpp/xml.ts parseFrame bounds how deep a frame's elements nest (MAX_ELEMENT_DEPTH, counted from the
// top-level element), so no recursive walk of a parsed element (clone, toString) can exhaust the stack;
// deeper frames are refused as a policy-violation (RFC 6120 §4.9.3.18).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FrameError, MAX_ELEMENT_DEPTH, clone, parseFrame } from '../../lib/xmpp/xml.ts';

/** A message whose body sits `levels` elements deep, the message itself being level 1. */
function nested(levels: number, tail = ''): string {
  const inner = levels - 2; // message > body … the <a> elements fill the rest
  return `<message xmlns="jabber:client" to="bob@localhost">${'<a>'.repeat(inner)}<body>deep</body>${tail}${'</a>'.repeat(inner)}</message>`;
}

function refusal(text: string): FrameError {
  try {
    parseFrame(text);
  } catch (err) {
    assert.ok(err instanceof FrameError, String(err));
    return err;
  }
  assert.fail('parsed a frame deeper than the limit');
}

describe('element depth (parseFrame)', () => {
  it(`accepts ${MAX_ELEMENT_DEPTH} levels, and walks them (clone, toString)`, () => {
    const el = parseFrame(nested(MAX_ELEMENT_DEPTH));
    let deepest = el;
    let levels = 1;
    for (let next = deepest.children.find((c) => typeof c !== 'string'); next; next = deepest.children.find((c) => typeof c !== 'string')) {
      deepest = next as typeof el;
      levels++;
    }
    assert.equal(levels, MAX_ELEMENT_DEPTH);
    assert.equal(deepest.getText(), 'deep');
    assert.equal(clone(el).toString(), nested(MAX_ELEMENT_DEPTH));
  });

  it(`refuses ${MAX_ELEMENT_DEPTH + 1} levels as a policy-violation naming the limit`, () => {
    const err = refusal(nested(MAX_ELEMENT_DEPTH + 1));
    assert.equal(err.condition, 'policy-violation');
    assert.match(err.message, new RegExp(`deeper than ${MAX_ELEMENT_DEPTH} levels`));
  });

  it('refuses 3,000 levels (about 20 KB) with no stack overflow', () => {
    const text = nested(3000);
    assert.ok(text.length < 25_000);
    assert.equal(refusal(text).condition, 'policy-violation');
  });

  it('stops at the level that crosses the limit, before reading the rest of the frame', () => {
    // Below the limit's crossing point the frame is not even well-formed: a parser that read on (or
    // built the whole tree first) would report not-well-formed instead.
    assert.equal(refusal(nested(MAX_ELEMENT_DEPTH + 1, '<unclosed>')).condition, 'policy-violation');
    assert.equal(refusal(nested(MAX_ELEMENT_DEPTH, '<unclosed>')).condition, 'not-well-formed');
  });

  it('counts depth, not elements: many siblings at shallow depth are fine', () => {
    const el = parseFrame(`<message xmlns="jabber:client">${'<a><b/></a>'.repeat(500)}</message>`);
    assert.equal(el.children.length, 500);
  });
});
