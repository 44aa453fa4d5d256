// XEP-0114 over TCP on a laptop (README "Components"): unmodified components connect to
// 127.0.0.1:5347 as to any server. Each TCP stream becomes a connection of the local gateway
// (LocalGateway.attachStream) speaking the "xmpp-component" subprotocol: the stream header becomes an
// RFC 7395 <open/>, each top-level element one frame, </stream:stream> a <close/>; what the server
// posts to the connection is written back in the XEP-0114 form. So the handlers that serve components
// over WebSocket in AWS serve these too; this file only translates the framing.
import { EventEmitter } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { SaxesParser } from 'saxes';
import type { WebSocket } from 'ws';
import type { GatewayLogger, LocalGateway } from '../gateway/local-gateway.ts';
import { Element, parseFrame, xml } from '../xmpp/xml.ts';

const NS_COMPONENT = 'jabber:component:accept';
const NS_STREAMS = 'http://etherx.jabber.org/streams';
const NS_FRAMING = 'urn:ietf:params:xml:ns:xmpp-framing';
const SUBPROTOCOL = 'xmpp-component';
/** The largest element a component may send, in characters (the gateway's 128 KB message limit). */
const MAX_ELEMENT_CHARS = 128 * 1024;
const MAX_DEPTH = 64;

export interface ComponentListener {
  port: number;
  stop(): Promise<void>;
}

export async function startComponentListener(opts: { host?: string; port: number; gateway: LocalGateway; logger: GatewayLogger }): Promise<ComponentListener> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    new ComponentSocket(socket, opts.gateway, opts.logger);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  opts.logger.info({ port }, 'XEP-0114 component listener');
  return {
    port,
    async stop() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      await closed;
    },
  };
}

/** One component's TCP stream, seen by the gateway as a WebSocket (the part of ws it uses). */
class ComponentSocket extends EventEmitter {
  readonly OPEN = 1;
  readyState = 1;
  private headerSent = false;
  private attached: Promise<string | undefined> | undefined;

  constructor(
    private readonly socket: Socket,
    private readonly gateway: LocalGateway,
    private readonly log: GatewayLogger,
  ) {
    super();
    const parser = new SaxesParser({ xmlns: true, position: false });
    let cursor: Element | undefined;
    let depth = 0;
    let size = 0;
    const refuse = (condition: string, text: string) => this.streamError(condition, text);
    parser.on('opentag', (tag) => {
      const attrs: Record<string, string> = {};
      for (const a of Object.values(tag.attributes)) attrs[a.name] = a.value;
      if (depth === 0) {
        depth = 1;
        // XEP-0114 §3: <stream:stream xmlns='jabber:component:accept' to='component domain'>.
        if (tag.local !== 'stream' || tag.uri !== NS_STREAMS) return refuse('invalid-namespace', 'expected a stream header');
        if (tag.ns?.[''] !== NS_COMPONENT) return refuse('invalid-namespace', `the stream's namespace must be ${NS_COMPONENT}`);
        this.inbound(xml('open', { xmlns: NS_FRAMING, ...(attrs.to !== undefined ? { to: attrs.to } : {}) }).toString());
        return;
      }
      if (++depth > MAX_DEPTH) return refuse('policy-violation', `elements nested deeper than ${MAX_DEPTH} levels`);
      const el = new Element(tag.name, attrs);
      if (depth === 2) {
        // A top-level element inherits the stream's namespace; as a frame it carries it itself.
        if (el.attrs.xmlns === undefined && !tag.prefix) el.attrs.xmlns = tag.uri || NS_COMPONENT;
        size = 0;
      } else cursor?.cnode(el);
      cursor = el;
    });
    parser.on('text', (text) => {
      size += text.length;
      if (cursor) cursor.t(text);
    });
    parser.on('closetag', () => {
      depth--;
      if (depth === 0) return this.inbound(xml('close', { xmlns: NS_FRAMING }).toString());
      if (depth === 1 && cursor) {
        const frame = cursor.toString();
        cursor = undefined;
        if (frame.length > MAX_ELEMENT_CHARS || size > MAX_ELEMENT_CHARS) return refuse('policy-violation', 'element too large');
        return this.inbound(frame);
      }
      cursor = cursor?.parent as Element | undefined;
    });
    // RFC 6120 §11.1: no comments, processing instructions or DTDs in a stream.
    for (const what of ['comment', 'processinginstruction', 'doctype'] as const) parser.on(what, () => refuse('restricted-xml', `no ${what} in an XMPP stream`));
    parser.on('error', (err) => refuse('not-well-formed', err.message));

    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      try {
        parser.write(chunk);
      } catch (err) {
        refuse('not-well-formed', (err as Error).message);
      }
    });
    socket.on('error', (err) => this.log.debug({ err }, 'component socket error'));
    socket.on('close', (hadError) => {
      this.readyState = 3;
      this.emit('close', hadError ? 1006 : 1000, Buffer.from(hadError ? 'socket error' : 'socket closed'));
    });
  }

  /** A frame for the gateway; the first one connects ($connect) before anything is handed over. */
  private inbound(frame: string): void {
    this.attached ??= this.gateway.attachStream(this as unknown as WebSocket, { sourceIp: this.socket.remoteAddress ?? '', protocol: SUBPROTOCOL }).then((id) => {
      if (!id) this.streamError('internal-server-error', 'the server refused the connection');
      return id;
    });
    void this.attached.then((id) => {
      if (id && this.readyState === this.OPEN) this.emit('message', Buffer.from(frame, 'utf8'), false);
    });
  }

  // ---- what the gateway calls (the ws WebSocket surface it uses) ----

  get bufferedAmount(): number {
    return this.socket.writableLength;
  }

  /** A post to the connection: one RFC 7395 frame, written in the XEP-0114 form. */
  send(data: Buffer | string): void {
    if (this.readyState !== this.OPEN) return;
    const el = parseFrame(data.toString());
    if (el.name === 'open' && el.attrs.xmlns === NS_FRAMING) {
      if (this.headerSent) return;
      this.headerSent = true;
      const attrs = Object.entries({ 'xmlns:stream': NS_STREAMS, xmlns: NS_COMPONENT, from: el.attrs.from, id: el.attrs.id })
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => `${k}='${escapeAttr(String(v))}'`)
        .join(' ');
      this.socket.write(`<?xml version='1.0'?><stream:stream ${attrs}>`);
      return;
    }
    if (el.name === 'close' && el.attrs.xmlns === NS_FRAMING) {
      this.socket.write('</stream:stream>');
      return;
    }
    // Stanzas and the handshake are in the stream's default namespace (XEP-0114 §3).
    if (el.attrs.xmlns === NS_COMPONENT || el.attrs.xmlns === 'jabber:client') delete el.attrs.xmlns;
    if (el.name === 'stream:error') delete el.attrs['xmlns:stream'];
    this.socket.write(el.toString());
  }

  close(): void {
    if (this.readyState !== this.OPEN) return;
    this.readyState = 2;
    this.socket.end();
  }

  terminate(): void {
    this.readyState = 3;
    this.socket.destroy();
  }

  /** TCP has no pings; an open socket answers at once (a dead one is found by TCP itself). */
  ping(): void {
    if (this.readyState === this.OPEN) setImmediate(() => this.emit('pong'));
  }

  /** A stream error before or without the server (bad XML, a wrong header): written here, then the socket ends. */
  private streamError(condition: string, text: string): void {
    if (this.readyState !== this.OPEN) return;
    this.log.info({ condition, text }, 'component stream refused');
    if (!this.headerSent) this.socket.write(`<?xml version='1.0'?><stream:stream xmlns:stream='${NS_STREAMS}' xmlns='${NS_COMPONENT}'>`);
    this.headerSent = true;
    const err = xml('stream:error', {}, xml(condition, { xmlns: 'urn:ietf:params:xml:ns:xmpp-streams' }), xml('text', { xmlns: 'urn:ietf:params:xml:ns:xmpp-streams' }, text));
    this.socket.write(`${err.toString()}</stream:stream>`);
    this.readyState = 2;
    this.socket.end();
    // Whatever it had sent the gateway is dropped with it: its close ends the connection ($disconnect).
    this.emit('close', 1008, Buffer.from(condition));
    this.readyState = 3;
  }
}

function escapeAttr(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/'/g, '&apos;').replace(/</g, '&lt;').replace(/"/g, '&quot;');
}
