import { BLOCK_MS } from './scenarios/blocking-call.js';
import { RECOVERY_GRACE_MS } from './scenarios/slow-client-dos.js';
import type { Cell, Claim, ClaimId, Machine, ScenarioResult, Verdict } from './results.js';

/** The seed articles' claims, one sentence each, as the report states them. */
export const CLAIM_TEXT: Record<ClaimId, string> = {
  'thread-per-connection-memory': 'A thread server holds one thread per open WebSocket, and pays for it in memory per connection.',
  'loop-unlimited-connections': 'A single loop holds "essentially unlimited" connections: only OS limits (file descriptors, memory) stop it.',
  'slow-client-dos': 'A single loop is far less exposed to slow-client DoS (slowloris, clients that never read) than a fixed worker pool.',
  'blocking-call': 'One blocking call (the time.sleep mistake) stalls every client of a loop; threads isolate it.',
  'slow-backend-queueing': 'When a backend slows from 50 ms to 500 ms, fixed workers queue while a loop just waits longer.',
  'mixed-sizes': 'With mixed task sizes, small requests wait behind large ones where one worker serves them in order (a loop); independently scheduled threads keep them fast.',
  'context-switch': 'Many threads pay in context switches for work a loop does without them.',
  'cpu-bound-processes': 'CPU-bound work wants processes, about cores (+1) of them.',
  'tasks-vs-threads-scale': 'Tasks scale to far more concurrent connections than threads on the same machine.',
};

type Lookup = (design: (c: Cell) => boolean, key: string) => number | null;

const isLoop = (c: Cell) => c.design === 'uws' || c.design === 'ws';
const isUws = (c: Cell) => c.design === 'uws';
const isThreads = (c: Cell) => c.design === 'threads';
const isPool = (c: Cell) => c.design.startsWith('threads --pool');
const kib = (b: number) => `${(b / 1024).toFixed(1)} KiB`;
const ms = (v: number) => `${Math.round(v)} ms`;
const ratio = (a: number, b: number) => (b > 0 ? a / b : Infinity);
const x = (r: number) => (Number.isFinite(r) ? `×${r >= 10 ? Math.round(r) : r.toFixed(1)}` : '×∞');

function lookup(results: readonly ScenarioResult[], scenario: string): Lookup {
  const cells = results.find((r) => r.id === scenario)?.cells.filter((c) => c.status === 'ok') ?? [];
  return (design, key) => {
    const v = cells.find(design)?.figures[key];
    return typeof v === 'number' && Number.isFinite(v) ? v : null;
  };
}

const verdict = (id: ClaimId, v: Verdict, evidence: string): Claim => ({ id, claim: CLAIM_TEXT[id], verdict: v, evidence });
const missing = (id: ClaimId, scenario: string, what: string): Claim =>
  verdict(id, 'inconclusive', `not measured: scenario ${scenario} has no ${what} result in this run`);

/** Verdicts from measured figures only; a claim whose scenario did not run (or failed) is inconclusive, saying why. */
export function judge(results: readonly ScenarioResult[], machine: Machine): Claim[] {
  const idle = lookup(results, 'idle-hold');
  const claims: Claim[] = [];

  // Memory per connection = RSS growth + kernel stacks and page tables (a thread's 16 KiB kernel stack is in no RSS).
  const mem = (d: (c: Cell) => boolean): number | null => {
    const rss = idle(d, 'rssPerConnectionBytes');
    return rss === null ? null : rss + (idle(d, 'kernelPerConnectionBytes') ?? 0);
  };
  const tMem = mem(isThreads);
  const uMem = mem(isUws);
  const tThr = idle(isThreads, 'threadsPerConnection');
  const uThr = idle(isUws, 'threadsPerConnection');
  if (tMem === null || uMem === null || tThr === null || uThr === null) claims.push(missing('thread-per-connection-memory', 'idle-hold', 'threads and uws'));
  else {
    const r = ratio(tMem, Math.max(uMem, 1));
    const v: Verdict = tThr >= 0.9 && r >= 10 ? 'confirmed' : tThr < 0.5 || r < 2 ? 'refuted' : 'inconclusive';
    claims.push(verdict('thread-per-connection-memory', v, `threads: ${kib(tMem)} (RSS + kernel stack and page tables) and ${tThr.toFixed(2)} threads per connection vs uws ${kib(uMem)} and ${uThr.toFixed(3)}: ${x(r)} the memory`));
  }

  const uHeld = idle(isUws, 'held');
  const uFailed = idle(isUws, 'failed');
  if (uHeld === null || uMem === null || uFailed === null || uThr === null) claims.push(missing('loop-unlimited-connections', 'idle-hold', 'uws'));
  else {
    const byMemory = Math.floor(machine.memoryBytes / Math.max(uMem + 8200, 1)); // + ≈8.2 KB kernel per loopback pair (MACHINE.md)
    const v: Verdict = uFailed === 0 && uThr < 0.01 ? 'confirmed' : 'inconclusive';
    claims.push(verdict('loop-unlimited-connections', v, `uws held ${uHeld} of ${uHeld + uFailed} with ${uThr.toFixed(3)} threads per connection; ` +
      `what stops one process is its open-files cap (${machine.fdLimit}), then memory: at ${kib(uMem)} + ≈8 KiB of kernel per connection this machine fits ≈${byMemory.toLocaleString('en')}`));
  }

  claims.push(judgeDos(results));

  const blk = lookup(results, 'blocking-call');
  const loopP99 = blk(isLoop, 'healthyRttP99Ms');
  const thrP99 = blk(isThreads, 'healthyRttP99Ms');
  if (loopP99 === null || thrP99 === null) claims.push(missing('blocking-call', 'blocking-call', 'loop and threads'));
  else {
    const loopAll = results.find((r) => r.id === 'blocking-call')!.cells.filter((c) => c.status === 'ok' && isLoop(c));
    const stalled = loopAll.every((c) => (c.figures.healthyRttP99Ms ?? 0) >= 0.8 * BLOCK_MS);
    const v: Verdict = stalled && thrP99 < 0.25 * BLOCK_MS ? 'confirmed' : !stalled ? 'refuted' : 'inconclusive';
    claims.push(verdict('blocking-call', v, `during one \`block ${BLOCK_MS}\`: others' RTT p99 ${loopAll.map((c) => `${c.design} ${ms(c.figures.healthyRttP99Ms ?? NaN)}`).join(', ')}; threads ${ms(thrP99)}`));
  }

  const slow = lookup(results, 'slow-backend');
  const workers = slow(isPool, 'slowP99Ms') !== null ? isPool : isThreads;
  const wP99 = slow(workers, 'slowP99Ms');
  const lP99 = slow(isUws, 'slowP99Ms') ?? slow(isLoop, 'slowP99Ms');
  if (wP99 === null || lP99 === null) claims.push(missing('slow-backend-queueing', 'slow-backend', 'threads and loop'));
  else {
    const r = ratio(wP99, lP99);
    const v: Verdict = r >= 2 ? 'confirmed' : r <= 1.2 ? 'refuted' : 'inconclusive';
    const w = results.find((s) => s.id === 'slow-backend')!.cells.find((c) => c.status === 'ok' && workers(c))!.design;
    claims.push(verdict('slow-backend-queueing', v, `at wait 500: ${w} RTT p99 ${ms(wP99)} vs loop ${ms(lP99)} (${x(r)}); at wait 50: ${w} ${ms(slow(workers, 'fastP99Ms') ?? NaN)} vs loop ${ms(slow(isUws, 'fastP99Ms') ?? NaN)}`));
  }

  const mix = lookup(results, 'mixed-sizes');
  const lSmall = mix(isUws, 'smallP99Ms') ?? mix(isLoop, 'smallP99Ms');
  const tSmall = mix(isThreads, 'smallP99Ms');
  if (lSmall === null || tSmall === null) claims.push(missing('mixed-sizes', 'mixed-sizes', 'loop and threads'));
  else {
    const r = ratio(lSmall, Math.max(tSmall, 0.1));
    const v: Verdict = r >= 2 ? 'confirmed' : r <= 1.2 ? 'refuted' : 'inconclusive';
    claims.push(verdict('mixed-sizes', v, `small requests' RTT p99 next to large ones: loop ${ms(lSmall)} vs threads ${ms(tSmall)} (${x(r)})`));
  }

  const fan = lookup(results, 'cpu-fanout');
  const tSw = fan(isThreads, 'switchesPerRequest');
  const lSw = fan(isUws, 'switchesPerRequest') ?? fan(isLoop, 'switchesPerRequest');
  if (tSw === null || lSw === null) claims.push(missing('context-switch', 'cpu-fanout', 'threads and loop'));
  else {
    const r = ratio(tSw, Math.max(lSw, 0.01));
    const v: Verdict = r >= 3 ? 'confirmed' : r <= 1.2 ? 'refuted' : 'inconclusive';
    claims.push(verdict('context-switch', v, `context switches per request: threads ${tSw.toFixed(2)} vs loop ${lSw.toFixed(2)} (${x(r)}); ` +
      `CPU per 1000 requests: threads ${fan(isThreads, 'cpuMsPerKiloRequest')} ms vs loop ${fan(isUws, 'cpuMsPerKiloRequest') ?? fan(isLoop, 'cpuMsPerKiloRequest')} ms`));
  }

  const cpu = results.find((r) => r.id === 'cpu-bound')?.cells.filter((c) => c.status === 'ok') ?? [];
  const rps = (label: string) => cpu.find((c) => c.design === label)?.figures.requestsPerSec ?? null;
  const one = rps('uws');
  const atCores = rps(`cluster --workers ${machine.cpus}`);
  const plusOne = rps(`cluster --workers ${machine.cpus + 1}`);
  if (one === null || atCores === null) claims.push(missing('cpu-bound-processes', 'cpu-bound', 'uws and cluster'));
  else {
    const r = ratio(atCores, one);
    const threadsRps = rps('threads');
    const knee = plusOne === null ? '' : `; ${machine.cpus + 1} workers: ${plusOne} req/s (${x(ratio(plusOne, atCores))} of ${machine.cpus})`;
    const v: Verdict = r >= 1.4 ? 'confirmed' : r <= 1.1 ? 'refuted' : 'inconclusive';
    claims.push(verdict('cpu-bound-processes', v, `one loop ${one} req/s vs ${machine.cpus} worker processes ${atCores} req/s (${x(r)})${knee}; ` +
      `${threadsRps === null ? '' : `threads ${threadsRps} req/s; `}the swarm shares the ${machine.cpus} cores`));
  }

  if (tMem === null || uMem === null || tThr === null) claims.push(missing('tasks-vs-threads-scale', 'idle-hold', 'threads and uws'));
  else {
    const perConnKernel = 8200;
    const threadCap = 32_768; // pid_max here: every thread takes a pid (MACHINE.md)
    const fitsThreads = Math.min(threadCap, Math.floor(machine.memoryBytes / (tMem + perConnKernel)));
    const fitsLoop = Math.floor(machine.memoryBytes / (uMem + perConnKernel));
    const r = ratio(fitsLoop, fitsThreads);
    claims.push(verdict('tasks-vs-threads-scale', r >= 3 ? 'confirmed' : r <= 1.2 ? 'refuted' : 'inconclusive',
      `on this machine (${(machine.memoryBytes / 2 ** 30).toFixed(0)} GiB, pid_max 32768): threads fit ≈${fitsThreads.toLocaleString('en')} connections, ` +
      `uws ≈${fitsLoop.toLocaleString('en')} (${x(r)}), from the measured per-connection memory plus ≈8 KiB of kernel each`));
  }
  return claims;
}

const pct = (v: number | null | undefined): string => (typeof v === 'number' ? `${(v * 100).toFixed(v >= 0.995 && v < 1 ? 1 : 0)} %` : 'n/a');

/**
 * Slow-client DoS: confirmed when every defended loop kept ≥ 99 % of its healthy requests answered under slowloris
 * while the defended fixed pool accepted < 10 % of the healthy clients arriving during the attack; refuted when the
 * pool kept serving (≥ 90 % accepted) or a loop did not (< 90 % answered).
 */
function judgeDos(results: readonly ScenarioResult[]): Claim {
  const cells = results.find((r) => r.id === 'slow-client-dos')?.cells.filter((c) => c.status === 'ok') ?? [];
  const defended = cells.filter((c) => !c.design.includes('--no-defenses'));
  const loops = defended.filter(isLoop).filter((c) => c.figures.healthyServedRate != null);
  const pool = defended.find(isPool);
  const poolRate = pool?.figures.healthyConnectRate;
  if (loops.length === 0 || typeof poolRate !== 'number') return missing('slow-client-dos', 'slow-client-dos', 'loop and threads --pool');
  const served = (c: Cell) => c.figures.healthyServedRate as number;
  const loopsOk = loops.every((c) => served(c) >= 0.99 && (c.figures.healthyRttP99Ms ?? Infinity) < 50);
  const v: Verdict = loopsOk && poolRate < 0.1 ? 'confirmed' : poolRate >= 0.9 || loops.some((c) => served(c) < 0.9) ? 'refuted' : 'inconclusive';
  const naked = cells.find((c) => c.design.startsWith('ws') && c.design.includes('--no-defenses'));
  const nakedPool = cells.find((c) => isPool(c) && c.design.includes('--no-defenses'));
  const recovery = pool?.figures.recoverySec;
  return verdict('slow-client-dos', v, `under slowloris: ${loops.map((c) => `${c.design} answered ${pct(served(c))} of healthy requests (p99 ${ms(c.figures.healthyRttP99Ms ?? NaN)})`).join(', ')}; ` +
    `${pool!.design} accepted ${pct(poolRate)} of the healthy clients arriving during the attack` +
    `; its probe failed for ${pool!.figures.unavailableSec} s` +
    `${pool!.figures.attackersHeldAtEnd === 0 ? ', until the handshake timeout cut every attacker' : ', until the attack ended'}` +
    `${typeof recovery === 'number' ? ` (service back ${recovery} s into the attack)` : ` and was not back within ${RECOVERY_GRACE_MS / 1000} s of its end`}` +
    `${nakedPool ? `; without defences ${nakedPool.design.split(' --no')[0]} accepted ${pct(nakedPool.figures.healthyConnectRate)}` : ''}` +
    `${naked ? `; slow readers grew ws --no-defenses by ${naked.figures.readerRssSlopeMiBps ?? 'n/a'} MiB/s (with the send cap: ${defended.find((c) => c.design === 'ws')?.figures.readerRssSlopeMiBps ?? 'n/a'} MiB/s)` : ''}`);
}
