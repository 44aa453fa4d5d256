// The auth-limits module's block of the tenant item (README "Failed logins"): its schema, checked by
// the TenantStore when the item is read and by the admin API and CLI when it is written, and its type.
import { type Static, Type } from '@sinclair/typebox';

export const AuthLimitsSettingsSchema = Type.Object(
  {
    enabled: Type.Optional(Type.Boolean({ description: 'false: failed logins are not counted and nothing is locked. Default true.' })),
    windowSeconds: Type.Optional(
      Type.Integer({ minimum: 10, maximum: 86400, description: 'Failures are counted in windows of this many seconds. Default 600 (10 minutes).' }),
    ),
    accountFailures: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 1000, description: 'Failed logins to one account within a window that lock the account (and every further such number). Default 5.' }),
    ),
    addressFailures: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 100000, description: 'Failed logins from one source address within a window, to any accounts, that lock the address. Default 20.' }),
    ),
    lockSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 86400, description: 'The first lock, in seconds; each further lock lasts twice the one before. Default 60.' })),
    maxLockSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 86400, description: 'The longest lock, in seconds (one below lockSeconds counts as lockSeconds). Default 900 (15 minutes).' })),
  },
  { additionalProperties: false, description: 'Throttling of failed logins; absent: on, with the defaults.' },
);

export type AuthLimitsSettings = Static<typeof AuthLimitsSettingsSchema>;
