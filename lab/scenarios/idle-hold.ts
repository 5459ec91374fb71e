import { readFileSync } from 'node:fs';
import { readTreeStatus } from '../../metrics/proc-status.js';
import { figure, kib, missing, num, ratio, times, verdict, type JudgedCell } from '../claims.js';
import { is, withWorkers } from '../designs.js';
import { MAX_COLUMNS, maxMethod, maxSeconds, runMaxHold } from '../hold-max.js';
import type { Cell, Claim, Machine, Verdict } from '../results.js';
import type { Curve, CurvePoint } from '../curves.js';
import { at, defineScenario, profileHold, SOURCE_IPS, sleep, type Scale } from '../scenario.js';

/**
 * Kernel memory that grows with threads but is not in any process's RSS: each thread's kernel stack (KernelStack in
 * /proc/meminfo, machine-wide: the swarm's thread count does not change during a cell, so the change is the server's)
 * and the server's own page tables (VmPTE of its process tree; machine-wide PageTables would also count the swarm's).
 */
function kernelThreadBytes(pid: number): number {
  const kernelStack = Number(/^KernelStack:\s+(\d+)/m.exec(readFileSync('/proc/meminfo', 'latin1'))?.[1] ?? 0) * 1024;
  return kernelStack + readTreeStatus(pid).pageTablesBytes;
}

/**
 * The server's tree status once its RSS holds still (within 256 KiB across two readings 0.25 s apart, at most 3 s):
 * a server just started may still give memory back (measured: −6 MiB in its first half second), which would read as
 * connections costing nothing.
 */
async function settled(pid: number): Promise<ReturnType<typeof readTreeStatus>> {
  const until = performance.now() + 3000;
  const last3 = [readTreeStatus(pid)];
  for (;;) {
    await sleep(250);
    const now = readTreeStatus(pid);
    if (last3.push(now) > 3) last3.shift();
    const rss = last3.map((r) => r.rssBytes);
    if ((rss.length === 3 && Math.max(...rss) - Math.min(...rss) < 256 * 1024) || performance.now() > until) return now;
  }
}

const N = { quick: 1000, default: 10_000, full: 19_000 } as const;
const RATE = { quick: 4000, default: 5000, full: 5000 } as const;
const HOLD_S = { quick: 1, default: 2, full: 10 } as const;

type IdleFigures = {
  held: number | null; failed: number | null; rssPerConnectionBytes: number | null; kernelPerConnectionBytes: number | null;
  threadsPerConnection: number | null; peakRssBytes: number | null; connectRatePerSec: number | null; peakOpenScraped: number | null;
};

/** ≈8.2 KB of kernel memory per loopback connection pair (MACHINE.md). */
const KERNEL_PER_CONNECTION = 8200;
/** pid_max here: every thread takes a pid (MACHINE.md). */
const THREAD_CAP = 32_768;

const COLUMNS = [
  { key: 'held', label: 'held', unit: 'connections' },
  { key: 'failed', label: 'failed', unit: 'connections' },
  { key: 'rssPerConnectionBytes', label: 'RSS per connection', unit: 'bytes' },
  { key: 'kernelPerConnectionBytes', label: 'kernel stacks + page tables per connection', unit: 'bytes' },
  { key: 'threadsPerConnection', label: 'threads per connection', unit: 'threads' },
  { key: 'peakRssBytes', label: 'server RSS while held', unit: 'bytes' },
  { key: 'connectRatePerSec', label: 'open rate', unit: 'conn/s' },
] as const;

/** Memory and threads per idle connection: the thread-per-connection vs single-loop cost, measured. */
export const idleHold = defineScenario<IdleFigures>({
  id: 'idle-hold',
  title: 'Idle connections held',
  question: 'What does one idle connection cost in memory and threads, and where does each design stop?',
  claims: ['thread-per-connection-memory', 'loop-unlimited-connections', 'tasks-vs-threads-scale'],
  serverOptions: { idleTimeoutMs: 0 },
  // connections are only held: any WebSocket server will do
  needs: [],
  columns: COLUMNS,
  columnsAt: (scale) => (scale === 'max' ? MAX_COLUMNS : COLUMNS),
  // quick leaves cluster to cpu-bound, where it is the question; max is one cluster as wide as the plan (lab/hold-max.ts).
  designs: (all, scale, max) => scale === 'max'
    ? [withWorkers('processes', max?.plan.serverWorkers ?? 1)!]
    : all.filter((d) => !is.pool(d) && (scale !== 'quick' || !is.processes(d))),
  method: (s, max) => s === 'max' ? maxMethod(max) : `A swarm opens ${at(s, N)} idle connections at ${at(s, RATE)}/s from ${SOURCE_IPS} and holds them ` +
    `${at(s, HOLD_S)} s; the server's whole process tree is sampled from /proc every 0.5 s. Per-connection cost = ` +
    '(RSS while all are held, the median of those samples, − baseline once the idle server\'s RSS holds still) ÷ connections held, for the server\'s RSS and, separately, ' +
    'for the kernel stacks (/proc/meminfo) and the server\'s page tables (VmPTE): memory a thread costs outside any RSS. ' +
    'The teardown is left out: closing sockets makes garbage, not connections.',
  seconds: (s, max) => (s === 'max' ? maxSeconds(max) : at(s, N) / at(s, RATE) + at(s, HOLD_S) + 1.5),
  async run(ctx) {
    // at max the figures are the hold's own (MAX_COLUMNS); judgeMax reads them for loop-unlimited-connections
    if (ctx.scale === 'max') return runMaxHold(ctx) as unknown as Promise<IdleFigures>;
    const pid = ctx.server.pid;
    // a running target given without its pid: connections are still counted (/proc/net/tcp), memory is not
    if (pid === undefined) ctx.note(`${ctx.design.label}: no process to sample (give the target's pid in the targets file): memory and threads not measured`);
    const { rssBytes: baseRss, threads: baseThreads } = pid === undefined ? { rssBytes: NaN, threads: NaN } : await settled(pid);
    const baseKernel = pid === undefined ? NaN : kernelThreadBytes(pid);
    const kernel: [number, number][] = [];
    const kernelWatch = setInterval(() => {
      try { if (pid !== undefined) kernel.push([ctx.sampler.elapsedSec(), kernelThreadBytes(pid)]); } catch { /* the server is gone: the cell fails on its exit */ }
    }, 250);
    const from = ctx.sampler.elapsedSec();
    const summary = await ctx.finish(await ctx.swarm({ connections: at(ctx.scale, N), rate: at(ctx.scale, RATE),
      holdMs: at(ctx.scale, HOLD_S) * 1000, profile: 'idle', sourceIps: SOURCE_IPS }));
    clearInterval(kernelWatch);
    const negotiated = summary.profiles.idle?.deflated;
    if (negotiated != null) ctx.note(`${ctx.design.label}: permessage-deflate accepted on ${negotiated.toLocaleString('en-US')} of ${summary.opened.toLocaleString('en-US')} connections`);
    // the hold: the samples that scraped the most open connections (the whole run when the scrape gave none)
    const peakOpen = ctx.sampler.max('open', from);
    const heldAt = peakOpen ? ctx.sampler.samples('open', from).filter(([, v]) => v === peakOpen).map(([t]) => t) : [];
    const [h0, h1] = heldAt.length ? [heldAt[0] - 0.25, heldAt[heldAt.length - 1] + 0.25] : [from, Infinity];
    // the median of the hold's samples: the last of them may already see the teardown's garbage (the open gauge lags)
    const heldRss = ctx.sampler.median('rssBytes', h0, h1);
    const peakThreads = ctx.sampler.max('threads', h0, h1);
    const peakKernel = Math.max(baseKernel, ...kernel.filter(([ti]) => ti >= h0 && ti <= h1).map(([, b]) => b));
    const held = summary.heldAtEnd;
    return {
      held,
      failed: summary.failed.total,
      rssPerConnectionBytes: held && heldRss !== null && pid !== undefined ? Math.round((heldRss - baseRss) / held) : null,
      kernelPerConnectionBytes: held && pid !== undefined ? Math.max(0, Math.round((peakKernel - baseKernel) / held)) : null,
      threadsPerConnection: held && peakThreads !== null && pid !== undefined ? +((peakThreads - baseThreads) / held).toFixed(3) : null,
      peakRssBytes: heldRss,
      connectRatePerSec: summary.connectRatePerSec,
      peakOpenScraped: peakOpen,
    };
  },
  judge,
  curves,
  profileLoad: (sec) => [{ atSec: 0, flags: { connections: 1000, rate: 2000, holdMs: profileHold(sec), profile: 'idle', sourceIps: SOURCE_IPS } }],
});

/**
 * The three claims idle-hold informs, from a thread per connection and the loop that stands for all loops. Memory
 * per connection = RSS growth + kernel stacks and page tables (a thread's 16 KiB kernel stack is in no RSS).
 */
function judge(cells: readonly JudgedCell<IdleFigures>[], machine: Machine): Claim[] {
  const wide = cells.find((c) => num((c.figures as Partial<MaxFigures>).serverWorkers) !== null);
  if (wide) return judgeMax(wide as unknown as JudgedCell<MaxFigures>, machine);
  const threads = cells.find(is.threadPerConnection);
  const loop = cells.find(is.standingLoop);
  const mem = (c: JudgedCell<IdleFigures> | undefined): number | null => {
    const rss = num(c?.figures.rssPerConnectionBytes);
    return rss === null ? null : rss + (num(c?.figures.kernelPerConnectionBytes) ?? 0);
  };
  const tMem = mem(threads);
  const lMem = mem(loop);
  const tThr = figure(cells, is.threadPerConnection, 'threadsPerConnection');
  const lThr = figure(cells, is.standingLoop, 'threadsPerConnection');
  const claims: Claim[] = [];

  if (tMem === null || lMem === null || tThr === null || lThr === null) claims.push(missing('thread-per-connection-memory', 'idle-hold', 'thread-per-connection and loop'));
  else {
    const r = ratio(tMem, Math.max(lMem, 1));
    const v: Verdict = tThr >= 0.9 && r >= 10 ? 'confirmed' : tThr < 0.5 || r < 2 ? 'refuted' : 'inconclusive';
    claims.push(verdict('thread-per-connection-memory', v, `${threads!.design}: ${kib(tMem)} (RSS + kernel stack and page tables) and ${tThr.toFixed(2)} threads per connection vs ${loop!.design} ${kib(lMem)} and ${lThr.toFixed(3)}: ${times(r)} the memory`));
  }

  const lHeld = figure(cells, is.standingLoop, 'held');
  const lFailed = figure(cells, is.standingLoop, 'failed');
  if (lHeld === null || lMem === null || lFailed === null || lThr === null) claims.push(missing('loop-unlimited-connections', 'idle-hold', 'loop'));
  else {
    const byMemory = Math.floor(machine.memoryBytes / Math.max(lMem + KERNEL_PER_CONNECTION, 1));
    const v: Verdict = lFailed === 0 && lThr < 0.01 ? 'confirmed' : 'inconclusive';
    claims.push(verdict('loop-unlimited-connections', v, `${loop!.design} held ${lHeld} of ${lHeld + lFailed} with ${lThr.toFixed(3)} threads per connection; ` +
      `what stops one process is its open-files cap (${machine.fdLimit}), then memory: at ${kib(lMem)} + ≈8 KiB of kernel per connection this machine fits ≈${byMemory.toLocaleString('en')}`));
  }

  if (tMem === null || lMem === null || tThr === null) claims.push(missing('tasks-vs-threads-scale', 'idle-hold', 'thread-per-connection and loop'));
  else {
    const fitsThreads = Math.min(THREAD_CAP, Math.floor(machine.memoryBytes / (tMem + KERNEL_PER_CONNECTION)));
    const fitsLoop = Math.floor(machine.memoryBytes / (lMem + KERNEL_PER_CONNECTION));
    const r = ratio(fitsLoop, fitsThreads);
    claims.push(verdict('tasks-vs-threads-scale', r >= 3 ? 'confirmed' : r <= 1.2 ? 'refuted' : 'inconclusive',
      `on this machine (${(machine.memoryBytes / 2 ** 30).toFixed(0)} GiB, pid_max ${THREAD_CAP}): threads fit ≈${fitsThreads.toLocaleString('en')} connections, ` +
      `${loop!.design} ≈${fitsLoop.toLocaleString('en')} (${times(r)}), from the measured per-connection memory plus ≈8 KiB of kernel each`));
  }
  return claims;
}

/** The max run's figures the judge reads (lab/hold-max.ts). */
type MaxFigures = {
  target: number; held: number; failed: number; serverWorkers: number; serverOpenScrapedAtHold: number;
  serverThreads: number; boxPerConnectionBytes: number; serverMaxFdsPerProcess: number;
};

/**
 * `--scale max` holds one cluster of loops as wide as the open-files cap makes it (one process holds ≤ 20,000 fds):
 * loop-unlimited-connections is judged from what those loops held, counted by the server itself. The other two
 * claims need a thread design, which max does not run.
 */
export function judgeMax(c: JudgedCell<MaxFigures>, machine: Machine): Claim[] {
  const f = c.figures;
  const [target, held, failed, gauge, workers, threads] = [f.target, f.held, f.failed, f.serverOpenScrapedAtHold, f.serverWorkers, f.serverThreads].map((v) => num(v));
  const claims: Claim[] = [missing('thread-per-connection-memory', 'idle-hold', 'thread-per-connection'),
    missing('tasks-vs-threads-scale', 'idle-hold', 'thread-per-connection')];
  if (target === null || held === null || failed === null || workers === null) {
    claims.splice(1, 0, missing('loop-unlimited-connections', 'idle-hold', 'loop'));
    return claims;
  }
  const n = (v: number): string => v.toLocaleString('en-US');
  const perThread = threads === null || held === 0 ? null : threads / held;
  const allIn = num(f.boxPerConnectionBytes);
  const counted = gauge === held;
  const v: Verdict = held === target && failed === 0 && counted && perThread !== null && perThread < 0.01 ? 'confirmed' : 'inconclusive';
  const fds = num(f.serverMaxFdsPerProcess);
  claims.splice(1, 0, verdict('loop-unlimited-connections', v, `${c.design}: ${workers} loops held ${n(held)} of ${n(target)} (${n(failed)} failed); ` +
    `the server's own gauge read ${gauge === null ? 'nothing (scrape failed)' : n(gauge)}${counted ? '' : ` against the swarm's ${n(held)}`}; ` +
    `${threads === null ? '? threads' : `${n(threads)} threads (${perThread!.toFixed(4)} per connection)`}. ` +
    `One loop holds at most its open-files cap (${n(machine.fdLimit)} fds; the fullest of these held ${fds === null ? '?' : n(fds)}), so ${n(target)} take ${workers} processes; ` +
    `past that the limit is memory: ${allIn === null ? '?' : `${kib(allIn)} per connection all-in, ≈${n(Math.floor(machine.memoryBytes / allIn))} connections in this machine's ${(machine.memoryBytes / 2 ** 30).toFixed(0)} GiB`}`));
  return claims;
}

/**
 * The server's memory over the connections it holds, from the cell's own samples while the swarm opened them (every
 * 0.5 s: open connections and RSS of the whole tree above the first sample's): a line per design, its slope (least
 * squares) the memory each connection added, and where the ramp stopped against what was asked.
 */
function curves(cells: readonly Cell[], s: Scale): Curve[] {
  if (s === 'max') return [];
  const lines = cells.flatMap((c) => {
    const { open, rssBytes } = c.series;
    const base = rssBytes.find((v) => v !== null);
    if (base == null) return [];
    const points: CurvePoint[] = [];
    let most = 0;
    for (const [i, n] of open.entries()) {
      const rss = rssBytes[i];
      // the ramp and the hold: each sample holding more than any before it (the teardown is left out)
      if (n === null || rss === null || n <= most) continue;
      most = n;
      points.push({ x: n, y: +((rss - base) / 2 ** 20).toFixed(2) });
    }
    return points.length >= 2 ? [{ cell: c, line: { design: c.design, points } }] : [];
  });
  if (!lines.length) return [];
  const asked = at(s, N);
  return [{
    id: 'rss-over-open', title: 'Server RSS over the connections it holds, while they open', x: { label: 'open connections (the server\'s gauge)', unit: 'connections' },
    y: { label: 'RSS above the idle server', unit: 'MiB' }, lines: lines.map((l) => l.line),
    knees: lines.map(({ cell, line }) => {
      const slope = leastSquaresSlope(line.points) * 2 ** 20;
      const top = line.points.at(-1)!.x;
      const held = num(cell.figures.held);
      return `${line.design}: ${kib(slope)} per connection over ${line.points.length} samples up to ${top.toLocaleString('en-US')} open; ` +
        (held !== null && held < asked ? `the ramp stopped at ${held.toLocaleString('en-US')} of ${asked.toLocaleString('en-US')}: its limit here` : `no limit reached up to the ${asked.toLocaleString('en-US')} asked`);
    }),
  }];
}

/** The slope of the least-squares line through the points (y per x). */
function leastSquaresSlope(points: readonly CurvePoint[]): number {
  const n = points.length;
  const mx = points.reduce((a, p) => a + p.x, 0) / n;
  const my = points.reduce((a, p) => a + p.y, 0) / n;
  const sxx = points.reduce((a, p) => a + (p.x - mx) ** 2, 0);
  return sxx > 0 ? points.reduce((a, p) => a + (p.x - mx) * (p.y - my), 0) / sxx : 0;
}
