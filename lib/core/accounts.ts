// Accounts, shared by the admin API, the CLI and in-band registration (XEP-0077): passwords are
// checked (length, SASLprep) and become SCRAM salted keys for both hashes here and nowhere else.
import saslprep from '@mongodb-js/saslprep';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { deriveScramCredentials } from '../auth/scram.ts';
import { parseJID } from '../xmpp/jid.ts';
import { deletePartition } from '../store/partition.ts';
import type { UserStore } from '../store/users.ts';
import type { XmppServer } from './server.ts';

/** The longest password, in characters (Unicode code points), before SASLprep (README "Admin API"). */
export const MAX_PASSWORD_CHARS = 1024;

/** A password no account may have; the message says why, for the admin or the user who chose it. */
export class InvalidPasswordError extends Error {
  override name = 'InvalidPasswordError';
}

// RFC 5802 §2.2: SCRAM's Normalize() is SASLprep (RFC 4013) as a query, so unassigned code points
// are allowed, as lib/auth/scram.ts derives the keys; a password that passes here derives keys there.
const SASLPREP = { allowUnassigned: true };

/** Why `password` cannot be an account's password, or undefined if it can. */
export function passwordProblem(password: string): string | undefined {
  if (password === '') return 'the password is empty';
  // Counted before SASLprep, which would otherwise work through (and choke on) a huge string.
  if (password.length > 2 * MAX_PASSWORD_CHARS || [...password].length > MAX_PASSWORD_CHARS) return `the password is longer than ${MAX_PASSWORD_CHARS} characters`;
  const prepared = prepare(password);
  if (prepared === undefined) return saslprepRefusal(password);
  return prepared === '' ? EMPTY_ONCE_PREPARED : undefined;
}

const EMPTY_ONCE_PREPARED = 'the password is empty once SASLprep (RFC 4013 §2.1) removes the characters it maps to nothing';

/** SASLprep's output, or undefined when it refuses the string. */
function prepare(text: string): string | undefined {
  try {
    return saslprep(text, SASLPREP);
  } catch {
    return undefined;
  }
}

/**
 * Why SASLprep refused `password`: it maps to nothing (§2.1; the library throws rather than return
 * ''), the first prohibited character (§2.3), else the bidi rule (§2.4). A leading space, which
 * SASLprep keeps, tells a character mapped to nothing from a prohibited one.
 */
function saslprepRefusal(password: string): string {
  if (prepare(` ${password}`) === ' ') return EMPTY_ONCE_PREPARED;
  for (const c of password) {
    if (prepare(c) === undefined && prepare(` ${c}`) === undefined) {
      const code = (c.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0');
      return `the password contains U+${code}, which SASLprep (RFC 4013 §2.3) prohibits (control characters, among others)`;
    }
  }
  return 'the password mixes right-to-left and left-to-right text as SASLprep (RFC 4013 §2.4) forbids';
}

function usablePassword(password: string): string {
  const problem = passwordProblem(password);
  if (problem) throw new InvalidPasswordError(problem);
  return password;
}

function accountJid(jid: string) {
  const parsed = parseJID(jid);
  if (!parsed.local || parsed.resource) throw new Error(`${jid} is not an account address (user@domain)`);
  return parsed;
}

export function credentialsFor(password: string) {
  return { 'SHA-1': deriveScramCredentials('SHA-1', password), 'SHA-256': deriveScramCredentials('SHA-256', password) };
}

/** Throws InvalidPasswordError for a password passwordProblem refuses, UserExistsError for a taken name. */
export async function addUser(users: UserStore, jid: string, password: string): Promise<void> {
  const { local, domain } = accountJid(jid);
  await users.create({ domain, username: local, createdAt: Date.now(), scram: credentialsFor(usablePassword(password)) });
}

/** False if there is no such account; throws InvalidPasswordError for a password passwordProblem refuses. */
export async function setPassword(users: UserStore, jid: string, password: string): Promise<boolean> {
  const { local, domain } = accountJid(jid);
  return users.setCredentials(domain, local, credentialsFor(usablePassword(password)));
}

/**
 * What an account keeps besides its user item: the partitions `<prefix>#<bare JID>` its tenant's
 * modules declare (roster, offline messages, archive, vCard, private data, …; docs/modules.md
 * "Storage"). The session entries are not among them: they end with the sessions.
 */
export interface AccountData {
  db: DynamoDBDocumentClient;
  table: string;
  prefixes: readonly string[];
}

/** The account data of a server's modules. */
export function accountDataOf(server: Pick<XmppServer, 'db' | 'table' | 'registry'>): AccountData {
  return { db: server.db, table: server.table, prefixes: server.registry.accountPartitions() };
}

/**
 * Deletes an account, then everything it kept (`data`), so that a new account of the same name
 * starts empty. False if there was no such account (its data is deleted all the same: a removal that
 * failed half-way is finished by trying again).
 */
export async function removeUser(users: UserStore, jid: string, data?: AccountData): Promise<boolean> {
  const { local, domain } = accountJid(jid);
  const removed = await users.remove(domain, local);
  for (const prefix of data?.prefixes ?? []) {
    if (prefix !== 'sessions') await deletePartition(data!.db, data!.table, `${prefix}#${local}@${domain}`);
  }
  return removed;
}
