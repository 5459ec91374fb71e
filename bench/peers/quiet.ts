/**
 * The box is shared (other sessions build and test on it): bench/peers waits for it to be quiet before each run and
 * reports how busy it was. Read from /proc/stat.
 */
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { round } from './peer.js';

const CLK_TCK = 100; // USER_HZ, for /proc/stat

/** CPU seconds the whole box has spent busy since boot (/proc/stat: everything but idle and iowait). */
export function boxBusySeconds(): number {
  const f = readFileSync('/proc/stat', 'latin1').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  return (f.reduce((s, v) => s + v, 0) - f[3] - f[4]) / CLK_TCK;
}
/** share of all CPUs busy over `ms`: how much else runs on the box. */
export async function machineBusy(ms: number): Promise<number> {
  const b0 = boxBusySeconds(), t0 = performance.now();
  await sleep(ms);
  return round((boxBusySeconds() - b0) / ((performance.now() - t0) / 1000) / cpus().length, 3);
}
/**
 * Before each run, wait — at most `quietWaitSec` (--quiet-wait) — until the CPUs have been less than `quietBelow`
 * (--quiet-below) busy for 3 s in a row. Returns the busy share of the last second and the seconds waited.
 */
export async function waitQuiet(quietBelow: number, quietWaitSec: number): Promise<{ busy: number; waitedSec: number; quiet: boolean }> {
  const t0 = performance.now();
  let streak = 0, busy = 0;
  while (true) {
    busy = await machineBusy(1000);
    streak = busy < quietBelow ? streak + 1 : 0;
    const waited = (performance.now() - t0) / 1000;
    if (streak >= 3) return { busy, waitedSec: round(waited, 1), quiet: true };
    if (waited >= quietWaitSec) return { busy, waitedSec: round(waited, 1), quiet: false };
  }
}
