// Namespace names used across the server, with the specification that defines each.
export const NS = {
  CLIENT: 'jabber:client', // RFC 6120 §4.8.3
  FRAMING: 'urn:ietf:params:xml:ns:xmpp-framing', // RFC 7395 §3.3
  STREAMS: 'http://etherx.jabber.org/streams', // RFC 6120 §4.8.1
  STREAM_ERRORS: 'urn:ietf:params:xml:ns:xmpp-streams', // RFC 6120 §4.9.2
  STANZA_ERRORS: 'urn:ietf:params:xml:ns:xmpp-stanzas', // RFC 6120 §8.3.2
  SASL: 'urn:ietf:params:xml:ns:xmpp-sasl', // RFC 6120 §6.4
  BIND: 'urn:ietf:params:xml:ns:xmpp-bind', // RFC 6120 §7
  SESSION: 'urn:ietf:params:xml:ns:xmpp-session', // RFC 3921 §3, draft-cridland-xmpp-session
  ROSTER: 'jabber:iq:roster', // RFC 6121 §2
  DISCO_INFO: 'http://jabber.org/protocol/disco#info', // XEP-0030
  DISCO_ITEMS: 'http://jabber.org/protocol/disco#items', // XEP-0030
  PING: 'urn:xmpp:ping', // XEP-0199
  VERSION: 'jabber:iq:version', // XEP-0092
  DELAY: 'urn:xmpp:delay', // XEP-0203
  CHATSTATES: 'http://jabber.org/protocol/chatstates', // XEP-0085
  OFFLINE: 'msgoffline', // XEP-0160 disco feature
  PRE_APPROVAL: 'urn:xmpp:features:pre-approval', // RFC 6121 §3.4
  ROSTER_VER: 'urn:xmpp:features:rosterver', // RFC 6121 §2.6.1
  DATA_FORMS: 'jabber:x:data', // XEP-0004
  MUC: 'http://jabber.org/protocol/muc', // XEP-0045
  MUC_USER: 'http://jabber.org/protocol/muc#user', // XEP-0045
  MUC_ADMIN: 'http://jabber.org/protocol/muc#admin', // XEP-0045
  MUC_OWNER: 'http://jabber.org/protocol/muc#owner', // XEP-0045
  MUC_ROOMCONFIG: 'http://jabber.org/protocol/muc#roomconfig', // XEP-0045 §15.5.3
  MUC_ROOMINFO: 'http://jabber.org/protocol/muc#roominfo', // XEP-0045 §15.5.4
  MUC_REQUEST: 'http://jabber.org/protocol/muc#request', // XEP-0045 §8.6
  MUC_STABLE_ID: 'http://jabber.org/protocol/muc#stable_id', // XEP-0045 §7.4
  MAM: 'urn:xmpp:mam:2', // XEP-0313
  MUC_SELF_PING: 'http://jabber.org/protocol/muc#self-ping-optimization', // XEP-0410 §3.3
  OCCUPANT_ID: 'urn:xmpp:occupant-id:0', // XEP-0421
  CONFERENCE: 'jabber:x:conference', // XEP-0249
  HINTS: 'urn:xmpp:hints', // XEP-0334
  JINGLE_MESSAGE: 'urn:xmpp:jingle-message:0', // XEP-0353 (0.6 and later; also 0.1 to 0.3)
  JINGLE_MESSAGE_1: 'urn:xmpp:jingle-message:1', // XEP-0353 0.4 and 0.5 (Design Considerations)
} as const;
