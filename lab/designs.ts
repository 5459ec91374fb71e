import { availableParallelism } from 'node:os';
import { fromArgv, toArgv } from '../core/flags.js';
import { ownDefaults, type Design, type Model, type Traits } from '../server/design.js';
import { SERVE_OPTIONS, type CommonServeOptions, type OwnOptions } from '../server/options.js';
import { DESIGNS } from '../server/registry.js';
import type { ProxyKind, ViaProfile } from '../server/via/profiles.js';
import type { Speaks, Target } from './targets.js';

/**
 * What the lab knows of a variant, for scenarios choosing designs and for the verdicts (kept in results.json). A
 * target's are what its targets file says: its model (or `unknown`: judged by no claim), no dialect we know.
 */
export interface VariantTraits extends Omit<Traits, 'model' | 'dialect'> {
  readonly model: Model | 'unknown';
  readonly dialect: Traits['dialect'] | null;
  /** The design stands for its model where a scenario runs one design per model (Design.representative). */
  readonly representative: boolean;
  /** false for a `--no-defenses` variant. */
  readonly defenses: boolean;
  /** What it runs on: `node` for our designs (their native threads included); a target's file says (`python`, …). */
  readonly runtime: string;
  /** `lab --via`: the proxy in front of it (`nginx default`, `haproxy hardened`), or absent: clients reach it directly. */
  readonly via?: string;
  /** `lab --deflate`: it runs with `--deflate` and its clients offer permessage-deflate; absent otherwise. */
  readonly compressing?: true;
}

/** A server design as the lab runs it: a registered design plus the options of one variant, and their argv. */
export interface LabDesign {
  readonly label: string;
  readonly design: string;
  /** The variant's own options (only those it sets) and common ones (e.g. `defenses: false`). */
  readonly own: Partial<OwnOptions>;
  readonly common: Partial<CommonServeOptions>;
  /** `wslab serve` argv for the variant, built from the options above by their definitions. */
  readonly flags: readonly string[];
  readonly traits: VariantTraits;
  /** What it answers: our designs speak `wslab`; a target what its file says. */
  readonly speaks: readonly Speaks[];
  /** Set for a server of the targets file, which the lab starts (or reaches) as the file says. */
  readonly target?: Target;
}

export const CORES = availableParallelism();

/** Pool size in the slow-client DoS scenario: the 256 workers of the seed claim (a typical prefork MaxRequestWorkers). */
export const POOL_SIZE_DOS = 256;

/** The variant of `design` with `own` and `common` options; labelled as a user would type it (`threads --pool 64`). */
export function variant(design: Design | string, own: Partial<OwnOptions> = {}, common: Partial<CommonServeOptions> = {}): LabDesign {
  const d = typeof design === 'string' ? DESIGNS.get(design) : design;
  if (!d) throw new Error(`unknown design ${String(design)}`);
  const ownFlags = toArgv(d.flags, own);
  const commonFlags = toArgv(SERVE_OPTIONS, common);
  const labelled = Object.fromEntries(Object.entries(own).filter(([k]) => !d.labelFlags || d.labelFlags.includes(k)));
  const traits = d.traits({ ...ownDefaults(d), ...own } as OwnOptions);
  const via = common.via && common.via !== 'none' ? `${common.via} ${common.viaProfile ?? SERVE_OPTIONS.viaProfile.default}` : undefined;
  const compressing = common.deflate === true;
  return {
    label: [d.name, ...toArgv(d.flags, labelled), ...commonFlags].join(' '), design: d.name, own, common,
    flags: [...ownFlags, ...commonFlags],
    // behind a proxy or compressing it no longer stands for its model: the verdicts judge the designs as they are (lab/claims.ts)
    traits: {
      ...traits, representative: d.representative === true && !via && !compressing, defenses: common.defenses !== false, runtime: 'node',
      ...(via ? { via } : {}), ...(compressing ? { compressing } : {}),
    },
    speaks: ['wslab'],
  };
}

/** `lab --deflate`: the same variant negotiating permessage-deflate (its label `uws --deflate`). */
export function compressed(d: LabDesign): LabDesign {
  return variant(d.design, d.own, { ...d.common, deflate: true });
}

/**
 * Whether the claims judge this cell: a design as it is, not behind a proxy (`lab --via`) nor compressing (`lab
 * --deflate`) — those are shown beside the others, for what they cost.
 */
export const judged = (d: { traits: VariantTraits }): boolean => !d.traits.via && !d.traits.compressing;

/** `lab --via`: the same variant with a proxy in front (its label `uws --via nginx`, `… --via-profile hardened`). */
export function behind(d: LabDesign, proxy: ProxyKind, profile: ViaProfile): LabDesign {
  return variant(d.design, d.own, { ...d.common, via: proxy, ...(profile === SERVE_OPTIONS.viaProfile.default ? {} : { viaProfile: profile }) });
}

/** A target of the targets file as the lab runs it: as it is, under its own name. */
export function targetDesign(t: Target): LabDesign {
  return {
    label: t.name, design: t.name, own: {}, common: {}, flags: [], speaks: t.speaks, target: t,
    traits: {
      model: t.model, fixedHandshakeTimeout: null, dialect: null, workers: t.model === 'loop' ? 1 : null, countsNonHttp: false, deflate: false,
      representative: false, defenses: true, runtime: t.runtime,
    },
  };
}

/** The variant `wslab serve --design <design> ...flags` runs, read back by the options' own definitions. */
export function variantOf(design: string, flags: readonly string[]): LabDesign {
  const d = DESIGNS.get(design);
  if (!d) throw new Error(`unknown design ${design}`);
  const all = fromArgv({ ...SERVE_OPTIONS, ...d.flags }, flags) as Record<string, unknown>;
  const pick = (keys: string[]) => Object.fromEntries(Object.entries(all).filter(([k]) => keys.includes(k)));
  return variant(d, pick(Object.keys(d.flags)) as Partial<OwnOptions>, pick(Object.keys(SERVE_OPTIONS)) as Partial<CommonServeOptions>);
}

/**
 * The variants the lab compares by default: each registered design's `labVariants` (one with its defaults when it
 * declares none), so a new design joins the lab by joining the registry.
 */
export const LAB_DESIGNS: readonly LabDesign[] = [...DESIGNS.values()].flatMap((d) => (d.labVariants ?? [{}]).map((own) => variant(d, own)));

/** The variant of the first design of `model` that has a worker-count knob, with `n` workers (a pool, a cluster). */
export function withWorkers(model: Model, n: number, common: Partial<CommonServeOptions> = {}): LabDesign | undefined {
  const d = [...DESIGNS.values()].find((x) => x.model === model && x.withWorkers);
  return d && variant(d, d.withWorkers!(n), common);
}

/** The variant of the first design of `model` that can run each command on a new thread (threads --thread-per-task). */
export function withThreadPerTask(model: Model): LabDesign | undefined {
  const d = [...DESIGNS.values()].find((x) => x.model === model && x.threadPerTask);
  return d && variant(d, d.threadPerTask);
}

/** Predicates scenarios and verdicts choose variants by. */
export const is = {
  loop: (d: { traits: VariantTraits }) => d.traits.model === 'loop',
  /** The loop that stands for all loops (uws); see {@link oneLoop}. */
  standingLoop: (d: { traits: VariantTraits }) => d.traits.model === 'loop' && d.traits.representative,
  /** A thread per connection (running its commands itself). */
  threadPerConnection: (d: { traits: VariantTraits }) => d.traits.model === 'threads' && d.traits.workers === null && !d.traits.threadPerTask,
  /** A new thread for every command (threads --thread-per-task). */
  threadPerTask: (d: { traits: VariantTraits }) => d.traits.threadPerTask === true,
  /** A fixed pool of worker threads. */
  pool: (d: { traits: VariantTraits }) => d.traits.model === 'threads' && d.traits.workers !== null,
  processes: (d: { traits: VariantTraits }) => d.traits.model === 'processes',
  naked: (d: { traits: VariantTraits }) => !d.traits.defenses,
};

/**
 * Below `--scale full`, one loop stands for all where a scenario measures what every loop does alike (a timer, an
 * epoll wake-up): the representative loop when it is among `all`, else every loop given.
 */
export const oneLoop = <T extends { traits: VariantTraits }>(all: readonly T[], scale: string): (d: T) => boolean =>
  (d) => !is.loop(d) || scale === 'full' || !all.some(is.standingLoop) || is.standingLoop(d);
