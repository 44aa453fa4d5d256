// Turns a DynamoDB CreateTable declaration (what dynalite gets locally) into TableV2 key and index
// props, so the tables in AWS have exactly the keys and indexes the code was tested against.
import type { CreateTableCommandInput } from '@aws-sdk/client-dynamodb';
import { AttributeType, type Attribute, type GlobalSecondaryIndexPropsV2, type ProjectionType } from 'aws-cdk-lib/aws-dynamodb';

export interface TableSchemaProps {
  partitionKey: Attribute;
  sortKey?: Attribute;
  globalSecondaryIndexes: GlobalSecondaryIndexPropsV2[];
}

export function tableSchemaOf(def: CreateTableCommandInput): TableSchemaProps {
  if (def.LocalSecondaryIndexes?.length) throw new Error(`${def.TableName}: local secondary indexes are not mapped`);
  return {
    ...keysOf(def, def.KeySchema),
    globalSecondaryIndexes: (def.GlobalSecondaryIndexes ?? []).map((gsi) => ({
      indexName: gsi.IndexName!,
      ...keysOf(def, gsi.KeySchema),
      projectionType: gsi.Projection?.ProjectionType as ProjectionType | undefined,
      nonKeyAttributes: gsi.Projection?.NonKeyAttributes,
    })),
  };
}

function keysOf(def: CreateTableCommandInput, schema: CreateTableCommandInput['KeySchema']): { partitionKey: Attribute; sortKey?: Attribute } {
  const attr = (name: string): Attribute => {
    const type = def.AttributeDefinitions?.find((a) => a.AttributeName === name)?.AttributeType;
    if (!type) throw new Error(`${def.TableName}: attribute ${name} has no definition`);
    return { name, type: { S: AttributeType.STRING, N: AttributeType.NUMBER, B: AttributeType.BINARY }[type] };
  };
  const hash = schema?.find((k) => k.KeyType === 'HASH')?.AttributeName;
  const range = schema?.find((k) => k.KeyType === 'RANGE')?.AttributeName;
  if (!hash) throw new Error(`${def.TableName}: a key schema has no HASH key`);
  return { partitionKey: attr(hash), ...(range ? { sortKey: attr(range) } : {}) };
}
