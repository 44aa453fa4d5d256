// The call demo `npm start` serves at /demo/ (README "Call demo"): log in (or register, XEP-0077),
// share presence with a contact (RFC 6121 §3), ring them with Jingle Message Initiation (XEP-0353) and
// carry the call over a Jingle RTP session (XEP-0166, XEP-0167, XEP-0176, XEP-0320) whose ICE servers
// and TURN credentials come from the server (XEP-0215). StanzaJS does the XMPP and the WebRTC session;
// this file is the UI and the XEP-0353 call flow around them.
//
// Query parameters: `relay=1` makes the peer connection use TURN relays only (iceTransportPolicy
// 'relay'), which shows the server's TURN credentials work; `ws=<url>` connects elsewhere than this
// page's own server.
import * as XMPP from 'stanza';
import type { MediaSession } from 'stanza/jingle';
import type { ExternalService } from 'stanza/protocol';
import { type Jmi, useJmi } from './jmi.ts';

const params = new URLSearchParams(location.search);
const WEBSOCKET_URL = params.get('ws') ?? `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/xmpp-websocket`;
const ICE_POLICY: RTCIceTransportPolicy = params.get('relay') === '1' ? 'relay' : 'all';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const ui = {
  status: $<HTMLParagraphElement>('status'),
  login: $<HTMLFormElement>('login'),
  jid: $<HTMLInputElement>('jid'),
  password: $<HTMLInputElement>('password'),
  register: $<HTMLInputElement>('register'),
  contacts: $<HTMLElement>('contacts'),
  me: $<HTMLElement>('me'),
  addContact: $<HTMLFormElement>('add-contact'),
  contact: $<HTMLInputElement>('contact'),
  roster: $<HTMLUListElement>('roster'),
  logout: $<HTMLButtonElement>('logout'),
  call: $<HTMLElement>('call'),
  callStatus: $<HTMLParagraphElement>('call-status'),
  videos: $<HTMLDivElement>('videos'),
  remoteVideo: $<HTMLVideoElement>('remote-video'),
  localVideo: $<HTMLVideoElement>('local-video'),
  answer: $<HTMLButtonElement>('answer'),
  decline: $<HTMLButtonElement>('decline'),
  hangup: $<HTMLButtonElement>('hangup'),
  iceServers: $<HTMLUListElement>('ice-servers'),
};

const bare = (jid: string) => jid.split('/')[0];
const say = (text: string) => (ui.status.textContent = text);

let client: XMPP.Agent | undefined;

// ---- contacts and presence (RFC 6121) ----

interface Contact {
  subscription: string;
  /** Full JIDs of the contact's available resources. */
  online: Set<string>;
}
const contacts = new Map<string, Contact>();

function contactOf(jid: string): Contact {
  let c = contacts.get(jid);
  if (!c) contacts.set(jid, (c = { subscription: 'none', online: new Set() }));
  return c;
}

function renderRoster(): void {
  ui.roster.replaceChildren(
    ...[...contacts.entries()].map(([jid, c]) => {
      const li = document.createElement('li');
      li.dataset.jid = jid;
      const name = document.createElement('span');
      const available = c.online.size > 0;
      name.className = available ? 'presence-available' : 'presence-unavailable';
      name.textContent = `${jid} — ${available ? 'online' : 'offline'}`;
      const button = document.createElement('button');
      button.type = 'button';
      button.textContent = 'Call';
      button.setAttribute('aria-label', `Call ${jid}`);
      button.disabled = !available || call !== undefined;
      button.addEventListener('click', () => void startCall(jid));
      li.append(name, button);
      return li;
    }),
  );
}

// ---- ICE servers (XEP-0215) ----

/** STUN/TURN servers with fresh credentials, asked for before each call (they expire). */
async function refreshIceServers(c: XMPP.Agent): Promise<void> {
  c.jingle.resetICEServers();
  let services: ExternalService[] = [];
  try {
    services = (await c.getServices(c.config.server!)).services ?? [];
  } catch {
    // XEP-0215 §4: no services (or no support) means direct connections only.
  }
  const shown: string[] = [];
  for (const s of services) {
    if (s.type !== 'stun' && s.type !== 'turn' && s.type !== 'stuns' && s.type !== 'turns') continue;
    let service = s;
    // XEP-0215 §3.3: a restricted service listed without credentials has them on request.
    if (s.restricted && !s.username && s.host) {
      try {
        service = { ...s, ...(await c.getServiceCredentials(c.config.server!, s.host, s.type, s.port)) };
      } catch {
        continue;
      }
    }
    c.jingle.addICEServer(service);
    shown.push(`${service.type}:${service.host}:${service.port ?? ''}${service.transport ? ` (${service.transport})` : ''}${service.expires ? `, credentials until ${service.expires.toLocaleTimeString()}` : ''}`);
  }
  ui.iceServers.replaceChildren(
    ...(shown.length ? shown : ['None: the server advertises no STUN or TURN servers.']).map((t) => {
      const li = document.createElement('li');
      li.textContent = t;
      return li;
    }),
  );
}

// ---- the call (XEP-0353 around a Jingle session) ----

type CallState = 'idle' | 'calling' | 'ringing' | 'incoming' | 'connecting' | 'active' | 'ended';

interface Call {
  sid: string;
  /** The other party's bare JID; JMI messages go there (XEP-0353 §3). */
  peer: string;
  role: 'initiator' | 'responder';
  /** The other party's device in the call (from its proceed, or the propose). */
  peerDevice?: string;
  stream?: MediaStream;
  session?: MediaSession;
  finishSent?: boolean;
}
let call: Call | undefined;

function setCallState(state: CallState, text: string): void {
  ui.call.hidden = false;
  ui.call.dataset.state = state;
  ui.callStatus.textContent = text;
  ui.answer.hidden = state !== 'incoming';
  ui.decline.hidden = state !== 'incoming';
  ui.hangup.hidden = !['calling', 'ringing', 'connecting', 'active'].includes(state);
  ui.videos.hidden = ui.hangup.hidden;
  renderRoster();
  if (state === 'incoming') ui.answer.focus();
}

function sendJmi(to: string, jmi: Jmi): void {
  // XEP-0353 §3: type chat to the other party's bare JID, with a store hint (XEP-0334) so that the
  // server keeps it for devices that are offline or catch up from the archive.
  client?.sendMessage({ to, type: 'chat', jmi, processingHints: { store: true } });
}

async function localMedia(): Promise<MediaStream> {
  const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
  ui.localVideo.srcObject = stream;
  return stream;
}

async function startCall(peer: string): Promise<void> {
  if (!client || call) return;
  const sid = crypto.randomUUID(); // XEP-0353 §3.1: UUIDv4 recommended
  call = { sid, peer, role: 'initiator' };
  setCallState('calling', `Calling ${peer}…`);
  try {
    call.stream = await localMedia();
  } catch (err) {
    return endCall(`No camera or microphone: ${(err as Error).message}`);
  }
  await refreshIceServers(client);
  if (call?.sid !== sid) return;
  // XEP-0353 §3.1: one description per medium of the session to come.
  sendJmi(peer, { action: 'propose', id: sid, media: ['audio', 'video'] });
}

async function answer(): Promise<void> {
  if (!client || !call || call.role !== 'responder') return;
  const c = call;
  setCallState('connecting', `Connecting to ${c.peer}…`);
  try {
    c.stream = await localMedia();
  } catch (err) {
    sendJmi(c.peer, { action: 'reject', id: c.sid, reason: { condition: 'failed-application', text: 'No camera or microphone' } });
    return endCall(`No camera or microphone: ${(err as Error).message}`);
  }
  await refreshIceServers(client);
  // XEP-0353 §3.4: the initiator now sends session-initiate with this id to this device.
  sendJmi(c.peer, { action: 'proceed', id: c.sid });
}

function decline(): void {
  if (!call || call.role !== 'responder') return;
  sendJmi(call.peer, { action: 'reject', id: call.sid, reason: { condition: 'busy', text: 'Busy' } }); // §3.5
  endCall('Call declined.');
}

function hangUp(): void {
  if (!call) return;
  if (call.session) {
    // XEP-0166 §6.7 session-terminate; the 'jingle:terminated' handler finishes (XEP-0353 §3.7).
    call.session.end('success');
    return;
  }
  if (call.role === 'initiator') {
    sendJmi(call.peer, { action: 'retract', id: call.sid, reason: { condition: 'cancel', text: 'Retracted' } }); // §3.3
  }
  endCall('Call cancelled.');
}

function endCall(text: string): void {
  const c = call;
  call = undefined;
  for (const track of c?.stream?.getTracks() ?? []) track.stop();
  ui.localVideo.srcObject = null;
  ui.remoteVideo.srcObject = null;
  setCallState('ended', text);
}

/** XEP-0353 §3.7: both parties send finish once the Jingle session is over. */
function finish(c: Call, condition: string): void {
  if (c.finishSent) return;
  c.finishSent = true;
  sendJmi(c.peer, { action: 'finish', id: c.sid, reason: { condition, text: condition === 'success' ? 'Success' : condition } });
}

/** How old a propose kept while offline may be and still ring. */
const STALE_PROPOSE_MS = 60_000;

function onJmi(from: string, jmi: Jmi, ownDevice: boolean, delayedSince?: Date): void {
  const c = call;
  const sender = bare(from);
  const when = delayedSince ? ` at ${delayedSince.toLocaleTimeString()}` : '';
  if (ownDevice) {
    // Carbons (XEP-0280) of what this user's other devices sent: the call was taken or declined there.
    if (c?.role === 'responder' && c.sid === jmi.id && !c.stream && (jmi.action === 'proceed' || jmi.action === 'reject')) {
      endCall(jmi.action === 'proceed' ? 'Answered on another device.' : 'Declined on another device.');
    }
    return;
  }
  if (jmi.action === 'propose' && delayedSince && Date.now() - delayedSince.getTime() > STALE_PROPOSE_MS) {
    // Kept for this user while offline (XEP-0353 §3.1 store hint, XEP-0160/0313) long enough that the
    // caller has stopped waiting: shown as a missed call instead of ringing. A fresher one rings (§3.3:
    // a propose without retract or finish may still be answered).
    say(`Missed call from ${sender}${when}.`);
    return;
  }
  if (jmi.action === 'propose') {
    if (c) {
      // Busy with another call: tell this caller (§3.5).
      if (c.sid !== jmi.id) sendJmi(sender, { action: 'reject', id: jmi.id, reason: { condition: 'busy', text: 'Busy' } });
      return;
    }
    call = { sid: jmi.id, peer: sender, role: 'responder', peerDevice: from };
    setCallState('incoming', `Incoming ${jmi.media?.includes('video') ? 'video ' : ''}call from ${sender}.`);
    sendJmi(sender, { action: 'ringing', id: jmi.id }); // §3.2
    return;
  }
  if (!c || c.sid !== jmi.id || c.peer !== sender) {
    // §3.3: a retract for a call this page never rang for (it came in while this user was offline).
    if (jmi.action === 'retract') say(`Missed call from ${sender}${when}.`);
    return;
  }
  switch (jmi.action) {
    case 'ringing':
      if (ui.call.dataset.state === 'calling') setCallState('ringing', `${c.peer} is ringing…`);
      break;
    case 'proceed':
      if (c.role !== 'initiator' || c.session || !client) break;
      // §3.6: initiate the Jingle session with the propose's id, to the device that proceeded.
      c.peerDevice = from;
      c.session = client.jingle.createMediaSession(from, c.sid, c.stream) as MediaSession;
      watchConnection(c);
      setCallState('connecting', `Connecting to ${c.peer}…`);
      void c.session.start();
      break;
    case 'reject':
      if (c.role === 'initiator' && !c.session) endCall(`${c.peer} declined the call.`);
      break;
    case 'retract':
      if (c.role === 'responder' && !c.session) endCall(`Missed call from ${c.peer}.`);
      break;
    case 'finish':
      // The other side considers the call over; end our session too if it is still up.
      if (c.session) c.session.end('success');
      else endCall('Call ended.');
      break;
  }
}

function watchConnection(c: Call): void {
  const pc = c.session!.pc;
  pc.addEventListener('connectionstatechange', () => {
    if (call !== c) return;
    if (pc.connectionState === 'connected') setCallState('active', `In a call with ${c.peer}.`);
    if (pc.connectionState === 'failed') c.session?.end('connectivity-error');
  });
}

// ---- logging in ----

async function logIn(jid: string, password: string, register: boolean): Promise<void> {
  const c = XMPP.createClient({
    jid,
    password,
    resource: `demo-${crypto.randomUUID().slice(0, 8)}`,
    transports: { websocket: WEBSOCKET_URL, bosh: false },
    // No built-in public STUN server: ICE servers come from this server only (XEP-0215).
    jingle: { iceServers: [], iceTransportPolicy: ICE_POLICY, trickleIce: true },
  });
  client = c;
  useJmi(c);
  if (register) {
    // XEP-0077 §3.1: register before authenticating, on the same stream.
    c.registerFeature('inbandRegistration', 50, async (_features, done) => {
      try {
        await c.sendIQ({ type: 'set', account: { username: jid.split('@')[0], password } });
        say('Account created; logging in…');
        done();
      } catch (err) {
        const condition = (err as { error?: { condition?: string } }).error?.condition ?? 'error';
        done('disconnect', `registration failed: ${condition}`);
        say(condition === 'conflict' ? 'That account exists already: log in without "Create this account".' : `Registration failed (${condition}).`);
      }
    });
  }
  c.on('auth:failed', () => say('Login failed: wrong address or password.'));
  c.on('stream:error', (e) => say(`The server closed the connection: ${e.text || e.condition}.`));
  c.on('disconnected', () => {
    if (client !== c) return;
    client = undefined;
    if (call) endCall('Call ended: disconnected.');
    ui.call.hidden = true;
    contacts.clear();
    ui.contacts.hidden = true;
    ui.login.hidden = false;
    if (!/failed|closed|exists|Registration/.test(ui.status.textContent ?? '')) say('Disconnected.');
  });
  c.on('session:started', async () => {
    say('Connected. Loading contacts…');
    await c.enableCarbons().catch(() => undefined);
    // RFC 6121 §2.2: the roster before initial presence, so the contacts' presence finds them.
    const roster = await c.getRoster();
    for (const item of roster.items ?? []) contactOf(item.jid).subscription = item.subscription ?? 'none';
    c.sendPresence();
    ui.login.hidden = true;
    ui.contacts.hidden = false;
    ui.me.textContent = bare(c.jid);
    renderRoster();
    say(`Connected as ${bare(c.jid)}.`);
  });
  c.on('roster:update', (iq) => {
    for (const item of iq.roster.items ?? []) {
      if (item.subscription === 'remove') contacts.delete(item.jid);
      else contactOf(item.jid).subscription = item.subscription ?? 'none';
    }
    renderRoster();
  });
  // RFC 6121 §3.1.3: this demo accepts every request, and asks back so that presence flows both ways.
  c.on('subscribe', (pres) => {
    const from = bare(pres.from);
    c.acceptSubscription(from);
    const sub = contacts.get(from)?.subscription;
    if (sub !== 'to' && sub !== 'both') c.subscribe(from);
  });
  c.on('available', (pres) => {
    if (bare(pres.from) === bare(c.jid)) return;
    contactOf(bare(pres.from)).online.add(pres.from);
    renderRoster();
  });
  c.on('unavailable', (pres) => {
    contacts.get(bare(pres.from))?.online.delete(pres.from);
    renderRoster();
  });
  c.on('message', (msg) => {
    // A delay (XEP-0203) marks a message kept while this user was offline (StanzaJS also stamps carbons with one: now).
    if (msg.jmi) onJmi(msg.from, msg.jmi, bare(msg.from) === bare(c.jid), msg.delay?.timestamp);
  });
  c.on('carbon:sent', (msg) => {
    const sent = msg.carbon?.forward.message;
    if (sent?.jmi) onJmi(c.jid, sent.jmi, true);
  });
  c.on('jingle:incoming', (session) => {
    const c2 = call;
    // Only the session announced by a propose this device proceeded with (XEP-0353 §3.6).
    if (!c2 || c2.role !== 'responder' || session.sid !== c2.sid || bare(session.peerID) !== c2.peer || !c2.stream) {
      session.end('decline');
      return;
    }
    const media = session as MediaSession;
    c2.session = media;
    c2.peerDevice = session.peerID;
    for (const track of c2.stream.getTracks()) media.addTrack(track, c2.stream);
    watchConnection(c2);
    void media.accept();
  });
  c.jingle.on('peerTrackAdded', (session: MediaSession, _track: MediaStreamTrack, stream: MediaStream) => {
    if (call?.session === session) ui.remoteVideo.srcObject = stream;
  });
  c.on('jingle:terminated', (session, reason) => {
    const c2 = call;
    if (!c2 || c2.session !== session) return;
    finish(c2, reason?.condition === 'success' || !reason?.condition ? 'success' : reason.condition);
    endCall(`Call ended${reason?.condition && reason.condition !== 'success' ? ` (${reason.condition})` : ''}.`);
  });
  say(register ? 'Creating the account…' : 'Connecting…');
  await c.connect();
}

ui.login.addEventListener('submit', (e) => {
  e.preventDefault();
  if (client) return;
  void logIn(ui.jid.value.trim(), ui.password.value, ui.register.checked);
});
ui.addContact.addEventListener('submit', (e) => {
  e.preventDefault();
  const jid = bare(ui.contact.value.trim());
  if (!client || !jid) return;
  // RFC 6121 §3.1.1: the server adds the contact to the roster and forwards the request.
  client.subscribe(jid);
  contactOf(jid);
  ui.contact.value = '';
  renderRoster();
  say(`Asked ${jid} to share presence.`);
});
ui.logout.addEventListener('click', () => void client?.disconnect());
ui.answer.addEventListener('click', () => void answer());
ui.decline.addEventListener('click', decline);
ui.hangup.addEventListener('click', hangUp);
