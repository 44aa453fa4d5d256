// XEP-0421 Occupant identifiers for semi-anonymous MUCs: every presence and groupchat message a room
// sends names its occupant with an id that stays the same for the same user (real bare JID) in the
// same room, across rejoins and nick changes, and that reveals nothing of the real JID (§4). The id is
// computed, not stored: an HMAC keyed by the deployment's secret (docs/architecture.md "Data", the
// `server-secret` item), read once per container, so a message costs no DynamoDB call more.
import { createHmac } from 'node:crypto';
import { NS } from '../../xmpp/namespaces.ts';
import { type Element, xml } from '../../xmpp/xml.ts';

/** The key of occupant ids, derived from the deployment's secret so the secret itself keys nothing else here. */
export function occupantIdKey(serverSecret: Buffer): Buffer {
  return createHmac('sha256', serverSecret).update(NS.OCCUPANT_ID).digest();
}

/**
 * The occupant id of `bare` in the room `roomJid`: 128 bits of HMAC-SHA-256, base64url (22 characters;
 * §4 allows up to 128). Ids of one user differ from room to room, so rooms cannot be correlated.
 */
export function occupantId(key: Buffer, roomJid: string, bare: string): string {
  return createHmac('sha256', key).update(`${roomJid}\n${bare}`).digest().subarray(0, 16).toString('base64url');
}

/** §4: an occupant-id the client put in its stanza is not the room's and is removed. */
export function stripOccupantIds(stanza: Element): Element {
  stanza.children = stanza.children.filter((c) => typeof c === 'string' || !(c.name === 'occupant-id' && c.attrs.xmlns === NS.OCCUPANT_ID));
  return stanza;
}

/** The stanza (changed in place) with exactly one occupant-id: this one. */
export function withOccupantId(stanza: Element, id: string): Element {
  stripOccupantIds(stanza).cnode(xml('occupant-id', { xmlns: NS.OCCUPANT_ID, id }));
  return stanza;
}
