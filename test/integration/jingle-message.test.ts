// XEP-0353 Jingle Message Initiation and the Jingle IQs that follow, with real xmpp.js clients: a call
// proposed to a bare JID rings every device of the callee, carbons tell the other devices of both
// parties (a call answered on the phone stops the laptop ringing), a call missed while offline
// (propose, then retract) is delivered at the next login and kept in the archive, the XEP-0334 hints
// are honoured, and Jingle IQs go untouched to a full JID, or get service-unavailable when it is gone.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type TestClient, type TestServer, connectClient, startTestServer, xml, type Element } from '../support/harness.ts';

const JMI = 'urn:xmpp:jingle-message:0';
const HINTS = 'urn:xmpp:hints';
const CARBONS = 'urn:xmpp:carbons:2';
const FORWARD = 'urn:xmpp:forward:0';
const MAM = 'urn:xmpp:mam:2';
const JINGLE = 'urn:xmpp:jingle:1';
const STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas';

let s: TestServer;
const clients: TestClient[] = [];
const user = (prefix: string): Promise<string> => s.freshUser(prefix);
/** A resource of `name`, available with `priority`, carbons enabled unless told otherwise. */
async function device(name: string, resource: string, opts: { priority?: number; carbons?: boolean } = {}): Promise<TestClient> {
  const c = await connectClient(s.url, { username: name, resource });
  clients.push(c);
  await c.send(xml('presence', {}, xml('priority', {}, String(opts.priority ?? 0))));
  await c.waitFor((el) => el.name === 'presence' && el.attrs.from === c.jid);
  if (opts.carbons !== false) await c.iq(xml('iq', { type: 'set' }, xml('enable', { xmlns: CARBONS })));
  return c;
}

let sid = 0;
/** XEP-0353 §3 messages, as the spec writes them: type chat and a <store/> hint ('normal' leaves the type out). */
function jmi(action: string, to: string, id: string, opts: { type?: 'chat' | 'normal'; hint?: string } = {}): Element {
  const payload = action === 'propose' ? [xml('description', { xmlns: 'urn:xmpp:jingle:apps:rtp:1', media: 'video' })] : ['retract', 'reject', 'finish'].includes(action) ? [xml('reason', { xmlns: JINGLE }, xml(action === 'reject' ? 'busy' : action === 'finish' ? 'success' : 'cancel'))] : [];
  const type = opts.type ?? 'chat';
  return xml('message', { to, id: `m-${action}-${id}`, ...(type === 'chat' ? { type } : {}) }, xml(action, { xmlns: JMI, id }, ...payload), xml(opts.hint ?? 'store', { xmlns: HINTS }));
}
const isJmi = (action: string, id: string) => (el: Element) => el.name === 'message' && el.getChild(action, JMI)?.attrs.id === id;
const carbonOf = (direction: 'sent' | 'received', action: string, id: string) => (el: Element) => {
  const inner = el.name === 'message' ? el.getChild(direction, CARBONS)?.getChild('forwarded', FORWARD)?.getChild('message') : undefined;
  return !!inner && isJmi(action, id)(inner);
};

before(async () => {
  s = await startTestServer({ seedDomains: ['localhost'] });
  const tenant = (await s.server.tenants.get('localhost', 0))!;
  await s.server.tenants.put({ ...tenant, features: [...(tenant.features ?? []), 'carbons'] });
});
after(async () => {
  for (const c of clients) await c.stop();
  await s.stop();
});

describe('ringing every device (XEP-0353 §3.1, RFC 6121 §8.5.2.1.1)', () => {
  for (const type of ['chat', 'normal'] as const) {
    it(`a propose of type ${type} to the bare JID reaches every available resource of non-negative priority, and a carbon reaches the negative one`, async () => {
      const [romeo, juliet] = [await user('romeo'), await user('juliet')];
      const caller = await device(romeo, 'orchard');
      const phone = await device(juliet, 'phone', { priority: 5 });
      const laptop = await device(juliet, 'laptop', { priority: 0 });
      const hidden = await device(juliet, 'hidden', { priority: -1 });
      const id = `call-${++sid}`;
      await caller.send(jmi('propose', `${juliet}@localhost`, id, { type }));
      for (const c of [phone, laptop]) {
        const got = await c.waitFor(isJmi('propose', id));
        assert.equal(got.attrs.from, caller.jid);
        assert.equal(got.getChild('propose', JMI)!.getChild('description')!.attrs.media, 'video');
      }
      // RFC 6121 §8.5.2.1.1 keeps messages to the bare JID from negative priorities; XEP-0280 §7 copies them there.
      await hidden.waitFor(carbonOf('received', 'propose', id));
      await hidden.expectNothing(s, isJmi('propose', id), caller);
    });
  }

  it('a normal message that is not a call still goes to the highest priority only (RFC 6121 §8.5.2.1.1)', async () => {
    const [romeo, juliet] = [await user('romeo'), await user('juliet')];
    const caller = await device(romeo, 'orchard', { carbons: false });
    const phone = await device(juliet, 'phone', { priority: 5, carbons: false });
    const laptop = await device(juliet, 'laptop', { priority: 0, carbons: false });
    await caller.send(xml('message', { to: `${juliet}@localhost`, id: 'plain-normal' }, xml('body', {}, 'hello')));
    await phone.waitFor((el) => el.attrs.id === 'plain-normal');
    await laptop.expectNothing(s, (el) => el.attrs.id === 'plain-normal', caller);
  });
});

describe('carbons of call messages (XEP-0353 §5, XEP-0280)', () => {
  for (const type of ['chat', 'normal'] as const) {
    it(`(${type}) the caller's other device sees the propose; the answer reaches both caller devices and stops the callee's other device ringing`, async () => {
      const [romeo, juliet] = [await user('romeo'), await user('juliet')];
      const orchard = await device(romeo, 'orchard');
      const balcony = await device(romeo, 'balcony');
      const phone = await device(juliet, 'phone');
      const laptop = await device(juliet, 'laptop');
      const id = `call-${++sid}`;
      await orchard.send(jmi('propose', `${juliet}@localhost`, id, { type }));
      await balcony.waitFor(carbonOf('sent', 'propose', id));
      await phone.waitFor(isJmi('propose', id));
      await laptop.waitFor(isJmi('propose', id));

      await phone.send(jmi('ringing', `${romeo}@localhost`, id, { type }));
      await laptop.send(jmi('ringing', `${romeo}@localhost`, id, { type }));
      for (const c of [orchard, balcony]) {
        await c.waitFor(isJmi('ringing', id));
        await c.waitFor(isJmi('ringing', id));
      }

      // Answered on the phone: Romeo's devices get the proceed, Juliet's laptop a sent carbon of it.
      await phone.send(jmi('proceed', `${romeo}@localhost`, id, { type }));
      await orchard.waitFor(isJmi('proceed', id));
      await balcony.waitFor(isJmi('proceed', id));
      await laptop.waitFor(carbonOf('sent', 'proceed', id));

      // The call ends: finish both ways; each side's other device hears of both.
      await orchard.send(jmi('finish', `${juliet}@localhost`, id, { type }));
      await phone.send(jmi('finish', `${romeo}@localhost`, id, { type }));
      await laptop.waitFor(isJmi('finish', id));
      await laptop.waitFor(carbonOf('sent', 'finish', id));
      await balcony.waitFor(carbonOf('sent', 'finish', id));
      await balcony.waitFor(isJmi('finish', id));
    });
  }

  it('a reject on one device reaches the caller and stops the callee\'s other devices (XEP-0353 §3.5)', async () => {
    const [romeo, juliet] = [await user('romeo'), await user('juliet')];
    const orchard = await device(romeo, 'orchard');
    const phone = await device(juliet, 'phone');
    const laptop = await device(juliet, 'laptop');
    const id = `call-${++sid}`;
    await orchard.send(jmi('propose', `${juliet}@localhost`, id));
    await laptop.waitFor(isJmi('propose', id));
    await phone.send(jmi('reject', `${romeo}@localhost`, id));
    const reject = await orchard.waitFor(isJmi('reject', id));
    assert.ok(reject.getChild('reject', JMI)!.getChild('reason', JINGLE)!.getChild('busy'));
    await laptop.waitFor(carbonOf('sent', 'reject', id));
  });
});

describe('cost (README "Cost per operation")', () => {
  it('a propose costs what a chat message costs: the callee\'s sessions, the caller\'s (for the carbon), both archives', async () => {
    const [romeo, juliet] = [await user('romeo'), await user('juliet')];
    const orchard = await device(romeo, 'orchard');
    const balcony = await device(romeo, 'balcony');
    const phone = await device(juliet, 'phone');
    const laptop = await device(juliet, 'laptop');
    // A first exchange warms the caches (tenant, archive preferences are read per message).
    await orchard.send(jmi('propose', `${juliet}@localhost`, 'warm'));
    await laptop.waitFor(isJmi('propose', 'warm'));
    const id = `call-${++sid}`;
    const cost = await s.cost(async () => {
      await orchard.send(jmi('propose', `${juliet}@localhost`, id));
      await phone.waitFor(isJmi('propose', id));
      await laptop.waitFor(isJmi('propose', id));
      await balcony.waitFor(carbonOf('sent', 'propose', id));
    });
    // Reads: the callee's session item, the caller's (sent carbons), both archive preferences (one
    // BatchGetItem); writes: one archive item each, both in one BatchWriteItem; posts: two devices ring, one carbon.
    assert.deepEqual({ reads: cost.reads, writes: cost.writes, posts: cost.posts }, { reads: 3, writes: 1, posts: 3 }, JSON.stringify(cost.calls));
    assert.equal(cost.calls['dynamodb:BatchWriteItemCommand'], 1, JSON.stringify(cost.calls));
  });
});

describe('a missed call (XEP-0353 §3.3, XEP-0334 §4.4)', () => {
  it('propose then retract while the callee is offline: both are delivered, in order, at the next login, and kept in both archives', async () => {
    const [romeo, juliet] = [await user('romeo'), await user('juliet')];
    const orchard = await device(romeo, 'orchard');
    const id = `call-${++sid}`;
    await orchard.send(jmi('propose', `${juliet}@localhost`, id));
    await orchard.send(jmi('retract', `${juliet}@localhost`, id));
    await orchard.roundTrip();
    await s.gateway.idle();

    const phone = await connectClient(s.url, { username: juliet, resource: 'phone' });
    clients.push(phone);
    await phone.send(xml('presence'));
    const retract = await phone.waitFor(isJmi('retract', id));
    // Offline messages go out in the order they came (XEP-0160 §4): the propose is already there.
    const propose = phone.received.find(isJmi('propose', id));
    assert.ok(propose, 'the propose came before the retract');
    assert.ok(propose.getChild('delay', 'urn:xmpp:delay'), 'the propose carries its XEP-0203 delay');
    assert.ok(retract.getChild('delay', 'urn:xmpp:delay'));
    assert.equal(propose.attrs.from, orchard.jid);

    // XEP-0313: both parties' archives hold the call's life (XEP-0353 §1: devices that were offline learn of it).
    for (const c of [phone, orchard]) {
      const archived = await archiveOf(c);
      assert.deepEqual(archived.filter((m) => m.getChild('propose', JMI) || m.getChild('retract', JMI)).map((m) => m.children.find((x): x is Element => typeof x !== 'string' && x.attrs.xmlns === JMI)!.name), ['propose', 'retract']);
    }
  });

  it('<no-store/> keeps a message out of offline storage and the archive; <no-permanent-store/> out of the archive only (XEP-0334 §4.2)', async () => {
    const [romeo, juliet] = [await user('romeo'), await user('juliet')];
    const orchard = await device(romeo, 'orchard');
    await orchard.send(jmi('propose', `${juliet}@localhost`, 'not-stored', { hint: 'no-store' }));
    await orchard.send(jmi('propose', `${juliet}@localhost`, 'not-archived', { hint: 'no-permanent-store' }));
    await orchard.roundTrip();
    await s.gateway.idle();
    const phone = await connectClient(s.url, { username: juliet, resource: 'phone' });
    clients.push(phone);
    await phone.send(xml('presence'));
    await phone.waitFor(isJmi('propose', 'not-archived'));
    await phone.expectNothing(s, isJmi('propose', 'not-stored'));
    assert.deepEqual(await archiveOf(phone), []);
  });
});

/** The messages of `c`'s archive (XEP-0313 §4), forwarded originals in order. */
let qn = 0;
async function archiveOf(c: TestClient): Promise<Element[]> {
  const queryid = `q${++qn}`;
  await c.iq(xml('iq', { type: 'set' }, xml('query', { xmlns: MAM, queryid })));
  return c.received
    .filter((m) => m.name === 'message' && m.getChild('result', MAM)?.attrs.queryid === queryid)
    .map((m) => m.getChild('result', MAM)!.getChild('forwarded', FORWARD)!.getChild('message')!);
}

describe('Jingle IQs (XEP-0166) between full JIDs', () => {
  const initiate = (to: string, from: string, id: string) =>
    xml(
      'iq',
      { to, id, type: 'set' },
      xml(
        'jingle',
        { xmlns: JINGLE, action: 'session-initiate', initiator: from, sid: id },
        xml(
          'content',
          { creator: 'initiator', name: 'voice' },
          xml('description', { xmlns: 'urn:xmpp:jingle:apps:rtp:1', media: 'audio' }, xml('payload-type', { id: '111', name: 'opus', clockrate: '48000', channels: '2' })),
          xml('transport', { xmlns: 'urn:xmpp:jingle:transports:ice-udp:1', pwd: 'asd88fgpdd777uzjYhagZg', ufrag: '8hhy' }, xml('candidate', { component: '1', foundation: '1', generation: '0', id: 'el0747fg11', ip: '10.0.1.1', network: '1', port: '8998', priority: '2130706431', protocol: 'udp', type: 'host' })),
        ),
      ),
    );

  it('go to the resource untouched, and its answer comes back', async () => {
    const [romeo, juliet] = [await user('romeo'), await user('juliet')];
    const orchard = await device(romeo, 'orchard', { carbons: false });
    const phone = await device(juliet, 'phone', { carbons: false });
    const sent = initiate(phone.jid, orchard.jid, 'jingle-1');
    const answer = orchard.iq(sent);
    const got = await phone.waitFor((el) => el.name === 'iq' && el.attrs.id === 'jingle-1');
    assert.equal(got.attrs.from, orchard.jid);
    assert.equal(got.getChild('jingle', JINGLE)!.toString(), sent.getChild('jingle', JINGLE)!.toString());
    await phone.send(xml('iq', { to: orchard.jid, id: 'jingle-1', type: 'result' }));
    assert.equal((await answer).attrs.type, 'result');
  });

  it('to a resource that is gone gets service-unavailable (RFC 6121 §8.5.3.2.2), the payload echoed', async () => {
    const [romeo, juliet] = [await user('romeo'), await user('juliet')];
    const orchard = await device(romeo, 'orchard', { carbons: false });
    const phone = await device(juliet, 'phone', { carbons: false });
    const gone = phone.jid;
    await device(juliet, 'laptop', { carbons: false }); // the account stays online elsewhere
    await phone.stop();
    for (const [to, id] of [[gone, 'jingle-gone'], [`${juliet}@localhost/never-was`, 'jingle-never']]) {
      await orchard.send(initiate(to, orchard.jid, id));
      const reply = await orchard.waitFor((el) => el.name === 'iq' && el.attrs.id === id);
      assert.equal(reply.attrs.type, 'error');
      assert.equal(reply.attrs.from, to);
      const error = reply.getChild('error')!;
      assert.equal(error.attrs.type, 'cancel');
      assert.ok(error.getChild('service-unavailable', STANZAS));
    }
  });
});
