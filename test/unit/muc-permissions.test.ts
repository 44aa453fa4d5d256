// The role and affiliation tables of XEP-0045 §5, row by row.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Affiliation, Role } from '../../lib/extensions/muc/store.ts';
import {
  affiliationChangeError,
  defaultRole,
  entryError,
  inviteError,
  mayChangeSubject,
  mayListAffiliation,
  maySeeRealJids,
  maySendGroupchat,
  maySendPrivate,
  roleAfterAffiliationChange,
  roleChangeError,
} from '../../lib/extensions/muc/permissions.ts';

describe('§5.1.2 initial role based on affiliation', () => {
  const table: [string, { moderated: boolean; membersOnly: boolean }, Record<Affiliation, Role | undefined>][] = [
    ['moderated', { moderated: true, membersOnly: false }, { none: 'visitor', member: 'participant', admin: 'moderator', owner: 'moderator', outcast: undefined }],
    ['unmoderated', { moderated: false, membersOnly: false }, { none: 'participant', member: 'participant', admin: 'moderator', owner: 'moderator', outcast: undefined }],
    ['members-only', { moderated: false, membersOnly: true }, { none: undefined, member: 'participant', admin: 'moderator', owner: 'moderator', outcast: undefined }],
  ];
  for (const [name, config, row] of table) {
    it(name, () => {
      for (const [affiliation, role] of Object.entries(row)) assert.equal(defaultRole(affiliation as Affiliation, config), role, `${name}/${affiliation}`);
    });
  }
});

describe('§7.2.7 / §7.2.8 entry', () => {
  it('refuses outcasts (forbidden) and non-members of a members-only room (registration-required)', () => {
    assert.equal(entryError('outcast', { membersOnly: false }), 'forbidden');
    assert.equal(entryError('none', { membersOnly: true }), 'registration-required');
    assert.equal(entryError('member', { membersOnly: true }), undefined);
    assert.equal(entryError('none', { membersOnly: false }), undefined);
  });
});

describe('§5.1.1 privileges of roles', () => {
  it('send messages to all: participants and moderators', () => {
    assert.deepEqual((['none', 'visitor', 'participant', 'moderator'] as Role[]).map(maySendGroupchat), [false, false, true, true]);
  });
  it('modify subject: moderators; participants where changesubject is on; never visitors', () => {
    assert.deepEqual((['visitor', 'participant', 'moderator'] as Role[]).map((r) => mayChangeSubject(r, { changeSubject: false })), [false, false, true]);
    assert.deepEqual((['visitor', 'participant', 'moderator'] as Role[]).map((r) => mayChangeSubject(r, { changeSubject: true })), [false, true, true]);
  });
  it('private messages by muc#roomconfig_allowpm', () => {
    const roles: Role[] = ['visitor', 'participant', 'moderator'];
    assert.deepEqual(roles.map((r) => maySendPrivate(r, 'anyone')), [true, true, true]);
    assert.deepEqual(roles.map((r) => maySendPrivate(r, 'participants')), [false, true, true]);
    assert.deepEqual(roles.map((r) => maySendPrivate(r, 'moderators')), [false, false, true]);
    assert.deepEqual(roles.map((r) => maySendPrivate(r, 'none')), [false, false, false]);
    assert.equal(maySendPrivate('none', 'anyone'), false);
  });
  it('real JIDs: moderators always, everyone in a non-anonymous room', () => {
    assert.equal(maySeeRealJids('participant', 'moderators'), false);
    assert.equal(maySeeRealJids('moderator', 'moderators'), true);
    assert.equal(maySeeRealJids('visitor', 'anyone'), true);
  });
});

describe('§8–§9 role changes', () => {
  const actor = (role: Role, affiliation: Affiliation) => ({ role, affiliation });
  it('only moderators change roles (forbidden otherwise)', () => {
    assert.equal(roleChangeError(actor('participant', 'member'), actor('visitor', 'none'), 'participant'), 'forbidden');
    assert.equal(roleChangeError(actor('participant', 'admin'), actor('visitor', 'none'), 'none'), 'forbidden');
  });
  it('kick: not a user of higher affiliation (§8.2), not a moderator unless admin or owner (§5.1.3)', () => {
    assert.equal(roleChangeError(actor('moderator', 'none'), actor('participant', 'none'), 'none'), undefined);
    assert.equal(roleChangeError(actor('moderator', 'member'), actor('moderator', 'admin'), 'none'), 'not-allowed');
    assert.equal(roleChangeError(actor('moderator', 'admin'), actor('moderator', 'owner'), 'none'), 'not-allowed');
    assert.equal(roleChangeError(actor('moderator', 'none'), actor('moderator', 'none'), 'none'), 'not-allowed');
    assert.equal(roleChangeError(actor('moderator', 'owner'), actor('moderator', 'admin'), 'none'), undefined);
  });
  it('voice: granted by any moderator; never revoked from admins or owners, nor from an affiliation at or above the moderator’s (§8.4)', () => {
    assert.equal(roleChangeError(actor('moderator', 'none'), actor('visitor', 'none'), 'participant'), undefined);
    assert.equal(roleChangeError(actor('moderator', 'owner'), actor('participant', 'member'), 'visitor'), undefined);
    assert.equal(roleChangeError(actor('moderator', 'member'), actor('participant', 'none'), 'visitor'), undefined);
    assert.equal(roleChangeError(actor('moderator', 'none'), actor('participant', 'member'), 'visitor'), 'not-allowed');
    assert.equal(roleChangeError(actor('moderator', 'member'), actor('participant', 'member'), 'visitor'), 'not-allowed');
    assert.equal(roleChangeError(actor('moderator', 'owner'), actor('moderator', 'admin'), 'visitor'), 'not-allowed');
  });
  it('moderator status: granted and revoked by admins and owners only, never revoked from admins or owners (§9.6, §9.7)', () => {
    assert.equal(roleChangeError(actor('moderator', 'admin'), actor('participant', 'member'), 'moderator'), undefined);
    assert.equal(roleChangeError(actor('moderator', 'none'), actor('participant', 'member'), 'moderator'), 'not-allowed');
    assert.equal(roleChangeError(actor('moderator', 'admin'), actor('moderator', 'none'), 'participant'), undefined);
    assert.equal(roleChangeError(actor('moderator', 'owner'), actor('moderator', 'admin'), 'participant'), 'not-allowed');
  });
});

describe('§9–§10 affiliation changes (state chart of §5.2.2)', () => {
  const none = { self: false, otherOwners: 1 };
  it('members and unaffiliated users may change nothing (forbidden)', () => {
    assert.equal(affiliationChangeError('member', 'none', 'member', none), 'forbidden');
    assert.equal(affiliationChangeError('none', 'none', 'outcast', none), 'forbidden');
  });
  it('admins ban, grant and revoke membership, but neither edit admin/owner lists (forbidden) nor touch admins/owners (not-allowed)', () => {
    assert.equal(affiliationChangeError('admin', 'none', 'outcast', none), undefined);
    assert.equal(affiliationChangeError('admin', 'member', 'none', none), undefined);
    assert.equal(affiliationChangeError('admin', 'outcast', 'member', none), undefined);
    assert.equal(affiliationChangeError('admin', 'none', 'admin', none), 'forbidden');
    assert.equal(affiliationChangeError('admin', 'member', 'owner', none), 'forbidden');
    assert.equal(affiliationChangeError('admin', 'owner', 'outcast', none), 'not-allowed');
    assert.equal(affiliationChangeError('admin', 'admin', 'none', none), 'not-allowed');
  });
  it('owners do everything, except banning themselves or leaving the room without an owner (conflict)', () => {
    assert.equal(affiliationChangeError('owner', 'admin', 'outcast', none), undefined);
    assert.equal(affiliationChangeError('owner', 'none', 'owner', none), undefined);
    assert.equal(affiliationChangeError('owner', 'owner', 'outcast', { self: true, otherOwners: 1 }), 'conflict');
    assert.equal(affiliationChangeError('owner', 'owner', 'admin', { self: true, otherOwners: 0 }), 'conflict');
    assert.equal(affiliationChangeError('owner', 'owner', 'admin', { self: true, otherOwners: 1 }), undefined);
  });
  it('the role that follows an affiliation change (§5.1.3 note)', () => {
    const moderated = { moderated: true, membersOnly: false };
    assert.equal(roleAfterAffiliationChange('visitor', 'none', 'member', moderated), 'participant');
    assert.equal(roleAfterAffiliationChange('participant', 'none', 'admin', moderated), 'moderator');
    assert.equal(roleAfterAffiliationChange('moderator', 'admin', 'none', moderated), 'visitor');
    assert.equal(roleAfterAffiliationChange('moderator', 'none', 'member', moderated), 'moderator');
    assert.equal(roleAfterAffiliationChange('participant', 'member', 'outcast', moderated), undefined);
    assert.equal(roleAfterAffiliationChange('participant', 'member', 'none', { moderated: false, membersOnly: true }), undefined);
  });
  it('lists: admins and owners read every list; members the member list of a non-anonymous room', () => {
    assert.equal(mayListAffiliation('admin', 'outcast', 'moderators'), true);
    assert.equal(mayListAffiliation('member', 'member', 'anyone'), true);
    assert.equal(mayListAffiliation('member', 'member', 'moderators'), false);
    assert.equal(mayListAffiliation('member', 'owner', 'anyone'), false);
  });
  it('§9.5 invitations to members-only rooms: admins, or members with allowinvites', () => {
    assert.equal(inviteError('none', { membersOnly: false, allowInvites: false }), undefined);
    assert.equal(inviteError('member', { membersOnly: true, allowInvites: false }), 'forbidden');
    assert.equal(inviteError('member', { membersOnly: true, allowInvites: true }), undefined);
    assert.equal(inviteError('admin', { membersOnly: true, allowInvites: false }), undefined);
  });
});
