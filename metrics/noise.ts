/**
 * The noise guard: how much CPU the box spent outside the run while a cell ran. /proc/stat's busy time of the
 * whole box minus what the run's own process trees used (the lab, its servers, swarms and targets: utime + stime of
 * each live process plus the reaped children's cutime + cstime, so processes that ended during the cell count
 * too), and the steal time the hypervisor took. Both in cores (1.0 = one core busy), averaged over the cell.
 */
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { treesTicks } from './proc-status.js';

/** How busy the box was outside a run over a span, averaged, in cores (1.0 = one core busy). */
export interface BoxNoise {
  /** Busy time of the whole box (/proc/stat) minus the run's process trees. */
  outsideCores: number;
  /** Steal time: the hypervisor ran someone else on this box's vCPUs. */
  stealCores: number;
  /** Both under QUIET_LIMIT: figures not shared with another load. */
  quiet: boolean;
}

/** A span is busy when others used this much of the box on average, or the hypervisor stole this much. */
export const QUIET_LIMIT = Object.freeze({ outsideCores: 0.2, stealCores: 0.1 });

interface BoxTicks { busy: number; steal: number; total: number }

/** The box's `cpu` line of /proc/stat, in clock ticks: busy (not idle, iowait or steal), steal, and all of them. */
function boxTicks(): BoxTicks {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0];
  const [user, nice, system, idle, iowait, irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
  const busy = user + nice + system + irq + softirq; // guest time is part of user already
  return { busy, steal: steal || 0, total: busy + idle + iowait + (steal || 0) };
}

/** Watches one span (a cell): `end()` says how busy the box was outside `roots` since the watch was made. */
export class NoiseWatch {
  private readonly box0 = boxTicks();
  private readonly own0: number;

  constructor(private readonly roots: () => readonly number[]) {
    this.own0 = treesTicks(roots());
  }

  end(): BoxNoise {
    const box = boxTicks();
    const own = treesTicks(this.roots());
    const n = cpus().length || 1;
    const elapsed = (box.total - this.box0.total) / n; // ticks of wall time
    const cores = (ticks: number): number => (elapsed > 0 ? Math.max(0, ticks) / elapsed : 0);
    const outsideCores = +cores(box.busy - this.box0.busy - (own - this.own0)).toFixed(2);
    const stealCores = +cores(box.steal - this.box0.steal).toFixed(2);
    return { outsideCores, stealCores, quiet: outsideCores < QUIET_LIMIT.outsideCores && stealCores < QUIET_LIMIT.stealCores };
  }
}

/** "busy box: 0.97 cores used outside the run, 0.00 stolen": how the report and verdicts say it. */
export const describeNoise = (n: BoxNoise): string =>
  `${n.quiet ? 'quiet' : 'busy'} box: ${n.outsideCores.toFixed(2)} cores used outside the run, ${n.stealCores.toFixed(2)} stolen`;

/**
 * `--wait-quiet`: 2 s windows until one is quiet (nothing but this process's tree counts as the run) or `timeoutMs`
 * has passed; the last window's figures and the time waited.
 */
export async function waitQuiet(timeoutMs: number): Promise<{ noise: BoxNoise; waitedSec: number }> {
  const t0 = performance.now();
  for (;;) {
    const w = new NoiseWatch(() => [process.pid]);
    await sleep(2000);
    const noise = w.end();
    const waitedSec = +((performance.now() - t0) / 1000).toFixed(1);
    if (noise.quiet || performance.now() - t0 >= timeoutMs) return { noise, waitedSec };
  }
}
