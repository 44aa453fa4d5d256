// Converse.js (the full UI build, in headless Chromium) over BOSH only (XEP-0124/0206): configured with
// `bosh_service_url` and no WebSocket URL, from a page on another origin (the preflight and the CORS
// headers of every response matter), it logs in, shows a message from a WebSocket user (xmpp.js) that
// reaches its waiting request, and the user's reply reaches the WebSocket user. See README "BOSH".
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Element, type TestClient, type TestServer, WAIT_MS, connectClient, startTestServer, xml } from '../support/harness.ts';
import { ConverseBrowser, browserMissing } from '../support/converse.ts';
import { mutualSubscription } from '../support/roster.ts';

const STEP = { timeout: 240_000 };
const PASSWORD = 'pw-browser';
const USER = 'rosaline@localhost';
const bare = (jid: string) => jid.split('/')[0];
const chatFrom = (from: string, body: string) => (el: Element) =>
  el.name === 'message' && bare(el.attrs.from ?? '') === from && el.getChildText('body') === body;

let s: TestServer;
let browser: ConverseBrowser;
let friend: TestClient;

describe('Converse.js in Chromium over BOSH', { skip: browserMissing() }, () => {
  before(async () => {
    s = await startTestServer({ seedFeatures: ['blocking', 'carbons', 'vcard-avatars'] });
    await s.addUser(USER, PASSWORD);
    await s.addUser('paris@localhost', PASSWORD);
    await mutualSubscription(s, USER, 'paris@localhost');
    friend = await connectClient(s.url, { username: 'paris', password: PASSWORD, resource: 'xmppjs' });
    await friend.send(xml('presence'));
    browser = await ConverseBrowser.launch(s.url);
  });

  after(async () => {
    await friend?.stop();
    await browser?.close();
    await s?.stop();
  });

  it('logs in with bosh_service_url only, chats both ways with a WebSocket user, and opens no WebSocket', STEP, async () => {
    const boshRequests: string[] = [];
    const page = await browser.open({
      jid: USER,
      password: PASSWORD,
      resource: 'bosh',
      // JSON drops the undefined: the page gets no websocket_url at all.
      settings: { websocket_url: undefined, bosh_service_url: s.boshUrl },
    });
    page.page.on('request', (r) => {
      if (r.url() === s.boshUrl) boshRequests.push(r.method());
    });
    await page.waitConnected();
    await friend.send(xml('message', { to: USER, type: 'chat', id: 'b1' }, xml('body', {}, 'hello over BOSH')));
    await page.waitForMessages('paris@localhost', (ms) => ms.some((m) => m.sender === 'them' && m.text === 'hello over BOSH'), 'the message over BOSH');
    await page.send('paris@localhost', 'reply over BOSH');
    await friend.waitFor(chatFrom(USER, 'reply over BOSH'), WAIT_MS, 'the reply from Converse over BOSH');
    assert.deepEqual(page.frames, [], 'no WebSocket frame');
    assert.ok(boshRequests.includes('POST'), `requests to ${s.boshUrl}: ${boshRequests.join(', ')}`);
    assert.equal(browser.remoteRequests.length, 0, browser.remoteRequests.join(', '));
  });
});
