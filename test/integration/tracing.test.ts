// X-Ray tracing of the path of one frame (docs/architecture.md "Tracing"): with the tracer of
// TRACING=true, a frame handled by the ingest inside a segment (Lambda's facade segment in AWS, one of
// the test's here) gives a "frame" subsegment annotated with the tenant and the stanza kind, and under
// it the DynamoDB calls and the PostToConnection it made. The segments reach a UDP listener on
// 127.0.0.1 that stands in for the X-Ray daemon (its protocol: a JSON header line, then the document).
// Without TRACING the X-Ray SDK is not even loaded.
// https://docs.aws.amazon.com/xray/latest/devguide/xray-api-sendingdata.html#xray-api-daemon
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import AWSXRay from 'aws-xray-sdk-core';
import { frameEnvelopeBody } from '../../lib/gateway/frame-envelope.ts';
import { LOCAL_QUEUE_ARN } from '../../lib/gateway/local-gateway.ts';
import { createXRayTracer } from '../../lib/runtime/xray-tracing.ts';
import { RawClient, type TestServer, startTestServer, until } from '../support/harness.ts';

/** A segment or subsegment document as the SDK sends it (the fields read here). */
interface XRayDoc {
  id: string;
  name: string;
  trace_id?: string;
  parent_id?: string;
  type?: string;
  annotations?: Record<string, string | number | boolean>;
  aws?: { operation?: string };
  subsegments?: XRayDoc[];
}

/** Every (sub)segment received, nested ones included, with the id of its parent. */
function flatten(docs: XRayDoc[]): (XRayDoc & { parent?: string })[] {
  const out: (XRayDoc & { parent?: string })[] = [];
  const walk = (doc: XRayDoc, parent?: string) => {
    out.push({ ...doc, parent: parent ?? doc.parent_id });
    for (const child of doc.subsegments ?? []) walk(child, doc.id);
  };
  for (const doc of docs) walk(doc);
  return out;
}

describe('X-Ray tracing of a frame (TRACING=true)', () => {
  let s: TestServer;
  let daemon: Socket;
  const received: XRayDoc[] = [];
  const clients: RawClient[] = [];

  before(async () => {
    daemon = createSocket('udp4');
    daemon.on('message', (msg) => {
      const text = msg.toString('utf8');
      const newline = text.indexOf('\n');
      assert.deepEqual(JSON.parse(text.slice(0, newline)), { format: 'json', version: 1 });
      received.push(JSON.parse(text.slice(newline + 1)) as XRayDoc);
    });
    await new Promise<void>((resolve) => daemon.bind(0, '127.0.0.1', resolve));
    AWSXRay.setDaemonAddress(`127.0.0.1:${daemon.address().port}`);
    // Posts over the SDK, as in AWS (npm start makes its own gateway's in-process, where no SDK call is
    // left to trace).
    s = await startTestServer({ tracer: createXRayTracer(), loopbackHttp: true });
    await s.addUser('alice@localhost');
    await s.addUser('bob@localhost');
  });
  after(async () => {
    for (const c of clients) c.ws.close();
    await s.stop();
    daemon.close();
  });

  async function login(user: string): Promise<{ c: RawClient; id: string }> {
    const r = await RawClient.loggedIn(s, user);
    clients.push(r.c);
    return r;
  }

  it('a frame is a subsegment annotated with tenant and kind, its DynamoDB calls and its post under it', async () => {
    const alice = await login('alice');
    const bob = await login('bob');
    await s.gateway.idle();
    // Frames handled outside any segment (the gateway's own, above) were not traced, and nothing failed.
    assert.equal(received.length, 0);

    const message = `<message xmlns="jabber:client" to="bob@localhost/raw" type="chat" id="traced-1"><body>hello</body></message>`;
    const record = {
      messageId: randomUUID(),
      body: frameEnvelopeBody({ connectionId: alice.id, messageId: 'TracedMessage00=', requestId: 'TracedReq000000=', requestTimeEpoch: Date.now(), domainName: s.gateway.domainName, stage: 'local' }, message),
      attributes: { MessageGroupId: alice.id, ApproximateReceiveCount: '1' },
      eventSourceARN: LOCAL_QUEUE_ARN,
    };
    // The ingest invocation's segment, as Lambda's facade segment is in AWS.
    const invocation = new AWSXRay.Segment('xmpp-edge-ingest');
    const ns = AWSXRay.getNamespace();
    const cost = await s.cost(async () => {
      const result = await ns.runAndReturn(() => {
        AWSXRay.setSegment(invocation);
        return s.ingest({ Records: [record] });
      });
      assert.deepEqual(result, { batchItemFailures: [] });
      invocation.close();
      await bob.c.next((el) => el.name === 'message' && el.attrs.id === 'traced-1');
    });
    // Tracing adds no call: the 1:1 message costs what README "Cost per operation" says.
    assert.deepEqual({ reads: cost.reads, writes: cost.writes, posts: cost.posts }, { reads: 2, writes: 1, posts: 1 }, JSON.stringify(cost.calls));

    const all = () => flatten(received);
    const frame = await until('the frame subsegment at the daemon', () => all().find((d) => d.name === 'frame' && d.parent === invocation.id), () => received);
    assert.ok(frame);
    assert.deepEqual(frame.annotations, { tenant: 'localhost', kind: 'message:chat', outcome: 'ok' });
    const children = () => all().filter((d) => d.parent === frame.id);
    await until('the DynamoDB and post subsegments', () => children().some((d) => d.name === 'ApiGatewayManagementApi'), () => received);
    const dynamo = children().filter((d) => d.name === 'DynamoDB');
    // The recipient's session is read under the frame (and the archive's writes are there too).
    assert.ok(dynamo.some((d) => d.aws?.operation === 'GetItem'), JSON.stringify(dynamo.map((d) => d.aws?.operation)));
    const posts = children().filter((d) => d.name === 'ApiGatewayManagementApi');
    assert.deepEqual(posts.map((d) => d.aws?.operation), ['PostToConnection']);
    // Every counted call of the frame is a subsegment under it, and nothing else is: the recipient's
    // session, both archives' preferences, both archive items in one call.
    assert.equal(dynamo.length, cost.reads + cost.writes, JSON.stringify(dynamo.map((d) => d.aws?.operation)));
    assert.deepEqual(dynamo.map((d) => d.aws?.operation).sort(), ['BatchGetItem', 'BatchWriteItem', 'GetItem']);
  });
});

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Whether createLambdaRuntime with this TRACING value loads the X-Ray SDK, in a fresh process. */
async function sdkLoaded(tracing: string | undefined): Promise<{ loaded: boolean; tracer: boolean }> {
  const script = `
    import { createRequire } from 'node:module';
    const { createLambdaRuntime } = await import(${JSON.stringify(`${ROOT}lib/runtime/lambda.ts`)});
    const env = { TABLE_NAME: 't', LOG_LEVEL: 'silent', AWS_REGION: 'eu-west-1' };
    if (process.argv[1] !== '-') env.TRACING = process.argv[1];
    const rt = createLambdaRuntime(env);
    await rt.ready;
    const loaded = Object.keys(createRequire(import.meta.url).cache).some((p) => p.includes('aws-xray-sdk-core'));
    console.log(JSON.stringify({ loaded, tracer: rt.tracer !== undefined }));`;
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, tracing ?? '-'], { cwd: ROOT });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as { loaded: boolean; tracer: boolean };
}

describe('the X-Ray SDK is loaded only with TRACING=true', () => {
  it('off (unset or false): not loaded, no tracer', async () => {
    assert.deepEqual(await sdkLoaded(undefined), { loaded: false, tracer: false });
    assert.deepEqual(await sdkLoaded('false'), { loaded: false, tracer: false });
  });
  it('on: loaded before the first invocation runs', async () => {
    assert.deepEqual(await sdkLoaded('true'), { loaded: true, tracer: true });
  });
});

describe('in a Lambda environment (TRACING=true, active tracing)', () => {
  it('a frame\'s subsegment goes to the daemon under the trace and parent Lambda gives the invocation', async () => {
    const daemon = createSocket('udp4');
    const docs: XRayDoc[] = [];
    daemon.on('message', (msg) => docs.push(JSON.parse(msg.toString('utf8').split('\n')[1]) as XRayDoc));
    await new Promise<void>((resolve) => daemon.bind(0, '127.0.0.1', resolve));
    try {
      const traceId = '1-6a0c1e00-0123456789abcdef01234567';
      const script = `
        const { createLambdaRuntime } = await import(${JSON.stringify(`${ROOT}lib/runtime/lambda.ts`)});
        const rt = createLambdaRuntime({ TABLE_NAME: 't', LOG_LEVEL: 'silent', AWS_REGION: 'eu-west-1', TRACING: 'true' });
        await rt.ready;
        await rt.server.metrics.run({}, () => rt.tracer.trace('frame', { tenant: 'a.example', kind: 'iq:get' }, async () => {}));`;
      // What Lambda sets for an invocation with active tracing (the daemon's address, the trace header).
      const env = { ...process.env, LAMBDA_TASK_ROOT: ROOT, AWS_XRAY_DAEMON_ADDRESS: `127.0.0.1:${daemon.address().port}`, _X_AMZN_TRACE_ID: `Root=${traceId};Parent=53995c3f42cd8ad8;Sampled=1` };
      await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, env });
      const frame = await until('the frame subsegment', () => docs.find((d) => d.name === 'frame'), () => docs);
      assert.ok(frame);
      assert.deepEqual([frame.type, frame.trace_id, frame.parent_id], ['subsegment', traceId, '53995c3f42cd8ad8']);
      assert.deepEqual(frame.annotations, { tenant: 'a.example', kind: 'iq:get', outcome: 'ok' });
    } finally {
      daemon.close();
    }
  });
});
