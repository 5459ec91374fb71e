import type { ServerProcess, SwarmRun, SwarmSummary } from './processes.js';
import type { Column, ClaimId } from './results.js';
import type { LabDesign } from './designs.js';
import type { Sampler } from './sampler.js';
import type { HoldPlan } from './budget.js';

/** `max` is idle-hold's alone: as many connections as the box holds (lab/budget.ts plans and budgets it). */
export type Scale = 'quick' | 'default' | 'full' | 'max';
export type Figures = Record<string, number | null>;

/** What a scenario gets for one design: a running server, its sampler, and a way to start swarms against it. */
export interface CellContext {
  readonly design: LabDesign;
  readonly scale: Scale;
  readonly server: ServerProcess;
  readonly sampler: Sampler;
  /** `--scale max`: the budgeted plan (connections, workers, source addresses) and the hold. */
  readonly max?: MaxRun;
  /** Starts `wslab swarm --url <server> ...args` (summary to a temp file, own /metrics sampled for RTT). */
  swarm(args: string[]): Promise<SwarmRun>;
  /** Adds a finding in words to the cell (shown under the scenario's table). */
  note(text: string): void;
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
  /** Columns at a scale whose figures differ (idle-hold at `max`); `columns` when absent. */
  columnsAt?(scale: Scale): readonly Column[];
  /** Server flags the scenario needs (e.g. no idle timeout while holding): the same for every design, or by design and its flags. */
  readonly serverFlags?: readonly string[] | ((design: string, flags: readonly string[]) => readonly string[]);
  /** The variants this scenario compares, chosen from the lab's designs (it may add its own, e.g. worker counts). */
  designs(available: readonly LabDesign[], scale: Scale, max?: MaxRun): LabDesign[];
  /** What it ran at this scale, in one paragraph for the report. */
  method(scale: Scale, max?: MaxRun): string;
  /** Rough seconds per design at this scale, for the ETA. */
  seconds(scale: Scale, max?: MaxRun): number;
  run(ctx: CellContext): Promise<Figures>;
}

/** What `--scale max` runs: the plan lab/budget.ts made and checked against the box, and how long to hold. */
export interface MaxRun {
  readonly plan: HoldPlan;
  readonly holdMs: number;
}

export const SOURCE_IPS = '127.0.0.2-127.0.0.9';
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** Picks the value for the scale (`max` falls back to `full` where a scenario gives no `max` value). */
export const at = <T>(scale: Scale, values: Record<Exclude<Scale, 'max'>, T> & { max?: T }): T =>
  (scale === 'max' ? values.max ?? values.full : values[scale]);

/** The flags `scenario` adds to `wslab serve --design <design>`. */
export const scenarioServerFlags = (scenario: Scenario, design: string, flags: readonly string[] = []): readonly string[] =>
  typeof scenario.serverFlags === 'function' ? scenario.serverFlags(design, flags) : scenario.serverFlags ?? [];
