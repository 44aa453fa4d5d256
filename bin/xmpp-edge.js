#!/usr/bin/env node
// The `xmpp-edge` command: registers tsx so the TypeScript sources run as they are, then runs the CLI
// (bin/cli.ts) with this process's streams and environment, and owns the process's exit.
import { register } from 'tsx/esm/api';

register();
const { runCli } = await import('./cli.ts');
const code = await runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env });
if (process.argv[2] === 'start') {
  // The server has stopped, or a second Ctrl-C asked to quit with it still running: end at once.
  process.exit(code);
}
// Other commands have released everything; leaving by the event loop lets piped output drain.
process.exitCode = code;
