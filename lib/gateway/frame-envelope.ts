// The envelope in which API Gateway hands one WebSocket frame to SQS (docs/architecture.md "Order"):
// the $default route's AWS service integration renders FRAME_TO_SQS_TEMPLATE into an SQS SendMessage
// request, and the ingest (ingest.ts) reads the message body back with parseFrameEnvelope(). The local
// gateway builds the same body with frameEnvelopeBody(), from the same table of fields, so locally the
// frame takes the deployed path too. Free of CDK imports: the CDK app (lib/infra) and the ingest
// Lambda's bundle both include this file.
// https://docs.aws.amazon.com/apigateway/latest/developerguide/websocket-api-mapping-template-reference.html
import type { WebSocketRequestContext } from './events.ts';

/** One frame as the ingest Lambda receives it. */
export interface FrameEnvelope {
  connectionId: string;
  /** API Gateway's id of this WebSocket message; with the connection id, the key of the redelivery guard. */
  messageId: string;
  requestId: string;
  requestTimeEpoch: number;
  /** With `stage`: the endpoint the connection was made to. */
  domainName: string;
  stage: string;
  /** The frame's text (RFC 7395 §3.2: one XML element, UTF-8). */
  body: string;
}

/**
 * Fields of the JSON message body and the mapping-template expression that fills each. The frame
 * travels base64-encoded: $util.escapeJavaScript would turn the apostrophes of XML attributes into
 * \' , which is not JSON. The other values are API Gateway ids and names that need no escaping.
 */
const FIELDS: [name: string, expression: string, kind: 'string' | 'number'][] = [
  ['connectionId', '$context.connectionId', 'string'],
  ['messageId', '$context.messageId', 'string'],
  ['requestId', '$context.requestId', 'string'],
  ['requestTimeEpoch', '$context.requestTimeEpoch', 'number'],
  ['domainName', '$context.domainName', 'string'],
  ['stage', '$context.stage', 'string'],
  ['body64', '$util.base64Encode($input.body)', 'string'],
];

/** The $context fields the template reads. */
export type EnvelopeContext = Pick<WebSocketRequestContext, 'connectionId' | 'requestId' | 'requestTimeEpoch' | 'domainName' | 'stage'> & {
  messageId: string;
};

/**
 * The SQS message body the template renders for `frame` (its text, or its bytes), built here without
 * a template engine: the local gateway's half of the contract. Same fields, same order, same JSON;
 * test/unit/ingest-envelope.test.ts renders the template for the same inputs and compares.
 */
export function frameEnvelopeBody(context: EnvelopeContext, frame: string | Uint8Array): string {
  const values: Record<string, string | number> = {
    connectionId: context.connectionId,
    messageId: context.messageId,
    requestId: context.requestId,
    requestTimeEpoch: context.requestTimeEpoch,
    domainName: context.domainName,
    stage: context.stage,
    body64: (typeof frame === 'string' ? Buffer.from(frame, 'utf8') : Buffer.from(frame)).toString('base64'),
  };
  const json: Record<string, string | number> = {};
  for (const [name, , kind] of FIELDS) json[name] = kind === 'number' ? Number(values[name]) : String(values[name]);
  return JSON.stringify(json);
}

/**
 * The SendMessage request, form-encoded (the SQS query API). The JSON's fixed text is URL-encoded
 * here; each value is URL-encoded by $util.urlEncode when API Gateway renders the template.
 */
export function frameToSqsTemplate(): string {
  let json = '';
  FIELDS.forEach(([name, expression, kind], i) => {
    const quote = kind === 'string' ? '"' : '';
    json += encodeURIComponent(`${i === 0 ? '{' : ','}"${name}":${quote}`) + `$util.urlEncode(${expression})` + encodeURIComponent(quote);
  });
  json += encodeURIComponent('}');
  return [
    'Action=SendMessage',
    // Frames of one connection form one message group: SQS FIFO hands them to the ingest in order.
    'MessageGroupId=$util.urlEncode($context.connectionId)',
    // API Gateway's id of the message: a retried SendMessage of the same frame is dropped by SQS.
    'MessageDeduplicationId=$util.urlEncode($context.messageId)',
    `MessageBody=${json}`,
  ].join('&');
}

/** Reads an SQS message body made by frameToSqsTemplate(); throws on anything else. */
export function parseFrameEnvelope(messageBody: string): FrameEnvelope {
  const raw: unknown = JSON.parse(messageBody);
  if (typeof raw !== 'object' || raw === null) throw new Error('frame envelope: not a JSON object');
  const fields = raw as Record<string, unknown>;
  const text = (name: string, { empty = false } = {}): string => {
    const v = fields[name];
    if (typeof v !== 'string' || (!empty && !v)) throw new Error(`frame envelope: ${name} is missing`);
    return v;
  };
  const envelope = {
    connectionId: text('connectionId'),
    messageId: text('messageId'),
    requestId: text('requestId'),
    requestTimeEpoch: Number(fields.requestTimeEpoch),
    domainName: text('domainName'),
    stage: text('stage'),
    body: Buffer.from(text('body64', { empty: true }), 'base64').toString('utf8'),
  };
  if (!Number.isFinite(envelope.requestTimeEpoch)) throw new Error('frame envelope: requestTimeEpoch is not a number');
  return envelope;
}

/**
 * The ingest's own metrics, written as CloudWatch embedded-metric-format log lines (no API call, no
 * extra cost beyond the log line). Failed frames do not show in Lambda's Errors metric: with partial
 * batch responses the invocation succeeds.
 * https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
 */
export const INGEST_METRICS = {
  namespace: 'XmppEdge',
  dimensions: { Service: 'ingest' },
  processed: 'FramesProcessed',
  redelivered: 'FramesRedelivered',
  failed: 'FramesFailed',
} as const;

export interface IngestCounts {
  processed: number;
  redelivered: number;
  failed: number;
}

/** The fields of one EMF record for a batch; log them as one JSON line. */
export function ingestMetricsRecord(counts: IngestCounts, now = Date.now()): Record<string, unknown> {
  const m = INGEST_METRICS;
  return {
    _aws: {
      Timestamp: now,
      CloudWatchMetrics: [
        {
          Namespace: m.namespace,
          Dimensions: [Object.keys(m.dimensions)],
          Metrics: [m.processed, m.redelivered, m.failed].map((Name) => ({ Name, Unit: 'Count' })),
        },
      ],
    },
    ...m.dimensions,
    [m.processed]: counts.processed,
    [m.redelivered]: counts.redelivered,
    [m.failed]: counts.failed,
  };
}
