// The call demo (/demo/, README "Call demo") in two headless Chromium pages with fake cameras, against
// a real local server and a real coturn: alice and bob log in, share presence, alice calls, bob's page
// rings (XEP-0353 propose → ringing), bob answers (proceed), the Jingle RTP session connects, and with
// iceTransportPolicy 'relay' it can only do so through TURN with the credentials the server handed out
// (XEP-0215, coturn's use-auth-secret scheme). Video frames must be decoded on both sides; then alice
// hangs up and both pages end the call (Jingle session-terminate, XEP-0353 finish). See README, Tests.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Browser, type BrowserContext, type Page, chromium } from 'playwright-core';
import { type TestServer, WAIT_MS, startTestServer, until } from '../support/harness.ts';
import { CHROMIUM, browserMissing } from '../support/converse.ts';
import { type Coturn, coturnMissing, startCoturn } from '../support/coturn.ts';

const ARTIFACTS = join(import.meta.dirname, '..', '..', 'test-artifacts', 'call-demo');
const PASSWORD = 'pw-call';
const ALICE = 'alice@localhost';
const BOB = 'bob@localhost';
const [CAROL, DAVE, ERIN, FRANK] = ['carol@localhost', 'dave@localhost', 'erin@localhost', 'frank@localhost'];

/** Loopback only: the page must load nothing from anywhere else. */
const isLocal = (url: string) => {
  const { protocol, hostname } = new URL(url);
  return ['data:', 'blob:', 'about:'].includes(protocol) || ['127.0.0.1', 'localhost'].includes(hostname);
};

// Before the page's scripts: keep every RTCPeerConnection the page makes (and the configuration it was
// given) where the test can read its state and statistics, as chrome://webrtc-internals would.
const RECORD_PEER_CONNECTIONS = () => {
  const Native = window.RTCPeerConnection;
  const w = window as unknown as { xePeerConnections: RTCPeerConnection[] };
  w.xePeerConnections = [];
  window.RTCPeerConnection = class extends Native {
    constructor(config?: RTCConfiguration) {
      super(config);
      w.xePeerConnections.push(this);
    }
  } as typeof RTCPeerConnection;
};

interface PcState {
  connectionState: string;
  iceTransportPolicy?: string;
  iceServers: { urls: string[]; username?: string }[];
  framesDecoded: number;
  /** Candidate types of the selected (nominated, succeeded) pair: 'relay' for both through TURN. */
  selectedPair?: { local: string; remote: string };
}

class CallPage {
  readonly frames: { dir: 'in' | 'out'; text: string }[] = [];
  readonly log: string[] = [];
  private step = 0;

  constructor(
    readonly name: string,
    readonly context: BrowserContext,
    readonly page: Page,
  ) {
    page.on('console', (m) => this.log.push(`[${m.type()}] ${m.text()}`));
    page.on('pageerror', (e) => this.log.push(`[pageerror] ${e.message}`));
    page.on('websocket', (ws) => {
      ws.on('framesent', (f) => this.frames.push({ dir: 'out', text: String(f.payload) }));
      ws.on('framereceived', (f) => this.frames.push({ dir: 'in', text: String(f.payload) }));
    });
  }

  async screenshot(what: string): Promise<void> {
    mkdirSync(join(ARTIFACTS, this.name), { recursive: true });
    const file = `${String(++this.step).padStart(2, '0')}-${what.replace(/[^\w.@-]+/g, '_').slice(0, 80)}.png`;
    await this.page.screenshot({ path: join(ARTIFACTS, this.name, file) }).catch(() => {});
  }

  /** Logs in through the form, as a user does, and waits for the contacts list. */
  async logIn(jid: string, password: string): Promise<void> {
    await this.page.getByLabel('Address').fill(jid);
    await this.page.getByLabel('Password').fill(password);
    await this.page.getByRole('button', { name: 'Log in' }).click();
    await this.page.getByRole('heading', { name: 'Contacts' }).waitFor({ timeout: WAIT_MS });
    await this.wait(`logged in as ${jid}`, async () => (await this.page.locator('#me').textContent()) === jid);
  }

  async waitStatus(text: string): Promise<void> {
    await this.wait(`status "${text}"`, () => this.page.locator('#status').textContent().then((t) => t === text));
  }

  /** The roster entry's text for `jid` ("bob@localhost — online"), or undefined. */
  async contact(jid: string): Promise<string | undefined> {
    const li = this.page.locator(`#roster li[data-jid="${jid}"]`);
    return (await li.count()) ? ((await li.textContent()) ?? '') : undefined;
  }

  /** The call section's state (data-state: idle, calling, ringing, incoming, connecting, active, ended). */
  callState(): Promise<string | null> {
    return this.page.locator('#call').getAttribute('data-state');
  }

  async waitCallState(state: string): Promise<void> {
    await this.wait(`call state ${state}`, async () => (await this.callState()) === state);
    await this.screenshot(`call ${state}`);
  }

  /** The state of the page's last peer connection, with its video statistics (getStats). */
  peerConnection(): Promise<PcState | undefined> {
    return this.page.evaluate(async () => {
      const pcs = (window as unknown as { xePeerConnections: RTCPeerConnection[] }).xePeerConnections;
      const pc = pcs[pcs.length - 1];
      if (!pc) return undefined;
      const config = pc.getConfiguration();
      let framesDecoded = 0;
      let selectedPair: { local: string; remote: string } | undefined;
      if (pc.connectionState !== 'closed') {
        const stats = await pc.getStats();
        const byId = new Map<string, any>();
        stats.forEach((s: any) => byId.set(s.id, s));
        for (const s of byId.values()) {
          if (s.type === 'inbound-rtp' && s.kind === 'video') framesDecoded += s.framesDecoded ?? 0;
          if (s.type === 'transport' && s.selectedCandidatePairId) {
            const pair = byId.get(s.selectedCandidatePairId);
            if (pair) selectedPair = { local: byId.get(pair.localCandidateId)?.candidateType, remote: byId.get(pair.remoteCandidateId)?.candidateType };
          }
        }
      }
      return {
        connectionState: pc.connectionState,
        iceTransportPolicy: config.iceTransportPolicy,
        iceServers: (config.iceServers ?? []).map((s) => ({ urls: ([] as string[]).concat(s.urls), username: s.username })),
        framesDecoded,
        selectedPair,
      };
    });
  }

  /** Waits for a WebSocket frame in direction `dir` matching every one of `res`; resolves with its text. */
  async waitForFrame(dir: 'in' | 'out', res: RegExp[], what: string): Promise<string> {
    const hit = await until(`${this.name}: ${what}`, () => this.frames.find((f) => f.dir === dir && res.every((re) => re.test(f.text))), () => this.frames.slice(-6));
    return hit!.text;
  }

  async close(): Promise<void> {
    await this.context.close().catch(() => {});
  }

  async wait(what: string, check: () => Promise<unknown>): Promise<void> {
    try {
      await until(`${this.name}: ${what}`, check, () => this.page.locator('main').innerText().catch(() => ''));
    } catch (e) {
      await this.screenshot(`FAILED ${what}`);
      throw new Error(`${(e as Error).message}\nlast console lines:\n${this.log.slice(-15).join('\n')}`);
    }
  }
}

describe('the call demo: two browsers call each other through TURN', { skip: browserMissing() ?? coturnMissing() }, () => {
  let s: TestServer;
  let turn: Coturn;
  let browser: Browser;
  const pages: CallPage[] = [];
  const remote: string[] = [];

  async function open(name: string): Promise<CallPage> {
    const context = await browser.newContext({ viewport: { width: 900, height: 900 } });
    await context.route('**/*', (route) => {
      const url = route.request().url();
      if (isLocal(url)) return route.continue();
      remote.push(url);
      return route.abort('blockedbyclient');
    });
    await context.addInitScript(RECORD_PEER_CONNECTIONS);
    const cp = new CallPage(name, context, await context.newPage());
    pages.push(cp);
    // relay=1: iceTransportPolicy 'relay', so only TURN relay candidates are gathered and paired.
    await cp.page.goto(`${s.demoUrl}?relay=1`);
    return cp;
  }

  /** `a` adds `b` as a contact through the form; the demo accepts and asks back, so both see each other online. */
  async function befriend(a: CallPage, aJid: string, b: CallPage, bJid: string): Promise<void> {
    await a.page.getByLabel('Add a contact').fill(bJid);
    await a.page.getByRole('button', { name: 'Add', exact: true }).click();
    await a.wait(`${bJid} online`, async () => (await a.contact(bJid))?.includes('online'));
    await b.wait(`${aJid} online`, async () => (await b.contact(aJid))?.includes('online'));
  }

  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    turn = await startCoturn();
    s = await startTestServer({ seedFeatures: ['carbons'] });
    await s.addUser(ALICE, PASSWORD);
    for (const jid of [BOB, CAROL, DAVE, ERIN, FRANK]) await s.addUser(jid, PASSWORD);
    // The tenant's TURN block, set live through the admin API as an operator does (README "Calls").
    const res = await fetch(`${s.adminUrl}/tenants/localhost`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${s.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ turn: { secret: turn.secret, services: [{ type: 'turn', host: turn.host, port: turn.port, transport: 'udp' }], ttlSeconds: 600 } }),
    });
    assert.equal(res.status, 200, await res.text());
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      // --no-sandbox: CI containers run as root. The fake devices give each page a camera and a
      // microphone (a test pattern and a beep) and grant access without a prompt.
      args: ['--no-sandbox', '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream'],
    });
  });

  after(async () => {
    for (const p of pages) {
      mkdirSync(join(ARTIFACTS, p.name), { recursive: true });
      writeFileSync(join(ARTIFACTS, p.name, 'console.log'), p.log.join('\n') + '\n');
    }
    await browser?.close().catch(() => {});
    turn?.saveLog(join(ARTIFACTS, 'coturn.log'));
    await s?.stop();
    await turn?.stop();
  });

  it('alice calls bob: rings, connects through the TURN relay, video flows both ways, and hang-up ends it on both sides', { timeout: 240_000 }, async () => {
    const alice = await open('alice');
    const bob = await open('bob');
    await alice.logIn(ALICE, PASSWORD);
    await bob.logIn(BOB, PASSWORD);
    await alice.waitStatus(`Connected as ${ALICE}.`);

    // Presence: alice adds bob; the demo accepts and asks back, so each sees the other online.
    await befriend(alice, ALICE, bob, BOB);
    await alice.screenshot('bob online');

    // XEP-0353: propose to bob's bare JID; bob's page rings and says so; alice's page shows it.
    await alice.page.getByRole('button', { name: `Call ${BOB}` }).click();
    await bob.waitCallState('incoming');
    assert.match((await bob.page.locator('#call-status').textContent()) ?? '', /Incoming video call from alice@localhost/);
    const propose = await bob.waitForFrame('in', [/<propose xmlns=["']urn:xmpp:jingle-message:0["']/], 'the propose');
    const sid = /<propose[^>]*\sid=["']([^"']+)["']/.exec(propose)![1];
    assert.match(propose, /media=["']video["']/);
    assert.match(propose, /<store xmlns=["']urn:xmpp:hints["']\/>/, 'XEP-0353 §3.1: kept for offline devices');
    await alice.waitForFrame('in', [/<ringing xmlns=["']urn:xmpp:jingle-message:0["']/, new RegExp(`id=["']${sid}["']`)], 'ringing');
    await alice.waitCallState('ringing');

    await bob.page.getByRole('button', { name: 'Answer' }).click();
    await alice.waitForFrame('in', [/<proceed xmlns=["']urn:xmpp:jingle-message:0["']/, new RegExp(`id=["']${sid}["']`)], 'proceed');
    // XEP-0353 §3.6: the Jingle session reuses the propose's id.
    await bob.waitForFrame('in', [/action=["']session-initiate["']/, new RegExp(`sid=["']${sid}["']`)], 'session-initiate');

    for (const p of [alice, bob]) {
      await p.waitCallState('active');
      await p.wait('peer connection connected', async () => (await p.peerConnection())?.connectionState === 'connected');
      const pc = (await p.peerConnection())!;
      // Only TURN, and only with the server's short-lived credentials for this user (<expiry>:<bare JID>).
      assert.equal(pc.iceTransportPolicy, 'relay');
      const turnServer = pc.iceServers.find((x) => x.urls.some((u) => u.startsWith('turn:')));
      assert.ok(turnServer, `${p.name}: a TURN server from XEP-0215 in ${JSON.stringify(pc.iceServers)}`);
      assert.ok(turnServer.urls.some((u) => u.includes(`${turn.host}:${turn.port}`)), JSON.stringify(turnServer));
      assert.match(turnServer.username ?? '', new RegExp(`^\\d+:${p.name}@localhost$`));
      await p.wait('video frames decoded', async () => ((await p.peerConnection())?.framesDecoded ?? 0) > 0);
      const live = (await p.peerConnection())!;
      assert.deepEqual(live.selectedPair, { local: 'relay', remote: 'relay' }, `${p.name}: the media path goes through the relay`);
      await p.screenshot('video');
    }
    // coturn accepted each user's XEP-0215 credentials (its log names the username it checked).
    for (const who of [ALICE, BOB]) assert.match(turn.log(), new RegExp(`user <\\d+:${who}>: incoming packet ALLOCATE processed, success`));

    // Hang up on alice's side: Jingle session-terminate to bob, both pages end, both send finish.
    await alice.page.getByRole('button', { name: 'Hang up' }).click();
    for (const p of [alice, bob]) {
      await p.waitCallState('ended');
      assert.equal(await p.page.locator('#call-status').textContent(), 'Call ended.');
      await p.wait('peer connection closed', async () => (await p.peerConnection())?.connectionState === 'closed');
      assert.ok(await p.page.getByRole('button', { name: 'Hang up' }).isHidden());
    }
    await bob.waitForFrame('in', [/action=["']session-terminate["']/, new RegExp(`sid=["']${sid}["']`), /<success\/>/], 'session-terminate');
    for (const [p, other] of [[alice, BOB], [bob, ALICE]] as const) {
      const fin = await p.waitForFrame('in', [/<finish xmlns=["']urn:xmpp:jingle-message:0["']/, new RegExp(`id=["']${sid}["']`)], `finish from ${other}`);
      assert.match(fin, /<success\/>/);
      assert.match(fin, new RegExp(`from=["']${other}/`));
    }
    assert.deepEqual(remote, [], 'nothing loaded from outside the loopback');
    await Promise.all([alice.close(), bob.close()]);
  });

  it('a declined call ends on both sides with reject <busy/>; a call cancelled before an answer shows as missed (retract), also after logging in again', { timeout: 240_000 }, async () => {
    const [carol, dave] = [await open('carol'), await open('dave')];
    await carol.logIn(CAROL, PASSWORD);
    await dave.logIn(DAVE, PASSWORD);
    await befriend(carol, CAROL, dave, DAVE);

    await carol.page.getByRole('button', { name: `Call ${DAVE}` }).click();
    await dave.waitCallState('incoming');
    await dave.page.getByRole('button', { name: 'Decline' }).click();
    await dave.waitCallState('ended');
    const reject = await carol.waitForFrame('in', [/<reject xmlns=["']urn:xmpp:jingle-message:0["']/], 'reject');
    assert.match(reject, /<busy\/>/);
    await carol.waitCallState('ended');
    assert.equal(await carol.page.locator('#call-status').textContent(), `${DAVE} declined the call.`);
    assert.equal(await carol.peerConnection(), undefined, 'no Jingle session was started');

    await carol.page.getByRole('button', { name: `Call ${DAVE}` }).click();
    await dave.waitCallState('incoming');
    await carol.waitCallState('ringing');
    await carol.page.getByRole('button', { name: 'Hang up' }).click();
    await carol.waitCallState('ended');
    assert.equal(await carol.page.locator('#call-status').textContent(), 'Call cancelled.');
    const retract = await dave.waitForFrame('in', [/<retract xmlns=["']urn:xmpp:jingle-message:0["']/], 'retract');
    assert.match(retract, /<cancel\/>/);
    await dave.waitCallState('ended');
    assert.equal(await dave.page.locator('#call-status').textContent(), `Missed call from ${CAROL}.`);

    // Dave logs out while it rings; carol gives up. The retract is kept for him (XEP-0353 store hint) and,
    // when he logs in again, his page tells him he missed a call.
    await carol.page.getByRole('button', { name: `Call ${DAVE}` }).click();
    await dave.waitCallState('incoming');
    await dave.page.getByRole('button', { name: 'Log out' }).click();
    await dave.waitStatus('Disconnected.');
    await carol.wait(`${DAVE} offline`, async () => (await carol.contact(DAVE))?.includes('offline'));
    await carol.page.getByRole('button', { name: 'Hang up' }).click();
    await carol.waitCallState('ended');
    await dave.logIn(DAVE, PASSWORD);
    await dave.wait('the missed call shown', async () => /^Missed call from carol@localhost at /.test((await dave.page.locator('#status').textContent()) ?? ''));
    await dave.screenshot('missed call');
    await Promise.all([carol.close(), dave.close()]);
  });

  it("a call rings on every device of the callee; answering on one stops the other's ringing (carbons of proceed)", { timeout: 240_000 }, async () => {
    const erin = await open('erin');
    const [laptop, phone] = [await open('frank-laptop'), await open('frank-phone')];
    await erin.logIn(ERIN, PASSWORD);
    await laptop.logIn(FRANK, PASSWORD);
    await befriend(erin, ERIN, laptop, FRANK);
    await phone.logIn(FRANK, PASSWORD);
    await phone.wait(`${ERIN} online`, async () => (await phone.contact(ERIN))?.includes('online'));

    await erin.page.getByRole('button', { name: `Call ${FRANK}` }).click();
    await laptop.waitCallState('incoming');
    await phone.waitCallState('incoming');
    await phone.page.getByRole('button', { name: 'Answer' }).click();
    await laptop.waitCallState('ended');
    assert.equal(await laptop.page.locator('#call-status').textContent(), 'Answered on another device.');
    // The Jingle session goes to the device that proceeded, and only there.
    await phone.waitForFrame('in', [/action=["']session-initiate["']/], 'session-initiate');
    await erin.waitCallState('active');
    await phone.waitCallState('active');
    assert.ok(!laptop.frames.some((f) => f.dir === 'in' && /action=["']session-initiate["']/.test(f.text)), 'the laptop got no session-initiate');
    await phone.page.getByRole('button', { name: 'Hang up' }).click();
    await erin.waitCallState('ended');
    await phone.waitCallState('ended');
    await Promise.all([erin.close(), laptop.close(), phone.close()]);
  });

  it('registers an account from the login form on a tenant with open registration (XEP-0077)', { timeout: 240_000 }, async () => {
    const res = await fetch(`${s.adminUrl}/tenants/localhost`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${s.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ registration: 'open' }),
    });
    assert.equal(res.status, 200, await res.text());
    const gina = await open('gina');
    await gina.page.getByLabel('Create this account first').check();
    await gina.logIn('gina@localhost', 'pw-gina');
    assert.ok(await s.server.users.get('localhost', 'gina'), 'the account exists');
    await gina.close();
  });
});
