#!/usr/bin/env node
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { UsageError } from './errors.js';
import { labCommand } from './lab.js';
import { profileCommand } from './profile.js';
import { serveCommand } from './serve.js';
import { stackCommand } from './stack.js';
import { swarmCommand } from './swarm.js';

const debug = process.argv.includes('--debug');

/** A user error is one line and exit 1; an unexpected failure is one line too, with the stack only under --debug. */
function fail(err: unknown): never {
  const e = err as Error & { code?: string };
  const known = e instanceof UsageError || e?.code === 'EADDRINUSE' || e?.code === 'EACCES' || e?.code === 'EADDRNOTAVAIL' || e?.code === 'WSLAB_UWS_UNAVAILABLE';
  process.stderr.write(`wslab: ${e?.message ?? String(err)}${known || debug ? '' : ' (run with --debug for details)'}\n`);
  if (debug && e?.stack) process.stderr.write(`${e.stack}\n`);
  process.exit(1);
}

process.on('unhandledRejection', fail);

try {
  await yargs(hideBin(process.argv))
    .scriptName('wslab')
    .usage('$0 <command> [options]\n\nA WebSocket long-connection stress lab: single-loop vs thread-per-connection designs, measured.')
    .command(serveCommand)
    .command(swarmCommand)
    .command(labCommand)
    .command(profileCommand)
    .command(stackCommand)
    .option('debug', { type: 'boolean', default: false, describe: 'print stack traces of unexpected errors' })
    .demandCommand(1, 'wslab: name a command (see wslab --help)')
    .strict()
    .recommendCommands()
    .fail((msg, err) => fail(err ?? new UsageError(`${msg} (see wslab --help)`)))
    .help()
    .version()
    .wrap(Math.min(120, process.stdout.columns || 100))
    .parseAsync();
} catch (err) {
  fail(err);
}
