// The contract between the $default route's mapping template and the ingest: the template, rendered
// by a Velocity engine with API Gateway's $context/$util/$input, gives an SQS SendMessage request whose
// message body parseFrameEnvelope() reads back to the exact frame, whatever characters it holds; and
// frameEnvelopeBody(), which the local gateway sends instead of rendering the template, gives the same.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { render } from 'velocityjs';
import { frameEnvelopeBody, frameToSqsTemplate, parseFrameEnvelope } from '../../lib/gateway/frame-envelope.ts';

/** API Gateway's $util as far as the template uses it; urlEncode is Java's URLEncoder (space → '+'). */
const util = {
  urlEncode: (s: unknown) => encodeURIComponent(String(s)).replace(/%20/g, '+').replace(/[!'()~]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase()),
  base64Encode: (s: unknown) => Buffer.from(String(s), 'utf8').toString('base64'),
};

const context = {
  connectionId: 'Ab1CdEfGhIkCFwA=',
  messageId: 'Ib0f_cLRIAMFb5A=',
  requestId: 'Ib0f_FqSIAMF4ig=',
  requestTimeEpoch: 1764086400123,
  domainName: 'abc123defg.execute-api.eu-west-1.amazonaws.com',
  stage: 'xmpp',
  eventType: 'MESSAGE',
};

/** What SQS receives: the rendered template, decoded as application/x-www-form-urlencoded. */
function sendMessageFor(frame: string): URLSearchParams {
  return new URLSearchParams(render(frameToSqsTemplate(), { context, util, input: { body: frame } }));
}

describe('frame envelope: $default mapping template → SQS → ingest', () => {
  it('is a SendMessage grouped by connection and deduplicated by API Gateway message id', () => {
    const req = sendMessageFor("<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>");
    assert.equal(req.get('Action'), 'SendMessage');
    assert.equal(req.get('MessageGroupId'), context.connectionId);
    assert.equal(req.get('MessageDeduplicationId'), context.messageId);
    assert.deepEqual([...req.keys()].sort(), ['Action', 'MessageBody', 'MessageDeduplicationId', 'MessageGroupId']);
  });

  const frames: [string, string][] = [
    ['apostrophes (escapeJavaScript would make \\\' , which is not JSON)', "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>"],
    ['double quotes and backslashes', '<message to="a@b"><body>say "hi" \\o/</body></message>'],
    ['form-encoding metacharacters', "<message><body>1+1=2 & 100% ; a=b&c=d</body></message>"],
    ['non-ASCII text', '<message><body>café ☕ Привет 你好 🎉</body></message>'],
    ['newlines and tabs', '<iq type="get" id="1">\n\t<ping xmlns="urn:xmpp:ping"/>\n</iq>'],
    ['text that looks like JSON', '{"action":"sendmessage","data":"x"}'],
    ['an empty frame', ''],
  ];
  for (const [what, frame] of frames) {
    it(`renders, for ${what}, the body the local gateway builds`, () => {
      const rendered = sendMessageFor(frame).get('MessageBody')!;
      const local = frameEnvelopeBody(context, frame);
      assert.deepEqual(JSON.parse(local), JSON.parse(rendered));
      // Byte for byte, even: same fields, same order, and API Gateway ids and names need no JSON escaping.
      assert.equal(local, rendered);
      assert.deepEqual(parseFrameEnvelope(local), parseFrameEnvelope(rendered));
      // The frame's bytes (a binary message) give the same envelope as its text.
      assert.deepEqual(parseFrameEnvelope(frameEnvelopeBody(context, Buffer.from(frame, 'utf8'))), parseFrameEnvelope(rendered));
    });

    it(`carries ${what} unchanged`, () => {
      const envelope = parseFrameEnvelope(sendMessageFor(frame).get('MessageBody')!);
      assert.deepEqual(envelope, {
        connectionId: context.connectionId,
        messageId: context.messageId,
        requestId: context.requestId,
        requestTimeEpoch: context.requestTimeEpoch,
        domainName: context.domainName,
        stage: context.stage,
        body: frame,
      });
    });
  }

  it('keeps a 32 KB frame (API Gateway\'s frame limit) within SQS\'s 256 KB message limit', () => {
    const frame = `<message><body>${'€'.repeat(32 * 1024 / 3)}</body></message>`;
    const body = sendMessageFor(frame).get('MessageBody')!;
    assert.ok(Buffer.byteLength(body) < 256 * 1024);
    assert.equal(parseFrameEnvelope(body).body, frame);
  });

  it('refuses a message body that is not an envelope', () => {
    assert.throws(() => parseFrameEnvelope('<presence/>'), SyntaxError);
    assert.throws(() => parseFrameEnvelope('{"connectionId":"x"}'), /messageId is missing|body64/);
    assert.throws(
      () => parseFrameEnvelope(JSON.stringify({ connectionId: 'c', messageId: 'm', requestId: 'r', requestTimeEpoch: 'soon', domainName: 'd', stage: 's', body64: '' })),
      /requestTimeEpoch/,
    );
  });
});
