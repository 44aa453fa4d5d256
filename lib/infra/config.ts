// What a team chooses per deployment, read from CDK context (cdk.json, or `-c key=value` on the command
// line). Everything has a default so `npx cdk synth` works offline on a fresh clone.
import { Type, type Static } from '@sinclair/typebox';
import { Check } from '@sinclair/typebox/value';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Node } from 'constructs';
import { schemaErrors } from '../store/tenant-schema.ts';

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
  /** If set, clients connect to wss://{domainName}/xmpp-websocket and Route 53 sends each to the nearest region. */
  customDomain?: CustomDomainConfig;
  /** API Gateway throttling of each region's APIs (README "Deploy to AWS", "Throttling"). */
  throttling: ThrottlingConfig;
  /** Context tracing=true: X-Ray active tracing on every function. Off by default: traces are billed per trace. */
  tracing: boolean;
  /**
   * Context sourceMaps=true: the functions run with SOURCE_MAPS_NODE_OPTIONS, so stack traces in the logs name
   * the TypeScript files and lines. Off by default: reading the source map adds about 20 ms of CPU to each cold
   * start (README "Cold start"); the maps are in every function's package either way.
   */
  sourceMaps: boolean;
  /**
   * Context apiGatewayLogsRole (default true): each region stack sets the account's API Gateway CloudWatch
   * Logs role, which WebSocket access logs need. false when the account already has one.
   */
  apiGatewayLogsRole: boolean;
  /**
   * SNS topic and EventBridge bus ARNs tenants' event push may name (context eventTargetArns, a list or
   * comma-separated): the functions may publish there and nowhere else (README "Event push").
   */
  eventTargetArns: string[];
  /** The $connect cap and the usage flush interval of the functions (context keys of RUNTIME_KEYS). */
  runtime: RuntimeSettings;
}

/**
 * What the functions read from their environment (lib/runtime/lambda.ts), set from context: the cap on
 * new connections per source address and window (README "Metrics and usage": 0 turns it off) and how
 * often the usage records are written (0: at the end of every invocation).
 */
export const RuntimeSettingsSchema = Type.Object(
  {
    connectsPerAddress: Type.Integer({ minimum: 0, description: 'new WebSocket connections accepted from one source address per window; 0 turns the cap off' }),
    connectWindowSeconds: Type.Integer({ minimum: 1, description: 'the window of connectsPerAddress, in seconds' }),
    usageFlushSeconds: Type.Integer({ minimum: 0, description: 'seconds between usage record writes; 0: at the end of every invocation' }),
  },
  { additionalProperties: false },
);
export type RuntimeSettings = Static<typeof RuntimeSettingsSchema>;

/** Each setting's context key (the same name) and the environment variable the functions read. */
export const RUNTIME_KEYS: Record<keyof RuntimeSettings, string> = {
  connectsPerAddress: 'CONNECTS_PER_ADDRESS',
  connectWindowSeconds: 'CONNECT_WINDOW_SECONDS',
  usageFlushSeconds: 'USAGE_FLUSH_SECONDS',
};

/** The same defaults as the functions' own (lib/runtime/lambda.ts), written into their environment. */
export const DEFAULT_RUNTIME_SETTINGS: RuntimeSettings = { connectsPerAddress: 60, connectWindowSeconds: 60, usageFlushSeconds: 10 };

/**
 * Steady-state requests per second and the bucket size on top of it, as API Gateway takes them (a token
 * bucket per stage or route, across all clients of the region). Rate 0 or burst 0 closes the route.
 */
export const ThrottleSchema = Type.Object(
  {
    rate: Type.Number({ minimum: 0, description: 'steady-state requests (WebSocket: messages) per second' }),
    burst: Type.Integer({ minimum: 0, description: 'requests allowed at once above the rate' }),
  },
  { additionalProperties: false },
);
export type Throttle = Static<typeof ThrottleSchema>;

export interface ThrottlingConfig {
  /** WebSocket stage default: every message of every connection in the region ($default frames, $disconnect). */
  webSocket: Throttle;
  /** The $connect route: new connections per second in the region (each costs a Lambda call and a write). */
  connect: Throttle;
  /** HTTP API stage default: the admin API, and BOSH when it is there. */
  http: Throttle;
  /** The public XEP-0156 host-meta routes. */
  hostMeta: Throttle;
}

/** Context key of each throttle. */
export const THROTTLE_KEYS: Record<keyof ThrottlingConfig, string> = {
  webSocket: 'webSocketThrottle',
  connect: 'connectThrottle',
  http: 'httpThrottle',
  hostMeta: 'hostMetaThrottle',
};

/**
 * Defaults that bound what a flood costs while leaving room for real traffic: 500 frames/s is about
 * 80,000 users online at the user-month of README "What it costs", and at most about $4 per million
 * frames (README "Throttling").
 */
export const DEFAULT_THROTTLING: ThrottlingConfig = {
  webSocket: { rate: 500, burst: 1000 },
  connect: { rate: 100, burst: 500 },
  http: { rate: 200, burst: 400 },
  hostMeta: { rate: 20, burst: 50 },
};

/**
 * An optional custom domain for the WebSocket API (context keys domainName, hostedZoneId,
 * hostedZoneName, certificateArns). The zone is named by id and name, not looked up, so synth stays
 * offline. Each region needs a certificate in that region: given in certificateArns, or created and
 * validated through DNS in the zone.
 */
export interface CustomDomainConfig {
  domainName: string;
  hostedZoneId: string;
  hostedZoneName: string;
  /** ACM certificate ARN per region; a region without one gets a DNS-validated certificate. */
  certificateArns: Record<string, string>;
  /**
   * Context healthCheck=true: a Route 53 HTTPS health check per region on its host-meta document, so a
   * failing region drops out of the latency answers. Off by default: it costs a fixed fee per region
   * and its probes are billed requests (README "What it costs").
   */
  healthCheck: boolean;
}

export const DEFAULT_CONFIG: DeploymentConfig = {
  regions: ['eu-west-1'],
  tableName: 'xmpp-edge',
  stageName: 'xmpp',
  stackPrefix: 'XmppEdge',
  logRetention: RetentionDays.ONE_MONTH,
  throttling: DEFAULT_THROTTLING,
  tracing: false,
  sourceMaps: false,
  apiGatewayLogsRole: true,
  eventTargetArns: [],
  runtime: DEFAULT_RUNTIME_SETTINGS,
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
    customDomain: readCustomDomain(node, regions),
    throttling: readThrottling(node),
    tracing: flag(node, 'tracing', DEFAULT_CONFIG.tracing),
    sourceMaps: flag(node, 'sourceMaps', DEFAULT_CONFIG.sourceMaps),
    apiGatewayLogsRole: flag(node, 'apiGatewayLogsRole', DEFAULT_CONFIG.apiGatewayLogsRole),
    eventTargetArns: list(node.tryGetContext('eventTargetArns')) ?? [],
    runtime: readRuntimeSettings(node),
  };
}

/**
 * connectsPerAddress, connectWindowSeconds and usageFlushSeconds: numbers in cdk.json, digits on the
 * command line; each checked against RuntimeSettingsSchema, a bad one named with what it must be.
 */
function readRuntimeSettings(node: Node): RuntimeSettings {
  const out: Record<string, unknown> = { ...DEFAULT_RUNTIME_SETTINGS };
  for (const key of Object.keys(RUNTIME_KEYS)) {
    const value: unknown = node.tryGetContext(key);
    if (value === undefined || value === null || value === '') continue;
    out[key] = typeof value === 'string' && /^\s*-?\d+(\.\d+)?\s*$/.test(value) ? Number(value) : value;
  }
  if (Check(RuntimeSettingsSchema, out)) return out;
  const [first] = schemaErrors(RuntimeSettingsSchema, out);
  const key = first.path.split('.')[0];
  const field = RuntimeSettingsSchema.properties[key as keyof RuntimeSettings];
  throw new Error(`context "${key}": ${JSON.stringify(node.tryGetContext(key))} ${first.message}${field ? ` (${field.description})` : ''}`);
}

/** true/false in cdk.json, "true"/"false" on the command line; anything else is an error. */
function flag(node: Node, key: string, fallback: boolean): boolean {
  const value = node.tryGetContext(key);
  if (value === undefined || value === null || value === '') return fallback;
  if (value === true || value === 'true') return true;
  if (value === false || value === 'false') return false;
  throw new Error(`context "${key}": ${JSON.stringify(value)} is not true or false`);
}

/**
 * Each throttle is {"rate": 500, "burst": 1000} in cdk.json, or the same JSON or "500/1000" on the
 * command line; a throttle not given keeps its default.
 */
function readThrottling(node: Node): ThrottlingConfig {
  const out = { ...DEFAULT_THROTTLING };
  for (const [name, key] of Object.entries(THROTTLE_KEYS) as [keyof ThrottlingConfig, string][]) {
    const value = node.tryGetContext(key);
    if (value === undefined || value === null || value === '') continue;
    out[name] = parseThrottle(key, value);
  }
  return out;
}

export function parseThrottle(key: string, value: unknown): Throttle {
  let parsed = value;
  if (typeof value === 'string') {
    const text = value.trim();
    const pair = /^([^/]+)\/([^/]+)$/.exec(text);
    if (text.startsWith('{')) {
      try {
        parsed = JSON.parse(text);
      } catch {
        throw new Error(`context "${key}": ${text} is not JSON`);
      }
    } else if (pair) parsed = { rate: Number(pair[1]), burst: Number(pair[2]) };
    else throw new Error(`context "${key}": "${text}" is not rate/burst (e.g. 500/1000) or {"rate": 500, "burst": 1000}`);
  }
  if (Check(ThrottleSchema, parsed)) return parsed;
  const why = schemaErrors(ThrottleSchema, parsed).map((e) => (e.path ? `${e.path}: ${e.message}` : e.message)).join('; ');
  throw new Error(`context "${key}": ${why} (expected {"rate": requests per second, "burst": requests})`);
}

const HOSTNAME = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/;

function readCustomDomain(node: Node, regions: string[]): CustomDomainConfig | undefined {
  const text = (key: string) => String(node.tryGetContext(key) ?? '').trim() || undefined;
  const domainName = text('domainName')?.toLowerCase().replace(/\.$/, '');
  const hostedZoneId = text('hostedZoneId');
  const hostedZoneName = text('hostedZoneName')?.toLowerCase().replace(/\.$/, '');
  const certificateArns = map(node.tryGetContext('certificateArns')) ?? {};
  if (!domainName) {
    if (hostedZoneId || hostedZoneName || Object.keys(certificateArns).length) throw new Error('context "hostedZoneId", "hostedZoneName" and "certificateArns" need "domainName"');
    return undefined;
  }
  if (!HOSTNAME.test(domainName)) throw new Error(`context "domainName": "${domainName}" is not a host name`);
  if (!hostedZoneId || !hostedZoneName) throw new Error('context "domainName" needs "hostedZoneId" and "hostedZoneName" (the Route 53 zone that holds it; no lookup, so synth stays offline)');
  if (!/^Z[A-Z0-9]{1,32}$/.test(hostedZoneId)) throw new Error(`context "hostedZoneId": "${hostedZoneId}" is not a Route 53 hosted zone id`);
  if (domainName !== hostedZoneName && !domainName.endsWith(`.${hostedZoneName}`)) throw new Error(`context "domainName": ${domainName} is not in the zone ${hostedZoneName}`);
  for (const [region, arn] of Object.entries(certificateArns)) {
    if (!regions.includes(region)) throw new Error(`context "certificateArns": ${region} is not one of the regions (${regions.join(', ')})`);
    // API Gateway takes a regional custom domain's certificate from ACM in the same region.
    if (!new RegExp(`^arn:aws[a-z-]*:acm:${region}:\\d{12}:certificate/[0-9a-f-]+$`).test(arn)) throw new Error(`context "certificateArns": the certificate for ${region} must be an ACM certificate ARN in ${region}, not "${arn}"`);
  }
  const healthCheck = node.tryGetContext('healthCheck');
  return { domainName, hostedZoneId, hostedZoneName, certificateArns, healthCheck: healthCheck === true || healthCheck === 'true' };
}

/** A JSON object in cdk.json, or "region=arn,region=arn" on the command line. */
function map(value: unknown): Record<string, string> | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value === 'object' && !Array.isArray(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, String(v)]));
  const text = String(value).trim();
  if (text.startsWith('{')) return map(JSON.parse(text));
  return Object.fromEntries(
    text.split(',').filter((p) => p.trim()).map((pair) => {
      const i = pair.indexOf('=');
      if (i < 0) throw new Error(`context "certificateArns": "${pair}" is not region=arn`);
      return [pair.slice(0, i).trim(), pair.slice(i + 1).trim()];
    }),
  );
}

/** Context values are JSON in cdk.json and strings on the command line ("eu-west-1,us-east-1"). */
function list(value: unknown): string[] | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (Array.isArray(value)) return value.map(String);
  const text = String(value).trim();
  if (text.startsWith('[')) return (JSON.parse(text) as unknown[]).map(String);
  return text.split(',').map((s) => s.trim()).filter(Boolean);
}
