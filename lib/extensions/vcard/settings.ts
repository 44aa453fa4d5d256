// The vCard module's block of the tenant item (README "Profiles and private data", "The tenant item").
import { type Static, Type } from '@sinclair/typebox';

/**
 * An upper bound for anything a client stores and gets back in one stanza: API Gateway posts and
 * receives at most 128 KiB per WebSocket message, and the reply wraps the payload in an <iq/>.
 */
export const MAX_PAYLOAD_BYTES = 130_000;

export const DEFAULT_VCARD_BYTES = 120_000;

export const VCardSettingsSchema = Type.Object(
  {
    maxBytes: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: MAX_PAYLOAD_BYTES,
        description: `The largest vCard (XEP-0054) an account may store, in bytes of its XML, photo included (a 90 KB image is about 120 KB of base64). Default ${DEFAULT_VCARD_BYTES}, at most ${MAX_PAYLOAD_BYTES} (API Gateway's 128 KiB per WebSocket message).`,
      }),
    ),
  },
  { additionalProperties: false, description: 'vCard (XEP-0054) limits; absent: the defaults.' },
);

export type VCardSettings = Static<typeof VCardSettingsSchema>;
