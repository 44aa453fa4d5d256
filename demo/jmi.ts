// XEP-0353 Jingle Message Initiation for StanzaJS, which has Jingle but not this: the six messages
// (§3.1 propose … §3.7 finish) as one `jmi` field of a message, so the demo reads and writes them like
// any other StanzaJS stanza. The Jingle <reason/> inside reject, retract and finish is XEP-0166 §7.4's.
// https://xmpp.org/extensions/xep-0353.html
import type { Agent } from 'stanza';
import { JingleReasonCondition } from 'stanza/Constants';
import { attribute, childEnum, childText, multipleChildAttribute } from 'stanza/jxt';
import { NS_JINGLE_1, NS_JINGLE_RTP_1 } from 'stanza/Namespaces';

export const NS_JMI = 'urn:xmpp:jingle-message:0';

export const JMI_ACTIONS = ['propose', 'ringing', 'proceed', 'reject', 'retract', 'finish'] as const;
export type JmiAction = (typeof JMI_ACTIONS)[number];

export interface Jmi {
  action: JmiAction;
  /** The session id, reused as the Jingle sid (XEP-0353 §3.1). */
  id: string;
  /** propose: one RTP description per medium (XEP-0167), e.g. ['audio', 'video']. */
  media?: string[];
  /** reject, retract, finish: a XEP-0166 §7.4 condition and text. */
  reason?: { condition: string; text?: string };
}

declare module 'stanza' {
  export interface AgentEvents {
    jmi: import('stanza/protocol').ReceivedMessage & { jmi: Jmi };
  }
}
declare module 'stanza/protocol' {
  export interface Message {
    jmi?: Jmi;
  }
}

/** Teaches `client` the JMI elements; afterwards a message's `jmi` field reads and writes them. */
export function useJmi(client: Agent): void {
  client.stanzas.define([
    ...JMI_ACTIONS.map((action) => ({
      element: action,
      namespace: NS_JMI,
      path: 'message.jmi',
      type: action,
      typeField: 'action',
      fields: {
        id: attribute('id'),
        ...(action === 'propose' ? { media: multipleChildAttribute(NS_JINGLE_RTP_1, 'description', 'media') } : {}),
      },
    })),
    {
      element: 'reason',
      namespace: NS_JINGLE_1,
      path: 'message.jmi.reason',
      fields: {
        condition: childEnum(null, Object.values(JingleReasonCondition)),
        text: childText(null, 'text'),
      },
    },
  ]);
}
