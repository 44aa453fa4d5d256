// Helpers for the MUC tests (XEP-0045): joining, reading status codes and items, room creation.
import { client } from '@xmpp/client';
import { type Element, TestClient, WAIT_MS, xml } from './harness.ts';

export const MUC = 'http://jabber.org/protocol/muc';
export const MUC_USER = 'http://jabber.org/protocol/muc#user';
export const MUC_ADMIN = 'http://jabber.org/protocol/muc#admin';
export const MUC_OWNER = 'http://jabber.org/protocol/muc#owner';
export const DATA = 'jabber:x:data';
export const STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas';

export const mucX = (el: Element) => el.getChild('x', MUC_USER);
/** Status codes of a MUC presence or message, as numbers in document order. */
export const codes = (el: Element) => (mucX(el)?.getChildren('status') ?? []).map((s) => Number(s.attrs.code));
export const item = (el: Element) => mucX(el)?.getChild('item')?.attrs ?? {};
export const errorCondition = (el: Element) =>
  (el.getChild('error')?.children.find((c) => typeof c !== 'string' && (c as Element).attrs.xmlns === STANZAS) as Element | undefined)?.name;

export const presenceFrom = (from: string, type?: string) => (el: Element) => el.name === 'presence' && el.attrs.from === from && el.attrs.type === type;
export const selfPresence = (from: string, type?: string) => (el: Element) => presenceFrom(from, type)(el) && codes(el).includes(110);

export function joinPresence(occupantJid: string, opts: { password?: string; history?: Record<string, string>; id?: string } = {}): Element {
  const x = xml('x', { xmlns: MUC });
  if (opts.password !== undefined) x.c('password').t(opts.password);
  if (opts.history) x.c('history', opts.history);
  return xml('presence', { to: occupantJid, ...(opts.id ? { id: opts.id } : {}) }, x);
}

/** Sends a join and resolves with the self-presence (or the error presence). */
export async function join(c: TestClient, occupantJid: string, opts: Parameters<typeof joinPresence>[1] = {}): Promise<Element> {
  await c.send(joinPresence(occupantJid, opts));
  return c.waitFor((el) => el.name === 'presence' && el.attrs.from === occupantJid && (el.attrs.type === 'error' || codes(el).includes(110)), WAIT_MS, `join ${occupantJid}`);
}

/** Joins and waits for the subject, the last stanza of a join (XEP-0045 §7.1). */
export async function enter(c: TestClient, occupantJid: string, opts: Parameters<typeof joinPresence>[1] = {}): Promise<Element> {
  const self = await join(c, occupantJid, opts);
  if (self.attrs.type === 'error') throw new Error(`join failed: ${self.toString()}`);
  const room = occupantJid.split('/')[0];
  await c.waitFor((el) => el.name === 'message' && el.attrs.from?.startsWith(room) && !!el.getChild('subject') && !el.getChild('body'), WAIT_MS, 'subject');
  return self;
}

/** Creates an instant room (XEP-0045 §10.1.2) owned by `c` and returns its self-presence. */
export async function createInstant(c: TestClient, occupantJid: string, config?: Record<string, string | string[]>): Promise<Element> {
  const self = await enter(c, occupantJid);
  const room = occupantJid.split('/')[0];
  await configure(c, room, config ?? {});
  return self;
}

export function configForm(values: Record<string, string | string[]>): Element {
  const x = xml('x', { xmlns: DATA, type: 'submit' });
  if (Object.keys(values).length) x.c('field', { var: 'FORM_TYPE' }).c('value').t('http://jabber.org/protocol/muc#roomconfig');
  for (const [k, v] of Object.entries(values)) {
    const f = x.c('field', { var: k });
    for (const one of Array.isArray(v) ? v : [v]) f.c('value').t(one);
  }
  return x;
}

export async function configure(c: TestClient, room: string, values: Record<string, string | string[]>): Promise<Element> {
  return c.iq(xml('iq', { type: 'set', to: room }, xml('query', { xmlns: MUC_OWNER }, configForm(values))));
}

export function adminSet(room: string, ...items: Element[]): Element {
  return xml('iq', { type: 'set', to: room }, xml('query', { xmlns: MUC_ADMIN }, ...items));
}

/**
 * connectClient of the harness, with one COMPAT guard: xmpp.js 0.14 throws (an uncaught TypeError in
 * Connection._onData) when a frame arrives after its stream closed. The core leaves the rooms before
 * it answers <close/>, but a fan-out that read the room item just before the leave can still land
 * after it, so many clients leaving at once could crash the test process.
 */
export async function connectMucClient(url: string, opts: { username: string; password: string; domain?: string; resource?: string }): Promise<TestClient> {
  const xmpp = client({ service: url, domain: opts.domain ?? 'localhost', resource: opts.resource, username: opts.username, password: opts.password });
  xmpp.reconnect.stop();
  const conn = xmpp as unknown as { _onData(data: unknown): void; parser: unknown };
  const onData = conn._onData;
  conn._onData = function (this: typeof conn, data: unknown) {
    if (this.parser) onData.call(this, data);
  };
  const c = new TestClient(xmpp);
  await xmpp.start();
  c.jid = xmpp.jid!.toString();
  return c;
}
