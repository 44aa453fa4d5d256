// The local server's in-process paths (issue 17): its DynamoDB client hands requests to dynalite without HTTP
// (InProcessDynamoHandler), and posts to its own gateway's connections go through the gateway directly
// (ManagementApi.serveInProcess). The SDK path over HTTP stays covered by local-gateway.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConditionalCheckFailedException, DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import { GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { ensureTable, startDynalite } from '../../lib/local/dynamo-local.ts';
import { createDynamoClient } from '../../lib/store/dynamo.ts';
import { CallCounter } from '../../lib/store/call-counter.ts';
import { ManagementApi } from '../../lib/core/management-api.ts';
import { RawClient, startTestServer, until } from '../support/harness.ts';

test('the in-process DynamoDB handler: the SDK as against DynamoDB, no HTTP request, errors parsed the same', async (t) => {
  const dynamo = await startDynalite({ port: 0 });
  t.after(() => dynamo.close());
  await ensureTable(dynamo.endpoint, 'inproc');
  // The endpoint given to the client answers nothing but counts requests: the handler must never use it.
  const http: IncomingMessage[] = [];
  const trap = createServer((req, res) => (http.push(req), res.writeHead(500).end()));
  await new Promise<void>((r) => trap.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => trap.close(() => r())));
  const counter = new CallCounter();
  const db = createDynamoClient({
    endpoint: `http://127.0.0.1:${(trap.address() as AddressInfo).port}`,
    localCredentials: true,
    counter,
    requestHandler: dynamo.requestHandler,
  });
  t.after(() => db.destroy());
  // dynalite makes a new table ACTIVE on a timer, even with createTableMs 0.
  await until('the table is active', async () => (await db.send(new DescribeTableCommand({ TableName: 'inproc' }))).Table?.TableStatus === 'ACTIVE');

  await db.send(new PutCommand({ TableName: 'inproc', Item: { pk: 'a', sk: 'b', n: 1, s: 'é ✓' } }));
  const got = await db.send(new GetCommand({ TableName: 'inproc', Key: { pk: 'a', sk: 'b' } }));
  assert.deepEqual(got.Item, { pk: 'a', sk: 'b', n: 1, s: 'é ✓' });
  // A failed condition arrives as the SDK's modelled exception, as from DynamoDB.
  await assert.rejects(
    db.send(new UpdateCommand({ TableName: 'inproc', Key: { pk: 'a', sk: 'b' }, UpdateExpression: 'SET n = :n', ConditionExpression: 'n = :old', ExpressionAttributeValues: { ':n': 2, ':old': 5 } })),
    (err: unknown) => err instanceof ConditionalCheckFailedException,
  );
  // A validation error too (no such table).
  await assert.rejects(db.send(new GetCommand({ TableName: 'missing', Key: { pk: 'a', sk: 'b' } })), { name: 'ResourceNotFoundException' });
  assert.equal(http.length, 0, 'no HTTP request was made');
  assert.deepEqual(counter.snapshot(), { 'dynamodb:DescribeTableCommand': counter.snapshot()['dynamodb:DescribeTableCommand'], 'dynamodb:PutItemCommand': 1, 'dynamodb:GetItemCommand': 2, 'dynamodb:UpdateItemCommand': 1 });
});

test('the local server posts to its own gateway in-process, counted as the SDK commands, and other endpoints over HTTP', async (t) => {
  const s = await startTestServer();
  t.after(() => s.stop());
  await s.addUser('alice@localhost');
  const alice = await RawClient.connect(s.url);
  t.after(() => alice.ws.close());
  await alice.login('alice', 'secret', 'r');
  const [id] = s.gateway.connectionIds();
  const target = { connectionId: id, endpoint: s.managementEndpoint };

  const counter = new CallCounter();
  const api = new ManagementApi({ counter });
  api.serveInProcess(s.managementEndpoint, s.gateway.inProcessConnections());
  const frame = alice.next((el) => el.name === 'message' && el.attrs.id === 'inproc');
  assert.equal(await api.post(target, '<message xmlns="jabber:client" id="inproc"/>'), true);
  await frame;
  assert.equal(await api.isAlive(target), true);
  assert.equal(await api.isAlive({ ...target, connectionId: 'nope' }), false);
  assert.equal(await api.post({ ...target, connectionId: 'nope' }, '<x/>'), false, 'an unknown connection is gone (410)');
  // Over the message limit: the HTTP API's 413, as an error of the same name.
  await assert.rejects(api.post(target, 'x'.repeat(128 * 1024 + 1)), { name: 'PayloadTooLargeException' });
  assert.deepEqual(counter.snapshot(), { 'management:PostToConnectionCommand': 3, 'management:GetConnectionCommand': 2 });

  // DeleteConnection closes the socket, and the connection is gone afterwards.
  const closed = alice.closed;
  assert.equal(await api.close(target), true);
  await closed;
  assert.equal(await api.isAlive(target), false);
  assert.equal(await api.close(target), false);

  // The server's own ManagementApi serves its gateway in-process: a chat message costs one post, as over HTTP.
  await s.addUser('bob@localhost');
  const bob = await RawClient.connect(s.url);
  t.after(() => bob.ws.close());
  await bob.login('bob', 'secret', 'r');
  const cost = await s.cost(async () => {
    const pong = bob.next((el) => el.name === 'iq' && el.attrs.id === 'p1');
    bob.send('<iq xmlns="jabber:client" type="get" id="p1"><ping xmlns="urn:xmpp:ping"/></iq>');
    await pong;
  });
  assert.equal(cost.posts, 1);
});
