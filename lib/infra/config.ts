// What a team chooses per deployment, read from CDK context (cdk.json, or `-c key=value` on the command
// line). Everything has a default so `npx cdk synth` works offline on a fresh clone.
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Node } from 'constructs';

export interface DeploymentConfig {
  /** Regions served. The first one holds the global table's stack; every one gets a region stack. */
  regions: string[];
  /** Physical name of the global table: the same name in every region, so region stacks can refer to it. */
  tableName: string;
  /** The WebSocket stage; part of the management endpoint and of the ManageConnections ARNs. */
  stageName: string;
  /** Prefix of every stack name. */
  stackPrefix: string;
  logRetention: RetentionDays;
  /** If set, alarms notify this address through an SNS topic in each region. */
  alarmEmail?: string;
}

export const DEFAULT_CONFIG: DeploymentConfig = {
  regions: ['eu-west-1'],
  tableName: 'xmpp-edge',
  stageName: 'xmpp',
  stackPrefix: 'XmppEdge',
  logRetention: RetentionDays.ONE_MONTH,
};

const REGION = /^[a-z]{2}(-[a-z]+)+-\d$/;

/** Reads the deployment config from context; throws with a message naming the bad key. */
export function readConfig(node: Node): DeploymentConfig {
  const regions = list(node.tryGetContext('regions')) ?? DEFAULT_CONFIG.regions;
  if (regions.length === 0) throw new Error('context "regions" lists no region');
  for (const r of regions) if (!REGION.test(r)) throw new Error(`context "regions": "${r}" is not an AWS region name`);
  if (new Set(regions).size !== regions.length) throw new Error('context "regions" lists a region twice');

  const days = Number(node.tryGetContext('logRetentionDays') ?? DEFAULT_CONFIG.logRetention);
  if (!Object.values(RetentionDays).includes(days)) {
    throw new Error(`context "logRetentionDays": ${days} is not a CloudWatch Logs retention (1, 3, 5, 7, 14, 30, 60, 90, …)`);
  }
  const stageName = String(node.tryGetContext('stageName') ?? DEFAULT_CONFIG.stageName);
  // The stage name goes into IAM resource ARNs; keep it to characters that cannot widen a pattern.
  if (!/^[A-Za-z0-9_-]+$/.test(stageName)) throw new Error(`context "stageName": "${stageName}" must be letters, digits, - or _`);

  return {
    regions,
    tableName: String(node.tryGetContext('tableName') ?? DEFAULT_CONFIG.tableName),
    stageName,
    stackPrefix: String(node.tryGetContext('stackPrefix') ?? DEFAULT_CONFIG.stackPrefix),
    logRetention: days as RetentionDays,
    alarmEmail: node.tryGetContext('alarmEmail') || undefined,
  };
}

/** Context values are JSON in cdk.json and strings on the command line ("eu-west-1,us-east-1"). */
function list(value: unknown): string[] | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (Array.isArray(value)) return value.map(String);
  const text = String(value).trim();
  if (text.startsWith('[')) return (JSON.parse(text) as unknown[]).map(String);
  return text.split(',').map((s) => s.trim()).filter(Boolean);
}
