// The alarms of one region: what an operator must know (issue 5): frames that fail or wait, frames
// given up on, functions that fail or are throttled, API Gateway errors and throttling, DynamoDB
// throttling, work that landed in a failure queue, and from the per-tenant counters: internal errors,
// quota refusals and event push failures (issue 16). Every alarm notifies one SNS topic per
// region (SSL only); an e-mail subscription is optional. A dashboard per region shows the same metrics
// and the alarms' states.
import { Duration } from 'aws-cdk-lib';
import type { HttpApi, WebSocketStage } from 'aws-cdk-lib/aws-apigatewayv2';
import { Alarm, AlarmStatusWidget, ComparisonOperator, Dashboard, GraphWidget, MathExpression, Metric, TextWidget, TreatMissingData, type IMetric, type IWidget } from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import { FilterPattern, type ILogGroup, MetricFilter } from 'aws-cdk-lib/aws-logs';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import type { Queue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { INGEST_METRICS } from '../gateway/frame-envelope.ts';
import { METRICS_NAMESPACE, TENANT_DIMENSION, type MetricName } from '../metrics/metrics.ts';
import { acknowledge } from './nag-acknowledgements.ts';

export interface OperatorAlarmsProps {
  functions: Record<string, NodejsFunction>;
  frames: Queue;
  deadLetters: Queue;
  /** Standard queues that receive failed work (sweeper ticks, stream records given up on), by alarm name. */
  failureQueues?: Record<string, Queue>;
  stage: WebSocketStage;
  /** The admin and discovery HTTP API. */
  httpApi?: HttpApi;
  /** The stages' access logs: requests refused by throttling (status 429) are counted from them. */
  accessLogs?: { webSocket: ILogGroup; http?: ILogGroup };
  /** Tables whose throttling matters in this region (the global table's replica, the claims table). */
  tableNames: string[];
  alarmEmail?: string;
}

const FIVE_MINUTES = Duration.minutes(5);

/**
 * Requests API Gateway refused by throttling, counted from the access logs (status 429): unlike ClientError
 * they count nothing else. Free to extract; each is one custom metric.
 */
export const THROTTLED_METRICS = { namespace: 'XmppEdge', webSocket: 'WebSocketThrottled', http: 'HttpThrottled' } as const;

/** Quota refusals (all kinds, all tenants) in 5 minutes that alarm: above a client retrying now and then. */
export const QUOTA_REFUSALS_THRESHOLD = 100;
/** Events not published in 5 minutes that alarm: one tenant's receiver down for a moment stays below. */
export const EVENT_PUSH_FAILURES_THRESHOLD = 10;
/** How many tenants each per-tenant graph shows: the busiest by the graph's sum. */
export const TENANT_GRAPH_TOP = 10;

/** The per-tenant graphs of the dashboard's Tenants section, each of the counters named. */
export const TENANT_GRAPHS: readonly [title: string, names: readonly MetricName[]][] = [
  ['Connections and logins', ['Connections', 'Logins']],
  ['Login failures', ['LoginFailures']],
  ['Stanzas in and out', ['StanzasIn', 'StanzasOut']],
  ['Posts and DynamoDB calls', ['Posts', 'DynamoDBCalls']],
  ['Errors and throttled stanzas', ['Errors', 'Throttles']],
  ['Quota refusals', ['ConnectionQuotaRefusals', 'MessageQuotaRefusals', 'ArchiveQuotaRefusals']],
  ['Connects refused (per address)', ['ConnectRefusals']],
  ['Event push failures', ['EventPushFailures']],
];

/**
 * A counter's series for every tenant that has one, the busiest TENANT_GRAPH_TOP first: a metric math
 * SEARCH over the Tenant dimension, evaluated when the dashboard is viewed, so no deploy per tenant.
 * https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/search-expression-syntax.html
 */
export function byTenant(name: MetricName): MathExpression {
  const search = `SEARCH('{${METRICS_NAMESPACE},${TENANT_DIMENSION}} MetricName="${name}"', 'Sum', ${FIVE_MINUTES.toSeconds()})`;
  return new MathExpression({ expression: `SORT(${search}, SUM, DESC, ${TENANT_GRAPH_TOP})`, usingMetrics: {}, label: name, period: FIVE_MINUTES });
}

export class OperatorAlarms extends Construct {
  readonly topic: Topic;
  readonly alarms: Alarm[] = [];
  /** The region's dashboard: one section per part of the system; addSection() appends one. */
  readonly dashboard: Dashboard;

  constructor(scope: Construct, id: string, props: OperatorAlarmsProps) {
    super(scope, id);
    // enforceSSL: the topic's policy denies publishing and subscribing over plain HTTP.
    this.topic = new Topic(this, 'Topic', { displayName: 'xmpp-edge alarms', enforceSSL: true });
    if (props.alarmEmail) {
      const subscription = this.topic.addSubscription(new EmailSubscription(props.alarmEmail));
      acknowledge(subscription, 'Serverless-SNSRedrivePolicy',
        'The alarm e-mail subscription: a notification that cannot be delivered (after SNS\'s own e-mail retries) would wait in a queue that only another alarm, sent through this same topic, could announce. The alarms\' states stay in CloudWatch and on the region\'s dashboard, which is where an operator who misses e-mail looks.');
    }
    this.dashboard = new Dashboard(this, 'Dashboard', { defaultInterval: Duration.hours(3) });
    this.dashboard.addWidgets(new TextWidget({
      markdown: '# xmpp-edge\nAlarms notify the region\'s AlarmTopicArn; README "Deploy to AWS" says what each part is. The alarms\' states are at the bottom.',
      width: 24,
      height: 2,
    }));

    // --- ordered ingest
    const ingestMetric = (name: string) =>
      new Metric({ namespace: INGEST_METRICS.namespace, metricName: name, dimensionsMap: INGEST_METRICS.dimensions, statistic: 'Sum', period: FIVE_MINUTES });
    this.add('IngestFramesFailed', ingestMetric(INGEST_METRICS.failed), 1, 'Frames failed in the ingest and wait for redelivery (their connection is stalled meanwhile)');
    this.add('IngestDeadLetters', props.deadLetters.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(1), statistic: 'Maximum' }), 1,
      'Frames given up on after repeated failures are in the dead-letter queue: inspect and redrive or purge');
    this.add('IngestFramesWaiting', props.frames.metricApproximateAgeOfOldestMessage({ period: Duration.minutes(1), statistic: 'Maximum' }), 30,
      'A frame has waited more than 30 s in the ingest queue: users see lag');
    for (const [name, queue] of Object.entries(props.failureQueues ?? {})) {
      this.add(name, queue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(1), statistic: 'Maximum' }), 1,
        `Work failed and landed in the ${name} queue: read the messages (and the function's logs), then purge`);
    }
    this.addSection('Ordered ingest', [
      this.graph('Frames', [ingestMetric(INGEST_METRICS.failed), props.frames.metricNumberOfMessagesSent({ period: FIVE_MINUTES, statistic: 'Sum' })]),
      this.graph('Waiting and given up', [
        props.frames.metricApproximateAgeOfOldestMessage({ period: Duration.minutes(1), statistic: 'Maximum' }),
        props.deadLetters.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(1), statistic: 'Maximum' }),
        ...Object.values(props.failureQueues ?? {}).map((q) => q.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(1), statistic: 'Maximum' })),
      ]),
    ]);

    // --- functions
    for (const [name, fn] of Object.entries(props.functions)) {
      this.add(`${name}Errors`, fn.metricErrors({ period: FIVE_MINUTES, statistic: 'Sum' }), 1, `The ${name} function failed (errors or timeouts)`);
      this.add(`${name}Throttles`, fn.metricThrottles({ period: FIVE_MINUTES, statistic: 'Sum' }), 1, `The ${name} function was throttled: raise its concurrency or the account limit`);
    }
    const fns = Object.entries(props.functions);
    this.addSection('Functions', [
      this.graph('Invocations', fns.map(([name, fn]) => fn.metricInvocations({ period: FIVE_MINUTES, statistic: 'Sum', label: name }))),
      this.graph('Errors and throttles', fns.flatMap(([name, fn]) => [
        fn.metricErrors({ period: FIVE_MINUTES, statistic: 'Sum', label: `${name} errors` }),
        fn.metricThrottles({ period: FIVE_MINUTES, statistic: 'Sum', label: `${name} throttles` }),
      ])),
      this.graph('Duration p99 (ms)', fns.map(([name, fn]) => fn.metricDuration({ period: FIVE_MINUTES, statistic: 'p99', label: name }))),
    ]);

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
    const throttled: IMetric[] = [];
    for (const [kind, logGroup, threshold] of [['webSocket', props.accessLogs?.webSocket, 100], ['http', props.accessLogs?.http, 20]] as const) {
      if (!logGroup) continue;
      const metricName = THROTTLED_METRICS[kind];
      const filter = new MetricFilter(this, metricName, {
        logGroup,
        filterPattern: FilterPattern.stringValue('$.status', '=', '429'),
        metricNamespace: THROTTLED_METRICS.namespace,
        metricName,
        metricValue: '1',
      });
      const metric = filter.metric({ period: FIVE_MINUTES, statistic: 'Sum' });
      throttled.push(metric);
      this.add(`Api${metricName}`, metric, threshold,
        kind === 'webSocket'
          ? 'API Gateway refused WebSocket messages or connections by throttling: a flood, or webSocketThrottle/connectThrottle is too low for the users online'
          : 'API Gateway refused HTTP requests by throttling: a flood, or httpThrottle/hostMetaThrottle is too low');
    }
    this.addSection('API Gateway', [
      ...(throttled.length ? [this.graph('Refused by throttling (429)', throttled)] : []),
      this.graph('WebSocket', ['ConnectCount', 'MessageCount', 'ClientError', 'IntegrationError', 'ExecutionError'].map(stageMetric)),
      ...(props.httpApi
        ? [this.graph('HTTP API', [
            props.httpApi.metricCount({ period: FIVE_MINUTES, statistic: 'Sum' }),
            props.httpApi.metricClientError({ period: FIVE_MINUTES, statistic: 'Sum' }),
            props.httpApi.metricServerError({ period: FIVE_MINUTES, statistic: 'Sum' }),
          ])]
        : []),
    ]);

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
    this.addSection('DynamoDB', props.tableNames.map((tableName) =>
      this.graph(`Consumed capacity: ${tableName}`, ['ConsumedReadCapacityUnits', 'ConsumedWriteCapacityUnits'].map((metricName) =>
        new Metric({ namespace: 'AWS/DynamoDB', metricName, dimensionsMap: { TableName: tableName }, statistic: 'Sum', period: FIVE_MINUTES }))),
    ));

    // --- tenants: the per-tenant counters the functions write as EMF (docs/architecture.md "Metrics and
    // usage"). The graphs are SEARCH expressions, so a tenant added later shows up without a deploy;
    // alarms cannot watch a SEARCH, so they watch the deployment-wide series written beside them.
    const total = (name: MetricName) => new Metric({ namespace: METRICS_NAMESPACE, metricName: name, statistic: 'Sum', period: FIVE_MINUTES });
    this.add('TenantErrors', total('Errors'), 1, 'Frames failed with an internal error (any tenant): the "Tenants" graphs say whose, the functions\' logs why');
    this.add('QuotaRefusals', new MathExpression({
      expression: 'connections + messages + archive',
      usingMetrics: { connections: total('ConnectionQuotaRefusals'), messages: total('MessageQuotaRefusals'), archive: total('ArchiveQuotaRefusals') },
      period: FIVE_MINUTES,
      label: 'quota refusals, all tenants',
    }), QUOTA_REFUSALS_THRESHOLD, 'Many stanzas or sessions were refused by a tenant\'s quotas: a noisy tenant, or quotas too low for real use (README "Metrics and usage", Quotas); the "Tenants" graphs say whose');
    this.add('EventPushFailures', total('EventPushFailures'), EVENT_PUSH_FAILURES_THRESHOLD,
      'Events could not be published to tenants\' webhooks, SNS topics or EventBridge buses (webhooks are retried by the sweeper): the "Tenants" graphs say whose, `xmpp-edge events show` what');
    this.addSection('Tenants', TENANT_GRAPHS.map(([title, names]) => this.graph(title, names.map((name) => byTenant(name)))));

    this.addSection('Alarms', [new AlarmStatusWidget({ title: 'Alarms', alarms: [...this.alarms], width: 24, height: 4 })]);
  }

  /** Appends a titled row of widgets to the dashboard. */
  addSection(title: string, widgets: IWidget[]): void {
    this.dashboard.addWidgets(new TextWidget({ markdown: `## ${title}`, width: 24, height: 1 }));
    this.dashboard.addWidgets(...widgets);
  }

  private graph(title: string, metrics: IMetric[]): GraphWidget {
    return new GraphWidget({ title, left: metrics, width: 8, height: 6 });
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
