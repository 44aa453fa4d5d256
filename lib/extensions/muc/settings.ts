// The MUC service's block of the tenant item (README "Meeting rooms (MUC)", "The tenant item"): its
// schema, checked by the TenantStore when the item is read and by the admin API and CLI when it is
// written, and its type, derived from the schema.
import { type Static, Type } from '@sinclair/typebox';

/** The tenant's Multi-User Chat service (XEP-0045), at `<subdomain>.<domain>`. */
export const MucSettingsSchema = Type.Object(
  {
    enabled: Type.Optional(Type.Boolean({ description: 'false: no MUC service for this tenant (its address is not served). Default true.' })),
    subdomain: Type.Optional(
      Type.String({
        // One DNS label (RFC 1035 §2.3.1), so the service address is <label>.<domain>.
        pattern: '^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$',
        description: "The first label of the service's address: `<subdomain>.<domain>`. One DNS label. Default 'conference'.",
      }),
    ),
    name: Type.Optional(Type.String({ minLength: 1, description: "The service's name in service discovery. Default 'Chatrooms'." })),
    roomCreation: Type.Optional(
      Type.Union([Type.Literal('anyone'), Type.Literal('admins')], {
        description: "Who may create a room by entering one that does not exist: 'anyone' (default) or 'admins' (admin API and CLI only; users get not-allowed).",
      }),
    ),
    maxOccupants: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 500, description: 'The most occupants a room may have (its muc#roomconfig_maxusers may not exceed it). Default 200, at most 500 (one item holds a room).' }),
    ),
    historyLength: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 200, description: 'Messages kept for discussion history and the most a new occupant gets (muc#maxhistoryfetch may not exceed it). Default 50, at most 200.' }),
    ),
    historyRetentionSeconds: Type.Optional(Type.Integer({ minimum: 1, description: 'How long discussion history is kept, in seconds. Default 604800 (7 days).' })),
    enforceReservedNicks: Type.Optional(
      Type.Boolean({ description: 'Users with a reserved nickname (member list) always get it, whatever they ask for (status 210). Default false.' }),
    ),
  },
  { additionalProperties: false, description: 'Multi-User Chat service settings; absent: the service runs at conference.<domain> with the defaults.' },
);

export type MucSettings = Static<typeof MucSettingsSchema>;
