// OpenAPI 3.1 description of the admin API (served at /api/openapi.json). The Tenant component is the
// tenant item's JSON Schema itself, with the setting blocks of the modules the server runs.
import { Type } from '@sinclair/typebox';
import { MAX_PASSWORD_CHARS } from '../core/accounts.ts';
import { MAX_TENANT_ITEM_BYTES, REDACTED, type SettingBlock, tenantItemSchema } from '../store/tenant-schema.ts';
import { EVENT_VERSION, EventsSettingsSchema, PushEventSchema, WebhookBodySchema } from '../extensions/event-push/schema.ts';
import { DEAD_LETTER_TTL_MS } from '../webhooks/store.ts';
import { MAX_BODY_BYTES, MAX_JSON_DEPTH } from './request-limits.ts';

const json = (schema: unknown) => ({ content: { 'application/json': { schema } } });
const error = { description: 'error', ...json({ $ref: '#/components/schemas/Error' }) };
const domain = { name: 'domain', in: 'path', required: true, schema: { type: 'string' }, description: 'the tenant (XMPP domain)' };
const username = { name: 'username', in: 'path', required: true, schema: { type: 'string' }, description: 'local part of the account' };
const room = { name: 'room', in: 'path', required: true, schema: { type: 'string' }, description: 'the room name (local part of room@conference.<domain>) or its JID' };
const componentParam = { name: 'component', in: 'path', required: true, schema: { type: 'string' }, description: "the component's domain (bot.<domain>)" };
const roomJidParam = { name: 'jid', in: 'path', required: true, schema: { type: 'string' }, description: "a user's bare JID" };

function op(summary: string, responses: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return { summary, responses: { ...responses, '400': error, '401': error, '404': error, '413': error }, ...extra };
}

/** The document for a server whose tenant items have these setting blocks. */
export function openApiDocumentFor(blocks: readonly SettingBlock[]) {
  const tenant = tenantItemSchema(blocks);
  return {
    openapi: '3.1.0',
    info: {
      title: 'xmpp-edge admin API',
      version: '1',
      description: [
        'Tenants, accounts, sessions, stanzas and rooms. Send `Authorization: Bearer <token>` (locally the token `npm start` prints; in AWS the API is IAM-authorised); without it the answer is 401 before the body is read.',
        `Limits: a body of at most ${MAX_BODY_BYTES} bytes (413 payload-too-large), JSON nested at most ${MAX_JSON_DEPTH} levels (400 json-too-deep), a tenant item of at most ${MAX_TENANT_ITEM_BYTES} bytes as JSON, a password of at most ${MAX_PASSWORD_CHARS} characters that SASLprep (RFC 4013) accepts (400 invalid-password).`,
        `Secrets (fields marked x-secret in the Tenant schema: jwt.secret, jwt.keys, tokens.secret) are never returned: a secret that is set reads "${REDACTED}". Written back as "${REDACTED}" (PUT or PATCH of what GET returned), it keeps the stored value.`,
      ].join('\n\n'),
    },
    servers: [{ url: '/api' }],
    security: [{ bearer: [] }],
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: {
        Error: {
          type: 'object',
          properties: {
            error: {
              type: 'object',
              properties: {
                code: {
                  type: 'string',
                  description:
                    'invalid-json, json-too-deep, invalid-path (broken percent-encoding), invalid-domain (a path domain that cannot be a tenant), invalid-tenant, invalid-password, invalid-jid, unauthorized, payload-too-large, tenant-not-found, user-not-found, tenant-exists, user-exists, domain-conflict (the domain is, or its services would be, at another tenant\'s address), target-not-allowed (an events target this deployment does not publish to: an SNS/EventBridge ARN off its list, a webhook URL it refuses; on every route that writes a tenant item), …',
                },
                message: { type: 'string' },
                fields: {
                  type: 'array',
                  description: "invalid-tenant: each bad field ('limits.maxStanzaBytes') and why; nothing was written",
                  items: { type: 'object', properties: { path: { type: 'string' }, message: { type: 'string' } }, required: ['path', 'message'] },
                },
              },
              required: ['code', 'message'],
            },
          },
        },
        // Event push (README "Event push"): the tenant's block, and what receivers get.
        EventsSettings: EventsSettingsSchema,
        PushEvent: {
          ...PushEventSchema,
          description: `An event of event push, schema version ${EVENT_VERSION} (\`version\`). Delivered as a webhook body (WebhookEventBody: \`{"version": ${EVENT_VERSION}, "events": [...]}\`, oldest first), one SNS message each (attributes \`kind\`, \`tenant\`; on a FIFO topic grouped by tenant, deduplicated by \`id\`), or one EventBridge event each (source \`xmpp-edge\`, detail-type the kind, detail the event). Webhook requests carry X-XMPP-Edge-Timestamp (unix seconds) and X-XMPP-Edge-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + raw body)>, X-XMPP-Edge-Delivery (the same id on every attempt) and X-XMPP-Edge-Attempt; refuse a timestamp more than 5 minutes off. Answer 2xx to accept; 5xx, 408, 429 or no answer within 5 s is retried (1, 2, 4, 8, 16 minutes later), any other status is a dead letter. A receiver may get an event twice (a retry after a slow answer): drop a repeated \`id\`.`,
        },
        WebhookEventBody: WebhookBodySchema,
        DeadLetter: {
          type: 'object',
          description: `A webhook request given up after its last attempt, kept ${DEAD_LETTER_TTL_MS / 86_400_000} days.`,
          properties: {
            id: { type: 'string', description: 'the X-XMPP-Edge-Delivery id' },
            tenant: { type: 'string' },
            source: { type: 'string', description: 'events, or component:<domain>' },
            url: { type: 'string' },
            body: { type: 'string', description: 'the request body as sent' },
            contentType: { type: 'string' },
            attempts: { type: 'integer' },
            firstAttemptAt: { type: 'integer', description: 'epoch milliseconds' },
            deadAt: { type: 'integer', description: 'epoch milliseconds' },
            lastError: { type: 'string', description: '"status 401", "timeout", "connection: ECONNREFUSED", "refused URL: …"' },
          },
        },
        RoomConfig: {
          type: 'object',
          description: 'Room settings (the muc#roomconfig form of XEP-0045 §10.2)',
          properties: {
            name: { type: 'string' },
            description: { type: 'string' },
            lang: { type: 'string' },
            persistent: { type: 'boolean' },
            public: { type: 'boolean' },
            passwordProtected: { type: 'boolean' },
            password: { type: 'string' },
            membersOnly: { type: 'boolean' },
            moderated: { type: 'boolean' },
            maxUsers: { type: 'integer', description: '0: the service maximum' },
            whois: { enum: ['moderators', 'anyone'] },
            changeSubject: { type: 'boolean' },
            allowInvites: { type: 'boolean' },
            allowPm: { enum: ['anyone', 'participants', 'moderators', 'none'] },
            logging: { type: 'boolean' },
            archiving: { type: 'boolean', description: 'XEP-0313 room archive (muc#roomconfig_enablearchiving); unset: on for persistent rooms' },
            historyFetch: { type: 'integer' },
          },
        },
        Room: {
          type: 'object',
          properties: {
            jid: { type: 'string' },
            locked: { type: 'boolean' },
            createdAt: { type: 'string', format: 'date-time' },
            config: { $ref: '#/components/schemas/RoomConfig' },
            subject: { type: 'string' },
            affiliations: { type: 'array', items: { type: 'object', properties: { jid: { type: 'string' }, affiliation: { type: 'string' }, nick: { type: 'string' }, reason: { type: 'string' } } } },
            occupants: { type: 'array', items: { type: 'object', properties: { nick: { type: 'string' }, role: { type: 'string' }, affiliation: { type: 'string' }, jids: { type: 'array', items: { type: 'string' } } } } },
          },
        },
        Usage: {
          type: 'object',
          description: 'A usage record: what the tenant used (absent fields are 0)',
          properties: {
            connectionMinutes: { type: 'number', description: 'minutes of WebSocket connections that opened a stream, counted when they end' },
            stanzas: { type: 'integer', description: 'stanzas from bound sessions' },
            messages: { type: 'integer', description: 'messages among them' },
            archiveBytes: { type: 'integer', description: 'bytes of messages archived (MAM)' },
          },
        },
        // Generated from the tenant item's schema (README "The tenant item"): what the API enforces.
        Tenant: tenant,
        TenantPatch: { ...Type.Partial(tenant), description: 'Fields to change; null removes one (JSON merge patch, RFC 7396). domain cannot change; createdAt and updatedAt are set by the server.' },
      },
    },
    paths: {
      '/tenants': {
        get: op('List tenants', { '200': { description: 'domains', ...json({ type: 'object', properties: { tenants: { type: 'array', items: { type: 'string' } } } }) } }),
        post: op('Create a tenant (checked as PUT is, 400 target-not-allowed included)', { '201': { description: 'created', ...json({ $ref: '#/components/schemas/Tenant' }) }, '400': error, '409': error }, { requestBody: json({ $ref: '#/components/schemas/Tenant' }) }),
      },
      '/tenants/{domain}': {
        parameters: [domain],
        get: op('Read a tenant', { '200': { description: 'tenant', ...json({ $ref: '#/components/schemas/Tenant' }) } }),
        put: op(
          `Replace a tenant's item (fields left out are removed; createdAt is kept; the domain is the path's); a secret written as "${REDACTED}" keeps its value. Checked against the schema (400 invalid-tenant) and this deployment (400 target-not-allowed: an events target it does not publish to)`,
          { '200': { description: 'tenant', ...json({ $ref: '#/components/schemas/Tenant' }) }, '400': error, '409': error },
          { requestBody: json({ $ref: '#/components/schemas/Tenant' }) },
        ),
        patch: op('Change fields of a tenant; the result is checked whole, as PUT does', { '200': { description: 'tenant', ...json({ $ref: '#/components/schemas/Tenant' }) }, '400': error, '409': error }, { requestBody: json({ $ref: '#/components/schemas/TenantPatch' }) }),
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
      '/tenants/{domain}/rooms': {
        parameters: [domain],
        get: op("List the tenant's rooms (Multi-User Chat)", { '200': { description: 'rooms' } }),
        post: op(
          'Create a room, unlocked and persistent unless config says otherwise',
          { '201': { description: 'created', ...json({ $ref: '#/components/schemas/Room' }) }, '409': error },
          { requestBody: json({ type: 'object', required: ['name'], properties: { name: { type: 'string' }, owners: { type: 'array', items: { type: 'string' } }, config: { $ref: '#/components/schemas/RoomConfig' } } }) },
        ),
      },
      '/tenants/{domain}/rooms/{room}': {
        parameters: [domain, room],
        get: op('Read a room: configuration, affiliations, occupants', { '200': { description: 'room', ...json({ $ref: '#/components/schemas/Room' }) } }),
        patch: op('Change room settings; occupants are notified (XEP-0045 §10.2.1)', { '200': { description: 'room', ...json({ $ref: '#/components/schemas/Room' }) } }, { requestBody: json({ $ref: '#/components/schemas/RoomConfig' }) }),
        delete: op('Destroy a room; each occupant is told, with the reason and alternate venue if given (XEP-0045 §10.9)', { '204': { description: 'destroyed' } }, {
          parameters: [
            { name: 'reason', in: 'query', schema: { type: 'string' } },
            { name: 'alternate', in: 'query', schema: { type: 'string' }, description: 'JID of an alternate venue' },
          ],
        }),
      },
      '/tenants/{domain}/rooms/{room}/affiliations': { parameters: [domain, room], get: op("List a room's affiliations", { '200': { description: 'affiliations' } }) },
      '/tenants/{domain}/rooms/{room}/affiliations/{jid}': {
        parameters: [domain, room, roomJidParam],
        put: op(
          "Set a user's affiliation (owner, admin, member, outcast, none); occupants are told, a banned one is removed",
          { '200': { description: 'room', ...json({ $ref: '#/components/schemas/Room' }) }, '409': error },
          { requestBody: json({ type: 'object', required: ['affiliation'], properties: { affiliation: { enum: ['owner', 'admin', 'member', 'outcast', 'none'] }, reason: { type: 'string' }, nick: { type: 'string' } } }) },
        ),
      },
      '/tenants/{domain}/events': {
        parameters: [domain],
        get: op("Read the tenant's event push block (the webhook secret reads \"(set)\"); null when it pushes no events", {
          '200': { description: 'the block', ...json({ type: 'object', properties: { events: { anyOf: [{ $ref: '#/components/schemas/EventsSettings' }, { type: 'null' }] } } }) },
        }),
        put: op(
          'Set the event push block: kinds and one target. An SNS topic or EventBridge bus must be on the deployment\'s list (400 target-not-allowed); a secret written as "(set)" keeps the stored one. Events are described by the PushEvent schema.',
          { '200': { description: 'the block as stored', ...json({ type: 'object', properties: { events: { $ref: '#/components/schemas/EventsSettings' } } }) } },
          { requestBody: json({ $ref: '#/components/schemas/EventsSettings' }) },
        ),
        delete: op('Remove the event push block: no more events', { '204': { description: 'removed (or there was none)' } }),
      },
      '/tenants/{domain}/dead-letters': {
        parameters: [domain],
        get: op(
          "List the tenant's webhook dead letters, newest first",
          { '200': { description: 'dead letters', ...json({ type: 'object', properties: { deadLetters: { type: 'array', items: { $ref: '#/components/schemas/DeadLetter' } }, next: { type: 'string', description: 'pass as `after` for the next page' } } }) } },
          {
            parameters: [
              { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 100 } },
              { name: 'after', in: 'query', schema: { type: 'string' } },
            ],
          },
        ),
      },
      '/tenants/{domain}/usage': {
        parameters: [domain],
        get: op(
          "The tenant's usage records (README \"Metrics and usage\"): one per UTC day that had any, and their sums",
          {
            '200': {
              description: 'usage',
              ...json({
                type: 'object',
                properties: {
                  domain: { type: 'string' },
                  from: { type: 'string', format: 'date' },
                  to: { type: 'string', format: 'date' },
                  days: { type: 'array', items: { type: 'object', properties: { day: { type: 'string', format: 'date' }, counts: { $ref: '#/components/schemas/Usage' } } } },
                  total: { $ref: '#/components/schemas/Usage' },
                },
              }),
            },
            '400': error,
          },
          {
            parameters: [
              { name: 'from', in: 'query', schema: { type: 'string', format: 'date' }, description: 'first UTC day, YYYY-MM-DD (default today)' },
              { name: 'to', in: 'query', schema: { type: 'string', format: 'date' }, description: 'last UTC day, inclusive (default from); at most 366 days' },
            ],
          },
        ),
      },
      '/tenants/{domain}/components': {
        parameters: [domain],
        get: op("List the tenant's XEP-0114 and webhook components (README \"Components\"); secrets read \"(set)\"", { '200': { description: 'components', ...json({ type: 'object', properties: { components: (tenant.properties.components as { type?: unknown }) ?? {} } }) } }),
      },
      '/tenants/{domain}/components/{component}': {
        parameters: [domain, componentParam],
        get: op('Read a component', { '200': { description: 'component' } }),
        put: op('Add or replace a component (kind defaults to connected, enabled to true); the tenant item is checked whole', { '200': { description: 'component' }, '409': error }, { requestBody: json({ type: 'object', description: 'the fields of a component (the tenant schema, components items); domain is the path' }) }),
        patch: op('Change fields of a component; null removes one', { '200': { description: 'component' }, '409': error }, { requestBody: json({ type: 'object' }) }),
        delete: op('Remove a component', { '204': { description: 'removed' } }),
      },
      '/tenants/{domain}/components/{component}/enable': { parameters: [domain, componentParam], post: op('Enable a component', { '200': { description: 'component' } }) },
      '/tenants/{domain}/components/{component}/disable': { parameters: [domain, componentParam], post: op('Disable a component: refused at handshake, disconnected at its next stanza, stanzas to it get service-unavailable', { '200': { description: 'component' } }) },
      '/metrics': {
        get: op('The per-tenant counters in the Prometheus text format (local server only; in AWS they are CloudWatch metrics)', {
          '200': { description: 'Prometheus text format 0.0.4', content: { 'text/plain': { schema: { type: 'string' } } } },
        }),
      },
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
  };
}
