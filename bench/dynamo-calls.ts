// CPU per DynamoDB call through the local server's client config (createDynamoClient with the in-process dynalite
// handler, the call counter and the metrics middleware attached): a tight loop of real GetItem, PutItem, UpdateItem
// and Query calls, one at a time. Prints µs of CPU per call (user + system of this process, dynalite's share
// included). `npm run bench:dynamo [-- --calls=5000]`; BENCH_CPU_PROF=<dir> writes a CPU profile of the loop.
import { writeFileSync, mkdirSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { ensureTable, startDynalite } from '../lib/local/dynamo-local.ts';
import { createDynamoClient } from '../lib/store/dynamo.ts';
import { CallCounter } from '../lib/store/call-counter.ts';
import { Metrics } from '../lib/metrics/metrics.ts';

const arg = (name: string, dflt: number) => Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? dflt);
const calls = arg('calls', 5000);
const table = 'bench';
const dynamo = await startDynalite({ port: 0 });
await ensureTable(dynamo.endpoint, table);
// dynalite answers ResourceNotFound until the new table is ACTIVE (a round trip later, createTableMs 0).
for (let n = 0; ; n++) {
  try {
    await db0().send(new GetCommand({ TableName: table, Key: { pk: 'x', sk: 'x' } }));
    break;
  } catch (err) {
    if ((err as { name?: string }).name !== 'ResourceNotFoundException' || n > 100) throw err;
    await new Promise((resolve) => setImmediate(resolve));
  }
}
function db0() {
  return createDynamoClient({ endpoint: dynamo.endpoint, localCredentials: true, requestHandler: dynamo.requestHandler });
}
const counter = new CallCounter();
const db = createDynamoClient({ endpoint: dynamo.endpoint, localCredentials: true, requestHandler: dynamo.requestHandler, counter, metrics: new Metrics() });

const ops = [
  (i: number) => db.send(new PutCommand({ TableName: table, Item: { pk: `u${i % 50}@localhost`, sk: 'session', res: `r${i}`, at: i } })),
  (i: number) => db.send(new GetCommand({ TableName: table, Key: { pk: `u${i % 50}@localhost`, sk: 'session' } })),
  (i: number) =>
    db.send(new UpdateCommand({ TableName: table, Key: { pk: `u${i % 50}@localhost`, sk: 'counter' }, UpdateExpression: 'ADD n :one', ExpressionAttributeValues: { ':one': 1 } })),
  (i: number) => db.send(new QueryCommand({ TableName: table, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': `u${i % 50}@localhost` } })),
];
const run = async (n: number) => {
  for (let i = 0; i < n; i++) await ops[i % ops.length](i);
};

await run(1000); // warm-up: JIT, dynalite's first items
const profDir = process.env.BENCH_CPU_PROF;
const session = profDir ? new Session() : undefined;
if (session) {
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
}
const before = counter.snapshot();
const cpu0 = process.cpuUsage();
const t0 = performance.now();
await run(calls);
const cpu = process.cpuUsage(cpu0);
const wall = performance.now() - t0;
if (session) {
  const { profile } = await session.post('Profiler.stop');
  mkdirSync(profDir!, { recursive: true });
  const file = `${profDir}/dynamo-calls-${Date.now()}.cpuprofile`;
  writeFileSync(file, JSON.stringify(profile));
  console.log(`profile: ${file}`);
}
const made = Object.values(counter.since(before)).reduce((a, b) => a + b, 0);
if (made !== calls) throw new Error(`the call counter saw ${made} calls, not ${calls}`);
console.log(`${calls} calls: ${((cpu.user + cpu.system) / calls).toFixed(1)} µs CPU/call, ${((wall * 1000) / calls).toFixed(1)} µs wall/call`);
await dynamo.close();
