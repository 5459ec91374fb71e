/**
 * One run of bench/peers: a fresh `wslab serve --design uws`, one peer, its ramp and its hold, measured from outside
 * the peer (the server's scraped gauge, /proc for the peer's tree); see bench/peers.ts for what every field means.
 */
import type { ChildProcess } from 'node:child_process';
import { CONNECTIONS_OPEN } from '../../metrics/index.js';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { WSLAB, type ServerProcess } from '../../lab/processes.js';
import { treeCpuSeconds } from '../../metrics/proc-status.js';
import { parseExposition, sumOf } from '../../metrics/exposition.js';
import { readTreeStatus } from '../../metrics/proc-status.js';
import { shellQuote } from '../harness/bench.js';
import { designRun } from '../harness/options.js';
import { startServer as startDesign } from '../harness/server.js';
import { round, type Peer } from './peer.js';
import { epmdPids, launch, live, setEpmdAtRunStart, stopGroup, tempDirs } from './process-groups.js';
import { boxBusySeconds, waitQuiet } from './quiet.js';

/** How a run waits and samples (the bench's options, in seconds and milliseconds). */
export interface RunSettings {
  readonly quietBelow: number;
  readonly quietWaitSec: number;
  readonly startupTimeoutSec: number;
  readonly rampTimeoutSec: number;
  readonly stallSec: number;
  readonly sampleMs: number;
  readonly rampSampleMs: number;
}

/** The server every peer is held against: the job's, not a choice of the user. */
const SERVER = designRun('design', 'uws');

/** A fresh `wslab serve --design uws --port 0 --metrics-port 0`, killed with everything else on any exit. */
async function startServer(): Promise<ServerProcess> {
  const server = await startDesign(SERVER);
  live.add(server.child);
  if (!/^ws:\/\/127\.0\.0\.\d+:\d+\/$/.test(server.url) || !/^http:\/\/127\.0\.0\.\d+:\d+\//.test(server.metricsUrl)) {
    throw new Error(`the server is not on 127.0.0.x: ${server.url} ${server.metricsUrl}`);
  }
  return server;
}
async function scrapeOpen(metrics: string): Promise<number> {
  const res = await fetch(metrics, { signal: AbortSignal.timeout(2000) });
  return sumOf(parseExposition(await res.text()), CONNECTIONS_OPEN.name);
}

export interface S { t: number; open: number | null; rss: number; anon: number; cpu: number; processes: number; threads: number; serverCpu: number; boxBusy: number; benchCpu: number }

export interface RunResult {
  peer: string; connections: number; ok: boolean; why: string[];
  command: string; files: Record<string, string>;
  held: number | null; heldMid: number | null; heldMinDuringHold: number | null; reached: number;
  startupSec: number | null; openSec: number | null; openSecBounds: [number, number] | null;
  openRatePerSec: number | null; openRateBounds: [number | null, number | null] | null;
  rssPeakHoldBytes: number | null; rssPreconnectBytes: number | null; rssAnonPeakHoldBytes: number | null;
  bytesPerConnTotal: number | null; anonBytesPerConnTotal: number | null; cpuSeconds: number | null; cpuRampSeconds: number | null;
  processes: number | null; threads: number | null;
  errors: Record<string, number>; notHeld: number | null; self: Record<string, unknown>;
  loadavg: [number, number]; machineBusyBefore: number; waitedForQuietSec: number;
  serverCpuRampSeconds: number | null; otherCpusDuringRamp: number | null; otherCpusDuringHold: number | null; samples?: string[];
}

/** CPUs' worth of work done on the box between two samples by anything but the peer, the server and this bench. */
function othersCpus(x: S, y: S): number | null {
  const wall = y.t - x.t;
  if (wall <= 0) return null;
  const others = (y.boxBusy - x.boxBusy) - (y.cpu - x.cpu) - (y.serverCpu - x.serverCpu) - (y.benchCpu - x.benchCpu);
  return round(Math.max(0, others) / wall, 2);
}

/** One run: a fresh server, the peer launched in its own group, its ramp and hold sampled; nothing outlives it. */
export async function runOne(peer: Peer, n: number, holdSec: number, r: RunSettings): Promise<RunResult> {
  const dir = mkdtempSync(join(tmpdir(), `wslab-peers-${peer.name}-`));
  tempDirs.add(dir);
  const owned: ChildProcess[] = [];
  const epmdBefore = new Set(epmdPids());
  setEpmdAtRunStart(epmdBefore);
  try {
    return await runIn(dir, owned, peer, n, holdSec, r);
  } finally {
    // normally already stopped; after a failure, nothing of this run may outlive it
    for (const c of owned) await stopGroup(c, 'SIGKILL', 0);
    // Tsung starts epmd as a daemon outside its process tree: stop the one it started (by pid), not one already there.
    for (const p of epmdPids()) if (!epmdBefore.has(p)) { try { process.kill(p, 'SIGTERM'); } catch { /* gone */ } }
    setEpmdAtRunStart(null);
    rmSync(dir, { recursive: true, force: true });
    tempDirs.delete(dir);
    await sleep(3000); // let the kernel reap the sockets before the next peer
  }
}

async function runIn(dir: string, owned: ChildProcess[], peer: Peer, n: number, holdSec: number, r: RunSettings): Promise<RunResult> {
  const load0 = loadavg()[0];
  const why: string[] = [];
  const quiet = await waitQuiet(r.quietBelow, r.quietWaitSec);
  if (!quiet.quiet) why.push(`the box never got quiet: CPUs still ${Math.round(quiet.busy * 100)} % busy after --quiet-wait ${r.quietWaitSec} s`);
  const server = await startServer();
  owned.push(server.child);
  const holdFor = peer.name === 'swarm' ? holdSec + 5 : Math.ceil(r.rampTimeoutSec + holdSec + 10);
  const l = peer.prepare(dir, server.url, n, holdFor);
  for (const [f, text] of Object.entries(l.files)) { mkdirSync(join(f, '..'), { recursive: true }); writeFileSync(f, text); }
  const outFile = join(dir, 'stdout.txt'), errFile = join(dir, 'stderr.txt');
  const outFd = openSync(outFile, 'w'), errFd = openSync(errFile, 'w');
  const t0 = performance.now();
  const child = launch(l.command, l.args, { env: { ...process.env, ...l.env }, cwd: dir, stdout: outFd, stderr: errFd });
  owned.push(child);
  closeSync(outFd); closeSync(errFd);
  const envText = Object.entries(l.env ?? {}).map(([k, v]) => `${k}=${shellQuote(v)} `).join('');
  const command = envText + [l.command === process.execPath ? 'node' : l.command, ...l.args].map(shellQuote).join(' ').replace(WSLAB, 'dist/cli/wslab.js');
  let exited: { code: number | null; signal: string | null; atSec: number } | null = null;
  child.on('exit', (code, signal) => { exited = { code, signal, atSec: (performance.now() - t0) / 1000 }; });

  const samples: S[] = [];
  const sample = async (): Promise<S> => {
    const ts = performance.now();
    let open: number | null = null;
    try { open = await scrapeOpen(server.metricsUrl); } catch { open = null; }
    const t = ((ts + performance.now()) / 2 - t0) / 1000;
    const st = readTreeStatus(child.pid!);
    const u = process.cpuUsage();
    const s = { t, open, rss: st.rssBytes, anon: st.rssAnonBytes, cpu: treeCpuSeconds(child.pid!), processes: st.processes, threads: st.threads,
      serverCpu: treeCpuSeconds(server.pid), boxBusy: boxBusySeconds(), benchCpu: (u.user + u.system) / 1e6 };
    samples.push(s);
    return s;
  };

  let phase: 'startup' | 'ramp' | 'hold' | 'done' = 'startup';
  let firstIdx = -1, reachIdx = -1, holdStartT = 0, maxOpen = 0, lastIncreaseT = 0;
  let midIdx = -1;
  let next = performance.now();
  while (phase !== 'done') {
    // finely while the connections open (the open rate is read off these samples), coarsely over the hold
    next += phase === 'hold' ? r.sampleMs : r.rampSampleMs;
    await sleep(Math.max(0, next - performance.now()));
    const s = await sample();
    const i = samples.length - 1;
    const open = s.open ?? 0;
    if (phase === 'startup') {
      if (open > 0) { phase = 'ramp'; firstIdx = i; maxOpen = open; reachIdx = i; lastIncreaseT = s.t; }
      else if (s.t > r.startupTimeoutSec) { why.push(`no connection reached the server within --startup-timeout ${r.startupTimeoutSec} s of launching the peer`); phase = 'done'; }
    }
    if (phase === 'ramp') {
      if (open > maxOpen) { maxOpen = open; reachIdx = i; lastIncreaseT = s.t; }
      if (maxOpen >= n) { phase = 'hold'; holdStartT = s.t; }
      else if (s.t - lastIncreaseT >= r.stallSec) {
        why.push(`the server's open gauge stopped rising at ${maxOpen} of ${n} (no increase for ${r.stallSec} s)`);
        phase = 'hold'; holdStartT = s.t;
      } else if (s.t - samples[firstIdx].t >= r.rampTimeoutSec) {
        why.push(`the ramp passed --ramp-timeout ${r.rampTimeoutSec} s at ${maxOpen} of ${n}`);
        phase = 'hold'; holdStartT = s.t;
      }
    } else if (phase === 'hold') {
      if (midIdx < 0 && s.t >= holdStartT + holdSec / 2) midIdx = i;
      if (s.t >= holdStartT + holdSec) phase = 'done';
    }
    if (exited && phase !== 'done') {
      const e = exited as { code: number | null; signal: string | null; atSec: number };
      why.push(`the peer exited (code ${e.code}, signal ${e.signal}) at ${round(e.atSec, 1)} s, during the ${phase}`);
      phase = 'done';
    }
  }
  const endIdx = samples.length - 1;
  const end = samples[endIdx];
  const cpuAtEnd = end.cpu;
  const holdSamples = firstIdx >= 0 ? samples.filter((s) => s.t >= holdStartT - 1e-9 && holdStartT > 0) : [];

  await l.stop(child);
  await server.stop();
  live.delete(server.child);
  const stdout = readFileSync(outFile, 'utf8'), stderr = readFileSync(errFile, 'utf8');
  const self = l.selfReport(stdout, stderr, child.exitCode);
  const { errors } = self;

  const held = holdSamples.length ? end.open : null;
  const heldMid = midIdx >= 0 ? samples[midIdx].open : null;
  const openVals = holdSamples.map((s) => s.open).filter((x): x is number => x !== null);
  const rssPeak = holdSamples.length ? Math.max(...holdSamples.map((s) => s.rss)) : null;
  const anonPeak = holdSamples.length ? Math.max(...holdSamples.map((s) => s.anon)) : null;
  const pre = firstIdx > 0 ? samples[firstIdx - 1] : null;
  let openSec: number | null = null, openSecBounds: [number, number] | null = null;
  if (firstIdx >= 0) {
    const first = samples[firstIdx], reach = samples[reachIdx];
    const lastZeroT = pre ? pre.t : 0;
    const beforeReachT = reachIdx > firstIdx ? samples[reachIdx - 1].t : first.t;
    openSec = round((reach.t + beforeReachT) / 2 - (first.t + lastZeroT) / 2, 3);
    openSecBounds = [round(Math.max(0, beforeReachT - first.t), 3), round(reach.t - lastZeroT, 3)];
  }
  if (held !== null && held < n) why.push(`held ${held} of ${n} at the end of the hold`);
  if (heldMid !== null && held !== null && heldMid !== held) why.push(`the gauge moved during the hold: ${heldMid} at the middle, ${held} at the end`);
  const result: RunResult = {
    peer: peer.name, connections: n, ok: held === n && (heldMid ?? n) === n, why, command, files: Object.fromEntries(Object.entries(l.files).map(([f, t]) => [f.slice(dir.length + 1), t])),
    held, heldMid, heldMinDuringHold: openVals.length ? Math.min(...openVals) : null, reached: maxOpen,
    startupSec: firstIdx >= 0 ? round((samples[firstIdx].t + (pre ? pre.t : 0)) / 2, 2) : null,
    openSec, openSecBounds,
    openRatePerSec: openSec ? Math.round(maxOpen / openSec) : null,
    openRateBounds: openSecBounds ? [Math.round(maxOpen / openSecBounds[1]), openSecBounds[0] > 0 ? Math.round(maxOpen / openSecBounds[0]) : null] : null,
    rssPeakHoldBytes: rssPeak, rssPreconnectBytes: pre ? pre.rss : null, rssAnonPeakHoldBytes: anonPeak,
    bytesPerConnTotal: rssPeak !== null && held ? Math.round(rssPeak / held) : null,
    anonBytesPerConnTotal: anonPeak !== null && held ? Math.round(anonPeak / held) : null,
    cpuSeconds: round(cpuAtEnd, 2),
    cpuRampSeconds: firstIdx >= 0 ? round(samples[reachIdx].cpu - (pre ? pre.cpu : 0), 2) : null,
    processes: end.processes, threads: end.threads,
    errors, notHeld: held !== null ? n - held : null, self,
    loadavg: [round(load0), round(loadavg()[0])], machineBusyBefore: quiet.busy, waitedForQuietSec: quiet.waitedSec,
    serverCpuRampSeconds: firstIdx >= 0 ? round(samples[reachIdx].serverCpu - (pre ? pre.serverCpu : samples[0].serverCpu), 2) : null,
    otherCpusDuringRamp: firstIdx >= 0 && pre ? othersCpus(pre, samples[reachIdx]) : null,
    otherCpusDuringHold: holdSamples.length > 1 ? othersCpus(holdSamples[0], holdSamples[holdSamples.length - 1]) : null,
    samples: samples.map((s) => `${s.t.toFixed(3)} ${s.open ?? '-'} ${(s.rss / 2 ** 20).toFixed(1)} ${(s.anon / 2 ** 20).toFixed(1)} ${s.cpu.toFixed(2)}`),
  };
  return result;
}
