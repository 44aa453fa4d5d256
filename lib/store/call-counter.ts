// Counts AWS SDK commands per service, so tests can assert the cost of an operation exactly
// (docs/architecture.md "Cost is a feature") and operators can log it.

interface MiddlewareHost {
  middlewareStack: {
    add(
      mw: (next: (args: unknown) => Promise<unknown>, context: { commandName?: string }) => (args: unknown) => Promise<unknown>,
      opts: { step: 'initialize'; name: string },
    ): void;
  };
}

export class CallCounter {
  private counts = new Map<string, number>();

  attach(client: unknown, service: string): void {
    (client as MiddlewareHost).middlewareStack.add(
      (next, context) => async (args) => {
        this.count(service, context.commandName ?? 'unknown');
        return next(args);
      },
      { step: 'initialize', name: 'xmppEdgeCallCounter' },
    );
  }

  /** One call of `command` to `service` made without the SDK (an in-process path standing for it). */
  count(service: string, command: string): void {
    const key = `${service}:${command}`;
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }

  snapshot(): Record<string, number> {
    return Object.fromEntries(this.counts);
  }

  /** Calls made since `before` (a snapshot), keyed by `service:Command`, zero entries left out. */
  since(before: Record<string, number>): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [key, n] of this.counts) {
      const d = n - (before[key] ?? 0);
      if (d) out[key] = d;
    }
    return out;
  }
}

const READS = new Set(['GetItemCommand', 'QueryCommand', 'BatchGetItemCommand', 'ScanCommand', 'GetCommand', 'BatchGetCommand']);
const WRITES = new Set(['PutItemCommand', 'UpdateItemCommand', 'DeleteItemCommand', 'BatchWriteItemCommand', 'PutCommand', 'UpdateCommand', 'DeleteCommand', 'BatchWriteCommand']);

/** Sums a `since()` result into DynamoDB reads, writes and management-API posts. */
export function summarize(calls: Record<string, number>): { reads: number; writes: number; posts: number } {
  let reads = 0;
  let writes = 0;
  let posts = 0;
  for (const [key, n] of Object.entries(calls)) {
    const [service, command] = key.split(':');
    if (service === 'dynamodb' && READS.has(command)) reads += n;
    if (service === 'dynamodb' && WRITES.has(command)) writes += n;
    if (service === 'management' && command === 'PostToConnectionCommand') posts += n;
  }
  return { reads, writes, posts };
}
