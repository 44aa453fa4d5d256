// XEP-0115 §5 verification strings and hashes, replaying the XEP's examples (§5.2 simple, §5.3
// complex with an extended form) and §5.4's reasons to reject an answer.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { capsHash, capsOf, verificationString } from '../../lib/extensions/caps/hash.ts';
import { parseFrame } from '../../lib/xmpp/xml.ts';

const query = (inner: string) => parseFrame(`<query xmlns="http://jabber.org/protocol/disco#info">${inner}</query>`);
const features = ['http://jabber.org/protocol/caps', 'http://jabber.org/protocol/disco#info', 'http://jabber.org/protocol/disco#items', 'http://jabber.org/protocol/muc'];
const feats = (list: string[]) => list.map((f) => `<feature var="${f}"/>`).join('');

const simple = query(`<identity category="client" name="Exodus 0.9.1" type="pc"/>${feats([...features].reverse())}`);

const complex = query(
  `<identity xml:lang="en" category="client" name="Psi 0.11" type="pc"/>` +
    `<identity xml:lang="el" category="client" name="Ψ 0.11" type="pc"/>` +
    feats(features) +
    `<x xmlns="jabber:x:data" type="result">` +
    `<field var="FORM_TYPE" type="hidden"><value>urn:xmpp:dataforms:softwareinfo</value></field>` +
    `<field var="ip_version"><value>ipv4</value><value>ipv6</value></field>` +
    `<field var="os"><value>Mac</value></field>` +
    `<field var="os_version"><value>10.5.1</value></field>` +
    `<field var="software"><value>Psi</value></field>` +
    `<field var="software_version"><value>0.11</value></field>` +
    `</x>`,
);

describe('XEP-0115 §5 entity capabilities hash', () => {
  it('§5.2 simple generation example: QgayPKawpkPSDYmwT/WM94uAlu0=', () => {
    assert.equal(
      verificationString(simple),
      'client/pc//Exodus 0.9.1<http://jabber.org/protocol/caps<http://jabber.org/protocol/disco#info<http://jabber.org/protocol/disco#items<http://jabber.org/protocol/muc<',
    );
    assert.equal(capsHash(simple), 'QgayPKawpkPSDYmwT/WM94uAlu0=');
  });

  it('§5.3 complex generation example: q07IKJEyjvHSyhy//CH0CxmKi8w=', () => {
    assert.equal(
      verificationString(complex),
      'client/pc/el/Ψ 0.11<client/pc/en/Psi 0.11<http://jabber.org/protocol/caps<http://jabber.org/protocol/disco#info<http://jabber.org/protocol/disco#items<http://jabber.org/protocol/muc<urn:xmpp:dataforms:softwareinfo<ip_version<ipv4<ipv6<os<Mac<os_version<10.5.1<software<Psi<software_version<0.11<',
    );
    assert.equal(capsHash(complex), 'q07IKJEyjvHSyhy//CH0CxmKi8w=');
  });

  it('other hash functions of the IANA registry (sha-256)', () => {
    assert.equal(capsHash(simple, 'sha-256')?.length, 44);
    assert.equal(capsHash(simple, 'md5'), undefined);
  });

  it('§5.4 3.3: duplicate identities or features, a non-hidden FORM_TYPE or two forms of one type are rejected', () => {
    assert.equal(capsHash(query(`<identity category="client" type="pc"/><identity category="client" type="pc"/>`)), undefined);
    assert.equal(capsHash(query(feats(['a', 'a']))), undefined);
    const form = (hidden: boolean) => `<x xmlns="jabber:x:data" type="result"><field var="FORM_TYPE"${hidden ? ' type="hidden"' : ''}><value>urn:x</value></field></x>`;
    assert.equal(capsHash(query(form(false))), undefined);
    assert.equal(capsHash(query(form(true) + form(true))), undefined);
  });

  it('§5.4 3.6: a form without FORM_TYPE is left out', () => {
    const withStray = query(`<identity category="client" name="Exodus 0.9.1" type="pc"/>${feats(features)}<x xmlns="jabber:x:data" type="result"><field var="os"><value>Mac</value></field></x>`);
    assert.equal(capsHash(withStray), 'QgayPKawpkPSDYmwT/WM94uAlu0=');
  });

  it("reads a presence's <c/> (§4), ignoring the legacy format without hash (§8.4)", () => {
    const p = parseFrame(`<presence xmlns="jabber:client"><c xmlns="http://jabber.org/protocol/caps" hash="sha-1" node="https://conversations.im" ver="QgayPKawpkPSDYmwT/WM94uAlu0="/></presence>`);
    assert.deepEqual(capsOf(p), { hash: 'sha-1', node: 'https://conversations.im', ver: 'QgayPKawpkPSDYmwT/WM94uAlu0=' });
    assert.equal(capsOf(parseFrame(`<presence xmlns="jabber:client"><c xmlns="http://jabber.org/protocol/caps" node="n" ver="1.0" ext="a"/></presence>`)), undefined);
    assert.equal(capsOf(parseFrame(`<presence xmlns="jabber:client"><c xmlns="http://jabber.org/protocol/caps" hash="sha-1" node="n" ver="${'A'.repeat(2000)}"/></presence>`)), undefined);
  });
});
