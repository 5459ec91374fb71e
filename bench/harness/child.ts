/**
 * Child processes of a bench whose stdout is JSON lines: the swarm (its `started` line), the clients and servers of
 * bench/clients/. One home for spawning them, used by every bench that compares clients.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { readTreeStatus, treeCpuSeconds } from '../../metrics/proc-status.js';

export interface Proc {
  child: ChildProcess;
  lines: Record<string, unknown>[];
  nextLine(): Promise<Record<string, unknown>>;
  /** The last 4 KiB of its stderr (why it failed, when it did). */
  stderrTail(): string;
}

/** The built script of bench/clients/<name>.ts. */
export const clientScript = (name: string): string => fileURLToPath(new URL(`../clients/${name}.js`, import.meta.url));

/** `node …args`, its stdout read as JSON lines; of stderr the tail is kept (a bench reads figures, not logs). */
export function start(args: string[]): Proc {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: Record<string, unknown>[] = [];
  const waiters: ((l: Record<string, unknown>) => void)[] = [];
  let buf = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    buf += d;
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      const l = JSON.parse(buf.slice(0, nl)) as Record<string, unknown>;
      buf = buf.slice(nl + 1);
      const w = waiters.shift();
      if (w) w(l); else lines.push(l);
    }
  });
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { err = (err + d).slice(-4096); });
  return {
    child, lines, stderrTail: () => err,
    nextLine: () => new Promise((resolve, reject) => {
      const l = lines.shift();
      if (l) return resolve(l);
      const t = setTimeout(() => reject(new Error(`no line from ${args.join(' ')} within 20 s`)), 20_000);
      waiters.push((x) => { clearTimeout(t); resolve(x); });
    }),
  };
}

/** What a client holding connections cost, read from outside it (/proc) the same way for every client. */
export interface HoldCost {
  held: number;
  openSec: number;
  rssBaselineBytes: number;
  rssHeldBytes: number;
  cpuSeconds: number;
}

/**
 * From the client's `started` line (nothing connected yet): its tree's RSS and CPU, then `count()` polled every
 * `everyMs` until it reaches `n` or stops moving for 15 s, then 1.5 s for allocation to settle, then RSS, CPU and the
 * count again. `openSec` runs to the last change of the count (a slight over-estimate of the open time by ≤ everyMs).
 */
export async function holdCost(client: Proc, n: number, count: () => Promise<number>, everyMs: number): Promise<HoldCost> {
  const pid = client.child.pid!;
  await client.nextLine();
  const rssBaselineBytes = readTreeStatus(pid).rssBytes;
  const cpu0 = treeCpuSeconds(pid);
  const t0 = performance.now();
  let open = 0, last = 0, lastChange = performance.now();
  while (open < n && performance.now() - lastChange < 15_000) {
    await new Promise((r) => setTimeout(r, everyMs));
    open = await count();
    if (open !== last) { last = open; lastChange = performance.now(); }
  }
  const openSec = (lastChange - t0) / 1000;
  await new Promise((r) => setTimeout(r, 1500));
  const held = await count();
  return { held, openSec, rssBaselineBytes, rssHeldBytes: readTreeStatus(pid).rssBytes, cpuSeconds: treeCpuSeconds(pid) - cpu0 };
}
