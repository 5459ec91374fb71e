import { judged, type VariantTraits } from './designs.js';
import { combineRuns, runCells } from './repeat.js';
import type { Cell, Claim, Machine, ScenarioResult, Verdict } from './results.js';

/** The seed articles' claims, one sentence each, as the report states them; verdicts follow this order. */
export const CLAIM_TEXT = {
  'thread-per-connection-memory': 'A thread server holds one thread per open WebSocket, and pays for it in memory per connection.',
  'loop-unlimited-connections': 'A single loop holds "essentially unlimited" connections: only OS limits (file descriptors, memory) stop it.',
  'slow-client-dos': 'A single loop is far less exposed to slow-client DoS (slowloris, clients that never read) than a fixed worker pool.',
  'blocking-call': 'One blocking call (the time.sleep mistake) stalls every client of a loop; threads isolate it.',
  'slow-backend-queueing': 'When a backend slows from 50 ms to 500 ms, fixed workers queue while a loop just waits longer.',
  'mixed-sizes': 'With mixed task sizes, small requests wait behind large ones where one worker serves them in order (a loop); independently scheduled threads keep them fast.',
  'context-switch': 'Many threads pay in context switches for work a loop does without them.',
  'cpu-bound-processes': 'CPU-bound work wants processes, about cores (+1) of them.',
  'tasks-vs-threads-scale': 'Tasks scale to far more concurrent connections than threads on the same machine.',
  'gil-threads': 'Python threads do not run CPU-bound work in parallel (the GIL); processes do.',
  'proxy-shield': 'A reverse proxy in front (nginx, HAProxy) shields a WebSocket server from slow clients.',
} as const;
export type ClaimId = keyof typeof CLAIM_TEXT;

/** A cell as a judge sees it: the variant's label and traits, and the scenario's own figures, typed. */
export interface JudgedCell<F> {
  readonly design: string;
  readonly traits: VariantTraits;
  readonly figures: { readonly [K in keyof F]: F[K] | null | undefined };
}

/** Something that judges claims from its cells: a scenario (lab/scenario.ts). */
export interface Judge {
  readonly id: string;
  readonly claims: readonly ClaimId[];
  /** Its judge compares a design with itself behind proxies (lab --via cells), which other judges never see. Default false. */
  readonly judgesProxied?: boolean;
  judge(cells: readonly JudgedCell<Record<string, number | null>>[], machine: Machine): Claim[];
}

export const verdict = (id: ClaimId, v: Verdict, evidence: string): Claim => ({ id, claim: CLAIM_TEXT[id], verdict: v, evidence });
const NOT_MEASURED = 'not measured: ';
export const missing = (id: ClaimId, scenario: string, what: string): Claim =>
  verdict(id, 'inconclusive', `${NOT_MEASURED}scenario ${scenario} has no ${what} result in this run`);
/** Whether a claim's verdict rests on a measurement (an inconclusive one may; a missing one does not). */
export const measured = (c: Claim): boolean => !c.evidence.startsWith(NOT_MEASURED);

/** "4 of 9 claims decided (3 confirmed, 1 refuted, 2 inconclusive, 3 not measured)": what the run's last line says. */
export function claimsLine(claims: readonly Claim[], of: number): string {
  const n = (f: (c: Claim) => boolean): number => claims.filter(f).length;
  const confirmed = n((c) => c.verdict === 'confirmed');
  const refuted = n((c) => c.verdict === 'refuted');
  const unmeasured = n((c) => !measured(c)) + (of - claims.length);
  const inconclusive = claims.length - confirmed - refuted - n((c) => !measured(c));
  return `${confirmed + refuted} of ${of} claims decided (${confirmed} confirmed, ${refuted} refuted, ${inconclusive} inconclusive, ${unmeasured} not measured)`;
}

/** A measured number, or null (absent, null, NaN, ±∞ all count as not measured). */
export const num = (v: number | null | undefined): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
/** The first cell matching `pick` with a measured figure `key`, and that figure. */
export function figure<F>(cells: readonly JudgedCell<F>[], pick: (c: JudgedCell<F>) => boolean, key: keyof F): number | null {
  const c = cells.find(pick);
  return c ? num(c.figures[key] as number | null | undefined) : null;
}

export const kib = (b: number): string => `${(b / 1024).toFixed(1)} KiB`;
export const ms = (v: number): string => `${Math.round(v)} ms`;
export const ratio = (a: number, b: number): number => (b > 0 ? a / b : Infinity);
export const times = (r: number): string => (Number.isFinite(r) ? `×${r >= 10 ? Math.round(r) : r.toFixed(1)}` : '×∞');
export const pct = (v: number | null | undefined): string => (typeof v === 'number' ? `${(v * 100).toFixed(v >= 0.995 && v < 1 ? 1 : 0)} %` : 'n/a');

/**
 * Verdicts from measured figures only: every judge gets its scenario's cells that ran (none when the scenario did
 * not run or failed, so its claims come back inconclusive, saying why). Under --repeat a claim is judged from the
 * medians and from each run alone, and decided only when every run agrees. Claims come in CLAIM_TEXT order.
 */
export function judge(judges: readonly Judge[], results: readonly ScenarioResult[], machine: Machine): Claim[] {
  const order = Object.keys(CLAIM_TEXT);
  return judges.flatMap((j) => {
    // a design behind a proxy (lab --via) or compressing (lab --deflate) is shown beside the others, not judged
    const cells = results.find((r) => r.id === j.id)?.cells.filter((c: Cell) => c.status === 'ok' && (judged(c) || (j.judgesProxied && !c.traits.compressing))) ?? [];
    // a verdict resting on a cell measured while something else loaded the box says so (metrics/noise.ts)
    const busy = cells.filter((c) => c.noise && !c.noise.quiet);
    const onBusy = busy.length ? ` — measured on a busy box: ${busy.map((c) => `${c.design} with ${c.noise!.outsideCores.toFixed(2)} cores used outside the run${c.noise!.stealCores >= 0.1 ? `, ${c.noise!.stealCores.toFixed(2)} stolen` : ''}`).join('; ')}` : '';
    // --repeat: decided only when every run, judged alone, decides it the same way (lab/repeat.ts)
    const runs = Math.max(0, ...cells.map((c) => c.repeats?.length ?? 0));
    const perRun = Array.from({ length: runs > 1 ? runs : 0 }, (_, k) => j.judge(runCells(cells, k), machine));
    const claims = j.judge(cells, machine).map((c) => (perRun.length ? combineRuns(c, perRun.map((p) => p.find((x) => x.id === c.id)!), measured) : c));
    return claims.map((c) => (onBusy && measured(c) ? { ...c, evidence: c.evidence + onBusy } : c));
  }).sort((a, b) => order.indexOf(a.id) - order.indexOf(b.id));
}
