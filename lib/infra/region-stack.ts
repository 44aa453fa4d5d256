// Everything xmpp-edge runs in one region (docs/architecture.md "Deploy: CDK"): the WebSocket API with its three
// routes, the ordered ingest, the sweeper, alarms, outputs. The global table is made once by
// GlobalTableStack; this stack refers to its replica in this region by name.
import { CfnOutput, Duration, Stack, type StackProps } from 'aws-cdk-lib';
import { WebSocketApi, type WebSocketRoute, WebSocketStage } from 'aws-cdk-lib/aws-apigatewayv2';
import { WebSocketLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import { TableV2 } from 'aws-cdk-lib/aws-dynamodb';
import { Rule, Schedule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import { SqsDestination } from 'aws-cdk-lib/aws-lambda-destinations';
import type { LogGroup } from 'aws-cdk-lib/aws-logs';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { AwsCustomResource } from 'aws-cdk-lib/custom-resources';
import type { Construct } from 'constructs';
import { accessLogs, afterLogsRole, ApiGatewayLogsRole, throttleRoute, throttleSettings, WEBSOCKET_ACCESS_LOG_FIELDS } from './api-stages.ts';
import { type DeploymentConfig, RUNTIME_KEYS } from './config.ts';
import { CustomDomain, customDomainUrl } from './custom-domain.ts';
import { eventTargetArns, grantEventTargets } from './event-targets.ts';
import { HttpEndpoints } from './http-endpoints.ts';
import { OperatorAlarms } from './operator-alarms.ts';
import { acknowledge, acknowledgeDeadLetterQueue, acknowledgeInBandAuth } from './nag-acknowledgements.ts';
import { OrderedIngest } from './ordered-ingest.ts';
import { TenantChanges } from './tenant-changes.ts';
import { CONNECT_ACCESS, STREAM_ACCESS, SWEEPER_ACCESS, SWEEPER_PURGING_ACCESS } from './table-access.ts';
import { XmppFunction } from './xmpp-function.ts';

/** The sweeper's timeout; a purge stops starting new pages PURGE_MARGIN_MS (functions/sweeper.ts) before it. */
export const SWEEPER_TIMEOUT = Duration.seconds(50);

export interface RegionStackProps extends StackProps {
  config: DeploymentConfig;
}

export class RegionStack extends Stack {
  readonly api: WebSocketApi;
  readonly stage: WebSocketStage;
  /** JSON access logs of the WebSocket stage, one line per message or event. */
  readonly accessLogs: LogGroup;
  /** Set with apiGatewayLogsRole (the default): the account's API Gateway CloudWatch Logs role in this region. */
  readonly logsRole?: ApiGatewayLogsRole;
  /** The sweeper's schedule events that failed: EventBridge's delivery failures and the function's own. */
  readonly sweeperFailures: Queue;
  readonly ingest: OrderedIngest;
  readonly tenantChanges: TenantChanges;
  readonly http: HttpEndpoints;
  /** With the domainName context: the WebSocket API on the custom domain, latency-routed. */
  readonly customDomain?: CustomDomain;
  readonly functions: {
    connect: XmppFunction;
    disconnect: XmppFunction;
    ingest: XmppFunction;
    sweeper: XmppFunction;
    tenantChanges: XmppFunction;
    admin: XmppFunction;
    hostMeta: XmppFunction;
    bosh: XmppFunction;
  };
  readonly alarms: OperatorAlarms;

  constructor(scope: Construct, id: string, props: RegionStackProps) {
    super(scope, id, props);
    const { config } = props;
    const logRetention = config.logRetention;
    const otherRegions = config.regions.filter((r) => r !== this.region);
    const table = TableV2.fromTableName(this, 'Table', config.tableName);

    this.api = new WebSocketApi(this, 'WebSocket', {
      apiName: `${config.stackPrefix}-${this.region}`,
      description: 'XMPP over WebSocket (RFC 7395)',
    });
    if (config.apiGatewayLogsRole) this.logsRole = new ApiGatewayLogsRole(this, 'ApiGatewayLogsRole');
    const wsLogs = accessLogs(this, 'WebSocketAccessLogs', WEBSOCKET_ACCESS_LOG_FIELDS, logRetention);
    this.accessLogs = wsLogs.logGroup;
    this.stage = new WebSocketStage(this, 'Stage', {
      webSocketApi: this.api,
      stageName: config.stageName,
      autoDeploy: true,
      // Every message of every connection: what a flood can cost per second (README "Throttling").
      throttle: throttleSettings(config.throttling.webSocket),
      accessLogSettings: wsLogs,
    });
    afterLogsRole(this.stage, this.logsRole);

    // $connect: the Lambda proxy answers with the Sec-WebSocket-Protocol header (RFC 7395 §3.3).
    const connect = new XmppFunction(this, 'Connect', {
      entryName: 'connect',
      description: 'WebSocket $connect: records the connection, accepts only the xmpp subprotocol (RFC 7395 §3.3)',
      logRetention,
      invokedSynchronouslyBy: 'API Gateway (the WebSocket $connect route: a failure refuses the connection)',
    }).bindTable(table, CONNECT_ACCESS);
    // Posts nothing, but the connection records the endpoint that reaches it.
    connect.addEnvironment('MANAGEMENT_ENDPOINT', this.stage.callbackUrl);

    // $disconnect ends the session: unavailable presence goes to contacts wherever they are connected.
    const disconnect = new XmppFunction(this, 'Disconnect', {
      entryName: 'disconnect',
      description: 'WebSocket $disconnect: ends the connection and its session',
      logRetention,
      invokedSynchronouslyBy: 'API Gateway (the WebSocket $disconnect route; the sweeper ends what a failure leaves)',
    })
      .bindTable(table, STREAM_ACCESS)
      .bindConnections(this.stage, ['POST'], otherRegions);

    const connectRoute = this.api.addRoute('$connect', { integration: new WebSocketLambdaIntegration('Connect', connect) });
    const disconnectRoute = this.api.addRoute('$disconnect', { integration: new WebSocketLambdaIntegration('Disconnect', disconnect) });
    this.ingest = new OrderedIngest(this, 'Ingest', { stage: this.stage, table, otherRegions, logRetention });
    const defaultRoute = this.api.addRoute('$default', { integration: this.ingest.integration });
    // New connections cost a Lambda call and a write each: their own, tighter bucket.
    throttleRoute(this.stage, connectRoute, config.throttling.connect);
    for (const route of [connectRoute, disconnectRoute, defaultRoute] as WebSocketRoute[]) acknowledgeInBandAuth(route, 'WebSocket');

    // The sweeper ends connections whose $disconnect never came: it asks the gateway (GET) whether
    // each due connection lives, and an ended session's presence goes out (POST). In the table's home
    // region (the first listed) it also works on tenant purges: once is enough for a global table.
    const home = this.region === config.regions[0];
    // A schedule tick carries nothing worth retrying (the next one comes in a minute), so neither
    // EventBridge nor Lambda retries; what fails lands here, for the SweeperFailures alarm.
    this.sweeperFailures = new Queue(this, 'SweeperFailures', {
      retentionPeriod: Duration.days(14),
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
    });
    acknowledgeDeadLetterQueue(this.sweeperFailures, 'the sweeper\'s schedule (EventBridge target) and the on-failure destination of the sweeper function\'s asynchronous invocations');
    const sweeper = new XmppFunction(this, 'Sweeper', {
      entryName: 'sweeper',
      description: home
        ? 'Every minute: ends connections that are gone without a $disconnect; purges deleted tenants'
        : 'Every minute: ends connections that are gone without a $disconnect',
      timeout: SWEEPER_TIMEOUT,
      logRetention,
      environment: home ? { PURGE_TENANTS: 'true' } : {},
      retryAttempts: 0,
      onFailure: new SqsDestination(this.sweeperFailures),
    })
      .bindTable(table, home ? SWEEPER_PURGING_ACCESS : SWEEPER_ACCESS)
      .bindConnections(this.stage, ['GET', 'POST'], otherRegions);
    new Rule(this, 'SweepEveryMinute', {
      description: 'Runs the xmpp-edge sweeper',
      schedule: Schedule.rate(Duration.minutes(1)),
      targets: [new LambdaFunction(sweeper, { retryAttempts: 0, deadLetterQueue: this.sweeperFailures })],
    });

    this.tenantChanges = new TenantChanges(this, 'TenantChanges', { table, stage: this.stage, otherRegions, logRetention });

    this.http = new HttpEndpoints(this, 'Http', {
      apiName: `${config.stackPrefix}-${this.region}-http`,
      table,
      stage: this.stage,
      otherRegions,
      logRetention,
      // host-meta names the custom domain when there is one: Route 53 then picks the nearest region.
      webSocketUrl: config.customDomain ? customDomainUrl(config.customDomain) : this.stage.url,
      throttling: config.throttling,
      frameClaims: this.ingest.claims,
    });
    afterLogsRole(this.http.stage, this.logsRole);
    if (config.customDomain) {
      this.customDomain = new CustomDomain(this, 'CustomDomain', { config: config.customDomain, api: this.api, stage: this.stage, httpApi: this.http.api });
    }

    this.functions = {
      connect,
      disconnect,
      ingest: this.ingest.function,
      sweeper,
      tenantChanges: this.tenantChanges.function,
      admin: this.http.admin,
      hostMeta: this.http.hostMeta,
      bosh: this.http.bosh,
    };
    // Event push (README "Event push"): publish only to the deployment's listed topics and buses.
    grantEventTargets([disconnect, this.ingest.function, sweeper, this.tenantChanges.function, this.http.admin], eventTargetArns(config.eventTargetArns));
    this.alarms = new OperatorAlarms(this, 'Alarms', {
      functions: this.functions,
      frames: this.ingest.queue,
      deadLetters: this.ingest.deadLetterQueue,
      failureQueues: { SweeperFailures: this.sweeperFailures, TenantChangeFailures: this.tenantChanges.failures },
      stage: this.stage,
      httpApi: this.http.api,
      accessLogs: { webSocket: this.accessLogs, http: this.http.accessLogs },
      tableNames: [config.tableName, this.ingest.claims.tableName],
      alarmEmail: config.alarmEmail,
    });

    // What the functions read from their environment besides the table and endpoint (lib/runtime/lambda.ts):
    // the $connect cap on $connect, and the usage flush interval on every function that counts usage.
    const env = (name: keyof typeof RUNTIME_KEYS) => [RUNTIME_KEYS[name], String(config.runtime[name])] as const;
    connect.addEnvironment(...env('connectsPerAddress'));
    connect.addEnvironment(...env('connectWindowSeconds'));
    for (const fn of [connect, disconnect, this.ingest.function, sweeper, this.tenantChanges.function, this.http.admin, this.http.bosh]) fn.addEnvironment(...env('usageFlushSeconds'));

    XmppFunction.applyDeploymentSettings(this, { tracing: config.tracing, sourceMaps: config.sourceMaps });
    this.acknowledgeCdkProvider();

    new CfnOutput(this, 'WebSocketUrl', { value: this.stage.url, description: 'Point XMPP clients here (RFC 7395)' });
    new CfnOutput(this, 'ManagementEndpoint', { value: this.stage.callbackUrl, description: 'The @connections endpoint sessions of this region record' });
    if (this.customDomain) {
      new CfnOutput(this, 'CustomDomainUrl', { value: this.customDomain.webSocketUrl, description: 'Point XMPP clients here: Route 53 answers with the nearest healthy region' });
      new CfnOutput(this, 'CustomDomainTarget', { value: this.customDomain.domainName.regionalDomainName, description: 'This region\'s API Gateway host behind the custom domain' });
    }
    new CfnOutput(this, 'AdminUrl', { value: this.http.adminUrl, description: 'The admin API (IAM: sign with SigV4, service execute-api); OpenAPI at /api/openapi.json' });
    new CfnOutput(this, 'BoshUrl', { value: this.http.boshUrl, description: 'XEP-0206 BOSH for clients that cannot use WebSocket' });
    new CfnOutput(this, 'HostMetaUrl', { value: `${this.http.api.apiEndpoint}/.well-known/host-meta`, description: 'XEP-0156 connection discovery for this region' });
    new CfnOutput(this, 'AlarmTopicArn', { value: this.alarms.topic.topicArn, description: 'Subscribe here to receive the alarms' });
    new CfnOutput(this, 'DeadLetterQueueUrl', { value: this.ingest.deadLetterQueue.queueUrl, description: 'Frames the ingest gave up on' });
    new CfnOutput(this, 'DashboardName', { value: this.alarms.dashboard.dashboardName, description: 'The CloudWatch dashboard of this region' });
  }

  /**
   * The function CDK's AwsCustomResource runs (the stream ARN lookup of TenantChanges): CDK's code, with
   * CDK's role, invoked by CloudFormation at deploy time only.
   */
  private acknowledgeCdkProvider(): void {
    // SingletonFunction's construct id: "AWS" and the uuid without dashes.
    const provider = this.node.tryFindChild(`AWS${AwsCustomResource.PROVIDER_FUNCTION_UUID.replace(/-/g, '')}`);
    if (!provider) return;
    acknowledge(provider, 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
      'The role of the function aws-cdk-lib provides for AwsCustomResource, which the construct does not let us replace; it runs only during deployments (one DynamoDB DescribeTable of this region\'s replica) and writes only its own logs.');
    acknowledge(provider, 'Serverless-LambdaDLQ', 'Invoked synchronously by CloudFormation during a deployment, which reports and rolls back a failure: no asynchronous event exists to dead-letter.');
    acknowledge(provider, 'Serverless-LambdaTracing', 'Runs once per deployment (one DescribeTable call); a trace would show nothing the CloudFormation events do not.');
  }
}
