#!/usr/bin/env node
// The `xmpp-edge` command: registers tsx so the TypeScript sources run as they are, then loads the CLI.
import { register } from 'tsx/esm/api';

register();
await import('./cli.ts');
