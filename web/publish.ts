/**
 * What each command publishes to its live page: the lab's plan, cells, samples and verdicts (a LabObserver), and the
 * sections of `serve` and `swarm`. The chart declarations come from the report's (lab/report.ts SERIES_CHARTS), so a
 * live chart and the report's chart of the same series have the same title, axis and unit.
 */
import { SERIES_CHARTS } from '../lab/report.js';
import { SERIES_KEYS } from '../lab/results.js';
import type { LabObserver } from '../lab/run.js';
import type { SampleRow } from '../lab/sampler.js';
import type { LiveWeb } from './live.js';
import type { ChartDecl } from './messages.js';

/** The report's charts of the sampled series, as a section declares them. */
export const SAMPLED_CHARTS: readonly ChartDecl[] = SERIES_KEYS.map((key) => ({ key, ...SERIES_CHARTS[key] }));

/** One sample as a point of `section`: each series' value on the line `line` (a design, or the one server). */
export function samplePoint(section: string, line: string, t: number, row: SampleRow) {
  const y: Record<string, Record<string, number | null>> = {};
  for (const [key, v] of Object.entries(row)) if (v !== undefined) y[key] = { [line]: v };
  return { type: 'point' as const, section, t, y };
}

/** The lab's observer that publishes to `web`: a section per scenario, a line per design, as in the report. */
export function labPublisher(web: LiveWeb): LabObserver {
  const introduced = new Set<string>();
  return {
    planned: (cells, seconds) => web.publish({ type: 'plan', cells: [...cells], seconds: Math.round(seconds) }),
    step: (index, label, remainingSec) => web.publish({ type: 'step', index, label, remainingSec: Math.round(remainingSec) }),
    cellStarted(_index, scenario) {
      if (introduced.has(scenario.id)) return;
      introduced.add(scenario.id);
      web.publish({ type: 'section', id: scenario.id, title: scenario.title, xTitle: 'seconds since the cell started', charts: [...SAMPLED_CHARTS] });
    },
    sample: (scenario, design, t, row) => web.publish(samplePoint(scenario, design, t, row), `${scenario}/${design}`),
    cellEnded: (index, cell) => web.publish({ type: 'cell', index, status: cell.status === 'ok' ? 'ok' : 'failed', ...(cell.cause ? { cause: cell.cause } : {}) }),
    judged: (claims) => web.publish({ type: 'verdicts', claims }),
  };
}
