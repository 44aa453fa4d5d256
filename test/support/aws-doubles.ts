// SDK-level test doubles for SNS and EventBridge, which have no local service: the real clients and
// commands (so inputs are built and checked by the SDK as in AWS), with the transport replaced by a
// middleware that records each call and answers as the service would.
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { SNSClient } from '@aws-sdk/client-sns';

export interface RecordedCall {
  command: string;
  input: any;
}

type Answer = (command: string, input: any) => unknown;

const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };

function intercept(client: { middlewareStack: { add: Function } }, calls: RecordedCall[], answer: Answer): void {
  client.middlewareStack.add(
    (_next: unknown, ctx: { commandName: string }) => async (args: { input: unknown }) => {
      calls.push({ command: ctx.commandName, input: args.input });
      return { output: { $metadata: {}, ...(answer(ctx.commandName, args.input) as object) }, response: {} };
    },
    { step: 'initialize', name: 'testDouble', priority: 'low' },
  );
}

/** Every entry accepted, unless `answer` says otherwise. */
export function snsDouble(calls: RecordedCall[], answer: Answer = (_c, input) => ({ Successful: input.PublishBatchRequestEntries.map((e: { Id: string }) => ({ Id: e.Id, MessageId: `m-${e.Id}` })), Failed: [] })): SNSClient {
  const client = new SNSClient({ region: 'eu-west-1', credentials });
  intercept(client, calls, answer);
  return client;
}

export function eventBridgeDouble(calls: RecordedCall[], answer: Answer = (_c, input) => ({ FailedEntryCount: 0, Entries: input.Entries.map((_: unknown, i: number) => ({ EventId: `e-${i}` })) })): EventBridgeClient {
  const client = new EventBridgeClient({ region: 'eu-west-1', credentials });
  intercept(client, calls, answer);
  return client;
}
