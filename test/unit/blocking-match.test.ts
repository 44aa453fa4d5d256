// XEP-0191 §3.5 JID matching (the XEP-0016 §2.1 rules): which addresses a blocklist item covers.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isBlocked, itemMatches, parseItems } from '../../lib/extensions/blocking/match.ts';
import { parseJID } from '../../lib/xmpp/jid.ts';

const covers = (item: string, jid: string) => itemMatches(parseJID(item), parseJID(jid));

describe('XEP-0191 blocklist item matching', () => {
  it('a full JID blocks that resource only', () => {
    assert.equal(covers('romeo@montague.net/orchard', 'romeo@montague.net/orchard'), true);
    assert.equal(covers('romeo@montague.net/orchard', 'romeo@montague.net/balcony'), false);
    assert.equal(covers('romeo@montague.net/orchard', 'romeo@montague.net'), false);
  });

  it('a bare JID blocks the bare JID and every resource of it, and nobody else at the domain', () => {
    assert.equal(covers('romeo@montague.net', 'romeo@montague.net'), true);
    assert.equal(covers('romeo@montague.net', 'romeo@montague.net/orchard'), true);
    assert.equal(covers('romeo@montague.net', 'benvolio@montague.net/home'), false);
    assert.equal(covers('romeo@montague.net', 'montague.net'), false);
  });

  it('a domain blocks the domain, every user at it and every resource', () => {
    for (const jid of ['montague.net', 'montague.net/service', 'romeo@montague.net', 'romeo@montague.net/orchard']) assert.equal(covers('montague.net', jid), true, jid);
    assert.equal(covers('montague.net', 'juliet@capulet.com'), false);
    // A subdomain is another domain.
    assert.equal(covers('montague.net', 'romeo@chat.montague.net'), false);
  });

  it('a domain with a resource blocks that full JID of the domain only', () => {
    assert.equal(covers('montague.net/service', 'montague.net/service'), true);
    assert.equal(covers('montague.net/service', 'montague.net'), false);
    assert.equal(covers('montague.net/service', 'romeo@montague.net/service'), false);
  });

  it('matching compares normalized JIDs (RFC 7622): case in localpart and domain does not matter', () => {
    assert.equal(isBlocked(parseItems(['Romeo@Montague.NET'])!, 'romeo@montague.net/x'), true);
  });

  it('isBlocked: any item of the list; an empty or absent list blocks nothing', () => {
    assert.equal(isBlocked(['a@x', 'montague.net'], 'romeo@montague.net/orchard'), true);
    assert.equal(isBlocked(['a@x'], 'romeo@montague.net/orchard'), false);
    assert.equal(isBlocked([], 'romeo@montague.net'), false);
    assert.equal(isBlocked(undefined, 'romeo@montague.net'), false);
  });

  it('parseItems normalizes, drops duplicates, and refuses the whole set when one JID is malformed (§3.3 jid-malformed)', () => {
    assert.deepEqual(parseItems(['Romeo@montague.net', 'romeo@montague.net', 'montague.net']), ['romeo@montague.net', 'montague.net']);
    assert.equal(parseItems(['romeo@montague.net', '@bad']), null);
    assert.equal(parseItems([undefined]), null);
  });
});
