// XEP-0115 §5: the verification string and hash of a disco#info answer, and a presence's <c/>. Pure.
import { createHash } from 'node:crypto';
import type { Element } from '../../xmpp/xml.ts';

export const NS_CAPS = 'http://jabber.org/protocol/caps';
const NS_DATA = 'jabber:x:data';

/** §5.1 hash functions (from the IANA registry) we verify; others are ignored (§5.4 3.3). */
const HASHES: Record<string, string> = { 'sha-1': 'sha1', 'sha-256': 'sha256', 'sha-512': 'sha512' };

/** The <c/> of a presence: hash, node and ver; undefined without one (or a legacy one, §8.4). */
export function capsOf(presence: Element): { hash: string; node: string; ver: string } | undefined {
  const c = presence.getChild('c', NS_CAPS);
  const { hash, node, ver } = (c?.attrs ?? {}) as Record<string, string | undefined>;
  // A ver is a base64 hash (88 characters for sha-512); a longer one is no hash, and would not fit a sort key.
  if (!hash || !node || !ver || !HASHES[hash] || ver.length > 128) return undefined;
  return { hash, node, ver };
}

/**
 * §5.1 the verification string of a disco#info <query/>, or undefined when §5.4 says to reject it
 * (3.3: duplicate identities or features, more than one form of a FORM_TYPE, a FORM_TYPE that is
 * not hidden). Pure.
 */
export function verificationString(query: Element): string | undefined {
  const els = (name: string, el: Element = query) => el.children.filter((c): c is Element => typeof c !== 'string' && c.name === name);
  const identities = els('identity').map((i) => `${i.attrs.category ?? ''}/${i.attrs.type ?? ''}/${i.attrs['xml:lang'] ?? ''}/${i.attrs.name ?? ''}`);
  const features = els('feature').map((f) => String(f.attrs.var ?? ''));
  if (new Set(identities).size !== identities.length || new Set(features).size !== features.length) return undefined;
  let s = '';
  // §5.1 2-4: identities by category, type, xml:lang (the string sorts the same way), then features.
  for (const i of identities.sort(octets)) s += `${i}<`;
  for (const f of features.sort(octets)) s += `${f}<`;
  // §5.1 5: extended service discovery forms (XEP-0128), by FORM_TYPE.
  const forms: { type: string; fields: { name: string; values: string[] }[] }[] = [];
  for (const x of query.children) {
    if (typeof x === 'string' || x.name !== 'x' || x.attrs.xmlns !== NS_DATA) continue;
    const fields = els('field', x);
    const formType = fields.find((f) => f.attrs.var === 'FORM_TYPE');
    if (!formType) continue; // §5.4 3.6: a form without FORM_TYPE is ignored.
    if (formType.attrs.type !== 'hidden') return undefined;
    const type = els('value', formType).map((v) => v.text())[0] ?? '';
    if (forms.some((f) => f.type === type)) return undefined;
    forms.push({
      type,
      fields: fields.filter((f) => f !== formType).map((f) => ({ name: String(f.attrs.var ?? ''), values: els('value', f).map((v) => v.text()).sort(octets) })),
    });
  }
  for (const form of forms.sort((a, b) => octets(a.type, b.type))) {
    s += `${form.type}<`;
    for (const f of form.fields.sort((a, b) => octets(a.name, b.name))) {
      s += `${f.name}<`;
      for (const v of f.values) s += `${v}<`;
    }
  }
  return s;
}

/** §5.1 6-8: the ver of a disco#info <query/> with hash function `hash` (IANA name). Pure. */
export function capsHash(query: Element, hash = 'sha-1'): string | undefined {
  const s = verificationString(query);
  const algo = HASHES[hash];
  if (s === undefined || !algo) return undefined;
  return createHash(algo).update(s, 'utf8').digest('base64');
}

/** §5.1 1: sorting is by "i;octet" collation (RFC 4790), i.e. by UTF-8 bytes. */
function octets(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

