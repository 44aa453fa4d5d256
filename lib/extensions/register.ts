// XEP-0077 In-Band Registration, for tenants whose item says `registration: 'open'`: creating an
// account before authentication (§3.1), changing the password (§3.3) and cancelling the account
// (§3.2) once logged in. Accounts get SCRAM keys like any other (lib/core/accounts.ts).
import { StanzaError, StreamError } from '../xmpp/errors.ts';
import { JIDError, makeJID } from '../xmpp/jid.ts';
import { type Element, xml } from '../xmpp/xml.ts';
import { InvalidPasswordError, accountDataOf, addUser, removeUser, setPassword } from '../core/accounts.ts';
import { UserExistsError } from '../store/users.ts';
import type { ConnectionRecord } from '../store/connections.ts';
import type { IqEvent } from '../core/events.ts';
import type { XmppModule } from '../core/modules.ts';
import type { XmppServer } from '../core/server.ts';

const NS_REGISTER = 'jabber:iq:register';
const NS_FEATURE = 'http://jabber.org/features/iq-register';

async function registrationOpen(server: XmppServer, domain: string | undefined): Promise<boolean> {
  return !!domain && (await server.tenants.get(domain))?.registration === 'open';
}

function fields(query: Element): { username?: string; password?: string } {
  return { username: query.getChildText('username') ?? undefined, password: query.getChildText('password') ?? undefined };
}

/** §3.1: the fields to fill (get) and the registration itself (set), before authentication. */
async function registerGet(server: XmppServer, rec: ConnectionRecord): Promise<Element> {
  if (!(await registrationOpen(server, rec.domain))) throw new StanzaError('service-unavailable');
  return xml('query', { xmlns: NS_REGISTER }, xml('instructions', {}, 'Choose a username and password.'), xml('username'), xml('password'));
}

async function registerSet(server: XmppServer, rec: ConnectionRecord, _iq: Element, query: Element): Promise<true> {
  if (!(await registrationOpen(server, rec.domain))) throw new StanzaError('service-unavailable');
  const { username, password } = fields(query);
  // §3.1: missing data is not-acceptable; a taken username is conflict.
  if (!username || !password) throw new StanzaError('not-acceptable', 'username and password are required');
  let jid;
  try {
    jid = makeJID(username, rec.domain!);
  } catch (err) {
    if (err instanceof JIDError) throw new StanzaError('jid-malformed', 'the username is not a valid JID local part');
    throw err;
  }
  try {
    await addUser(server.users, jid.toString(), password);
  } catch (err) {
    if (err instanceof UserExistsError) throw new StanzaError('conflict', 'the username is taken');
    if (err instanceof InvalidPasswordError) throw new StanzaError('not-acceptable', err.message);
    throw err;
  }
  server.log.info({ jid: jid.toString(), connectionId: rec.id }, 'account registered in-band');
  return true;
}

/** §3.2.1 / §3.3: a logged-in user asks what is registered, changes the password or cancels. */
async function accountGet({ origin }: IqEvent): Promise<Element> {
  return xml('query', { xmlns: NS_REGISTER }, xml('registered'), xml('username', {}, origin.jid.local), xml('password'));
}

async function accountSet({ server, origin, child }: IqEvent): Promise<true> {
  const bare = origin.jid.bare().toString();
  if (child.getChild('remove')) {
    // §3.2: the account goes, and with it every session of it.
    await removeUser(server.users, bare, accountDataOf(server));
    server.log.info({ jid: bare }, 'account cancelled in-band');
    const sessions = await server.sessions.list(bare);
    const others = sessions.filter((s) => s.connectionId !== origin.connectionId);
    for (const s of others) await server.endConnection(s.connectionId, 'account removed', { streamError: new StreamError('not-authorized', 'account removed'), endpoint: s.endpoint });
    await server.send(origin, xml('iq', { xmlns: 'jabber:client', type: 'result', id: (child.parent as Element).attrs.id, to: origin.jid.toString() }));
    await server.endConnection(origin.connectionId, 'account removed', { streamError: new StreamError('not-authorized', 'account removed'), endpoint: origin.endpoint });
    return true;
  }
  const { username, password } = fields(child);
  if (!username || !password) throw new StanzaError('bad-request', 'username and password are required');
  if (makeJID(username, origin.jid.domain).local !== origin.jid.local) throw new StanzaError('not-authorized', 'you can only change your own password');
  try {
    await setPassword(server.users, bare, password);
  } catch (err) {
    if (err instanceof InvalidPasswordError) throw new StanzaError('not-acceptable', err.message);
    throw err;
  }
  return true;
}

export const register: XmppModule = {
  name: 'register',
  install(ctx) {
    ctx.addStreamFeature({
      stage: 'pre-auth',
      // XEP-0077 §8: announced only where registration is open.
      element: async (srv, rec) => ((await registrationOpen(srv, rec.domain)) ? xml('register', { xmlns: NS_FEATURE }) : undefined),
    });
    ctx.addPreAuthIq(`get/${NS_REGISTER}:query`, (srv, rec) => registerGet(srv, rec));
    ctx.addPreAuthIq(`set/${NS_REGISTER}:query`, registerSet);
    ctx.hook(`iq-get/self/${NS_REGISTER}:query`, accountGet);
    ctx.hook(`iq-set/self/${NS_REGISTER}:query`, accountSet);
    ctx.hook(`iq-get/host/${NS_REGISTER}:query`, accountGet);
    ctx.hook(`iq-set/host/${NS_REGISTER}:query`, accountSet);
  },
};
