// Tenant changes take effect in seconds in every region (issue 3): a Lambda on this region's replica
// stream of the global table closes a disabled or deleted tenant's sessions held in this region.
// The replica's stream ARN carries a creation timestamp that no template knows, and the table is made
// by another stack (in another region): a DescribeTable at deploy time, in this region, reads it.
import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import type { WebSocketStage } from 'aws-cdk-lib/aws-apigatewayv2';
import type { ITableV2 } from 'aws-cdk-lib/aws-dynamodb';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { EventSourceMapping, FilterCriteria, StartingPosition } from 'aws-cdk-lib/aws-lambda';
import { SqsDlq } from 'aws-cdk-lib/aws-lambda-event-sources';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { AwsCustomResource, AwsCustomResourcePolicy, PhysicalResourceId } from 'aws-cdk-lib/custom-resources';
import { Construct } from 'constructs';
import { TENANT_CHANGE_FILTERS } from '../runtime/tenant-stream.ts';
import { acknowledgeDeadLetterQueue, acknowledgeWildcards } from './nag-acknowledgements.ts';
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
  /** Where the mapping sends the description of stream records it gave up on (not the records themselves). */
  readonly failures: Queue;
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
      // Explicit, as for every function (cdk-nag Serverless-LambdaDefaultMemorySize): one DescribeTable call.
      memorySize: 256,
      timeout: Duration.minutes(1),
      logGroup: new LogGroup(this, 'StreamArnLogs', { retention: props.logRetention, removalPolicy: RemovalPolicy.DESTROY }),
    });
    this.streamArn = lookup.getResponseField('Table.LatestStreamArn');

    this.function = new XmppFunction(this, 'Function', {
      entryName: 'tenant-changes',
      description: 'On the table stream: closes a disabled or deleted tenant\'s sessions in this region with host-gone',
      timeout: Duration.seconds(60),
      logRetention: props.logRetention,
      invokedSynchronouslyBy: 'its event source mapping on the table stream (failed batches are retried, then described in the failure queue)',
    })
      .bindTable(props.table, SESSION_END_ACCESS)
      // POST: the host-gone stream error and the unavailable presence to contacts; DELETE: the close.
      .bindConnections(props.stage, ['POST', 'DELETE'], props.otherRegions);
    // As AWS's example policy for stream triggers: this replica's streams only, not `*`.
    const streams = `arn:${stack.partition}:dynamodb:${stack.region}:${stack.account}:table/${props.table.tableName}/stream/*`;
    this.function.addToRolePolicy(new PolicyStatement({ actions: STREAM_READ_ACTIONS, resources: [streams] }));
    acknowledgeWildcards(this.function.executionRole, [streams],
      'A stream ARN ends in its creation time (table/{name}/stream/{timestamp}), which changes whenever the stream is re-enabled and is only known at deploy time; "stream/*" covers the streams of this one table in this region and account, and the actions are the four stream reads Lambda\'s event source mapping needs.');

    // Records the mapping gives up on (after its retries or an hour) are described here, so an operator
    // can find and replay them (the tenant's sessions may still be open): IngestDeadLetters' sibling alarm.
    this.failures = new Queue(this, 'Failures', {
      retentionPeriod: Duration.days(14),
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
    });
    acknowledgeDeadLetterQueue(this.failures, 'the tenant-changes event source mapping (on-failure destination)');

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
      onFailure: new SqsDlq(this.failures),
    });
  }
}
