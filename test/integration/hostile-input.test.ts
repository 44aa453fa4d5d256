// The hostile-input corpus: malformed and restricted XML, depth, sizes, encodings, stream order,
// spoofing and invalid addresses, each sent over a raw WebSocket with the answer RFC 6120 / RFC 7395
// prescribe. After every case a control client is still served, and the server's log holds no error
// (an error line means an input reached code that did not expect it). The random fuzzer is in
// hostile-fuzz.test.ts; README "Hostile input, faults and abuse" lists the suites.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { RawClient, type TestClient, type TestServer, byName, type Element } from '../support/harness.ts';
import { startWatchedServer } from '../support/hostile.ts';
import { MAX_ELEMENT_DEPTH } from '../../lib/xmpp/xml.ts';
import type { XmppModule } from '../../lib/core/modules.ts';

const STREAMS = 'urn:ietf:params:xml:ns:xmpp-streams';
const STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas';
const FRAMING = 'urn:ietf:params:xml:ns:xmpp-framing';
const OPEN = `<open xmlns="${FRAMING}" to="localhost" version="1.0"/>`;

const conditionIn = (el: Element | undefined, ns: string) =>
  el?.children.find((c): c is Element => typeof c !== 'string' && c.attrs.xmlns === ns)?.name;

/** A module with a bug: an IQ it handles throws a TypeError, as code that met an input it did not expect. */
const faulty: XmppModule = {
  name: 'faulty',
  install(ctx) {
    ctx.hook('iq-get/host/urn:example:faulty:boom', () => {
      throw new TypeError('cannot read properties of undefined');
    });
  },
};
/** Error lines the faulty module's test expects (and removes before the check after each test). */
const FAULT_LOG = 'frame failed; answered internal-server-error';

let s: TestServer;
let control: TestClient;
let bob: TestClient;
let errorLines: string[];
let stopServer: () => Promise<void>;
let users = 0;

before(async () => {
  ({ s, control, bob, errorLines, stop: stopServer } = await startWatchedServer({ extraModules: [faulty] }));
});
after(() => stopServer());
afterEach(async () => {
  // The server still serves others, and nothing it did was an unexpected failure.
  await control.roundTrip();
  assert.deepEqual(errorLines.splice(0), [], 'no error in the server log');
});

type Stage = 'connected' | 'opened' | 'bound';

async function rawAt(stage: Stage): Promise<RawClient> {
  const raw = await RawClient.connect(s.url);
  if (stage === 'opened') {
    raw.send(OPEN);
    await raw.next(byName('stream:features'));
  }
  if (stage === 'bound') {
    const name = `hostile${++users}`;
    await s.addUser(`${name}@localhost`);
    await raw.login(name);
  }
  return raw;
}

/** The stream error RFC 6120 §4.9 names, then the <close/> of RFC 7395 §3.6, then the socket closes. */
async function expectStreamError(raw: RawClient, condition: string): Promise<void> {
  const err = await raw.next(byName('stream:error'));
  assert.equal(conditionIn(err, STREAMS), condition, err.toString());
  await raw.next((el) => el.name === 'close' && el.attrs.xmlns === FRAMING);
  await raw.closed;
}

/** An error reply to the stanza with this id (RFC 6120 §8.3), and the stream carries on. */
async function expectStanzaError(raw: RawClient, id: string, condition: string): Promise<void> {
  const reply = await raw.next((el) => el.attrs.id === id);
  assert.equal(reply.attrs.type, 'error', reply.toString());
  assert.equal(conditionIn(reply.getChild('error'), STANZAS), condition, reply.toString());
  await pingOn(raw);
}

let pings = 0;
async function pingOn(raw: RawClient): Promise<void> {
  const id = `alive${++pings}`;
  raw.send(`<iq xmlns="jabber:client" type="get" id="${id}" to="localhost"><ping xmlns="urn:xmpp:ping"/></iq>`);
  const pong = await raw.next((el) => el.attrs.id === id);
  assert.equal(pong.attrs.type, 'result');
}

const nested = (depth: number, inner = 'deep') => `${'<x xmlns="urn:example:nest">'.repeat(depth)}${inner}${'</x>'.repeat(depth)}`;
const toBob = (id: string, inner: string, attrs = '') => `<message xmlns="jabber:client" type="chat" to="bob@localhost" id="${id}"${attrs}>${inner}</message>`;

describe('malformed XML → not-well-formed (RFC 6120 §4.9.3.13)', () => {
  const cases: [string, string][] = [
    ['an unclosed element', '<message xmlns="jabber:client" to="bob@localhost"><body>unclosed</message>'],
    ['mismatched end tags', '<message xmlns="jabber:client"><body></message></body>'],
    ['two elements in one WebSocket message (RFC 7395 §3.3.3)', '<presence xmlns="jabber:client"/><presence xmlns="jabber:client"/>'],
    ['text after the element', '<presence xmlns="jabber:client"/>trailing'],
    ['text only', 'hello'],
    ['an empty message', ''],
    ['a duplicated attribute', '<message xmlns="jabber:client" to="bob@localhost" to="control@localhost"/>'],
    ['an unbound namespace prefix', '<foo:message xmlns="jabber:client"/>'],
    ['a control character', '<message xmlns="jabber:client" to="bob@localhost"><body>\u0001</body></message>'],
    ['a character reference to a control character', '<message xmlns="jabber:client" to="bob@localhost"><body>&#x1;</body></message>'],
    ['a non-character (U+FFFE)', '<message xmlns="jabber:client" to="bob@localhost"><body>\uFFFE</body></message>'],
    ['a lone ampersand', '<message xmlns="jabber:client" to="bob@localhost"><body>a & b</body></message>'],
    ['an unterminated CDATA section', '<message xmlns="jabber:client" to="bob@localhost"><body><![CDATA[x</body></message>'],
    ['an unquoted attribute', '<message xmlns="jabber:client" to=bob@localhost/>'],
    ['a truncated element', '<message xmlns="jabber:client" to="bob@loc'],
  ];
  for (const [what, frame] of cases) {
    it(`${what}, after binding`, async () => {
      const raw = await rawAt('bound');
      raw.send(frame);
      await expectStreamError(raw, 'not-well-formed');
    });
  }
  it('malformed XML before the stream is opened', async () => {
    const raw = await rawAt('connected');
    raw.send(`<open xmlns="${FRAMING}" to="localhost" version="1.0">`);
    await expectStreamError(raw, 'not-well-formed');
  });
});

describe('restricted XML → restricted-xml (RFC 6120 §11.1)', () => {
  const cases: [string, string][] = [
    ['a comment', toBob('r1', '<!-- hidden --><body>x</body>')],
    ['a processing instruction', `<?evil data?>${toBob('r2', '<body>x</body>')}`],
    ['a document type declaration', `<!DOCTYPE message>${toBob('r3', '<body>x</body>')}`],
    ['an internal entity (billion laughs)', `<!DOCTYPE m [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>${toBob('r4', '<body>&b;</body>')}`],
    ['an undeclared entity reference', toBob('r5', '<body>&xxe;</body>')],
    ['an external entity', `<!DOCTYPE m [<!ENTITY e SYSTEM "file:///etc/passwd">]>${toBob('r6', '<body>&e;</body>')}`],
  ];
  for (const [what, frame] of cases) {
    it(what, async () => {
      const raw = await rawAt('bound');
      raw.send(frame);
      await expectStreamError(raw, 'restricted-xml');
      await bob.expectNothing(s, (el) => /^r\d$/.test(el.attrs.id ?? ''));
    });
  }
  it('the five predefined entities and character references are plain XML and are delivered', async () => {
    const raw = await rawAt('bound');
    raw.send(toBob('ent', '<body>&lt;&gt;&amp;&quot;&apos;&#65;&#x1F600;</body>'));
    const got = await bob.waitFor((el) => el.attrs.id === 'ent');
    assert.equal(got.getChildText('body'), `<>&"'A\u{1F600}`);
  });
});

describe('depth and size', () => {
  it(`an element ${MAX_ELEMENT_DEPTH} levels deep (the limit) is delivered intact`, async () => {
    const raw = await rawAt('bound');
    // The message itself is level 1.
    raw.send(toBob('deep-ok', nested(MAX_ELEMENT_DEPTH - 1)));
    const got = await bob.waitFor((el) => el.attrs.id === 'deep-ok');
    let depth = 1;
    for (let el = got.getChild('x'); el; el = el.getChild('x')) depth++;
    assert.equal(depth, MAX_ELEMENT_DEPTH);
  });
  it('one level more → policy-violation, nothing delivered', async () => {
    const raw = await rawAt('bound');
    raw.send(toBob('deep-1', nested(MAX_ELEMENT_DEPTH)));
    await expectStreamError(raw, 'policy-violation');
    await bob.expectNothing(s, (el) => el.attrs.id === 'deep-1');
  });
  it('3,000 levels (21 KB, inside the size limit) → policy-violation (RFC 6120 §4.9.3.18)', async () => {
    const raw = await rawAt('bound');
    const frame = `<message xmlns="jabber:client" to="bob@localhost" id="deep-3000">${'<a>'.repeat(3000)}${'</a>'.repeat(3000)}</message>`;
    assert.ok(Buffer.byteLength(frame) < 30_000);
    raw.send(frame);
    await expectStreamError(raw, 'policy-violation');
  });
  it('3,000 levels before authentication → policy-violation', async () => {
    const raw = await rawAt('opened');
    raw.send(`${'<a>'.repeat(3000)}${'</a>'.repeat(3000)}`);
    await expectStreamError(raw, 'policy-violation');
  });
  it('a stanza over the size limit → policy-violation', async () => {
    const raw = await rawAt('bound');
    raw.send(toBob('big', `<body>${'x'.repeat(31_000)}</body>`));
    await expectStreamError(raw, 'policy-violation');
  });
  it('1,000 attributes on one element are delivered, not a crash', async () => {
    const raw = await rawAt('bound');
    const attrs = Array.from({ length: 1000 }, (_, i) => ` a${i}="${i}"`).join('');
    raw.send(toBob('attrs', '<body>x</body>', attrs));
    const got = await bob.waitFor((el) => el.attrs.id === 'attrs');
    assert.equal(got.attrs.a999, "999");
  });
});

describe('encodings (RFC 7395 §3.2: UTF-8 text frames)', () => {
  it('a text frame that is not UTF-8 is closed with 1007 (RFC 6455 §8.1)', async () => {
    const raw = await rawAt('bound');
    raw.ws.send(Buffer.from([0x3c, 0x61, 0xff, 0xfe, 0x2f, 0x3e]), { binary: false });
    assert.equal((await raw.closed).code, 1007);
  });
  it('a binary frame is closed with 1003 and not processed, as API Gateway does', async () => {
    const raw = await rawAt('connected');
    raw.ws.send(Buffer.from(OPEN), { binary: true });
    assert.equal((await raw.closed).code, 1003);
    assert.deepEqual(raw.frames, [], 'the binary <open/> opened no stream');
  });
  it('characters outside the BMP, right-to-left overrides and combining marks arrive unchanged', async () => {
    const raw = await rawAt('bound');
    const text = '\u{1F680} \u202Eevil\u202C e\u0301 \u{10FFFD}';
    raw.send(toBob('utf', `<body>${text}</body>`));
    const got = await bob.waitFor((el) => el.attrs.id === 'utf');
    assert.equal(got.getChildText('body'), text);
  });
});

describe('stream order (RFC 6120 §4–7, RFC 7395 §3.4–3.6)', () => {
  it('a stanza before <open/> → not-authorized', async () => {
    const raw = await rawAt('connected');
    raw.send(toBob('early', '<body>x</body>'));
    await expectStreamError(raw, 'not-authorized');
  });
  it('SASL before <open/> → not-authorized', async () => {
    const raw = await rawAt('connected');
    raw.send(`<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="PLAIN">${Buffer.from('\0bob\0secret').toString('base64')}</auth>`);
    await expectStreamError(raw, 'not-authorized');
  });
  it('resource binding before authentication → not-authorized', async () => {
    const raw = await rawAt('opened');
    raw.send('<iq xmlns="jabber:client" type="set" id="b"><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"/></iq>');
    await expectStreamError(raw, 'not-authorized');
  });
  it('an <open/> in the wrong namespace → invalid-namespace (RFC 6120 §4.9.3.10)', async () => {
    const raw = await rawAt('connected');
    raw.send('<open xmlns="jabber:client" to="localhost" version="1.0"/>');
    await expectStreamError(raw, 'invalid-namespace');
  });
  it('an RFC 6120 <stream:stream> header instead of <open/> → invalid-namespace', async () => {
    const raw = await rawAt('connected');
    raw.send('<stream:stream xmlns:stream="http://etherx.jabber.org/streams" xmlns="jabber:client" to="localhost" version="1.0"/>');
    await expectStreamError(raw, 'invalid-namespace');
  });
  it('an <open/> of version 2.0 → unsupported-version (RFC 6120 §4.9.3.25)', async () => {
    const raw = await rawAt('connected');
    raw.send(`<open xmlns="${FRAMING}" to="localhost" version="2.0"/>`);
    await raw.next(byName('open'));
    await expectStreamError(raw, 'unsupported-version');
  });
  it('a restart that names another domain → host-unknown', async () => {
    const raw = await rawAt('bound');
    raw.send(`<open xmlns="${FRAMING}" to="elsewhere.example" version="1.0"/>`);
    await expectStreamError(raw, 'host-unknown');
  });
  it('nothing after the client\'s <close/> is processed (RFC 7395 §3.6)', async () => {
    const raw = await rawAt('bound');
    raw.send(`<close xmlns="${FRAMING}"/>`);
    raw.send(toBob('after-close', '<body>x</body>'));
    await raw.next(byName('close'));
    await raw.closed;
    await bob.expectNothing(s, (el) => el.attrs.id === 'after-close');
  });
});

describe('spoofing (RFC 6120 §8.1.2.1)', () => {
  for (const from of ['bob@localhost/desk', 'admin@localhost', 'localhost', 'someone@other.example/x', 'not a jid@@']) {
    it(`a from of "${from}" is replaced by the sender's full JID`, async () => {
      const raw = await rawAt('bound');
      const id = `spoof-${from.length}`;
      raw.send(toBob(id, '<body>x</body>', ` from="${from}"`));
      const got = await bob.waitFor((el) => el.attrs.id === id);
      assert.match(got.attrs.from, /^hostile\d+@localhost\/raw$/);
    });
  }
});

describe('invalid addresses and stanzas → stanza errors, the stream carries on (RFC 6120 §8.3.3)', () => {
  const cases: [string, string, string][] = [
    ['two @ in a JID', '<message xmlns="jabber:client" id="j1" to="a@b@localhost"><body>x</body></message>', 'jid-malformed'],
    ['an empty localpart', '<message xmlns="jabber:client" id="j2" to="@localhost"><body>x</body></message>', 'jid-malformed'],
    ['an empty domain', '<message xmlns="jabber:client" id="j3" to="bob@"><body>x</body></message>', 'jid-malformed'],
    ['an empty to', '<message xmlns="jabber:client" id="j4" to=""><body>x</body></message>', 'jid-malformed'],
    ['an empty resource', '<message xmlns="jabber:client" id="j5" to="bob@localhost/"><body>x</body></message>', 'jid-malformed'],
    ['a space in the localpart', '<message xmlns="jabber:client" id="j6" to="a b@localhost"><body>x</body></message>', 'jid-malformed'],
    ['a localpart over 1023 bytes', `<message xmlns="jabber:client" id="j7" to="${'a'.repeat(1100)}@localhost"><body>x</body></message>`, 'jid-malformed'],
    ['a nonexistent account', '<message xmlns="jabber:client" type="chat" id="j8" to="nobody@localhost"><body>x</body></message>', 'service-unavailable'],
    ['a domain not served here', '<message xmlns="jabber:client" id="j9" to="bob@other.example"><body>x</body></message>', 'remote-server-not-found'],
    ['a message to the server itself that nothing handles (RFC 6120 §10.3)', '<message xmlns="jabber:client" type="chat" id="j10" to="localhost"><body>x</body></message>', 'service-unavailable'],
    ['a message of type "result" (a normal message, RFC 6121 §5.2.2) to the room service', '<message xmlns="jabber:client" type="result" id="j11" to="conference.localhost"><body>x</body></message>', 'service-unavailable'],
    ['an IQ of an unknown type', '<iq xmlns="jabber:client" type="fetch" id="q1" to="localhost"><ping xmlns="urn:xmpp:ping"/></iq>', 'bad-request'],
    ['an IQ get without a child', '<iq xmlns="jabber:client" type="get" id="q2" to="localhost"/>', 'bad-request'],
    ['an IQ get with two children', '<iq xmlns="jabber:client" type="get" id="q3" to="localhost"><ping xmlns="urn:xmpp:ping"/><ping xmlns="urn:xmpp:ping"/></iq>', 'bad-request'],
    ['an IQ nobody handles', '<iq xmlns="jabber:client" type="get" id="q4" to="localhost"><x xmlns="urn:example:nothing"/></iq>', 'service-unavailable'],
    ['an IQ to an absent resource', '<iq xmlns="jabber:client" type="get" id="q5" to="bob@localhost/gone"><ping xmlns="urn:xmpp:ping"/></iq>', 'service-unavailable'],
  ];
  for (const [what, frame, condition] of cases) {
    it(`${what} → ${condition}`, async () => {
      const raw = await rawAt('bound');
      raw.send(frame);
      await expectStanzaError(raw, /id="([^"]+)"/.exec(frame)![1], condition);
    });
  }
  it('a message of an unknown type is handled as normal (RFC 6121 §5.2.2) and delivered', async () => {
    const raw = await rawAt('bound');
    raw.send('<message xmlns="jabber:client" type="bogus" id="m-bogus" to="bob@localhost/desk"><body>x</body></message>');
    await bob.waitFor((el) => el.attrs.id === 'm-bogus');
  });
  it('an error is never answered with an error (RFC 6120 §8.3.1)', async () => {
    const raw = await rawAt('bound');
    raw.send('<message xmlns="jabber:client" type="error" id="e1" to="nobody@localhost"><error type="cancel"><item-not-found xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></message>');
    await pingOn(raw);
    assert.ok(!raw.frames.some((f) => f.includes('id="e1"') || f.includes("id='e1'")), raw.frames.join('\n'));
  });
});

describe('a fault of the server (a module that throws)', () => {
  it('is answered internal-server-error (RFC 6120 §8.3.3.6) and the frames behind it are processed', async () => {
    const raw = await rawAt('bound');
    raw.send('<iq xmlns="jabber:client" type="get" id="boom" to="localhost"><boom xmlns="urn:example:faulty"/></iq>');
    for (let i = 0; i < 5; i++) raw.send(toBob(`behind-${i}`, '<body>x</body>'));
    const reply = await raw.next((el) => el.attrs.id === 'boom');
    assert.equal(conditionIn(reply.getChild('error'), STANZAS), 'internal-server-error', reply.toString());
    for (let i = 0; i < 5; i++) await bob.waitFor((el) => el.attrs.id === `behind-${i}`);
    // Logged once, as an error an operator sees, and not retried.
    assert.equal(errorLines.filter((l) => l.includes(FAULT_LOG)).length, 1, errorLines.join('\n'));
    errorLines.splice(0);
  });
});
