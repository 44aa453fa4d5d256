// The local server's $default IS the deployed path: every frame reaches the XMPP core through the ingest
// handler (lib/gateway/ingest.ts), claimed in the frame-claims table first, in order per connection as
// an SQS FIFO message group delivers it; a redelivered SQS message (same API Gateway message id) is skipped.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { QueryCommand } from '@aws-sdk/lib-dynamodb';
import { pino } from 'pino';
import { frameEnvelopeBody } from '../../lib/gateway/frame-envelope.ts';
import type { SqsRecord } from '../../lib/gateway/ingest.ts';
import { LOCAL_QUEUE_ARN } from '../../lib/gateway/local-gateway.ts';
import { createDynamoClient } from '../../lib/store/dynamo.ts';
import { parseFrame } from '../../lib/xmpp/xml.ts';
import { RawClient, startTestServer, type TestServer } from '../support/harness.ts';

const ping = (id: string) => `<iq xmlns="jabber:client" type="get" id="${id}"><ping xmlns="urn:xmpp:ping"/></iq>`;
/** Ids of the iq results among the frames a client received, in arrival order. */
const resultIds = (c: RawClient) =>
  c.frames.map((f) => parseFrame(f)).filter((el) => el.name === 'iq' && el.attrs.type === 'result').map((el) => el.attrs.id as string);

describe('local $default: the ingest path', () => {
  let server: TestServer;
  let claimsDb: ReturnType<typeof createDynamoClient>;
  const logs: Array<{ msg: string; [k: string]: unknown }> = [];
  const clients: RawClient[] = [];

  before(async () => {
    server = await startTestServer({ logger: pino({ level: 'debug' }, { write: (line: string) => void logs.push(JSON.parse(line)) }) });
    for (const u of ['alice', 'bob', 'carol']) await server.addUser(`${u}@localhost`);
    claimsDb = createDynamoClient({ endpoint: server.dynamoEndpoint, localCredentials: true });
  });
  after(async () => {
    for (const c of clients) c.ws.close();
    await server.stop();
    claimsDb.destroy();
  });

  /** A logged-in raw client (4 frames: open, auth, open, bind) and its connection id. */
  async function login(user: string): Promise<{ c: RawClient; id: string }> {
    const r = await RawClient.loggedIn(server, user);
    clients.push(r.c);
    return r;
  }

  async function claimsOf(connectionId: string): Promise<Record<string, unknown>[]> {
    const res = await claimsDb.send(
      new QueryCommand({ TableName: server.claimsTable, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': `frame#${connectionId}` } }),
    );
    return res.Items ?? [];
  }

  it('claims every frame in the frame-claims table before the core handles it', async () => {
    const { c, id } = await login('alice');
    c.send(ping('p1'));
    await c.next((el) => el.name === 'iq' && el.attrs.id === 'p1');
    await server.gateway.idle();
    const claims = await claimsOf(id);
    assert.equal(claims.length, 5, 'open, auth, open, bind, ping');
    for (const claim of claims) assert.match(String(claim.sk), /^[A-Za-z0-9]{15}=$/, 'keyed by API Gateway message id');
    // The ingest's metrics line is a debug log line locally, not EMF on stdout.
    assert.ok(logs.some((l) => l.msg === 'ingest batch' && (l.metrics as Record<string, unknown>).FramesProcessed === 1));
  });

  it('skips an SQS message redelivered with a claimed message id; a new message id is processed', async () => {
    const { c, id } = await login('bob');
    await server.gateway.idle();
    const [claimed] = await claimsOf(id);
    const record = (messageId: string, frame: string): SqsRecord => ({
      messageId: randomUUID(),
      body: frameEnvelopeBody(
        { connectionId: id, messageId, requestId: 'ReqDup000000000=', requestTimeEpoch: Date.now(), domainName: server.gateway.domainName, stage: 'local' },
        frame,
      ),
      attributes: { MessageGroupId: id, ApproximateReceiveCount: '2' },
      eventSourceARN: LOCAL_QUEUE_ARN,
    });

    // As SQS would deliver it again: the same API Gateway message id, whatever the frame.
    assert.deepEqual(await server.ingest({ Records: [record(String(claimed.sk), ping('dup'))] }), { batchItemFailures: [] });
    assert.ok(logs.some((l) => l.msg === 'frame redelivered, skipped' && l.connectionId === id && l.messageId === claimed.sk));
    assert.ok(logs.some((l) => l.msg === 'ingest batch' && (l.metrics as Record<string, unknown>).FramesRedelivered === 1));
    assert.deepEqual(await server.ingest({ Records: [record('FreshMessage000=', ping('fresh'))] }), { batchItemFailures: [] });

    // A frame through the gateway afterwards: its answer comes after anything the two above produced.
    c.send(ping('after'));
    await c.next((el) => el.name === 'iq' && el.attrs.id === 'after');
    assert.deepEqual(resultIds(c).filter((x) => x !== 'bind'), ['fresh', 'after']);
    assert.equal((await claimsOf(id)).length, 6, 'open, auth, open, bind, fresh, after');
  });

  it('keeps one connection\'s frames in order: 200 pings sent at once come back in order', async () => {
    const { c, id } = await login('carol');
    const ids = Array.from({ length: 200 }, (_, i) => `n${i + 1}`);
    for (const x of ids) c.send(ping(x));
    await c.next((el) => el.name === 'iq' && el.attrs.id === 'n200', 60_000);
    assert.deepEqual(resultIds(c).filter((x) => x !== 'bind'), ids);
    await server.gateway.idle();
    assert.equal((await claimsOf(id)).length, 204);
  });
});
