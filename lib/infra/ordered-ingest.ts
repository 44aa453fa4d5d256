// The $default route of one region: API Gateway sends each frame straight into an SQS FIFO queue
// grouped by connection id (an AWS service integration, no Lambda in between), and the ingest Lambda
// consumes it in order, with a redelivery guard and a dead-letter queue (docs/architecture.md "Order").
import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { PassthroughBehavior, type WebSocketStage } from 'aws-cdk-lib/aws-apigatewayv2';
import { WebSocketAwsIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import { Billing, TableV2, type ITableV2 } from 'aws-cdk-lib/aws-dynamodb';
import { PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { EventSourceMapping } from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { DeduplicationScope, FifoThroughputLimit, Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { TTL_ATTRIBUTE } from '../store/dynamo.ts';
import { frameClaimsTableDefinition } from '../store/frame-dedup.ts';
import { frameToSqsTemplate } from '../gateway/frame-envelope.ts';
import { tableSchemaOf } from './table-schema.ts';
import { acknowledge, acknowledgeDeadLetterQueue } from './nag-acknowledgements.ts';
import { STREAM_ACCESS } from './table-access.ts';
import { XmppFunction } from './xmpp-function.ts';

/** A frame takes milliseconds; a whole batch gets this long before Lambda gives up on it. */
export const INGEST_TIMEOUT = Duration.seconds(20);
/** AWS asks for at least six times the function timeout, so throttled retries do not redeliver early. */
export const FRAME_VISIBILITY_TIMEOUT = Duration.seconds(INGEST_TIMEOUT.toSeconds() * 6);
/** Deliveries of one frame before it goes to the dead-letter queue (and its connection moves on). */
export const MAX_RECEIVE_COUNT = 5;

export interface OrderedIngestProps {
  stage: WebSocketStage;
  table: ITableV2;
  otherRegions: readonly string[];
  logRetention: RetentionDays;
}

export class OrderedIngest extends Construct {
  readonly queue: Queue;
  readonly deadLetterQueue: Queue;
  readonly claims: TableV2;
  readonly function: XmppFunction;
  readonly integration: WebSocketAwsIntegration;

  constructor(scope: Construct, id: string, props: OrderedIngestProps) {
    super(scope, id);
    const stack = Stack.of(this);

    this.deadLetterQueue = new Queue(this, 'DeadLetters', {
      fifo: true,
      retentionPeriod: Duration.days(14),
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
    });
    this.queue = new Queue(this, 'Frames', {
      fifo: true,
      // Deduplication by the id API Gateway gives each message, not by content: a client may well send
      // the same text twice (a whitespace keepalive, a repeated chat line).
      contentBasedDeduplication: false,
      // High-throughput FIFO: the limits apply per connection, not per queue (300 messages/s otherwise).
      deduplicationScope: DeduplicationScope.MESSAGE_GROUP,
      fifoThroughputLimit: FifoThroughputLimit.PER_MESSAGE_GROUP_ID,
      visibilityTimeout: FRAME_VISIBILITY_TIMEOUT,
      // No connection lives longer than 2 h (API Gateway's limit); an older frame has nowhere to go.
      retentionPeriod: Duration.hours(2),
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: MAX_RECEIVE_COUNT },
    });
    acknowledgeDeadLetterQueue(this.deadLetterQueue, 'the ingest\'s FIFO frame queue (after MAX_RECEIVE_COUNT deliveries)', { usedByQueue: true });

    // API Gateway's role for the integration: it may send to this queue and do nothing else.
    const role = new Role(this, 'SendFrameRole', {
      assumedBy: new ServicePrincipal('apigateway.amazonaws.com'),
      description: 'API Gateway $default route: SendMessage of each WebSocket frame to the ingest FIFO queue',
    });
    role.addToPolicy(new PolicyStatement({ actions: ['sqs:SendMessage'], resources: [this.queue.queueArn] }));

    this.integration = new WebSocketAwsIntegration('SendFrameToQueue', {
      integrationUri: `arn:${stack.partition}:apigateway:${stack.region}:sqs:path/${stack.account}/${this.queue.queueName}`,
      integrationMethod: 'POST',
      credentialsRole: role,
      requestParameters: { 'integration.request.header.Content-Type': "'application/x-www-form-urlencoded'" },
      // One template for every frame, whatever it looks like; the raw frame is never passed through.
      templateSelectionExpression: '\\$default',
      requestTemplates: { $default: frameToSqsTemplate() },
      passthroughBehavior: PassthroughBehavior.NEVER,
    });

    this.claims = new TableV2(this, 'FrameClaims', {
      ...tableSchemaOf(frameClaimsTableDefinition('frame-claims')),
      billing: Billing.onDemand(),
      timeToLiveAttribute: TTL_ATTRIBUTE,
      // Claims are worth minutes; nothing to keep when the stack goes.
      removalPolicy: RemovalPolicy.DESTROY,
    });

    this.function = new XmppFunction(this, 'Function', {
      entryName: 'ingest',
      description: 'Processes the WebSocket frames of each connection in order, from the FIFO queue',
      timeout: INGEST_TIMEOUT,
      logRetention: props.logRetention,
      invokedSynchronouslyBy: 'its SQS event source mapping (a failed frame returns to the FIFO queue, whose redrive policy moves it to the dead-letter queue)',
    })
      .bindTable(props.table, STREAM_ACCESS)
      .bindTable(this.claims, { actions: ['dynamodb:PutItem', 'dynamodb:DeleteItem'] }, 'FRAME_CLAIMS_TABLE')
      // POST delivers stanzas; DELETE closes a stream after a stream error or a replaced session (RFC 6120 §4.9, §7.7.2.2).
      .bindConnections(props.stage, ['POST', 'DELETE'], props.otherRegions);
    this.function.addEventSource(
      new SqsEventSource(this.queue, {
        // FIFO queues deliver at most 10 messages per batch and take no batching window.
        batchSize: 10,
        reportBatchItemFailures: true,
      }),
    );
    for (const mapping of this.function.node.findAll().filter((c) => c instanceof EventSourceMapping)) {
      acknowledge(mapping, 'Serverless-LambdaEventSourceMappingDestination',
        'An SQS event source mapping takes no on-failure destination (Lambda supports them for streams and Kafka); for SQS the queue\'s redrive policy is the destination: a frame that fails MAX_RECEIVE_COUNT times goes to the FIFO dead-letter queue, whose depth raises the IngestDeadLetters alarm.');
    }
  }
}
