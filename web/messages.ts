/**
 * What a run publishes to its live page (web/live.ts), one JSON message each. A page that connects late gets every
 * message so far first, in order, so a message describes a change, never a whole state.
 */
import type { Claim } from '../lab/results.js';

/** One chart of a section: `key` selects the values of each point, `factor` turns the stored unit into the axis's. */
export interface ChartDecl {
  readonly key: string;
  readonly title: string;
  readonly axis: string;
  readonly factor: number;
}

export type LiveMessage =
  /** First: what runs. */
  | { type: 'hello'; kind: 'lab' | 'swarm' | 'serve'; title: string; startedAt: string; pid: number }
  /** lab: every cell in run order (`skipped` says why one will not run), and the estimate. */
  | { type: 'plan'; cells: { scenario: string; design: string; skipped?: string }[]; seconds: number }
  /** lab: cell `index` (of the cells that run) starts; `label` may also say what happens between cells. */
  | { type: 'step'; index: number; label: string; remainingSec: number }
  /** lab: cell `index` ended. */
  | { type: 'cell'; index: number; status: 'ok' | 'failed'; cause?: string }
  /** A group of charts drawn side by side: a lab scenario, the server of `serve`, the swarm. */
  | { type: 'section'; id: string; title: string; xTitle: string; charts: ChartDecl[] }
  /** One sample: per chart key, a value per line (a design, or `open`/`target`, or a cause). */
  | { type: 'point'; section: string; t: number; y: Record<string, Record<string, number | null>> }
  /** Claims judged so far (a scenario's, when its last cell ends; all of them at the end): they replace earlier ones by id. */
  | { type: 'verdicts'; claims: Claim[] }
  /**
   * Last: how the run ended (`ok`, `failed`, `interrupted (SIGINT)`, exit codes), the lines it printed, the files it
   * wrote, and the report's own HTML when it wrote one, for the page to open after the run is gone (a page served
   * over http may not link a file:// path).
   */
  | { type: 'end'; status: string; lines: string[]; files: string[]; reportHtml?: string };
