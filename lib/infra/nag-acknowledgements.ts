// Acknowledging a cdk-nag finding (README "Security review: cdk-nag"): always on the construct it is
// about (or the one that owns it), always with the reason a security reviewer reads. cdk-nag 3 matches
// an acknowledgement by the exact finding id, e.g. AwsSolutions-IAM5[Resource::arn:…/@connections/*],
// so grants that need a wildcard say which finding they cause with nagResource().
import { Stack, Validations } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';

/** Acknowledges the finding `id` on `scope` and everything under it. */
export function acknowledge(scope: IConstruct, id: string, reason: string): void {
  Validations.of(scope).acknowledge({ id, reason });
}

/**
 * A resource as cdk-nag names it in a finding id: references become <LogicalId> or <LogicalId.Attr>,
 * pseudo parameters <AWS::AccountId>, Fn::Join is joined.
 */
export function nagResource(scope: IConstruct, value: string): string {
  const flat = (v: unknown): string => {
    if (typeof v === 'string') return v.replace(/\$\{/g, '<').replace(/\}/g, '>');
    if (Array.isArray(v)) return v.map(flat).join('');
    const o = v as Record<string, unknown>;
    if (o['Fn::Join']) {
      const [sep, parts] = o['Fn::Join'] as [string, unknown[]];
      return parts.map(flat).join(sep);
    }
    if (o['Fn::Sub']) return flat(o['Fn::Sub']);
    if (o['Fn::GetAtt']) {
      const [res, attr] = o['Fn::GetAtt'] as [string, string];
      return `<${res}.${attr}>`;
    }
    if (o.Ref) return `<${String(o.Ref)}>`;
    return JSON.stringify(v);
  };
  return flat(Stack.of(scope).resolve(value));
}

/** Acknowledges the IAM5 (wildcard) finding of each resource in `resources`, with one reason. */
export function acknowledgeWildcards(role: IConstruct, resources: readonly string[], reason: string): void {
  for (const r of resources) if (r.includes('*')) acknowledge(role, `AwsSolutions-IAM5[Resource::${nagResource(role, r)}]`, reason);
}

/**
 * A queue that is itself the last stop of failed work: it has no dead-letter queue of its own (what
 * fails to be read from it stays in it for its 14 days), and an alarm watches its depth.
 */
export function acknowledgeDeadLetterQueue(queue: IConstruct, of: string, options: { usedByQueue?: boolean } = {}): void {
  const reason = `This queue is the dead-letter queue of ${of}; a dead-letter queue of a dead-letter queue would only move the same messages, and an alarm fires on its depth.`;
  acknowledge(queue, 'Serverless-SQSRedrivePolicy', reason);
  // AwsSolutions-SQS3 recognises a dead-letter queue only when another queue's redrive policy names it.
  if (!options.usedByQueue) acknowledge(queue, 'AwsSolutions-SQS3', reason);
}

/**
 * An XMPP transport route without an API Gateway authorizer (cdk-nag AwsSolutions-APIG4): the WebSocket
 * routes, and BOSH's when it lands. The client authenticates inside the XMPP stream.
 */
export function acknowledgeInBandAuth(route: IConstruct, transport: 'WebSocket' | 'BOSH'): void {
  const upgrade = transport === 'WebSocket' ? 'browsers cannot add credentials to the WebSocket upgrade' : 'BOSH clients send no credentials until the stream asks for them';
  acknowledge(route, 'AwsSolutions-APIG4',
    `XMPP over ${transport} authenticates in-band (RFC 6120 §6 SASL, or a token through SASL) after the stream is open, per tenant, as every XMPP server does; an API Gateway authorizer runs before that, cannot see SASL, and ${upgrade}. Until SASL succeeds the server answers anything but stream negotiation with not-authorized (RFC 6120 §4.9.3.12), and the stage throttles bound what unauthenticated traffic costs.`);
}
