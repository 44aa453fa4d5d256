// The alarms of one region: what an operator must know (issue 5): frames that fail or wait, frames
// given up on, functions that fail or are throttled, API Gateway errors and throttling, DynamoDB
// throttling. Every alarm notifies one SNS topic per region; an e-mail subscription is optional.
import { Duration } from 'aws-cdk-lib';
import type { HttpApi, WebSocketStage } from 'aws-cdk-lib/aws-apigatewayv2';
import { Alarm, ComparisonOperator, MathExpression, Metric, TreatMissingData, type IMetric } from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import type { Queue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { INGEST_METRICS } from '../gateway/frame-envelope.ts';

export interface OperatorAlarmsProps {
  functions: Record<string, NodejsFunction>;
  frames: Queue;
  deadLetters: Queue;
  stage: WebSocketStage;
  /** The admin and discovery HTTP API. */
  httpApi?: HttpApi;
  /** Tables whose throttling matters in this region (the global table's replica, the claims table). */
  tableNames: string[];
  alarmEmail?: string;
}

const FIVE_MINUTES = Duration.minutes(5);

export class OperatorAlarms extends Construct {
  readonly topic: Topic;
  readonly alarms: Alarm[] = [];

  constructor(scope: Construct, id: string, props: OperatorAlarmsProps) {
    super(scope, id);
    this.topic = new Topic(this, 'Topic', { displayName: 'xmpp-edge alarms' });
    if (props.alarmEmail) this.topic.addSubscription(new EmailSubscription(props.alarmEmail));

    // --- ordered ingest
    const ingestMetric = (name: string) =>
      new Metric({ namespace: INGEST_METRICS.namespace, metricName: name, dimensionsMap: INGEST_METRICS.dimensions, statistic: 'Sum', period: FIVE_MINUTES });
    this.add('IngestFramesFailed', ingestMetric(INGEST_METRICS.failed), 1, 'Frames failed in the ingest and wait for redelivery (their connection is stalled meanwhile)');
    this.add('IngestDeadLetters', props.deadLetters.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(1), statistic: 'Maximum' }), 1,
      'Frames given up on after repeated failures are in the dead-letter queue: inspect and redrive or purge');
    this.add('IngestFramesWaiting', props.frames.metricApproximateAgeOfOldestMessage({ period: Duration.minutes(1), statistic: 'Maximum' }), 30,
      'A frame has waited more than 30 s in the ingest queue: users see lag');

    // --- functions
    for (const [name, fn] of Object.entries(props.functions)) {
      this.add(`${name}Errors`, fn.metricErrors({ period: FIVE_MINUTES, statistic: 'Sum' }), 1, `The ${name} function failed (errors or timeouts)`);
      this.add(`${name}Throttles`, fn.metricThrottles({ period: FIVE_MINUTES, statistic: 'Sum' }), 1, `The ${name} function was throttled: raise its concurrency or the account limit`);
    }

    // --- API Gateway. WebSocket APIs have no 5xx metric: IntegrationError counts the routes' backend
    // failures ($default's SendMessage, $connect's Lambda), ExecutionError API Gateway's own.
    // Throttled messages (429) show only as ClientError, so that alarm has a threshold above noise.
    const stageMetric = (name: string) => props.stage.metric(name, { period: FIVE_MINUTES, statistic: 'Sum' });
    this.add('ApiIntegrationErrors', stageMetric('IntegrationError'), 5, 'WebSocket routes failed to reach their backend: frames may be lost');
    this.add('ApiExecutionErrors', stageMetric('ExecutionError'), 1, 'API Gateway failed to run a WebSocket route');
    this.add('ApiClientErrors', stageMetric('ClientError'), 100, 'Many WebSocket requests were refused (4xx including 429 throttling)');
    if (props.httpApi) {
      this.add('HttpApiServerErrors', props.httpApi.metricServerError({ period: FIVE_MINUTES, statistic: 'Sum' }), 1, 'The admin, discovery or BOSH HTTP API answered 5xx (a BOSH 503 asks the client to repeat a request that failed for a passing reason, e.g. DynamoDB throttling)');
    }

    // --- DynamoDB (on-demand tables still throttle on hot partitions and the account's table limits)
    for (const [i, tableName] of props.tableNames.entries()) {
      const throttled = new MathExpression({
        expression: 'reads + writes',
        usingMetrics: {
          reads: new Metric({ namespace: 'AWS/DynamoDB', metricName: 'ReadThrottleEvents', dimensionsMap: { TableName: tableName }, statistic: 'Sum' }),
          writes: new Metric({ namespace: 'AWS/DynamoDB', metricName: 'WriteThrottleEvents', dimensionsMap: { TableName: tableName }, statistic: 'Sum' }),
        },
        period: FIVE_MINUTES,
        label: `throttle events on ${tableName}`,
      });
      this.add(`TableThrottles${i}`, throttled, 1, 'DynamoDB throttled reads or writes of an xmpp-edge table');
    }
  }

  private add(id: string, metric: IMetric, threshold: number, description: string): void {
    const alarm = new Alarm(this, id, {
      metric,
      threshold,
      evaluationPeriods: 1,
      comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: TreatMissingData.NOT_BREACHING,
      alarmDescription: description,
    });
    alarm.addAlarmAction(new SnsAction(this.topic));
    alarm.addOkAction(new SnsAction(this.topic));
    this.alarms.push(alarm);
  }
}
