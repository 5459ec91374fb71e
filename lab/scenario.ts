import type { ServerProcess, SwarmRun, SwarmSummary } from './processes.js';
import type { Column, ClaimId } from './results.js';
import type { LabDesign } from './designs.js';
import type { Sampler } from './sampler.js';

export type Scale = 'quick' | 'default' | 'full';
export type Figures = Record<string, number | null>;

/** What a scenario gets for one design: a running server, its sampler, and a way to start swarms against it. */
export interface CellContext {
  readonly design: LabDesign;
  readonly scale: Scale;
  readonly server: ServerProcess;
  readonly sampler: Sampler;
  /** Starts `wslab swarm --url <server> ...args` (summary to a temp file, own /metrics sampled for RTT). */
  swarm(args: string[]): Promise<SwarmRun>;
  /** Waits for a swarm and returns its summary; a swarm that wrote none fails the cell with its stderr. */
  finish(run: SwarmRun): Promise<SwarmSummary>;
}

/**
 * One experiment of the lab: data (what it runs at each scale, which designs, which claims it informs) plus a small
 * runner that drives one design and returns its figures. The lab starts and stops the server around `run`.
 */
export interface Scenario {
  readonly id: string;
  readonly title: string;
  readonly question: string;
  readonly claims: readonly ClaimId[];
  readonly columns: readonly Column[];
  /** Server flags the scenario needs (e.g. no idle timeout while holding): the same for every design, or by design and its flags. */
  readonly serverFlags?: readonly string[] | ((design: string, flags: readonly string[]) => readonly string[]);
  /** The variants this scenario compares, chosen from the lab's designs (it may add its own, e.g. worker counts). */
  designs(available: readonly LabDesign[], scale: Scale): LabDesign[];
  /** What it ran at this scale, in one paragraph for the report. */
  method(scale: Scale): string;
  /** Rough seconds per design at this scale, for the ETA. */
  seconds(scale: Scale): number;
  run(ctx: CellContext): Promise<Figures>;
}

export const SOURCE_IPS = '127.0.0.2-127.0.0.9';
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** Picks the value for the scale. */
export const at = <T>(scale: Scale, values: Record<Scale, T>): T => values[scale];

/** The flags `scenario` adds to `wslab serve --design <design>`. */
export const scenarioServerFlags = (scenario: Scenario, design: string, flags: readonly string[] = []): readonly string[] =>
  typeof scenario.serverFlags === 'function' ? scenario.serverFlags(design, flags) : scenario.serverFlags ?? [];
