// The vCard module's block of the tenant item (README "Profiles and private data", "The tenant item").
import { type Static, Type } from '@sinclair/typebox';
import { MAX_PAYLOAD_BYTES } from '../../xmpp/xml.ts';

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
