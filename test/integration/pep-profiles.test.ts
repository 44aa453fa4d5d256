// Profiles as plain PEP nodes (XEP-0163), with real clients: XEP-0084 User Avatar (a ~100 KB base64
// data item under the default pep.maxItemBytes, the metadata notification to a contact that wants it,
// the data fetched by id) and XEP-0292 vCard4 over XEP-0163 (publish, notify, read); what each costs.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { type Element, RawClient, type TestClient, type TestServer, startTestServer, xml } from '../support/harness.ts';
import { itemsIq, mutualSubscription, onlineWithCaps, pepEvent, publishIq } from '../support/pep.ts';

const AVATAR_DATA = 'urn:xmpp:avatar:data';
const AVATAR_METADATA = 'urn:xmpp:avatar:metadata';
const VCARD4 = 'urn:ietf:params:xml:ns:vcard-4.0';
const VCARD4_NODE = 'urn:xmpp:vcard4';
const BIG = 'avatars.test';

let s: TestServer;
let n = 0;
const clients: TestClient[] = [];
async function user(): Promise<string> {
  const name = `prof${++n}`;
  await s.addUser(`${name}@localhost`);
  return name;
}
async function online(name: string, notify: string[]): Promise<TestClient> {
  const c = await onlineWithCaps(s, name, 'r', notify);
  clients.push(c);
  return c;
}
const counts = (c: { reads: number; writes: number; posts: number }) => ({ reads: c.reads, writes: c.writes, posts: c.posts });
const itemsOf = (res: Element) => res.getChild('pubsub')!.getChild('items')!.getChildren('item');

before(async () => {
  s = await startTestServer({ tenantWatchMs: 3_600_000 });
});
after(async () => {
  for (const c of clients) await c.stop();
  await s.stop();
});

describe('XEP-0084 User Avatar on PEP', () => {
  it('a ~100 KB data item fits the default pep.maxItemBytes; a contact wanting metadata is notified and fetches the data by id', async () => {
    // Two limits come before pep.maxItemBytes (README "Personal eventing (PEP)"): the stream's
    // limits.maxStanzaBytes (65536 by default), raised here, and API Gateway's 32 KB per frame, so the
    // publisher fragments its message as a client must for an avatar this large.
    await s.server.tenants.put({ domain: BIG, enabled: true, limits: { maxStanzaBytes: 200_000 } });
    await s.addUser(`ann@${BIG}`);
    await s.addUser(`ben@${BIG}`);
    await mutualSubscription(s, `ann@${BIG}`, `ben@${BIG}`);
    const ann = await RawClient.connect(s.url);
    await ann.login('ann', 'secret', 'raw', BIG);
    const ben = await onlineWithCaps(s, 'ben', 'r', [AVATAR_METADATA], BIG);
    clients.push(ben);
    const sendFragmented = (el: Element) => {
      const parts = xml('iq', { xmlns: 'jabber:client', ...el.attrs }, ...el.children).toString().match(/[\s\S]{1,30000}/g)!;
      parts.forEach((part, i) => ann.ws.send(part, { fin: i === parts.length - 1 }));
    };
    const publish = async (iq: Element) => {
      iq.attrs.id = `pub${++n}`;
      sendFragmented(iq);
      const res = await ann.next((el) => el.name === 'iq' && el.attrs.id === iq.attrs.id);
      assert.equal(res.attrs.type, 'result', res.toString().slice(0, 500));
    };
    // 75,000 bytes of image: 100,000 characters of base64 (XEP-0084 §4.1, §5: id is the SHA-1 of the image).
    const image = randomBytes(75_000);
    const id = createHash('sha1').update(image).digest('hex');
    const base64 = image.toString('base64');
    assert.equal(base64.length, 100_000);

    // XEP-0084 §4.1: the data first; nobody wants data notifications, so the owner's result only.
    const data = await s.cost(() => publish(publishIq(AVATAR_DATA, id, xml('data', { xmlns: AVATAR_DATA }, base64))));
    // Creation: the node's GetItem, the count of nodes, the roster Query, the sessions; its PutItem.
    assert.deepEqual(counts(data), { reads: 4, writes: 1, posts: 1 }, JSON.stringify(data.calls));

    // §4.2: then the metadata, which the contact hears of (§4.3).
    const info = xml('info', { bytes: String(image.length), id, type: 'image/png', height: '64', width: '64' });
    const meta = await s.cost(async () => {
      await publish(publishIq(AVATAR_METADATA, id, xml('metadata', { xmlns: AVATAR_METADATA }, info)));
      const event = await ben.waitFor(pepEvent(`ann@${BIG}`, AVATAR_METADATA, (items) => items.getChild('item')?.attrs.id === id));
      assert.equal(event.getChild('event', 'http://jabber.org/protocol/pubsub#event')!.getChild('items')!.getChild('item')!.getChild('metadata', AVATAR_METADATA)!.getChild('info')!.attrs.bytes, '75000');
    });
    assert.deepEqual(counts(meta), { reads: 4, writes: 1, posts: 2 }, JSON.stringify(meta.calls));

    // §4.4: the contact fetches the data by id from the owner's bare JID (presence access model).
    let got: Element | undefined;
    const fetch = await s.cost(async () => (got = await ben.iq(itemsIq(AVATAR_DATA, `ann@${BIG}`, id))));
    // The node and the owner's roster item for the contact; one post of ~100 KB (under 128 KB).
    assert.deepEqual(counts(fetch), { reads: 2, writes: 0, posts: 1 }, JSON.stringify(fetch.calls));
    const item = itemsOf(got!)[0];
    assert.equal(item.attrs.id, id);
    assert.ok(Buffer.from(item.getChildText('data', AVATAR_DATA)!, 'base64').equals(image));
    ann.ws.close();
  });
});

describe('XEP-0292 vCard4 over XEP-0163', () => {
  it('a vCard4 published to urn:xmpp:vcard4 notifies a contact that wants it, and reads back at the bare JID', async () => {
    const [a, b] = [await user(), await user()];
    await mutualSubscription(s, `${a}@localhost`, `${b}@localhost`);
    const a1 = await online(a, [VCARD4_NODE]);
    const b1 = await online(b, [VCARD4_NODE]);
    const vcard = xml('vcard', { xmlns: VCARD4 }, xml('fn', {}, xml('text', {}, 'Ann Example')), xml('nickname', {}, xml('text', {}, 'ann')));
    // XEP-0292 §3.2 (Example 2): the item id is "current".
    const cost = await s.cost(async () => {
      await a1.iq(publishIq(VCARD4_NODE, 'current', vcard, { 'pubsub#access_model': 'presence' }));
      for (const c of [a1, b1]) await c.waitFor(pepEvent(`${a}@localhost`, VCARD4_NODE, (items) => items.getChild('item')?.getChild('vcard', VCARD4)?.getChild('fn')?.getChildText('text') === 'Ann Example'));
    });
    assert.deepEqual(counts(cost), { reads: 4, writes: 1, posts: 3 }, JSON.stringify(cost.calls));
    const read = itemsOf(await b1.iq(itemsIq(VCARD4_NODE, `${a}@localhost`)));
    assert.deepEqual([read.length, read[0].attrs.id, read[0].getChild('vcard', VCARD4)!.getChild('nickname')!.getChildText('text')], [1, 'current', 'ann']);
  });
});
