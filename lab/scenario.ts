import type { SwarmFlags } from '../client/flags.js';
import { toArgv } from '../core/flags.js';
import { SERVE_OPTIONS, type CommonServeOptions } from '../server/options.js';
import type { ClaimId, JudgedCell } from './claims.js';
import type { HoldPlan } from './budget.js';
import type { LabDesign } from './designs.js';
import type { LabServer, SwarmRun, SwarmSummary } from './processes.js';
import type { Speaks } from './targets.js';
import type { Curve } from './curves.js';
import type { Cell, Claim, Column, Machine } from './results.js';
import type { Sampler } from './sampler.js';

/** `max` is idle-hold's alone: as many connections as the box holds (lab/budget.ts plans and budgets it). */
export type Scale = 'quick' | 'default' | 'full' | 'max';
/** A scenario's figures, by name; null = not measured. Each scenario declares its own as a type. */
export type Figures = Record<string, number | null>;

/** What a scenario gets for one design: a running server, its sampler, and a way to start swarms against it. */
export interface CellContext {
  readonly design: LabDesign;
  readonly scale: Scale;
  readonly server: LabServer;
  readonly sampler: Sampler;
  /** `--scale max`: the budgeted plan (connections, workers, source addresses) and the hold. */
  readonly max?: MaxRun;
  /** Starts `wslab swarm --url <server>` with these flags (summary to a temp file, own /metrics sampled for RTT). */
  swarm(flags: Partial<SwarmFlags>): Promise<SwarmRun>;
  /** Adds a finding in words to the cell (shown under the scenario's table). */
  note(text: string): void;
  /**
   * Restarts the server as a deploy does: SIGTERM (our designs close every client with 1001), `downMs` down, then
   * the same server on the same ports; the sampler follows the new process. Resolves with the epoch ms at which the
   * old one had exited and the new one was ready. Throws for a server the lab did not start.
   */
  restart(downMs: number): Promise<{ stoppedAtMs: number; upAtMs: number }>;
  /** Waits for a swarm and returns its summary; a swarm that wrote none fails the cell with its stderr. */
  finish(run: SwarmRun): Promise<SwarmSummary>;
}

/** A load step of `wslab profile`: `wslab swarm --url <server>` with these flags, started `atSec` seconds after the server listens. */
export interface SwarmStep { readonly atSec: number; readonly flags: Partial<SwarmFlags> }

/**
 * One experiment of the lab, in one file: data (what it runs at each scale, which designs, which claims it informs,
 * its figures with their types), a runner that drives one design and returns those figures, the judge of its
 * claims, and the load `wslab profile` plays for it. The lab starts and stops the server around `run`.
 */
export interface Scenario<F extends Figures = Figures> {
  readonly id: string;
  readonly title: string;
  readonly question: string;
  readonly claims: readonly ClaimId[];
  /**
   * What a server must answer for this scenario to run on it, any one of them (lab/targets.ts `speaks`): empty =
   * nothing (connections are only held). Default `['wslab']`, the full protocol. A target that speaks none of them
   * gets a "not applicable" cell.
   */
  readonly needs?: readonly Speaks[];
  readonly columns: readonly Column<keyof F & string>[];
  /** Columns at a scale whose figures differ (idle-hold at `max`); `columns` when absent. */
  columnsAt?(scale: Scale): readonly Column[];
  /** Server options the scenario needs (e.g. no idle timeout while holding): the same for every variant, or by variant. */
  readonly serverOptions?: Partial<CommonServeOptions> | ((d: LabDesign) => Partial<CommonServeOptions>);
  /**
   * Run only when named in `--scenarios`, not by default (`npm start`): it restarts servers or takes minutes.
   * Default false.
   */
  readonly optIn?: boolean;
  /**
   * Its judge also sees the cells behind a proxy (its own, or `lab --via`'s), which other judges never do: it compares
   * a design with itself behind one. Default false.
   */
  readonly judgesProxied?: boolean;
  /** The variants this scenario compares, chosen from the lab's designs (it may add its own, e.g. worker counts). */
  designs(available: readonly LabDesign[], scale: Scale, max?: MaxRun): LabDesign[];
  /** What it ran at this scale, in one paragraph for the report. */
  method(scale: Scale, max?: MaxRun): string;
  /** Rough seconds per design at this scale, for the ETA. */
  seconds(scale: Scale, max?: MaxRun): number;
  run(ctx: CellContext): Promise<F>;
  /**
   * A verdict on each claim in `claims`, from this scenario's cells that ran (none when it did not run: every claim
   * is then inconclusive, saying what is missing). Only measured figures count.
   */
  judge(cells: readonly JudgedCell<F>[], machine: Machine): Claim[];
  /**
   * Its sweeps as curves with their knees named (lab/curves.ts), from the cells that ran ok (behind a proxy or
   * compressing too: a curve shows, it does not judge). Absent: the scenario measures points, not curves.
   */
  curves?(cells: readonly Cell[], scale: Scale, machine: Machine): Curve[];
  /** The scenario's load at its quick scale, sized to be profiled for `sec` seconds rather than measured. */
  profileLoad(sec: number): readonly SwarmStep[];
}

/** Declares a scenario with its figures typed, and erases them for the index. */
export const defineScenario = <F extends Figures>(s: Scenario<F>): Scenario => s as unknown as Scenario;

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

/** Why `design` cannot run `scenario` (it speaks none of what the scenario needs), or undefined when it can. */
export function notApplicable(scenario: Scenario, design: LabDesign): string | undefined {
  const needs = scenario.needs ?? ['wslab'];
  if (needs.length === 0 || needs.some((s) => design.speaks.includes(s))) return undefined;
  return `not applicable: ${design.label} speaks ${design.speaks.length ? design.speaks.join(', ') : 'nothing the lab knows'}; ` +
    `${scenario.id} needs ${needs.join(' or ')} (targets file: speaks)`;
}

/** The `wslab serve` flags `scenario` adds for the variant `design`, built by the options' own definitions. */
export const scenarioServerFlags = (scenario: Scenario, design: LabDesign): string[] =>
  toArgv(SERVE_OPTIONS, typeof scenario.serverOptions === 'function' ? scenario.serverOptions(design) : scenario.serverOptions ?? {});

/** A profile hold, ms: never under half a second. */
export const profileHold = (sec: number): number => Math.round(Math.max(0.5, sec) * 10) * 100;
/** A chatty profile swarm: `connections` clients sending `command` every `intervalMs` for `sec` seconds. */
export const chattyLoad = (connections: number, command: string, intervalMs: number, sec: number, spread = true): Partial<SwarmFlags> => ({
  connections, rate: 2000, holdMs: profileHold(sec), profile: 'chatty', command, intervalMs, ...(spread ? { sourceIps: SOURCE_IPS } : {}),
});
