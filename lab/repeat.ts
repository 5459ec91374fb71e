/**
 * `lab --repeat N`: every cell runs N times (rounds: all designs of a scenario, then all of them again, so a noisy
 * minute lands on every design rather than on one) and the runs of a cell are merged into one: its figures are the
 * medians of the runs that measured them, `spread` their min–max, `repeats` each run as it was. A claim is decided
 * only when every run's cells, judged alone, decide it the same way (lab/claims.ts judge).
 */
import type { BoxNoise } from '../metrics/noise.js';
import type { Cell, CellRun, Claim, Spread } from './results.js';

/** Median of measured numbers (the mean of the middle two for an even count), null when there are none. */
export function median(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const measuredValue = (v: number | null | undefined): v is number => typeof v === 'number' && Number.isFinite(v);

/**
 * The runs of one cell (same scenario and design, in the order they ran) as one cell: ok when any run was, figures
 * the medians over the ok runs, `spread` each figure's min and max over them, series and attribution the first ok
 * run's (every run's are kept in `repeats`), noise the busiest run's (quiet only when every run was), notes of each
 * run marked with it.
 */
export function mergeRuns(runs: readonly Cell[], planned: number): Cell {
  const ok = runs.filter((r) => r.status === 'ok');
  const first = ok[0] ?? runs[0];
  const keys = [...new Set(runs.flatMap((r) => Object.keys(r.figures)))];
  const figures: Record<string, number | null> = {};
  const spread: Record<string, Spread | null> = {};
  for (const k of keys) {
    const vs = ok.map((r) => r.figures[k]).filter(measuredValue);
    figures[k] = median(vs);
    spread[k] = vs.length ? { min: Math.min(...vs), max: Math.max(...vs), n: vs.length } : null;
  }
  const noises = runs.map((r) => r.noise).filter((n): n is BoxNoise => n !== undefined);
  const notes = [
    ...runs.flatMap((r, i) => (r.status === 'ok' ? [] : [`repeat ${i + 1} of ${planned} ${r.status}: ${r.cause ?? 'no cause recorded'}`])),
    ...(runs.length < planned ? [`${runs.length} of ${planned} repeats ran (the lab was interrupted)`] : []),
    ...dedupe(runs.flatMap((r, i) => (r.notes ?? []).map((n) => ({ n, i })))),
  ];
  const cell: Cell = {
    design: first.design, traits: first.traits, status: ok.length ? 'ok' : first.status, figures, series: first.series, spread,
    repeats: runs.map((r) => ({ status: r.status, ...(r.cause ? { cause: r.cause } : {}), figures: r.figures, ...(r.noise ? { noise: r.noise } : {}), series: r.series,
      ...(r.attribution ? { attribution: r.attribution } : {}) })),
    ...(first.attribution ? { attribution: first.attribution } : {}),
  };
  if (!ok.length && first.cause) cell.cause = first.cause;
  if (noises.length) {
    cell.noise = {
      outsideCores: Math.max(...noises.map((n) => n.outsideCores)), stealCores: Math.max(...noises.map((n) => n.stealCores)),
      quiet: noises.every((n) => n.quiet),
    };
  }
  if (notes.length) cell.notes = notes;
  return cell;
}

/** A note every run made once; a note of some runs only, marked with them. */
function dedupe(notes: readonly { n: string; i: number }[]): string[] {
  const by = new Map<string, number[]>();
  for (const { n, i } of notes) by.set(n, [...(by.get(n) ?? []), i + 1]);
  const runs = new Set(notes.map((x) => x.i)).size;
  return [...by].map(([n, is]) => (is.length === runs ? n : `repeat ${is.join(', ')}: ${n}`));
}

/** The cells of run `k` (0-based) of each merged cell that ran ok in it, as a judge sees cells. */
export const runCells = (cells: readonly Cell[], k: number): Cell[] =>
  cells.flatMap((c) => {
    const r: CellRun | undefined = c.repeats?.[k];
    return r && r.status === 'ok' ? [{ ...c, figures: r.figures }] : [];
  });

/**
 * The verdict on one claim over N runs: `medians` judged from the merged cells, `perRun` from each run's alone. Every
 * run deciding it the same way keeps that verdict (its evidence the medians'); runs that disagree make it
 * inconclusive, with each run's numbers: "the spread crosses the threshold" when every run measured it, "not every
 * repeat measured it" when one did not.
 */
export function combineRuns(medians: Claim, perRun: readonly Claim[], measured: (c: Claim) => boolean): Claim {
  const n = perRun.length;
  if (!measured(medians) && perRun.every((c) => !measured(c))) return medians; // nothing to repeat: says what is missing
  const same = perRun.every((c) => c.verdict === perRun[0].verdict);
  if (same && perRun[0].verdict !== 'inconclusive') {
    const v = perRun[0].verdict;
    const evidence = medians.verdict === v ? medians.evidence : perRun[0].evidence;
    return { ...medians, verdict: v, evidence: `${evidence} (${medians.verdict === v ? 'medians' : 'repeat 1'} of ${n} repeats; each repeat alone: ${v})` };
  }
  if (same) return { ...medians, verdict: 'inconclusive', evidence: `${medians.evidence} (medians of ${n} repeats; each repeat alone: inconclusive)` };
  const why = perRun.every(measured) ? 'the spread crosses the threshold' : 'not every repeat measured it';
  return {
    ...medians, verdict: 'inconclusive',
    evidence: `${why}: ${perRun.map((c, i) => `repeat ${i + 1} ${c.verdict}: ${c.evidence}`).join('; ')}`,
  };
}
