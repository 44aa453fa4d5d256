// The one DynamoDB global table (docs/architecture.md "Deploy: CDK"), replicated to every region the team lists.
// Its keys and indexes come from tableDefinition(), the declaration dynalite gets locally.
import { Stack, type StackProps } from 'aws-cdk-lib';
import { Billing, StreamViewType, TableV2 } from 'aws-cdk-lib/aws-dynamodb';
import type { Construct } from 'constructs';
import { TTL_ATTRIBUTE, tableDefinition } from '../store/dynamo.ts';
import { tableSchemaOf } from './table-schema.ts';

export interface GlobalTableStackProps extends StackProps {
  tableName: string;
  /** Every region served; the stack's own region holds the first replica, the others are added. */
  regions: string[];
}

export class GlobalTableStack extends Stack {
  readonly table: TableV2;

  constructor(scope: Construct, id: string, props: GlobalTableStackProps) {
    super(scope, id, props);
    this.table = new TableV2(this, 'Table', {
      tableName: props.tableName,
      ...tableSchemaOf(tableDefinition(props.tableName)),
      billing: Billing.onDemand(),
      // Every item with a lifetime carries it; reads ignore expired items before TTL deletes them.
      timeToLiveAttribute: TTL_ATTRIBUTE,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      deletionProtection: true,
      // Replication needs a stream anyway; stated so a one-region deployment has one too: each region's
      // tenant-changes function reads its replica's stream (lib/infra/tenant-changes.ts).
      dynamoStream: StreamViewType.NEW_AND_OLD_IMAGES,
      replicas: props.regions.filter((r) => r !== this.region).map((region) => ({ region })),
    });
  }
}
