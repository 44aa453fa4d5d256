// `xmpp-edge events …` (README "Event push"): show, set and clear a tenant's events block, list its dead
// letters; the same checks as the admin API (operations.ts).
import type { Command } from 'commander';
import { type CliCommand, OperatorError } from '../../core/modules.ts';
import { eventPushOf } from './runtime.ts';
import { clearEvents, listDeadLetters, setEvents, showEvents } from './operations.ts';
import { EVENT_KINDS } from './schema.ts';

function kindsOf(list: string): string[] {
  return list.split(',').map((k) => k.trim()).filter(Boolean);
}

export const eventCommands: CliCommand = {
  name: 'events',
  description: "manage a tenant's event push (README \"Event push\"): kinds, target, dead letters",
  register(group, { withServer, out, err }) {
    const events = group as Command;
    events
      .command('show <domain>')
      .description("print the tenant's events block as JSON (the webhook secret reads \"(set)\")")
      .action(
        withServer(async (server, _t, domain: string) => {
          const block = await showEvents(server, domain);
          if (!block) err(`xmpp-edge: ${domain} pushes no events\n`);
          else out(JSON.stringify(block, null, 2) + '\n');
        }),
      );
    events
      .command('set <domain>')
      .description(`set the events block: --kinds and one target (--webhook with --secret, --sns or --eventbridge). Kinds: ${EVENT_KINDS.join(', ')}, or all`)
      .requiredOption('--kinds <list>', 'comma-separated kinds, or "all"')
      .option('--webhook <url>', 'an https:// URL (http://127.0.0.1 on the local server)')
      .option('--secret <secret>', 'the webhook signing secret (at least 16 characters)')
      .option('--sns <topic-arn>', 'an SNS topic ARN on the deployment allow-list')
      .option('--eventbridge <bus-arn>', 'an EventBridge bus ARN on the deployment allow-list')
      .option('--include-body', 'message events carry the body text')
      .action(
        withServer(async (server, where, domain: string, opts: { kinds: string; webhook?: string; secret?: string; sns?: string; eventbridge?: string; includeBody?: boolean }) => {
          const targets = [opts.webhook, opts.sns, opts.eventbridge].filter((x) => x !== undefined);
          if (targets.length !== 1) throw new OperatorError(400, 'invalid-request', 'name exactly one target: --webhook <url>, --sns <topic-arn> or --eventbridge <bus-arn>');
          const target = opts.webhook !== undefined ? { webhook: { url: opts.webhook, secret: opts.secret } } : opts.sns !== undefined ? { sns: { topicArn: opts.sns } } : { eventbridge: { busArn: opts.eventbridge } };
          const kinds = opts.kinds.trim() === 'all' ? [...EVENT_KINDS] : kindsOf(opts.kinds);
          const rt = eventPushOf(server);
          // A local table (--endpoint) is the local server's: http://127.0.0.1 receivers are allowed there.
          // The deployment's allow-list of ARNs is what its functions get as EVENT_TARGET_ARNS; the CLI
          // checks against the same variable, so an operator sets it as the stack does.
          rt.configure({ allowLoopbackHttp: / at https?:\/\//.test(where) });
          const block = await setEvents(server, domain, { kinds, target, ...(opts.includeBody ? { includeBody: true } : {}) }).catch((e: unknown) => {
            if (e instanceof OperatorError && e.code === 'target-not-allowed') throw new OperatorError(400, e.code, `${e.message} (the CLI reads the list from EVENT_TARGET_ARNS)`);
            throw e;
          });
          out(JSON.stringify(block, null, 2) + '\n');
        }),
      );
    events
      .command('clear <domain>')
      .description('remove the events block: no more events are pushed')
      .action(
        withServer(async (server, _t, domain: string) => {
          out((await clearEvents(server, domain)) ? `${domain}: events cleared\n` : `${domain}: no events block\n`);
        }),
      );
    events
      .command('dead-letters <domain>')
      .description('list webhook requests given up after their last attempt (kept 14 days), newest first, one JSON object a line')
      .option('--limit <n>', 'at most this many (1–100)', (v) => Number(v))
      .action(
        withServer(async (server, _t, domain: string, opts: { limit?: number }) => {
          const { deadLetters } = await listDeadLetters(server, eventPushOf(server), domain, { limit: opts.limit ?? 50 });
          for (const d of deadLetters) out(JSON.stringify(d) + '\n');
          if (!deadLetters.length) err(`xmpp-edge: no dead letters for ${domain}\n`);
        }),
      );
  },
};
