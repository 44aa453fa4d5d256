// The optional custom domain (issue 5, geo-allocation): with the domainName context, each region maps its
// WebSocket stage to the same host name and adds a latency-based Route 53 record, so clients reach the
// nearest region; without it, nothing of the kind is in the templates. Synthesized offline: the zone is
// given by id and name, never looked up.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { buildApp, type XmppEdgeStacks } from '../../lib/infra/app.ts';

const CDK_CONTEXT = JSON.parse(readFileSync(new URL('../../cdk.json', import.meta.url), 'utf8')).context as Record<string, unknown>;
const DOMAIN = { domainName: 'xmpp.example.com', hostedZoneId: 'Z0123456789ABCDEFGHIJ', hostedZoneName: 'example.com' };
const US_CERT = 'arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-4e5f-6789-abcd-ef0123456789';

type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any -- CloudFormation JSON

/** Synthesizes the app with `context` (no bundling: these tests read templates only) and hands over its stacks. */
function withApp<T>(context: Record<string, unknown>, fn: (stacks: XmppEdgeStacks, missing: unknown) => T): T {
  const outdir = mkdtempSync(join(tmpdir(), 'xmpp-edge-cdk-'));
  try {
    const app = new App({ context: { ...CDK_CONTEXT, 'aws:cdk:bundling-stacks': [], ...context }, outdir });
    const stacks = buildApp(app, undefined);
    const assembly = app.synth();
    return fn(stacks, assembly.manifest.missing);
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}
const one = (t: Template, type: string): Json => {
  const all = Object.values(t.findResources(type));
  assert.equal(all.length, 1, type);
  return all[0].Properties;
};
const hostMetaUrl = (stacks: XmppEdgeStacks, region: string) => {
  const stack = stacks.regions.get(region)!;
  const fns = Template.fromStack(stack).findResources('AWS::Lambda::Function');
  return fns[stack.getLogicalId(stack.functions.hostMeta.node.defaultChild as never)].Properties.Environment.Variables.WEBSOCKET_URL;
};

describe('custom domain', () => {
  it('without the domainName context: no domain, certificate, record or health check; host-meta names the execute-api URL', () => {
    withApp({}, (stacks) => {
      for (const [region, stack] of stacks.regions) {
        const t = Template.fromStack(stack);
        for (const type of ['AWS::ApiGatewayV2::DomainName', 'AWS::ApiGatewayV2::ApiMapping', 'AWS::CertificateManager::Certificate', 'AWS::Route53::RecordSet', 'AWS::Route53::HealthCheck']) {
          t.resourceCountIs(type, 0);
        }
        assert.match(JSON.stringify(hostMetaUrl(stacks, region)), /wss:\/\/.*execute-api/);
        assert.equal(t.toJSON().Outputs.CustomDomainUrl, undefined);
      }
    });
  });

  it('with it: every region maps its WebSocket stage to wss://xmpp.example.com/xmpp-websocket behind a latency record', () => {
    withApp({ ...DOMAIN, certificateArns: `us-east-1=${US_CERT}` }, (stacks, missing) => {
      assert.equal(missing, undefined, 'no context lookups: synth stays offline');
      for (const [region, stack] of stacks.regions) {
        const t = Template.fromStack(stack);
        const domainId = stack.getLogicalId(stack.customDomain!.domainName.node.defaultChild as never);
        const domain = one(t, 'AWS::ApiGatewayV2::DomainName');
        assert.equal(domain.DomainName, 'xmpp.example.com');
        assert.equal(domain.DomainNameConfigurations[0].EndpointType, 'REGIONAL');
        assert.equal(domain.DomainNameConfigurations[0].SecurityPolicy, 'TLS_1_2');

        const mapping = one(t, 'AWS::ApiGatewayV2::ApiMapping');
        assert.deepEqual(mapping.ApiId, { Ref: stack.getLogicalId(stack.api.node.defaultChild as never) }, 'the WebSocket API, not the HTTP API');
        assert.equal(mapping.Stage, 'xmpp');
        assert.equal(mapping.ApiMappingKey, 'xmpp-websocket');
        assert.deepEqual(mapping.DomainName, { Ref: domainId });

        const record = one(t, 'AWS::Route53::RecordSet');
        assert.equal(record.Type, 'A');
        assert.equal(record.Name, 'xmpp.example.com.');
        assert.equal(record.HostedZoneId, 'Z0123456789ABCDEFGHIJ');
        assert.equal(record.Region, region, 'latency-based: answered for clients nearest this region');
        assert.equal(record.SetIdentifier, `xmpp-edge-${region}`);
        assert.deepEqual(record.AliasTarget, {
          DNSName: { 'Fn::GetAtt': [domainId, 'RegionalDomainName'] },
          HostedZoneId: { 'Fn::GetAtt': [domainId, 'RegionalHostedZoneId'] },
        });
        assert.equal(record.HealthCheckId, undefined);
        t.resourceCountIs('AWS::Route53::HealthCheck', 0);

        assert.equal(hostMetaUrl(stacks, region), 'wss://xmpp.example.com/xmpp-websocket', 'host-meta sends clients to the latency-routed name');
        assert.equal(t.toJSON().Outputs.CustomDomainUrl.Value, 'wss://xmpp.example.com/xmpp-websocket');
        // Sessions still record the region's own execute-api endpoint: posts go to the region, not through DNS.
        const ingest = t.findResources('AWS::Lambda::Function')[stack.getLogicalId(stack.functions.ingest.node.defaultChild as never)];
        assert.match(JSON.stringify(ingest.Properties.Environment.Variables.MANAGEMENT_ENDPOINT), /execute-api/);
      }
    });
  });

  it('uses the certificate given for a region, and makes a DNS-validated one in the region that has none', () => {
    withApp({ ...DOMAIN, certificateArns: { 'us-east-1': US_CERT } }, (stacks) => {
      const eu = Template.fromStack(stacks.regions.get('eu-west-1')!);
      const cert = one(eu, 'AWS::CertificateManager::Certificate');
      assert.equal(cert.DomainName, 'xmpp.example.com');
      assert.equal(cert.ValidationMethod, 'DNS');
      assert.deepEqual(cert.DomainValidationOptions, [{ DomainName: 'xmpp.example.com', HostedZoneId: 'Z0123456789ABCDEFGHIJ' }]);
      assert.deepEqual(one(eu, 'AWS::ApiGatewayV2::DomainName').DomainNameConfigurations[0].CertificateArn, {
        Ref: stacks.regions.get('eu-west-1')!.getLogicalId(stacks.regions.get('eu-west-1')!.customDomain!.certificate.node.defaultChild as never),
      });
      const us = Template.fromStack(stacks.regions.get('us-east-1')!);
      us.resourceCountIs('AWS::CertificateManager::Certificate', 0);
      assert.equal(one(us, 'AWS::ApiGatewayV2::DomainName').DomainNameConfigurations[0].CertificateArn, US_CERT);
    });
  });

  it('with healthCheck=true: an HTTPS check of the region\'s host-meta takes a failing region out of the answers', () => {
    withApp({ ...DOMAIN, healthCheck: 'true' }, (stacks) => {
      for (const stack of stacks.regions.values()) {
        const t = Template.fromStack(stack);
        const check = one(t, 'AWS::Route53::HealthCheck').HealthCheckConfig;
        assert.equal(check.Type, 'HTTPS');
        assert.equal(check.ResourcePath, '/.well-known/host-meta');
        assert.equal(check.Port, 443);
        assert.deepEqual(check.FullyQualifiedDomainName, {
          'Fn::Select': [2, { 'Fn::Split': ['/', { 'Fn::GetAtt': [stack.getLogicalId(stack.http.api.node.defaultChild as never), 'ApiEndpoint'] }] }],
        });
        assert.equal(check.Regions.length, 3, 'the fewest checker regions: each probe is a billed request');
        assert.deepEqual(one(t, 'AWS::Route53::RecordSet').HealthCheckId, { Ref: stack.getLogicalId(stack.customDomain!.healthCheck!.node.defaultChild as never) });
      }
    });
  });

  it('refuses incomplete or inconsistent settings, naming the context key', () => {
    const attempt = (context: Record<string, unknown>) => () => withApp(context, () => undefined);
    assert.throws(attempt({ domainName: 'xmpp.example.com' }), /needs "hostedZoneId" and "hostedZoneName"/);
    assert.throws(attempt({ ...DOMAIN, domainName: 'xmpp.example.org' }), /not in the zone example.com/);
    assert.throws(attempt({ ...DOMAIN, hostedZoneId: 'example.com' }), /hostedZoneId/);
    assert.throws(attempt({ ...DOMAIN, domainName: 'xmpp_edge.example.com' }), /not a host name/);
    assert.throws(attempt({ ...DOMAIN, certificateArns: { 'eu-west-1': US_CERT } }), /certificate for eu-west-1 must be an ACM certificate ARN in eu-west-1/);
    assert.throws(attempt({ ...DOMAIN, certificateArns: { 'ap-south-1': US_CERT } }), /ap-south-1 is not one of the regions/);
    assert.throws(attempt({ hostedZoneId: 'Z0123456789ABCDEFGHIJ' }), /need "domainName"/);
  });
});
