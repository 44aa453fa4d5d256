// The private storage module's block of the tenant item (README "Profiles and private data").
import { type Static, Type } from '@sinclair/typebox';
import { MAX_PAYLOAD_BYTES } from '../../xmpp/xml.ts';

export const DEFAULT_PRIVATE_ITEM_BYTES = 64 * 1024;
export const DEFAULT_PRIVATE_ITEMS = 100;

export const PrivateStorageSettingsSchema = Type.Object(
  {
    maxItemBytes: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: MAX_PAYLOAD_BYTES,
        description: `The most bytes of XML an account may keep under one namespace (XEP-0049). Default ${DEFAULT_PRIVATE_ITEM_BYTES}, at most ${MAX_PAYLOAD_BYTES} (API Gateway's 128 KiB per WebSocket message).`,
      }),
    ),
    maxItems: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 1000, description: `The most namespaces an account may keep data under. Default ${DEFAULT_PRIVATE_ITEMS}, at most 1000.` }),
    ),
  },
  { additionalProperties: false, description: 'Private XML storage (XEP-0049) limits; absent: the defaults.' },
);

export type PrivateStorageSettings = Static<typeof PrivateStorageSettingsSchema>;
