// The room configuration form (XEP-0045 §10.1.3, §10.2), the change notices (§10.2.1) and history
// selection (§7.2.15), as pure functions.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseFrame } from '../../lib/xmpp/xml.ts';
import { applyConfigForm, configChangeCodes, configForm, formValues, roomInfoForm, valuesFromJson } from '../../lib/extensions/muc/config-form.ts';
import { historyQuery, historyStanzas, parseHistoryRequest } from '../../lib/extensions/muc/history.ts';
import { MAX_PRESENCE_CHARS, presencePayload } from '../../lib/extensions/muc/room-model.ts';
import { defaultRoomConfig, mucOptions } from '../../lib/extensions/muc/service.ts';
import { refusal } from '../support/stanza-errors.ts';

const limits = { maxOccupants: 200, historyLength: 50 };
const defaults = defaultRoomConfig(mucOptions({ domain: 'x', enabled: true })!);

describe('muc#roomconfig', () => {
  it('shows every registered field with the current values (a form of type form with FORM_TYPE)', () => {
    const form = configForm({ ...defaults, name: 'A Dark Cave', maxUsers: 20 }, { roomJid: 'coven@c.x', owners: ['crone1@x'], admins: [], limits });
    assert.equal(form.attrs.type, 'form');
    const values = formValues(form);
    assert.deepEqual(values.get('FORM_TYPE'), ['http://jabber.org/protocol/muc#roomconfig']);
    assert.deepEqual(values.get('muc#roomconfig_roomname'), ['A Dark Cave']);
    assert.deepEqual(values.get('muc#roomconfig_maxusers'), ['20']);
    assert.deepEqual(values.get('muc#roomconfig_persistentroom'), ['0']);
    assert.deepEqual(values.get('muc#roomconfig_roomowners'), ['crone1@x']);
    const maxusers = form.getChildren('field').find((f) => f.attrs.var === 'muc#roomconfig_maxusers')!;
    assert.deepEqual(maxusers.getChildren('option').map((o) => o.getChildText('value')), ['10', '20', '30', '50', '100', 'none']);
  });

  it('reads the submitted form of §10.1.3 example 163', () => {
    const x = parseFrame(`<x xmlns='jabber:x:data' type='submit'>
      <field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value></field>
      <field var='muc#roomconfig_roomname'><value>A Dark Cave</value></field>
      <field var='muc#roomconfig_roomdesc'><value>The place for all good witches!</value></field>
      <field var='muc#roomconfig_enablelogging'><value>0</value></field>
      <field var='muc#roomconfig_changesubject'><value>1</value></field>
      <field var='muc#roomconfig_allowinvites'><value>0</value></field>
      <field var='muc#roomconfig_allowpm'><value>anyone</value></field>
      <field var='muc#roomconfig_maxusers'><value>10</value></field>
      <field var='muc#roomconfig_publicroom'><value>0</value></field>
      <field var='muc#roomconfig_persistentroom'><value>0</value></field>
      <field var='muc#roomconfig_moderatedroom'><value>0</value></field>
      <field var='muc#roomconfig_membersonly'><value>0</value></field>
      <field var='muc#roomconfig_passwordprotectedroom'><value>1</value></field>
      <field var='muc#roomconfig_roomsecret'><value>cauldronburn</value></field>
      <field var='muc#roomconfig_whois'><value>moderators</value></field>
      <field var='muc#maxhistoryfetch'><value>50</value></field>
      <field var='muc#roomconfig_roomadmins'><value>wiccarocks@shakespeare.lit</value><value>hecate@shakespeare.lit</value></field>
    </x>`);
    const { config, admins, owners } = applyConfigForm(defaults, formValues(x), limits);
    assert.equal(config.name, 'A Dark Cave');
    assert.equal(config.description, 'The place for all good witches!');
    assert.equal(config.changeSubject, true);
    assert.equal(config.maxUsers, 10);
    assert.equal(config.public, false);
    assert.equal(config.passwordProtected, true);
    assert.equal(config.password, 'cauldronburn');
    assert.equal(config.historyFetch, 50);
    assert.deepEqual(admins, ['wiccarocks@shakespeare.lit', 'hecate@shakespeare.lit']);
    assert.equal(owners, undefined);
  });

  it('keeps unsubmitted fields and accepts true/false as booleans (XEP-0004 §3.3)', () => {
    const { config } = applyConfigForm({ ...defaults, name: 'kept' }, new Map([['muc#roomconfig_persistentroom', ['true']]]), limits);
    assert.deepEqual([config.name, config.persistent], ['kept', true]);
  });

  it('refuses values out of range with not-acceptable and another FORM_TYPE with bad-request', () => {
    const submit = (entries: [string, string[]][]) => () => applyConfigForm(defaults, new Map(entries), limits);
    assert.equal(refusal(submit([['muc#roomconfig_passwordprotectedroom', ['1']]])), 'not-acceptable');
    assert.equal(refusal(submit([['muc#roomconfig_maxusers', ['201']]])), 'not-acceptable');
    assert.equal(refusal(submit([['muc#roomconfig_moderatedroom', ['maybe']]])), 'not-acceptable');
    assert.equal(refusal(submit([['muc#roomconfig_whois', ['none']]])), 'not-acceptable');
    assert.equal(refusal(submit([['muc#maxhistoryfetch', ['51']]])), 'not-acceptable');
    assert.equal(refusal(submit([['muc#roomconfig_roomowners', []]])), 'conflict');
    assert.equal(refusal(submit([['FORM_TYPE', ['urn:other']]])), 'bad-request');
    assert.equal(applyConfigForm(defaults, new Map([['muc#roomconfig_maxusers', ['none']]]), limits).config.maxUsers, 0);
  });

  it('JSON settings (admin API, CLI) go through the same fields; unknown keys are refused', () => {
    const { config } = applyConfigForm(defaults, valuesFromJson({ persistent: true, password: 'pw', maxUsers: 30, whois: 'anyone' }), limits);
    assert.deepEqual([config.persistent, config.passwordProtected, config.password, config.maxUsers, config.whois], [true, true, 'pw', 30, 'anyone']);
    assert.equal(refusal(() => valuesFromJson({ colour: 'red' })), 'bad-request');
    assert.equal(applyConfigForm(defaults, valuesFromJson({ moderated: 'true' }), limits).config.moderated, true);
  });

  it('§10.2.1 notices: 170/171 logging, 172/173 anonymity, 104 for anything else', () => {
    assert.deepEqual(configChangeCodes(defaults, defaults), []);
    assert.deepEqual(configChangeCodes(defaults, { ...defaults, logging: true }), [170]);
    assert.deepEqual(configChangeCodes({ ...defaults, logging: true }, defaults), [171]);
    assert.deepEqual(configChangeCodes(defaults, { ...defaults, whois: 'anyone' }), [172]);
    assert.deepEqual(configChangeCodes({ ...defaults, whois: 'anyone' }, { ...defaults, name: 'x' }), [104, 173]);
  });

  it('muc#roominfo shows owners as contacts only in a non-anonymous room', () => {
    const info = (whois: 'anyone' | 'moderators') => formValues(roomInfoForm({ ...defaults, whois, description: 'd' }, { occupants: 3, subject: 'Spells', owners: ['crone1@x'] }));
    assert.deepEqual(info('anyone').get('muc#roominfo_contactjid'), ['crone1@x']);
    assert.equal(info('moderators').get('muc#roominfo_contactjid'), undefined);
    assert.deepEqual(info('moderators').get('muc#roominfo_occupants'), ['3']);
    assert.deepEqual(info('moderators').get('muc#roominfo_subject'), ['Spells']);
  });
});

describe('§7.2.15 history management', () => {
  const x = (attrs: string) => parseFrame(`<x xmlns='http://jabber.org/protocol/muc'><history ${attrs}/></x>`);
  const entries = [1, 2, 3, 4].map((i) => ({ at: 1000 * i, xml: `<message xmlns='jabber:client' from='r@c/n' type='groupchat' id='m${i}'><body>message ${i}</body></message>` }));

  it('parses the four attributes and ignores malformed ones', () => {
    assert.deepEqual(parseHistoryRequest(x("maxchars='65000' maxstanzas='20' seconds='180' since='1970-01-01T00:00:00Z'")), { maxchars: 65000, maxstanzas: 20, seconds: 180, since: 0 });
    assert.deepEqual(parseHistoryRequest(x("maxstanzas='-1' since='yesterday'")), { maxchars: undefined, maxstanzas: undefined, seconds: undefined, since: undefined });
    assert.deepEqual(parseHistoryRequest(undefined), {});
  });

  it('reads at most the room limit, none for maxchars 0, from the later of seconds and since', () => {
    assert.deepEqual(historyQuery({}, 20, 10_000), { limit: 20, since: 0 });
    assert.deepEqual(historyQuery({ maxstanzas: 50 }, 20, 10_000), { limit: 20, since: 0 });
    assert.deepEqual(historyQuery({ maxstanzas: 2 }, 20, 10_000), { limit: 2, since: 0 });
    assert.deepEqual(historyQuery({ maxchars: 0 }, 20, 10_000), { limit: 0, since: 0 });
    assert.deepEqual(historyQuery({ seconds: 3, since: 1000 }, 20, 10_000), { limit: 20, since: 7000 });
  });

  it('stamps each message with a delay from the room and keeps the newest complete stanzas within maxchars', () => {
    const all = historyStanzas(entries, {}, 'r@c', 'u@x/r');
    assert.deepEqual(all.map((m) => m.attrs.id), ['m1', 'm2', 'm3', 'm4']);
    assert.equal(all[0].attrs.to, 'u@x/r');
    assert.deepEqual(all[1].getChild('delay', 'urn:xmpp:delay')!.attrs, { xmlns: 'urn:xmpp:delay', from: 'r@c', stamp: new Date(2000).toISOString() });
    const size = all[3].toString().length;
    assert.deepEqual(historyStanzas(entries, { maxchars: size * 2 + 1 }, 'r@c', 'u@x/r').map((m) => m.attrs.id), ['m3', 'm4']);
    assert.deepEqual(historyStanzas(entries, { maxchars: size - 1 }, 'r@c', 'u@x/r'), []);
  });
});

describe('occupant presence kept in the room item', () => {
  it('drops MUC elements (§17.2 rule 6) and cuts an oversized payload down to show, priority, status and caps', () => {
    const kept = presencePayload(parseFrame("<presence xmlns='jabber:client' to='r@c/n'><show>away</show><x xmlns='http://jabber.org/protocol/muc'><password>pw</password></x><x xmlns='http://jabber.org/protocol/muc#user'/></presence>"));
    assert.equal(kept, '<presence xmlns="jabber:client"><show>away</show></presence>');
    const big = parseFrame(
      `<presence xmlns='jabber:client'><show>dnd</show><status>${'s'.repeat(300)}</status><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='n' ver='v'/><x xmlns='vcard-temp:x:update'><photo>${'p'.repeat(2000)}</photo></x></presence>`,
    );
    const small = parseFrame(presencePayload(big));
    assert.ok(presencePayload(big).length <= MAX_PRESENCE_CHARS);
    assert.deepEqual(small.children.map((c) => (c as { name: string }).name), ['show', 'status', 'c']);
    assert.equal(small.getChildText('status')!.length, 200);
  });
});
