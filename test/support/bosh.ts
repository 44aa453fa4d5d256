// A raw BOSH client (XEP-0124/0206) for exact requests and responses: each call is one HTTP POST of a
// <body/>, answered with the parsed response body. It chooses rids itself, so tests can repeat them,
// skip ahead or send them out of order.
import { type Element, parseFrame } from '../../lib/xmpp/xml.ts';

export const NS_HTTPBIND = 'http://jabber.org/protocol/httpbind';
export const NS_XBOSH = 'urn:xmpp:xbosh';

export interface BoshReply {
  status: number;
  headers: Headers;
  text: string;
  /** The parsed response (an empty <none/> when it is not XML, e.g. a 503). */
  body: Element;
}

export async function postBody(url: string, text: string, headers: Record<string, string> = {}): Promise<BoshReply> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'text/xml; charset=utf-8', ...headers }, body: text });
  const body = await res.text();
  let parsed: Element;
  try {
    parsed = parseFrame(body);
  } catch {
    parsed = parseFrame('<none/>');
  }
  return { status: res.status, headers: res.headers, text: body, body: parsed };
}

const attrsOf = (attrs: Record<string, string | number | undefined>) =>
  Object.entries(attrs)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => ` ${k}="${String(v).replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;')}"`)
    .join('');

export class RawBosh {
  sid = '';
  rid = Math.floor(Math.random() * 1e9) + 1000;
  /** The response to the session request. */
  created?: Element;

  constructor(readonly url: string) {}

  /** §7.1: the session request; `attrs` override the defaults. */
  async create(attrs: Record<string, string | number | undefined> = {}): Promise<BoshReply> {
    const rid = this.rid++;
    const reply = await postBody(
      this.url,
      `<body xmlns="${NS_HTTPBIND}" xmlns:xmpp="${NS_XBOSH}"${attrsOf({ content: 'text/xml; charset=utf-8', hold: 1, rid, to: 'localhost', ver: '1.6', wait: 10, 'xml:lang': 'en', 'xmpp:version': '1.0', ...attrs })}/>`,
    );
    this.sid = (reply.body.attrs.sid as string) ?? '';
    this.created = reply.body;
    return reply;
  }

  /** One request of the session with the next rid (or `attrs.rid`), carrying `payload`. */
  send(payload = '', attrs: Record<string, string | number | undefined> = {}): Promise<BoshReply> {
    const rid = attrs.rid ?? this.rid++;
    const all = { rid, sid: this.sid, ...attrs };
    return postBody(this.url, `<body xmlns="${NS_HTTPBIND}" xmlns:xmpp="${NS_XBOSH}"${attrsOf(all)}${payload ? `>${payload}</body>` : '/>'}`);
  }

  /** Session creation, SASL PLAIN, restart and binding; returns the bound JID. */
  async login(username: string, password = 'secret', resource = 'bosh', attrs: Record<string, string | number | undefined> = {}): Promise<string> {
    await this.create(attrs);
    const plain = Buffer.from(`\0${username}\0${password}`).toString('base64');
    const auth = await this.send(`<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="PLAIN">${plain}</auth>`);
    if (!auth.body.getChild('success')) throw new Error(`login failed: ${auth.text}`);
    await this.send('', { 'xmpp:restart': 'true' });
    const bind = await this.send(`<iq xmlns="jabber:client" type="set" id="bind1"><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"><resource>${resource}</resource></bind></iq>`);
    const jid = bind.body.getChild('iq')?.getChild('bind')?.getChildText('jid');
    if (!jid) throw new Error(`bind failed: ${bind.text}`);
    return jid;
  }

  /** Child elements of a response body. */
  static children(reply: BoshReply): Element[] {
    return reply.body.children.filter((c): c is Element => typeof c !== 'string');
  }
}
