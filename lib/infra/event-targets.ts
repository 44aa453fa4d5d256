// Event push to SNS and EventBridge (README "Event push"): tenants are added and edited live, but IAM
// is set at deploy time, so the deployment lists the topics and buses tenants may name (CDK context
// eventTargetArns). The functions that publish events (those that handle frames or end sessions: the
// ingest, $disconnect, the sweeper, the tenant-changes consumer, the admin API) may sns:Publish to
// those topics and events:PutEvents to those buses, nothing else; they get the list as EVENT_TARGET_ARNS,
// and the admin API refuses a tenant block naming another ARN.
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { EVENT_BUS_ARN, SNS_TOPIC_ARN } from '../extensions/event-push/schema.ts';

export interface EventTargetArns {
  topics: string[];
  buses: string[];
}

/** Sorts the context's ARNs into topics and buses; throws naming one that is neither. */
export function eventTargetArns(arns: readonly string[]): EventTargetArns {
  const out: EventTargetArns = { topics: [], buses: [] };
  for (const arn of arns) {
    if (new RegExp(SNS_TOPIC_ARN).test(arn)) out.topics.push(arn);
    else if (new RegExp(EVENT_BUS_ARN).test(arn)) out.buses.push(arn);
    else throw new Error(`context "eventTargetArns": "${arn}" is neither an SNS topic ARN nor an EventBridge event bus ARN`);
  }
  return out;
}

/** Lets each function publish to exactly the listed targets, and tells it which they are. */
export function grantEventTargets(functions: (IFunction & { addEnvironment(k: string, v: string): unknown })[], targets: EventTargetArns): void {
  const all = [...targets.topics, ...targets.buses];
  for (const fn of functions) {
    fn.addEnvironment('EVENT_TARGET_ARNS', all.join(','));
    if (targets.topics.length) fn.addToRolePolicy(new PolicyStatement({ actions: ['sns:Publish'], resources: targets.topics }));
    if (targets.buses.length) fn.addToRolePolicy(new PolicyStatement({ actions: ['events:PutEvents'], resources: targets.buses }));
  }
}
