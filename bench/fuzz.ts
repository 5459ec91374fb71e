/**
 * bench/fuzz: the frame fuzzer of the tests (fuzz/frames.ts) for a long run against one design started
 * as a user runs it (`wslab serve`): ≥ 1,000,000 random valid and malformed frames, every reply and ending checked
 * against the design's dialect, then the server's RSS (whole process tree) and its `/metrics` counts.
 *
 *   npm run bench -- fuzz --design ws --frames 1000000 --seed 1
 *     [--flags='--workers 2 --inner uws'] [--workers 8] [--max-payload 100000] [--out bench/results/fuzz.json]
 *
 * RSS is read at baseline (the server started and idle), every tenth of the frames, at the peak of a 250 ms sampler,
 * right after the last connection ended ("after run"), and once /metrics shows no connection open plus a 5 s settle
 * ("closed"). A leak shows as RSS that keeps climbing from one tenth to the next; a warm heap shows as a plateau.
 * Prints the result as JSON and merges it into --out under its label (one entry per design and flags).
 * Exits 1 when the fuzzer finds a mismatch (the message names the seed), the server dies, or /metrics disagrees.
 */
import { existsSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { FrameFuzzer, Rng, dialectFor, fuzzConnection, newTotals } from '../fuzz/frames.js';
import { variantOf } from '../lab/designs.js';
import { parseInteger } from '../core/units.js';
import { eventually } from '../lab/processes.js';
import { sumOf } from '../metrics/exposition.js';
import { CLOSE_REASONS, CONNECTIONS_ACCEPTED, CONNECTIONS_CLOSED, CONNECTIONS_OPEN, MESSAGES_RECEIVED } from '../metrics/index.js';
import { BenchFailure, defineBench } from './harness/bench.js';
import { design, designRun, integer, size, text, type Option } from './harness/options.js';
import { startServer, treeOf } from './harness/server.js';

/** A 32-bit seed; absent = a random one (printed in the result, so the run can be replayed). */
const seedOption: Option<number> = {
  describe: 'the fuzzer\'s seed, an integer 0-4294967295 (default: random, reported)',
  parse: (flag, t) => (t === undefined || t === '' ? Math.floor(Math.random() * 2 ** 32) : parseInteger(flag, t, 0, 2 ** 32 - 1)),
};

export const bench = defineBench({
  name: 'fuzz',
  describe: '≥1M fuzzed frames against one design: replies, close codes, RSS, /metrics',
  options: {
    design: design('ws', 'the design to fuzz'),
    flags: text('', 'its serve flags, e.g. "--workers 2 --inner uws"'),
    frames: integer(1_000_000, 1, Number.MAX_SAFE_INTEGER, 'frames to send in all'),
    seed: seedOption,
    workers: integer(8, 1, 256, 'concurrent fuzzing connections'),
    'max-payload': size('100000', "the server's --max-payload", 20_000, 'the fuzzer sends messages near the limit'),
  },
  out: {
    default: 'bench/results/fuzz.json',
    // one entry per design and flags: a new run of the same label replaces the old one
    merge(file, result) {
      const label = (result as { label: string }).label;
      const prev = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) as { results: { label: string }[] } : undefined;
      const results = (prev?.results ?? []).filter((r) => r.label !== label).concat(result as { label: string });
      return `${JSON.stringify({
        bench: 'fuzz', node: process.version, machine: '2 vCPU AMD EPYC, 24 GiB (../shared/MACHINE.md)',
        command: 'node dist/bench/run.js fuzz --design <design> [--flags="..."] --frames 1000000 --seed <seed>', results,
      }, null, 2)}\n`;
    },
  },
  async run(a, report) {
    // serve flags given with the design (`--design 'cluster --workers 2'`) count as --flags
    const flags = [...a.design.flags, ...(a.flags ? a.flags.trim().split(/\s+/) : [])];
    const { frames, workers, seed, 'max-payload': maxPayload } = a;
    const run = designRun('design', [a.design.design, ...flags].join(' '));
    // the dialect the variant speaks, from its traits (a cluster speaks its --inner design's)
    const dialect = dialectFor(variantOf(a.design.design, flags).traits.dialect!);
    const label = run.label;

    const server = await startServer(run, ['--max-payload', String(maxPayload), '--idle-timeout', '0']);
    const port = Number(new URL(server.url).port);
    const rss = (): number => treeOf(server).rssBytes;
    let failure: string | undefined;
    try {
      await sleep(2000);
      const baseline = rss();
      let peak = baseline;
      const sampler = setInterval(() => { peak = Math.max(peak, rss()); }, 250);
      const tenths: number[] = [];
      const t = newTotals();
      const started = performance.now();
      await Promise.all(Array.from({ length: workers }, async (_, w) => {
        const fz = new FrameFuzzer(Rng.forWorker(seed, w), { maxPayload, orderedWait: dialect.name === 'threads' });
        for (let mine = 0; mine < frames / workers;) {
          mine += await fuzzConnection(port, fz, dialect, t, seed);
          while (tenths.length < 10 && t.frames >= (frames * (tenths.length + 1)) / 10) tenths.push(rss());
        }
      }));
      const seconds = (performance.now() - started) / 1000;
      clearInterval(sampler);
      const afterRun = rss();
      peak = Math.max(peak, afterRun);
      if (server.child.exitCode !== null || server.child.signalCode !== null) throw new Error(`the server died: ${server.stderr()}`);

      const counted = async (): Promise<Record<string, number>> => {
        const m = await server.scrape();
        const out: Record<string, number> = {
          accepted: sumOf(m, CONNECTIONS_ACCEPTED.name), open: sumOf(m, CONNECTIONS_OPEN.name),
          messages: sumOf(m, MESSAGES_RECEIVED.name),
        };
        for (const reason of CLOSE_REASONS) {
          const n = sumOf(m, CONNECTIONS_CLOSED.name, { reason });
          if (n > 0) out[reason] = n;
        }
        return out;
      };
      const caused: Record<string, number> = { accepted: t.connections, open: 0, messages: t.messages, ...t.closed };
      const same = (x: Record<string, number>): boolean => Object.keys({ ...x, ...caused }).every((k) => x[k] === caused[k]);
      const matched = await eventually(async () => same(await counted()), 10_000);
      await sleep(5000);
      const closed = rss();
      const metrics = await counted();

      const result = {
        label, design: a.design.design, flags, dialect: dialect.name, seed, maxPayload, workers,
        frames: t.frames, connections: t.connections, messages: t.messages, payloadBytes: t.payloadBytes,
        seconds: +seconds.toFixed(1), framesPerSec: Math.round(t.frames / seconds), loadAvg1m: +loadavg()[0]!.toFixed(2),
        rss: {
          baselineBytes: baseline, peakBytes: peak, afterRunBytes: afterRun, closedBytes: closed,
          closedMinusBaselineBytes: closed - baseline, byTenthBytes: tenths,
          secondHalfGrowthBytes: tenths.length === 10 ? tenths[9]! - tenths[4]! : null,
        },
        endings: t.wire, violations: t.violations, caused: t.closed, lostReplies: t.lostReplies, metrics,
        metricsMatchCaused: matched, serverAlive: server.child.exitCode === null && server.child.signalCode === null,
      };
      report.result(result);
      if (!matched) failure = `/metrics ${JSON.stringify(metrics)} != caused ${JSON.stringify(caused)}`;
    } catch (err) {
      failure = (err as Error).message;
    } finally {
      await server.stop();
    }
    if (failure) throw new BenchFailure(`seed ${seed}, ${label}: ${failure}`);
  },
});
