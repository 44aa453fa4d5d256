// What each function may do on the global table. Action lists are written out instead of
// grantReadWriteData(), which also allows Scan, DescribeTable and the stream reads none of them use.
import { SWEEP_INDEX, TENANT_INDEX } from '../store/dynamo.ts';
import type { TableAccess } from './xmpp-function.ts';

/**
 * $connect records the new connection (XmppServer.connect), after counting it in its source address's
 * window with one conditional UpdateItem (the connect cap, docs/architecture.md "Metrics and usage").
 */
export const CONNECT_ACCESS: TableAccess = { actions: ['dynamodb:PutItem', 'dynamodb:UpdateItem'] };

/**
 * Everything a stream does between its first frame and its end: negotiation state, SASL, binding,
 * roster, presence, offline storage, session cleanup. All single-item or batch calls and Queries on
 * the table's own keys; no index, no Scan.
 */
export const STREAM_ACCESS: TableAccess = {
  actions: [
    'dynamodb:GetItem',
    'dynamodb:BatchGetItem',
    'dynamodb:Query',
    'dynamodb:PutItem',
    'dynamodb:UpdateItem',
    'dynamodb:DeleteItem',
    'dynamodb:BatchWriteItem',
  ],
};

/**
 * Ending sessions someone else decided to end (a disabled or deleted tenant): find the tenant's
 * connections in this region through the tenant index, then what ending a connection does (delete
 * the connection and the session entry, tell contacts, read their sessions). No Scan. The one kind
 * of new item: a stream-managed session's unacknowledged messages go to offline storage (PutItem).
 */
export const SESSION_END_ACCESS: TableAccess = {
  actions: ['dynamodb:GetItem', 'dynamodb:BatchGetItem', 'dynamodb:Query', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem'],
  indexes: [TENANT_INDEX],
};

/**
 * The sweeper ends connections whose $disconnect never came, and detached stream-managed sessions
 * past their resumption time, found through this region's sweep partitions.
 */
export const SWEEPER_ACCESS: TableAccess = { actions: SESSION_END_ACCESS.actions, indexes: [SWEEP_INDEX] };

/**
 * In the table's home region the sweeper also purges deleted tenants (lib/admin/purge.ts): Query each
 * account's partitions, BatchWrite their deletes, Put the job's progress, Delete the account items.
 */
export const SWEEPER_PURGING_ACCESS: TableAccess = {
  actions: [...new Set([...SESSION_END_ACCESS.actions, 'dynamodb:PutItem', 'dynamodb:BatchWriteItem'])],
  indexes: [SWEEP_INDEX],
};

/**
 * The admin API: whatever a stream does (it sends stanzas as users, kicks sessions, edits tenants,
 * accounts and rooms) and the tenant index, which lists a tenant's sessions in this region.
 */
export const ADMIN_ACCESS: TableAccess = { actions: STREAM_ACCESS.actions, indexes: [TENANT_INDEX] };
