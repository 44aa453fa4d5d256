// RFC 7395 framing and RFC 6120 §11 restrictions as enforced by parseFrame, and the error
// elements of RFC 6120 §4.9 / §8.3.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { StanzaError, StreamError, errorReply } from '../../lib/xmpp/errors.ts';
import { FrameError, parseFrame } from '../../lib/xmpp/xml.ts';

function condition(text: string): string | undefined {
  try {
    parseFrame(text);
    return undefined;
  } catch (err) {
    assert.ok(err instanceof FrameError, String(err));
    return err.condition;
  }
}

describe('parseFrame (RFC 7395 §3.3.3: one complete element per message)', () => {
  it('parses a stanza with its namespace, attributes, escaped text and CDATA', () => {
    const el = parseFrame('<message xmlns="jabber:client" to="a@b" type="chat"><body>1 &lt; 2 &amp; <![CDATA[<raw>]]></body></message>');
    assert.equal(el.name, 'message');
    assert.equal(el.getNS(), 'jabber:client');
    assert.equal(el.attrs.to, 'a@b');
    assert.equal(el.getChildText('body'), '1 < 2 & <raw>');
  });

  it('resolves prefixed elements through their declarations', () => {
    const el = parseFrame('<stream:features xmlns:stream="http://etherx.jabber.org/streams"><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"/></stream:features>');
    assert.equal(el.getNS(), 'http://etherx.jabber.org/streams');
    assert.ok(el.getChild('bind', 'urn:ietf:params:xml:ns:xmpp-bind'));
  });

  it('accepts an XML declaration before the element', () => {
    assert.equal(parseFrame('<?xml version="1.0"?><open xmlns="urn:ietf:params:xml:ns:xmpp-framing"/>').name, 'open');
  });

  it('rejects malformed XML as not-well-formed', () => {
    assert.equal(condition('<message><body>x</message>'), 'not-well-formed');
    assert.equal(condition('<message>'), 'not-well-formed');
    assert.equal(condition('hello'), 'not-well-formed');
    assert.equal(condition(''), 'not-well-formed');
    assert.equal(condition('<a b="1" b="2"/>'), 'not-well-formed');
  });

  it('rejects two elements in one message as not-well-formed', () => {
    assert.equal(condition('<a/><b/>'), 'not-well-formed');
  });

  it('rejects undeclared prefixes and malformed references as not-well-formed', () => {
    assert.equal(condition('<x:a/>'), 'not-well-formed');
    assert.equal(condition('<a>&#xZZ;</a>'), 'not-well-formed');
  });

  it('rejects comments, processing instructions, DTDs and entity references as restricted-xml (RFC 6120 §11.1)', () => {
    assert.equal(condition('<a>&foo;</a>'), 'restricted-xml');
    assert.equal(condition('<a><!-- hi --></a>'), 'restricted-xml');
    assert.equal(condition('<a><?pi x?></a>'), 'restricted-xml');
    assert.equal(condition('<!DOCTYPE a><a/>'), 'restricted-xml');
  });
});

describe('errors', () => {
  it('builds a stream error in the RFC 7395 §3.6 form', () => {
    const el = new StreamError('host-unknown', 'no such host').toElement();
    assert.equal(el.toString(), '<stream:error xmlns:stream="http://etherx.jabber.org/streams"><host-unknown xmlns="urn:ietf:params:xml:ns:xmpp-streams"/><text xmlns="urn:ietf:params:xml:ns:xmpp-streams">no such host</text></stream:error>');
  });

  it('builds an error reply that swaps addresses, keeps the id and payload, and uses the condition\'s type', () => {
    const iq = parseFrame('<iq xmlns="jabber:client" type="get" id="q1" from="a@b/c" to="b"><query xmlns="urn:x"/></iq>');
    const reply = errorReply(iq, new StanzaError('service-unavailable'));
    assert.equal(reply.attrs.type, 'error');
    assert.equal(reply.attrs.id, 'q1');
    assert.equal(reply.attrs.to, 'a@b/c');
    assert.equal(reply.attrs.from, 'b');
    assert.ok(reply.getChild('query', 'urn:x'));
    const error = reply.getChild('error')!;
    assert.equal(error.attrs.type, 'cancel');
    assert.ok(error.getChild('service-unavailable', 'urn:ietf:params:xml:ns:xmpp-stanzas'));
    assert.equal(new StanzaError('not-authorized').type, 'auth');
    assert.equal(new StanzaError('bad-request').type, 'modify');
  });
});
