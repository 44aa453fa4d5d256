// Purging a deleted tenant's data in the background, resumably: a job item records how far the
// purge got (the last account done), so a crash or a Lambda timeout resumes where it stopped.
// Extensions that keep per-tenant data of their own (rooms, archives) add steps via purgeSteps.
import { DeleteCommand, GetCommand, PutCommand, QueryCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { deletePartition } from '../store/partition.ts';

export interface PurgeJob {
  domain: string;
  requestedAt: number;
  /** Accounts are purged in sort order; this is the last one finished. */
  afterUser?: string;
  usersPurged: number;
}

/** Per-account data kinds, by partition key prefix (see lib/store/*). */
const ACCOUNT_PARTITIONS = ['roster', 'offline', 'sessions'];

/** Extra steps (e.g. MUC rooms) run once all accounts are gone. */
export const purgeSteps: ((db: DynamoDBDocumentClient, table: string, domain: string) => Promise<void>)[] = [];

const jobKey = (domain: string) => ({ pk: 'purge', sk: domain });

export class TenantPurger {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    private readonly table: string,
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
        for (const kind of ACCOUNT_PARTITIONS) await deletePartition(this.db, this.table, `${kind}#${bare}`);
        await this.db.send(new DeleteCommand({ TableName: this.table, Key: { pk: `user#${domain}`, sk: username } }));
        job.afterUser = username;
        job.usersPurged++;
      }
      await this.db.send(new PutCommand({ TableName: this.table, Item: { ...jobKey(domain), ...job } }));
      start = res.LastEvaluatedKey;
      if (start && Date.now() > deadline) return; // resumes from job.afterUser next time
    } while (start);
    for (const step of purgeSteps) await step(this.db, this.table, domain);
    await this.db.send(new DeleteCommand({ TableName: this.table, Key: { pk: 'tenant#' + domain, sk: 'tenant' } }));
    await this.db.send(new DeleteCommand({ TableName: this.table, Key: { pk: 'tenants', sk: domain } }));
    await this.db.send(new DeleteCommand({ TableName: this.table, Key: jobKey(domain) }));
  }
}
