// What every API Gateway stage of xmpp-edge gets (issue 16): default throttling from context, route
// throttling where one route must be tighter than the stage, and JSON access logs in a log group with a
// retention. One place for both APIs, so a route or stage added later (BOSH on the HTTP API, a component
// route on the WebSocket API) is covered by the stage default and can be throttled with one call.
// https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-throttling.html
// https://docs.aws.amazon.com/apigateway/latest/developerguide/websocket-api-logging.html
import { RemovalPolicy } from 'aws-cdk-lib';
import { AccessLogField, AccessLogFormat, CfnAccount } from 'aws-cdk-lib/aws-apigateway';
import { type CfnStage, type IAccessLogSettings, LogGroupLogDestination, type ThrottleSettings } from 'aws-cdk-lib/aws-apigatewayv2';
import { ManagedPolicy, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct, type IConstruct } from 'constructs';
import type { Throttle } from './config.ts';
import { acknowledge } from './nag-acknowledgements.ts';

/** A stage's throttle in the L2 constructs' terms. */
export const throttleSettings = (t: Throttle): ThrottleSettings => ({ rateLimit: t.rate, burstLimit: t.burst });

/**
 * One access-log line per WebSocket message or event, as JSON. The XMPP tenant is not known to API
 * Gateway (it comes in-band, in the stream header): the functions' own log lines carry it with the
 * connection id, which joins the two.
 */
export const WEBSOCKET_ACCESS_LOG_FIELDS: Record<string, string> = {
  requestId: AccessLogField.contextRequestId(),
  connectionId: AccessLogField.contextConnectionId(),
  eventType: AccessLogField.contextEventType(),
  routeKey: AccessLogField.contextRouteKey(),
  messageId: '$context.messageId',
  status: AccessLogField.contextStatus(),
  requestTimeEpoch: AccessLogField.contextRequestTimeEpoch(),
  ip: AccessLogField.contextIdentitySourceIp(),
  integrationStatus: '$context.integration.status',
  integrationLatency: '$context.integration.latency',
  error: AccessLogField.contextErrorMessage(),
};

/** One access-log line per HTTP request, as JSON; `caller` is the SigV4 principal of an admin API call. */
export const HTTP_ACCESS_LOG_FIELDS: Record<string, string> = {
  requestId: AccessLogField.contextRequestId(),
  routeKey: AccessLogField.contextRouteKey(),
  method: AccessLogField.contextHttpMethod(),
  path: AccessLogField.contextPath(),
  status: AccessLogField.contextStatus(),
  requestTimeEpoch: AccessLogField.contextRequestTimeEpoch(),
  ip: AccessLogField.contextIdentitySourceIp(),
  caller: '$context.identity.userArn',
  responseLength: AccessLogField.contextResponseLength(),
  integrationStatus: '$context.integration.status',
  integrationLatency: '$context.integration.latency',
  error: AccessLogField.contextErrorMessage(),
};

/** Access logs of one stage into a log group of its own, kept `retention`, removed with the stack. */
export function accessLogs(scope: Construct, id: string, fields: Record<string, string>, retention: RetentionDays): IAccessLogSettings & { logGroup: LogGroup } {
  const logGroup = new LogGroup(scope, id, { retention, removalPolicy: RemovalPolicy.DESTROY });
  return { destination: new LogGroupLogDestination(logGroup), format: AccessLogFormat.custom(JSON.stringify(fields)), logGroup };
}

/** A construct with a route key: WebSocketRoute has it; an HttpRoute's is on its CfnRoute. */
interface RouteLike extends IConstruct {
  routeKey?: string;
}

/**
 * Throttles one route of `stage` tighter than the stage default. API Gateway rejects route settings
 * for a route it does not know yet, so the stage waits for the route.
 */
export function throttleRoute(stage: IConstruct, route: RouteLike, limits: Throttle): void {
  const key = route.routeKey ?? (route.node.defaultChild as { routeKey?: string } | undefined)?.routeKey;
  if (!key) throw new Error(`throttleRoute: ${route.node.path} has no route key`);
  const cfn = stage.node.defaultChild as CfnStage;
  const settings = (cfn.routeSettings ?? {}) as Record<string, unknown>;
  cfn.routeSettings = { ...settings, [key]: { ThrottlingRateLimit: limits.rate, ThrottlingBurstLimit: limits.burst } };
  cfn.node.addDependency(route);
}

/** The route settings a stage got from throttleRoute(), by route key (for tests and the README table). */
export function routeThrottles(stage: IConstruct): Record<string, Throttle> {
  const settings = ((stage.node.defaultChild as CfnStage).routeSettings ?? {}) as Record<string, { ThrottlingRateLimit: number; ThrottlingBurstLimit: number }>;
  return Object.fromEntries(Object.entries(settings).map(([k, v]) => [k, { rate: v.ThrottlingRateLimit, burst: v.ThrottlingBurstLimit }]));
}

/**
 * The account's API Gateway CloudWatch Logs role in this region: WebSocket (and REST) stages cannot
 * log without it ("CloudWatch Logs role ARN must be set in account settings"); HTTP APIs do not need it.
 * It is one setting per account and region, so a team that already has one turns this off
 * (apiGatewayLogsRole=false).
 */
export class ApiGatewayLogsRole extends Construct {
  readonly role: Role;
  readonly account: CfnAccount;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    this.role = new Role(this, 'Role', {
      assumedBy: new ServicePrincipal('apigateway.amazonaws.com'),
      description: 'API Gateway account setting: writes API access and execution logs to CloudWatch Logs',
      managedPolicies: [ManagedPolicy.fromAwsManagedPolicyName('service-role/AmazonAPIGatewayPushToCloudWatchLogs')],
    });
    this.account = new CfnAccount(this, 'Account', { cloudWatchRoleArn: this.role.roleArn });
    acknowledge(this.role, 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]',
      'The AWS-maintained policy that API Gateway documents for its account-level CloudWatch Logs role; the role is assumed only by apigateway.amazonaws.com, and API Gateway needs to create the log streams of any API stage in the account, which no narrower resource list expresses.');
  }
}

/** The stage's Cfn resource waits for the account setting, or its first deploy fails. */
export function afterLogsRole(stage: IConstruct, logsRole: ApiGatewayLogsRole | undefined): void {
  if (logsRole) (stage.node.defaultChild as CfnStage).node.addDependency(logsRole.account);
}
