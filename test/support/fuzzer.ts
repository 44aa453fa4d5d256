// A bounded random fuzzer over a real RFC 7395 session: valid frames of a logged-in client, mutated
// (characters and markup inserted, cut, repeated, addresses replaced, elements nested), sent in small
// batches. It checks what the issue asks of hostile input (README "Hostile input, faults and abuse"):
// - no stanza is lost silently: every message or IQ the server could read is delivered, stored
//   offline or answered, unless the stream itself was ended with an error;
// - the server keeps serving a control client;
// (the caller checks the third: no error in the server's log). A seed makes a run repeatable: CI runs
// a fixed one (test/integration/hostile-fuzz.test.ts), `npm run fuzz` a longer one by hand.
import { type Element, parseFrame } from '../../lib/xmpp/xml.ts';
import { RawClient, type TestClient } from './harness.ts';

/** mulberry32: a small, well-mixed 32-bit PRNG; enough to replay a run from its seed. */
export function randomFrom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface FuzzTargets {
  url: string;
  /** The fuzzing account (password "secret"); it logs in again whenever a stream error ends it. */
  sender: string;
  /** An online, available recipient whose full JID is `${recipient.jid}`. */
  recipient: TestClient;
  /** Any other logged-in client: must be served throughout. */
  control: TestClient;
  /** What the server stored offline for a bare JID (ids of stored stanzas). */
  offlineIds(bare: string): Promise<string[]>;
}

export interface FuzzReport {
  frames: number;
  /** Frames the server could read as a message or IQ, and whose fate was checked. */
  accounted: number;
  /** Batches ended by a stream error or a WebSocket close (then the sender logged in again). */
  streamsEnded: number;
  /** Readable stanzas that were neither delivered, stored nor answered: must be empty. */
  lost: string[];
}

const HOSTILE_TOKENS = [
  '<', '>', '&', '"', "'", '\u0000', ']]>', '<!--', '-->', '&amp;', '&#0;', '&#x1F600;', '<x>', '</x>', '<x/>', '\uFFFF',
  '\uD800', '\u202E', '=', ' xmlns="jabber:server"', ' xmlns=""', ' to="bad@@jid"', ' type="error"', ' id=""', '<?pi?>',
  '<!DOCTYPE x>', '&lt;', 'a'.repeat(500), '<body>', '</body>', '\r\n', '\t', ' ', 'é', '\u0301',
];

export class Fuzzer {
  private readonly random: () => number;
  private raw?: RawClient;
  private batchNo = 0;
  readonly report: FuzzReport = { frames: 0, accounted: 0, streamsEnded: 0, lost: [] };

  constructor(private readonly t: FuzzTargets, seed: number) {
    this.random = randomFrom(seed);
  }

  /** Sends `frames` fuzzed frames in batches of `batchSize`, checking each batch. */
  async run(frames: number, batchSize = 5): Promise<FuzzReport> {
    while (this.report.frames < frames) {
      await this.batch(Math.min(batchSize, frames - this.report.frames));
      if (this.batchNo % 10 === 0) await this.t.control.roundTrip();
    }
    await this.t.control.roundTrip();
    this.raw?.ws.close();
    return this.report;
  }

  private pick<T>(list: readonly T[]): T {
    return list[Math.floor(this.random() * list.length)];
  }

  private int(max: number): number {
    return Math.floor(this.random() * max);
  }

  private async session(): Promise<RawClient> {
    if (this.raw && this.raw.ws.readyState === this.raw.ws.OPEN) return this.raw;
    this.raw = await RawClient.connect(this.t.url);
    await this.raw.login(this.t.sender, 'secret', 'fuzz');
    return this.raw;
  }

  /** One valid frame, as a client in a session would send it. */
  private template(id: string): string {
    const bob = this.t.recipient.jid;
    const bare = bob.split('/')[0];
    const me = `${this.t.sender}@localhost`;
    const body = `<body>fuzz ${id}</body>`;
    return this.pick([
      `<message xmlns="jabber:client" type="chat" id="${id}" to="${bare}">${body}</message>`,
      `<message xmlns="jabber:client" id="${id}" to="${bob}">${body}<thread>t1</thread></message>`,
      `<message xmlns="jabber:client" type="chat" id="${id}" to="${bare}/absent">${body}</message>`,
      `<message xmlns="jabber:client" type="chat" id="${id}" to="${me}">${body}</message>`,
      `<message xmlns="jabber:client" type="headline" id="${id}" to="${bare}">${body}<x xmlns="jabber:x:oob"><url>http://x</url></x></message>`,
      `<iq xmlns="jabber:client" type="get" id="${id}" to="localhost"><ping xmlns="urn:xmpp:ping"/></iq>`,
      `<iq xmlns="jabber:client" type="get" id="${id}"><query xmlns="jabber:iq:roster"/></iq>`,
      `<iq xmlns="jabber:client" type="get" id="${id}" to="localhost"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`,
      `<iq xmlns="jabber:client" type="get" id="${id}" to="${bob}"><ping xmlns="urn:xmpp:ping"/></iq>`,
      `<iq xmlns="jabber:client" type="set" id="${id}"><query xmlns="jabber:iq:private"><x xmlns="urn:example"/></query></iq>`,
      `<presence xmlns="jabber:client" id="${id}"><show>away</show><status>fuzz</status></presence>`,
      `<presence xmlns="jabber:client" id="${id}" to="${bare}" type="subscribe"/>`,
    ]);
  }

  /**
   * Mostly mutations that keep the frame readable XML (other addresses, types, nesting within the
   * limit, odd but legal text and children), so most batches reach the router; now and then one that
   * breaks the XML or the limits, which must end the stream with the right error.
   */
  private mutate(frame: string): string {
    if (this.random() < 0.15) return frame;
    const rounds = 1 + this.int(3);
    for (let i = 0; i < rounds; i++) frame = this.readableMutation(frame);
    return this.random() < 0.08 ? this.breakingMutation(frame) : frame;
  }

  private readableMutation(frame: string): string {
    switch (this.int(6)) {
      case 0: {
        const jid = this.pick(['bob@localhost/other', 'nobody@localhost', 'x@elsewhere.example', '@localhost', 'a@b@c', 'localhost', '', `${'l'.repeat(1100)}@localhost`, 'conference.localhost', 'BOB@LOCALHOST', 'bob@localhost/\u00e9']);
        return frame.replace(/ to="[^"]*"/, ` to="${jid}"`);
      }
      case 1:
        return frame.replace(/ type="[^"]*"/, ` type="${this.pick(['get', 'set', 'result', 'error', 'groupchat', 'normal', 'bogus', 'unavailable', 'probe', ''])}"`);
      case 2: {
        const depth = this.pick([1, 3, 30, 62]);
        return frame.replace(/<\/(message|iq|presence)>$/, `${'<n xmlns="urn:n">'.repeat(depth)}${'</n>'.repeat(depth)}</$1>`);
      }
      case 3: {
        const text = this.pick(['&amp;', '&lt;x&gt;', '&#x1F600;', '\u00e9', '\u202E', 'a'.repeat(500), ' ', '\t', '\r\n', ']]&gt;', '&quot;&apos;']);
        return frame.replace('<body>', `<body>${text}`);
      }
      case 4: {
        const child = this.pick(['<x xmlns="urn:fuzz"/>', '<delay xmlns="urn:xmpp:delay" stamp="1970-01-01T00:00:00Z"/>', '<error type="cancel"/>', '<body/>', '<query xmlns="jabber:iq:roster"/>', '<subject>s</subject>']);
        return frame.replace(/<\/(message|iq|presence)>$/, `${child}</$1>`);
      }
      default: {
        const attr = this.pick([' xml:lang="zz"', ' from="victim@localhost/x"', ' from="localhost"', ' extra="1"']);
        return frame.replace(/^<(message|iq|presence)/, `<$1${attr}`);
      }
    }
  }

  private breakingMutation(frame: string): string {
    const at = this.int(frame.length + 1);
    switch (this.int(5)) {
      case 0:
        return frame.slice(0, at) + this.pick(HOSTILE_TOKENS) + frame.slice(at);
      case 1:
        return frame.slice(0, at) + frame.slice(at + 1 + this.int(12));
      case 2: {
        const len = 1 + this.int(40);
        return frame.slice(0, at) + frame.slice(at, at + len).repeat(2 + this.int(3)) + frame.slice(at + len);
      }
      case 3:
        return frame.slice(0, at);
      default: {
        const depth = this.pick([64, 65, 200, 3000]);
        return frame.replace(/<\/(message|iq|presence)>$/, `${'<n>'.repeat(depth)}${'</n>'.repeat(depth)}</$1>`);
      }
    }
  }

  private async batch(size: number): Promise<void> {
    const raw = await this.session();
    const batch = ++this.batchNo;
    if (process.env.FUZZ_TRACE) console.error('batch', batch);
    const sent: { id: string; text: string; stanza?: Element }[] = [];
    const firstFrame = raw.frames.length;
    for (let i = 0; i < size; i++) {
      const id = `fz-${batch}-${i}-z`;
      const text = this.mutate(this.template(id));
      let stanza: Element | undefined;
      try {
        stanza = parseFrame(text);
      } catch {
        // Unreadable: the server must end the stream, which the batch's end checks.
      }
      sent.push({ id, text, stanza });
      if (process.env.FUZZ_TRACE) console.error(JSON.stringify(text.slice(0, 400)));
      raw.send(text);
      this.report.frames++;
    }
    // A ping after the batch: its answer means the server processed everything before it.
    const pingId = `fz-ping-${batch}`;
    raw.send(`<iq xmlns="jabber:client" type="get" id="${pingId}" to="localhost"><ping xmlns="urn:xmpp:ping"/></iq>`);
    if (process.env.FUZZ_TRACE) raw.ws.on('message', (d) => console.error('<<', d.toString().slice(0, 300)));
    const alive = await Promise.race([
      raw.next((el) => el.attrs.id === pingId).then(() => true, () => false),
      raw.closed.then(() => false),
    ]);
    if (!alive && raw.ws.readyState === raw.ws.OPEN) {
      // Neither an answer nor an end: the server lost the batch (a frame that failed and took the
      // frames behind it along, or a hang).
      this.report.lost.push(`batch ${batch}: no answer to the ping and no stream error: ${sent.map((f) => f.text.slice(0, 200)).join(' | ')}`);
      raw.ws.terminate();
      await raw.closed;
      return;
    }
    if (!alive) {
      // A stream error (or a WebSocket close) answered the batch: RFC 6120 §4.9 ends the stream, and
      // what followed the bad frame was not processed, by design. The stream error must have been sent.
      this.report.streamsEnded++;
      await raw.closed;
      const said = raw.frames.slice(firstFrame).some((f) => f.includes('stream:error') || f.includes('<close'));
      const code = (await raw.closed).code;
      if (!said && code !== 1003 && code !== 1007 && code !== 1009) this.report.lost.push(`batch ${batch}: closed with ${code} and no stream error`);
      return;
    }
    // Replies from the recipient (IQs to it) come back through its own connection: a round trip on
    // it, then one more on the sender, flushes them.
    await this.t.recipient.roundTrip();
    await this.pingAgain(raw, batch);
    const stored = await this.t.offlineIds(this.t.recipient.jid.split('/')[0]);
    const storedForMe = await this.t.offlineIds(`${this.t.sender}@localhost`);
    for (const { id, text, stanza } of sent) {
      if (!stanza || stanza.attrs.id !== id || !mustBeAccounted(stanza)) continue;
      this.report.accounted++;
      const seen =
        this.t.recipient.received.some((el) => el.attrs.id === id) ||
        raw.frames.slice(firstFrame).some((f) => f.includes(`"${id}"`) || f.includes(`'${id}'`)) ||
        stored.includes(id) ||
        storedForMe.includes(id);
      if (!seen) this.report.lost.push(`batch ${batch}: ${text.slice(0, 300)}`);
    }
    // Keep the recipient's buffer small: what was checked is done with.
    this.t.recipient.received.splice(0);
  }

  private async pingAgain(raw: RawClient, batch: number): Promise<void> {
    const id = `fz-ping2-${batch}`;
    raw.send(`<iq xmlns="jabber:client" type="get" id="${id}" to="localhost"><ping xmlns="urn:xmpp:ping"/></iq>`);
    await raw.next((el) => el.attrs.id === id);
  }
}

/**
 * A stanza the server must deliver, store or answer. Not: errors (never answered, RFC 6120 §8.3.1),
 * IQ results, headlines and groupchat (RFC 6121 §8.5.2 lets a server drop them when no resource
 * can take them), presence (broadcast, answered by nothing), and what is not in jabber:client.
 */
function mustBeAccounted(stanza: Element): boolean {
  const ns = stanza.attrs.xmlns;
  if (ns !== undefined && ns !== 'jabber:client') return false;
  const type = stanza.attrs.type;
  if (stanza.name === 'message') return type !== 'error' && type !== 'headline' && type !== 'groupchat';
  if (stanza.name === 'iq') return type === 'get' || type === 'set';
  return false;
}
