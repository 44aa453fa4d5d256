// The extensions a server loads by default, in install order.
import { streamNegotiation } from '../core/negotiation.ts';
import type { Extension } from '../core/server.ts';
import type { SettingBlock } from '../store/tenant-schema.ts';
import { disco } from './disco.ts';
import { muc } from './muc/index.ts';
import { MucSettingsSchema } from './muc/settings.ts';
import { offline } from './offline.ts';
import { ping } from './ping.ts';
import { presence } from './presence.ts';
import { register } from './register.ts';
import { roster } from './roster.ts';
import { tokenAuth } from './token-auth.ts';
import { version } from './version.ts';

export const defaultExtensions: Extension[] = [streamNegotiation, disco, roster, presence, offline, ping, version, tokenAuth, register, muc];

/**
 * The tenant item's blocks of the modules above (README "The tenant item"). Temporary: each module
 * will declare its own block (`settings`) and the server will collect them.
 */
export const settingBlocks: SettingBlock[] = [{ key: 'muc', schema: MucSettingsSchema }];
