/**
 * The lab's results, as written to reports/<timestamp>/results.json (schema `wslab-lab-results/1`, documented in
 * docs/lab-results.md). Every number comes from a sampler scrape of a server's /metrics, /proc, or a swarm summary.
 */
import type { Attribution } from '../client/attribution.js';
import type { BoxNoise } from '../metrics/noise.js';
import type { Curve } from './curves.js';
import type { VariantTraits } from './designs.js';

export const RESULTS_SCHEMA = 'wslab-lab-results/1';

export type Verdict = 'confirmed' | 'refuted' | 'inconclusive';

export interface Claim {
  /** A claim of lab/claims.ts CLAIM_TEXT; the ids in a run are those of the scenarios that exist (lab/scenarios/index.ts CLAIM_IDS). */
  id: string;
  /** The seed article's claim, in one sentence. */
  claim: string;
  verdict: Verdict;
  /** The measured numbers behind the verdict, e.g. "threads: 39.8 KiB per connection vs uws 0.9 KiB: ×44". */
  evidence: string;
}

/** Time series sampled every 500 ms while a cell runs; all arrays have the length of `t`. null = not measured. */
export interface Series {
  /** Seconds since the cell started. */
  t: number[];
  /** wslab_connections_open summed over the server. */
  open: (number | null)[];
  /** RSS of the server's whole process tree, bytes. */
  rssBytes: (number | null)[];
  /** OS threads of the server's process tree. */
  threads: (number | null)[];
  /** Server event-loop delay, max over the last interval, ms (null for a design without a loop doing the work). */
  loopDelayMs: (number | null)[];
  /** Server CPU use over the last interval, in cores (1.0 = one core busy). */
  cpuCores: (number | null)[];
  /** Open file descriptors of the server's process tree (a socket each, plus its files): any server, from /proc. */
  fds: (number | null)[];
  /** Context switches per second of the server's process tree (voluntary + involuntary) over the last interval. */
  switchesPerSec: (number | null)[];
  /** Client round-trip time over the last interval from the swarm's histogram, ms. */
  rttP50Ms: (number | null)[];
  rttP99Ms: (number | null)[];
  /**
   * Service available, as slowhttptest charts it: 1 when the latest probe (a fresh connection, upgrade and `echo`
   * answered within 1 s) succeeded, 0 when it failed; null where the scenario does not probe.
   */
  available: (number | null)[];
  /** Machine-wide, sampled only by `--scale max` (lab/sockstat.ts): MemAvailable in /proc/meminfo, bytes. */
  boxAvailableBytes?: (number | null)[];
  /** TCP sockets in use on the box (/proc/net/sockstat `inuse`: both ends of every loopback connection). */
  tcpInuse?: (number | null)[];
  /** Pages charged to tcp_mem (/proc/net/sockstat `mem`). */
  tcpMemPages?: (number | null)[];
  /** Behind a proxy (`--via`): client connections the proxy holds (wslab_proxy_connections_open); absent otherwise. */
  proxyOpen?: (number | null)[];
}
/** The series every cell has; the box series follow only at `--scale max`, the proxy's only behind one. */
const CELL_SERIES = ['open', 'rssBytes', 'threads', 'fds', 'loopDelayMs', 'cpuCores', 'switchesPerSec', 'rttP50Ms', 'rttP99Ms', 'available'] as const;
export const SERIES_KEYS = [...CELL_SERIES, 'boxAvailableBytes', 'tcpInuse', 'tcpMemPages', 'proxyOpen'] as const;
export const emptySeries = (): Series => ({ t: [], ...Object.fromEntries(CELL_SERIES.map((k) => [k, []])) }) as unknown as Series;

/** The noise guard (metrics/noise.ts) over a cell. */
export type CellNoise = BoxNoise;

export interface Cell {
  /** Design variant label, e.g. `uws`, `threads --pool 16`, `cluster --workers 3`. */
  design: string;
  status: 'ok' | 'failed' | 'skipped';
  /** What the variant is (model, fixed workers, defences, …): what the verdicts judge it by, never its name. */
  traits: VariantTraits;
  /** Why the cell failed or was skipped (a design crashed, the machine ran out of something, addon not built). */
  cause?: string;
  /** Scenario-specific figures, named with their unit (see each scenario's `columns`). */
  figures: Record<string, number | null>;
  /** Findings in words that figures cannot carry (idle-hold at `max`: the budget, the limit that stopped it). */
  notes?: string[];
  series: Series;
  /**
   * Who ended what its swarms did not close themselves (`swarm --server-metrics`, client/attribution.ts): one entry
   * per swarm, in the order they started. Only for an ok cell of one of our designs (a target has no wslab counters).
   */
  attribution?: Attribution[];
  /** How busy the box was outside the run during the cell; absent in results written before the noise guard. */
  noise?: CellNoise;
  /** `lab --profile <tool>`: the clinic report of this design under this scenario, relative to the report folder. */
  profile?: string;
  /** What clinic's analysis found in that profile (one line), or why there is none. */
  profileNote?: string;
  /** `lab --repeat N` (N > 1): each figure's min and max over the runs that measured it (`figures` are their medians). */
  spread?: Record<string, Spread | null>;
  /** `lab --repeat N` (N > 1): every run of this cell, in the order they ran (lab/repeat.ts mergeRuns). */
  repeats?: CellRun[];
}

/** A figure over the repeats of a cell: the lowest and highest measured, and how many runs measured it. */
export interface Spread { min: number; max: number; n: number }

/** One run of a repeated cell, as it was measured. */
export type CellRun = Pick<Cell, 'status' | 'cause' | 'figures' | 'noise' | 'series' | 'attribution'>;

export interface Column<K extends string = string> {
  key: K;
  label: string;
  unit: string;
}

export interface ScenarioResult {
  id: string;
  title: string;
  question: string;
  /** What the scenario ran, in one paragraph (counts, rates, durations at this scale). */
  method: string;
  columns: Column[];
  cells: Cell[];
  /** Its sweeps, each a figure over a parameter with its knees named (lab/curves.ts); absent for a scenario without. */
  curves?: Curve[];
}

export interface Machine {
  cpus: number;
  cpuModel: string;
  memoryBytes: number;
  fdLimit: number;
  node: string;
  kernel: string;
  designs: Record<string, string>;
}

export interface LabResults {
  schema: typeof RESULTS_SCHEMA;
  startedAt: string;
  finishedAt: string;
  durationSec: number;
  scale: 'quick' | 'default' | 'full' | 'max';
  machine: Machine;
  scenarios: ScenarioResult[];
  claims: Claim[];
  /** `--repeat N`: how many times each cell ran (1 when absent: results written before --repeat). */
  repeat?: number;
  /** The signal that cut the run short (its report holds the cells finished before it), or null. */
  interrupted: 'SIGINT' | 'SIGTERM' | null;
}
