/**
 * What our protocol's chatty path costs the swarm, against another build of wslab: messages answered per client
 * CPU-second, this build and `--baseline` (another checkout's dist/cli/wslab.js, e.g. main's), run in turns against
 * one server in one run (A B, B A, A B, … so that drift on a shared box falls on both), medians and the ratio.
 *
 *   npm run bench -- chatty-cost --baseline /tmp/main/dist/cli/wslab.js [--connections 1000] [--interval 100ms]
 *     [--hold 15s] [--rounds 3] [--design uws]
 *
 * Client CPU is the summary's `client.cpuSeconds` (every worker and the coordinator, from start to exit), so ramp
 * and close are counted alike for both builds; messages are the replies received (`messages.received`).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { WSLAB } from '../lab/processes.js';
import { BenchFailure, defineBench } from './harness/bench.js';
import { design, duration, integer, text } from './harness/options.js';
import { startServer } from './harness/server.js';

export const bench = defineBench({
  name: 'chatty-cost',
  describe: "our protocol's chatty path: replies per client CPU-second, this build vs --baseline, in turns",
  options: {
    baseline: text('', "another build's dist/cli/wslab.js (required), e.g. a checkout of main"),
    connections: integer(1000, 1, 19_000, 'chatty connections (one worker)'),
    interval: duration('100ms', 'per-connection send interval'),
    hold: duration('15s', 'hold of each run'),
    rounds: integer(3, 1, 20, 'runs of each build'),
    design: design('uws', "the server's design"),
  },
  async run(o, report) {
    if (!o.baseline) throw new BenchFailure('--baseline: give another build\'s dist/cli/wslab.js (e.g. git worktree add /tmp/main main && cd /tmp/main && npm ci)');
    if (!existsSync(o.baseline)) throw new BenchFailure(`--baseline: ${o.baseline} does not exist`);
    const server = await startServer(o.design);
    const dir = mkdtempSync(join(tmpdir(), 'wslab-chatty-'));
    const loadBefore = loadavg()[0];
    const runs: Record<'this' | 'baseline', { repliesPerCpuSec: number; received: number; cpuSeconds: number; rttP99Ms: number | null }[]> = { this: [], baseline: [] };
    try {
      for (let r = 0; r < o.rounds; r++) {
        const order: ('this' | 'baseline')[] = r % 2 === 0 ? ['this', 'baseline'] : ['baseline', 'this'];
        for (const which of order) {
          const file = join(dir, `${which}-${r}.json`);
          const code = await new Promise<number>((resolve) => {
            const child = spawn(process.execPath, [which === 'this' ? WSLAB : o.baseline, 'swarm', '--url', server.url, '--profile', 'chatty',
              '--connections', String(o.connections), '--interval', `${o.interval}ms`, '--hold', `${o.hold}ms`, '--summary', file], { stdio: 'ignore' });
            child.once('exit', (c) => resolve(c ?? 1));
          });
          if (code !== 0) throw new BenchFailure(`${which} build: wslab swarm exited ${code}`);
          const s = JSON.parse(readFileSync(file, 'utf8')) as { messages: { received: number }; client: { cpuSeconds: number }; rttMs: { p99: number | null } };
          const one = { repliesPerCpuSec: Math.round(s.messages.received / s.client.cpuSeconds), received: s.messages.received, cpuSeconds: s.client.cpuSeconds, rttP99Ms: s.rttMs.p99 };
          runs[which].push(one);
          report.line({ round: r, build: which, ...one });
        }
      }
    } finally {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    }
    const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
    const a = median(runs.this.map((x) => x.repliesPerCpuSec));
    const b = median(runs.baseline.map((x) => x.repliesPerCpuSec));
    report.result({
      bench: 'chatty-cost', command: report.command, connections: o.connections, intervalMs: o.interval, holdMs: o.hold, rounds: o.rounds,
      loadavgBefore: loadBefore, loadavgAfter: loadavg()[0], node: process.version,
      repliesPerCpuSec: { this: a, baseline: b, thisOverBaseline: Math.round((a / b) * 1000) / 1000 },
      runs,
    });
  },
});
