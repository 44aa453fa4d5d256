// Pure parts of the components module (README "Components"): the XEP-0114 handshake digest, which
// declarations can serve, secrets inside the components list, and webhook answers.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { handshakeDigest, handshakeMatches } from '../../lib/extensions/components/handshake.ts';
import { type ComponentDeclaration, ComponentsSchema, componentsProblems, declarationProblem, parentDomains } from '../../lib/extensions/components/settings.ts';
import { replyStanzas } from '../../lib/extensions/components/webhook.ts';
import { InvalidTenantError, redactSecrets, restoreSecrets, secretPaths } from '../../lib/store/tenant-schema.ts';

const blocks = [{ key: 'components', schema: ComponentsSchema }];

test('handshake: lower-case hex SHA-1 of stream id + secret (XEP-0114 §3), checked case-insensitively', () => {
  // The vector of xmpp-parsers' component tests, computed independently (Python hashlib).
  assert.equal(handshakeDigest('sid', '123456'), '9accec263ab84a43c6037ccf7cd48cb1d3f6df8e');
  assert.ok(handshakeMatches('sid', '123456', '9ACCEC263AB84A43C6037CCF7CD48CB1D3F6DF8E'));
  assert.ok(handshakeMatches('sid', '123456', ' 9accec263ab84a43c6037ccf7cd48cb1d3f6df8e\n'));
  assert.ok(!handshakeMatches('sid', '1234567', '9accec263ab84a43c6037ccf7cd48cb1d3f6df8e'));
  assert.ok(!handshakeMatches('other', '123456', '9accec263ab84a43c6037ccf7cd48cb1d3f6df8e'));
  assert.ok(!handshakeMatches('sid', '123456', ''));
  assert.ok(!handshakeMatches('sid', '123456', '9accec'));
});

test('a component serves only at a subdomain of its tenant, with what its kind needs', () => {
  const c = (fields: Partial<ComponentDeclaration>): ComponentDeclaration => ({ domain: 'bot.acme.example', kind: 'connected', enabled: true, secret: 'long-enough', ...fields });
  assert.equal(declarationProblem('acme.example', c({})), undefined);
  assert.equal(declarationProblem('acme.example', c({ domain: 'a.b.acme.example' })), undefined);
  assert.match(declarationProblem('acme.example', c({ domain: 'acme.example' }))!, /not a subdomain/);
  assert.match(declarationProblem('acme.example', c({ domain: 'bot.other.example' }))!, /not a subdomain/);
  assert.match(declarationProblem('acme.example', c({ domain: 'notacme.example' }))!, /not a subdomain/);
  assert.match(declarationProblem('acme.example', c({ secret: undefined }))!, /needs a secret/);
  assert.match(declarationProblem('acme.example', c({ kind: 'webhook', secret: undefined, url: 'https://x.example/h' }))!, /signingSecret/);
  assert.deepEqual(componentsProblems({ domain: 'acme.example', enabled: true, components: [c({}), c({})] }), ['bot.acme.example is declared twice']);
  assert.deepEqual(parentDomains('a.bot.acme.example'), ['bot.acme.example', 'acme.example', 'example']);
});

test('secrets in the components list are shown as "(set)" and kept by domain when written back in another order', () => {
  assert.deepEqual(secretPaths(blocks).filter((p) => p.startsWith('components')), ['components[domain].secret', 'components[domain].signingSecret']);
  const current = {
    domain: 'acme.example',
    enabled: true,
    components: [
      { domain: 'a.acme.example', kind: 'connected', enabled: true, secret: 'secret-of-a' },
      { domain: 'h.acme.example', kind: 'webhook', enabled: true, url: 'https://h.example/', signingSecret: 'signing-of-h-123' },
    ],
  };
  const shown = redactSecrets(current, blocks);
  assert.deepEqual(shown.components.map((c) => [c.domain, 'secret' in c ? c.secret : c.signingSecret]), [['a.acme.example', '(set)'], ['h.acme.example', '(set)']]);
  assert.equal(current.components[0].secret, 'secret-of-a', 'the item itself is left as it was');
  const written = { ...shown, components: [...shown.components].reverse() };
  const restored = restoreSecrets(written, current, blocks) as typeof current;
  assert.deepEqual(restored.components.map((c) => ('secret' in c ? c.secret : c.signingSecret)), ['signing-of-h-123', 'secret-of-a']);
  // "(set)" for a component the server has no secret for: refused, naming it.
  const fresh = { ...shown, components: [...shown.components, { domain: 'new.acme.example', kind: 'connected', enabled: true, secret: '(set)' }] };
  assert.throws(() => restoreSecrets(fresh, current, blocks), (err: InvalidTenantError) => err.fields.some((f) => f.path === 'components[new.acme.example].secret'));
});

test("a webhook's answer holds zero or more stanzas at its top level", () => {
  assert.deepEqual(replyStanzas(''), []);
  assert.deepEqual(replyStanzas('  \n'), []);
  const two = replyStanzas('<message to="a@x" from="bot.x"><body>1</body></message>\n<iq type="result" id="i" to="a@x/r"/>');
  assert.deepEqual(two.map((s) => s.name), ['message', 'iq']);
  assert.equal(two[0].attrs.xmlns, undefined);
  assert.equal(two[0].getChildText('body'), '1');
  assert.throws(() => replyStanzas('<message>'));
});
