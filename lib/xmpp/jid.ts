// XMPP addresses: RFC 7622 (Extensible Messaging and Presence Protocol (XMPP): Address Format).
//
// A JID is `[localpart@]domainpart[/resourcepart]`. Every part is prepared (normalized) and enforced here,
// so two JIDs that denote the same entity compare equal as strings:
// - localpart: PRECIS UsernameCaseMapped (RFC 8265 §3.3) plus the XMPP exclusions of RFC 7622 §3.3.1;
// - domainpart: lower case, NFC, no trailing dot, IP literals allowed (RFC 7622 §3.2);
// - resourcepart: PRECIS OpaqueString (RFC 8265 §4.2, RFC 7622 §3.4).
// Full PRECIS needs the Unicode derived-property tables of RFC 8264; the character classes below use the
// Unicode general categories that those tables are built from, which is close enough for a server that
// must above all agree with itself.

import { isIPv4, isIPv6 } from 'node:net';
import { domainToUnicode } from 'node:url';

export class JIDError extends Error {
  override name = 'JIDError';
}

// RFC 7622 §3.1: each part is limited to 1023 octets once encoded as UTF-8.
const MAX_PART_OCTETS = 1023;

export class JID {
  readonly local: string;
  readonly domain: string;
  readonly resource: string;

  /** Validates and normalizes every part; throws JIDError. `''` means "absent" for local and resource. */
  constructor(local: string, domain: string, resource = '') {
    this.local = local === '' ? '' : prepareLocalpart(local);
    this.domain = prepareDomainpart(domain);
    this.resource = resource === '' ? '' : prepareResourcepart(resource);
  }

  get isBare(): boolean {
    return this.resource === '';
  }

  bare(): JID {
    return this.isBare ? this : new JID(this.local, this.domain);
  }

  withResource(resource: string): JID {
    return new JID(this.local, this.domain, resource);
  }

  equals(other: JID): boolean {
    return this.local === other.local && this.domain === other.domain && this.resource === other.resource;
  }

  toString(): string {
    const bare = this.local === '' ? this.domain : `${this.local}@${this.domain}`;
    return this.resource === '' ? bare : `${bare}/${this.resource}`;
  }

  toJSON(): string {
    return this.toString();
  }
}

/** Parses a JID string; throws JIDError when it is not a valid address. */
export function parseJID(s: string): JID {
  // RFC 7622 §3.1: the first '/' starts the resourcepart, so a resource may itself contain '/' and '@';
  // in what remains, the first '@' ends the localpart. (Any further '@' then makes the domainpart invalid.)
  const slash = s.indexOf('/');
  const resource = slash === -1 ? undefined : s.slice(slash + 1);
  const rest = slash === -1 ? s : s.slice(0, slash);
  const at = rest.indexOf('@');
  const local = at === -1 ? undefined : rest.slice(0, at);
  const domain = at === -1 ? rest : rest.slice(at + 1);

  // RFC 7622 §3.3 and §3.4: a separator with nothing after it (or before it) is an error, not an absent part.
  if (local === '') throw new JIDError(`empty localpart in ${JSON.stringify(s)}`);
  if (resource === '') throw new JIDError(`empty resourcepart in ${JSON.stringify(s)}`);
  return new JID(local ?? '', domain, resource ?? '');
}

/** Like parseJID but returns null for anything that is not a valid JID (including undefined). */
export function tryParseJID(s: string | undefined): JID | null {
  if (s === undefined) return null;
  try {
    return parseJID(s);
  } catch (err) {
    if (err instanceof JIDError) return null;
    throw err;
  }
}

/** Builds a JID from separate parts, validating and normalizing each. */
export function makeJID(local: string, domain: string, resource = ''): JID {
  return new JID(local, domain, resource);
}

// --- localpart: RFC 7622 §3.3, PRECIS UsernameCaseMapped (RFC 8265 §3.3) ---------------------------------

// RFC 7622 §3.3.1: characters the IdentifierClass allows but an XMPP localpart must not contain.
const LOCAL_EXCLUDED = /["&'/:<>@]/u;
// RFC 8264 §9.1 "width mapping": fullwidth and halfwidth forms map to their decompositions.
const WIDE_OR_NARROW = /[\u3000\uFF01-\uFFEE]/gu;
// PRECIS IdentifierClass (RFC 8264 §4.2), approximated: ASCII printable characters, or letters, marks and
// decimal digits (LetterDigits, §9.1). Symbols, punctuation, spaces, controls and unassigned code points
// outside ASCII are disallowed.
const IDENTIFIER_CHAR = /^(?:[\x21-\x7E]|[\p{L}\p{Mn}\p{Mc}\p{Nd}])$/u;

export function prepareLocalpart(input: string): string {
  // RFC 8265 §3.3.2: width mapping, case mapping (Unicode toLowerCase), then NFC.
  const local = input
    .replace(WIDE_OR_NARROW, (c) => c.normalize('NFKC'))
    .toLowerCase()
    .normalize('NFC');
  if (local === '') throw new JIDError('empty localpart');
  for (const c of local) {
    if (LOCAL_EXCLUDED.test(c)) throw new JIDError(`localpart may not contain ${JSON.stringify(c)}`);
    // HasCompat (RFC 8264 §9.17): characters that NFKC changes are disallowed in the IdentifierClass.
    if (!IDENTIFIER_CHAR.test(c) || c.normalize('NFKC') !== c) {
      throw new JIDError(`localpart may not contain U+${codePoint(c)}`);
    }
  }
  checkLength('localpart', local);
  return local;
}

// --- domainpart: RFC 7622 §3.2 ------------------------------------------------------------------------------

// Label characters: LDH plus '_' (used by some XMPP services), or non-ASCII letters, marks and digits
// (IDNA2008 U-labels, RFC 5892, approximated).
const LABEL = /^(?:[a-z0-9_-]|[^\x00-\x7F])+$/u;
const NON_ASCII_OK = /^[\p{L}\p{M}\p{Nd}]$/u;

export function prepareDomainpart(input: string): string {
  let domain = input.toLowerCase().normalize('NFC');
  // RFC 7622 §3.2: a trailing label separator is stripped before the JID is used.
  if (domain.endsWith('.')) domain = domain.slice(0, -1);
  if (domain === '') throw new JIDError('empty domainpart');

  // RFC 7622 §3.2.1: an IP literal, IPv6 in brackets as in RFC 3986 §3.2.2.
  if (domain.startsWith('[') && domain.endsWith(']')) {
    if (!isIPv6(domain.slice(1, -1))) throw new JIDError(`invalid IPv6 literal ${JSON.stringify(input)}`);
    return domain;
  }
  if (isIPv4(domain)) return domain;

  // RFC 7622 §3.2.1: A-labels are converted to U-labels, so each domain has one form.
  if (domain.split('.').some((label) => label.startsWith('xn--'))) {
    const unicode = domainToUnicode(domain);
    if (unicode === '') throw new JIDError(`invalid A-label in ${JSON.stringify(input)}`);
    domain = unicode.normalize('NFC');
  }

  for (const label of domain.split('.')) {
    // RFC 1034 §3.1 via RFC 5890: no empty labels, at most 63 octets, no hyphen at either end.
    if (label === '') throw new JIDError(`empty label in domainpart ${JSON.stringify(input)}`);
    if (Buffer.byteLength(label, 'utf8') > 63) throw new JIDError(`domain label longer than 63 octets`);
    if (label.startsWith('-') || label.endsWith('-')) throw new JIDError(`domain label ${label} starts or ends with '-'`);
    if (!LABEL.test(label)) throw new JIDError(`invalid character in domainpart ${JSON.stringify(input)}`);
    for (const c of label) {
      if (c > '\x7F' && !NON_ASCII_OK.test(c)) throw new JIDError(`domainpart may not contain U+${codePoint(c)}`);
    }
  }
  checkLength('domainpart', domain);
  return domain;
}

// --- resourcepart: RFC 7622 §3.4, PRECIS OpaqueString (RFC 8265 §4.2) ---------------------------------------

const NON_ASCII_SPACE = /(?!\x20)\p{Zs}/gu;
// FreeformClass (RFC 8264 §4.3), approximated: controls, lone surrogates and unassigned code points
// (which include the noncharacters) are disallowed; everything else, '@' and '/' included, is allowed.
const FREEFORM_DISALLOWED = /[\p{Cc}\p{Cs}\p{Cn}]/u;

export function prepareResourcepart(input: string): string {
  // RFC 8265 §4.2.2: non-ASCII spaces map to U+0020, then NFC; no width or case mapping.
  const resource = input.replace(NON_ASCII_SPACE, ' ').normalize('NFC');
  if (resource === '') throw new JIDError('empty resourcepart');
  const bad = FREEFORM_DISALLOWED.exec(resource);
  if (bad) throw new JIDError(`resourcepart may not contain U+${codePoint(bad[0])}`);
  checkLength('resourcepart', resource);
  return resource;
}

function checkLength(part: string, value: string): void {
  if (Buffer.byteLength(value, 'utf8') > MAX_PART_OCTETS) {
    throw new JIDError(`${part} longer than ${MAX_PART_OCTETS} octets`);
  }
}

function codePoint(c: string): string {
  return (c.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0');
}
