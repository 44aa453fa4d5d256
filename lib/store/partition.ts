// Removing whole item collections (one partition key) in pages, for purges.
import { BatchWriteCommand, QueryCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

/** Deletes every item whose partition key is `pk`; returns how many were deleted. */
export async function deletePartition(db: DynamoDBDocumentClient, table: string, pk: string): Promise<number> {
  let deleted = 0;
  let start: Record<string, unknown> | undefined;
  do {
    const res = await db.send(
      new QueryCommand({
        TableName: table,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': pk },
        ProjectionExpression: 'pk, sk',
        ExclusiveStartKey: start,
      }),
    );
    const keys = (res.Items ?? []).map((i) => ({ pk: i.pk, sk: i.sk }));
    for (let i = 0; i < keys.length; i += 25) {
      let requests = keys.slice(i, i + 25).map((Key) => ({ DeleteRequest: { Key } }));
      for (let attempt = 0; requests.length && attempt < 6; attempt++) {
        const out = await db.send(new BatchWriteCommand({ RequestItems: { [table]: requests } }));
        requests = (out.UnprocessedItems?.[table] ?? []) as typeof requests;
        if (requests.length) await new Promise((r) => setTimeout(r, 25 * 2 ** attempt));
      }
      if (requests.length) throw new Error(`could not delete ${requests.length} items of ${pk}`);
    }
    deleted += keys.length;
    start = res.LastEvaluatedKey;
  } while (start);
  return deleted;
}
