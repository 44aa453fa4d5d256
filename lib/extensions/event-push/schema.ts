// Event push (README "Event push"): the tenant item's `events` block and the events themselves, version 1.
// One TypeBox schema each: the block is checked when the item is read and when an admin writes it; the
// event schema is what the OpenAPI document publishes for receivers.
import { type Static, type TSchema, Type } from '@sinclair/typebox';
import { SECRET } from '../../store/tenant-schema.ts';

/** The schema version of every event; a change that could break a receiver makes a new one. */
export const EVENT_VERSION = 1;

/** The kinds a tenant can choose, in the order the README documents them. */
export const EVENT_KINDS = [
  'message/sent',
  'message/delivered',
  'message/stored',
  'presence/changed',
  'session/opened',
  'session/closed',
  'room/created',
  'room/destroyed',
  'room/joined',
  'room/left',
  'auth/failed',
] as const;
export type EventKind = (typeof EVENT_KINDS)[number];

export const SNS_TOPIC_ARN = '^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}(\\.fifo)?$';
export const EVENT_BUS_ARN = '^arn:aws[a-z-]*:events:[a-z0-9-]+:[0-9]{12}:event-bus/[A-Za-z0-9._/-]{1,256}$';

export const WebhookTargetSchema = Type.Object(
  {
    url: Type.String({
      pattern: '^(https://[^\\s]+|http://(127\\.0\\.0\\.1|localhost|\\[::1\\])(:[0-9]{1,5})?(/[^\\s]*)?)$',
      maxLength: 2048,
      description: 'https:// URL the events are POSTed to. http://127.0.0.1 (or localhost, [::1]) is accepted for the local server (npm start) only; a deployed server refuses to send to it.',
    }),
    secret: Type.String({ minLength: 16, maxLength: 256, description: 'Shared secret of the HMAC-SHA256 signature (X-XMPP-Edge-Signature), at least 16 characters.', ...SECRET }),
  },
  { additionalProperties: false },
);
export const SnsTargetSchema = Type.Object(
  { topicArn: Type.String({ pattern: SNS_TOPIC_ARN, description: 'An SNS topic on the deployment’s allow-list (CDK context eventTargetArns).' }) },
  { additionalProperties: false },
);
export const EventBridgeTargetSchema = Type.Object(
  { busArn: Type.String({ pattern: EVENT_BUS_ARN, description: 'An EventBridge event bus on the deployment’s allow-list (CDK context eventTargetArns).' }) },
  { additionalProperties: false },
);

export const EventsSettingsSchema = Type.Object(
  {
    kinds: Type.Array(Type.Union(EVENT_KINDS.map((k) => Type.Literal(k))), { minItems: 1, uniqueItems: true, description: `The kinds of events pushed: ${EVENT_KINDS.join(', ')}.` }),
    // One object with exactly one key rather than a union: an error names the field that is wrong
    // (events.target.webhook.secret), and the secret has a fixed path the admin tools hide.
    target: Type.Object(
      { webhook: Type.Optional(WebhookTargetSchema), sns: Type.Optional(SnsTargetSchema), eventbridge: Type.Optional(EventBridgeTargetSchema) },
      { minProperties: 1, maxProperties: 1, additionalProperties: false, description: 'Where events go, exactly one of: webhook (a signed HTTPS POST), sns (a topic), eventbridge (a bus); the last two in AWS only.' },
    ),
    includeBody: Type.Optional(Type.Boolean({ description: 'Message events carry the <body/> text. Default false: the metadata only.' })),
  },
  { additionalProperties: false, description: 'Event push to the tenant’s backend (README "Event push"); absent: no events.' },
);
export type EventsSettings = Static<typeof EventsSettingsSchema>;
export type EventTarget = EventsSettings['target'];

// ---- the events (version 1)

const common = (kind: EventKind, fields: Record<string, TSchema>, description: string) =>
  Type.Object(
    {
      version: Type.Literal(EVENT_VERSION),
      id: Type.String({ description: 'Unique per event (a UUID): a receiver drops an event it already has.' }),
      kind: Type.Literal(kind),
      tenant: Type.String({ description: 'The tenant (XMPP domain).' }),
      time: Type.String({ format: 'date-time', description: 'When it happened, ISO 8601 UTC with milliseconds.' }),
      ...fields,
    },
    { description },
  );
const jid = (description: string) => Type.String({ description });
const messageFields = {
  from: jid('The sender’s full JID.'),
  to: jid('The addressee as the sender wrote it (bare or full JID; a room’s bare JID for groupchat).'),
  stanzaId: Type.Optional(Type.String({ description: 'The message’s id attribute, as the sender set it.' })),
  type: Type.String({ description: 'The message type: chat, normal, groupchat, headline.' }),
  body: Type.Optional(Type.String({ description: 'The <body/> text, only with includeBody.' })),
};
const roomFields = {
  room: jid('The room’s bare JID.'),
  jid: Type.Optional(jid('The user’s real full JID (creator, occupant).')),
  nick: Type.Optional(Type.String({ description: 'The occupant’s nickname.' })),
  reason: Type.Optional(Type.String()),
};

export const EventSchemas = {
  'message/sent': common('message/sent', messageFields, 'A user sent a message with a <body/> (chat states alone are not events).'),
  'message/delivered': common('message/delivered', { ...messageFields, resources: Type.Array(jid('A full JID that took it.')) }, 'The message reached these sessions of its addressee.'),
  'message/stored': common('message/stored', messageFields, 'The addressee was offline: the message was stored for later (XEP-0160).'),
  'presence/changed': common(
    'presence/changed',
    {
      jid: jid('The full JID of the session.'),
      available: Type.Boolean(),
      show: Type.Optional(Type.String({ description: 'away, chat, dnd or xa (RFC 6121 §4.7.2.1).' })),
      status: Type.Optional(Type.String()),
      priority: Type.Optional(Type.Integer()),
    },
    'A session broadcast its presence (available or unavailable); an unavailable also when the session ended without one.',
  ),
  'session/opened': common('session/opened', { jid: jid('The bound full JID.') }, 'A session bound its resource (logged in).'),
  'session/closed': common('session/closed', { jid: jid('The full JID.'), reason: Type.String({ description: 'Why: closed, replaced, disconnect, expired, ping unanswered, host-gone, …' }) }, 'A session ended.'),
  'room/created': common('room/created', roomFields, 'A room was created (by a user joining it, or by an operator).'),
  'room/destroyed': common('room/destroyed', roomFields, 'A room was destroyed by its owner or an operator, or went with its last occupant.'),
  'room/joined': common('room/joined', roomFields, 'A user entered a room.'),
  'room/left': common('room/left', roomFields, 'A user left a room (or was removed, or its session ended).'),
  'auth/failed': common(
    'auth/failed',
    { account: Type.Optional(jid('The bare JID the client named; absent for a refused token.')), mechanism: Type.String({ description: 'The SASL mechanism.' }), sourceIp: Type.Optional(Type.String()) },
    'A login failed with not-authorized.',
  ),
} satisfies Record<EventKind, TSchema>;

export const PushEventSchema = Type.Union(Object.values(EventSchemas), { description: `An event of xmpp-edge's event push, version ${EVENT_VERSION}.` });
export type PushEvent = { version: typeof EVENT_VERSION; id: string; kind: EventKind; tenant: string; time: string } & Record<string, unknown>;

/** A webhook's request body: the events of one flush, oldest first. */
export const WebhookBodySchema = Type.Object({ version: Type.Literal(EVENT_VERSION), events: Type.Array(PushEventSchema) }, { description: 'The body of an event push webhook POST.' });
