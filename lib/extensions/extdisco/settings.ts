// The `turn` block of the tenant item (README "Calls"): the STUN and TURN servers XEP-0215 names to
// the tenant's users, and the secret shared with the TURN servers (coturn's `static-auth-secret`).
import { type Static, Type } from '@sinclair/typebox';
import { SECRET } from '../../store/tenant-schema.ts';

/** The TURN REST API draft (draft-uberti-behave-turn-rest-00 §2.2) recommends one day. */
export const DEFAULT_TTL_SECONDS = 86_400;
export const MIN_TTL_SECONDS = 60;
export const MAX_TTL_SECONDS = 7 * 86_400;

/** RFC 5389 §9 / RFC 5766 §6 (3478 for STUN and TURN over UDP or TCP), RFC 7065 §3 / RFC 5928 (5349 for TURN over TLS). */
export const DEFAULT_PORT = { stun: 3478, turn: 3478, turns: 5349 } as const;
/** TURN over TLS runs on TCP; STUN and TURN default to UDP, as WebRTC's `turn:` URIs do (RFC 7065 §3). */
export const DEFAULT_TRANSPORT = { stun: 'udp', turn: 'udp', turns: 'tcp' } as const;

export const ExternalServiceSchema = Type.Object(
  {
    type: Type.Union([Type.Literal('stun'), Type.Literal('turn'), Type.Literal('turns')], {
      description: 'The XEP-0215 service type: stun (RFC 5389), turn (RFC 5766), turns (TURN over TLS, RFC 7065).',
    }),
    // XEP-0215 §2: "Either a fully qualified domain name (FQDN) or an IP address (IPv4 or IPv6)".
    host: Type.String({ minLength: 1, maxLength: 253, pattern: '^[A-Za-z0-9.:-]+$', description: 'A host name or an IP address (IPv6 without brackets), as clients reach it.' }),
    port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535, description: 'Default 3478 (stun, turn) or 5349 (turns).' })),
    transport: Type.Optional(Type.Union([Type.Literal('udp'), Type.Literal('tcp')], { description: 'Default udp (stun, turn) or tcp (turns).' })),
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'A label for people (XEP-0215 `name`).' })),
  },
  { additionalProperties: false },
);

export const TurnSettingsSchema = Type.Object(
  {
    secret: Type.String({
      minLength: 16,
      description: "The TURN servers' shared secret (coturn: use-auth-secret with static-auth-secret), as UTF-8 text, at least 16 characters. Users get short-lived credentials made from it, never the secret.",
      ...SECRET,
    }),
    services: Type.Array(ExternalServiceSchema, { minItems: 1, maxItems: 20, description: 'The STUN and TURN servers to name to users, in the order clients should try them.' }),
    ttlSeconds: Type.Optional(
      Type.Integer({ minimum: MIN_TTL_SECONDS, maximum: MAX_TTL_SECONDS, description: `How long TURN credentials stay valid, in seconds. Default ${DEFAULT_TTL_SECONDS} (one day), from ${MIN_TTL_SECONDS} to ${MAX_TTL_SECONDS}.` }),
    ),
  },
  { additionalProperties: false, description: 'STUN/TURN servers for calls (XEP-0215, README "Calls"); absent: the server names none and does not advertise urn:xmpp:extdisco:2.' },
);

export type ExternalService = Static<typeof ExternalServiceSchema>;
export type TurnSettings = Static<typeof TurnSettingsSchema>;
