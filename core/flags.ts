import type { Options } from 'yargs';
import { UsageError } from './errors.js';

/**
 * One option of a command, defined once: its flag, its yargs declaration, how a raw value is checked into the typed
 * value, and how a typed value is written back as argv. The CLI parses with it, and every process the lab starts
 * is given argv built from typed values by {@link toArgv} with the same definitions, so the two cannot drift (a
 * round-trip test checks every definition).
 */
export interface OptionDef<T> {
  /** kebab-case, without the dashes: `max-payload`. */
  readonly flag: string;
  readonly describe: string;
  /** How yargs reads it. Sizes and durations are strings (they carry units). */
  readonly type: 'string' | 'number' | 'boolean';
  readonly default: T;
  /** What --help shows as the default, when the raw default would mislead (e.g. `"1MiB"` for 1048576). */
  readonly defaultDescription?: string;
  /** Checks a raw value into the typed one; throws a UsageError naming the flag. */
  parse(raw: unknown): T;
  /** The argv value that parses back to `v`: `64KiB`, `10s`, `4`. Not called for booleans. */
  format(v: T): string;
}

export type OptionDefs<O> = { readonly [K in keyof O]-?: OptionDef<O[K]> };

/** yargs declarations for `defs`, without yargs defaults: a flag left alone stays undefined (see {@link given}). */
export function yargsOptions<O>(defs: OptionDefs<O>): Record<string, Options> {
  return Object.fromEntries(Object.values<OptionDef<unknown>>(defs).map((d) => [d.flag, {
    type: d.type, describe: d.describe,
    defaultDescription: d.defaultDescription ?? (d.type === 'string' ? JSON.stringify(d.format(d.default)) : String(d.default)),
  } satisfies Options]));
}

/** Whether the user gave the flag (yargs sets nothing for a flag without a yargs default). */
export const given = (raw: Record<string, unknown>, def: OptionDef<unknown>): boolean => raw[def.flag] !== undefined;

/** Parses the flags of `defs` out of yargs' raw arguments; an absent flag takes its definition's default. */
export function fromArgs<O>(defs: OptionDefs<O>, raw: Record<string, unknown>): O {
  const out: Record<string, unknown> = {};
  for (const [key, d] of Object.entries<OptionDef<unknown>>(defs)) out[key] = raw[d.flag] === undefined ? d.default : d.parse(raw[d.flag]);
  return out as O;
}

/** The argv that sets `values` (and nothing else): `{ pool: 64 }` → `['--pool', '64']`, `{ defenses: false }` → `['--no-defenses']`. */
export function toArgv<O>(defs: OptionDefs<O>, values: Partial<O>): string[] {
  return Object.entries(values).flatMap(([key, v]) => {
    const d = (defs as Record<string, OptionDef<unknown>>)[key];
    if (!d) throw new Error(`no option "${key}" (known: ${Object.keys(defs).join(', ')})`);
    if (v === undefined) return [];
    if (d.type === 'boolean') return [v ? `--${d.flag}` : `--no-${d.flag}`];
    return [`--${d.flag}`, d.format(v)];
  });
}

/** Parses argv built by {@link toArgv} (or typed by a user) back into typed values, for the flags of `defs` only. */
export function fromArgv<O>(defs: OptionDefs<O>, argv: readonly string[]): Partial<O> {
  const byFlag = new Map(Object.entries<OptionDef<unknown>>(defs).map(([key, d]) => [d.flag, [key, d] as const]));
  const out: Record<string, unknown> = {};
  for (let i = 0; i < argv.length; i++) {
    const m = /^--(no-)?([\w-]+)$/.exec(argv[i]);
    const hit = m && byFlag.get(m[2]);
    if (!m || !hit) throw new UsageError(`"${argv[i]}" is not one of --${[...byFlag.keys()].join(', --')}`);
    const [key, d] = hit;
    if (d.type === 'boolean') out[key] = !m[1];
    else if (m[1] || i + 1 >= argv.length) throw new UsageError(`--${d.flag} needs a value`);
    else out[key] = d.parse(argv[++i]);
  }
  return out as Partial<O>;
}

/** A definition whose value is checked by `parse(flag, raw)` (cli units: parseSize, parseDuration, …). */
export const option = <T>(d: Omit<OptionDef<T>, 'format'> & { format?: (v: T) => string }): OptionDef<T> =>
  Object.freeze({ format: (v: T) => String(v), ...d });
