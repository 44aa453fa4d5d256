// Requesting voice (XEP-0045 §7.13) and approving it (§8.6): a visitor's muc#request form becomes an
// approval form to each moderator; a moderator's submitted form with muc#request_allow grants voice.
import { StanzaError } from '../../xmpp/errors.ts';
import { NS } from '../../xmpp/namespaces.ts';
import { type Element, xml } from '../../xmpp/xml.ts';
import type { Occupant, OccupantSession, RoomRecord } from './store.ts';
import { setRole } from './admin.ts';
import { formValues, parseBoolean } from './config-form.ts';
import { fanOut } from './delivery.ts';
import { newId } from './occupants.ts';
import { roleChangeError } from './permissions.ts';
import { affiliationOf, targetsOf } from './room-model.ts';
import { type Ctx, roomJid } from './service.ts';

const field = (v: string, type: string, label: string, value: string) => xml('field', { var: v, type, ...(label ? { label } : {}) }, xml('value', {}, value));

export async function onVoiceForm(ctx: Ctx, room: RoomRecord, mine: { occupant: Occupant; session: OccupantSession } | undefined, stanza: Element): Promise<void> {
  const form = stanza.getChild('x', NS.DATA_FORMS)!;
  const values = formValues(form);
  if (values.get('FORM_TYPE')?.[0] !== NS.MUC_REQUEST) throw new StanzaError('bad-request', `expected a ${NS.MUC_REQUEST} form`);
  if (!mine) throw new StanzaError('not-acceptable', 'you are not in this room');
  if (values.has('muc#request_allow')) {
    // §8.6: a moderator's answer.
    if (!parseBoolean(values.get('muc#request_allow')?.[0], 'muc#request_allow')) return;
    const target = room.occupants[values.get('muc#roomnick')?.[0] ?? ''];
    if (!target || target.role !== 'visitor') return;
    const refusal = roleChangeError({ role: mine.occupant.role, affiliation: affiliationOf(room, mine.occupant.bare) }, { role: target.role, affiliation: affiliationOf(room, target.bare) }, 'participant');
    if (refusal) throw new StanzaError(refusal);
    await (await setRole(ctx, room, target, 'participant', { actor: mine.occupant.nick }))();
    return;
  }
  // §7.13: only a visitor asks for voice; the moderators get an approval form.
  if (mine.occupant.role !== 'visitor') return;
  const from = roomJid(ctx, room.id);
  const id = newId();
  const moderators = targetsOf(room, (o) => o.role === 'moderator');
  await fanOut(ctx, room.id, moderators, (t) =>
    xml(
      'message',
      { xmlns: NS.CLIENT, from, to: t.jid, id },
      xml(
        'x',
        { xmlns: NS.DATA_FORMS, type: 'form' },
        xml('title', {}, 'Voice request'),
        xml('instructions', {}, 'To approve this request for voice, select the "Grant voice to this person?" checkbox and submit.'),
        field('FORM_TYPE', 'hidden', '', NS.MUC_REQUEST),
        field('muc#role', 'list-single', 'Requested role', 'participant'),
        ...(room.config.whois === 'anyone' || t.occupant.role === 'moderator' ? [field('muc#jid', 'jid-single', 'User ID', mine.session.jid)] : []),
        field('muc#roomnick', 'text-single', 'Room Nickname', mine.occupant.nick),
        field('muc#request_allow', 'boolean', 'Grant voice to this person?', 'false'),
      ),
    ),
  );
}
