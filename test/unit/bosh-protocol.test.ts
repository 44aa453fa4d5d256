// The pure parts of BOSH (lib/gateway/bosh/protocol.ts): the rid window (XEP-0124 §14), key
// sequencing (§15, with the example chain of §15.2), what a session is granted (§7.1), the frames a
// request hands the core (XEP-0206 restart and terminate), and the response built from what the
// core posted (stream header, close, stream errors). And the BOSH function's HTTP API adapter.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BOSH_MAX_WAIT_SECONDS, BOSH_POLL_MS, boshFromEnvironment, serveBosh } from '../../functions/bosh.ts';
import type { BoshEndpoint, BoshRequest } from '../../lib/gateway/bosh/endpoint.ts';
import {
  BoshError,
  DEFAULT_BOSH_LIMITS,
  connectionIdOfSid,
  framesOf,
  grantSession,
  grantedVersion,
  type ActivityState,
  aheadKeyValid,
  nextKey,
  parseRequestBody,
  repeatKeyValid,
  reportOf,
  tooFrequent,
  tooManyRequests,
  placeOfRid,
  readOutgoing,
  ridOf,
  sha1Hex,
  terminateBody,
} from '../../lib/gateway/bosh/protocol.ts';
import type { HttpApiEvent } from '../../lib/runtime/http-api.ts';
import { createLambdaRuntime } from '../../lib/runtime/lambda.ts';

const body = (attrs: string, inner = '') => parseRequestBody(`<body xmlns="http://jabber.org/protocol/httpbind" ${attrs}${inner ? `>${inner}</body>` : '/>'}`);

describe('rid window (XEP-0124 §14)', () => {
  it('next, ahead within `requests`, a repeat of the last `requests`, outside otherwise', () => {
    assert.equal(placeOfRid(11, 10, 2), 'next');
    assert.equal(placeOfRid(12, 10, 2), 'ahead');
    assert.equal(placeOfRid(13, 10, 2), 'outside');
    assert.equal(placeOfRid(10, 10, 2), 'repeat');
    assert.equal(placeOfRid(9, 10, 2), 'repeat');
    assert.equal(placeOfRid(8, 10, 2), 'outside');
    assert.equal(placeOfRid(11, 10, 1), 'next');
    assert.equal(placeOfRid(12, 10, 1), 'outside');
  });

  it('a rid is a non-negative integer below 2^53 (bad-request otherwise)', () => {
    assert.equal(ridOf(body('rid="9007199254740991"')), 9007199254740991);
    for (const bad of ['rid="-1"', 'rid="1.5"', 'rid="x"', '', 'rid="99999999999999999"']) {
      assert.throws(() => ridOf(body(bad)), (e: unknown) => e instanceof BoshError && e.condition === 'bad-request', bad);
    }
  });
});

describe('keys (XEP-0124 §15)', () => {
  it('follows the chain K(n-1) = SHA-1(K(n)), takes a newkey, refuses a wrong or missing key with item-not-found', () => {
    // §15.2's example: K(1) is the hex SHA-1 of K(0) and so on.
    const k = ['s3cr3t'];
    for (let i = 1; i <= 3; i++) k.push(sha1Hex(k[i - 1]));
    assert.equal(nextKey(undefined, body('rid="1"')), undefined, 'no keys in use');
    assert.equal(nextKey(k[3], body(`key="${k[2]}"`)), k[2]);
    assert.equal(nextKey(k[2], body(`key="${k[1]}" newkey="fresh"`)), 'fresh');
    for (const attrs of [`key="${k[0]}"`, '']) {
      assert.throws(() => nextKey(k[2], body(attrs)), (e: unknown) => e instanceof BoshError && e.condition === 'item-not-found');
    }
  });
});

describe('session creation (XEP-0124 §7.1)', () => {
  it('caps wait and hold, sets requests to hold + 1, grants the lower version, keeps an XML content type', () => {
    const g = grantSession(body('wait="600" hold="5" ver="1.6" content="text/xml; charset=utf-8" ack="1"'), { ...DEFAULT_BOSH_LIMITS, maxWait: 25 });
    assert.deepEqual(
      { wait: g.wait, hold: g.hold, requests: g.requests, ver: g.ver, content: g.content, ack: g.ack },
      { wait: 25, hold: 1, requests: 2, ver: '1.6', content: 'text/xml; charset=utf-8', ack: true },
    );
    assert.equal(grantSession(body('wait="10" hold="0" content="text/html"'), DEFAULT_BOSH_LIMITS).content, 'text/xml; charset=utf-8');
    assert.equal(grantSession(body('wait="10" hold="0"'), DEFAULT_BOSH_LIMITS).requests, 1);
    assert.equal(grantedVersion('2.0'), '1.11');
    assert.equal(grantedVersion(undefined), '1.0');
    assert.throws(() => grantSession(body('hold="1"'), DEFAULT_BOSH_LIMITS), /wait/);
    assert.throws(() => grantSession(body('wait="x" hold="1"'), DEFAULT_BOSH_LIMITS), /wait/);
  });

  it('derives the connection id from the sid without showing it', () => {
    const id = connectionIdOfSid('the-sid');
    assert.match(id, /^bosh-[A-Za-z0-9_-]{22}$/);
    assert.equal(id, connectionIdOfSid('the-sid'));
    assert.ok(!id.includes('the-sid'));
  });
});

describe('frames to the core and the response (XEP-0206)', () => {
  it('a restart without xml:lang opens the stream in the language of the session request (XEP-0124 §7.1)', () => {
    const restart = framesOf(body('rid="2" xmpp:restart="true" xmlns:xmpp="urn:xmpp:xbosh"'), 'localhost', 'fr');
    assert.deepEqual(restart, [`<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="localhost" version="1.0" xml:lang="fr"/>`]);
  });

  it('a restart opens the stream again; stanzas get jabber:client; a terminate ends with <close/> after the last stanzas', () => {
    const restart = framesOf(body('rid="2" xmpp:restart="true" xmlns:xmpp="urn:xmpp:xbosh" xml:lang="de"'), 'localhost');
    assert.deepEqual(restart, [`<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="localhost" version="1.0" xml:lang="de"/>`]);
    const last = framesOf(body('rid="3" type="terminate"', '<presence type="unavailable"/>'), 'localhost');
    assert.deepEqual(last, ['<presence type="unavailable" xmlns="jabber:client"/>', '<close xmlns="urn:ietf:params:xml:ns:xmpp-framing"/>']);
  });

  it('reads the stream header (authid, from), a close and stream errors (host-unknown, or remote-stream-error with the error inside)', () => {
    const open = readOutgoing(['<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" id="abc" from="localhost" version="1.0"/>', '<stream:features xmlns:stream="http://etherx.jabber.org/streams"/>']);
    assert.deepEqual(open, { payload: ['<stream:features xmlns:stream="http://etherx.jabber.org/streams"/>'], streamId: 'abc', from: 'localhost' });
    const error = '<stream:error xmlns:stream="http://etherx.jabber.org/streams"><conflict xmlns="urn:ietf:params:xml:ns:xmpp-streams"/></stream:error>';
    assert.deepEqual(readOutgoing([error, '<close xmlns="urn:ietf:params:xml:ns:xmpp-framing"/>']), { payload: [error], terminate: { condition: 'remote-stream-error' } });
    assert.deepEqual(readOutgoing(['<stream:error xmlns:stream="x"><host-unknown xmlns="y"/></stream:error>']).terminate, { condition: 'host-unknown' });
    assert.deepEqual(readOutgoing(['<close xmlns="urn:ietf:params:xml:ns:xmpp-framing"/>']), { payload: [], terminate: {} });
    assert.equal(terminateBody('remote-stream-error', [error]), `<body xmlns="http://jabber.org/protocol/httpbind" type="terminate" condition="remote-stream-error" xmlns:stream="http://etherx.jabber.org/streams">${error}</body>`);
  });

  it('refuses what is not a BOSH body with bad-request (HTTP 400)', () => {
    for (const text of ['<body/>', '<message xmlns="jabber:client"/>', 'not xml', '<body xmlns="http://jabber.org/protocol/httpbind">']) {
      assert.throws(() => parseRequestBody(text), (e: unknown) => e instanceof BoshError && e.condition === 'bad-request' && e.status === 400, text);
    }
    assert.equal(parseRequestBody(`<?xml version='1.0'?><body xmlns='http://jabber.org/protocol/httpbind' rid='1'/>`).attrs.rid, '1');
  });
});

describe('overactivity (XEP-0124 §11) and polling sessions (§12)', () => {
  // hold 1, requests 2, wait 10 s, polling 2 s; request 10 arrived at t = 1000 and is held.
  const held: ActivityState = { lastRid: 10, hold: 1, requests: 2, wait: 10, polling: 2, arrivals: { '9': 0, '10': 1000 }, lastEmpty: true, rsp: {} };
  const empty = body('rid="12"');

  it('too many simultaneous requests: rid 12 while 10 is held and 11 is in flight, unless it pauses or terminates', () => {
    assert.equal(tooManyRequests(held, empty, 12, 1500), true);
    assert.equal(tooManyRequests(held, body('rid="12"', '<presence/>'), 12, 1500), true);
    assert.equal(tooManyRequests(held, body('rid="12" pause="30"'), 12, 1500), false);
    assert.equal(tooManyRequests(held, body('rid="12" type="terminate"'), 12, 1500), false);
    // 10 has had its response: with payloads, by a pause, once wait ran out, or frames are queued for it.
    assert.equal(tooManyRequests({ ...held, rsp: { '10': ['<message/>'] } }, empty, 12, 1500), false);
    assert.equal(tooManyRequests({ ...held, pauseRid: 10 }, empty, 12, 1500), false);
    assert.equal(tooManyRequests(held, empty, 12, 11_000), false);
    assert.equal(tooManyRequests({ ...held, q: ['<message/>'] }, empty, 12, 1500), false);
    // The session request is answered at once.
    assert.equal(tooManyRequests({ ...held, arrivals: {} }, empty, 12, 1500), false);
  });

  it('too frequent: an empty request within `polling` of the one before, which is still held', () => {
    assert.equal(tooFrequent(held, body('rid="11"'), 11, 2999), true);
    assert.equal(tooFrequent(held, body('rid="11"'), 11, 3000), false);
    assert.equal(tooFrequent(held, body('rid="11"', '<presence/>'), 11, 1500), false);
    assert.equal(tooFrequent(held, body('rid="11" xmpp:restart="true" xmlns:xmpp="urn:xmpp:xbosh"'), 11, 1500), false);
    assert.equal(tooFrequent(held, body('rid="11" pause="30"'), 11, 1500), false);
    assert.equal(tooFrequent({ ...held, rsp: { '10': ['<message/>'] } }, body('rid="11"'), 11, 1500), false);
    // Held until it came (it waited for its turn): arrived before the one it follows.
    assert.equal(tooFrequent(held, body('rid="11"'), 11, 900), true);
    // No polling attribute granted: any frequency.
    assert.equal(tooFrequent({ ...held, polling: 0 }, body('rid="11"'), 11, 1500), false);
  });

  it('a polling session (hold 0): two consecutive empty requests within `polling`, the first answered without payloads', () => {
    const polling: ActivityState = { lastRid: 10, hold: 0, requests: 1, wait: 10, polling: 2, arrivals: { '10': 1000 }, lastEmpty: true, rsp: {} };
    assert.equal(tooFrequent(polling, body('rid="11"'), 11, 2999), true);
    assert.equal(tooFrequent(polling, body('rid="11"'), 11, 3000), false);
    assert.equal(tooFrequent({ ...polling, lastEmpty: false }, body('rid="11"'), 11, 1500), false);
    assert.equal(tooFrequent({ ...polling, rsp: { '10': ['<message/>'] } }, body('rid="11"'), 11, 1500), false);
    assert.equal(tooFrequent(polling, body('rid="11"', '<presence/>'), 11, 1500), false);
    // After the session request (no arrival recorded).
    assert.equal(tooFrequent({ ...polling, arrivals: {} }, body('rid="11"'), 11, 1500), false);
  });
});

describe('response acknowledgements (XEP-0124 §9.2)', () => {
  it('reports the response after the acknowledged one when it was sent, with the ms since; nothing when all came or it is not kept', () => {
    const sent = (rid: number) => ({ 11: 5000 })[rid];
    assert.deepEqual(reportOf(body('rid="13" ack="10"'), 13, sent, 5852), { report: 11, time: 852 });
    assert.equal(reportOf(body('rid="13" ack="12"'), 13, sent, 5852), undefined);
    assert.equal(reportOf(body('rid="13"'), 13, sent, 5852), undefined);
    assert.equal(reportOf(body('rid="13" ack="9"'), 13, sent, 5852), undefined);
  });
});

describe('keys, more (XEP-0124 §15)', () => {
  it('compares case-insensitively, takes a repeat of a request that switched sequences, and checks a request ahead of its turn', () => {
    const k2 = 'seed';
    const k1 = sha1Hex(k2);
    assert.equal(nextKey(sha1Hex(k1).toUpperCase(), body(`rid="2" key="${k1}"`)), k1);
    // The last request carried key K(1) and newkey: the session holds newkey; its repeat carries both.
    assert.equal(repeatKeyValid('NEWKEY', body(`rid="2" key="${k1}" newkey="newkey"`), 0), true);
    assert.equal(repeatKeyValid('newkey', body(`rid="2" key="${k1}"`), 0), false);
    assert.equal(repeatKeyValid(k1, body(`rid="2" key="${k1.toUpperCase()}"`), 0), true);
    // Two ahead: its key hashes twice to the key held.
    assert.equal(aheadKeyValid(sha1Hex(k1), body(`rid="3" key="${k2}"`), 2), true);
    assert.equal(aheadKeyValid(sha1Hex(k1), body(`rid="3" key="forged"`), 2), false);
    assert.equal(aheadKeyValid(undefined, body('rid="3"'), 2), true);
  });
});

describe('BOSH function (HTTP API payload 2.0)', () => {
  it('hands the endpoint the method, lower-case headers, the decoded body and the source address, and returns its answer', async () => {
    const seen: BoshRequest[] = [];
    const endpoint = { handle: async (req: BoshRequest) => (seen.push(req), { status: 200, headers: { 'content-type': 'text/xml; charset=utf-8' }, body: '<body/>' }) } as unknown as BoshEndpoint;
    const event: HttpApiEvent = {
      version: '2.0',
      routeKey: 'POST /http-bind',
      rawPath: '/http-bind',
      rawQueryString: '',
      headers: { 'Content-Type': 'text/xml', Origin: 'https://app.example' },
      body: Buffer.from('<body rid="1"/>').toString('base64'),
      isBase64Encoded: true,
      requestContext: { http: { method: 'POST', path: '/http-bind', sourceIp: '198.51.100.7' }, stage: '$default' },
    };
    const out = await serveBosh(endpoint, event);
    assert.deepEqual(seen, [{ method: 'POST', headers: { 'content-type': 'text/xml', origin: 'https://app.example' }, body: '<body rid="1"/>', sourceIp: '198.51.100.7' }]);
    assert.deepEqual(out, { statusCode: 200, headers: { 'content-type': 'text/xml; charset=utf-8' }, body: '<body/>' });
  });
});

describe('BOSH in the Lambda wiring', () => {
  it('every function posts to bosh: endpoints through the BOSH transport and installs the bosh module; the BOSH function caps wait at 25 s and polls', () => {
    const rt = createLambdaRuntime({ TABLE_NAME: 'xmpp-edge', LOG_LEVEL: 'silent', AWS_REGION: 'eu-west-1' });
    assert.ok(rt.server.registry.modules.has('bosh'));
    assert.ok(rt.boshStore);
    assert.throws(() => boshFromEnvironment({ TABLE_NAME: 'xmpp-edge', LOG_LEVEL: 'silent' }), /FRAME_CLAIMS_TABLE is not set/);
    const { bosh } = boshFromEnvironment({ TABLE_NAME: 'xmpp-edge', FRAME_CLAIMS_TABLE: 'claims', LOG_LEVEL: 'silent', AWS_REGION: 'eu-west-1' });
    assert.equal(bosh.limits.maxWait, BOSH_MAX_WAIT_SECONDS);
    assert.equal(bosh.endpoint, 'bosh:eu-west-1');
    assert.ok(BOSH_POLL_MS < 1000, 'a stanza reaches a waiting request within a second');
  });
});
