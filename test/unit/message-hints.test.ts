// XEP-0334 hints and XEP-0353 call messages in the rules that copy, archive and keep messages: pure
// checks of carbons eligibility (XEP-0280 §6), archiving (XEP-0313 §6.1.1) and offline storage.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { eligibleForCarbons } from '../../lib/extensions/carbons.ts';
import { isArchivable } from '../../lib/extensions/mam/index.ts';
import { offlineCopy } from '../../lib/extensions/offline/index.ts';
import { jingleMessageAction } from '../../lib/xmpp/hints.ts';
import { parseFrame } from '../../lib/xmpp/xml.ts';

const msg = (inner: string, type?: string) => parseFrame(`<message xmlns="jabber:client" to="juliet@localhost"${type ? ` type="${type}"` : ''}>${inner}</message>`);
const propose = '<propose xmlns="urn:xmpp:jingle-message:0" id="c1"><description xmlns="urn:xmpp:jingle:apps:rtp:1" media="audio"/></propose>';
const store = '<store xmlns="urn:xmpp:hints"/>';

describe('XEP-0353 call messages', () => {
  test('every action of :0 and of :1 (XEP-0353 0.4, 0.5) is recognised; other elements of those namespaces are not', () => {
    for (const ns of ['urn:xmpp:jingle-message:0', 'urn:xmpp:jingle-message:1'])
      for (const action of ['propose', 'ringing', 'proceed', 'accept', 'reject', 'retract', 'finish']) assert.equal(jingleMessageAction(msg(`<${action} xmlns="${ns}" id="c1"/>`))?.name, action);
    assert.equal(jingleMessageAction(msg('<bogus xmlns="urn:xmpp:jingle-message:0" id="c1"/>')), undefined);
    assert.equal(jingleMessageAction(msg('<propose xmlns="urn:xmpp:jingle:1" id="c1"/>')), undefined);
    assert.equal(jingleMessageAction(msg('<body>propose</body>')), undefined);
  });

  test('are eligible for carbons whatever their type (XEP-0353 §5), unless <private/> or <no-copy/> says otherwise', () => {
    assert.ok(eligibleForCarbons(msg(propose + store, 'chat')));
    assert.ok(eligibleForCarbons(msg(propose + store)));
    assert.ok(!eligibleForCarbons(msg(propose + '<no-copy xmlns="urn:xmpp:hints"/>')));
    assert.ok(!eligibleForCarbons(msg(propose + '<private xmlns="urn:xmpp:carbons:2"/>')));
    assert.ok(!eligibleForCarbons(msg(propose, 'headline')));
    assert.ok(!eligibleForCarbons(msg('<active xmlns="http://jabber.org/protocol/chatstates"/>')));
  });
});

describe('XEP-0334 hints', () => {
  test('<store/> archives a message without a body; <no-permanent-store/> and <no-store/> keep one with a body out', () => {
    assert.ok(isArchivable(msg(propose + store, 'chat')));
    assert.ok(isArchivable(msg(propose + store)));
    assert.ok(!isArchivable(msg(propose, 'chat')), 'no body, no hint: not archived, as before');
    assert.ok(!isArchivable(msg('<body>hi</body><no-permanent-store xmlns="urn:xmpp:hints"/>', 'chat')));
    assert.ok(!isArchivable(msg('<body>hi</body><no-store xmlns="urn:xmpp:hints"/>', 'chat')));
    assert.ok(!isArchivable(msg(propose + store, 'error')), '§4.4: not an error');
    assert.ok(!isArchivable(msg(propose + store, 'groupchat')), 'room messages go to the room archive');
    assert.ok(isArchivable(msg('<body>hi</body>', 'chat')));
  });

  test('offline storage keeps what <store/> asks for, nothing with <no-store/>', () => {
    const chatState = '<active xmlns="http://jabber.org/protocol/chatstates"/>';
    assert.equal(offlineCopy(msg(chatState, 'chat'), 'localhost'), undefined);
    assert.ok(offlineCopy(msg(chatState + store, 'chat'), 'localhost'));
    assert.equal(offlineCopy(msg('<body>hi</body><no-store xmlns="urn:xmpp:hints"/>', 'chat'), 'localhost'), undefined);
    assert.ok(offlineCopy(msg('<body>hi</body><no-permanent-store xmlns="urn:xmpp:hints"/>', 'chat'), 'localhost'), 'no-permanent-store still allows offline delivery');
    assert.ok(offlineCopy(msg(propose + store), 'localhost')?.getChild('delay', 'urn:xmpp:delay'));
  });
});
