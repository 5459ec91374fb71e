import { availableParallelism } from 'node:os';
import { DESIGNS } from '../server/registry.js';

/** A server design as the lab runs it: a registered design plus the flags of one variant. */
export interface LabDesign {
  readonly label: string;
  readonly design: string;
  readonly flags: readonly string[];
  readonly model: 'loop' | 'threads' | 'processes';
}

export const CORES = availableParallelism();

/** Pool size of the bounded thread variant: fixed workers, as a prefork/sync-worker server runs them. */
export const POOL_SIZE = 64;
/** Pool size in the slow-client DoS scenario: the 256 workers of the seed claim (a typical prefork MaxRequestWorkers). */
export const POOL_SIZE_DOS = 256;

/**
 * The variants the lab compares by default. A registered design with no entry here runs with its defaults, so a
 * new design joins the lab by joining the registry.
 */
const VARIANTS: Record<string, readonly (readonly string[])[]> = {
  threads: [[], ['--pool', String(POOL_SIZE)]],
  cluster: [['--workers', String(CORES), '--inner', 'uws']],
};

export function variant(design: string, flags: readonly string[] = []): LabDesign {
  const d = DESIGNS.get(design);
  if (!d) throw new Error(`unknown design ${design}`);
  return { label: [design, ...flags.filter((f) => f !== '--inner' && f !== 'uws')].join(' '), design, flags, model: d.model };
}

export const LAB_DESIGNS: readonly LabDesign[] = [...DESIGNS.keys()].flatMap((name) =>
  (VARIANTS[name] ?? [[]]).map((flags) => variant(name, flags)));
