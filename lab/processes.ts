import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { setPriority } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type { Attribution } from '../client/attribution.js';
import type { ReconnectSummary } from '../client/recorder.js';
import { parseExposition, type Sample } from '../metrics/exposition.js';
import net from 'node:net';
import { processTree } from '../metrics/proc-status.js';
import { freePort, hostAddress } from '../core/net.js';
import { fill, type Target } from './targets.js';

/** The built CLI, as a user runs it. */
export const WSLAB = fileURLToPath(new URL('../cli/wslab.js', import.meta.url));

/**
 * A server a lab cell runs against: one of our designs (a {@link ServerProcess}) or a target of the targets file,
 * which may have been running already (no child, perhaps no pid) and may have no metrics endpoint.
 */
export interface LabServer extends Omit<ServerProcess, 'child' | 'pid' | 'metricsUrl' | 'restart'> {
  /** The process the lab started; undefined for a target that was already running. */
  readonly child: ChildProcess | undefined;
  /** Its Prometheus endpoint: every design's /metrics; a target's own, or null when it has none. */
  readonly metricsUrl: string | null;
  /** The process whose tree is sampled; undefined for a running target given without a pid. */
  readonly pid: number | undefined;
  /**
   * Stops it (SIGTERM: our designs close every client with 1001), waits `downMs`, and starts the same server again
   * on the same ports, resolving with the new one once it is ready. Undefined where the lab did not start it.
   */
  readonly restart: ((downMs: number) => Promise<LabServer>) | undefined;
}

export interface ServerProcess {
  readonly child: ChildProcess;
  readonly url: string;
  readonly metricsUrl: string;
  readonly pid: number;
  /** The WebSocket port, whose established connections /proc/net/tcp counts. */
  readonly port: number;
  /** Where the connection count comes from: the design's own gauge, or /proc/net/tcp (a target speaks no wslab metrics). */
  readonly countsFrom: 'metrics' | 'proc';
  readonly ready: Record<string, unknown>;
  stderr(): string;
  scrape(): Promise<Sample[]>;
  /** SIGTERM, then the exit code (SIGKILL after 10 s so a test never hangs). */
  stop(): Promise<number | null>;
  /**
   * Sets the nice value of every thread of the process tree (Linux nice is per thread; threads created later inherit
   * their creator's); throws where not allowed. `sparingMain`: each process's main thread keeps its own (the thread
   * that answers /metrics in the threads design).
   */
  renice(niceness: number, sparingMain?: boolean): void;
  /** {@link LabServer.restart}: the same design and flags on the same ports. */
  restart(downMs: number): Promise<ServerProcess>;
}

/**
 * Child processes of the lab (and the tests): a server started through the real CLI, reporting through its
 * ready line and /metrics, exactly as a user would run it.
 */

/*
 * Every child started here and not yet seen to exit, with how to stop it: what an interrupted lab stops
 * (lab/run.ts), whatever cell it was in. A wslab child also gets an IPC channel and WSLAB_DIE_WITH_PARENT, so that
 * it exits when this process dies however it died (cli/wslab.ts: the channel's 'disconnect'); a target is not a
 * wslab process, so it is stopped through its process group here.
 */
const children = new Map<ChildProcess, (signal: NodeJS.Signals) => void>();
function track(child: ChildProcess, kill: (signal: NodeJS.Signals) => void): void {
  children.set(child, kill);
  child.once('exit', () => children.delete(child));
}
/** The spawn options of a wslab child: stdout/stderr piped, and the channel that ties its life to ours (env read at the spawn). */
const wslabChild = () => ({ stdio: ['ignore', 'pipe', 'pipe', 'ipc'] as ('ignore' | 'pipe' | 'ipc')[], env: { ...process.env, WSLAB_DIE_WITH_PARENT: '1' }, serialization: 'json' as const });

/** SIGTERM to every child still running (a target's whole group), SIGKILL to those left after `graceMs`. */
export async function stopChildren(graceMs = 3000): Promise<void> {
  const running = [...children.keys()];
  const exited = running.map((c) => (c.exitCode !== null || c.signalCode !== null ? Promise.resolve() : once(c, 'exit').then(() => undefined)));
  for (const c of running) children.get(c)?.('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([Promise.all(exited), new Promise((r) => { timer = setTimeout(r, graceMs); })]);
  clearTimeout(timer);
  for (const c of running) children.get(c)?.('SIGKILL');
}

/**
 * Spawns `wslab serve --design <design> --port 0 --metrics-port 0 ...flags` and waits `readyMs` for its ready line;
 * `niceness` > 0 starts it through nice(1), so that every thread it ever makes inherits the lower priority. `ports`
 * instead of 0: how restart() starts it again where its clients and the sampler expect it.
 */
export async function spawnServer(design: string, flags: string[] = [], readyMs = 15_000, niceness = 0,
  ports: { readonly port: number; readonly metricsPort: number } = { port: 0, metricsPort: 0 }): Promise<ServerProcess> {
  const argv = [process.execPath, WSLAB, 'serve', '--design', design, '--port', String(ports.port), '--metrics-port', String(ports.metricsPort), ...flags];
  const [cmd, ...args] = niceness > 0 ? ['nice', '-n', String(niceness), ...argv] : argv;
  const child = spawn(cmd, args, wslabChild());
  track(child, (signal) => child.kill(signal));
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { err += d; });
  let out = '';
  const ready = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server ${design} not ready in ${readyMs / 1000} s: ${err}`)), readyMs);
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const nl = out.indexOf('\n');
      if (nl >= 0) { clearTimeout(timer); resolve(JSON.parse(out.slice(0, nl))); }
    });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`server ${design} exited ${code}: ${err}`)); });
  });
  const metricsUrl = String(ready.metrics);
  const port = Number(new URL(String(ready.url)).port);
  const stop = (): Promise<number | null> => stopChild(child, () => child.kill('SIGTERM'), () => child.kill('SIGKILL'));
  return {
    child, ready, url: String(ready.url), metricsUrl, pid: Number(ready.pid), port, countsFrom: 'metrics',
    stderr: () => err,
    scrape: async () => parseExposition(await (await fetch(metricsUrl)).text()),
    renice: (niceness, sparingMain) => renice(Number(ready.pid), niceness, sparingMain),
    stop,
    restart: async (downMs) => {
      await stop();
      await sleep(downMs);
      return spawnServer(design, flags, readyMs, 0, { port, metricsPort: Number(new URL(metricsUrl).port) });
    },
  };
}

function renice(pid: number, niceness: number, sparingMain = false): void {
  for (const p of processTree(pid)) {
    let tasks: string[] = [];
    try { tasks = readdirSync(`/proc/${p}/task`); } catch { continue; } // exited meanwhile
    for (const t of tasks) {
      if (sparingMain && Number(t) === p) continue;
      try {
        setPriority(Number(t), niceness);
      } catch (err) {
        // a thread that ended meanwhile (a thread per task's): os.setPriority's SystemError carries the errno in `info`
        const e = err as NodeJS.ErrnoException & { info?: { code?: string } };
        if (e.code !== 'ESRCH' && e.info?.code !== 'ESRCH') throw err;
      }
    }
  }
}

/** `term`, then the exit code (`kill` after 10 s so a test never hangs). */
async function stopChild(child: ChildProcess, term: () => void, kill: () => void): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  const exited = once(child, 'exit');
  term();
  const timer = setTimeout(kill, 10_000);
  const [code] = await exited;
  clearTimeout(timer);
  return code as number | null;
}

/**
 * A target of the targets file (lab/targets.ts) as a ServerProcess: started with free ports put into its argv and
 * URL and waited for (its port accepts, or its ready line), or, already running, just reached. Its whole process
 * group is stopped with it; a running target is never stopped. It serves no wslab metrics: scrape() reads its own
 * endpoint when it declares one (for its own series), and its connections are counted from /proc/net/tcp.
 */
export async function startTarget(t: Target, niceness = 0, again?: { readonly port: number; readonly metricsPort: number }): Promise<LabServer> {
  const ports = again ?? { port: t.start ? await freePort('127.0.0.1') : 0, metricsPort: t.start ? await freePort('127.0.0.1') : 0 };
  const url = fill(t.url, ports);
  const metricsUrl = t.metrics ? fill(t.metrics, ports) : null;
  const port = Number(new URL(url).port) || 80;
  const scrape = async (): Promise<Sample[]> => (metricsUrl ? parseExposition(await (await fetch(metricsUrl)).text()) : []);
  const base = { url, metricsUrl, port, countsFrom: 'proc' as const, scrape, ready: { version: `target: ${t.start ? t.start.join(' ') : t.url}` } };
  if (!t.start) {
    return { ...base, child: undefined, pid: t.pid, stderr: () => '', renice: () => undefined, stop: async () => null, restart: undefined };
  }
  const argv = t.start.map((a) => fill(a, ports));
  const [cmd, ...args] = niceness > 0 ? ['nice', '-n', String(niceness), ...argv] : argv;
  // its own process group, so that stop() reaches whatever it forks (a shell, workers)
  const child = spawn(cmd, args, { cwd: t.cwd, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  track(child, (signal) => { try { process.kill(-child.pid!, signal); } catch { /* gone */ } });
  let err = '';
  let out = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { err = (err + d).slice(-20_000); });
  child.stdout!.setEncoding('utf8').on('data', (d: string) => { out = (out + d).slice(-20_000); });
  const group = (signal: NodeJS.Signals) => () => { try { process.kill(-child.pid!, signal); } catch { /* gone */ } };
  const what = `target ${t.name} (${argv.join(' ')})`;
  try {
    await new Promise<void>((resolve, reject) => {
      const until = performance.now() + t.readyTimeoutMs;
      let timer: NodeJS.Timeout | undefined;
      const fail = (why: string) => { clearTimeout(timer); reject(new Error(`${what} ${why}: ${(err || out).trim().split('\n').at(-1) ?? ''}`.trim())); };
      child.once('error', (e) => fail(`could not start (${e.message})`));
      child.once('exit', (code, signal) => fail(`exited (${signal ?? `exit ${code}`}) before it was ready`));
      const poll = (): void => {
        if ('line' in t.ready ? t.ready.line.test(out) : false) return resolve();
        if (performance.now() > until) return fail(`not ready in ${t.readyTimeoutMs / 1000} s (${'line' in t.ready ? `no stdout line matching /${t.ready.line.source}/` : `port ${port} did not accept`})`);
        if ('port' in t.ready) {
          const s = net.connect(port, hostAddress(new URL(url)));
          s.once('connect', () => { s.destroy(); resolve(); });
          s.once('error', () => { s.destroy(); timer = setTimeout(poll, 100); });
        } else timer = setTimeout(poll, 100);
      };
      poll();
    });
  } catch (e) {
    group('SIGKILL')();
    throw e;
  }
  child.removeAllListeners('exit');
  const stop = (): Promise<number | null> => stopChild(child, group('SIGTERM'), group('SIGKILL'));
  return {
    ...base, child, pid: child.pid!, stderr: () => err,
    renice: (n, sparingMain) => renice(child.pid!, n, sparingMain),
    stop,
    restart: async (downMs) => {
      await stop();
      await sleep(downMs);
      return startTarget(t, 0, ports);
    },
  };
}

/** Polls `check` until it returns true or `ms` pass (a check that throws counts as not yet). */
export async function eventually(check: () => Promise<boolean> | boolean, ms = 5000): Promise<boolean> {
  const until = Date.now() + ms;
  for (;;) {
    if (await Promise.resolve().then(check).catch(() => false)) return true;
    if (Date.now() > until) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface SwarmRun {
  readonly child: ChildProcess;
  /** The swarm's own /metrics URL (it is started with --metrics-port 0). */
  readonly metricsUrl: string | null;
  /** Resolves with the exit code and the parsed --summary file once the swarm has exited. */
  readonly done: Promise<{ code: number | null; summary: SwarmSummary | null; stderr: string }>;
}

/** The parts of docs/swarm-summary.md the lab reads. */
export interface SwarmSummary {
  target: number;
  opened: number;
  failed: Record<string, number> & { total: number };
  peakOpen: number;
  heldAtEnd: number;
  connectRatePerSec: number | null;
  connectLatencyMs: Percentiles;
  rttMs: Percentiles & { count: number };
  messages: { sent: number; received: number; errors: number };
  client: { rssBytes: number; bytesPerConnection: number | null; cpuSeconds: number; workers: number };
  durationSec: number;
  warnings: string[];
  /** `--server-metrics`, which the lab gives every swarm against one of our designs: who ended what the swarm did not close. */
  attribution: Attribution | null;
  /** Per profile of the run (docs/swarm-summary.md, "Per-profile section"). */
  profiles: Record<string, ProfileSummary>;
  lost: { total: number };
  /** `--reconnect`: how the dropped connections came back (lab/scenarios/reconnect-storm.ts). */
  reconnect: ReconnectSummary | null;
}
/** A `--mix` group's section: the healthy keys or the attack keys are set, by `role`. */
export interface ProfileSummary {
  role: 'healthy' | 'attack';
  target: number;
  attempted: number;
  opened: number;
  failed: number;
  heldAtEnd: number;
  /** Upgrades that accepted permessage-deflate; null when it was not offered. */
  deflated: number | null;
  connectSuccessRate?: number | null;
  requestsDue?: number;
  repliesOk?: number;
  servedRate?: number | null;
  rttMs?: Percentiles & { count: number };
  outcomes?: Record<string, number>;
  timeToCutMs?: Percentiles & { count: number };
}
export interface Percentiles { p50: number | null; p90: number | null; p99: number | null; p999: number | null; max: number | null }

/** Spawns `wslab swarm <args> --summary <tmp> --metrics-port 0` and waits for its start line. */
export async function startSwarm(args: string[], summaryFile: string): Promise<SwarmRun> {
  const child = spawn(process.execPath, [WSLAB, 'swarm', ...args, '--summary', summaryFile, '--metrics-port', '0'], wslabChild());
  track(child, (signal) => child.kill(signal));
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { err += d; });
  const exited = once(child, 'exit');
  const done = exited.then(async ([code]) => {
    let summary: SwarmSummary | null = null;
    try { summary = JSON.parse(await readFile(summaryFile, 'utf8')) as SwarmSummary; } catch { /* no summary: reported by the caller */ }
    return { code: code as number | null, summary, stderr: err };
  });
  let out = '';
  const started = await Promise.race([
    new Promise<Record<string, unknown>>((resolve) => {
      child.stdout!.setEncoding('utf8').on('data', (d: string) => {
        out += d;
        const nl = out.indexOf('\n');
        if (nl >= 0) resolve(JSON.parse(out.slice(0, nl)));
      });
    }),
    exited.then(() => ({}) as Record<string, unknown>),
  ]);
  return { child, metricsUrl: typeof started.metrics === 'string' ? started.metrics : null, done };
}
