// Accounts, shared by the admin API, the CLI and in-band registration (XEP-0077): passwords become
// SCRAM salted keys for both hashes here and nowhere else.
import { deriveScramCredentials } from '../auth/scram.ts';
import { parseJID } from '../xmpp/jid.ts';
import type { UserStore } from '../store/users.ts';

function accountJid(jid: string) {
  const parsed = parseJID(jid);
  if (!parsed.local || parsed.resource) throw new Error(`${jid} is not an account address (user@domain)`);
  return parsed;
}

export function credentialsFor(password: string) {
  return { 'SHA-1': deriveScramCredentials('SHA-1', password), 'SHA-256': deriveScramCredentials('SHA-256', password) };
}

export async function addUser(users: UserStore, jid: string, password: string): Promise<void> {
  const { local, domain } = accountJid(jid);
  await users.create({ domain, username: local, createdAt: Date.now(), scram: credentialsFor(password) });
}

export async function setPassword(users: UserStore, jid: string, password: string): Promise<boolean> {
  const { local, domain } = accountJid(jid);
  return users.setCredentials(domain, local, credentialsFor(password));
}

export async function removeUser(users: UserStore, jid: string): Promise<boolean> {
  const { local, domain } = accountJid(jid);
  return users.remove(domain, local);
}
