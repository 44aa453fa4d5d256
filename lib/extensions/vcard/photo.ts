// XEP-0153 vCard-Based Avatars: the avatar hash of a vCard (XEP-0054), pure.
import { createHash } from 'node:crypto';
import type { Element } from '../../xmpp/xml.ts';

export const NS_VCARD = 'vcard-temp';
export const NS_VCARD_UPDATE = 'vcard-temp:x:update';

/**
 * §3.1: "the SHA1 hash of the avatar image data itself (not the base64-encoded version)"; §4.6 rule 5:
 * whitespace in the base64 data is ignored. '' when the vCard has no image (§4.1 rule 3: an empty
 * <photo/> then says so).
 */
export function photoHash(vcard: Element): string {
  const binval = vcard.getChild('PHOTO')?.getChildText('BINVAL');
  const data = Buffer.from((binval ?? '').replace(/\s+/g, ''), 'base64');
  return data.length ? createHash('sha1').update(data).digest('hex') : '';
}
