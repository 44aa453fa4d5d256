// The room configuration form (XEP-0045 §10.1.3, §10.2; fields registered in §15.5.3) as a table of
// fields, each able to show its value in a XEP-0004 data form and to read a submitted one; the
// muc#roominfo form (§6.4, §15.5.4); and the status codes a configuration change announces (§10.2.1).
// Pure functions: no I/O, so they are unit-tested as they are.
import { StanzaError } from '../../xmpp/errors.ts';
import { JIDError, parseJID } from '../../xmpp/jid.ts';
import { NS } from '../../xmpp/namespaces.ts';
import { type Element, xml } from '../../xmpp/xml.ts';
import { type AllowPm, type RoomConfig, type Whois, roomArchives } from './store.ts';

export interface ConfigLimits {
  /** The service's most occupants per room (muc#roomconfig_maxusers "none" means this). */
  maxOccupants: number;
  /** The service's most history messages per join. */
  historyLength: number;
}

type FieldType = 'boolean' | 'text-single' | 'text-private' | 'list-single' | 'jid-multi';

interface FieldDef {
  var: string;
  type: FieldType;
  label: string;
  options?: (limits: ConfigLimits) => { value: string; label: string }[];
  show(config: RoomConfig): string[];
  /** Applies submitted values; throws StanzaError('not-acceptable') for a value out of range. */
  read(config: RoomConfig, values: string[], limits: ConfigLimits): void;
}

/** XEP-0004 §3.3: "0" and "false" are false, "1" and "true" are true. */
export function parseBoolean(value: string | undefined, field: string): boolean {
  if (value === '1' || value === 'true') return true;
  if (value === '0' || value === 'false') return false;
  throw new StanzaError('not-acceptable', `${field} must be a boolean`);
}

const bool = (v: boolean) => [v ? '1' : '0'];

function booleanField(name: string, label: string, key: { [K in keyof RoomConfig]-?: RoomConfig[K] extends boolean ? K : never }[keyof RoomConfig]): FieldDef {
  return {
    var: name,
    type: 'boolean',
    label,
    show: (c) => bool(c[key]),
    read: (c, v) => {
      (c as unknown as Record<string, boolean>)[key] = parseBoolean(v[0], name);
    },
  };
}

function textField(name: string, label: string, key: 'name' | 'description' | 'lang' | 'password', type: FieldType = 'text-single'): FieldDef {
  return {
    var: name,
    type,
    label,
    show: (c) => [c[key]],
    read: (c, v) => {
      c[key] = (v[0] ?? '').trim();
    },
  };
}

function listField<T extends string>(name: string, label: string, choices: Record<T, string>, get: (c: RoomConfig) => T, set: (c: RoomConfig, v: T) => void): FieldDef {
  return {
    var: name,
    type: 'list-single',
    label,
    options: () => Object.entries(choices).map(([value, l]) => ({ value, label: l as string })),
    show: (c) => [get(c)],
    read: (c, v) => {
      if (!v[0] || !(v[0] in choices)) throw new StanzaError('not-acceptable', `${name} must be one of ${Object.keys(choices).join(', ')}`);
      set(c, v[0] as T);
    },
  };
}

const MAXUSERS_CHOICES = [10, 20, 30, 50, 100, 200, 500, 1000];

export const CONFIG_FIELDS: FieldDef[] = [
  textField('muc#roomconfig_roomname', 'Natural-Language Room Name', 'name'),
  textField('muc#roomconfig_roomdesc', 'Short Description of Room', 'description'),
  textField('muc#roomconfig_lang', 'Natural Language for Room Discussions', 'lang'),
  booleanField('muc#roomconfig_enablelogging', 'Enable Public Logging?', 'logging'),
  // XEP-0313 room archives; shown as in effect (persistent rooms archive unless switched off).
  {
    var: 'muc#roomconfig_enablearchiving',
    type: 'boolean',
    label: 'Enable Message Archiving?',
    show: (c) => bool(roomArchives(c)),
    read: (c, v) => {
      c.archiving = parseBoolean(v[0], 'muc#roomconfig_enablearchiving');
    },
  },
  booleanField('muc#roomconfig_changesubject', 'Allow Occupants to Change Subject?', 'changeSubject'),
  booleanField('muc#roomconfig_allowinvites', 'Allow Members to Invite Others?', 'allowInvites'),
  listField<AllowPm>(
    'muc#roomconfig_allowpm',
    'Who Can Send Private Messages?',
    { anyone: 'Anyone', participants: 'Anyone with Voice', moderators: 'Moderators Only', none: 'Nobody' },
    (c) => c.allowPm,
    (c, v) => (c.allowPm = v),
  ),
  {
    var: 'muc#roomconfig_maxusers',
    type: 'list-single',
    label: 'Maximum Number of Occupants',
    options: (l) => [...MAXUSERS_CHOICES.filter((n) => n < l.maxOccupants).map((n) => ({ value: String(n), label: String(n) })), { value: 'none', label: `None (${l.maxOccupants})` }],
    show: (c) => [c.maxUsers ? String(c.maxUsers) : 'none'],
    read: (c, v, l) => {
      if (v[0] === 'none' || v[0] === '0') return void (c.maxUsers = 0);
      const n = Number(v[0]);
      if (!Number.isInteger(n) || n < 1 || n > l.maxOccupants) throw new StanzaError('not-acceptable', `muc#roomconfig_maxusers must be 1 to ${l.maxOccupants} or none`);
      c.maxUsers = n === l.maxOccupants ? 0 : n;
    },
  },
  booleanField('muc#roomconfig_publicroom', 'Make Room Publicly Searchable?', 'public'),
  booleanField('muc#roomconfig_persistentroom', 'Make Room Persistent?', 'persistent'),
  booleanField('muc#roomconfig_moderatedroom', 'Make Room Moderated?', 'moderated'),
  booleanField('muc#roomconfig_membersonly', 'Make Room Members-Only?', 'membersOnly'),
  booleanField('muc#roomconfig_passwordprotectedroom', 'Password Required to Enter?', 'passwordProtected'),
  textField('muc#roomconfig_roomsecret', 'Password', 'password', 'text-private'),
  listField<Whois>('muc#roomconfig_whois', 'Who May Discover Real JIDs?', { moderators: 'Moderators Only', anyone: 'Anyone' }, (c) => c.whois, (c, v) => (c.whois = v)),
  {
    var: 'muc#maxhistoryfetch',
    type: 'text-single',
    label: 'Maximum Number of History Messages Returned by Room',
    show: (c) => [String(c.historyFetch)],
    read: (c, v, l) => {
      const n = Number((v[0] ?? '').trim());
      if (!Number.isInteger(n) || n < 0 || n > l.historyLength) throw new StanzaError('not-acceptable', `muc#maxhistoryfetch must be 0 to ${l.historyLength}`);
      c.historyFetch = n;
    },
  },
];

const OWNERS = 'muc#roomconfig_roomowners';
const ADMINS = 'muc#roomconfig_roomadmins';

function field(def: { var: string; type: string; label?: string }, values: string[], options: { value: string; label: string }[] = []): Element {
  const el = xml('field', { var: def.var, type: def.type, ...(def.label ? { label: def.label } : {}) });
  for (const v of values) el.c('value').t(v);
  for (const o of options) el.c('option', { label: o.label }).c('value').t(o.value);
  return el;
}

/** §10.1.3 / §10.2: the form an owner fills in, showing the current configuration. */
export function configForm(config: RoomConfig, opts: { roomJid: string; owners: string[]; admins: string[]; limits: ConfigLimits }): Element {
  const form = xml('x', { xmlns: NS.DATA_FORMS, type: 'form' }, xml('title', {}, `Configuration for ${opts.roomJid}`));
  form.cnode(xml('instructions', {}, 'Complete this form to configure the room; submit it unchanged to accept these settings.'));
  form.cnode(field({ var: 'FORM_TYPE', type: 'hidden' }, [NS.MUC_ROOMCONFIG]));
  for (const def of CONFIG_FIELDS) form.cnode(field(def, def.show(config), def.options?.(opts.limits)));
  form.cnode(field({ var: ADMINS, type: 'jid-multi', label: 'Room Admins' }, opts.admins));
  form.cnode(field({ var: OWNERS, type: 'jid-multi', label: 'Room Owners' }, opts.owners));
  return form;
}

/** The fields of a submitted XEP-0004 form, by var. */
export function formValues(x: Element): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const f of x.getChildren('field')) {
    if (!f.attrs.var) continue;
    out.set(f.attrs.var, f.getChildren('value').map((v) => v.text()));
  }
  return out;
}

export interface ConfigChange {
  config: RoomConfig;
  /** Full owner / admin lists when the form carried them (§10.2: these fields are full lists, not deltas). */
  owners?: string[];
  admins?: string[];
}

function bareJids(values: string[], field: string): string[] {
  const out = new Set<string>();
  for (const v of values) {
    if (!v.trim()) continue;
    try {
      out.add(parseJID(v.trim()).bare().toString());
    } catch (err) {
      if (err instanceof JIDError) throw new StanzaError('not-acceptable', `${field}: ${v} is not a JID`);
      throw err;
    }
  }
  return [...out];
}

/**
 * Applies submitted values to a copy of `current`. Fields not submitted keep their value. Throws
 * bad-request for a form of another FORM_TYPE and not-acceptable (§10.1.3) for values the service does
 * not accept, e.g. a password-protected room without a password.
 */
export function applyConfigForm(current: RoomConfig, values: Map<string, string[]>, limits: ConfigLimits): ConfigChange {
  const formType = values.get('FORM_TYPE')?.[0];
  if (formType !== undefined && formType !== NS.MUC_ROOMCONFIG) throw new StanzaError('bad-request', `FORM_TYPE must be ${NS.MUC_ROOMCONFIG}`);
  const config: RoomConfig = { ...current };
  for (const def of CONFIG_FIELDS) {
    const v = values.get(def.var);
    if (v !== undefined) def.read(config, v, limits);
  }
  if (config.passwordProtected && !config.password) throw new StanzaError('not-acceptable', 'a password-protected room needs a password (muc#roomconfig_roomsecret)');
  if (!config.passwordProtected) config.password = '';
  const change: ConfigChange = { config };
  if (values.has(OWNERS)) {
    change.owners = bareJids(values.get(OWNERS)!, OWNERS);
    // §10.6: every room has at least one owner.
    if (!change.owners.length) throw new StanzaError('conflict', 'a room needs at least one owner');
  }
  if (values.has(ADMINS)) change.admins = bareJids(values.get(ADMINS)!, ADMINS);
  return change;
}

/** The config keys the admin API and CLI take, with the form field each stands for. */
export const CONFIG_KEYS: Record<keyof RoomConfig, string> = {
  name: 'muc#roomconfig_roomname',
  description: 'muc#roomconfig_roomdesc',
  lang: 'muc#roomconfig_lang',
  logging: 'muc#roomconfig_enablelogging',
  archiving: 'muc#roomconfig_enablearchiving',
  changeSubject: 'muc#roomconfig_changesubject',
  allowInvites: 'muc#roomconfig_allowinvites',
  allowPm: 'muc#roomconfig_allowpm',
  maxUsers: 'muc#roomconfig_maxusers',
  public: 'muc#roomconfig_publicroom',
  persistent: 'muc#roomconfig_persistentroom',
  moderated: 'muc#roomconfig_moderatedroom',
  membersOnly: 'muc#roomconfig_membersonly',
  passwordProtected: 'muc#roomconfig_passwordprotectedroom',
  password: 'muc#roomconfig_roomsecret',
  whois: 'muc#roomconfig_whois',
  historyFetch: 'muc#maxhistoryfetch',
};

/**
 * A JSON configuration (admin API, CLI) as form values, so both go through the same checks. Unknown
 * keys and values of the wrong type are refused with a message naming them.
 */
export function valuesFromJson(patch: Record<string, unknown>): Map<string, string[]> {
  const values = new Map<string, string[]>();
  for (const [key, value] of Object.entries(patch)) {
    const name = CONFIG_KEYS[key as keyof RoomConfig];
    if (!name) throw new StanzaError('bad-request', `unknown room setting ${key}; known: ${Object.keys(CONFIG_KEYS).join(', ')}`);
    if (typeof value === 'boolean') values.set(name, [value ? '1' : '0']);
    else if (typeof value === 'number') values.set(name, [String(value)]);
    else if (typeof value === 'string') values.set(name, [value]);
    else throw new StanzaError('bad-request', `${key} must be a string, number or boolean`);
  }
  // "passwordProtected" follows from a password when only the password is given.
  if (patch.password && patch.passwordProtected === undefined) values.set(CONFIG_KEYS.passwordProtected, ['1']);
  return values;
}

/**
 * §10.2.1: the status codes a configuration change announces: 170/171 logging on/off, 172/173 now
 * non-anonymous/semi-anonymous, 104 for any other change. Empty: nothing changed.
 */
export function configChangeCodes(before: RoomConfig, after: RoomConfig): number[] {
  const codes: number[] = [];
  if (before.logging !== after.logging) codes.push(after.logging ? 170 : 171);
  if (before.whois !== after.whois) codes.push(after.whois === 'anyone' ? 172 : 173);
  const others = (Object.keys(after) as (keyof RoomConfig)[]).some((k) => k !== 'logging' && k !== 'whois' && before[k] !== after[k]);
  if (others) codes.push(104);
  return codes.sort((a, b) => a - b);
}

/** §6.4: the muc#roominfo form of a room's disco#info (XEP-0128). */
export function roomInfoForm(config: RoomConfig, info: { occupants: number; subject?: string; owners: string[] }): Element {
  const form = xml('x', { xmlns: NS.DATA_FORMS, type: 'result' });
  form.cnode(field({ var: 'FORM_TYPE', type: 'hidden' }, [NS.MUC_ROOMINFO]));
  form.cnode(field({ var: 'muc#roominfo_description', type: 'text-single', label: 'Description' }, [config.description]));
  form.cnode(field({ var: 'muc#roomconfig_roomname', type: 'text-single', label: 'Natural-Language Room Name' }, [config.name]));
  form.cnode(field({ var: 'muc#roominfo_subject', type: 'text-single', label: 'Current Discussion Topic' }, [info.subject ?? '']));
  form.cnode(field({ var: 'muc#roominfo_subjectmod', type: 'boolean', label: 'The room subject can be modified by participants' }, bool(config.changeSubject)));
  form.cnode(field({ var: 'muc#roomconfig_changesubject', type: 'boolean', label: 'Subject can be modified' }, bool(config.changeSubject)));
  form.cnode(field({ var: 'muc#roominfo_occupants', type: 'text-single', label: 'Number of occupants' }, [String(info.occupants)]));
  form.cnode(field({ var: 'muc#maxhistoryfetch', type: 'text-single', label: 'Maximum Number of History Messages Returned by Room' }, [String(config.historyFetch)]));
  if (config.lang) form.cnode(field({ var: 'muc#roominfo_lang', type: 'text-single', label: 'Language of discussion' }, [config.lang]));
  // Real JIDs of the owners only where the room shows real JIDs anyway.
  if (config.whois === 'anyone' && info.owners.length) form.cnode(field({ var: 'muc#roominfo_contactjid', type: 'jid-multi', label: 'Contact Addresses' }, info.owners));
  return form;
}
