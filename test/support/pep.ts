// Helpers for the PEP tests (XEP-0163): a client that answers the server's XEP-0115 caps query with
// `<node>+notify` features, mutual subscriptions written into the rosters, publish requests.
import { capsHash } from '../../lib/extensions/caps/hash.ts';
import { type Element, type TestClient, type TestServer, connectClient, xml } from './harness.ts';

export const PUBSUB = 'http://jabber.org/protocol/pubsub';
export const PUBSUB_EVENT = `${PUBSUB}#event`;
export const DISCO_INFO = 'http://jabber.org/protocol/disco#info';
export const CAPS = 'http://jabber.org/protocol/caps';

/** A client's disco#info (XEP-0115 §6.2) with `<node>+notify` for each node it wants. */
export const clientDiscoInfo = (notify: string[], node?: string) =>
  xml('query', { xmlns: DISCO_INFO, ...(node ? { node } : {}) }, xml('identity', { category: 'client', type: 'web', name: 'pep test' }), ...[DISCO_INFO, CAPS, ...notify.map((x) => `${x}+notify`)].map((v) => xml('feature', { var: v })));

/** Logs in, answers the server's caps query, sends presence with caps and waits until the server knows them. */
export async function onlineWithCaps(s: TestServer, username: string, resource: string, notify: string[], domain?: string): Promise<TestClient> {
  const c = await connectClient(s.url, { username, resource, domain });
  let asked = false;
  (c.xmpp as unknown as { iqCallee: { get(ns: string, name: string, fn: (ctx: { element: Element }) => Element): void } }).iqCallee.get(DISCO_INFO, 'query', (ctx) => {
    asked = true;
    return clientDiscoInfo(notify, ctx.element.attrs.node as string);
  });
  await c.send(xml('presence', {}, xml('c', { xmlns: CAPS, hash: 'sha-1', node: 'https://xmpp-edge.test', ver: capsHash(clientDiscoInfo(notify))! })));
  await c.waitFor((el) => el.name === 'presence' && el.attrs.from === c.jid);
  // The answer to the server's query went out before this ping; one stream is handled in order.
  if (asked) await c.roundTrip();
  return c;
}

export { mutualSubscription } from './roster.ts';

/** A publish of one item (XEP-0060 §7.1), with XEP-0223 publish-options if given. */
export const publishIq = (node: string, id: string, payload: Element, options?: Record<string, string>) =>
  xml(
    'iq',
    { type: 'set' },
    xml(
      'pubsub',
      { xmlns: PUBSUB },
      xml('publish', { node }, xml('item', { id }, payload)),
      ...(options
        ? [xml('publish-options', {}, xml('x', { xmlns: 'jabber:x:data', type: 'submit' }, xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', {}, `${PUBSUB}#publish-options`)), ...Object.entries(options).map(([k, v]) => xml('field', { var: k }, xml('value', {}, v)))))]
        : []),
    ),
  );

/** A retrieval of a node's items at `to` (XEP-0060 §6.5), all or by id. */
export const itemsIq = (node: string, to?: string, ...ids: string[]) => xml('iq', { type: 'get', ...(to ? { to } : {}) }, xml('pubsub', { xmlns: PUBSUB }, xml('items', { node }, ...ids.map((id) => xml('item', { id })))));

/** A notification from `from` about `node` (XEP-0163 §4.3.1) whose <items/> satisfies `pred`. */
export const pepEvent = (from: string, node: string, pred: (items: Element) => boolean = () => true) => (el: Element) => {
  const items = el.name === 'message' && el.attrs.from === from ? el.getChild('event', PUBSUB_EVENT)?.getChild('items') : undefined;
  return items?.attrs.node === node && pred(items);
};
