/**
 * The swarm's parent process: forks `--workers K` worker processes (client/worker.ts), gives each a deterministic
 * slice (connections first..first+count, every K-th source address, targets round-robin by global connection
 * index), times the phases for all of them (ramp → hold → close), aggregates their counts, merges their HDR
 * histograms (encoded, then added: percentiles of a merge, never an average of percentiles) and produces the
 * summary, the exit code and the /metrics endpoint.
 *
 * Every wait here is bounded: workers must be ready within 15 s (plus 0.5 s per further worker: they load on the same cores), the ramp ends by construction (one attempt per
 * connection, each bounded by --handshake-timeout), the hold by --hold, the close by the close timeout + 10 s and
 * then for as long as the workers' counts of connections left keep falling (client/close-phase.ts: each fall buys
 * 5 s; the count is finite), after which a worker that stopped moving is killed and its last periodic figures are used. `--probe` runs here, in this process,
 * from the start order to the close order (client/probe.ts), each probe bounded by its own deadline.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import * as hdr from 'hdr-histogram-js';
import { ATTACK_CLOSE_CODES, ATTACK_OUTCOMES, SWARM_CAUSES, type AttackOutcome, type SwarmCause } from '../metrics/swarm.js';
import type { MetricsEndpoint } from '../metrics/endpoint.js';
import { established, readTree } from '../metrics/proc-status.js';
import type { IpcGather } from '../metrics/gather.js';
import { describeNoise, NoiseWatch } from '../metrics/noise.js';
import type { WorkerMetrics } from './metrics.js';
import {
  isAttack, type AttackOptions, type SwarmCommand, type SwarmHandshake, type SwarmOptions, type SwarmSpeech, type SwarmTarget,
  type ProfileName,
} from './options.js';
import { latencyHistogram } from './profiles.js';
import type { ReconnectOptions } from './reconnect.js';
import {
  LiveView, latencyMs, summaryTable, writeSummary, type AttackSummary, type HealthySummary, type Live, type ServerFigures, type Summary, type SwarmBoxNoise,
} from './recorder.js';
import { awaitClosing } from './close-phase.js';
import { swarmPorts, type SwarmPorts } from './ports.js';
import { assembleSummary, attackGroup, healthyGroup, nonsense, round3, roundedRate, type ProbeParts, type SummaryParts } from './summary.js';
import { describeVerdict, evaluate } from './thresholds.js';
import { attribute, readCounts, type CountsSnapshot } from './attribution.js';
import { UsageError } from '../core/errors.js';

/* ---- the IPC messages between coordinator and workers ---- */

export interface WorkerInit {
  t: 'init';
  index: number;
  /** Index of the worker's group in options.groups; its ramp starts `startDelayMs` after the start order. */
  group: number;
  startDelayMs: number;
  firstIndex: number;
  count: number;
  rate: number;
  maxPending: number;
  sources: readonly string[];
  targets: readonly SwarmTarget[];
  profile: ProfileName;
  intervalMs: number;
  command: SwarmCommand;
  speech: SwarmSpeech;
  handshake: SwarmHandshake;
  readerCommand: SwarmCommand;
  attack: AttackOptions;
  handshakeTimeoutMs: number;
  closeTimeoutMs: number;
  metrics: boolean;
  /** `--reconnect`, for healthy groups; undefined = off. */
  reconnect: ReconnectOptions | undefined;
}
export type ToWorker = WorkerInit | { t: 'start' } | { t: 'close'; graceful: boolean } | { t: 'metrics'; id: number };

/** A worker's figures, sent every 500 ms and once more, final, after its close phase. */
export interface WorkerStats {
  attempted: number;
  opened: number;
  open: number;
  connecting: number;
  closing: number;
  peakOpen: number;
  closeTimeouts: number;
  /** slowloris attackers dribbling now; conn-flood connections dropped so far. */
  dribbling: number;
  dropped: number;
  /** Upgrades that negotiated permessage-deflate; null when the worker did not offer it. */
  deflated: number | null;
  /** By index of SWARM_CAUSES. */
  failed: number[];
  lost: number[];
  lostFirstAt: number;
  lostLastAt: number;
  /** By index of options.targets. */
  openByTarget: number[];
  lostByTarget: number[];
  abruptByTarget: number[];
  firstAttemptAt: number;
  lastOpenedAt: number;
  rampEndedAt: number;
  sent: number;
  received: number;
  replyErrors: number;
  /** Server messages that answered no request. */
  pushed: number;
  /** `--subscribe`: connections that went silent past --stall-after, and connection-seconds watched. */
  push: { stalled: number; seconds: number } | null;
  pingsSent: number;
  pongsReceived: number;
  rttCount: number;
  rttP99Us: number;
  rssBytes: number;
  cpuSeconds: number;
  load: { delayMs: number; cpu: number; maxDelayMs: number; maxCpu: number; saturatedRamp: number; saturatedHold: number };
  /** ping, chatty: requests the open-loop schedule owed so far (docs/swarm-summary.md); 0 for other profiles. */
  requestsDue: number;
  /** `--reconnect`: attempts, reopened, failures by index of SWARM_CAUSES, slots down now, first drop and last all-up (epoch ms, 0 = none). */
  reconnect: { attempts: number; reconnected: number; failed: number[]; down: number; firstDownAt: number; allUpAt: number } | null;
  /** Attack profiles: outcomes by index of ATTACK_OUTCOMES, close codes by index of ATTACK_CLOSE_CODES. */
  attack: { outcomes: number[]; closeCodes: number[]; bytesSent: number; bytesReceived: number } | null;
}
export type WorkerHeld = Pick<WorkerFinal, 'heldAtEnd' | 'attackersHeldAtEnd' | 'rssAtEndBytes' | 'openByTargetAtEnd'>;
export interface WorkerFinal {
  t: 'final';
  s: WorkerStats;
  /** Taken when the close order arrived, before anything closed. */
  heldAtEnd: number;
  /** Attack workers: attackers still connected (open or dribbling) when the close order came. */
  attackersHeldAtEnd: number;
  rssAtEndBytes: number;
  openByTargetAtEnd: number[];
  connectHdr: string;
  /** `--reconnect`: connect() → 101 of the reopened connections, µs; null without it. */
  reconnectHdr: string | null;
  rttHdr: string;
  /** Attack workers: time from connect() to the cut, µs. */
  cutHdr: string | null;
  /** `--subscribe`: gaps between a connection's pushes, µs. */
  pushGapHdr: string | null;
}
export type FromWorker =
  | { t: 'ready'; baselineRssBytes: number }
  | { t: 'stats'; s: WorkerStats }
  | { t: 'ramped' }
  | { t: 'failure'; cause: SwarmCause; detail: string }
  | WorkerFinal
  /** What the worker held when the close order arrived, sent before it closes anything. */
  | ({ t: 'held' } & WorkerHeld)
  | { t: 'metrics'; id: number; data: WorkerMetrics };

/** Exit codes of `wslab swarm` (also in docs/swarm-summary.md). */
export const EXIT = Object.freeze({ ok: 0, usage: 1, runFailed: 2, thresholds: 99, interrupted: 130 });

const WORKER = fileURLToPath(new URL('./worker.js', import.meta.url));
/*
 * V8 flags for workers: a 1 MiB semi-space keeps the young generation small. The ramp allocates a few short-lived
 * objects per connection (requests, write wraps, header strings) and a larger nursery only shows up as RSS: measured
 * here at 20,000 idle connections, ≈1.1 KB per held connection with the flag against ≈1.8 KB without.
 */
export const WORKER_EXEC_ARGV = ['--max-semi-space-size=1'];
/*
 * Workers fork together and load on the same cores: dozens of them (a million connections is 53 here) take a
 * while on two vCPUs, so each further worker adds half a second.
 */
const READY_TIMEOUT_MS = 15_000;
const READY_PER_WORKER_MS = 500;
/** Past the close budget, how long a closing worker may go without progress before it is killed. */
const CLOSE_PROGRESS_GRACE_MS = 5000;

const fixes = (o: SwarmOptions, ports: SwarmPorts): Partial<Record<SwarmCause, string>> => ({
  EMFILE: `a worker ran out of file descriptors (its open-files limit is ${o.openFilesLimit}, ulimit -n): add --workers (each holds at most ~${o.socketsPerWorker} sockets under that limit), or raise the limit`,
  EADDRNOTAVAIL: `out of local ports or addresses (the swarm binds ${ports.perSource} ports per source address): add --source-ips, e.g. --source-ips 127.0.0.2-127.0.0.60`,
  tls_certificate: "the server's certificate is not trusted: pass --ca FILE (the certificate or CA that signed it), --servername NAME when it is issued for another name than the URL's host, or --insecure to skip verification (testing only)",
  tls_handshake: 'TLS failed: is the server speaking TLS on that port (else use ws://)?',
});

const epochMs = (): number => performance.timeOrigin + performance.now();

class WorkerProcess {
  readonly child: ChildProcess;
  baselineRssBytes = 0;
  stats: WorkerStats | undefined;
  ramped = false;
  final: WorkerFinal | undefined;
  /** Its figures at the close order; they survive a worker killed for closing too slowly. */
  held: WorkerHeld | undefined;
  exited = false;
  readonly ready: Promise<void>;
  finalReceived!: () => void;
  readonly finalOrExit: Promise<void>;

  constructor(readonly init: WorkerInit, onMessage: (w: WorkerProcess, m: FromWorker) => void, onExit: (w: WorkerProcess, code: number | null, signal: string | null) => void, workerCount = 1) {
    this.child = fork(WORKER, [], { execArgv: WORKER_EXEC_ARGV, stdio: ['ignore', 'ignore', 'inherit', 'ipc'], serialization: 'json' });
    let readyResolve!: () => void;
    let readyReject!: (e: Error) => void;
    this.ready = new Promise((res, rej) => { readyResolve = res; readyReject = rej; });
    this.ready.catch(() => {}); // observed by runSwarm; a later exit must not surface as an unhandled rejection
    this.finalOrExit = new Promise((res) => { this.finalReceived = res; });
    const readyMs = READY_TIMEOUT_MS + READY_PER_WORKER_MS * (workerCount - 1);
    const timer = setTimeout(() => readyReject(new Error(`swarm worker ${init.index} did not start within ${readyMs / 1000} s`)), readyMs);
    this.child.on('message', (m: FromWorker) => {
      if (m.t === 'ready') {
        clearTimeout(timer);
        this.baselineRssBytes = m.baselineRssBytes;
        readyResolve();
      } else if (m.t === 'held') {
        this.held = m;
      } else if (m.t === 'final') {
        this.final = m;
        this.stats = m.s;
        this.finalReceived();
      }
      onMessage(this, m);
    });
    // 'close', not 'exit': 'exit' can come while the worker's last IPC messages are still unread, and a worker that
    // sent its `final` and exited 0 was then taken for dead (seen at 100,000 connections over 6 workers, exit 2);
    // 'close' waits for the IPC channel to end, after every message it carried
    this.child.on('close', (code, signal) => {
      this.exited = true;
      clearTimeout(timer);
      readyReject(new Error(`swarm worker ${init.index} exited during start (code ${code}, signal ${signal})`));
      this.finalReceived();
      onExit(this, code, signal);
    });
    this.child.on('error', () => {}); // a send to a dead worker: the exit handler reports it
    this.child.send(init);
  }

  send(m: ToWorker): void {
    if (!this.exited && this.child.connected) this.child.send(m);
  }
}

/** Workers of each group: --workers for a single group, else ceil(connections / socketsPerWorker) per group. */
export function groupWorkers(o: SwarmOptions): number[] {
  return o.groups.length === 1 ? [o.workers] : o.groups.map((g) => Math.ceil(g.connections / o.socketsPerWorker));
}

/**
 * Splits each group's connections over its workers: counts differ by at most one; sources dealt round-robin over
 * every worker when there are enough. Connection indexes run on across groups, so targets and source addresses
 * rotate over the whole swarm. --rate and --max-pending apply to each group (a delayed healthy group must not wait
 * behind an attack's pending attempts).
 */
export function slices(o: SwarmOptions): Omit<WorkerInit, 't' | 'metrics'>[] {
  const perGroup = groupWorkers(o);
  const k = perGroup.reduce((a, b) => a + b, 0);
  let first = 0;
  let index = 0;
  return o.groups.flatMap((g, gi) => Array.from({ length: perGroup[gi] }, (_, j) => {
    const kg = perGroup[gi];
    const i = index++;
    const count = Math.floor(g.connections / kg) + (j < g.connections % kg ? 1 : 0);
    const s = {
      index: i, group: gi, startDelayMs: g.startDelayMs, firstIndex: first, count,
      rate: o.rate / kg, maxPending: Math.max(1, Math.ceil(o.maxPending / kg)),
      sources: o.sourceIps.length >= k ? o.sourceIps.filter((_, x) => x % k === i) : o.sourceIps,
      targets: o.targets, profile: g.profile, intervalMs: o.intervalMs, command: o.command, speech: o.speech, handshake: o.handshake, readerCommand: o.readerCommand,
      attack: o.attack, handshakeTimeoutMs: o.handshakeTimeoutMs, closeTimeoutMs: o.closeTimeoutMs,
      reconnect: isAttack(g.profile) ? undefined : o.reconnect,
    };
    first += count;
    return s;
  }));
}

export interface SwarmIo {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WriteStream;
  /** `--web`: the live page, told each second what the progress line shows, and the summary at the end. */
  readonly live?: SwarmLiveSink;
}

/** What the coordinator tells a live page (web/swarm.ts). */
export interface SwarmLiveSink {
  readonly url: string;
  /** Every second: the progress line's figures, failures and losses so far by cause, the workers' RSS. */
  sample(l: Live, failed: Record<SwarmCause, number>, lost: Record<SwarmCause, number>, rssBytes: number): void;
  /** The summary table printed, and the file it was written to. */
  summary(table: string, file: string | undefined): void;
}

/** Runs the whole swarm and resolves with its exit code ({@link EXIT}); never throws after the workers started. */
export async function runSwarm(o: SwarmOptions, io: SwarmIo = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  // --server-metrics: read before anything starts, so a wrong URL is one line, before any work
  let countsBefore: CountsSnapshot | undefined;
  if (o.serverMetricsUrl !== undefined) {
    try { countsBefore = await readCounts(o.serverMetricsUrl); } catch (err) { throw new UsageError(`--server-metrics: ${o.serverMetricsUrl}: ${(err as Error).message}`); }
  }
  const warnings: string[] = [];
  const view = new LiveView(io.stderr, o.connections);
  const warn = (w: string): void => {
    if (warnings.includes(w)) return;
    warnings.push(w);
    view.log(`wslab swarm: ${w}`);
  };
  const perWorker = Math.ceil(o.connections / o.workers);
  if (perWorker > o.socketsPerWorker) {
    warn(`${perWorker} connections per worker exceed the ~${o.socketsPerWorker} sockets one process may hold under its open-files limit of ${o.openFilesLimit}: expect EMFILE (add --workers, or raise ulimit -n)`);
  }
  const ports = swarmPorts();
  if (o.sourceIps.length > 0 && o.connections / o.sourceIps.length > ports.perSource) {
    warn(`${Math.ceil(o.connections / o.sourceIps.length)} connections per source address exceed the ${ports.perSource} ports the swarm binds on each (ports ${ports.range.join('–')}; the top ${ports.kept} of the ephemeral range are left to the rest of the box): expect EADDRNOTAVAIL (add --source-ips)`);
  }

  const seenFailure = new Set<SwarmCause>();
  const fix = fixes(o, ports);
  let sampledPeak = 0;
  let crashed = false;
  let endReason: string | undefined;
  let endRun!: (why: string) => void;
  const ended = new Promise<string>((resolve) => { endRun = (why) => { if (endReason === undefined) { endReason = why; resolve(why); } }; });
  let rampedAt = 0;
  let holdTimer: NodeJS.Timeout | undefined;
  let workerMetrics: IpcGather<WorkerProcess> | undefined;

  const latest = (w: WorkerProcess): WorkerStats | undefined => w.final?.s ?? w.stats;
  const sum = (f: (s: WorkerStats) => number): number => workers.reduce((a, w) => a + (latest(w) ? f(latest(w)!) : 0), 0);

  const onMessage = (w: WorkerProcess, m: FromWorker): void => {
    switch (m.t) {
      case 'stats': {
        w.stats = m.s;
        sampledPeak = Math.max(sampledPeak, sum((s) => s.open));
        // with --reconnect, dropped connections are still coming back (s.reconnect.down): the hold goes on
        if (rampedAt > 0 && endReason === undefined && workers.every((x) => x.stats && x.stats.rampEndedAt > 0) &&
          sum((s) => s.open + s.dribbling + (s.reconnect?.down ?? 0)) === 0) {
          endRun('nothing left open');
        }
        break;
      }
      case 'ramped':
        w.ramped = true;
        if (workers.every((x) => x.ramped || x.exited) && rampedAt === 0) {
          rampedAt = epochMs();
          holdTimer = setTimeout(() => endRun('held'), o.holdMs);
        }
        break;
      case 'failure':
        if (seenFailure.has(m.cause)) break;
        seenFailure.add(m.cause);
        warn(`first ${m.cause}: ${m.detail}${fix[m.cause] ? ` — ${fix[m.cause]}` : ''}`);
        break;
      case 'metrics':
        workerMetrics?.answered(w, m.id, m.data);
        break;
    }
  };
  const onExit = (w: WorkerProcess, code: number | null, signal: string | null): void => {
    workerMetrics?.gone(w);
    if (w.final) return;
    crashed = true;
    warn(`worker ${w.init.index} exited (code ${code}, signal ${signal}) before reporting; its last figures (≤ 0.5 s old) are used`);
    endRun('a worker died');
  };

  const workers = slices(o).map((s) => new WorkerProcess({ t: 'init', ...s, metrics: o.metricsPort !== undefined }, onMessage, onExit, o.workers));
  try {
    await Promise.all(workers.map((w) => w.ready));
  } catch (err) {
    for (const w of workers) w.child.kill('SIGKILL');
    view.stop();
    io.stderr.write(`wslab swarm: ${(err as Error).message}\n`);
    return EXIT.runFailed;
  }
  // the ws client only when asked for, and loaded before the baseline: the client's RSS per connection excludes it
  const prober = o.probe && new (await import('./probe.js')).Prober(o.targets, o.probe);
  const coordinatorBaseline = process.memoryUsage.rss();
  const coordinatorCpu = process.cpuUsage();

  let endpoint: MetricsEndpoint | undefined;
  if (o.metricsPort !== undefined) {
    try {
      // prom-client only when asked for
      const [{ serveSwarmMetrics }, { IpcGather }] = await Promise.all([import('./metrics.js'), import('../metrics/gather.js')]);
      const gather = new IpcGather<WorkerProcess>((w, id) => w.send({ t: 'metrics', id }));
      workerMetrics = gather;
      endpoint = await serveSwarmMetrics(o.metricsHost, o.metricsPort, () => gather.gather(workers.filter((w) => !w.exited && !w.final)));
    } catch (err) {
      for (const w of workers) w.child.kill('SIGKILL');
      view.stop();
      io.stderr.write(`wslab swarm: ${(err as Error).message}\n`);
      return EXIT.runFailed;
    }
  }
  io.stdout.write(`${JSON.stringify({ event: 'started', pid: process.pid, workers: o.workers, target: o.connections, metrics: endpoint?.url ?? null, web: io.live?.url ?? null })}\n`);

  let interrupted = false;
  const onSignal = (signal: string): void => {
    if (interrupted) {
      io.stderr.write(`wslab swarm: second ${signal}, exiting without a summary\n`);
      for (const w of workers) w.child.kill('SIGKILL');
      process.exit(EXIT.interrupted);
    }
    interrupted = true;
    view.log(`wslab swarm: ${signal}: dropping every connection and writing what was measured`);
    endRun(signal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const server = o.serverPid === undefined ? undefined : serverReader(o);
  const serverPid = o.serverPid;
  const noise = new NoiseWatch(() => (serverPid === undefined ? [process.pid] : [process.pid, serverPid]));
  const startedAt = epochMs();
  for (const w of workers) w.send({ t: 'start' });
  prober?.start();

  // Live view: 4 times a second; the open rate over the last second.
  const history: [number, number][] = [];
  const live = (): Live => {
    const now = epochMs();
    const opened = sum((s) => s.opened);
    history.push([now, opened]);
    while (history.length > 2 && now - history[0][0] > 1000) history.shift();
    const [t0, o0] = history[0];
    const saturated = workers.map((w) => [w.init.index, latest(w)?.load] as const)
      .filter(([, l]) => l && (l.delayMs > 100 || l.cpu >= 0.9))
      .map(([i, l]) => `worker ${i} loop p99 ${Math.round(l!.delayMs)} ms, CPU ${Math.round(l!.cpu * 100)}%`).join('; ');
    const p99 = Math.max(0, ...workers.map((w) => latest(w)?.rttP99Us ?? 0));
    return {
      elapsedSec: (now - startedAt) / 1000, phase: endReason !== undefined ? 'closing' : rampedAt > 0 ? 'hold' : 'ramp',
      open: sum((s) => s.open), connecting: sum((s) => s.connecting), target: o.connections,
      ratePerSec: now > t0 ? (opened - o0) * 1000 / (now - t0) : 0,
      errors: sum((s) => s.failed.reduce((a, b) => a + b, 0) + s.lost.reduce((a, b) => a + b, 0)),
      rttP99Ms: sum((s) => s.rttCount) > 0 ? p99 / 1000 : null, saturated: saturated || null,
    };
  };
  const viewTimer = setInterval(() => view.update(live()), 250);
  const byCause = (pick: (s: WorkerStats) => number[]): Record<SwarmCause, number> => causes(SWARM_CAUSES.map((_, i) => sum((s) => pick(s)[i] ?? 0)));
  const liveTimer = io.live && setInterval(() => io.live!.sample(live(), byCause((s) => s.failed), byCause((s) => s.lost), sum((s) => s.rssBytes)), 1000);

  await ended;
  clearTimeout(holdTimer);
  // from the start order to the close phase: the close itself is the swarm's doing, not the service's
  const probe = prober?.stop() ?? null;
  const serverAtHold = server?.();
  /*
   * Read, not awaited before the close order: a server busy in a long call (blocking-call's `block 2000`) answers the
   * scrape only when the call ends, and meanwhile the workers, not yet told to stop, would keep sending — the very
   * load the hold was sized to bound. The swarm's own closes that the reading may include are closes the client
   * started, which attribution does not count as the server's.
   */
  const countsAtHoldRead = countsBefore && readCounts(o.serverMetricsUrl!).catch((err: Error) => { warn(`--server-metrics: the reading at the end of the hold failed (${err.message}): no attribution`); return undefined; });
  const box: SwarmBoxNoise = { ...noise.end(), excludes: serverPid === undefined ? 'swarm' : 'swarm and server' };
  // without --server-pid a local server's own CPU is "outside": only a run that left it out can blame the box
  if (!box.quiet && serverPid !== undefined) warn(`${describeNoise(box)} over the run (outside this swarm and the server): rates and latencies shared the CPU with another load`);
  const graceful = !interrupted;
  const coordinatorRssAtEnd = process.memoryUsage.rss();
  for (const w of workers) w.send({ t: 'close', graceful });
  // graceful: the close timeout and 10 s, then as long as the workers' open + closing counts keep falling
  const closeBudget = graceful ? o.closeTimeoutMs + 10_000 : 3000;
  const [{ stuck, ms: closeMs }] = await Promise.all([awaitClosing(workers.map((w) => ({
    w, done: () => w.final !== undefined || w.exited, left: () => (w.stats ? w.stats.open + w.stats.closing + w.stats.connecting : 0),
  })), { budgetMs: closeBudget, graceMs: graceful ? CLOSE_PROGRESS_GRACE_MS : 0 }), prober?.closed(graceful ? undefined : 0)]);
  for (const { w } of stuck) {
    warn(`worker ${w.init.index} did not finish closing: nothing moved for ${graceful ? CLOSE_PROGRESS_GRACE_MS / 1000 : closeBudget / 1000} s ` +
      `(${Math.round(closeMs / 100) / 10} s after the close order, ${w.stats ? w.stats.open + w.stats.closing : '?'} left): killed; its last figures are used`);
    crashed = true;
    w.child.kill('SIGKILL');
  }
  const endedAt = epochMs();
  clearInterval(viewTimer);
  clearInterval(liveTimer);
  view.update(live());
  view.stop();
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  await endpoint?.close();

  const countsAtHold = await countsAtHoldRead;
  const cpu = process.cpuUsage(coordinatorCpu);
  const summary = summarize(o, workers.map((w) => ({
    stats: latest(w), final: w.final, held: w.held, baseline: w.baselineRssBytes, group: w.init.group, died: w.exited && !w.final && !w.held,
  })), {
    startedAt, endedAt, sampledPeak, interrupted, warnings, server: serverAtHold ?? null, box, probe,
    coordinator: { baselineRssBytes: coordinatorBaseline, rssAtEndBytes: coordinatorRssAtEnd, cpuSeconds: (cpu.user + cpu.system) / 1e6 },
  });
  if (countsBefore && countsAtHold) summary.attribution = attribute(o.serverMetricsUrl!, countsBefore, countsAtHold, endedUnasked(summary));
  const table = summaryTable(summary);
  io.stderr.write(table);
  let unwritten = false;
  if (o.summaryFile !== undefined) {
    try {
      writeSummary(o.summaryFile, summary);
    } catch (err) {
      io.stderr.write(`wslab swarm: cannot write the summary to ${o.summaryFile}: ${(err as Error).message}\n`);
      unwritten = true;
    }
  }
  const verdicts = evaluate(o.thresholds, summary);
  for (const v of verdicts) io.stderr.write(`wslab swarm: threshold ${v.ok ? 'passed' : 'FAILED'}: ${describeVerdict(v)}\n`);
  io.live?.summary(table, unwritten ? undefined : o.summaryFile);

  if (interrupted) return EXIT.interrupted;
  /*
   * With attackers in the run, healthy clients refused or cut are the experiment's result, read from `profiles`:
   * the run fails only when nothing reached the server at all (no open, no attacker connected).
   */
  const attacked = o.groups.some((g) => isAttack(g.profile));
  const reached = summary.opened + Object.values(summary.profiles).reduce((a, p) => a + (p.role === 'attack' ? p.attempted - p.outcomes.failed : 0), 0);
  const failures = [
    crashed ? 'a worker failed' : '',
    unwritten ? 'the summary could not be written' : '',
    (attacked ? reached === 0 : summary.opened === 0) ? 'no connection opened' : '',
    // --reconnect: drops are the experiment; the run fails only when some did not come back
    summary.reconnect ? (summary.reconnect.stillDown > 0 ? `${summary.reconnect.stillDown} dropped connection${summary.reconnect.stillDown === 1 ? ' was' : 's were'} not back by the end of the hold` : '')
      : !attacked && summary.lost.total > 0 ? `${summary.lost.total} held connection${summary.lost.total === 1 ? ' was' : 's were'} lost${summary.serverDied ? ' (a server died)' : ''}` : '',
    summary.misunderstood ? 'the replies made no sense (see the warning)' : '',
  ].filter(Boolean);
  if (failures.length > 0) {
    io.stderr.write(`wslab swarm: run failed: ${failures.join('; ')} (exit ${EXIT.runFailed})\n`);
    return EXIT.runFailed;
  }
  const failed = verdicts.filter((v) => !v.ok);
  if (failed.length > 0) {
    io.stderr.write(`wslab swarm: ${failed.length} threshold${failed.length === 1 ? '' : 's'} failed: ${failed.map(describeVerdict).join('; ')} (exit ${EXIT.thresholds})\n`);
    return EXIT.thresholds;
  }
  return EXIT.ok;
}

/**
 * `--server-pid`: reads the server's tree now (the baseline, before any connection) and returns the reading at the
 * end of the hold, with the ESTABLISHED connections on the targets' ports (a server that counts nothing itself).
 */
function serverReader(o: SwarmOptions): () => ServerFigures {
  const pid = o.serverPid!;
  const endpoints = [...new Map(o.targets.map((t) => [`${t.ip}:${t.port}`, t])).values()];
  const read = (fds: boolean) => { try { return readTree(pid, { cpu: true, fds }); } catch { return undefined; } };
  const base = read(false);
  return () => {
    const now = read(true);
    const connections = established(...endpoints);
    const rssBytes = now?.rssBytes ?? 0;
    const baselineRssBytes = base?.rssBytes ?? 0;
    return {
      pid, rssBytes, baselineRssBytes,
      bytesPerConnection: connections > 0 && now && rssBytes >= baselineRssBytes ? Math.round((rssBytes - baselineRssBytes) / connections) : null,
      cpuSeconds: round3((now?.cpuSeconds ?? 0) - (base?.cpuSeconds ?? 0)), threads: now?.threads ?? 0, fds: now?.fds ?? 0, connections,
    };
  };
}

interface RunFacts {
  server: ServerFigures | null;
  box: SwarmBoxNoise | null;
  probe: ProbeParts | null;
  startedAt: number;
  endedAt: number;
  sampledPeak: number;
  interrupted: boolean;
  warnings: string[];
  coordinator: { baselineRssBytes: number; rssAtEndBytes: number; cpuSeconds: number };
}

const causes = (values: number[]): Record<SwarmCause, number> =>
  Object.fromEntries(SWARM_CAUSES.map((c, i) => [c, values[i] ?? 0])) as Record<SwarmCause, number>;
const add = (a: number[], b: number[]): number[] => a.map((x, i) => x + (b[i] ?? 0));

interface WorkerFigures {
  stats: WorkerStats | undefined;
  final: WorkerFinal | undefined;
  held?: WorkerHeld;
  baseline: number;
  group: number;
  /** Exited before it said what it held (no `held`, no `final`): killed, crashed. */
  died?: boolean;
}

const WORKER_DIED = SWARM_CAUSES.indexOf('worker_died');

/**
 * Trust only what a worker reported: one that died before saying what it held holds nothing at the end, and what
 * its last report (≤ 0.5 s old) had open is lost, as `worker_died` — not per target, since no server lost them.
 */
function settleDead(w: WorkerFigures): WorkerFigures {
  if (!w.died || !w.stats) return w;
  const s = w.stats;
  const lost = [...s.lost];
  lost[WORKER_DIED] += s.open;
  return { ...w, stats: { ...s, open: 0, dribbling: 0, openByTarget: s.openByTarget.map(() => 0), lost } };
}

/** The `profiles` entry of one group, from its workers' figures. */
function groupSummary(o: SwarmOptions, gi: number, ws: WorkerFigures[]): HealthySummary | AttackSummary {
  const g = o.groups[gi];
  const stats = ws.map((w) => w.stats).filter((s): s is WorkerStats => s !== undefined);
  const total = (f: (s: WorkerStats) => number): number => stats.reduce((a, s) => a + f(s), 0);
  const connect = latencyHistogram();
  for (const w of ws) if (w.final) connect.add(hdr.decodeFromCompressedBase64(w.final.connectHdr));
  const attempted = total((s) => s.attempted);
  const opened = total((s) => s.opened);
  const counts = {
    target: g.connections, startAfterSec: g.startDelayMs / 1000, attempted, opened,
    failed: total((s) => s.failed.reduce((a, b) => a + b, 0)),
    heldAtEnd: ws.reduce((a, w) => a + ((w.final ?? w.held)?.heldAtEnd ?? w.stats?.open ?? 0), 0),
    deflated: stats.some((s) => s.deflated !== null) ? total((s) => s.deflated ?? 0) : null,
  };
  if (!isAttack(g.profile)) {
    const rtt = latencyHistogram();
    for (const w of ws) if (w.final) rtt.add(hdr.decodeFromCompressedBase64(w.final.rttHdr));
    const chatty = g.profile === 'chatty';
    let push;
    if (o.speech.subscribe) {
      const gaps = latencyHistogram();
      for (const w of ws) if (w.final?.pushGapHdr) gaps.add(hdr.decodeFromCompressedBase64(w.final.pushGapHdr));
      push = {
        messages: total((s) => s.pushed), seconds: total((s) => s.push?.seconds ?? 0), gaps,
        stalled: total((s) => s.push?.stalled ?? 0), stallAfterMs: o.speech.stallAfterMs,
      };
    }
    return healthyGroup({
      ...counts, lost: total((s) => s.lost.reduce((a, b) => a + b, 0)), requestsDue: total((s) => s.requestsDue),
      repliesOk: g.profile === 'ping' ? total((s) => s.pongsReceived) : chatty ? total((s) => s.received - s.replyErrors - s.pushed) : 0,
      replyErrors: chatty ? total((s) => s.replyErrors) : 0, unmatched: chatty ? total((s) => s.pushed) : 0,
      sending: g.profile !== 'idle',
    }, connect, rtt, roundedRate, push);
  }
  const cut = latencyHistogram();
  for (const w of ws) if (w.final?.cutHdr) cut.add(hdr.decodeFromCompressedBase64(w.final.cutHdr));
  const outcomes = ATTACK_OUTCOMES.map((_, i) => total((s) => s.attack?.outcomes[i] ?? 0));
  const codes = ATTACK_CLOSE_CODES.map((_, i) => total((s) => s.attack?.closeCodes[i] ?? 0));
  return attackGroup({
    ...counts,
    outcomes: {
      held: ws.reduce((a, w) => a + ((w.final ?? w.held)?.attackersHeldAtEnd ?? (w.stats ? w.stats.open + w.stats.dribbling : 0)), 0),
      ...Object.fromEntries(ATTACK_OUTCOMES.map((k, i) => [k, outcomes[i]])) as Record<AttackOutcome, number>,
    },
    closeCodes: Object.fromEntries(ATTACK_CLOSE_CODES.map((c, i) => [c, codes[i]]).filter(([, n]) => (n as number) > 0)),
    timeToCutMs: { ...latencyMs(cut), count: cut.totalCount },
    bytesSent: total((s) => s.attack?.bytesSent ?? 0),
    bytesReceived: total((s) => s.attack?.bytesReceived ?? 0),
    messages: { sent: total((s) => s.sent), received: total((s) => s.received), pingsSent: total((s) => s.pingsSent), pongsReceived: total((s) => s.pongsReceived) },
  }, connect);
}

/** The summary of docs/swarm-summary.md from every worker's last figures. */
export function summarize(o: SwarmOptions, reported: WorkerFigures[], run: RunFacts): Summary {
  const ws = reported.map(settleDead);
  const zeroC = SWARM_CAUSES.map(() => 0);
  const zeroT = o.targets.map(() => 0);
  const stats = ws.map((w) => w.stats).filter((s): s is WorkerStats => s !== undefined);
  const total = (f: (s: WorkerStats) => number): number => stats.reduce((a, s) => a + f(s), 0);
  const failed = stats.reduce((a, s) => add(a, s.failed), zeroC);
  const lost = stats.reduce((a, s) => add(a, s.lost), zeroC);
  const lostByTarget = stats.reduce((a, s) => add(a, s.lostByTarget), zeroT);
  const abruptByTarget = stats.reduce((a, s) => add(a, s.abruptByTarget), zeroT);
  const openAtEnd = ws.reduce((a, w) => add(a, (w.final ?? w.held)?.openByTargetAtEnd ?? w.stats?.openByTarget ?? zeroT), zeroT);
  const heldAtEnd = ws.reduce((a, w) => a + ((w.final ?? w.held)?.heldAtEnd ?? w.stats?.open ?? 0), 0);
  const connect = latencyHistogram();
  const rtt = latencyHistogram();
  for (const w of ws) {
    if (!w.final) continue;
    connect.add(hdr.decodeFromCompressedBase64(w.final.connectHdr));
    rtt.add(hdr.decodeFromCompressedBase64(w.final.rttHdr));
  }
  const nonzero = (xs: number[]): number[] => xs.filter((x) => x > 0);
  const firstAttempt = Math.min(...nonzero(stats.map((s) => s.firstAttemptAt)), Infinity);
  const lastOpened = Math.max(...nonzero(stats.map((s) => s.lastOpenedAt)), 0);
  const opened = total((s) => s.opened);
  const lostFirst = Math.min(...nonzero(stats.map((s) => s.lostFirstAt)), Infinity);
  const lostLast = Math.max(...nonzero(stats.map((s) => s.lostLastAt)), 0);
  const since = (t: number): number | null => (Number.isFinite(t) && t > 0 ? round3((t - run.startedAt) / 1000) : null);
  const byUrl: Record<string, number> = {};
  o.targets.forEach((t, i) => { byUrl[t.url] = (byUrl[t.url] ?? 0) + lostByTarget[i]; });

  const warnings = [...run.warnings];
  reported.forEach((w, i) => {
    if (w.died && w.stats && w.stats.open > 0) warnings.push(`worker ${i} died holding ${w.stats.open} connection${w.stats.open === 1 ? '' : 's'} (its last report): counted as lost (worker_died), not held`);
  });
  // A target that lost every connection it held: died (no close frames) or closed them all (close frames).
  const emptied = (i: number): boolean => lostByTarget[i] > 0 && openAtEnd[i] === 0;
  const deadUrls = [...new Set(o.targets.filter((_, i) => emptied(i) && abruptByTarget[i] * 2 >= lostByTarget[i]).map((t) => t.url))];
  const closedUrls = [...new Set(o.targets.filter((_, i) => emptied(i) && abruptByTarget[i] * 2 < lostByTarget[i]).map((t) => t.url))];
  for (const url of deadUrls) warnings.push(`every connection held to ${url} was lost (${byUrl[url]}), most without a close frame: the server died`);
  for (const url of closedUrls) warnings.push(`the server at ${url} closed every connection held to it (${byUrl[url]}) with close frames`);
  const profiles = Object.fromEntries(o.groups.map((g, gi) => [g.profile, groupSummary(o, gi, ws.filter((w) => w.group === gi))]));
  const chatty = profiles.chatty;
  const misunderstood = chatty?.role === 'healthy' ? nonsense(chatty, o.speech.match, o.speech.send !== undefined) : undefined;
  if (misunderstood) warnings.push(misunderstood);
  if (chatty?.role === 'healthy' && chatty.requestsDue >= 10 && chatty.repliesOk + chatty.replyErrors + chatty.unmatched === 0) {
    // no reply because nothing opened is a refused or cut upgrade, not a server that does not understand the requests
    warnings.push(chatty.opened === 0
      ? `none of the ${chatty.attempted} chatty connections opened, so none of ${chatty.requestsDue} requests due was sent (failed says why)`
      : `none of ${chatty.requestsDue} requests due got any reply: does the server answer ${o.speech.send ? 'this --send message' : "our protocol's --command"}?`);
  }
  const lostTotal = lost.reduce((a, b) => a + b, 0);
  if (lostTotal > 0) {
    const when = since(lostFirst) === null ? '' : `, first at ${since(lostFirst)} s, last at ${since(lostLast)} s`;
    warnings.push(`${lostTotal} connection${lostTotal === 1 ? '' : 's'} lost after opening${when}`);
  }
  const closeTimeouts = total((s) => s.closeTimeouts);
  if (closeTimeouts > 0) warnings.push(`${closeTimeouts} close handshake${closeTimeouts === 1 ? '' : 's'} did not finish within ${o.closeTimeoutMs} ms (socket dropped)`);
  ws.forEach((w, i) => {
    const l = w.stats?.load;
    if (!l) return;
    const how = `event-loop p99 delay up to ${Math.round(l.maxDelayMs)} ms, CPU up to ${Math.round(l.maxCpu * 100)}% of a core`;
    if (l.saturatedRamp > 0) warnings.push(`client is the bottleneck: worker ${i} was saturated for ${l.saturatedRamp} s of the ramp (${how}): the open rate measures the client; add --workers or lower --rate`);
    if (l.saturatedHold > 0) warnings.push(`client is the bottleneck: worker ${i} was saturated for ${l.saturatedHold} s of the hold (${how}): round trips include the client's own delay; add --workers or lower the load`);
  });

  const rssWorkers = ws.reduce((a, w) => a + ((w.final ?? w.held)?.rssAtEndBytes ?? w.stats?.rssBytes ?? 0), 0);
  const rssBytes = rssWorkers + run.coordinator.rssAtEndBytes;
  const baselineRssBytes = ws.reduce((a, w) => a + w.baseline, 0) + run.coordinator.baselineRssBytes;
  return assembleSummary({
    target: o.connections,
    opened,
    failed: { ...causes(failed), total: failed.reduce((a, b) => a + b, 0) },
    lost: { total: lostTotal, byCause: causes(lost), byUrl, firstAtSec: since(lostFirst), lastAtSec: since(lostLast) },
    peakOpen: Math.max(run.sampledPeak, heldAtEnd, ...stats.map((s) => s.peakOpen)),
    heldAtEnd,
    rampSec: (lastOpened - firstAttempt) / 1000,
    connect,
    rtt,
    messages: {
      sent: total((s) => s.sent), received: total((s) => s.received), errors: total((s) => s.replyErrors), pushed: total((s) => s.pushed),
      pingsSent: total((s) => s.pingsSent), pongsReceived: total((s) => s.pongsReceived),
    },
    client: {
      rssBytes, baselineRssBytes,
      cpuSeconds: total((s) => s.cpuSeconds) + run.coordinator.cpuSeconds,
      workers: ws.length,
      maxEventLoopDelayMs: Math.round(Math.max(0, ...stats.map((s) => s.load.maxDelayMs)) * 10) / 10,
      maxCpuPercent: Math.round(Math.max(0, ...stats.map((s) => s.load.maxCpu)) * 100),
    },
    server: run.server,
    box: run.box,
    durationSec: (run.endedAt - run.startedAt) / 1000,
    warnings,
    interrupted: run.interrupted,
    serverDied: deadUrls.length > 0,
    shard: o.shard ? { index: o.shard.index, of: o.shard.of, totalTarget: o.shard.totalTarget } : null,
    clock: {
      startedAtMs: Math.round(run.startedAt),
      firstAttemptAtMs: Number.isFinite(firstAttempt) ? Math.round(firstAttempt) : null,
      lastOpenedAtMs: lastOpened > 0 ? Math.round(lastOpened) : null,
    },
    merged: null,
    profiles,
    misunderstood: misunderstood !== undefined,
    probe: run.probe,
    attribution: null,
    reconnect: reconnectParts(o, ws, stats),
  });
}

/** `--reconnect`: the workers' retries added up; recovered when no worker has a dropped connection still down. */
function reconnectParts(o: SwarmOptions, ws: WorkerFigures[], stats: WorkerStats[]): SummaryParts['reconnect'] {
  if (!o.reconnect) return null;
  const rs = stats.map((s) => s.reconnect).filter((r) => r !== null);
  const failed = rs.reduce((a, r) => add(a, r.failed), SWARM_CAUSES.map(() => 0));
  const connect = latencyHistogram();
  for (const w of ws) if (w.final?.reconnectHdr) connect.add(hdr.decodeFromCompressedBase64(w.final.reconnectHdr));
  const stillDown = rs.reduce((a, r) => a + r.down, 0);
  const dropped = rs.filter((r) => r.firstDownAt > 0);
  const recovered = dropped.length > 0 && stillDown === 0 && dropped.every((r) => r.allUpAt > 0);
  const firstDropAtMs = dropped.length > 0 ? Math.round(Math.min(...dropped.map((r) => r.firstDownAt))) : null;
  const allBackAtMs = recovered ? Math.round(Math.max(...dropped.map((r) => r.allUpAt))) : null;
  return {
    ...o.reconnect,
    attempts: rs.reduce((a, r) => a + r.attempts, 0), reconnected: rs.reduce((a, r) => a + r.reconnected, 0),
    failed: { ...causes(failed), total: failed.reduce((a, b) => a + b, 0) }, stillDown,
    recoveredAfterSec: firstDropAtMs !== null && allBackAtMs !== null ? round3((allBackAtMs - firstDropAtMs) / 1000) : null,
    firstDropAtMs, allBackAtMs, connect,
  };
}

/** What the swarm saw end without asking: held connections lost, and attackers the server (or its proxy) cut. */
const endedUnasked = (s: Summary): number => s.lost.total + Object.values(s.profiles)
  .reduce((a, p) => a + (p.role === 'attack' ? p.outcomes.closed + p.outcomes.ended + p.outcomes.reset + p.outcomes.rejected : 0), 0);
