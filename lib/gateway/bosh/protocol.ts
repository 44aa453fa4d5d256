// XEP-0124 (BOSH) and XEP-0206 (XMPP over BOSH), the pure parts: reading a request's <body/>, the
// session's granted attributes, the rid window, key sequencing, and turning the frames the core posts
// (RFC 7395 framing: <open/>, <close/>, stanzas, <stream:error/>) into a response <body/>.
// docs/architecture.md "BOSH".
import { createHash, randomBytes } from 'node:crypto';
import type { SessionGrant } from '../../store/bosh-sessions.ts';
import { NS } from '../../xmpp/namespaces.ts';
import { type Element, parseFrame, xml } from '../../xmpp/xml.ts';

export const NS_HTTPBIND = 'http://jabber.org/protocol/httpbind';
export const NS_XBOSH = 'urn:xmpp:xbosh';
/** The highest XEP-0124 version implemented. */
export const BOSH_VERSION = '1.11';
export const DEFAULT_CONTENT = 'text/xml; charset=utf-8';

/** XEP-0124 §17.2 terminal binding conditions. */
export type TerminalCondition =
  | 'bad-request'
  | 'host-gone'
  | 'host-unknown'
  | 'improper-addressing'
  | 'internal-server-error'
  | 'item-not-found'
  | 'other-request'
  | 'policy-violation'
  | 'remote-connection-failed'
  | 'remote-stream-error'
  | 'see-other-uri'
  | 'system-shutdown'
  | 'undefined-condition';

/** What the server grants a session; the transport's configuration. */
export interface BoshLimits {
  /** The longest `wait` granted, seconds (25 behind an API Gateway HTTP API, whose requests live 30 s). */
  maxWait: number;
  /** The most requests held at once (§7.1 `hold`). */
  maxHold: number;
  /** Seconds without a request pending after which the session ends (§7.1 `inactivity`). */
  inactivity: number;
  /** The shortest interval between empty requests a client should keep (§7.1 `polling`), seconds. */
  polling: number;
  /** The longest pause a client may ask for (§10 `maxpause`), seconds. */
  maxpause: number;
  /** Largest request body accepted, bytes. */
  maxBodyBytes: number;
}

export const DEFAULT_BOSH_LIMITS: BoshLimits = {
  maxWait: 60,
  maxHold: 1,
  inactivity: 60,
  polling: 2,
  maxpause: 120,
  maxBodyBytes: 128 * 1024,
};

/** A protocol error answered with a terminate body (§17.2), with the HTTP status to send it with. */
export class BoshError extends Error {
  constructor(
    readonly condition: TerminalCondition,
    message: string,
    readonly status = 200,
  ) {
    super(message);
    this.name = 'BoshError';
  }
}

/** The request's <body/>, parsed and checked (§7, §9). Throws BoshError(bad-request). */
export function parseRequestBody(text: string): Element {
  let el: Element;
  try {
    // An XML declaration is allowed in front of a BOSH body (it is an HTTP entity, not a stream).
    el = parseFrame(text.replace(/^\s*<\?xml[^>]*\?>/, '').trim());
  } catch (err) {
    throw new BoshError('bad-request', `not well-formed XML: ${(err as Error).message}`, 400);
  }
  if (el.name !== 'body' || el.attrs.xmlns !== NS_HTTPBIND) throw new BoshError('bad-request', `the root must be <body xmlns='${NS_HTTPBIND}'/>`, 400);
  return el;
}

/** §14.1: a rid is a positive integer up to 2^53 - 1. */
export function ridOf(body: Element): number {
  const raw = body.attrs.rid;
  const rid = typeof raw === 'string' && /^\d{1,16}$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(rid) || rid < 0) throw new BoshError('bad-request', 'rid must be a non-negative integer', 400);
  return rid;
}

/** An optional non-negative integer attribute; BoshError(bad-request) if present and not one. */
export function intAttr(body: Element, name: string): number | undefined {
  const raw = body.attrs[name];
  if (raw === undefined) return undefined;
  if (typeof raw !== 'string' || !/^\d{1,9}$/.test(raw)) throw new BoshError('bad-request', `${name} must be a non-negative integer`, 400);
  return Number(raw);
}

/** `ver` as [major, minor]; absent means 1.0 (§7.1: clients that omit it predate the attribute). */
export function versionOf(raw: unknown): [number, number] {
  const m = typeof raw === 'string' ? /^(\d+)\.(\d+)$/.exec(raw) : null;
  return m ? [Number(m[1]), Number(m[2])] : [1, 0];
}

/** §7.1: the version the server uses is the lower of the client's and its own. */
export function grantedVersion(raw: unknown): string {
  const [major, minor] = versionOf(raw);
  const [ourMajor, ourMinor] = versionOf(BOSH_VERSION);
  return major > ourMajor || (major === ourMajor && minor >= ourMinor) ? BOSH_VERSION : `${major}.${minor}`;
}


/** §7.1: what the server grants for a session creation request. Throws BoshError. */
export function grantSession(body: Element, limits: BoshLimits): SessionGrant {
  const wait = intAttr(body, 'wait');
  const hold = intAttr(body, 'hold');
  if (wait === undefined) throw new BoshError('bad-request', 'the session request needs wait', 400);
  if (hold === undefined) throw new BoshError('bad-request', 'the session request needs hold', 400);
  const grantedHold = Math.min(hold, limits.maxHold);
  const content = typeof body.attrs.content === 'string' && /^(text|application)\/xml\b/i.test(body.attrs.content) ? body.attrs.content : DEFAULT_CONTENT;
  return {
    wait: Math.min(wait, limits.maxWait),
    hold: grantedHold,
    // §7.1: "requests" SHOULD be hold + 1.
    requests: grantedHold + 1,
    inactivity: limits.inactivity,
    polling: limits.polling,
    maxpause: limits.maxpause,
    ver: grantedVersion(body.attrs.ver),
    content,
    // §9.1: a client that wants acknowledgements says ack='1' in its session request.
    ack: body.attrs.ack === '1',
  };
}

/** Where a rid falls relative to the last one processed in order (§14.1, §14.3). */
export type RidPlace = 'next' | 'ahead' | 'repeat' | 'outside';

export function placeOfRid(rid: number, lastRid: number, requests: number): RidPlace {
  if (rid === lastRid + 1) return 'next';
  if (rid > lastRid + 1 && rid <= lastRid + requests) return 'ahead';
  // §14.3: a repeated rid still within the window of responses kept.
  if (rid <= lastRid && rid > lastRid - requests) return 'repeat';
  return 'outside';
}

/** What the activity checks (§11, §12) read from the session's item. */
export interface ActivityState {
  lastRid: number;
  hold: number;
  requests: number;
  wait: number;
  polling: number;
  /** Server time (ms) each request of the window arrived, by rid. */
  arrivals?: Record<string, number>;
  /** Whether the request lastRid carried nothing (no payload, no restart, no pause, no terminate). */
  lastEmpty?: boolean;
  rsp?: Record<string, string[]>;
  q?: string[];
  pauseRid?: number;
}

/** A request that carries nothing: no payload, no restart, no pause, no terminate (§11, §12 "empty"). */
export function isEmptyRequest(body: Element): boolean {
  return !body.children.some((c) => typeof c !== 'string') && body.attrs['xmpp:restart'] !== 'true' && body.attrs.pause === undefined && body.attrs.type !== 'terminate';
}

/** §11: a pause or a terminate may be the one request more than `requests`. */
const exempt = (body: Element) => body.attrs.pause !== undefined || body.attrs.type === 'terminate';

/** §12: the client asked not to be waited for (wait or hold 0): it polls. */
export const isPollingSession = (s: ActivityState) => s.hold === 0 || s.wait === 0;

/**
 * Whether the request `rid`, already processed or still to come, has had its response at `now`, as
 * far as the item tells: not yet processed (in flight, or waiting its turn): no; released by the
 * requests after it (§8 `hold`), answered with payloads (kept in rsp), by a pause (§10), or because
 * `wait` ran out: yes; frames queued: being answered.
 */
export function answered(s: ActivityState, rid: number, now: number): boolean {
  if (rid > s.lastRid) return false;
  if (isPollingSession(s)) return true;
  if (s.lastRid - rid >= s.hold) return true;
  if (s.rsp?.[String(rid)]?.length || (s.pauseRid ?? -1) >= rid || s.q?.length) return true;
  const at = s.arrivals?.[String(rid)];
  // No arrival recorded: the session creation request, answered at once.
  return at === undefined || now >= at + s.wait * 1000;
}

/**
 * §11 "too many simultaneous requests": when `rid` arrives, the `requests` requests before it have
 * all had no response yet (the client keeps requests + 1 open), and it is neither a pause nor a
 * terminate. Checked when the request arrives, before it waits for its turn.
 */
export function tooManyRequests(s: ActivityState, body: Element, rid: number, now: number): boolean {
  if (exempt(body)) return false;
  for (let k = rid - s.requests; k < rid; k++) if (answered(s, k, now)) return false;
  return true;
}

/**
 * §11 "too frequent requests" (a session that is not polling): `rid` is empty, it and the
 * `requests - 1` requests before it have all had no response, and it arrived (at `arrivedAt`) within
 * `polling` seconds of the one before it. §12 (a polling session): two consecutive empty requests
 * within `polling` seconds, the response to the first without payloads. Checked on the request's
 * turn (s.lastRid = rid - 1), `arrivedAt` being when it arrived.
 */
export function tooFrequent(s: ActivityState, body: Element, rid: number, arrivedAt: number): boolean {
  if (s.polling <= 0 || !isEmptyRequest(body)) return false;
  const before = s.arrivals?.[String(rid - 1)];
  if (before === undefined || Math.abs(arrivedAt - before) >= s.polling * 1000) return false;
  if (isPollingSession(s)) return s.lastEmpty === true && !s.rsp?.[String(rid - 1)]?.length;
  for (let k = rid - s.requests + 1; k < rid; k++) if (answered(s, k, arrivedAt)) return false;
  return true;
}

/**
 * §9.2: a request of a session using acknowledgements whose `ack` says the client has not had the
 * response to ack + 1, which was sent (with payloads) before this request came: answered at once with
 * `report` (ack + 1) and `time` (ms since that response was sent), so that the client may send that
 * request again (§14.3). `sentAt` gives when a response was sent, if it was and is still kept.
 */
export function reportOf(body: Element, rid: number, sentAt: (rid: number) => number | undefined, now: number): { report: number; time: number } | undefined {
  const ack = intAttrOrUndefined(body, 'ack');
  if (ack === undefined || ack + 1 >= rid) return undefined;
  const sent = sentAt(ack + 1);
  return sent === undefined ? undefined : { report: ack + 1, time: Math.max(0, now - sent) };
}

function intAttrOrUndefined(body: Element, name: string): number | undefined {
  const raw = body.attrs[name];
  return typeof raw === 'string' && /^\d{1,16}$/.test(raw) ? Number(raw) : undefined;
}

/** §15: the hex SHA-1 of a key, as compared with the previous request's. */
export const sha1Hex = (key: string) => createHash('sha1').update(key, 'utf8').digest('hex');

/**
 * §15.3: the key the next request must hash to, or a BoshError(item-not-found) if the request's key
 * does not match. `expected` is what the session holds; undefined when the client does not use keys.
 */
export function nextKey(expected: string | undefined, body: Element): string | undefined {
  const { key, newkey } = body.attrs as Record<string, string | undefined>;
  if (expected === undefined) return undefined;
  // §15.2: case is not significant in hexadecimal, comparisons are case insensitive.
  if (typeof key !== 'string' || sha1Hex(key) !== expected.toLowerCase()) throw new BoshError('item-not-found', 'invalid key');
  // §15.4: when its keys run out the client sends a new one along with the last.
  return typeof newkey === 'string' ? newkey : key;
}

/**
 * §15: a repeated request carries the key its first copy carried. The session holds the last
 * request's key, and each key is the SHA-1 of the next one's, so the key of the request `steps`
 * before the last is the held key hashed `steps` times. True when the client uses no keys.
 */
export function repeatKeyValid(expected: string | undefined, body: Element, steps: number): boolean {
  if (expected === undefined) return true;
  // §15.4: the last request switched to a new key sequence; the session holds its newkey.
  if (steps === 0 && typeof body.attrs.newkey === 'string' && body.attrs.newkey.toLowerCase() === expected.toLowerCase()) return true;
  let key = expected;
  for (let i = 0; i < steps; i++) key = sha1Hex(key);
  return typeof body.attrs.key === 'string' && body.attrs.key.toLowerCase() === key.toLowerCase();
}

/**
 * §15: the key of a request `steps` rids after the last processed one hashes, `steps` times, to the
 * key the session holds (unless a request in between switches sequences: then it cannot be told
 * yet, and this is false). True when the client uses no keys.
 */
export function aheadKeyValid(expected: string | undefined, body: Element, steps: number): boolean {
  if (expected === undefined) return true;
  if (typeof body.attrs.key !== 'string') return false;
  let key = body.attrs.key;
  for (let i = 0; i < steps; i++) key = sha1Hex(key);
  return key === expected.toLowerCase();
}

/** A new sid: 144 random bits (§7.1: unique and unpredictable). */
export const newSid = () => randomBytes(18).toString('base64url');

/**
 * The connection id the core knows the session by: derived from the sid, so logs and session entries
 * (which name connection ids) never show the sid, which with a rid is all it takes to use a session.
 */
export const connectionIdOfSid = (sid: string) => `bosh-${createHash('sha256').update(sid).digest('base64url').slice(0, 22)}`;

/** The frames a request hands the core (RFC 7395 framing), in order. */
export function framesOf(body: Element, domain: string, sessionLang?: string): string[] {
  const frames: string[] = [];
  // XEP-0206 §5: the stream restart after SASL; in the language of the session request (XEP-0124
  // §7.1 `xml:lang`: the default for the whole session) unless the restart names one.
  if (body.attrs['xmpp:restart'] === 'true') frames.push(openFrame(domain, (body.attrs['xml:lang'] as string | undefined) ?? sessionLang));
  for (const child of body.children) {
    if (typeof child === 'string') continue;
    // XEP-0206 §7: stanzas are qualified by jabber:client, the body's default namespace is not theirs.
    if (child.attrs.xmlns === undefined && ['message', 'presence', 'iq'].includes(child.name)) child.attrs.xmlns = NS.CLIENT;
    frames.push(child.toString());
  }
  // §12: the client ends the session (its last stanzas come first).
  if (body.attrs.type === 'terminate') frames.push(xml('close', { xmlns: NS.FRAMING }).toString());
  return frames;
}

/** RFC 7395 §3.4: the stream's opening, as the core expects it. */
export function openFrame(domain: string, lang?: string): string {
  return xml('open', { xmlns: NS.FRAMING, to: domain, version: '1.0', ...(lang ? { 'xml:lang': lang } : {}) }).toString();
}

/** What a response carries, read from the frames the core posted. */
export interface Outgoing {
  /** Stanzas and stream-level elements (features, SASL) for the client, in order. */
  payload: string[];
  /** The stream header's id and from (XEP-0206 §4: authid and from of the session creation response). */
  streamId?: string;
  from?: string;
  /** The stream ended: the response is a terminate body (§12, XEP-0206 §4.3 for stream errors). */
  terminate?: { condition?: TerminalCondition };
}

export function readOutgoing(frames: readonly string[]): Outgoing {
  const out: Outgoing = { payload: [] };
  for (const frame of frames) {
    if (frame.startsWith('<open')) {
      const el = parseFrame(frame);
      out.streamId = el.attrs.id as string | undefined;
      out.from = el.attrs.from as string | undefined;
    } else if (frame.startsWith('<close')) {
      out.terminate ??= {};
    } else if (frame.startsWith('<stream:error')) {
      // XEP-0124 has host-unknown of its own; every other stream error is remote-stream-error with
      // the <stream:error/> inside the terminate body (XEP-0206 §4.3).
      const condition = /<host-unknown\b/.test(frame) ? 'host-unknown' : 'remote-stream-error';
      out.terminate = { condition };
      if (condition === 'remote-stream-error') out.payload.push(frame);
    } else out.payload.push(frame);
  }
  return out;
}

/** A response <body/> with the given attributes around `payload` (frames, already serialized). */
export function responseBody(attrs: Record<string, string | number | undefined>, payload: readonly string[] = []): string {
  const all: Record<string, string> = { xmlns: NS_HTTPBIND };
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined) all[k] = String(v);
  const open = xml('body', all).toString().replace(/\/>$/, '');
  return payload.length ? `${open}>${payload.join('')}</body>` : `${open}/>`;
}

/** §17.2: a terminate body. */
export function terminateBody(condition?: TerminalCondition, payload: readonly string[] = []): string {
  const streams = payload.some((f) => f.startsWith('<stream:')) ? { 'xmlns:stream': NS.STREAMS } : {};
  return responseBody({ type: 'terminate', condition, ...streams }, payload);
}
