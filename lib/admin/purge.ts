// Purging a deleted tenant's data in the background, resumably: a job item records how far the
// purge got (the last account done), so a crash or a Lambda timeout resumes where it stopped.
// Which partitions an account has, and what else a tenant's modules keep, comes from the modules'
// declarations (lib/core/modules.ts): the purger keeps no list of its own.
import { DeleteCommand, GetCommand, PutCommand, QueryCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { PurgeStep } from '../core/modules.ts';
import type { XmppServer } from '../core/server.ts';
import { deletePartition } from '../store/partition.ts';

export interface PurgeJob {
  domain: string;
  requestedAt: number;
  /** Accounts are purged in sort order; this is the last one finished. */
  afterUser?: string;
  usersPurged: number;
}

/** What a purge deletes besides accounts: their partitions by prefix, then the modules' own steps. */
export interface PurgePlan {
  /** Partition key prefixes of per-account data: `<prefix>#<bare JID>`. */
  accountPartitions: string[];
  /** Run once all accounts are gone (e.g. a tenant's MUC rooms). */
  steps: PurgeStep[];
}

/** The plan for a server's modules. */
export function purgePlanOf(server: XmppServer): PurgePlan {
  return { accountPartitions: server.registry.accountPartitions(), steps: server.registry.purgeSteps };
}

const jobKey = (domain: string) => ({ pk: 'purge', sk: domain });

export class TenantPurger {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    private readonly table: string,
    /** Needed to run purges; requesting one and reading its status need none (the CLI). */
    private readonly plan?: PurgePlan,
  ) {}

  /** Records that `domain`'s data must go; the purge itself runs in `runPending`. */
  async request(domain: string): Promise<void> {
    await this.db.send(new PutCommand({ TableName: this.table, Item: { ...jobKey(domain), domain, requestedAt: Date.now(), usersPurged: 0 }, ConditionExpression: 'attribute_not_exists(pk)' })).catch((err) => {
      if ((err as { name?: string }).name !== 'ConditionalCheckFailedException') throw err;
    });
  }

  async pending(): Promise<PurgeJob[]> {
    const res = await this.db.send(new QueryCommand({ TableName: this.table, KeyConditionExpression: 'pk = :p', ExpressionAttributeValues: { ':p': 'purge' } }));
    return (res.Items ?? []).map(({ pk: _pk, sk: _sk, ...job }) => job as PurgeJob);
  }

  async status(domain: string): Promise<PurgeJob | undefined> {
    const res = await this.db.send(new GetCommand({ TableName: this.table, Key: jobKey(domain) }));
    if (!res.Item) return undefined;
    const { pk: _pk, sk: _sk, ...job } = res.Item;
    return job as PurgeJob;
  }

  /** Works through pending jobs until done or past `deadline` (ms epoch); at least one page is always done. */
  async runPending(deadline = Date.now() + 60_000): Promise<void> {
    for (const job of await this.pending()) {
      await this.run(job, deadline);
      if (Date.now() > deadline) return;
    }
  }

  private async run(job: PurgeJob, deadline: number): Promise<void> {
    const { domain } = job;
    const plan = this.plan;
    if (!plan) throw new Error('TenantPurger: no purge plan (purgePlanOf(server)), so it cannot run purges');
    let start: Record<string, unknown> | undefined = job.afterUser ? { pk: `user#${domain}`, sk: job.afterUser } : undefined;
    do {
      const res = await this.db.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: 'pk = :pk',
          ExpressionAttributeValues: { ':pk': `user#${domain}` },
          ProjectionExpression: 'sk',
          ExclusiveStartKey: start,
          Limit: 25,
        }),
      );
      for (const item of res.Items ?? []) {
        const username = item.sk as string;
        const bare = `${username}@${domain}`;
        for (const kind of plan.accountPartitions) await deletePartition(this.db, this.table, `${kind}#${bare}`);
        await this.db.send(new DeleteCommand({ TableName: this.table, Key: { pk: `user#${domain}`, sk: username } }));
        job.afterUser = username;
        job.usersPurged++;
      }
      await this.db.send(new PutCommand({ TableName: this.table, Item: { ...jobKey(domain), ...job } }));
      start = res.LastEvaluatedKey;
      if (start && Date.now() > deadline) return; // resumes from job.afterUser next time
    } while (start);
    for (const step of plan.steps) await step(this.db, this.table, domain);
    await this.db.send(new DeleteCommand({ TableName: this.table, Key: { pk: 'tenant#' + domain, sk: 'tenant' } }));
    await this.db.send(new DeleteCommand({ TableName: this.table, Key: { pk: 'tenants', sk: domain } }));
    await this.db.send(new DeleteCommand({ TableName: this.table, Key: jobKey(domain) }));
  }
}
