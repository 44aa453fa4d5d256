// The region's HTTP API (docs/architecture.md "Deploy: CDK"): the admin API under /api, IAM-authorised (the
// caller signs with SigV4 and needs execute-api:Invoke on it), and XEP-0156 connection discovery at
// /.well-known/host-meta(.json), public, and BOSH (XEP-0124/0206) at /http-bind, public (the stream
// authenticates with SASL; docs/architecture.md "BOSH"). IAM is the API's default authorizer, so a
// route added later is closed unless it says otherwise. Its $default stage has the stage throttle and
// JSON access logs of lib/infra/api-stages.ts, which a route added later shares.
import { Duration } from 'aws-cdk-lib';
import { HttpApi, HttpMethod, HttpNoneAuthorizer, HttpStage, type WebSocketStage } from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpIamAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import type { ITableV2 } from 'aws-cdk-lib/aws-dynamodb';
import type { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { BOSH_PATH } from '../gateway/bosh/endpoint.ts';
import { HOST_META_JSON_PATH, HOST_META_PATH } from '../gateway/host-meta.ts';
import { ADMIN_BASE_PATH } from '../runtime/http-api.ts';
import { accessLogs, HTTP_ACCESS_LOG_FIELDS, throttleRoute, throttleSettings } from './api-stages.ts';
import type { ThrottlingConfig } from './config.ts';
import { acknowledge, acknowledgeInBandAuth } from './nag-acknowledgements.ts';
import { ADMIN_ACCESS, STREAM_ACCESS } from './table-access.ts';
import { XmppFunction } from './xmpp-function.ts';

export interface HttpEndpointsProps {
  apiName: string;
  table: ITableV2;
  stage: WebSocketStage;
  otherRegions: readonly string[];
  logRetention: RetentionDays;
  /** What host-meta advertises: the region's wss:// URL, or the custom domain's. */
  webSocketUrl: string;
  /** The stage default (http) and the host-meta routes' throttle. */
  throttling: Pick<ThrottlingConfig, 'http' | 'hostMeta'>;
  /** The ingest's frame claims table: BOSH requests are claimed there too. */
  frameClaims: ITableV2;
}

export class HttpEndpoints extends Construct {
  readonly api: HttpApi;
  /** The $default stage (made here rather than by HttpApi, which takes no throttle or access logs for it). */
  readonly stage: HttpStage;
  /** JSON access logs of the stage, one line per request. */
  readonly accessLogs: LogGroup;
  readonly admin: XmppFunction;
  readonly hostMeta: XmppFunction;
  readonly bosh: XmppFunction;

  constructor(scope: Construct, id: string, props: HttpEndpointsProps) {
    super(scope, id);
    this.api = new HttpApi(this, 'Api', {
      apiName: props.apiName,
      description: 'xmpp-edge admin API (IAM) and XEP-0156 connection discovery',
      defaultAuthorizer: new HttpIamAuthorizer(),
      createDefaultStage: false,
    });
    const logs = accessLogs(this, 'AccessLogs', HTTP_ACCESS_LOG_FIELDS, props.logRetention);
    this.accessLogs = logs.logGroup;
    // Same id and path as HttpApi's own default stage: the same logical id, no replacement.
    this.stage = new HttpStage(this.api, 'DefaultStage', {
      httpApi: this.api,
      stageName: '$default',
      autoDeploy: true,
      throttle: throttleSettings(props.throttling.http),
      accessLogSettings: logs,
    });

    // Everything the admin API does: tenants, users, sessions of this region (byTenant), kicks and
    // stanzas sent as a user or the server, which reach connections in any listed region.
    this.admin = new XmppFunction(this, 'Admin', {
      entryName: 'admin',
      description: 'Admin API (tenants, users, sessions, stanzas) behind the IAM-authorised HTTP API',
      // HTTP APIs wait at most 30 s for an integration.
      timeout: Duration.seconds(29),
      logRetention: props.logRetention,
      invokedSynchronouslyBy: 'the HTTP API (the admin routes)',
    })
      .bindTable(props.table, ADMIN_ACCESS)
      .bindConnections(props.stage, ['POST', 'DELETE'], props.otherRegions);
    this.api.addRoutes({
      path: `${ADMIN_BASE_PATH}/{proxy+}`,
      methods: [HttpMethod.ANY],
      integration: new HttpLambdaIntegration('AdminIntegration', this.admin),
    });

    this.hostMeta = new XmppFunction(this, 'HostMeta', {
      entryName: 'host-meta',
      description: 'XEP-0156 host-meta documents: where to connect in this region',
      memorySize: 128,
      timeout: Duration.seconds(3),
      logRetention: props.logRetention,
      environment: { WEBSOCKET_URL: props.webSocketUrl, BOSH_URL: this.boshUrl },
      invokedSynchronouslyBy: 'the HTTP API (the host-meta routes)',
    });
    const discovery = new HttpLambdaIntegration('HostMetaIntegration', this.hostMeta);
    for (const path of [HOST_META_PATH, HOST_META_JSON_PATH]) {
      // XEP-0156: read by clients before they have any credentials.
      for (const route of this.api.addRoutes({ path, methods: [HttpMethod.GET], integration: discovery, authorizer: new HttpNoneAuthorizer() })) {
        acknowledge(route, 'AwsSolutions-APIG4',
          'XEP-0156 connection discovery: clients read host-meta before they have any credentials, to learn where to connect, so it must be public (as on any XMPP server\'s web host). It returns a fixed document naming this region\'s public WebSocket URL, reads no data, and has its own route throttle.');
        throttleRoute(this.stage, route, props.throttling.hostMeta);
      }
    }

    // BOSH: a request is a stream's frames, so the function may do what the ingest does (the table,
    // the frame claims, posts and closes to WebSocket connections in any listed region). A request
    // waits at most 25 s (functions/bosh.ts); the HTTP API gives up at 30.
    this.bosh = new XmppFunction(this, 'Bosh', {
      entryName: 'bosh',
      description: 'XEP-0124/0206 BOSH: XMPP over HTTP long-polling',
      memorySize: 256,
      timeout: Duration.seconds(29),
      logRetention: props.logRetention,
      invokedSynchronouslyBy: 'the HTTP API (the BOSH routes)',
    })
      .bindTable(props.table, STREAM_ACCESS)
      .bindTable(props.frameClaims, { actions: ['dynamodb:PutItem', 'dynamodb:DeleteItem'] }, 'FRAME_CLAIMS_TABLE')
      .bindConnections(props.stage, ['POST', 'DELETE'], props.otherRegions);
    // Browsers send a CORS preflight (OPTIONS) before their first POST; both are public.
    const [post, preflight] = this.api.addRoutes({
      path: BOSH_PATH,
      methods: [HttpMethod.POST, HttpMethod.OPTIONS],
      integration: new HttpLambdaIntegration('BoshIntegration', this.bosh),
      authorizer: new HttpNoneAuthorizer(),
    });
    acknowledgeInBandAuth(post, 'BOSH');
    acknowledge(preflight, 'AwsSolutions-APIG4',
      'the CORS preflight of BOSH (Fetch standard: browsers send OPTIONS without credentials); it answers only which origins, methods and headers the tenant allows, and the stage throttle bounds its cost.');
  }

  /** https://{api}.execute-api.{region}.amazonaws.com/http-bind */
  get boshUrl(): string {
    return `${this.api.apiEndpoint}${BOSH_PATH}`;
  }

  /** https://{api}.execute-api.{region}.amazonaws.com/api */
  get adminUrl(): string {
    return `${this.api.apiEndpoint}${ADMIN_BASE_PATH}`;
  }
}
