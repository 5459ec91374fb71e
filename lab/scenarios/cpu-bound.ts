import { figure, missing, num, ratio, times, verdict, type JudgedCell } from '../claims.js';
import { acrossLine, kneeOf, type Curve } from '../curves.js';
import { CORES, is, withWorkers, type LabDesign } from '../designs.js';
import type { Cell, Claim, Machine, Verdict } from '../results.js';
import { treeCpuSeconds } from '../../metrics/proc-status.js';
import { at, chattyLoad, defineScenario, SOURCE_IPS, type Scale } from '../scenario.js';

const CLIENTS = { quick: 16, default: 32, full: 64 } as const;
const HOLD_S = { quick: 2, default: 3, full: 10 } as const;
/**
 * Each client's send interval: 32 clients every 40 ms offer 800 req/s, about twice the ≈400 req/s two cores serve,
 * so every design is saturated; more only fills socket buffers with a backlog the server burns after the hold.
 */
const INTERVAL_MS = 40;
const UNITS = 2000;

/** The worker-process counts of the curve at a scale. */
const workerCounts = (s: Scale): number[] => (s === 'quick' ? [CORES] : Array.from({ length: CORES + 2 }, (_, i) => i + 1));

/** CPU-bound work: one loop vs one loop per process (1, cores, cores + 1) vs native threads. */
type CpuFigures = { requestsPerSec: number | null; serverCpuCores: number | null; rttP50Ms: number | null };

export const cpuBound = defineScenario<CpuFigures>({
  id: 'cpu-bound',
  title: 'CPU-bound work',
  question: 'Does CPU-bound work want processes, with about cores (+1) workers as the knee?',
  claims: ['cpu-bound-processes', 'gil-threads'],
  serverOptions: { idleTimeoutMs: 0 },
  columns: [
    { key: 'requestsPerSec', label: `cpu ${UNITS} done`, unit: 'req/s' },
    { key: 'serverCpuCores', label: 'server CPU', unit: 'cores' },
    { key: 'rttP50Ms', label: 'RTT p50', unit: 'ms' },
  ],
  // quick: one loop against cores worker processes, the claim itself; from default on the curve over 1 … cores + 2
  // worker processes, and threads.
  designs: (all, scale) => [
    ...all.filter((d) => is.standingLoop(d) || (scale !== 'quick' && is.threadPerConnection(d))),
    ...(all.some(is.processes) ? workerCounts(scale).map((n) => withWorkers('processes', n)).filter((d): d is LabDesign => !!d) : []),
  ],
  method: (s) => `${at(s, CLIENTS)} clients each send \`cpu ${UNITS}\` every ${INTERVAL_MS} ms (about twice what the machine can do) for ` +
    `${at(s, HOLD_S)} s; throughput = replies the swarm received ÷ its run time; server CPU from /proc. ` +
    `This machine has ${CORES} cores, shared with the swarm.`,
  seconds: (s) => at(s, HOLD_S) + 1.5,
  async run(ctx) {
    /*
     * Throughput is counted by the swarm (replies received over the run), not by scraping the server: a single
     * loop saturated with CPU work answers its /metrics late or not at all, which is part of what is measured.
     */
    const [t0, cpu0] = [performance.now(), treeCpuSeconds(ctx.server.pid)];
    const summary = await ctx.finish(await ctx.swarm({ connections: at(ctx.scale, CLIENTS), rate: 1000,
      holdMs: at(ctx.scale, HOLD_S) * 1000, profile: 'chatty', command: `cpu ${UNITS}`, intervalMs: INTERVAL_MS, sourceIps: SOURCE_IPS }));
    const sec = (performance.now() - t0) / 1000;
    return {
      requestsPerSec: +(summary.messages.received / summary.durationSec).toFixed(1),
      serverCpuCores: +((treeCpuSeconds(ctx.server.pid) - cpu0) / sec).toFixed(2),
      rttP50Ms: summary.rttMs.p50,
    };
  },
  judge,
  curves,
  profileLoad: (sec) => [{ atSec: 0, flags: chattyLoad(16, 'cpu 2000', 20, sec) }],
});

/** The runtime the GIL claim is about (a target's `runtime:`, targets/python.yaml). */
const GIL_RUNTIME = 'python';

/**
 * The GIL, in Python's own runtime (the reference designs), judged by parallelism, the CPU each design's process tree
 * used while saturated: confirmed when a thread per connection used ≤ ×1.3 the cores of one asyncio process while
 * several processes used ≥ ×1.6 of them; refuted when the threads used ≥ ×1.6 (they ran in parallel) or the processes
 * under ×1.3. Throughput is reported beside it: at ≈1 s a `cpu 2000` in pure Python, a hold sees few replies, too
 * few to judge by (measured: 1.3–1.5 req/s for one process).
 */
function judgeGil(cells: readonly JudgedCell<CpuFigures>[]): Claim {
  const py = cells.filter((c) => c.traits.runtime === GIL_RUNTIME);
  const loop = py.find(is.loop);
  const threads = py.find((c) => c.traits.model === 'threads');
  const procs = py.find(is.processes);
  const cores = (pick: (c: JudgedCell<CpuFigures>) => boolean) => figure(py, pick, 'serverCpuCores');
  const one = cores(is.loop);
  const t = cores((c) => c.traits.model === 'threads');
  const p = cores(is.processes);
  if (one === null || t === null || p === null || one <= 0) return missing('gil-threads', 'cpu-bound', `${GIL_RUNTIME} loop, threads and processes (targets/python.yaml, Debian python3-websockets)`);
  const [rt, rp] = [ratio(t, one), ratio(p, one)];
  const v: Verdict = rt <= 1.3 && rp >= 1.6 ? 'confirmed' : rt >= 1.6 || rp < 1.3 ? 'refuted' : 'inconclusive';
  const rps = (c: JudgedCell<CpuFigures>) => num(c.figures.requestsPerSec);
  return verdict('gil-threads', v, `saturated with \`cpu ${UNITS}\`, CPU used: ${loop!.design} ${one} cores (${rps(loop!)} req/s); ` +
    `${threads!.design} ${t} cores (${times(rt)}, ${rps(threads!)} req/s${rps(threads!) === 0 ? ': its concurrent requests all shared one interpreter lock, none finished within the hold' : ''}); ` +
    `${procs!.design} ${p} cores (${times(rp)}, ${rps(procs!)} req/s); the swarm shares the cores`);
}

/** One loop vs as many worker processes as cores: ×1.4 the throughput confirms; cores + 1 shows the knee. */
function judge(cells: readonly JudgedCell<CpuFigures>[], machine: Machine): Claim[] {
  return [judgeProcesses(cells.filter((c) => c.traits.runtime === 'node'), machine), judgeGil(cells)];
}

function judgeProcesses(cells: readonly JudgedCell<CpuFigures>[], machine: Machine): Claim {
  const procs = (n: number) => (c: JudgedCell<CpuFigures>) => is.processes(c) && c.traits.workers === n;
  const one = figure(cells, is.standingLoop, 'requestsPerSec');
  const atCores = figure(cells, procs(machine.cpus), 'requestsPerSec');
  const plusOne = figure(cells, procs(machine.cpus + 1), 'requestsPerSec');
  if (one === null || atCores === null) return missing('cpu-bound-processes', 'cpu-bound', 'loop and worker processes');
  const r = ratio(atCores, one);
  const threadsRps = figure(cells, is.threadPerConnection, 'requestsPerSec');
  const knee = plusOne === null ? '' : `; ${machine.cpus + 1} workers: ${plusOne} req/s (${times(ratio(plusOne, atCores))} of ${machine.cpus})`;
  const v: Verdict = r >= 1.4 ? 'confirmed' : r <= 1.1 ? 'refuted' : 'inconclusive';
  return verdict('cpu-bound-processes', v, `one loop ${one} req/s vs ${machine.cpus} worker processes ${atCores} req/s (${times(r)})${knee}; ` +
    `${threadsRps === null ? '' : `threads ${threadsRps} req/s; `}the swarm shares the ${machine.cpus} cores`);
}

/** Where adding a worker process stops paying: the first worker that adds under 10 % to the throughput. */
const GAIN = 1.1;

/** Throughput over worker processes (the loop alone at 1), the knee named against the cores. */
function curves(cells: readonly Cell[], _s: Scale, machine: Machine): Curve[] {
  const procs = cells.filter((c) => is.processes(c) && c.traits.runtime === 'node');
  const line = acrossLine('worker processes (cluster)', procs, (c) => c.traits.workers, 'requestsPerSec');
  if (line.points.length < 2) return [];
  const loops = cells.filter((c) => is.standingLoop(c));
  const gains = line.points.slice(1).map((p, i) => `${line.points[i].x}→${p.x} ${times(ratio(p.y, line.points[i].y))}`).join(', ');
  const k = kneeOf(line.points, (p, before) => before !== undefined && p.y < GAIN * before.y);
  const knee = k ? `knee at ${k.before!.x} worker${k.before!.x === 1 ? '' : 's'} (this machine has ${machine.cpus} cores): going to ${k.at.x} adds under ${Math.round((GAIN - 1) * 100)} %`
    : `no knee up to ${line.points.at(-1)!.x} workers (this machine has ${machine.cpus} cores): each added ≥ ${Math.round((GAIN - 1) * 100)} %`;
  return [{
    id: 'throughput', title: 'Throughput over worker processes', x: { label: 'worker processes', unit: 'processes' }, y: { label: `cpu ${UNITS} done`, unit: 'req/s' },
    lines: [line, ...loops.map((c) => acrossLine(`${c.design} (one loop)`, [c], () => 1, 'requestsPerSec'))],
    knees: [`${knee}; gain per added worker ${gains}; the swarm shares the cores`],
  }];
}
