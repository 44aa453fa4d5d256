// Frames a client sent before its socket went away are still its stanzas (docs/architecture.md "Connections
// die silently"): the connection ends as a tombstone that keeps its JID, its queued messages reach their
// recipients or offline storage, and only what would go back to the gone socket is dropped. Both orders are
// covered: a reply's post getting 410 in the middle of the queue, and an AWS-style $disconnect that runs
// before the queued frames (in AWS it is a separate route, not ordered with the SQS frames).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import type { XmppModule } from '../../lib/core/modules.ts';
import { partitionItems } from '../../lib/store/dynamo.ts';
import { parseFrame } from '../../lib/xmpp/xml.ts';
import { RawClient, type TestClient, type TestServer, byName, connectClient, startTestServer, until, xml } from '../support/harness.ts';

/**
 * Holds the processing of one account's first message until released: the connection's later frames
 * queue up behind it in the gateway's FIFO (one connection's frames are handled one at a time, in order).
 */
class IngestHold {
  private readonly held = new Map<string, { reached: () => void; release: () => void; reachedP: Promise<void>; releaseP: Promise<void> }>();

  readonly module: XmppModule = {
    name: 'test-ingest-hold',
    install: (ctx) => {
      ctx.hook(
        'stanza/in',
        async ({ origin, stanza }) => {
          const h = this.held.get(origin.jid.bare().toString());
          if (!h || stanza.name !== 'message') return undefined;
          this.held.delete(origin.jid.bare().toString());
          h.reached();
          await h.releaseP;
          return undefined;
        },
        1000,
      );
    },
  };

  /** Arms the hold for `bare`; resolves `reached` when its first message is being processed. */
  arm(bare: string): { reached: Promise<void>; release: () => void } {
    let reached!: () => void;
    let release!: () => void;
    const reachedP = new Promise<void>((r) => (reached = r));
    const releaseP = new Promise<void>((r) => (release = r));
    this.held.set(bare, { reached, release, reachedP, releaseP });
    return { reached: reachedP, release };
  }
}

const message = (n: number) => `<message xmlns="jabber:client" type="chat" to="bob@localhost"><body>m${n}</body></message>`;
const serverPing = `<iq xmlns="jabber:client" type="get" id="p21" to="localhost"><ping xmlns="urn:xmpp:ping"/></iq>`;

describe('frames queued when the socket goes', () => {
  let s: TestServer;
  const hold = new IngestHold();
  const logs: Array<{ msg: string; connectionId?: string; [k: string]: unknown }> = [];
  const clients: TestClient[] = [];

  before(async () => {
    s = await startTestServer({
      logger: pino({ level: 'debug' }, { write: (line: string) => void logs.push(JSON.parse(line)) }),
      extraModules: [hold.module],
      tenantWatchMs: 3_600_000,
    });
    for (const u of ['alice', 'anne', 'bob', 'carol']) await s.addUser(`${u}@localhost`);
  });
  after(async () => {
    for (const c of clients) await c.stop();
    await s.stop();
  });

  /** A raw client logged in as `user`, and its connection id. */
  const login = (user: string) => RawClient.loggedIn(s, user);

  /** Logs `user` in and sends `frames`; returns once they all wait in the gateway behind the held first message. */
  async function queue(user: string, frames: string[]): Promise<{ c: RawClient; id: string; release: () => void }> {
    const { c, id } = await login(user);
    await s.gateway.idle();
    const framesOf = () => logs.filter((l) => l.msg === 'frame' && l.connectionId === id).length;
    const loginFrames = framesOf();
    const { reached, release } = hold.arm(`${user}@localhost`);
    for (const f of frames) c.send(f);
    await reached;
    // Every frame is in the gateway's queue for this connection before the socket goes.
    await until('the gateway to receive every frame', () => framesOf() - loginFrames === frames.length, () => framesOf() - loginFrames);
    return { c, id, release };
  }

  /** Queues `frames` (see queue), then destroys the socket. */
  async function sendThenVanish(user: string, frames: string[]): Promise<{ id: string; release: () => void }> {
    const { c, id, release } = await queue(user, frames);
    c.ws.terminate();
    await until('the gateway to see the socket go', () => !s.gateway.connectionIds().includes(id));
    return { id, release };
  }

  async function offlineBodies(bare: string): Promise<string[]> {
    const items = await partitionItems(s.server.db, s.table, `offline#${bare}`);
    return items.map((item) => parseFrame(item.xml as string).getChildText('body') ?? '');
  }

  it('a reply to the gone socket (410 on the 21st frame) loses none of the 200 messages queued around it', async () => {
    const frames = [...Array.from({ length: 20 }, (_, i) => message(i + 1)), serverPing, ...Array.from({ length: 180 }, (_, i) => message(i + 21))];
    const { id, release } = await sendThenVanish('alice', frames);
    release();
    await s.gateway.idle();

    const bodies = await offlineBodies('bob@localhost');
    assert.equal(bodies.length, 200, 'every message reached offline storage');
    assert.deepEqual(new Set(bodies), new Set(Array.from({ length: 200 }, (_, i) => `m${i + 1}`)));
    // As described: the ping's reply got 410 and ended the connection, and nothing was refused after it.
    assert.ok(logs.some((l) => l.msg === 'gone on post' && l.connectionId === id));
    assert.ok(!logs.some((l) => l.msg === 'frame for an unknown connection; closing it' && l.connectionId === id));
    assert.equal(logs.filter((l) => l.msg === 'connection ended' && l.connectionId === id).length, 1, 'the session ended once');
    assert.deepEqual(await s.server.sessions.list('alice@localhost'), []);
  });

  it('a $disconnect that overtakes the queued frames (the AWS order) loses nothing; subscriptions go, session presence does not', async () => {
    const carol = await connectClient(s.url, { username: 'carol', resource: 'c1' });
    clients.push(carol);
    await carol.send(xml('presence'));
    await carol.waitFor(byName('presence', { from: carol.jid }), undefined, 'own presence');

    const frames = [
      ...Array.from({ length: 200 }, (_, i) => message(i + 1)),
      // Directed available presence: about the session, which is over by then (RFC 6121 §4.5.2).
      `<presence xmlns="jabber:client" to="${carol.jid}"/>`,
      // A subscription request: about the account (RFC 6121 §3.1), still processed.
      `<presence xmlns="jabber:client" type="subscribe" to="carol@localhost"/>`,
    ];
    const before = (await offlineBodies('bob@localhost')).length;
    const { id, release } = await sendThenVanish('anne', frames);
    // AWS: the $disconnect route runs while the frames still wait in the SQS FIFO group.
    await s.server.disconnect(id, 'disconnect 1006');
    assert.deepEqual(await s.server.sessions.list('anne@localhost'), [], 'the session ended with $disconnect');
    release();

    const request = await carol.waitFor(byName('presence', { type: 'subscribe', from: 'anne@localhost' }), undefined, 'the subscription request');
    assert.equal(request.attrs.to, 'carol@localhost');
    await s.gateway.idle();
    assert.equal((await offlineBodies('bob@localhost')).length - before, 200, 'every message reached offline storage');
    assert.ok(!carol.received.some((el) => el.name === 'presence' && el.attrs.type === undefined && String(el.attrs.from).startsWith('anne@')), 'no available presence from the gone session');
    assert.ok(logs.some((l) => l.msg === 'after the socket went: not processed' && l.connectionId === id && l.element === 'presence'));
    assert.ok(!logs.some((l) => l.msg === 'frame for an unknown connection; closing it' && l.connectionId === id));
    assert.equal(logs.filter((l) => l.msg === 'connection ended' && l.connectionId === id).length, 1, 'the gateway\'s own later $disconnect ended nothing again');
  });

  it('frames after a client\'s own <close/> are still refused (RFC 7395 §3.6)', async () => {
    const before = (await offlineBodies('bob@localhost')).length;
    const { c, id, release } = await queue('alice', [message(1), `<close xmlns="urn:ietf:params:xml:ns:xmpp-framing"/>`, message(2)]);
    release();
    await c.closed;
    await s.gateway.idle();
    assert.equal((await offlineBodies('bob@localhost')).length - before, 1, 'only the message before <close/>');
    assert.ok(logs.some((l) => l.msg === 'frame for an unknown connection; closing it' && l.connectionId === id));
  });
});
