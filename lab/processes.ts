import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { setPriority } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseExposition, type Sample } from '../metrics/exposition.js';
import { processTree } from '../metrics/proc-status.js';

/** The built CLI, as a user runs it. */
export const WSLAB = fileURLToPath(new URL('../cli/wslab.js', import.meta.url));

export interface ServerProcess {
  readonly child: ChildProcess;
  readonly url: string;
  readonly metricsUrl: string;
  readonly pid: number;
  readonly ready: Record<string, unknown>;
  stderr(): string;
  scrape(): Promise<Sample[]>;
  /** SIGTERM, then the exit code (SIGKILL after 10 s so a test never hangs). */
  stop(): Promise<number | null>;
  /** Sets the nice value of every thread of the process tree (Linux nice is per thread); throws where not allowed. */
  renice(niceness: number): void;
}

/**
 * Child processes of the lab (and the tests): a server started through the real CLI, reporting through its
 * ready line and /metrics, exactly as a user would run it.
 */

/**
 * Spawns `wslab serve --design <design> --port 0 --metrics-port 0 ...flags` and waits `readyMs` for its ready line;
 * `niceness` > 0 starts it through nice(1), so that every thread it ever makes inherits the lower priority.
 */
export async function spawnServer(design: string, flags: string[] = [], readyMs = 15_000, niceness = 0): Promise<ServerProcess> {
  const argv = [process.execPath, WSLAB, 'serve', '--design', design, '--port', '0', '--metrics-port', '0', ...flags];
  const [cmd, ...args] = niceness > 0 ? ['nice', '-n', String(niceness), ...argv] : argv;
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
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
  return {
    child, ready, url: String(ready.url), metricsUrl, pid: Number(ready.pid),
    stderr: () => err,
    scrape: async () => parseExposition(await (await fetch(metricsUrl)).text()),
    renice(niceness) {
      for (const p of processTree(Number(ready.pid))) {
        let tasks: string[] = [];
        try { tasks = readdirSync(`/proc/${p}/task`); } catch { continue; } // exited meanwhile
        for (const t of tasks) setPriority(Number(t), niceness);
      }
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
      const [code] = await exited;
      clearTimeout(kill);
      return code as number | null;
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
  /** Per profile of the run (docs/swarm-summary.md, "Per-profile section"). */
  profiles: Record<string, ProfileSummary>;
}
/** A `--mix` group's section: the healthy keys or the attack keys are set, by `role`. */
export interface ProfileSummary {
  role: 'healthy' | 'attack';
  target: number;
  attempted: number;
  opened: number;
  failed: number;
  heldAtEnd: number;
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
  const child = spawn(process.execPath, [WSLAB, 'swarm', ...args, '--summary', summaryFile, '--metrics-port', '0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
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
