// The `xmpp-edge` command line (README "CLI reference"). `start` runs the whole server on a laptop;
// `user …`, `tenant …`, `room …` work on DynamoDB through the same stores the server reads, so a
// password set here becomes SCRAM keys exactly as everywhere else and a tenant is checked against
// the same schema as the admin API's (README "The tenant item").
//
// runCli builds a fresh program per call, writes only to the streams it is given and returns the
// exit status, so tests run it in-process; bin/xmpp-edge.js is the launcher that owns the process.
// The local server (dynalite, the gateway) is loaded only by `start`.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { pino } from 'pino';
import { InvalidPasswordError, addUser, removeUser, setPassword } from '../lib/core/accounts.ts';
import { TenantPurger } from '../lib/admin/purge.ts';
import { revokeTokens } from '../lib/auth/access-tokens.ts';
import { createDynamoClient } from '../lib/store/dynamo.ts';
import { TenantStore } from '../lib/store/tenants.ts';
import { InvalidTenantError, type TenantRecord, redactSecrets, tenantDomain, validateTenantItem } from '../lib/store/tenant-schema.ts';
import { tenantWriteProblem } from '../lib/core/tenant-domains.ts';
import { eventPushOf } from '../lib/extensions/event-push/index.ts';
import { UsageRangeError, UsageStore, usageRange, usageReport } from '../lib/store/usage.ts';
import { USAGE_FIELDS, utcDay } from '../lib/metrics/metrics.ts';
import { defaultModules } from '../lib/extensions/index.ts';
import { OperatorError, accountPartitionsOf, settingBlocksOf } from '../lib/core/modules.ts';
import { UserExistsError, UserStore } from '../lib/store/users.ts';
import { parseJID } from '../lib/xmpp/jid.ts';
import { ManagementApi } from '../lib/core/management-api.ts';
import { XmppServer } from '../lib/core/server.ts';

/** The tenant item's blocks of the modules a server runs (README "The tenant item"). */
const settingBlocks = settingBlocksOf(defaultModules);

const PACKAGE_VERSION: string = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version;
const DEFAULT_ENDPOINT = 'http://127.0.0.1:8000';
const DEFAULT_TABLE = 'xmpp-edge';
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** An error meant for the person at the terminal: printed as is, no stack. */
class CliError extends Error {}

function integer(min: number, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || n < min || n > max) throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}`);
    return n;
  };
}

/** A tenant name in its normal form, by the admin API's rule (README "The tenant item"). */
function domainName(value: string): string {
  const t = tenantDomain(value);
  if (t.error !== undefined) throw new CliError(`invalid domain "${value.slice(0, 100)}": ${t.error}; expected a domain such as localhost or example.com`);
  return t.domain;
}

/** An account address user@domain, normalized (RFC 7622). */
function accountAddress(value: string): { local: string; domain: string; jid: string } {
  let jid;
  try {
    jid = parseJID(value);
  } catch (err) {
    throw new CliError(`invalid JID "${value}": ${(err as Error).message}`);
  }
  if (!jid.local || jid.resource) throw new CliError(`invalid JID "${value}": expected an account address such as alice@localhost`);
  return { local: jid.local, domain: jid.domain, jid: `${jid.local}@${jid.domain}` };
}

interface TenantAddOptions {
  login?: string[];
  jwtSecret?: string;
  jwksUrl?: string;
  jwtIssuer?: string;
  jwtAudience?: string;
  tokenSecret?: string;
  registration?: string;
  sessionsPerUser?: string;
  maxStanzaBytes?: string;
  stanzasPerSecond?: string;
  roomsPerUser?: string;
  quotaConnections?: string;
  quotaMessagesPerMinute?: string;
  quotaArchiveBytes?: string;
  label?: string[];
  disabled?: boolean;
}

/** The flag that sets each field, to name it in errors. */
const FLAG_OF: Record<string, string> = {
  loginMethods: '--login',
  'jwt.secret': '--jwt-secret',
  'jwt.jwksUrl': '--jwks-url',
  'jwt.issuer': '--jwt-issuer',
  'jwt.audience': '--jwt-audience',
  'tokens.secret': '--token-secret',
  registration: '--registration',
  'limits.sessionsPerUser': '--sessions-per-user',
  'limits.maxStanzaBytes': '--max-stanza-bytes',
  'limits.stanzasPerSecond': '--stanzas-per-second',
  'limits.roomsPerUser': '--rooms-per-user',
  'quotas.connections': '--quota-connections',
  'quotas.messagesPerMinute': '--quota-messages-per-minute',
  'quotas.archiveBytes': '--quota-archive-bytes',
  labels: '--label',
};

/** A number flag as a number when it reads as one; else the text, which the schema then names as wrong. */
const numeric = (v: string | undefined) => (v === undefined ? undefined : /^\s*\d+(\.\d+)?\s*$/.test(v) ? Number(v) : v);

/**
 * The tenant item the flags of `tenant add` describe, checked with the tenant schema, the admin
 * API's (README "The tenant item"): a bad value is a CliError naming each field and its flag.
 */
function tenantFromFlags(domain: string, o: TenantAddOptions): TenantRecord {
  const methods = o.login ?? [...(o.jwtSecret || o.jwksUrl ? ['jwt'] : []), ...(o.tokenSecret ? ['token'] : []), 'password'];
  const defined = (obj: Record<string, unknown>) => Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined));
  const jwt = defined({ secret: o.jwtSecret, jwksUrl: o.jwksUrl, issuer: o.jwtIssuer, audience: o.jwtAudience });
  const limits = defined({ sessionsPerUser: numeric(o.sessionsPerUser), maxStanzaBytes: numeric(o.maxStanzaBytes), stanzasPerSecond: numeric(o.stanzasPerSecond), roomsPerUser: numeric(o.roomsPerUser) });
  const quotas = defined({ connections: numeric(o.quotaConnections), messagesPerMinute: numeric(o.quotaMessagesPerMinute), archiveBytes: numeric(o.quotaArchiveBytes) });
  const labels = Object.fromEntries(
    (o.label ?? []).map((l) => {
      const i = l.indexOf('=');
      if (i < 1) throw new CliError(`invalid label "${l}": expected key=value`);
      return [l.slice(0, i), l.slice(i + 1)];
    }),
  );
  const item = {
    domain,
    enabled: !o.disabled,
    createdAt: Date.now(),
    loginMethods: methods,
    ...(Object.keys(jwt).length ? { jwt } : {}),
    ...(o.tokenSecret !== undefined ? { tokens: { secret: o.tokenSecret } } : {}),
    ...(o.registration !== undefined ? { registration: o.registration } : {}),
    ...(Object.keys(limits).length ? { limits } : {}),
    ...(Object.keys(quotas).length ? { quotas } : {}),
    ...(Object.keys(labels).length ? { labels } : {}),
  };
  try {
    return validateTenantItem(item, settingBlocks);
  } catch (err) {
    if (!(err instanceof InvalidTenantError)) throw err;
    const lines = err.fields.map((f) => {
      const flag = FLAG_OF[f.path] ?? FLAG_OF[f.path.replace(/\.\d+$/, '')];
      const method = /^loginMethods\.(\d+)$/.exec(f.path);
      const what = method ? `unknown login method ${methods[Number(method[1])]}: ${f.message}` : f.message;
      return `  ${f.path}${flag ? ` (${flag})` : ''}: ${what}`;
    });
    throw new CliError(`invalid tenant ${domain}, nothing written:\n${lines.join('\n')}`);
  }
}

/** Where a run of the CLI writes, and the environment it reads (the process's by default). */
export interface CliIo {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
  env?: NodeJS.ProcessEnv;
  /** Where `start` listens for SIGINT and SIGTERM; default the process. */
  signals?: Pick<NodeJS.EventEmitter, 'on' | 'off'>;
}

function printError(io: CliIo, err: unknown): void {
  const message = err instanceof CliError ? err.message : ((err as Error)?.stack ?? String(err));
  io.stderr.write(`xmpp-edge: ${message}\n`);
}

/** Runs one command line (arguments after the program name); resolves with the exit status. */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const status = { code: 0 };
  try {
    await buildProgram(io, status).parseAsync(argv, { from: 'user' });
    return status.code;
  } catch (err) {
    // --help and --version end with a CommanderError too, of exit code 0.
    if (err instanceof CommanderError) return err.exitCode;
    printError(io, err);
    return 1;
  }
}

function buildProgram(io: CliIo, status: { code: number }): Command {
  const env = io.env ?? process.env;
  const program = new Command('xmpp-edge')
    .description('A serverless XMPP server (API Gateway WebSocket + Lambda + DynamoDB) that also runs on a laptop.')
    .version(PACKAGE_VERSION)
    .configureHelp({ showGlobalOptions: true })
    .configureOutput({ writeOut: (s) => void io.stdout.write(s), writeErr: (s) => void io.stderr.write(s) })
    // Commander would call process.exit; it throws a CommanderError instead, which runCli turns into the status.
    .exitOverride()
    .showHelpAfterError();

  // ---- start ----------------------------------------------------------------------------------------

  interface StartOptions {
    host: string;
    port: number;
    data: string;
    memory?: boolean;
    dynamoHost: string;
    dynamoPort: number;
    table: string;
    domain: string[];
    maxStanzaSize?: number;
    idleTimeout?: number;
    maxDuration?: number;
    componentPort: number;
    connectsPerAddress?: number;
    connectWindow?: number;
    logLevel: string;
  }

  program
    .command('start')
    .description('run the server locally: an embedded DynamoDB (dynalite) and the API Gateway WebSocket emulation')
    .option('--host <address>', 'address the WebSocket listens on', '127.0.0.1')
    .option('--port <port>', 'WebSocket port (0 = any free port)', integer(0, 65535), 5280)
    .option('--data <dir>', 'folder for the DynamoDB data', '.data')
    .addOption(new Option('--memory', 'keep the data in memory only (lost on exit)').conflicts('data'))
    .option('--dynamo-host <address>', 'address the embedded DynamoDB listens on', '127.0.0.1')
    .option('--dynamo-port <port>', 'embedded DynamoDB port (0 = any free port)', integer(0, 65535), 8000)
    .option('--table <name>', 'DynamoDB table (created if missing)', DEFAULT_TABLE)
    .option('--domain <domain...>', 'tenants (XMPP domains) to create if missing', ['localhost'])
    .option('--component-port <port>', 'TCP port of the XEP-0114 component listener on --host (0 = any free port)', integer(0, 65535), 5347)
    .option('--max-stanza-size <bytes>', 'largest stanza accepted (default 65536)', integer(1))
    .option('--idle-timeout <seconds>', 'close connections idle this long, like API Gateway (default 600)', integer(1))
    .option('--max-duration <seconds>', 'close connections this long after they opened, like API Gateway (default 7200)', integer(1))
    .option('--connects-per-address <n>', 'new WebSocket connections accepted per source address per window, 429 beyond (default 0: no cap; 60 in Lambda)', integer(0))
    .option('--connect-window <seconds>', 'the window of --connects-per-address (default 60)', integer(1))
    .addOption(new Option('--log-level <level>', 'log level (logs go to stderr)').choices(LOG_LEVELS).default(env.LOG_LEVEL ?? 'info'))
    .action(async (opts: StartOptions) => {
      const domains = opts.domain.map(domainName);
      const dataDir = opts.memory ? undefined : resolve(opts.data);
      const logger = pino({ level: opts.logLevel }, pino.destination({ dest: 2, sync: true }));
      const maxDurationMs = opts.maxDuration === undefined ? undefined : opts.maxDuration * 1000;

      // Loaded here only: dynalite and the gateway are of no use to the other commands.
      const { startLocalServer } = await import('../lib/local/local-server.ts');
      let local;
      try {
        local = await startLocalServer({
          host: opts.host,
          port: opts.port,
          dataDir,
          dynamoHost: opts.dynamoHost,
          dynamoPort: opts.dynamoPort,
          table: opts.table,
          seedDomains: domains,
          componentPort: opts.componentPort,
          // What web and mobile clients expect of a server they try out (Converse.js waits for the block
          // list before it shows a message from a stranger, and announces its avatar in presence only
          // right after setting it): README "Quick start".
          seedFeatures: ['blocking', 'carbons', 'vcard-avatars'],
          limits: {
            ...(opts.maxStanzaSize !== undefined ? { maxStanzaBytes: opts.maxStanzaSize } : {}),
            // Sessions must not outlive the connection the gateway will cut.
            ...(maxDurationMs !== undefined ? { maxConnectionMs: maxDurationMs } : {}),
            ...(opts.connectsPerAddress !== undefined ? { connectsPerAddress: opts.connectsPerAddress } : {}),
            ...(opts.connectWindow !== undefined ? { connectWindowMs: opts.connectWindow * 1000 } : {}),
          },
          gatewayLimits: {
            idleTimeoutMs: opts.idleTimeout === undefined ? undefined : opts.idleTimeout * 1000,
            maxDurationMs,
          },
          logger,
        });
      } catch (err) {
        const e = err as NodeJS.ErrnoException & { port?: number; address?: string };
        if (e.code === 'EADDRINUSE' || e.code === 'EACCES') {
          const which = e.port === opts.dynamoPort ? 'DynamoDB port (--dynamo-port)' : e.port === opts.componentPort ? 'component port (--component-port)' : 'WebSocket port (--port)';
          printError(
            io,
            new CliError(
              `cannot listen on ${e.address ?? ''}:${e.port ?? ''} (${e.code}), the ${which}. ` +
                (e.code === 'EADDRINUSE' ? 'Is another xmpp-edge or DynamoDB running? Stop it or choose another port.' : ''),
            ),
          );
        } else {
          printError(io, err);
        }
        // The launcher ends the process: a half-started server (dynalite listening) must not keep it alive.
        status.code = 1;
        return;
      }

      // A token the user chose is not echoed; a generated one must be, or nobody could use the API.
      const tokenShown = env.XMPP_EDGE_ADMIN_TOKEN ? '$XMPP_EDGE_ADMIN_TOKEN' : local.adminToken;
      const hint = [`npx xmpp-edge user add alice@${domains[0] ?? 'localhost'} <password>`];
      if (local.dynamoEndpoint !== DEFAULT_ENDPOINT) hint.push(`--endpoint ${local.dynamoEndpoint}`);
      if (local.table !== DEFAULT_TABLE) hint.push(`--table ${local.table}`);
      io.stdout.write(
        [
          `xmpp-edge ${PACKAGE_VERSION} is running`,
          `  WebSocket  ${local.url}`,
          `  Components ${opts.host}:${local.componentPort ?? ''} (XEP-0114 over TCP; over WebSocket: subprotocol xmpp-component)`,
          `  DynamoDB   ${local.dynamoEndpoint} (table ${local.table})`,
          `  Admin API  ${local.adminUrl}  (Authorization: Bearer ${tokenShown})`,
          `  Call demo  ${local.demoUrl}`,
          `  BOSH       ${local.boshUrl}`,
          `  Data       ${dataDir ?? 'in memory (lost on exit)'}`,
          `  Tenants    ${domains.join(', ')}`,
          '',
          'Add a user while it runs:',
          `  ${hint.join(' ')}`,
          'Press Ctrl-C to stop.',
          '',
        ].join('\n'),
      );

      // Resolves once the server has stopped (first Ctrl-C) or at once on a second one; the launcher
      // then ends the process.
      const signals = io.signals ?? process;
      let onSignal: (signal: NodeJS.Signals) => void = () => {};
      status.code = await new Promise<number>((done) => {
        let stopping = false;
        onSignal = (signal) => {
          if (stopping) {
            io.stderr.write('xmpp-edge: stopping at once\n');
            done(130);
            return;
          }
          stopping = true;
          io.stdout.write(`\n${signal}: closing client streams (system-shutdown)… Ctrl-C again to quit at once\n`);
          local.stop().then(
            () => {
              io.stdout.write('stopped\n');
              done(0);
            },
            (err: unknown) => {
              printError(io, err);
              done(1);
            },
          );
        };
        signals.on('SIGINT', onSignal);
        signals.on('SIGTERM', onSignal);
      });
      signals.off('SIGINT', onSignal);
      signals.off('SIGTERM', onSignal);
    });

  // ---- user -----------------------------------------------------------------------------------------

  interface DynamoOptions {
    endpoint?: string;
    region?: string;
    table?: string;
  }

  interface Target {
    db: ReturnType<typeof createDynamoClient>;
    users: UserStore;
    tenants: TenantStore;
    table: string;
    /** For messages: "table xmpp-edge at http://127.0.0.1:8000" or "… in AWS region eu-west-1". */
    where: string;
    endpoint?: string;
    region?: string;
    destroy(): void;
  }

  /**
   * Which DynamoDB to talk to. Flags beat environment variables; an endpoint means a local
   * DynamoDB (dynalite, DynamoDB Local) with placeholder credentials, a region alone means AWS with
   * the default credential chain, and with neither the `npm start` dynalite is assumed.
   */
  function connect(opts: DynamoOptions): Target {
    const endpoint =
      opts.endpoint ?? (opts.region ? undefined : (env.XMPP_EDGE_DYNAMODB_ENDPOINT ?? (env.AWS_REGION ? undefined : DEFAULT_ENDPOINT)));
    const region = opts.region ?? (endpoint ? undefined : env.AWS_REGION);
    const table = opts.table ?? env.XMPP_EDGE_TABLE ?? DEFAULT_TABLE;
    const db = endpoint ? createDynamoClient({ endpoint, region, localCredentials: true }) : createDynamoClient({ region });
    return {
      db,
      users: new UserStore(db, table),
      // What the server would ignore in an item is said here too (README "The tenant item").
      tenants: new TenantStore(db, table, { cacheMs: 0, blocks: settingBlocks, log: { warn: (_o, m) => void io.stderr.write(`xmpp-edge: warning: ${m}\n`), error: (_o, m) => void io.stderr.write(`xmpp-edge: warning: ${m}\n`) } }),
      table,
      endpoint,
      region,
      where: endpoint ? `table ${table} at ${endpoint}` : `table ${table} in AWS region ${region}`,
      destroy: () => db.destroy(),
    };
  }

  const NETWORK_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'ECONNRESET']);

  function networkCode(err: unknown): string | undefined {
    const e = err as { code?: string; errors?: unknown[]; cause?: unknown } | undefined;
    if (!e) return undefined;
    if (e.code && NETWORK_CODES.has(e.code)) return e.code;
    for (const inner of e.errors ?? []) {
      const code = networkCode(inner);
      if (code) return code;
    }
    return e.cause ? networkCode(e.cause) : undefined;
  }

  /** Turns what the SDK throws into a sentence that says what to do. */
  function explain(err: unknown, t: Target): CliError | unknown {
    if (err instanceof CliError) return err;
    const name = (err as { name?: string })?.name ?? '';
    const code = networkCode(err);
    if (code) {
      return new CliError(
        t.endpoint
          ? `cannot reach DynamoDB at ${t.endpoint} (${code}). Is the local server running? Start it with \`npm start\`, or pass --endpoint.`
          : `cannot reach DynamoDB in AWS region ${t.region} (${code}).`,
      );
    }
    if (name === 'ResourceNotFoundException') {
      return new CliError(
        `table ${t.table} does not exist ${t.endpoint ? `at ${t.endpoint}` : `in AWS region ${t.region}`}. ` +
          (t.endpoint ? '`npm start` creates it; or pass --table.' : 'Deploy the stack first, or pass --table.'),
      );
    }
    if (name === 'CredentialsProviderError' || /credential/i.test(name)) {
      return new CliError(`no AWS credentials for region ${t.region}: ${(err as Error).message}`);
    }
    if (/^(AccessDenied|UnrecognizedClient|InvalidSignature)/.test(name) || name === 'ExpiredTokenException') {
      return new CliError(`DynamoDB refused the request (${name}) for ${t.where}: ${(err as Error).message}`);
    }
    return err;
  }

  /** A command group that works on DynamoDB, with the options that choose which one. */
  function dynamoGroup(name: string, description: string): Command {
    return program
      .command(name)
      .description(description)
      .option('--endpoint <url>', `DynamoDB endpoint [env XMPP_EDGE_DYNAMODB_ENDPOINT] (default: ${DEFAULT_ENDPOINT}, the dynalite of \`npm start\`)`)
      .option('--region <region>', 'AWS region [env AWS_REGION]: without --endpoint, use DynamoDB in AWS with the default credential chain')
      .option('--table <name>', `table name [env XMPP_EDGE_TABLE] (default: ${DEFAULT_TABLE})`);
  }

  const user = dynamoGroup('user', 'manage accounts in DynamoDB (of a running `npm start` by default)');

  /** Runs one command of `group` against the target its options choose, then releases the client. */
  function withTarget<A extends unknown[]>(fn: (t: Target, ...args: A) => Promise<void>, group: Command = user) {
    return async (...args: A) => {
      const t = connect(group.opts<DynamoOptions>());
      try {
        await fn(t, ...args);
      } catch (err) {
        throw explain(err, t);
      } finally {
        t.destroy();
      }
    };
  }

  user
    .command('add <jid> <password>')
    .description('create an account (its domain must be a tenant); the password is stored as SCRAM keys only')
    .action(
      withTarget(async (t, jidArg: string, password: string) => {
        const { domain, jid } = accountAddress(jidArg);
        if (!password) throw new CliError('the password must not be empty');
        const tenant = await t.tenants.get(domain);
        if (!tenant) {
          const how = t.endpoint ? `restart the local server with \`npm start -- --domain ${domain}\`` : 'add its tenant item to the table';
          throw new CliError(`${domain} is not a tenant (${t.where}); to create it, ${how}`);
        }
        try {
          await addUser(t.users, jid, password);
        } catch (err) {
          if (err instanceof UserExistsError) throw new CliError(`user ${jid} already exists`);
          if (err instanceof InvalidPasswordError) throw new CliError(`unusable password: ${err.message}`);
          throw err;
        }
        io.stdout.write(`added ${jid} (${t.where})\n`);
        if (!tenant.enabled) io.stderr.write(`xmpp-edge: warning: tenant ${domain} is disabled; ${jid} cannot log in until it is enabled\n`);
      }),
    );

  user
    .command('remove <jid>')
    .description('delete an account')
    .action(
      withTarget(async (t, jidArg: string) => {
        const { jid } = accountAddress(jidArg);
        const data = { db: t.db, table: t.table, prefixes: accountPartitionsOf(defaultModules) };
        if (!(await removeUser(t.users, jid, data))) throw new CliError(`no such user: ${jid} (${t.where})`);
        io.stdout.write(`removed ${jid}\n`);
      }),
    );

  user
    .command('passwd <jid> <password>')
    .description("replace an account's password")
    .action(
      withTarget(async (t, jidArg: string, password: string) => {
        const { jid } = accountAddress(jidArg);
        if (!password) throw new CliError('the password must not be empty');
        let changed;
        try {
          changed = await setPassword(t.users, jid, password);
        } catch (err) {
          if (err instanceof InvalidPasswordError) throw new CliError(`unusable password: ${err.message}`);
          throw err;
        }
        if (!changed) throw new CliError(`no such user: ${jid} (${t.where})`);
        io.stdout.write(`password changed for ${jid}\n`);
      }),
    );

  user
    .command('list <domain>')
    .description("print a tenant's accounts, one JID per line")
    .action(
      withTarget(async (t, domainArg: string) => {
        const domain = domainName(domainArg);
        const names = await t.users.list(domain);
        for (const name of names) io.stdout.write(`${name}@${domain}\n`);
        if (!(await t.tenants.get(domain))) io.stderr.write(`xmpp-edge: warning: ${domain} is not a tenant (${t.where})\n`);
        else if (!names.length) io.stderr.write(`xmpp-edge: no users in ${domain}\n`);
      }),
    );

  // ---- tenant, token ----------------------------------------------------------------------------------

  const tenant = dynamoGroup('tenant', 'manage tenants (XMPP domains); changes reach running servers within seconds');

  /** A server over the target's table with every default module, so what a command changes or asks is as the server's would be. */
  function serverOver(t: Target): XmppServer {
    const server = new XmppServer({
      db: t.db,
      table: t.table,
      management: new ManagementApi({ localCredentials: !!t.endpoint }),
      logger: pino({ level: 'silent' }),
      modules: defaultModules,
      version: PACKAGE_VERSION,
    });
    // A local table (--endpoint) is the local server's: its http://127.0.0.1 webhooks pass the tenant
    // write check there, so they do here, whichever command writes the item (README "Event push").
    if (t.endpoint) eventPushOf(server).configure({ allowLoopbackHttp: true });
    return server;
  }

  function collect(value: string, previous: string[] = []): string[] {
    return [...previous, value];
  }

  tenant
    .command('add <domain>')
    .description('create a tenant; its settings are checked like the admin API\'s (README "The tenant item")')
    .option('--login <method...>', 'login methods: password, jwt, token (default: password)')
    .option('--jwt-secret <secret>', 'HS256/384/512 shared secret for JWT login')
    .option('--jwks-url <url>', 'JWKS URL for JWT login')
    .option('--jwt-issuer <iss>', 'required JWT issuer')
    .option('--jwt-audience <aud>', 'required JWT audience')
    .option('--token-secret <secret>', 'HMAC secret for server-issued tokens (X-OAUTH)')
    .option('--registration <open|closed>', 'in-band registration (XEP-0077) (default: closed)')
    .option('--sessions-per-user <n>', 'limits.sessionsPerUser')
    .option('--max-stanza-bytes <bytes>', "limits.maxStanzaBytes (default: the server's)")
    .option('--stanzas-per-second <n>', 'limits.stanzasPerSecond')
    .option('--rooms-per-user <n>', 'limits.roomsPerUser')
    .option('--quota-connections <n>', 'quotas.connections: bound sessions of the whole tenant at once')
    .option('--quota-messages-per-minute <n>', 'quotas.messagesPerMinute, per session')
    .option('--quota-archive-bytes <n>', 'quotas.archiveBytes: what its message archives may hold')
    .option('--label <key=value>', 'a label (repeatable)', collect)
    .option('--disabled', 'create it switched off')
    .action(
      withTarget(async (t, domainArg: string, o: TenantAddOptions) => {
        const domain = domainName(domainArg);
        const item = tenantFromFlags(domain, o);
        if (await t.tenants.get(domain, 0)) throw new CliError(`tenant ${domain} already exists (${t.where})`);
        const problem = await tenantWriteProblem(serverOver(t), item, { isNew: true });
        if (problem) throw new CliError(`${problem.message}; nothing written (${t.where})`);
        await t.tenants.put(item);
        io.stdout.write(`added tenant ${domain}${o.disabled ? ' (disabled)' : ''} (${t.where})\n`);
      }, tenant),
    );

  tenant
    .command('list')
    .description('print the tenants, one per line, with their state')
    .action(
      withTarget(async (t) => {
        for (const domain of await t.tenants.list()) {
          const rec = await t.tenants.get(domain, 0);
          io.stdout.write(`${domain}\t${rec ? (rec.enabled ? 'enabled' : 'disabled') : 'missing item'}\n`);
        }
      }, tenant),
    );

  tenant
    .command('show <domain>')
    .description('print the tenant item as JSON')
    .action(
      withTarget(async (t, domainArg: string) => {
        const rec = await t.tenants.get(domainName(domainArg), 0);
        if (!rec) throw new CliError(`no tenant ${domainArg} (${t.where})`);
        // As the admin API shows it: a secret that is set reads "(set)"; the table holds the value.
        io.stdout.write(`${JSON.stringify(redactSecrets(rec, settingBlocks), null, 2)}\n`);
      }, tenant),
    );

  tenant
    .command('usage <domain>')
    .description('print the tenant\'s usage records (README "Metrics and usage"), one line per UTC day, and the total')
    .option('--from <YYYY-MM-DD>', 'first UTC day (default: today)')
    .option('--to <YYYY-MM-DD>', 'last UTC day, inclusive (default: --from); at most 366 days')
    .option('--json', 'print what the admin API answers, as JSON')
    .action(
      withTarget(async (t, domainArg: string, o: { from?: string; to?: string; json?: boolean }) => {
        const domain = domainName(domainArg);
        let range;
        try {
          range = usageRange(o, utcDay(Date.now()));
        } catch (err) {
          if (err instanceof UsageRangeError) throw new CliError(`--${err.message}`);
          throw err;
        }
        if (!(await t.tenants.get(domain, 0))) throw new CliError(`no tenant ${domain} (${t.where})`);
        const report = await usageReport(new UsageStore(t.db, t.table), domain, range.from, range.to);
        if (o.json) {
          io.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
          return;
        }
        const row = (label: string, c: Record<string, number>) => `${[label, ...USAGE_FIELDS.map((f) => String(c[f] ?? 0))].join('\t')}\n`;
        io.stdout.write(`${['day', ...USAGE_FIELDS].join('\t')}\n`);
        for (const d of report.days) io.stdout.write(row(d.day, d.counts));
        io.stdout.write(row('total', report.total));
      }, tenant),
    );

  for (const [name, enabled] of [['enable', true], ['disable', false]] as const) {
    tenant
      .command(`${name} <domain>`)
      .description(enabled ? 'switch a tenant on' : 'switch a tenant off: logins refused, live sessions closed with host-gone')
      .action(
        withTarget(async (t, domainArg: string) => {
          const domain = domainName(domainArg);
          // Only `enabled` changes; the rest of the item stays as written.
          if (!(await t.tenants.setEnabled(domain, enabled))) throw new CliError(`no tenant ${domain} (${t.where})`);
          io.stdout.write(`${name}d ${domain}\n`);
        }, tenant),
      );
  }

  tenant
    .command('remove <domain>')
    .description('delete a tenant (its sessions are closed); --purge also deletes all of its data in the background')
    .option('--purge', 'delete its accounts, rosters, offline messages and rooms too')
    .action(
      withTarget(async (t, domainArg: string, o: { purge?: boolean }) => {
        const domain = domainName(domainArg);
        if (!(await t.tenants.remove(domain))) throw new CliError(`no tenant ${domain} (${t.where})`);
        if (o.purge) await new TenantPurger(t.db, t.table).request(domain);
        io.stdout.write(`removed tenant ${domain}${o.purge ? '; its data will be purged by the running server' : ''}\n`);
      }, tenant),
    );

  const token = dynamoGroup('token', 'server-issued tokens (MongooseIM format)');
  token
    .command('revoke <jid>')
    .description("revoke every refresh token issued to an account so far")
    .action(
      withTarget(async (t, jidArg: string) => {
        const { local, domain, jid } = accountAddress(jidArg);
        if (!(await revokeTokens(t.users, domain, local))) throw new CliError(`no such user: ${jid} (${t.where})`);
        io.stdout.write(`revoked the refresh tokens of ${jid}\n`);
      }, token),
    );

  // ---- what the modules add (`room` from the MUC module, …) ---------------------------------------

  for (const m of defaultModules) {
    if (!m.cli) continue;
    const group = dynamoGroup(m.cli.name, m.cli.description);
    m.cli.register(group, {
      out: (text) => void io.stdout.write(text),
      err: (text) => void io.stderr.write(text),
      withServer: <A extends unknown[]>(fn: (server: XmppServer, target: string, ...args: A) => Promise<void>) =>
        withTarget(async (t, ...args: A) => {
          const server = serverOver(t);
          try {
            await fn(server, t.where, ...args);
          } catch (err) {
            if (err instanceof OperatorError) throw new CliError(err.message);
            throw err;
          }
        }, group),
    });
  }

  return program;
}
