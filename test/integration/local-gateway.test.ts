// The local gateway against real `ws` clients and the real API Gateway management client: event shapes,
// $default as SQS FIFO records for the ingest (envelope, order, redelivery, dead letters), RFC 7395 §3.3
// subprotocol echo, @connections, API Gateway's limits, stop().

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import { pino } from 'pino';
import {
  ApiGatewayManagementApiClient,
  DeleteConnectionCommand,
  GetConnectionCommand,
  PostToConnectionCommand,
} from '@aws-sdk/client-apigatewaymanagementapi';
import { INGEST_BATCH_SIZE, LOCAL_MAX_RECEIVE_COUNT, LOCAL_QUEUE_ARN, LocalGateway, managementAllowedFrom } from '../../lib/gateway/local-gateway.ts';
import type { LocalGatewayOptions } from '../../lib/gateway/local-gateway.ts';
import type { WebSocketEvent, WebSocketHandler, WebSocketResult } from '../../lib/gateway/events.ts';
import { type FrameEnvelope, parseFrameEnvelope } from '../../lib/gateway/frame-envelope.ts';
import { type SqsEvent, type SqsRecord, batchItemFailures } from '../../lib/gateway/ingest.ts';

const ID = /^[A-Za-z0-9]{15}=$/;
const REQUEST_TIME = /^\d{2}\/[A-Z][a-z]{2}\/\d{4}:\d{2}:\d{2}:\d{2} \+0000$/;

interface Harness {
  gw: LocalGateway;
  url: string;
  managementEndpoint: string;
  port: number;
  /** $connect and $disconnect events. */
  events: WebSocketEvent[];
  /** $default: every SQS record the ingest was handed (a redelivery again), with its envelope read back. */
  frames: Frame[];
  /** The ingest invocations. */
  batches: SqsEvent[];
  logs: Array<{ level: number; msg: string; [k: string]: unknown }>;
  sdk: ApiGatewayManagementApiClient;
  of(type: 'CONNECT' | 'DISCONNECT', connectionId?: string): WebSocketEvent[];
  bodies(connectionId?: string): string[];
}

interface Frame {
  record: SqsRecord;
  envelope: FrameEnvelope;
}

interface HarnessOptions extends Partial<Omit<LocalGatewayOptions, 'handlers'>> {
  connect?: (e: WebSocketEvent, h: Harness) => Promise<WebSocketResult | void>;
  /** Handles one frame in the harness's ingest; a throw fails that record (and hands back the rest of the batch). */
  message?: (f: Frame, h: Harness) => Promise<void>;
  disconnect?: (e: WebSocketEvent, h: Harness) => Promise<void>;
}

async function harness(t: { after(fn: () => Promise<void> | void): void }, o: HarnessOptions = {}): Promise<Harness> {
  const events: WebSocketEvent[] = [];
  const frames: Frame[] = [];
  const batches: SqsEvent[] = [];
  const logs: Harness['logs'] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void logs.push(JSON.parse(line)) });
  const record =
    (fn?: (e: WebSocketEvent, h: Harness) => Promise<WebSocketResult | void>, fallback?: WebSocketResult): WebSocketHandler =>
    async (e) => {
      events.push(e);
      return fn ? fn(e, h) : fallback;
    };
  const { connect, message, disconnect, ...rest } = o;
  // An ingest with the deployed one's batch contract: records in order, stop at the first failure.
  const ingest = async (event: SqsEvent) => {
    batches.push(event);
    const failed = new Set<string>();
    for (const r of event.Records) {
      const frame = { record: r, envelope: parseFrameEnvelope(r.body) };
      frames.push(frame);
      try {
        await message?.(frame, h);
      } catch {
        failed.add(r.messageId);
        break;
      }
    }
    return batchItemFailures(event.Records, failed);
  };
  const gw = new LocalGateway({
    port: 0,
    logger,
    ingest,
    ...rest,
    handlers: {
      connect: record(connect, { statusCode: 200, headers: { 'Sec-WebSocket-Protocol': 'xmpp' } }),
      disconnect: record(disconnect),
    },
  });
  const { url, managementEndpoint, port } = await gw.start();
  const sdk = new ApiGatewayManagementApiClient({
    endpoint: managementEndpoint,
    region: 'local',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  const h: Harness = {
    gw, url, managementEndpoint, port, events, frames, batches, logs, sdk,
    of: (type, id) => events.filter((e) => e.requestContext.eventType === type && (!id || e.requestContext.connectionId === id)),
    bodies: (id) => frames.filter((f) => !id || f.envelope.connectionId === id).map((f) => f.envelope.body),
  };
  t.after(async () => {
    await gw.stop();
    sdk.destroy();
  });
  return h;
}

/** An open client and the connection id the gateway gave it. */
async function open(h: Harness, opts: { protocols?: string[]; query?: string; headers?: Record<string, string> } = {}) {
  const ws = new WebSocket(h.url + (opts.query ?? ''), opts.protocols ?? ['xmpp'], { headers: opts.headers });
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  const received: string[] = [];
  ws.on('message', (data) => received.push(data.toString()));
  const before = new Set(h.of('CONNECT').map((e) => e.requestContext.connectionId));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  const connect = h.of('CONNECT').find((e) => !before.has(e.requestContext.connectionId));
  assert.ok(connect, 'a $connect event for the new connection');
  return { ws, id: connect.requestContext.connectionId, closed, received };
}

/**
 * Polls until `check` holds (the events are recorded by the handlers, which have no other signal). The
 * deadline only bounds a failing test, so it is generous: a loaded machine must not fail a passing one.
 */
async function until(check: () => boolean, what = 'condition', ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** The HTTP status a refused upgrade answered with, and the subprotocol header of the handshake response. */
function handshake(url: string, protocols: string[]): Promise<{ status?: number; protocol?: string; opened: boolean }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, protocols);
    let protocol: string | undefined;
    ws.on('upgrade', (res: IncomingMessage) => (protocol = res.headers['sec-websocket-protocol'] as string | undefined));
    ws.on('unexpected-response', (_req, res) => {
      resolve({ status: res.statusCode, opened: false });
      res.resume();
      ws.terminate();
    });
    ws.on('open', () => {
      resolve({ protocol, opened: true });
      ws.close();
    });
    ws.on('error', () => resolve({ protocol, opened: false }));
  });
}

test('$connect and $disconnect events have API Gateway’s shape; $default frames are SQS FIFO records', async (t) => {
  const h = await harness(t);
  const opening = Date.now();
  const c = await open(h, { query: '?a=1&a=2&b=x', headers: { 'User-Agent': 'test-agent/1.0' } });
  const opened = Date.now();
  assert.deepEqual(h.gw.connectionIds(), [c.id]);

  const connect = h.of('CONNECT')[0];
  const rc = connect.requestContext;
  assert.equal(rc.routeKey, '$connect');
  assert.equal(rc.eventType, 'CONNECT');
  assert.match(rc.connectionId, ID);
  assert.match(rc.requestId, ID);
  assert.match(rc.extendedRequestId, ID);
  assert.match(rc.requestTime, REQUEST_TIME);
  assert.equal(typeof rc.requestTimeEpoch, 'number');
  assert.ok(rc.requestTimeEpoch >= opening && rc.requestTimeEpoch <= opened, 'the time of the request');
  assert.equal(typeof rc.connectedAt, 'number');
  assert.equal(rc.domainName, `127.0.0.1:${h.port}`);
  assert.equal(h.gw.domainName, rc.domainName);
  assert.equal(rc.stage, 'local');
  assert.equal(rc.apiId, 'local');
  assert.equal(rc.messageDirection, 'IN');
  assert.deepEqual(rc.identity, { sourceIp: '127.0.0.1', userAgent: 'test-agent/1.0' });
  assert.equal(rc.messageId, undefined);
  assert.equal(connect.isBase64Encoded, false);
  assert.equal(connect.body, undefined);
  assert.equal(connect.headers?.['Sec-WebSocket-Protocol'], 'xmpp');
  assert.equal(connect.headers?.['Host'], `127.0.0.1:${h.port}`);
  assert.equal(connect.headers?.['User-Agent'], 'test-agent/1.0');
  assert.equal(connect.headers?.['Sec-WebSocket-Version'], '13');
  assert.equal(connect.headers?.['X-Forwarded-For'], '127.0.0.1');
  assert.deepEqual(connect.multiValueHeaders?.['Sec-WebSocket-Protocol'], ['xmpp']);
  assert.deepEqual(connect.queryStringParameters, { a: '2', b: 'x' });
  assert.deepEqual(connect.multiValueQueryStringParameters, { a: ['1', '2'], b: ['x'] });

  c.ws.send('<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="localhost" version="1.0"/>');
  c.ws.send('<presence/>');
  await until(() => h.frames.length === 2, 'two frames');
  const [text, second] = h.frames;
  // The record as Lambda's SQS event source hands it over: one message group per connection.
  assert.equal(text.record.attributes.MessageGroupId, c.id);
  assert.equal(text.record.attributes.ApproximateReceiveCount, '1');
  assert.equal(text.record.attributes.MessageDeduplicationId, text.envelope.messageId);
  assert.equal(text.record.eventSourceARN, LOCAL_QUEUE_ARN);
  assert.notEqual(text.record.messageId, second.record.messageId);
  // The envelope the $default mapping template renders.
  assert.equal(text.envelope.connectionId, c.id);
  assert.match(text.envelope.messageId, ID);
  assert.match(text.envelope.requestId, ID);
  assert.notEqual(text.envelope.messageId, second.envelope.messageId);
  assert.ok(text.envelope.requestTimeEpoch >= rc.connectedAt, 'the request time follows the connection time');
  assert.equal(text.envelope.domainName, rc.domainName);
  assert.equal(text.envelope.stage, 'local');
  assert.equal(text.envelope.body, '<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="localhost" version="1.0"/>');
  assert.equal(second.envelope.body, '<presence/>');

  c.ws.close(1000, 'bye');
  await until(() => h.of('DISCONNECT').length === 1, '$disconnect');
  const d = h.of('DISCONNECT')[0].requestContext;
  assert.equal(d.routeKey, '$disconnect');
  assert.equal(d.eventType, 'DISCONNECT');
  assert.equal(d.connectionId, c.id);
  assert.equal(d.disconnectStatusCode, 1000);
  assert.equal(d.disconnectReason, 'bye');
  assert.match(d.requestTime, REQUEST_TIME);
  assert.deepEqual(h.gw.connectionIds(), []);
  assert.ok(h.logs.some((l) => l.msg === 'connect' && l.connectionId === c.id));
  assert.ok(h.logs.some((l) => l.msg === 'disconnect' && l.connectionId === c.id && l.code === 1000));
});

test('a binary message closes with 1003 as API Gateway does; neither it nor later ones reach the ingest (RFC 7395 §3.2)', async (t) => {
  const h = await harness(t);
  const c = await open(h);
  c.ws.send('<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="localhost" version="1.0"/>');
  // A stream opened in a binary frame, then text that would be handled if the binary one were let through.
  c.ws.send(Buffer.from('<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="localhost" version="1.0"/>'));
  c.ws.send('<presence/>');
  await until(() => h.of('DISCONNECT', c.id).length === 1, '$disconnect');
  assert.equal((await c.closed).code, 1003);
  await h.gw.idle();
  assert.deepEqual(h.bodies(c.id), ['<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="localhost" version="1.0"/>'], 'only the text frame before it');
  const d = h.of('DISCONNECT', c.id)[0].requestContext;
  assert.equal(d.disconnectStatusCode, 1003);
  assert.deepEqual(h.gw.connectionIds(), []);
  assert.ok(h.logs.some((l) => l.msg === 'binary frame refused' && l.connectionId === c.id), 'an operator sees why');
});

test('the subprotocol echoed is exactly what $connect returned (RFC 7395 §3.3)', async (t) => {
  let reply: WebSocketResult | void = { statusCode: 200, headers: { 'sec-websocket-protocol': 'xmpp' } };
  const h = await harness(t, { connect: async () => reply });

  const c = await open(h, { protocols: ['xmpp'] });
  assert.equal(c.ws.protocol, 'xmpp');
  c.ws.close();

  reply = { statusCode: 200 };
  // ws (like browsers) fails a handshake that offered a subprotocol and got none back.
  assert.deepEqual(await handshake(h.url, ['xmpp']), { protocol: undefined, opened: false });
  assert.deepEqual(await handshake(h.url, []), { protocol: undefined, opened: true });
  await until(() => h.of('DISCONNECT').length === 3, 'three $disconnects');
});

test('a non-2xx, missing or failing $connect refuses the upgrade with that status', async (t) => {
  let reply: () => Promise<WebSocketResult | void> = async () => ({ statusCode: 403, body: 'forbidden' });
  const h = await harness(t, { connect: () => reply() });
  assert.deepEqual(await handshake(h.url, ['xmpp']), { status: 403, opened: false });
  reply = async () => undefined;
  assert.deepEqual(await handshake(h.url, ['xmpp']), { status: 502, opened: false });
  reply = async () => {
    throw new Error('boom');
  };
  assert.deepEqual(await handshake(h.url, ['xmpp']), { status: 500, opened: false });
  await h.gw.idle();
  assert.equal(h.of('CONNECT').length, 3);
  assert.equal(h.of('DISCONNECT').length, 0, 'no $disconnect for a connection that was never made');
  assert.deepEqual(h.gw.connectionIds(), []);
  assert.ok(h.logs.some((l) => l.level === 50 && l.routeKey === '$connect'));
});

test('one connection’s frames are handled in order, one at a time; connections run concurrently', async (t) => {
  const active = new Map<string, number>();
  let maxPerConnection = 0;
  let global = 0;
  let maxGlobal = 0;
  // a0's handler waits until b0's has started: proof that two connections run at once, however slow the machine.
  let b0Started!: () => void;
  const b0 = new Promise<void>((resolve) => (b0Started = resolve));
  const h = await harness(t, {
    message: async (f) => {
      const id = f.envelope.connectionId;
      active.set(id, (active.get(id) ?? 0) + 1);
      global++;
      maxPerConnection = Math.max(maxPerConnection, active.get(id)!);
      maxGlobal = Math.max(maxGlobal, global);
      if (f.envelope.body === 'b0') b0Started();
      if (f.envelope.body === 'a0') await b0;
      else await sleep(Math.random() * 4);
      active.set(id, active.get(id)! - 1);
      global--;
    },
  });
  const a = await open(h);
  const b = await open(h);
  for (let i = 0; i < 50; i++) {
    a.ws.send(`a${i}`);
    b.ws.send(`b${i}`);
  }
  await until(() => h.frames.length === 100, '100 frames');
  await h.gw.idle();
  assert.deepEqual(h.bodies(a.id), Array.from({ length: 50 }, (_, i) => `a${i}`));
  assert.deepEqual(h.bodies(b.id), Array.from({ length: 50 }, (_, i) => `b${i}`));
  assert.equal(maxPerConnection, 1);
  assert.ok(maxGlobal >= 2, 'two connections overlap');
  // Batches of one message group each, at most a FIFO batch's worth.
  for (const batch of h.batches) {
    assert.ok(batch.Records.length >= 1 && batch.Records.length <= INGEST_BATCH_SIZE);
    assert.equal(new Set(batch.Records.map((r) => r.attributes.MessageGroupId)).size, 1);
  }
});

test('a frame the ingest hands back is redelivered, then dead-lettered; the next frame is still handled', async (t) => {
  const h = await harness(t, {
    message: async (f) => {
      if (f.envelope.body === 'boom') throw new Error('handler exploded');
    },
  });
  const c = await open(h);
  c.ws.send('boom');
  await until(() => h.logs.some((l) => l.msg === 'frame dead-lettered'), 'dead letter');
  c.ws.send('after');
  await until(() => h.bodies().includes('after'), 'next frame');
  await h.gw.idle();
  assert.deepEqual(h.bodies(), [...Array(LOCAL_MAX_RECEIVE_COUNT).fill('boom'), 'after']);
  // The same SQS message each time, its receive count raised.
  const booms = h.frames.filter((f) => f.envelope.body === 'boom');
  assert.equal(new Set(booms.map((f) => f.record.messageId)).size, 1);
  assert.deepEqual(booms.map((f) => f.record.attributes.ApproximateReceiveCount), booms.map((_, i) => String(i + 1)));
  const dead = h.logs.find((l) => l.level === 50 && l.msg === 'frame dead-lettered');
  assert.ok(dead);
  assert.equal(dead.routeKey, '$default');
  assert.equal(dead.connectionId, c.id);
  assert.equal(dead.sqsMessageId, booms[0].record.messageId);
  assert.equal(c.ws.readyState, WebSocket.OPEN);
});

test('an ingest invocation that throws has its whole batch redelivered', async (t) => {
  const calls: SqsEvent[] = [];
  const h = await harness(t, {
    ingest: async (event) => {
      calls.push(event);
      if (calls.length === 1) throw new Error('container crashed');
      return { batchItemFailures: [] };
    },
  });
  const c = await open(h);
  c.ws.send('once');
  await until(() => calls.length === 2, 'redelivery');
  await h.gw.idle();
  assert.deepEqual(calls.map((e) => e.Records.map((r) => r.attributes.ApproximateReceiveCount)), [['1'], ['2']]);
  assert.equal(calls[1].Records[0].messageId, calls[0].Records[0].messageId);
  assert.equal(parseFrameEnvelope(calls[1].Records[0].body).body, 'once');
  assert.ok(h.logs.some((l) => l.level === 50 && l.msg === 'ingest failed: the whole batch is redelivered' && l.connectionId === c.id));
  assert.ok(!h.logs.some((l) => l.msg === 'frame dead-lettered'));
});

test('@connections: PostToConnection, GetConnection, DeleteConnection with the real SDK client', async (t) => {
  const h = await harness(t, { limits: { maxMessageBytes: 1024 } });
  const c = await open(h, { headers: { 'User-Agent': 'sdk-test' } });

  const post = await h.sdk.send(new PostToConnectionCommand({ ConnectionId: c.id, Data: '<message>hi</message>' }));
  assert.equal(post.$metadata.httpStatusCode, 200);
  await until(() => c.received.length === 1, 'pushed message');
  assert.deepEqual(c.received, ['<message>hi</message>']);

  c.ws.send('activity');
  await until(() => h.frames.length === 1, 'frame');
  const info = await h.sdk.send(new GetConnectionCommand({ ConnectionId: c.id }));
  assert.ok(info.ConnectedAt instanceof Date);
  assert.ok(info.LastActiveAt instanceof Date);
  assert.equal(info.ConnectedAt.getTime(), h.of('CONNECT')[0].requestContext.connectedAt);
  assert.ok(info.LastActiveAt.getTime() >= info.ConnectedAt.getTime());
  assert.deepEqual(info.Identity, { SourceIp: '127.0.0.1', UserAgent: 'sdk-test' });

  // The same API without the stage prefix.
  const raw = await fetch(`http://127.0.0.1:${h.port}/@connections/${encodeURIComponent(c.id)}`);
  assert.equal(raw.status, 200);
  assert.equal(((await raw.json()) as { identity: { sourceIp: string } }).identity.sourceIp, '127.0.0.1');

  await assert.rejects(
    h.sdk.send(new PostToConnectionCommand({ ConnectionId: c.id, Data: 'x'.repeat(1025) })),
    (err: Error & { $metadata: { httpStatusCode: number } }) => err.name === 'PayloadTooLargeException' && err.$metadata.httpStatusCode === 413,
  );

  const del = await h.sdk.send(new DeleteConnectionCommand({ ConnectionId: c.id }));
  assert.equal(del.$metadata.httpStatusCode, 204);
  assert.equal((await c.closed).code, 1000);
  await until(() => h.of('DISCONNECT').length === 1, '$disconnect');
  assert.equal(h.of('DISCONNECT')[0].requestContext.disconnectStatusCode, 1000);

  const isGone = (err: Error & { $metadata: { httpStatusCode: number } }) =>
    err.name === 'GoneException' && err.$metadata.httpStatusCode === 410;
  await assert.rejects(h.sdk.send(new PostToConnectionCommand({ ConnectionId: c.id, Data: 'late' })), isGone);
  await assert.rejects(h.sdk.send(new GetConnectionCommand({ ConnectionId: c.id })), isGone);
  await assert.rejects(h.sdk.send(new DeleteConnectionCommand({ ConnectionId: c.id })), isGone);
  await assert.rejects(h.sdk.send(new PostToConnectionCommand({ ConnectionId: 'AAAAAAAAAAAAAAA=', Data: 'x' })), isGone);

  const goneRaw = await fetch(`${h.managementEndpoint}/@connections/nope`, { method: 'POST', body: 'x' });
  assert.equal(goneRaw.status, 410);
  assert.equal(goneRaw.headers.get('x-amzn-errortype'), 'GoneException');
  assert.deepEqual(await goneRaw.json(), { message: null });
});

test('posting during $connect is 410 Gone: the connection is not established yet', async (t) => {
  let during: string | undefined;
  const h = await harness(t, {
    connect: async (e, h) => {
      try {
        await h.sdk.send(new PostToConnectionCommand({ ConnectionId: e.requestContext.connectionId, Data: 'early' }));
        during = 'delivered';
      } catch (err) {
        during = (err as Error).name;
      }
      return { statusCode: 200, headers: { 'Sec-WebSocket-Protocol': 'xmpp' } };
    },
  });
  const c = await open(h);
  assert.equal(during, 'GoneException');
  await h.sdk.send(new PostToConnectionCommand({ ConnectionId: c.id, Data: 'now' }));
  await until(() => c.received.length === 1, 'message after open');
  assert.deepEqual(c.received, ['now']);
});

test('a frame over maxFrameBytes closes with 1009; earlier frames are still handled', async (t) => {
  const h = await harness(t, { limits: { maxFrameBytes: 1024, maxMessageBytes: 4096 } });
  const c = await open(h);
  // A message of three frames, each under the frame limit, together over it: allowed.
  c.ws.send('a'.repeat(1000), { fin: false });
  c.ws.send('b'.repeat(1000), { fin: false });
  c.ws.send('c'.repeat(1000), { fin: true });
  c.ws.send('small');
  c.ws.send('x'.repeat(2000)); // one 2000-byte frame
  c.ws.send('never handled');
  const closed = await c.closed;
  assert.equal(closed.code, 1009);
  await until(() => h.of('DISCONNECT').length === 1, '$disconnect');
  await h.gw.idle();
  assert.deepEqual(h.bodies(), ['a'.repeat(1000) + 'b'.repeat(1000) + 'c'.repeat(1000), 'small']);
  const d = h.of('DISCONNECT')[0].requestContext;
  assert.equal(d.disconnectStatusCode, 1009);
  assert.equal(d.disconnectReason, 'Message too big');
});

test('a message over maxMessageBytes closes with 1009 even when every frame is small', async (t) => {
  const h = await harness(t, { limits: { maxFrameBytes: 1024, maxMessageBytes: 4096 } });
  const c = await open(h);
  c.ws.send('ok');
  for (let i = 0; i < 5; i++) c.ws.send('y'.repeat(1000), { fin: i === 4 });
  assert.equal((await c.closed).code, 1009);
  await until(() => h.of('DISCONNECT').length === 1, '$disconnect');
  await h.gw.idle();
  assert.deepEqual(h.bodies(), ['ok']);
  assert.equal(h.of('DISCONNECT')[0].requestContext.disconnectStatusCode, 1009);
});

test('idle timeout closes with 1001; messages keep a connection alive, pings do not', async (t) => {
  // A short configured limit; the keepalives come 20 times as often, so only a stalled process could miss one.
  const h = await harness(t, { limits: { idleTimeoutMs: 1000 } });
  const talker = await open(h);
  const pinger = await open(h);
  const silent = await open(h);
  const timer = setInterval(() => {
    talker.ws.send('keepalive');
    pinger.ws.ping();
  }, 50);
  t.after(() => clearInterval(timer));

  const [silentClose, pingerClose] = await Promise.all([silent.closed, pinger.closed]);
  assert.deepEqual(silentClose, { code: 1001, reason: 'Going away' });
  assert.equal(pingerClose.code, 1001);
  for (const c of [silent, pinger]) assert.ok(h.logs.some((l) => l.msg === 'closing connection' && l.connectionId === c.id && l.why === 'idle timeout'));
  // The talker opened first, so it has outlived the idle limit: its messages kept it open.
  assert.equal(talker.ws.readyState, WebSocket.OPEN, 'a client that sends messages stays connected');
  clearInterval(timer);

  await until(() => h.of('DISCONNECT').length === 2, 'two $disconnects');
  for (const id of [silent.id, pinger.id]) {
    const d = h.of('DISCONNECT', id)[0].requestContext;
    assert.equal(d.disconnectStatusCode, 1001);
    assert.equal(d.disconnectReason, 'Going away');
  }
  assert.deepEqual(h.gw.connectionIds(), [talker.id]);
});

test('maximum duration closes an active connection with 1001', async (t) => {
  const h = await harness(t, { limits: { maxDurationMs: 300 } });
  const c = await open(h);
  const timer = setInterval(() => c.ws.readyState === WebSocket.OPEN && c.ws.send('busy'), 40);
  t.after(() => clearInterval(timer));
  assert.equal((await c.closed).code, 1001);
  clearInterval(timer);
  assert.ok(h.logs.some((l) => l.msg === 'closing connection' && l.connectionId === c.id && l.why === 'maximum duration'));
  await until(() => h.of('DISCONNECT').length === 1, '$disconnect');
  assert.equal(h.of('DISCONNECT')[0].requestContext.disconnectStatusCode, 1001);
  assert.ok(h.frames.length >= 1, 'the connection was active');
});

test('dropDisconnect never invokes $disconnect', async (t) => {
  const h = await harness(t, { dropDisconnect: true });
  const c = await open(h);
  c.ws.send('hello');
  c.ws.close(1000);
  await c.closed;
  await until(() => h.gw.connectionIds().length === 0, 'connection gone');
  await h.gw.idle();
  assert.equal(h.frames.length, 1);
  assert.equal(h.of('DISCONNECT').length, 0);
});

test('$disconnect runs after the connection’s pending frames', async (t) => {
  const trace: string[] = [];
  const h = await harness(t, {
    message: async (f) => {
      trace.push(`start ${f.envelope.body}`);
      await sleep(20);
      trace.push(`end ${f.envelope.body}`);
    },
    disconnect: async (e) => {
      trace.push(`disconnect ${e.requestContext.disconnectStatusCode}`);
    },
  });
  const c = await open(h);
  for (let i = 0; i < 5; i++) c.ws.send(String(i));
  c.ws.terminate(); // network drop: no close frame
  await until(() => h.of('DISCONNECT').length === 1, '$disconnect');
  assert.deepEqual(trace, [
    ...[0, 1, 2, 3, 4].flatMap((i) => [`start ${i}`, `end ${i}`]),
    'disconnect 1006',
  ]);
});

test('other HTTP goes to httpRoutes; unknown paths and upgrades elsewhere are 404', async (t) => {
  const h = await harness(t, {
    httpRoutes: async (req, res) => {
      if (req.url !== '/http-bind') return false;
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.end('bosh here');
      return true;
    },
  });
  const bosh = await fetch(`http://127.0.0.1:${h.port}/http-bind`, { method: 'POST', body: '<body/>' });
  assert.equal(bosh.status, 200);
  assert.equal(await bosh.text(), 'bosh here');
  assert.equal((await fetch(`http://127.0.0.1:${h.port}/nothing`)).status, 404);
  assert.equal((await fetch(`http://127.0.0.1:${h.port}/other-stage/@connections/abc`)).status, 404);
  assert.deepEqual(await handshake(`ws://127.0.0.1:${h.port}/elsewhere`, ['xmpp']), { status: 404, opened: false });
  assert.equal(h.of('CONNECT').length, 0);
});

test('stop() closes every socket with 1001, runs $disconnect, then stops listening', async (t) => {
  const h = await harness(t, {
    message: async () => {
      await sleep(30);
    },
  });
  const a = await open(h);
  const b = await open(h);
  a.ws.send('pending');
  await until(() => h.frames.length === 1, 'frame');
  await h.gw.stop();
  assert.equal((await a.closed).code, 1001);
  assert.equal((await b.closed).code, 1001);
  const ds = h.of('DISCONNECT');
  assert.equal(ds.length, 2, '$disconnect ran before stop() resolved');
  assert.ok(ds.every((d) => d.requestContext.disconnectStatusCode === 1001));
  assert.deepEqual(h.gw.connectionIds(), []);
  await assert.rejects(fetch(`http://127.0.0.1:${h.port}/`));
});

test('FrameSizeGuard reads frame headers split across any chunk boundaries (RFC 6455 §5.2)', async () => {
  const { FrameSizeGuard } = await import('../../lib/gateway/frame-size-guard.ts');
  const frame = (fin: boolean, opcode: number, length: number): Buffer => {
    const ext = length > 0xffff ? 8 : length > 125 ? 2 : 0;
    const header = Buffer.alloc(2 + ext + 4);
    header[0] = (fin ? 0x80 : 0) | opcode;
    header[1] = 0x80 | (ext === 8 ? 127 : ext === 2 ? 126 : length);
    if (ext === 2) header.writeUInt16BE(length, 2);
    if (ext === 8) header.writeBigUInt64BE(BigInt(length), 2);
    return Buffer.concat([header, Buffer.alloc(length, 0x61)]);
  };
  const stream = Buffer.concat([
    frame(true, 0x1, 5), // message 1
    frame(false, 0x1, 300), // message 2, fragmented…
    frame(true, 0x9, 4), // …a ping in between…
    frame(true, 0x0, 70_000), // …final fragment, 64-bit length
    frame(true, 0x2, 0), // message 3, empty binary
    frame(true, 0x1, 100_000), // too big
    frame(true, 0x1, 1),
  ]);
  for (const chunkSize of [1, 2, 3, 7, 13, 1000, stream.length]) {
    const seen: Array<{ frameBytes: number; completedMessages: number }> = [];
    const guard = new FrameSizeGuard(80_000, (v) => seen.push(v));
    for (let i = 0; i < stream.length; i += chunkSize) guard.push(stream.subarray(i, i + chunkSize));
    assert.deepEqual(seen, [{ frameBytes: 100_000, completedMessages: 3 }], `chunks of ${chunkSize}`);
  }
});

test('@connections answers only this machine: loopback, or the address the request came in on', () => {
  assert.ok(managementAllowedFrom('127.0.0.1', '127.0.0.1'));
  assert.ok(managementAllowedFrom('127.0.0.1', '0.0.0.0'));
  assert.ok(managementAllowedFrom('::ffff:127.0.0.1', '::ffff:127.0.0.1'));
  assert.ok(managementAllowedFrom('127.0.1.1', '192.168.1.5'), 'all of 127/8 is loopback');
  assert.ok(managementAllowedFrom('::1', '::1'));
  // --host <LAN address>: the server posts to its own gateway from that address.
  assert.ok(managementAllowedFrom('192.168.1.5', '192.168.1.5'));
  assert.ok(managementAllowedFrom('::ffff:192.168.1.5', '192.168.1.5'));
  // --host 0.0.0.0: another machine on the network.
  assert.equal(managementAllowedFrom('192.168.1.7', '192.168.1.5'), false);
  assert.equal(managementAllowedFrom('::ffff:10.0.0.9', '::ffff:10.0.0.1'), false);
  assert.equal(managementAllowedFrom('fe80::1', '::1'), false);
  assert.equal(managementAllowedFrom('128.0.0.1', '0.0.0.0'), false);
  assert.equal(managementAllowedFrom(undefined, '127.0.0.1'), false);
});

test('a client that hangs up during $connect still gets its $disconnect (1006)', async (t) => {
  // $connect finishes only once the client has hung up.
  let hungUp!: () => void;
  const hangUp = new Promise<void>((resolve) => (hungUp = resolve));
  const h = await harness(t, {
    connect: async () => {
      await hangUp;
      return { statusCode: 200, headers: { 'Sec-WebSocket-Protocol': 'xmpp' } };
    },
  });
  const ws = new WebSocket(h.url, ['xmpp']);
  ws.on('error', () => {});
  ws.on('close', () => hungUp());
  await until(() => h.of('CONNECT').length === 1, '$connect');
  ws.terminate();
  await until(() => h.of('DISCONNECT').length === 1, '$disconnect');
  const d = h.of('DISCONNECT')[0].requestContext;
  assert.equal(d.connectionId, h.of('CONNECT')[0].requestContext.connectionId);
  assert.equal(d.disconnectStatusCode, 1006);
  assert.deepEqual(h.gw.connectionIds(), []);
});
