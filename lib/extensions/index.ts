// The modules a server loads by default, in install order (each after those it depends on).
import { streamNegotiation } from '../core/negotiation.ts';
import type { XmppModule } from '../core/modules.ts';
import { authLimits } from './auth-limits/index.ts';
import { caps } from './caps/index.ts';
import { carbons } from './carbons.ts';
import { components } from './components/index.ts';
import { csi } from './csi.ts';
import { blocking } from './blocking/index.ts';
import { bookmarks } from './bookmarks.ts';
import { disco } from './disco.ts';
import { extdisco } from './extdisco/index.ts';
import { jingleMessage } from './jingle-message.ts';
import { eventPush } from './event-push/index.ts';
import { mam } from './mam/index.ts';
import { muc } from './muc/index.ts';
import { offline } from './offline/index.ts';
import { pep } from './pep/index.ts';
import { ping } from './ping.ts';
import { presence, roster } from './roster/index.ts';
import { privateStorage } from './private/index.ts';
import { register } from './register.ts';
import { streamManagement } from './stream-management/index.ts';
import { time } from './time.ts';
import { tokenAuth } from './token-auth.ts';
import { vcard, vcardAvatars, vcardMuc } from './vcard/index.ts';
import { version } from './version.ts';

export const defaultModules: readonly XmppModule[] = [streamNegotiation, authLimits, disco, roster, presence, offline, ping, version, time, tokenAuth, register, muc, mam, carbons, csi, blocking, vcard, vcardAvatars, vcardMuc, privateStorage, caps, pep, bookmarks, streamManagement, extdisco, jingleMessage, eventPush, components];
