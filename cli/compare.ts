import type { Argv } from 'yargs';
import { UsageError } from '../core/errors.js';
import { compareRuns, comparisonText, parseThreshold, readRun } from '../lab/compare.js';

type Raw = Record<string, unknown>;

/** Exit codes: as the swarm's (a failing threshold is 99, a usage error 1). */
export const COMPARE_EXIT = Object.freeze({ ok: 0, usage: 1, thresholds: 99 });

/** Checks both runs and every threshold before anything is compared. */
export function compareOptions(a: Raw) {
  if (a.A === undefined || a.B === undefined) throw new UsageError('compare: give two runs, A then B (results.json or report folders)');
  const A = readRun('A', String(a.A)), B = readRun('B', String(a.B));
  const given = a.threshold === undefined ? [] : (Array.isArray(a.threshold) ? a.threshold : [a.threshold]).map(String);
  return Object.freeze({ A, B, thresholds: given.map((t) => parseThreshold(t, A.results, B.results)), json: a.json === true });
}

export const compareCommand = {
  command: 'compare <A> <B>',
  describe: 'Compare two lab runs cell by cell (B − A), list changed verdicts, gate with --threshold (exit 99 on a regression)',
  builder: (y: Argv) => y
    .positional('A', { type: 'string', describe: 'the reference run: a results.json or its report folder' })
    .positional('B', { type: 'string', describe: 'the run compared with it' })
    .option('threshold', { type: 'string', array: true, describe: '<scenario>.<design>.<figure><op><value>: +N%/-N% = change from A, +N/-N = B − A, N = B itself (ops < <= > >=); repeatable' })
    .option('json', { type: 'boolean', default: false, describe: 'print the comparison as JSON on stdout' })
    .example("$0 compare reports/A reports/B --threshold 'idle-hold.uws.rssPerConnectionBytes<+10%'", 'exit 99 when uws costs 10 % more per connection in B'),
  handler: (a: Raw) => {
    const o = compareOptions(a);
    const c = compareRuns(o.A, o.B, o.thresholds);
    process.stdout.write(o.json ? `${JSON.stringify(c, null, 2)}\n` : `${comparisonText(c).join('\n')}\n`);
    const failed = c.thresholds.filter((t) => !t.ok);
    if (failed.length) {
      process.stderr.write(`wslab compare: ${failed.length} threshold${failed.length === 1 ? '' : 's'} failed: ${failed.map((t) => t.threshold.expression).join('; ')} (exit ${COMPARE_EXIT.thresholds})\n`);
      process.exitCode = COMPARE_EXIT.thresholds;
    }
  },
};
