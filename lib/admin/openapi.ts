// OpenAPI 3.1 description of the admin API (served at /api/openapi.json).

const json = (schema: unknown) => ({ content: { 'application/json': { schema } } });
const error = { description: 'error', ...json({ $ref: '#/components/schemas/Error' }) };
const domain = { name: 'domain', in: 'path', required: true, schema: { type: 'string' }, description: 'the tenant (XMPP domain)' };
const username = { name: 'username', in: 'path', required: true, schema: { type: 'string' }, description: 'local part of the account' };

function op(summary: string, responses: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return { summary, responses: { ...responses, '400': error, '401': error, '404': error }, ...extra };
}

export const openApiDocument = {
  openapi: '3.1.0',
  info: { title: 'xmpp-edge admin API', version: '1', description: 'Tenants, accounts, sessions and stanzas. Send `Authorization: Bearer <token>` (locally the token `npm start` prints; in AWS the API is IAM-authorised).' },
  servers: [{ url: '/api' }],
  security: [{ bearer: [] }],
  components: {
    securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
    schemas: {
      Error: { type: 'object', properties: { error: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' } }, required: ['code', 'message'] } } },
      Tenant: {
        type: 'object',
        required: ['domain', 'enabled'],
        properties: {
          domain: { type: 'string' },
          enabled: { type: 'boolean' },
          loginMethods: { type: 'array', items: { enum: ['password', 'jwt', 'token'] } },
          jwt: { type: 'object', description: 'secret, keys, jwksUrl, algorithms, issuer, audience, usernameClaim, clockToleranceSeconds' },
          tokens: { type: 'object', description: 'secret, accessValiditySeconds, refreshValiditySeconds' },
          registration: { enum: ['open', 'closed'] },
          limits: { type: 'object', properties: { sessionsPerUser: { type: 'integer' }, maxStanzaBytes: { type: 'integer' }, stanzasPerSecond: { type: 'number' }, roomsPerUser: { type: 'integer' } } },
          features: { type: 'array', items: { type: 'string' } },
          federation: { type: 'array', items: { type: 'string' } },
          labels: { type: 'object', additionalProperties: { type: 'string' } },
        },
      },
    },
  },
  paths: {
    '/tenants': {
      get: op('List tenants', { '200': { description: 'domains', ...json({ type: 'object', properties: { tenants: { type: 'array', items: { type: 'string' } } } }) } }),
      post: op('Create a tenant', { '201': { description: 'created', ...json({ $ref: '#/components/schemas/Tenant' }) }, '409': error }, { requestBody: json({ $ref: '#/components/schemas/Tenant' }) }),
    },
    '/tenants/{domain}': {
      parameters: [domain],
      get: op('Read a tenant', { '200': { description: 'tenant', ...json({ $ref: '#/components/schemas/Tenant' }) } }),
      patch: op('Change fields of a tenant', { '200': { description: 'tenant', ...json({ $ref: '#/components/schemas/Tenant' }) } }, { requestBody: json({ $ref: '#/components/schemas/Tenant' }) }),
      delete: op('Delete a tenant (its sessions close with host-gone); ?purge=true also deletes all its data in the background', { '202': { description: 'deleted' } }, { parameters: [{ name: 'purge', in: 'query', schema: { type: 'boolean' } }] }),
    },
    '/tenants/{domain}/disable': { parameters: [domain], post: op('Disable a tenant: logins refused, live sessions closed with host-gone', { '200': { description: 'tenant' } }) },
    '/tenants/{domain}/enable': { parameters: [domain], post: op('Enable a tenant', { '200': { description: 'tenant' } }) },
    '/tenants/{domain}/purge': { parameters: [domain], get: op('Progress of a purge', { '200': { description: 'job' } }) },
    '/tenants/{domain}/users': {
      parameters: [domain],
      get: op('List accounts', { '200': { description: 'usernames' } }),
      post: op('Create an account', { '201': { description: 'created' }, '409': error }, { requestBody: json({ type: 'object', required: ['username', 'password'], properties: { username: { type: 'string' }, password: { type: 'string' } } }) }),
    },
    '/tenants/{domain}/users/{username}': { parameters: [domain, username], delete: op('Delete an account and close its sessions', { '204': { description: 'deleted' } }) },
    '/tenants/{domain}/users/{username}/password': {
      parameters: [domain, username],
      put: op('Set a password', { '204': { description: 'changed' } }, { requestBody: json({ type: 'object', required: ['password'], properties: { password: { type: 'string' } } }) }),
    },
    '/tenants/{domain}/users/{username}/sessions': { parameters: [domain, username], delete: op('Kick: close every session of the account', { '200': { description: 'closed count' } }) },
    '/tenants/{domain}/users/{username}/tokens/revoke': { parameters: [domain, username], post: op('Revoke the refresh tokens issued to the account', { '204': { description: 'revoked' } }) },
    '/tenants/{domain}/sessions': { parameters: [domain], get: op('List open connections and sessions', { '200': { description: 'sessions' } }) },
    '/tenants/{domain}/stanzas': {
      parameters: [domain],
      post: op(
        'Send a stanza as a user of the tenant (`from`, bare or full JID) or as the server (no `from`); returns what the server sent back to the sender',
        { '200': { description: 'replies', ...json({ type: 'object', properties: { replies: { type: 'array', items: { type: 'string' } } } }) } },
        { requestBody: json({ type: 'object', required: ['stanza'], properties: { stanza: { type: 'string', description: 'one XML stanza' }, from: { type: 'string' } } }) },
      ),
    },
  },
} as const;
