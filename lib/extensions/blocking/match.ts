// XEP-0191 §3.5 JID matching, which follows XEP-0016 §2.1 ("the user's server shall attempt to
// match the JID in the following order"): an item names a full JID, a bare JID, a domain with a
// resource, or a domain, and blocks every address that falls under it. Pure: no I/O.
import { type JID, tryParseJID } from '../../xmpp/jid.ts';

/**
 * Does the blocklist item `item` (as stored: a normalized JID string) cover `jid`?
 *   user@domain/resource → only that full JID
 *   user@domain          → that bare JID and every resource of it
 *   domain/resource      → only that full JID of the domain itself
 *   domain               → the domain itself and every JID at it (any user, any resource)
 */
export function itemMatches(item: JID, jid: JID): boolean {
  if (item.domain !== jid.domain) return false;
  if (item.local) {
    if (item.local !== jid.local) return false;
    return !item.resource || item.resource === jid.resource;
  }
  if (item.resource) return !jid.local && item.resource === jid.resource;
  return true;
}

/** Is `jid` blocked by any item of `list`? Items that do not parse (never stored) block nothing. */
export function isBlocked(list: readonly string[] | undefined, jid: JID | string): boolean {
  if (!list?.length) return false;
  const target = typeof jid === 'string' ? tryParseJID(jid) : jid;
  if (!target) return false;
  for (const entry of list) {
    const item = tryParseJID(entry);
    if (item && itemMatches(item, target)) return true;
  }
  return false;
}

/**
 * The `jid` attributes of a <block/> or <unblock/>, normalized (RFC 7622), duplicates removed; null
 * if any of them is not a JID (XEP-0191 §3.3: the server returns jid-malformed).
 */
export function parseItems(jids: (string | undefined)[]): string[] | null {
  const out = new Set<string>();
  for (const j of jids) {
    const parsed = tryParseJID(j);
    if (!parsed) return null;
    out.add(parsed.toString());
  }
  return [...out];
}
