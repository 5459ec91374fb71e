/**
 * A bench's definition and its run: bench/run.ts hands `runBench` a definition and the user's flags; the flags are
 * parsed here through yargs (every one as text, then by its own parser: a bad value is one line, exit 1, before any
 * work), `run` gets them as a typed, frozen object, and what it reports goes to stdout and `--out FILE`.
 */
import { writeFileSync } from 'node:fs';
import yargs from 'yargs';
import { UsageError } from '../../core/errors.js';
import { outputFile } from '../../core/units.js';
import { describeNoise, NoiseWatch } from '../../metrics/noise.js';
import type { Options, Values } from './options.js';
import { stopAll } from './server.js';

/** What a bench reports with: JSON lines as it goes, or one result at the end (pretty-printed). */
export interface Report {
  /** One JSON line on stdout (and one line of --out). */
  line(record: unknown): void;
  /** The bench's result: pretty JSON on stdout, and --out written (or merged, see Bench.out). */
  result(record: unknown): void;
  /** The command line that runs this bench again with the same flags, for the JSON. */
  readonly command: string;
}

/** `s` as a shell word (quoted only when it must be). */
export const shellQuote = (s: string): string => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

export interface Bench<O extends Options = Options> {
  /** the file's name: `npm run bench -- <name>` */
  readonly name: string;
  /** one line for the bench list and --help */
  readonly describe: string;
  readonly options: O;
  /** `--out`'s default (none: stdout only) and, when a result joins what the file already holds, how. */
  readonly out?: { readonly default?: string; merge?(file: string, result: unknown): string };
  /** Runs the bench; a failure it reports is a thrown BenchFailure (one line, exit 1). */
  run(options: Values<O>, report: Report): Promise<void>;
}

/** The run failed in a way the bench states (a mismatch, a dead server): printed as one line, exit 1. */
export class BenchFailure extends Error {
  readonly code = 'WSLAB_BENCH_FAILURE';
}

export const defineBench = <O extends Options>(b: Bench<O>): Bench<O> => b;

/** The harness's own flag, the same on every bench. */
const OUT = 'out';

/** Parses `args` for `b` (or prints its --help), then runs it; never returns. */
export async function runBench(b: Bench, args: readonly string[]): Promise<never> {
  const fail = (message: string): never => { process.stderr.write(`bench/${b.name}: ${message}\n`); process.exit(1); };
  if (OUT in b.options) throw new Error(`bench ${b.name}: --${OUT} is the harness's flag`);
  let y = yargs([...args])
    .scriptName(`npm run bench -- ${b.name}`)
    .usage(`$0 [options]\n\n${b.describe}`)
    .option(OUT, { type: 'string', requiresArg: true, default: b.out?.default, describe: 'also write the JSON to this file' })
    .strict()
    .version(false)
    .help()
    .fail((msg, err) => fail(err?.message ?? `${msg} (see --help)`))
    .wrap(Math.min(120, process.stdout.columns || 100));
  // every flag is read as text and parsed below by its own parser, so `--hold 4000` reaches parseDuration as "4000"
  for (const [flag, o] of Object.entries(b.options)) y = y.option(flag, { type: 'string', requiresArg: true, describe: o.describe, default: o.default });
  const argv = await y.parseAsync() as Record<string, unknown>;
  const last = (v: unknown): string | undefined => (v === undefined ? undefined : String(Array.isArray(v) ? v.at(-1) : v));
  let values: Values<Options>;
  let out: string | undefined;
  try {
    values = Object.freeze(Object.fromEntries(Object.entries(b.options).map(([flag, o]) => [flag, o.parse(flag, last(argv[flag]))])));
    out = last(argv[OUT]) ? outputFile(OUT, last(argv[OUT])) : undefined;
  } catch (e) {
    if (e instanceof UsageError) fail(e.message);
    throw e;
  }
  const lines: string[] = [];
  const noise = new NoiseWatch(() => [process.pid]);
  const report: Report = {
    command: ['node dist/bench/run.js', b.name, ...args.map(shellQuote)].join(' '),
    line(record) {
      const l = JSON.stringify(record);
      process.stdout.write(`${l}\n`);
      if (out) { lines.push(l); writeFileSync(out, `${lines.join('\n')}\n`); }
    },
    result(given) {
      // the noise guard over the whole bench: every server, swarm and client it ran is a child of this process
      const box = noise.end();
      if (!box.quiet) process.stderr.write(`bench/${b.name}: ${describeNoise(box)} over the bench: its figures shared the CPU with another load\n`);
      const record = typeof given === 'object' && given !== null && !Array.isArray(given) ? { ...given, box } : given;
      const json = `${JSON.stringify(record, null, 2)}\n`;
      process.stdout.write(json);
      if (out) writeFileSync(out, b.out?.merge ? b.out.merge(out, record) : json);
    },
  };
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => { stopAll().finally(() => fail(`${sig}: stopped, no result`)); });
  }
  try {
    await b.run(values, report);
  } catch (e) {
    await stopAll();
    if (e instanceof BenchFailure || e instanceof UsageError) fail(e.message);
    throw e;
  }
  await stopAll();
  process.exit(0);
}
