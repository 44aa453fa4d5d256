// The extensions a server loads by default, in install order.
import { streamNegotiation } from '../core/negotiation.ts';
import type { Extension } from '../core/server.ts';
import { disco } from './disco.ts';
import { muc } from './muc/index.ts';
import { offline } from './offline.ts';
import { ping } from './ping.ts';
import { presence } from './presence.ts';
import { register } from './register.ts';
import { roster } from './roster.ts';
import { tokenAuth } from './token-auth.ts';
import { version } from './version.ts';

export const defaultExtensions: Extension[] = [streamNegotiation, disco, roster, presence, offline, ping, version, tokenAuth, register, muc];
