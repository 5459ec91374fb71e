/**
 * The one harness of bench/: every bench is a file that exports `bench = defineBench({ name, describe, options, run })`.
 * bench/run.ts finds them in this folder, parses a bench's flags here through yargs with the CLI's own unit parsers
 * (a bad value is the CLI's one-line error, exit 1, before any work starts), hands `run` a typed, frozen options
 * object, and writes what it reports as JSON to stdout and, with `--out FILE`, to that file.
 *
 * The shell the benches share lives here too: a design list checked against the server registry, one way to start
 * a server (lab/processes' spawnServer, stopped on SIGINT/SIGTERM so a run cut short leaves no `wslab serve`
 * behind), and the readings taken before and after a load (RSS of the server's process tree, a /metrics scrape).
 */
import { writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import yargs from 'yargs';
import { UsageError } from '../cli/errors.js';
import { parseSourceIps } from '../cli/swarm.js';
import { outputFile, parseDuration, parseInteger, parseSize } from '../cli/units.js';
import { spawnServer, type ServerProcess } from '../lab/processes.js';
import type { Sample } from '../metrics/exposition.js';
import { readTreeStatus, type ProcStatus } from '../metrics/proc-status.js';
import { DESIGNS } from '../server/registry.js';

// ---- options ------------------------------------------------------------------------------------------------------

/** One flag: its help line, its default as a user would type it, and the parser that turns the text into a value. */
export interface Option<T> {
  readonly describe: string;
  readonly default?: string;
  parse(flag: string, text: string | undefined): T;
}
export type Options = Readonly<Record<string, Option<unknown>>>;
export type Values<O extends Options> = { readonly [K in keyof O]: O[K] extends Option<infer T> ? T : never };

const required = (flag: string, text: string | undefined): string => {
  if (text === undefined) throw new UsageError(`--${flag}: a value is required`);
  return text;
};

/** A duration with its unit (`4s`, `500ms`; `0` = off), in milliseconds: a bare number is refused, as in the CLI. */
export const duration = (def: string, describe: string): Option<number> =>
  ({ describe, default: def, parse: (flag, text) => parseDuration(flag, required(flag, text)) });
/** A size (`65536`, `64KiB`, `1MiB`), in bytes, at least `min` (the error says `why`). */
export const size = (def: string, describe: string, min = 0, why = ''): Option<number> => ({
  describe, default: def,
  parse(flag, text) {
    const bytes = parseSize(flag, required(flag, text));
    if (bytes < min) throw new UsageError(`--${flag}: "${text}" must be at least ${min}${why ? ` (${why})` : ''}`);
    return bytes;
  },
});
/** A whole number within [min, max]. */
export const integer = (def: number, min: number, max: number, describe: string): Option<number> =>
  ({ describe, default: String(def), parse: (flag, text) => parseInteger(flag, required(flag, text), min, max) });
/** A whole number within [min, max], or absent (`''`) for "the tool's own default". */
export const optionalInteger = (min: number, max: number, describe: string): Option<number | undefined> =>
  ({ describe, default: '', parse: (flag, t) => (t ? parseInteger(flag, t, min, max) : undefined) });
/** A comma list of whole numbers within [min, max]. */
export const integers = (def: string, min: number, max: number, describe: string): Option<readonly number[]> =>
  ({ describe, default: def, parse: (flag, text) => Object.freeze(required(flag, text).split(',').map((s) => parseInteger(flag, s, min, max))) });
/** Free text, checked by the bench itself where it means something (`''` when absent and there is no default). */
export const text = (def: string, describe: string): Option<string> =>
  ({ describe, default: def, parse: (_flag, t) => t ?? def });
/** A comma list drawn from a fixed set, in the order given (at least one). */
export const names = <C extends string>(def: string, choices: readonly C[], describe: string): Option<readonly C[]> => ({
  describe: `${describe} (${choices.join(', ')})`, default: def,
  parse(flag, t) {
    const picked = required(flag, t).split(',').map((s) => s.trim()).filter(Boolean);
    for (const p of picked) if (!(choices as readonly string[]).includes(p)) throw new UsageError(`--${flag}: unknown "${p}" (${choices.join(', ')})`);
    if (!picked.length) throw new UsageError(`--${flag}: name at least one of ${choices.join(', ')}`);
    return Object.freeze(picked as C[]);
  },
});
/** One of a fixed set. */
export const choice = <C extends string>(def: C, choices: readonly C[], describe: string): Option<C> => ({
  describe: `${describe} (${choices.join(', ')})`, default: def,
  parse(flag, t) {
    if (!(choices as readonly string[]).includes(t ?? def)) throw new UsageError(`--${flag}: "${t}" must be one of ${choices.join(', ')}`);
    return (t ?? def) as C;
  },
});

/** Source addresses as the swarm takes them (`127.0.0.2-127.0.0.9`, a comma list), loopback only; `''` = none. */
export const sourceIps = (def: string, describe: string): Option<{ readonly text: string; readonly ips: readonly string[] }> => ({
  describe, default: def,
  parse(flag, t) {
    if (!t) return { text: '', ips: [] };
    const ips = parseSourceIps(t);
    for (const ip of ips) if (!ip.startsWith('127.')) throw new UsageError(`--${flag}: ${ip} is not a loopback address (this bench talks to 127.0.0.1 only)`);
    return Object.freeze({ text: t, ips: Object.freeze(ips) });
  },
});

/** A registered design and the `wslab serve` flags of one variant of it, e.g. `threads --pool 256`. */
export interface DesignRun {
  /** as the user wrote it, and as the JSON reports it */
  readonly label: string;
  readonly design: string;
  readonly flags: readonly string[];
}

/** Reads `ws` or `threads --pool 256` against the server registry; an unknown design names the registered ones. */
export function designRun(flag: string, label: string): DesignRun {
  const [design = '', ...flags] = label.trim().split(/\s+/);
  if (!DESIGNS.has(design)) throw new UsageError(`--${flag}: unknown design "${design}" (${[...DESIGNS.keys()].join(', ')})`);
  return Object.freeze({ label: label.trim(), design, flags: Object.freeze(flags) });
}

/** One design with optional flags, e.g. `ws` or `cluster --workers 2`. */
export const design = (def: string, describe: string): Option<DesignRun> =>
  ({ describe: `${describe} (${[...DESIGNS.keys()].join(', ')})`, default: def, parse: (flag, t) => designRun(flag, required(flag, t)) });

/** The registered designs a bench runs by default, picked by their traits (the registry's order), never by name. */
export const designsWhere = (keep: (d: { name: string; model: string }) => boolean): string =>
  [...DESIGNS.values()].filter(keep).map((d) => d.name).join(',');

/** A comma list of designs with optional flags each (`threads,threads --pool 256,ws`); `all` = every registered one. */
export const designs = (def: string, describe: string): Option<readonly DesignRun[]> => ({
  describe: `${describe}; "all" = every registered design (${[...DESIGNS.keys()].join(', ')})`, default: def,
  parse(flag, t) {
    const list = required(flag, t).trim() === 'all' ? [...DESIGNS.keys()] : required(flag, t).split(',');
    const runs = list.filter((l) => l.trim()).map((l) => designRun(flag, l));
    if (!runs.length) throw new UsageError(`--${flag}: name at least one design`);
    return Object.freeze(runs);
  },
});

// ---- the bench ----------------------------------------------------------------------------------------------------

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
  const report: Report = {
    command: ['node dist/bench/run.js', b.name, ...args.map(shellQuote)].join(' '),
    line(record) {
      const l = JSON.stringify(record);
      process.stdout.write(`${l}\n`);
      if (out) { lines.push(l); writeFileSync(out, `${lines.join('\n')}\n`); }
    },
    result(record) {
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

// ---- the server and its readings ----------------------------------------------------------------------------------

const servers = new Set<ServerProcess>();
const stopAll = async (): Promise<void> => { await Promise.all([...servers].map((s) => s.stop())); };

/** `wslab serve --design <design> --port 0 --metrics-port 0 ...flags` (lab/processes), stopped if the bench is cut short. */
export async function startServer(run: DesignRun, extraFlags: readonly string[] = []): Promise<ServerProcess> {
  const server = await spawnServer(run.design, [...run.flags, ...extraFlags]);
  servers.add(server);
  const stop = server.stop.bind(server);
  return Object.assign(server, { stop: () => stop().finally(() => servers.delete(server)) });
}

export type TreeStatus = ProcStatus & { processes: number };
/** What a reading holds: the server's whole process tree from /proc and, when asked, its /metrics parsed. */
export interface Reading { readonly tree: TreeStatus; readonly metrics: readonly Sample[] }

/** The server's process tree now (RSS, threads, processes). */
export const treeOf = (server: ServerProcess): TreeStatus => readTreeStatus(server.pid);
/** The tree, then a /metrics scrape. */
export const readingOf = async (server: ServerProcess): Promise<Reading> => {
  const tree = treeOf(server);
  return { tree, metrics: await server.scrape() };
};

/**
 * The shell of a server bench: start the design, let it settle `settleMs` (after `warm`, e.g. a first scrape), read
 * its tree, run `body` with that reading, and stop the server whatever happens.
 */
export async function withServer<T>(run: DesignRun, flags: readonly string[], settle: { ms: number; warm?: (s: ServerProcess) => Promise<unknown> },
  body: (server: ServerProcess, before: TreeStatus) => Promise<T>): Promise<T> {
  const server = await startServer(run, flags);
  try {
    await settle.warm?.(server);
    await sleep(settle.ms);
    return await body(server, treeOf(server));
  } finally {
    await server.stop();
  }
}

/** Bytes as MiB with one decimal, the unit of the benches' `…MiB` fields. */
export const mib = (bytes: number): number => +(bytes / 2 ** 20).toFixed(1);
