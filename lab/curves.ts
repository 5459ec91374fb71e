/**
 * Curves: a figure over a swept parameter, and where it bends. A scenario that sweeps (slow-backend over backend
 * latency, cpu-fanout over runnable connections) measures each point as a figure of its own, keyed `<figure>@<x>`
 * (`rttP99Ms@250`), so --repeat's medians and spreads, `wslab compare` and the judges read points as any other
 * figure; a curve across variants (cpu-bound over worker processes) takes one point per cell. The scenario's
 * `curves` turns its cells into lines and names the knees in words; results.json keeps them and the report charts
 * them (lab/report.ts).
 */
import type { Cell, Spread } from './results.js';

export interface CurvePoint {
  x: number;
  y: number;
  /** `--repeat`: the lowest and highest of the runs (y is their median). */
  min?: number;
  max?: number;
}

export interface CurveLine { design: string; points: CurvePoint[] }

export interface Curve {
  /** Unique within its scenario; the chart's id is `<scenario>/curve/<id>`. */
  id: string;
  title: string;
  x: { label: string; unit: string; log?: boolean };
  y: { label: string; unit: string; log?: boolean };
  lines: CurveLine[];
  /** Where each line bends, in words with the numbers that show it (or that it does not bend within the sweep). */
  knees: string[];
}

/** The figure of one point of a sweep. */
export const pointKey = (key: string, x: number): string => `${key}@${x}`;

const pointOf = (x: number, y: number | null | undefined, spread: Spread | null | undefined): CurvePoint[] =>
  typeof y === 'number' && Number.isFinite(y)
    ? [{ x, y, ...(spread && spread.n > 1 && spread.min !== spread.max ? { min: spread.min, max: spread.max } : {}) }] : [];

/** A cell's sweep of `key` over `xs` as its line; points it did not measure are left out. */
export const sweepLine = (c: Pick<Cell, 'design' | 'figures' | 'spread'>, key: string, xs: readonly number[]): CurveLine =>
  ({ design: c.design, points: xs.flatMap((x) => pointOf(x, c.figures[pointKey(key, x)], c.spread?.[pointKey(key, x)])) });

/** One point per cell (a variant each: cpu-bound's worker counts), x from the cell, sorted by x. */
export function acrossLine<C extends Pick<Cell, 'figures' | 'spread'>>(label: string, cells: readonly C[], x: (c: C) => number | null, key: string): CurveLine {
  const points = cells.flatMap((c) => {
    const at = x(c);
    return at === null ? [] : pointOf(at, c.figures[key], c.spread?.[key]);
  });
  return { design: label, points: points.sort((a, b) => a.x - b.x) };
}

/** The first point (in x order) at which `bent` holds, with the point before it; null when none does. */
export function kneeOf(points: readonly CurvePoint[], bent: (p: CurvePoint, before: CurvePoint | undefined) => boolean): { at: CurvePoint; before?: CurvePoint } | null {
  for (const [i, p] of points.entries()) if (bent(p, points[i - 1])) return { at: p, ...(i > 0 ? { before: points[i - 1] } : {}) };
  return null;
}
