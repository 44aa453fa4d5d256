// `xmpp-edge room …` (README "Meeting rooms (MUC)"): the MUC module's CLI commands, run with a server
// over the table the user named, through the same code paths as the admin API and XMPP clients, so
// occupants of a running server are told of each change.
import type { Command } from 'commander';
import { type CliCommand, OperatorError } from '../../core/modules.ts';
import type { XmppServer } from '../../core/server.ts';
import { tryParseJID } from '../../xmpp/jid.ts';
import { configureRoom, createRoom, listRooms, mucContext, removeRoom, setAffiliation, showRoom } from './operations.ts';
import { type Ctx, mucOf } from './service.ts';

const SETTINGS_HELP =
  'settings: name, description, lang, persistent, public, password, passwordProtected, membersOnly, moderated, maxUsers, whois (moderators|anyone), changeSubject, allowInvites, allowPm (anyone|participants|moderators|none), logging, archiving, historyFetch';

/** key=value settings, as strings the room configuration checks. */
function settings(pairs: string[]): Record<string, string> {
  return Object.fromEntries(
    pairs.map((p) => {
      const i = p.indexOf('=');
      if (i < 1) throw new OperatorError(400, 'invalid-request', `invalid setting "${p}": expected key=value, e.g. persistent=true`);
      return [p.slice(0, i), p.slice(i + 1)];
    }),
  );
}

/** The MUC context that the first argument names: a room JID (room@service) or, for list, a tenant. */
async function contextOf(server: XmppServer, where: string, target: string): Promise<Ctx> {
  if (!where.includes('@')) {
    const jid = tryParseJID(where);
    if (!jid || jid.local || jid.resource) throw new OperatorError(400, 'invalid-domain', `invalid domain "${where}": expected a domain such as localhost or example.com`);
    return mucContext(server, jid.domain);
  }
  const service = where.slice(where.indexOf('@') + 1);
  const ctx = await mucOf(server)?.contextOfService(service);
  if (!ctx) throw new OperatorError(404, 'muc-not-found', `${service} is not a MUC service here (${target}): expected <room>@conference.<tenant>, or the tenant's muc.subdomain`);
  return ctx;
}

export const roomCommands: CliCommand = {
  name: 'room',
  description: 'manage Multi-User Chat rooms (XEP-0045); occupants of a running server are told of each change',
  register(group, { withServer, out, err }) {
    const room = group as Command;
    const withRoom = <A extends [string, ...unknown[]]>(fn: (ctx: Ctx, ...args: A) => Promise<void>) =>
      withServer<A>(async (server, target, ...args) => fn(await contextOf(server, args[0], target), ...args));
    const collect = (value: string, previous: string[] = []) => [...previous, value];

    room
      .command('list <domain>')
      .description("print a tenant's rooms: JID, name, public/hidden, persistent/temporary")
      .action(
        withRoom(async (ctx) => {
          const rooms = await listRooms(ctx);
          for (const r of rooms) out(`${r.jid}\t${r.name}\t${r.public ? 'public' : 'hidden'}\t${r.persistent ? 'persistent' : 'temporary'}${r.locked ? '\tlocked' : ''}\n`);
          if (!rooms.length) err(`xmpp-edge: no rooms at ${ctx.service}\n`);
        }),
      );
    room
      .command('create <room-jid> [settings...]')
      .description(`create a room, persistent unless persistent=false (${SETTINGS_HELP})`)
      .option('--owner <jid>', 'an owner (repeatable)', collect)
      .action(
        withRoom(async (ctx, jid: string, pairs: string[], o: { owner?: string[] }) => {
          const view = await createRoom(ctx, jid, { owners: o.owner, config: settings(pairs) });
          out(`created ${view.jid}\n`);
        }),
      );
    room
      .command('show <room-jid>')
      .description('print a room as JSON: configuration, affiliations, occupants')
      .action(
        withRoom(async (ctx, jid: string) => {
          out(`${JSON.stringify(await showRoom(ctx, jid), null, 2)}\n`);
        }),
      );
    room
      .command('configure <room-jid> <settings...>')
      .description(`change settings of a room; occupants get the XEP-0045 §10.2.1 notices (${SETTINGS_HELP})`)
      .action(
        withRoom(async (ctx, jid: string, pairs: string[]) => {
          const view = await configureRoom(ctx, jid, settings(pairs));
          out(`configured ${view.jid}\n`);
        }),
      );
    room
      .command('destroy <room-jid>')
      .description('destroy a room; each occupant is told, with the reason and alternate venue if given')
      .option('--reason <text>', 'why')
      .option('--alternate <room-jid>', 'where the discussion continues')
      .action(
        withRoom(async (ctx, jid: string, o: { reason?: string; alternate?: string }) => {
          await removeRoom(ctx, jid, o);
          out(`destroyed ${jid}\n`);
        }),
      );
    room
      .command('affiliation <room-jid> <jid> <affiliation>')
      .description("set a user's affiliation: owner, admin, member, outcast (ban) or none")
      .option('--reason <text>', 'why (shown to a banned user)')
      .option('--nick <nick>', 'reserved nickname of a member')
      .action(
        withRoom(async (ctx, jid: string, userJid: string, affiliation: string, o: { reason?: string; nick?: string }) => {
          await setAffiliation(ctx, jid, userJid, affiliation, o);
          out(`${userJid} is now ${affiliation} of ${jid}\n`);
        }),
      );
  },
};
