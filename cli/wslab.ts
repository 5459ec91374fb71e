#!/usr/bin/env node
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { UsageError } from '../core/errors.js';

/*
 * Each command's module, loaded on demand: the lab starts dozens of `serve` and `swarm` processes per run, and
 * loading the other commands' modules too cost each ≈0.15 s of CPU on this box. An unknown or absent command
 * (a typo, --help) loads them all, for the command list and the suggestions.
 */
const COMMANDS = {
  serve: async () => (await import('./serve.js')).serveCommand,
  swarm: async () => (await import('./swarm.js')).swarmCommand,
  lab: async () => (await import('./lab.js')).labCommand,
  profile: async () => (await import('./profile.js')).profileCommand,
  stack: async () => (await import('./stack.js')).stackCommand,
  watch: async () => (await import('./watch.js')).watchCommand,
  compare: async () => (await import('./compare.js')).compareCommand,
} as const;
type CommandName = keyof typeof COMMANDS;

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

/*
 * Started by the lab (lab/processes.ts) with an IPC channel: die with it. The channel's 'disconnect' comes however
 * the parent ended (even SIGKILL), at no cost while it lives (no timer, the channel unref'd so it keeps nothing
 * alive), and becomes a SIGTERM, which every command handles (serve closes with 1001, swarm writes its summary).
 * The variable is removed so that this process's own children (cluster workers, swarm workers) do not inherit it.
 */
if (process.env.WSLAB_DIE_WITH_PARENT === '1' && process.channel) {
  delete process.env.WSLAB_DIE_WITH_PARENT;
  process.channel.unref();
  process.once('disconnect', () => process.kill(process.pid, 'SIGTERM'));
}

try {
  const first = hideBin(process.argv).find((a) => !a.startsWith('-'));
  const names = first !== undefined && first in COMMANDS ? [first as CommandName] : (Object.keys(COMMANDS) as CommandName[]);
  const commands = await Promise.all(names.map((n) => COMMANDS[n]()));
  await commands.reduce((y, c) => y.command(c as never), yargs(hideBin(process.argv)))
    .scriptName('wslab')
    .usage('$0 <command> [options]\n\nA WebSocket long-connection stress lab: single-loop vs thread-per-connection designs, measured.')
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
