/**
 * `wslab compare A B`: two lab runs (results.json, schema wslab-lab-results/1), cell by cell and figure by figure:
 * B − A and the change relative to A, the verdicts that changed, and `--threshold` gates on any figure of any cell
 * (`idle-hold.uws.rssPerConnectionBytes<+10%`): one failing = exit 99, as the swarm's thresholds. Designs and
 * targets (a user's own server, docs/targets.md) are both cells, so a gate works on either.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { compare, type Op as SwarmOp } from '../client/thresholds.js';
import { UsageError } from '../core/errors.js';
import { describeNoise } from '../metrics/noise.js';
import { figureText, formatFigure } from './report.js';
import { RESULTS_SCHEMA, type LabResults, type Spread, type Verdict } from './results.js';

/** A run read from disk: the file it came from and what it holds. */
export interface Run {
  readonly file: string;
  readonly results: LabResults;
}

/** Reads a run: a results.json, or a report folder holding one. Anything else is a one-line UsageError. */
export function readRun(name: string, given: string): Run {
  let file = given;
  if (!existsSync(file)) throw new UsageError(`${name}: no such file or folder "${given}" (give a results.json or the report folder holding it)`);
  if (statSync(file).isDirectory()) {
    file = join(file, 'results.json');
    if (!existsSync(file)) throw new UsageError(`${name}: the folder "${given}" holds no results.json (give a report folder, reports/<timestamp>)`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new UsageError(`${name}: "${file}" is not JSON (${(err as Error).message.split('\n')[0]})`);
  }
  const r = parsed as Partial<LabResults> | null;
  if (typeof r !== 'object' || r === null || r.schema !== RESULTS_SCHEMA || !Array.isArray(r.scenarios) || !Array.isArray(r.claims)) {
    throw new UsageError(`${name}: "${file}" is not a lab results file (schema ${JSON.stringify(r?.schema ?? null)}, expected "${RESULTS_SCHEMA}")`);
  }
  return { file, results: r as LabResults };
}

export type Op = Extract<SwarmOp, '<' | '<=' | '>' | '>='>;

/**
 * One gate. `value` is compared with B's figure itself (`bound`), with B − A (`delta`, a signed number) or with
 * (B − A) / A (`relative`, a signed percentage).
 */
export interface Threshold {
  readonly expression: string;
  readonly scenario: string;
  readonly design: string;
  readonly figure: string;
  readonly op: Op;
  readonly kind: 'bound' | 'delta' | 'relative';
  /** For `relative`, a fraction (+10% → 0.1). */
  readonly value: number;
}

/** `<scenario>.<design>.<figure><op><value>`; a figure may be a curve's point, `rttP99Ms@250`, `smallP99Ms@0.27`. */
const EXPRESSION = /^\s*([\w-]+)\.(.+?)\.(\w+(?:@\d+(?:\.\d+)?)?)\s*(<=|>=|<|>)\s*([+-]?)(\d+(?:\.\d+)?(?:e[+-]?\d+)?)(%?)\s*$/i;

/**
 * Parses one `--threshold` and checks that its cell and figure exist in A or B, so that a typo is refused before
 * anything is compared (the known scenarios, designs or figures are named).
 */
export function parseThreshold(expression: string, a: LabResults, b: LabResults): Threshold {
  const bad = (why: string): UsageError => new UsageError(`--threshold "${expression}": ${why}`);
  const m = EXPRESSION.exec(expression);
  if (!m) {
    throw bad('not of the form <scenario>.<design>.<figure><op><value>, e.g. idle-hold.uws.rssPerConnectionBytes<+10% ' +
      '(ops < <= > >=; +N% or -N% is the change from A, +N or -N the difference B − A, a bare N bounds B itself)');
  }
  const [, scenario, rawDesign, figure, op, sign, digits, percent] = m;
  const design = rawDesign.trim();
  if (percent && !sign) throw bad(`"${digits}%" needs a sign: +${digits}% (B may grow by up to ${digits} %) or -${digits}%`);
  const scenarios = [...a.scenarios, ...b.scenarios].filter((s) => s.id === scenario);
  if (scenarios.length === 0) throw bad(`no scenario "${scenario}" in A or B (they have: ${unique([...a.scenarios, ...b.scenarios].map((s) => s.id)).join(', ')})`);
  const cells = scenarios.flatMap((s) => s.cells).filter((c) => c.design === design);
  if (cells.length === 0) throw bad(`no design "${design}" in ${scenario} (A and B have: ${unique(scenarios.flatMap((s) => s.cells.map((c) => c.design))).join(', ')})`);
  const known = unique(scenarios.flatMap((s) => s.columns.map((c) => c.key)).concat(cells.flatMap((c) => Object.keys(c.figures))));
  if (!known.includes(figure)) throw bad(`no figure "${figure}" in ${scenario} (its figures: ${known.join(', ')})`);
  const magnitude = Number(digits) * (sign === '-' ? -1 : 1);
  return Object.freeze({
    expression: expression.trim(), scenario, design, figure, op: op as Op,
    kind: percent ? 'relative' : sign ? 'delta' : 'bound', value: percent ? magnitude / 100 : magnitude,
  });
}

const unique = <T>(xs: T[]): T[] => [...new Set(xs)];

/** A figure of a cell in one run: null when the cell is absent, failed or did not measure it. */
function figureOf(r: LabResults, scenario: string, design: string, figure: string): number | null {
  const cell = r.scenarios.find((s) => s.id === scenario)?.cells.find((c) => c.design === design);
  const v = cell?.status === 'ok' ? cell.figures[figure] : null;
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

/** `--repeat`: the figure's min–max over the cell's runs, or null (one run, or not measured). */
function spreadOf(r: LabResults, scenario: string, design: string, figure: string): Spread | null {
  const cell = r.scenarios.find((s) => s.id === scenario)?.cells.find((c) => c.design === design);
  const sp = cell?.status === 'ok' ? cell.spread?.[figure] : null;
  return sp && sp.n > 1 ? sp : null;
}

export interface ThresholdVerdict {
  readonly threshold: Threshold;
  readonly a: number | null;
  readonly b: number | null;
  /** What was compared with the threshold's value (B, B − A or the relative change), or null when it cannot be. */
  readonly actual: number | null;
  readonly ok: boolean;
  /** Why it could not be judged (a figure not measured, A of 0 for a relative change). */
  readonly why?: string;
}

export function evaluate(t: Threshold, a: LabResults, b: LabResults): ThresholdVerdict {
  const va = figureOf(a, t.scenario, t.design, t.figure);
  const vb = figureOf(b, t.scenario, t.design, t.figure);
  const fail = (why: string): ThresholdVerdict => ({ threshold: t, a: va, b: vb, actual: null, ok: false, why });
  if (vb === null) return fail('not measured in B');
  if (t.kind !== 'bound' && va === null) return fail('not measured in A');
  if (t.kind === 'relative' && va === 0) return fail('A is 0: no relative change');
  const actual = t.kind === 'bound' ? vb : t.kind === 'delta' ? vb - va! : (vb - va!) / Math.abs(va!);
  return { threshold: t, a: va, b: vb, actual, ok: compare(actual, t.op, t.value) };
}

export interface FigureDiff {
  readonly scenario: string;
  readonly design: string;
  readonly figure: string;
  readonly label: string;
  readonly unit: string;
  readonly a: number | null;
  readonly b: number | null;
  /** B − A, null unless both measured it. */
  readonly delta: number | null;
  /** (B − A) / |A|, null unless both measured it and A ≠ 0. */
  readonly relative: number | null;
  /** `--repeat` runs: each side's min–max over its runs (a and b are then medians), null for a single run. */
  readonly spreadA: Spread | null;
  readonly spreadB: Spread | null;
  /** Both sides repeated and their min–max ranges overlap: the change is within the runs' own spread. */
  readonly withinSpread: boolean | null;
}

interface RunMeta { file: string; startedAt: string; scale: string; interrupted: string | null }

export interface Comparison {
  readonly a: RunMeta;
  readonly b: RunMeta;
  readonly figures: FigureDiff[];
  /** Cells one run lacks, failed in, or ran on a busy box (metrics/noise.ts): "idle-hold × threads: failed in B (cause)". */
  readonly cells: string[];
  readonly verdicts: { id: string; a: Verdict | null; b: Verdict | null; evidenceA: string | null; evidenceB: string | null }[];
  readonly thresholds: ThresholdVerdict[];
}

/** Everything B changed against A, in A's order (then what only B has). */
export function compareRuns(A: Run, B: Run, thresholds: readonly Threshold[]): Comparison {
  const a = A.results, b = B.results;
  const figures: FigureDiff[] = [];
  const cells: string[] = [];
  for (const id of unique([...a.scenarios, ...b.scenarios].map((s) => s.id))) {
    const sa = a.scenarios.find((s) => s.id === id), sb = b.scenarios.find((s) => s.id === id);
    const columns = unique([...(sa?.columns ?? []), ...(sb?.columns ?? [])].map((c) => c.key))
      .map((k) => [...(sa?.columns ?? []), ...(sb?.columns ?? [])].find((c) => c.key === k)!);
    for (const design of unique([...(sa?.cells ?? []), ...(sb?.cells ?? [])].map((c) => c.design))) {
      const ca = sa?.cells.find((c) => c.design === design), cb = sb?.cells.find((c) => c.design === design);
      for (const [which, c] of [['A', ca], ['B', cb]] as const) {
        if (!c) cells.push(`${id} × ${design}: not in ${which}`);
        else if (c.status !== 'ok') cells.push(`${id} × ${design}: ${c.status} in ${which}${c.cause ? ` (${c.cause})` : ''}`);
        else if (c.noise && !c.noise.quiet) cells.push(`${id} × ${design}: ${describeNoise(c.noise)} in ${which}: its figures share the box with another load`);
      }
      for (const col of columns) {
        const va = figureOf(a, id, design, col.key), vb = figureOf(b, id, design, col.key);
        if (va === null && vb === null) continue;
        const delta = va !== null && vb !== null ? vb - va : null;
        const spreadA = spreadOf(a, id, design, col.key), spreadB = spreadOf(b, id, design, col.key);
        figures.push({ scenario: id, design, figure: col.key, label: col.label, unit: col.unit, a: va, b: vb, delta,
          relative: delta !== null && va !== 0 ? delta / Math.abs(va!) : null, spreadA, spreadB,
          withinSpread: spreadA && spreadB ? spreadA.min <= spreadB.max && spreadB.min <= spreadA.max : null });
      }
    }
  }
  const verdicts = unique([...a.claims, ...b.claims].map((c) => c.id)).flatMap((id) => {
    const x = a.claims.find((c) => c.id === id), y = b.claims.find((c) => c.id === id);
    return (x?.verdict ?? null) === (y?.verdict ?? null) ? [] : [{ id, a: x?.verdict ?? null, b: y?.verdict ?? null, evidenceA: x?.evidence ?? null, evidenceB: y?.evidence ?? null }];
  });
  const meta = (r: Run): RunMeta => ({ file: r.file, startedAt: r.results.startedAt, scale: r.results.scale, interrupted: r.results.interrupted ?? null });
  return { a: meta(A), b: meta(B), figures, cells, verdicts, thresholds: thresholds.map((t) => evaluate(t, a, b)) };
}

const signed = (s: string): string => (s.startsWith('-') || s === '—' ? s : `+${s}`);

/** `+8.3 %`, `−` when there is none. */
const percent = (r: number | null): string => (r === null ? '—' : `${r >= 0 ? '+' : ''}${(r * 100).toFixed(1)} %`);

/** The figure a threshold compared, in its own terms: `+5.3 %`, `+120 B`, `1.2 KiB`. */
function describeActual(v: ThresholdVerdict, unit: string): string {
  if (v.actual === null) return v.why!;
  const t = v.threshold;
  const shown = t.kind === 'relative' ? percent(v.actual) : t.kind === 'delta' ? signed(formatFigure(v.actual, unit)) : formatFigure(v.actual, unit);
  return `A ${formatFigure(v.a, unit)}, B ${formatFigure(v.b, unit)}: ${shown}`;
}

/** A side's figure: under --repeat its median with the runs' min–max, as the report shows it. */
const shown = (v: number | null, spread: Spread | null, f: FigureDiff): string =>
  figureText({ figures: { [f.figure]: v }, spread: spread ? { [f.figure]: spread } : undefined }, { key: f.figure, label: f.label, unit: f.unit });

/** The comparison as a terminal shows it: a table per scenario, then cells, verdicts and thresholds. */
export function comparisonText(c: Comparison): string[] {
  const about = (m: RunMeta): string => `${m.file} (${m.startedAt}, ${m.scale}${m.interrupted ? `, interrupted by ${m.interrupted}: cells not run are missing` : ''})`;
  const out = [`A: ${about(c.a)}`, `B: ${about(c.b)}`];
  for (const scenario of unique(c.figures.map((f) => f.scenario))) {
    const rows = c.figures.filter((f) => f.scenario === scenario)
      .map((f) => [f.design, f.unit && f.unit !== 'bytes' && f.unit !== 'ratio' && !f.label.includes(f.unit) ? `${f.label} (${f.unit})` : f.label,
        shown(f.a, f.spreadA, f), shown(f.b, f.spreadB, f), f.delta === null ? '—' : signed(f.unit === 'ratio' ? `${(f.delta * 100).toFixed(1)} pt` : formatFigure(f.delta, f.unit)),
        percent(f.relative) + (f.withinSpread === null ? '' : f.withinSpread ? ' (within spread)' : ' (spreads apart)')]);
    const head = ['design', 'figure', 'A', 'B', 'B − A', 'change'];
    const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
    const line = (r: string[]): string => `  ${r.map((x, i) => (i < 2 ? x.padEnd(widths[i]) : x.padStart(widths[i]))).join('  ')}`.trimEnd();
    out.push('', scenario, line(head), ...rows.map(line));
  }
  if (c.cells.length) out.push('', 'cells:', ...c.cells.map((s) => `  ${s}`));
  out.push('', c.verdicts.length ? 'verdicts changed:' : 'verdicts: none changed');
  for (const v of c.verdicts) out.push(`  ${v.id}: ${v.a ?? 'not judged'} → ${v.b ?? 'not judged'}${v.evidenceB ? ` (B: ${v.evidenceB})` : ''}`);
  for (const v of c.thresholds) {
    const unit = c.figures.find((f) => f.scenario === v.threshold.scenario && f.figure === v.threshold.figure)?.unit ?? '';
    out.push(`threshold ${v.ok ? 'passed' : 'FAILED'}: ${v.threshold.expression} (${describeActual(v, unit)})`);
  }
  return out;
}
