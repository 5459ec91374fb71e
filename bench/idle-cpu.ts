/**
 * bench/idle-cpu: does idle cost nothing? For each design, the CPU (utime + stime from /proc, every thread) of
 *   1. the server with 0 connections,
 *   2. the same server holding `--connections` idle connections, and
 *   3. the one swarm worker holding them (`wslab swarm --workers 1`; its coordinator is reported beside it),
 * each over `--window`, as a share of one core: the idle server after `--start-settle` (V8's memory reducer runs
 * three Mark-Compact GCs some 16–18 s after a Node process starts, ≈100 ms of CPU measured with --trace-gc here: a
 * one-off of starting, not a cost of idling), the held cases after `--settle` (V8 runs a major GC some 30–40 s after
 * the burst of opens: a one-off of opening). The server runs its defaults but `--idle-timeout 10m`: its
 * keepalive pings (at half the timeout) come after the window, so what is measured is what a design spends while
 * nothing is due. (At the default 120 s the pings of 19,000 connections start 60 s after they opened, inside it.)
 * Each case is read at the start, the middle and the end of its window, and `cpuPctOfCore` is the lower of the two
 * halves: a steady cost (a timer, a sweep, a monitor) shows in both, a one-off (the GC above, whose time after the
 * opens varied from ≈12 s in a CI run to ≈44 s here) in one. `cpuPctOfCoreWholeWindow` keeps the whole window's.
 * Budget (issue 22): ≤ 0.3 % of a core per case; a result says which cases are over.
 *
 *   npm run bench -- idle-cpu --designs uws,ws --connections 19000 --window 30s
 */
import { loadavg } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { eventually, WSLAB } from '../lab/processes.js';
import { CONNECTIONS_OPEN } from '../metrics/index.js';
import { sumOf } from '../metrics/exposition.js';
import { processTree, treeCpuSeconds } from '../metrics/proc-status.js';
import { BenchFailure, defineBench } from './harness/bench.js';
import { start } from './harness/child.js';
import { designs, designsWhere, duration, integer, sourceIps } from './harness/options.js';
import { startServer } from './harness/server.js';

/** Long enough that no keepalive ping falls in settle + window (pings go at half of it). */
const IDLE_TIMEOUT = '10m';

/** Issue 22's budget for each idle case, in % of one core. */
export const IDLE_BUDGET_PCT = 0.3;

export const bench = defineBench({
  name: 'idle-cpu',
  describe: 'CPU of an idle server (0 and N connections) and of a swarm worker holding N idle, % of a core',
  options: {
    designs: designs(designsWhere((d) => d.model === 'loop'), 'designs to measure, one after the other'),
    connections: integer(19_000, 1, 19_000, 'idle connections held (one swarm worker, one server process)'),
    window: duration('30s', 'how long each case is measured'),
    'start-settle': duration('60s', 'wait after the server started, before measuring it idle (V8\'s memory reducer collects some 16–18 s after start)'),
    settle: duration('60s', 'wait after start-up and after the last connection opened, before measuring (V8 runs a major GC some 30–40 s after a burst of opens)'),
    'source-ips': sourceIps('127.0.0.2-127.0.0.3', 'source addresses for the swarm'),
  },
  async run(o, report) {
    const load = loadavg()[0];
    if (load >= 0.3) process.stderr.write(`bench/idle-cpu: load average ${load.toFixed(2)} (≥ 0.3): the box is not quiet; figures are the processes' own CPU, but a busy box makes wake-ups dearer\n`);
    const results = [];
    for (const run of o.designs) {
      const server = await startServer(run, ['--idle-timeout', IDLE_TIMEOUT]);
      try {
        await sleep(o['start-settle']);
        const idle = await cpuPct([() => treeCpuSeconds(server.pid)], o.window);
        const swarm = start([WSLAB, 'swarm', '--url', server.url, '--connections', String(o.connections), '--workers', '1',
          '--hold', `${o.settle + o.window + 30_000}ms`, ...(o['source-ips'].text ? ['--source-ips', o['source-ips'].text] : [])]);
        await swarm.nextLine();
        const pid = swarm.child.pid!;
        let open = 0;
        const full = await eventually(async () => (open = sumOf(await server.scrape(), CONNECTIONS_OPEN.name)) === o.connections, 60_000);
        if (!full) {
          swarm.child.kill('SIGTERM');
          throw new BenchFailure(`${run.label}: the server held ${open} of ${o.connections} after 60 s: ${swarm.stderrTail().trim().split('\n').at(-1) ?? ''}`);
        }
        await sleep(o.settle);
        const worker = processTree(pid).filter((p) => p !== pid);
        if (worker.length !== 1) throw new BenchFailure(`${run.label}: expected one swarm worker under pid ${pid}, found ${worker.length}`);
        const held = await cpuPct([() => treeCpuSeconds(server.pid), () => treeCpuSeconds(worker[0]),
          () => treeCpuSeconds(pid) - treeCpuSeconds(worker[0])], o.window);
        const heldAfter = sumOf(await server.scrape(), CONNECTIONS_OPEN.name);
        swarm.child.kill('SIGTERM');
        await new Promise((r) => swarm.child.once('exit', r));
        const cases = { serverIdle: idle.steady[0], serverHeld: held.steady[0], swarmWorker: held.steady[1] };
        const r = {
          design: run.label, connections: o.connections, heldAfterWindow: heldAfter, windowSec: o.window / 1000,
          cpuPctOfCore: { ...cases, swarmCoordinator: held.steady[2] },
          cpuPctOfCoreWholeWindow: { serverIdle: idle.whole[0], serverHeld: held.whole[0], swarmWorker: held.whole[1], swarmCoordinator: held.whole[2] },
          overBudget: Object.entries(cases).filter(([, v]) => v > IDLE_BUDGET_PCT).map(([k]) => k),
        };
        report.line(r);
        results.push(r);
      } finally {
        await server.stop();
      }
    }
    report.result({ bench: 'idle-cpu', command: report.command, node: process.version, loadAverageAtStart: +load.toFixed(2), budgetPct: IDLE_BUDGET_PCT, results });
  },
});

/**
 * % of one core each reader's CPU seconds grew by over `ms` (`whole`) and the lower of its two halves (`steady`: a
 * one-off falls in at most one of them).
 */
async function cpuPct(readers: (() => number)[], ms: number): Promise<{ whole: number[]; steady: number[] }> {
  const read = (): { t: number; c: number[] } => ({ t: performance.now(), c: readers.map((r) => r()) });
  const a = read();
  await sleep(ms / 2);
  const b = read();
  await sleep(ms / 2);
  const c = read();
  const pct = (x: typeof a, y: typeof a, i: number): number => +((y.c[i] - x.c[i]) / ((y.t - x.t) / 1000) * 100).toFixed(2);
  return {
    whole: readers.map((_, i) => pct(a, c, i)),
    steady: readers.map((_, i) => Math.min(pct(a, b, i), pct(b, c, i))),
  };
}
