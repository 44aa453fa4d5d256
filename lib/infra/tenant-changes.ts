// Tenant changes take effect in seconds in every region (issue 3): a Lambda on this region's replica
// stream of the global table closes a disabled or deleted tenant's sessions held in this region.
// The replica's stream ARN carries a creation timestamp that no template knows, and the table is made
// by another stack (in another region): a DescribeTable at deploy time, in this region, reads it.
import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import type { WebSocketStage } from 'aws-cdk-lib/aws-apigatewayv2';
import type { ITableV2 } from 'aws-cdk-lib/aws-dynamodb';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { EventSourceMapping, FilterCriteria, StartingPosition } from 'aws-cdk-lib/aws-lambda';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import { AwsCustomResource, AwsCustomResourcePolicy, PhysicalResourceId } from 'aws-cdk-lib/custom-resources';
import { Construct } from 'constructs';
import { TENANT_CHANGE_FILTERS } from '../runtime/tenant-stream.ts';
import { SESSION_END_ACCESS } from './table-access.ts';
import { XmppFunction } from './xmpp-function.ts';

export interface TenantChangesProps {
  table: ITableV2;
  stage: WebSocketStage;
  otherRegions: readonly string[];
  logRetention: RetentionDays;
}

/** Stream reads Lambda's event source mapping makes (and checks for when it is created). */
export const STREAM_READ_ACTIONS = ['dynamodb:DescribeStream', 'dynamodb:GetRecords', 'dynamodb:GetShardIterator', 'dynamodb:ListStreams'];

export class TenantChanges extends Construct {
  readonly function: XmppFunction;
  readonly mapping: EventSourceMapping;
  /** This region's replica stream, read at deploy time. */
  readonly streamArn: string;

  constructor(scope: Construct, id: string, props: TenantChangesProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const lookup = new AwsCustomResource(this, 'StreamArn', {
      resourceType: 'Custom::TableStreamArn',
      // onUpdate also runs on create; the stream of a global table's replica lives as long as the replica.
      onUpdate: {
        service: 'DynamoDB',
        action: 'DescribeTable',
        parameters: { TableName: props.table.tableName },
        physicalResourceId: PhysicalResourceId.fromResponse('Table.LatestStreamArn'),
        // Only this field goes back to CloudFormation (a whole DescribeTable can exceed its 4 KB).
        outputPaths: ['Table.LatestStreamArn'],
      },
      policy: AwsCustomResourcePolicy.fromSdkCalls({ resources: [props.table.tableArn] }),
      installLatestAwsSdk: false,
      logGroup: new LogGroup(this, 'StreamArnLogs', { retention: props.logRetention, removalPolicy: RemovalPolicy.DESTROY }),
    });
    this.streamArn = lookup.getResponseField('Table.LatestStreamArn');

    this.function = new XmppFunction(this, 'Function', {
      entryName: 'tenant-changes',
      description: 'On the table stream: closes a disabled or deleted tenant\'s sessions in this region with host-gone',
      timeout: Duration.seconds(60),
      logRetention: props.logRetention,
    })
      .bindTable(props.table, SESSION_END_ACCESS)
      // POST: the host-gone stream error and the unavailable presence to contacts; DELETE: the close.
      .bindConnections(props.stage, ['POST', 'DELETE'], props.otherRegions);
    // As AWS's example policy for stream triggers: this replica's streams only, not `*`.
    this.function.addToRolePolicy(
      new PolicyStatement({
        actions: STREAM_READ_ACTIONS,
        resources: [`arn:${stack.partition}:dynamodb:${stack.region}:${stack.account}:table/${props.table.tableName}/stream/*`],
      }),
    );

    this.mapping = new EventSourceMapping(this, 'OnTenantChange', {
      target: this.function,
      eventSourceArn: this.streamArn,
      // Only changes from now on: a deploy must not replay history.
      startingPosition: StartingPosition.LATEST,
      // Tenant changes are rare and must act in seconds: no batching window.
      batchSize: 100,
      filters: TENANT_CHANGE_FILTERS.map((pattern) => FilterCriteria.filter(pattern)),
      reportBatchItemFailures: true,
      bisectBatchOnError: true,
      retryAttempts: 10,
      // A record that keeps failing is given up on after an hour (the function's Errors alarm has fired
      // long before) rather than stalling its shard for the stream's 24 h retention.
      maxRecordAge: Duration.hours(1),
    });
  }
}
