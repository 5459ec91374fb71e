import { readdirSync } from 'node:fs';
import { cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import { CONNECTIONS_OPEN } from '../metrics/index.js';
import { processTree, treeCpuSeconds } from '../metrics/proc-status.js';
import type { Column } from './results.js';
import type { CellContext, Figures, MaxRun } from './scenario.js';
import { sleep } from './scenario.js';
import { HOLD_COSTS } from './budget.js';
import { readBox, tcpMemState, type Box } from './sockstat.js';

/**
 * idle-hold at `--scale max`: one cluster server of `plan.serverWorkers` uws processes and one swarm of
 * `plan.swarmWorkers` processes over `plan.sourceIps` hold `plan.connections` idle connections for the hold, while
 * the box is watched (sockstat, tcp_mem, conntrack, MemAvailable). The budget was checked before anything started
 * (lab/budget.ts); this watch is the second line: should MemAvailable still fall below GUARD_BYTES, the swarm is
 * interrupted (its connections close) rather than let the OOM killer choose, since there is no swap.
 */

const GUARD_BYTES = 512 * 1024 * 1024;
const GiB = 1024 ** 3;
/** Window of the best open rate: samples come every 0.5–2 s when the box is loaded. */
const RATE_WINDOW_SEC = 10;

export const MAX_COLUMNS: readonly Column[] = [
  { key: 'held', label: 'held 60 s', unit: 'connections' },
  { key: 'failed', label: 'failed', unit: 'connections' },
  { key: 'timeToTargetSec', label: 'time to target', unit: 's' },
  { key: 'connectRatePerSec', label: 'open rate (mean)', unit: 'conn/s' },
  { key: 'peakOpenRatePerSec', label: `open rate (best ${RATE_WINDOW_SEC} s)`, unit: 'conn/s' },
  { key: 'serverRssPerConnectionBytes', label: 'server RSS per connection', unit: 'bytes' },
  { key: 'swarmRssPerConnectionBytes', label: 'swarm RSS per connection', unit: 'bytes' },
  { key: 'kernelSlabPerConnectionBytes', label: 'kernel slab per connection (pair)', unit: 'bytes' },
  { key: 'boxPerConnectionBytes', label: 'MemAvailable drop per connection (all-in)', unit: 'bytes' },
  { key: 'budgetedBytes', label: 'budgeted', unit: 'bytes' },
  { key: 'boxDropBytes', label: 'MemAvailable drop', unit: 'bytes' },
  { key: 'boxUsedPeakBytes', label: 'box used at peak', unit: 'bytes' },
  { key: 'tcpInuseHeld', label: 'sockstat TCP inuse (held)', unit: 'sockets' },
  { key: 'tcpOrphanHeld', label: 'orphan (held)', unit: 'sockets' },
  { key: 'tcpTwHeld', label: 'TIME_WAIT (held)', unit: 'sockets' },
  { key: 'tcpMemPagesHeld', label: 'tcp_mem charged (held)', unit: 'pages' },
  { key: 'tcpMemPagesPeak', label: 'tcp_mem charged (peak)', unit: 'pages' },
  { key: 'conntrackPeak', label: 'nf_conntrack entries', unit: 'entries' },
  { key: 'tcpMemoryPressures', label: 'TCP memory pressure episodes', unit: 'times' },
  { key: 'tcpAbortOnMemory', label: 'TCP aborts on memory', unit: 'connections' },
  { key: 'serverCpuPerConnectionUs', label: 'server CPU per connection (ramp)', unit: 'µs' },
  { key: 'swarmCpuPerConnectionUs', label: 'swarm CPU per connection (ramp)', unit: 'µs' },
  { key: 'serverOpenScrapedAtHold', label: 'server gauge at hold', unit: 'connections' },
  { key: 'serverScrapeMs', label: 'aggregated /metrics scrape at hold', unit: 'ms' },
  { key: 'serverThreads', label: 'server threads', unit: 'threads' },
  { key: 'serverWorkers', label: 'server processes', unit: 'processes' },
  { key: 'serverMaxFdsPerProcess', label: 'most fds in one server process', unit: 'fds' },
  { key: 'swarmWorkers', label: 'swarm processes', unit: 'processes' },
];

export const maxMethod = (m: MaxRun | undefined): string => m
  ? `A cluster server of ${m.plan.serverWorkers} uws worker processes (SO_REUSEPORT on one port) and a swarm of ${m.plan.swarmWorkers} ` +
    `worker processes binding ${m.plan.sourceIps} open ${m.plan.connections.toLocaleString('en-US')} idle connections ` +
    `(${m.plan.maxPending} attempts in flight, no rate cap: the 2 vCPUs set the pace) and hold them ${m.holdMs / 1000} s. ` +
    `Budgeted before the start (lab/budget.ts): ≈${(m.plan.need.total / GiB).toFixed(1)} GiB of ${(m.plan.availableBytes / GiB).toFixed(1)} GiB available. ` +
    'The box is sampled every 0.5 s: /proc/net/sockstat, tcp_mem, nf_conntrack, MemAvailable and Slab in /proc/meminfo, the server\'s process tree. ' +
    'Per connection: server = (peak − baseline) of the whole tree\'s RSS ÷ held; swarm = its workers\' RSS growth ÷ held (swarm summary); ' +
    'kernel = Slab growth ÷ held (both sockets of a pair); all-in = MemAvailable drop ÷ held.'
  : 'idle-hold at --scale max needs a plan (wslab lab --scale max makes one).';

/** Seconds the run takes: starting the processes, the ramp at ≈8k/s, the hold, the close. */
export const maxSeconds = (m: MaxRun | undefined): number => m
  ? 30 + m.plan.serverWorkers + m.plan.swarmWorkers * 0.5 + m.plan.connections / 8000 + m.holdMs / 1000 + 20 : 60;

interface Peaks { tcpInuse: number; tcpOrphan: number; tcpTw: number; tcpMemPages: number; conntrack: number | null; minAvailable: number; maxSlab: number; last: Box }

/** Reads the box every 250 ms: its peaks, `onLow` once MemAvailable falls under GUARD_BYTES, `onRead` with every reading. */
function watchBox(onLow: (b: Box) => void, onRead: (b: Box) => void): { peaks: Peaks; stop: () => void } {
  const b0 = readBox();
  const peaks: Peaks = { tcpInuse: b0.tcpInuse, tcpOrphan: b0.tcpOrphan, tcpTw: b0.tcpTw, tcpMemPages: b0.tcpMemPages, conntrack: b0.conntrackCount,
    minAvailable: b0.memAvailableBytes, maxSlab: b0.slabBytes, last: b0 };
  let tripped = false;
  const timer = setInterval(() => {
    const b = peaks.last = readBox();
    peaks.tcpInuse = Math.max(peaks.tcpInuse, b.tcpInuse);
    peaks.tcpOrphan = Math.max(peaks.tcpOrphan, b.tcpOrphan);
    peaks.tcpTw = Math.max(peaks.tcpTw, b.tcpTw);
    peaks.tcpMemPages = Math.max(peaks.tcpMemPages, b.tcpMemPages);
    if (b.conntrackCount !== null) peaks.conntrack = Math.max(peaks.conntrack ?? 0, b.conntrackCount);
    peaks.minAvailable = Math.min(peaks.minAvailable, b.memAvailableBytes);
    peaks.maxSlab = Math.max(peaks.maxSlab, b.slabBytes);
    if (!tripped && b.memAvailableBytes < GUARD_BYTES) { tripped = true; onLow(b); }
    onRead(b);
  }, 250);
  return { peaks, stop: () => clearInterval(timer) };
}

/** Best open rate over any RATE_WINDOW_SEC of the server's scraped `open` series. */
function peakRate(t: number[], open: (number | null)[]): number | null {
  let best: number | null = null;
  for (let i = 0, j = 0; i < t.length; i++) {
    while (t[i] - t[j] > RATE_WINDOW_SEC) j++;
    const [a, b] = [open[j], open[i]];
    if (a !== null && b !== null && t[i] - t[j] >= RATE_WINDOW_SEC * 0.75) best = Math.max(best ?? 0, (b - a) / (t[i] - t[j]));
  }
  return best === null ? null : Math.round(best);
}

/** Open fds of each worker of the server (the primary excluded): SO_REUSEPORT's spread against the 20,000 cap. */
function workerFds(primary: number): number[] {
  return processTree(primary).slice(1).map((pid) => { try { return readdirSync(`/proc/${pid}/fd`).length; } catch { return 0; } });
}

/**
 * The open rate in steps of `stepSec` from the pairs open on the box, up to the moment all were held: each step
 * between the last samples read at its two ends (a loaded box answers late, so samples are 0.5–6 s apart).
 */
export function rateSteps(t: readonly number[], pairs: readonly (number | null)[], fromSec: number, toSec: number, stepSec = 30): number[] {
  const at = (x: number): [number, number] | null => {
    let best: [number, number] | null = null;
    for (let i = 0; i < t.length && t[i] <= x; i++) if (pairs[i] !== null) best = [t[i], pairs[i]!];
    return best;
  };
  const out: number[] = [];
  for (let a = fromSec; a < toSec; a += stepSec) {
    const [pa, pb] = [at(a), at(Math.min(toSec, a + stepSec))];
    if (pa !== null && pb !== null && pb[0] > pa[0]) out.push(Math.round((pb[1] - pa[1]) / (pb[0] - pa[0])));
  }
  return out;
}

const kb = (bytes: number): string => `${(bytes / 1024).toFixed(2)} KiB`;
const n = (v: number): string => Math.round(v).toLocaleString('en-US');
const n2 = (v: number): number => Math.max(1, v / 2);

export async function runMaxHold(ctx: CellContext): Promise<Figures> {
  const m = ctx.max;
  if (!m) throw new Error('idle-hold at --scale max ran without a plan');
  const { plan } = m;
  await sleep(2000); // the cluster's workers settle after their ready line
  const baseRss = ctx.sampler.last('rssBytes');
  const base = readBox();
  const from = ctx.sampler.elapsedSec();
  let lowNote: string | undefined;
  const run = await ctx.swarm({ connections: plan.connections, workers: plan.swarmWorkers, sourceIps: plan.sourceIps,
    maxPending: plan.maxPending, rate: 0, holdMs: m.holdMs, profile: 'idle', handshakeTimeoutMs: 30_000 });
  // taken once, when the server holds the target (the close phase's TIME_WAIT and orphans are not the hold's);
  // fds counted then too: reading 55 × 19k fd entries is not free on two cores
  // The trigger is the box's own count (both ends of every pair in sockstat): at a million, the cluster's /metrics
  // answered none of the sampler's 2 s scrapes during the run, so the server's gauge cannot be relied on here.
  let fds: number[] = [];
  let atHold: Box | undefined;
  let heldAtSec: number | undefined;
  let serverOpen: number | null = null;
  let scrapeMs: number | null = null;
  // CPU of both process trees from the swarm's start line (its workers loaded and told to start) to all held: the
  // ramp's cost per connection, from /proc
  const rampFrom = { atSec: ctx.sampler.elapsedSec(), server: treeCpuSeconds(ctx.server.pid), swarm: treeCpuSeconds(run.child.pid) };
  let rampCpu: { server: number; swarm: number } | undefined;
  let heldSeen = false;
  const onRead = (b: Box): void => {
    // 0.1 % slack: other people's sockets come and go in the box-wide count
    if (heldSeen || b.tcpInuse - base.tcpInuse < 2 * plan.connections * 0.999) return;
    heldSeen = true;
    heldAtSec = ctx.sampler.elapsedSec();
    atHold = b;
    rampCpu = { server: treeCpuSeconds(ctx.server.pid) - rampFrom.server, swarm: treeCpuSeconds(run.child.pid) - rampFrom.swarm };
    fds = workerFds(ctx.server.pid!);
    // the primary asks each worker for its metrics and adds them up: timed, since that is what a Prometheus sees
    const t0 = performance.now();
    void Promise.race([ctx.server.scrape(), sleep(20_000).then(() => null)])
      .then((samples) => {
        if (samples) scrapeMs = Math.round(performance.now() - t0);
        serverOpen = samples?.filter((x) => x.name === CONNECTIONS_OPEN.name).reduce((a, x) => a + x.value, 0) ?? null;
      })
      .catch(() => undefined);
  };
  const watch = watchBox((b) => {
    lowNote = `stopped by the memory guard: MemAvailable fell to ${(b.memAvailableBytes / 2 ** 20).toFixed(0)} MiB with ${n(b.tcpInuse / 2)} pairs open; the swarm was interrupted`;
    run.child.kill('SIGINT');
  }, onRead);
  const summary = await ctx.finish(run).finally(() => watch.stop());
  const end = readBox();
  const p = watch.peaks;
  const held = summary.heldAtEnd;
  const peakRss = ctx.sampler.max('rssBytes', from);
  const per = (bytes: number | null): number | null => (held > 0 && bytes !== null ? Math.round(bytes / held) : null);
  const drop = base.memAvailableBytes - p.minAvailable;
  const allIn = per(drop);
  const figures: Figures = {
    target: plan.connections,
    held,
    failed: summary.failed.total,
    timeToTargetSec: summary.connectRatePerSec ? +(summary.opened / summary.connectRatePerSec).toFixed(1) : null,
    connectRatePerSec: summary.connectRatePerSec === null ? null : Math.round(summary.connectRatePerSec),
    // pairs open on the box = (TCP inuse − before) / 2: the same count as the server's gauge, read from sockstat
    peakOpenRatePerSec: peakRate(ctx.sampler.series.t, (ctx.sampler.series.tcpInuse ?? []).map((v) => (v === null ? null : (v - base.tcpInuse) / 2))),
    serverRssPerConnectionBytes: per(peakRss !== null && baseRss !== null ? peakRss - baseRss : null),
    swarmRssPerConnectionBytes: summary.client.bytesPerConnection === null ? null : Math.round(summary.client.bytesPerConnection),
    kernelSlabPerConnectionBytes: per(p.maxSlab - base.slabBytes),
    boxPerConnectionBytes: allIn,
    budgetedBytes: plan.need.total,
    boxDropBytes: drop,
    boxUsedPeakBytes: base.memTotalBytes - p.minAvailable,
    tcpInuseHeld: atHold?.tcpInuse ?? null,
    tcpOrphanHeld: atHold?.tcpOrphan ?? null,
    tcpTwHeld: atHold?.tcpTw ?? null,
    tcpMemPagesHeld: atHold?.tcpMemPages ?? null,
    tcpMemPagesPeak: p.tcpMemPages,
    tcpInusePeak: p.tcpInuse,
    tcpOrphanPeak: p.tcpOrphan,
    tcpTwPeak: p.tcpTw,
    boxAvailableAtHoldBytes: atHold?.memAvailableBytes ?? null,
    heldAfterSec: heldAtSec === undefined ? null : +(heldAtSec - from).toFixed(1),
    conntrackPeak: p.conntrack,
    tcpMemoryPressures: end.tcpMemoryPressures - base.tcpMemoryPressures,
    tcpAbortOnMemory: end.tcpAbortOnMemory - base.tcpAbortOnMemory,
    serverWorkers: plan.serverWorkers,
    serverMaxFdsPerProcess: fds.length ? Math.max(...fds) : null,
    serverMinFdsPerProcess: fds.length ? Math.min(...fds) : null,
    swarmWorkers: plan.swarmWorkers,
    serverPeakOpenScraped: ctx.sampler.max('open', from),
    serverOpenScrapedAtHold: serverOpen,
    serverScrapeMs: scrapeMs,
    serverThreads: ctx.sampler.max('threads', from),
    serverCpuPerConnectionUs: rampCpu && held > 0 ? Math.round(rampCpu.server / held * 1e6) : null,
    swarmCpuPerConnectionUs: rampCpu && held > 0 ? Math.round(rampCpu.swarm / held * 1e6) : null,
    swarmCpuSeconds: summary.client.cpuSeconds,
  };

  ctx.note(`budget: ${plan.limits.map((l) => `${l.name} allows ${Number.isFinite(l.allows) ? n(l.allows) : 'no limit'} (${l.note})`).join('; ')}.`);
  if (atHold) {
    ctx.note(`sockstat with all ${n(plan.connections)} held: TCP inuse ${n(atHold.tcpInuse)}, orphan ${n(atHold.tcpOrphan)}, tw ${n(atHold.tcpTw)}, alloc ${n(atHold.tcpAlloc)}, ` +
      `mem ${n(atHold.tcpMemPages)} pages (${tcpMemState(atHold)}); MemAvailable ${(atHold.memAvailableBytes / GiB).toFixed(2)} GiB; Slab ${(atHold.slabBytes / GiB).toFixed(2)} GiB; ` +
      `server fds per worker ${fds.length ? `${n(Math.min(...fds))}–${n(Math.max(...fds))}` : 'not counted'}; every pair was open ${heldAtSec === undefined ? '?' : (heldAtSec - from).toFixed(1)} s after the swarm started (worker start included); the server's gauge then read ${serverOpen === null ? 'nothing (scrape failed)' : n(serverOpen)}.`);
  }
  if (heldAtSec !== undefined && rampCpu) {
    const pairs = (ctx.sampler.series.tcpInuse ?? []).map((v) => (v === null ? null : (v - base.tcpInuse) / 2));
    const steps = rateSteps(ctx.sampler.series.t, pairs, rampFrom.atSec, heldAtSec);
    const sec = heldAtSec - rampFrom.atSec;
    ctx.note(`the ramp, from the swarm's start to all held (${sec.toFixed(1)} s, /proc read every 0.25 s): open rate per 30 s ${steps.map((r) => `${(r / 1000).toFixed(1)}k`).join(', ')} /s; ` +
      `CPU ${rampCpu.server.toFixed(1)} s in the server's ${plan.serverWorkers + 1} processes and ${rampCpu.swarm.toFixed(1)} s in the swarm's ${plan.swarmWorkers + 1} ` +
      `(${(((rampCpu.server + rampCpu.swarm) / sec) / cpus().length * 100).toFixed(0)} % of the ${cpus().length} cores; the rest went to the lab, kernel threads and whatever else ran: the noise figure).`);
  }
  ctx.note(`sockstat peaks over the run (close phase included): TCP inuse ${n(p.tcpInuse)} (both ends of every pair), orphan ${n(p.tcpOrphan)}, tw ${n(p.tcpTw)}, ` +
    `mem ${n(p.tcpMemPages)} pages against tcp_mem ${base.tcpMem.map(n).join(' / ')} (${tcpMemState({ tcpMemPages: p.tcpMemPages, tcpMem: base.tcpMem })}); ` +
    `nf_conntrack ${p.conntrack === null ? 'not loaded' : `${n(p.conntrack)} of ${n(base.conntrackMax ?? 0)}`}; ` +
    `MemAvailable ${(base.memAvailableBytes / GiB).toFixed(2)} → ${(p.minAvailable / GiB).toFixed(2)} GiB (budgeted drop ${(plan.need.total / GiB).toFixed(2)} GiB, measured ${(drop / GiB).toFixed(2)} GiB).`);
  if (lowNote) ctx.note(lowNote);
  if (p.tcpMemPages >= base.tcpMem[1]) {
    ctx.note(`tcp_mem reached ${tcpMemState({ tcpMemPages: p.tcpMemPages, tcpMem: base.tcpMem })} at ${n(p.tcpMemPages)} pages of ${n(base.tcpMem[2])} ` +
      `(${(p.tcpMemPages / n2(p.tcpInuse)).toFixed(2)} pages per pair at the peak) while the hold charged ${atHold ? n(atHold.tcpMemPages) : '?'}: the close phase, when close frames and FINs queue on both ends at once, is what nears the kernel's TCP memory limit ` +
      `(TcpExt: ${n(end.tcpMemoryPressures - base.tcpMemoryPressures)} pressure episodes, ${n(end.tcpAbortOnMemory - base.tcpAbortOnMemory)} connections aborted for memory).`);
  }
  ctx.note(bottleneck(held, plan.connections, summary.failed, base, allIn, m));
  return figures;
}

/**
 * What stops a bigger run, from the measured figures: failures of the ramp when it fell short, otherwise the
 * first limit the measured all-in cost per connection reaches (memory for MemAvailable and the 20 GiB cap, else
 * the other limits of the plan).
 */
export function bottleneck(held: number, target: number, failed: Record<string, number>, base: Box, allIn: number | null, m: MaxRun): string {
  if (held < target) {
    const causes = Object.entries(failed).filter(([k, v]) => k !== 'total' && v > 0).map(([k, v]) => `${k} ${n(v)}`).join(', ');
    return `bottleneck: held ${n(held)} of ${n(target)}; failures: ${causes || 'none counted (connections lost during the hold)'}.`;
  }
  if (!allIn) return 'bottleneck: not measured (no memory growth recorded).';
  // the server's workers started before the baseline: add their budgeted cost, so that the estimate scales both sides
  const perConnection = allIn + (m.plan.serverWorkers * HOLD_COSTS.processBaseBytes) / held;
  const byMemory = Math.floor((base.memAvailableBytes - GiB) / perConnection);
  const byCap = Math.floor((20 * GiB - (base.memTotalBytes - base.memAvailableBytes)) / perConnection);
  const other = m.plan.limits.filter((l) => l.name !== 'memory' && l.name !== 'box memory cap')[0];
  const first = [{ name: 'memory (MemAvailable − 1 GiB reserve)', allows: byMemory }, { name: 'the 20 GiB box cap', allows: byCap },
    { name: other.name, allows: other.allows }].sort((a, b) => a.allows - b.allows)[0];
  return `bottleneck: at the measured ${kb(allIn)} per connection all-in (MemAvailable drop: kernel pair, both userlands, swarm processes) ` +
    `+ ${kb(perConnection - allIn)} for the server's ${m.plan.serverWorkers} process baselines, ` +
    `${first.name} stops it first, at ≈${n(first.allows)} connections (memory alone: ≈${n(byMemory)}; the 20 GiB cap: ≈${n(byCap)}; ` +
    `${other.name}: ${Number.isFinite(other.allows) ? n(other.allows) : 'no limit'}). The open rate is set by the 2 vCPUs shared by ${m.plan.serverWorkers + m.plan.swarmWorkers} processes; ` +
    'tearing the connections down charges tcp_mem far more than holding them (see above).';
}
