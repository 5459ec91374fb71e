/**
 * A bench's flags, declared as data: each option carries its help line, its default as a user types it, and the
 * parser that turns the text into a value: the CLI's own (cli/units.ts), so units and errors are the CLI's. Designs
 * are read against the server registry.
 */
import { UsageError } from '../../core/errors.js';
import { parseSourceIps } from '../../cli/swarm.js';
import { parseDuration, parseInteger, parseSize } from '../../core/units.js';
import { DESIGNS } from '../../server/registry.js';

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
