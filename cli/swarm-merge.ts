import { readFileSync } from 'node:fs';
import type { Argv } from 'yargs';
import { checkSummary, mergeSummaries, type Source } from '../client/merge.js';
import { summaryTable, writeSummary } from '../client/recorder.js';
import { describeVerdict, evaluate, parseThreshold } from '../client/thresholds.js';
import { UsageError } from '../core/errors.js';
import { outputFile } from '../core/units.js';

type Raw = Record<string, unknown>;

const EXIT_THRESHOLDS = 99;

function readSummary(file: string): Source {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new UsageError(`${file}: not JSON (give the files wslab swarm --summary wrote)`);
  }
  return { name: file, summary: checkSummary(file, value) };
}

/** `wslab swarm merge a.json b.json … [--out merged.json] [--threshold …]` (docs/swarm-summary.md, "Merging shards"). */
export const swarmMergeCommand = {
  command: 'merge <summaries..>',
  describe: 'Combine the JSON summaries of several swarms (e.g. --shard 0/3, 1/3, 2/3) into one: counts added, latency histograms merged',
  builder: (y: Argv) => y
    .positional('summaries', { type: 'string', array: true, describe: 'summary files written by wslab swarm --summary' })
    .option('out', { type: 'string', describe: 'write the merged summary here (default: stdout)' })
    .option('threshold', { type: 'string', array: true, describe: "pass/fail check on the merged summary, as for wslab swarm (a failure exits 99)" })
    .example('$0 swarm merge shard-*.json --out run.json --threshold heldAtEnd==30000', 'one summary of a three-shard run'),
  handler: (a: Raw) => {
    const files = (a.summaries as unknown[]).map(String);
    const thresholds = (a.threshold === undefined ? [] : [a.threshold].flat()).map((t) => parseThreshold(String(t)));
    const out = a.out === undefined ? undefined : outputFile('out', a.out);
    const merged = mergeSummaries(files.map(readSummary));
    process.stderr.write(summaryTable(merged).replace('wslab swarm summary', `wslab swarm merge: ${files.length} summaries`));
    if (out === undefined) process.stdout.write(`${JSON.stringify(merged, null, 2)}\n`);
    else writeSummary(out, merged);
    const verdicts = evaluate(thresholds, merged);
    for (const v of verdicts) process.stderr.write(`wslab swarm merge: threshold ${v.ok ? 'passed' : 'FAILED'}: ${describeVerdict(v)}\n`);
    process.exitCode = verdicts.every((v) => v.ok) ? 0 : EXIT_THRESHOLDS;
  },
};

/**
 * Adds `merge` under `wslab swarm` and keeps the swarm's own flags to the swarm: yargs otherwise carries a parent
 * command's options into its subcommands, and `wslab swarm merge --url …` would be accepted and ignored.
 */
export function withMergeCommand(y: Argv): Argv {
  // getOptions() and global(keys, false) are yargs 18 API that @types/yargs 17 does not declare
  const api = y as unknown as { getOptions(): { key: Record<string, unknown> }; global(keys: string[], global: boolean): Argv };
  const own = Object.keys(api.getOptions().key).filter((k) => !['help', 'version', 'debug'].includes(k));
  return api.global(own, false).command(swarmMergeCommand);
}
