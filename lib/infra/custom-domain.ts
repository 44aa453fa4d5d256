// Geo-allocation (issue 5): one host name for every region. Each region stack maps its WebSocket stage
// to the custom domain (an API Gateway regional domain name with a certificate in that region) and
// adds a latency-based alias record for it, so Route 53 answers each client with the region nearest to
// it; with healthCheck=true, a health check on the region's host-meta document takes a failing region
// out of the answers.
// A WebSocket API cannot share its custom domain with an HTTP API, so the admin API and host-meta keep
// their execute-api host names; host-meta advertises this domain.
// https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/routing-policy-latency.html
import { Duration, Fn, Stack } from 'aws-cdk-lib';
import { ApiMapping, DomainName, EndpointType, SecurityPolicy, type HttpApi, type WebSocketApi, type WebSocketStage } from 'aws-cdk-lib/aws-apigatewayv2';
import { Certificate, CertificateValidation, type ICertificate } from 'aws-cdk-lib/aws-certificatemanager';
import { ARecord, HealthCheck, HealthCheckType, HostedZone, RecordTarget } from 'aws-cdk-lib/aws-route53';
import { ApiGatewayv2DomainProperties } from 'aws-cdk-lib/aws-route53-targets';
import { Construct } from 'constructs';
import { HOST_META_PATH } from '../gateway/host-meta.ts';
import type { CustomDomainConfig } from './config.ts';

/** The path the WebSocket stage is mapped to: wss://{domain}/xmpp-websocket, as on a laptop. */
export const WEBSOCKET_PATH = 'xmpp-websocket';

/** Where clients connect when the stacks have a custom domain. */
export const customDomainUrl = (config: CustomDomainConfig): string => `wss://${config.domainName}/${WEBSOCKET_PATH}`;

/** Route 53 health checkers that probe each region (three, the fewest allowed: each probe is a request). */
export const HEALTH_CHECKER_REGIONS = ['us-east-1', 'eu-west-1', 'ap-southeast-1'];

export interface CustomDomainProps {
  config: CustomDomainConfig;
  api: WebSocketApi;
  stage: WebSocketStage;
  /** Probed by the health check: its public host-meta route. */
  httpApi: HttpApi;
}

export class CustomDomain extends Construct {
  readonly certificate: ICertificate;
  readonly domainName: DomainName;
  readonly record: ARecord;
  readonly healthCheck?: HealthCheck;
  /** wss://{domainName}/xmpp-websocket */
  readonly webSocketUrl: string;

  constructor(scope: Construct, id: string, props: CustomDomainProps) {
    super(scope, id);
    const region = Stack.of(this).region;
    const { domainName, hostedZoneId, hostedZoneName, certificateArns } = props.config;
    const zone = HostedZone.fromHostedZoneAttributes(this, 'Zone', { hostedZoneId, zoneName: hostedZoneName });

    // API Gateway takes a regional domain's certificate from ACM in the same region.
    const arn = certificateArns[region];
    this.certificate = arn
      ? Certificate.fromCertificateArn(this, 'Certificate', arn)
      : new Certificate(this, 'Certificate', { domainName, validation: CertificateValidation.fromDns(zone) });

    this.domainName = new DomainName(this, 'DomainName', {
      domainName,
      certificate: this.certificate,
      endpointType: EndpointType.REGIONAL,
      securityPolicy: SecurityPolicy.TLS_1_2,
    });
    new ApiMapping(this, 'WebSocketMapping', { api: props.api, stage: props.stage, domainName: this.domainName, apiMappingKey: WEBSOCKET_PATH });
    this.webSocketUrl = customDomainUrl(props.config);

    if (props.config.healthCheck) {
      this.healthCheck = new HealthCheck(this, 'HealthCheck', {
        type: HealthCheckType.HTTPS,
        // https://{id}.execute-api.{region}.amazonaws.com → its host name
        fqdn: Fn.select(2, Fn.split('/', props.httpApi.apiEndpoint)),
        port: 443,
        resourcePath: HOST_META_PATH,
        enableSNI: true,
        requestInterval: Duration.seconds(30),
        failureThreshold: 3,
        regions: HEALTH_CHECKER_REGIONS,
      });
    }

    this.record = new ARecord(this, 'LatencyRecord', {
      zone,
      recordName: domainName,
      target: RecordTarget.fromAlias(new ApiGatewayv2DomainProperties(this.domainName.regionalDomainName, this.domainName.regionalHostedZoneId)),
      // Latency-based routing: one record per region under the same name.
      region,
      setIdentifier: `xmpp-edge-${region}`,
      healthCheck: this.healthCheck,
    });
  }
}
