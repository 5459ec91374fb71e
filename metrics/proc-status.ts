import { readdirSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';

export interface ProcStatus {
  rssBytes: number;
  /** the anonymous part of the RSS (heaps, stacks): RSS also counts file-backed pages, which every process of a
   * multi-process tree counts again for the same executable and libraries */
  rssAnonBytes: number;
  threads: number;
  /** the process's page tables (VmPTE): kernel memory that grows with its mappings, thread stacks included */
  pageTablesBytes: number;
  voluntarySwitches: number;
  involuntarySwitches: number;
}

const field = (text: string, key: string): number => {
  const at = text.indexOf(`\n${key}:`);
  return at < 0 ? 0 : Number.parseInt(text.slice(at + key.length + 2, text.indexOf('\n', at + 1)).trim(), 10) || 0;
};

/**
 * Reads /proc/<pid>/status (Linux). Throws ENOENT when the process is gone. Its context switches are its main
 * thread's only (the kernel prints the leader task's counts there): see {@link threadSwitches} for all its threads.
 */
export function readProcStatus(pid: number | 'self' = 'self'): ProcStatus {
  const text = readFileSync(`/proc/${pid}/status`, 'latin1');
  return {
    rssBytes: field(text, 'VmRSS') * 1024,
    rssAnonBytes: field(text, 'RssAnon') * 1024,
    threads: field(text, 'Threads'),
    pageTablesBytes: field(text, 'VmPTE') * 1024,
    voluntarySwitches: field(text, 'voluntary_ctxt_switches'),
    involuntarySwitches: field(text, 'nonvoluntary_ctxt_switches'),
  };
}

/** The soft open-files limit of this process, from /proc/self/limits (what caps the sockets one process holds). */
export function openFilesLimit(): number {
  const line = readFileSync('/proc/self/limits', 'latin1').split('\n').find((l) => l.startsWith('Max open files'));
  return line ? Number.parseInt(line.slice(26), 10) || 0 : 0;
}

/** The most threads of one process whose switches a tree reading sums one by one (a /proc read each). */
export const SWITCH_THREADS = 2048;

/**
 * Context switches of every live thread of `pid`, summed from /proc/<pid>/task/<tid>/status. Threads that already
 * ended are not in it (only the process itself sees those, through getrusage); a thread that ends while being read
 * is skipped.
 */
export function threadSwitches(pid: number): { voluntary: number; involuntary: number } {
  const sum = { voluntary: 0, involuntary: 0 };
  let tids: string[] = [];
  try { tids = readdirSync(`/proc/${pid}/task`); } catch { return sum; }
  for (const tid of tids) {
    let text: string;
    try { text = readFileSync(`/proc/${pid}/task/${tid}/status`, 'latin1'); } catch { continue; }
    sum.voluntary += field(text, 'voluntary_ctxt_switches');
    sum.involuntary += field(text, 'nonvoluntary_ctxt_switches');
  }
  return sum;
}

/** `pid` and all its descendants (read from each task's /proc children list), for whole-tree RSS and threads. */
export function processTree(pid: number): number[] {
  const out: number[] = [];
  const visit = (p: number): void => {
    out.push(p);
    let tasks: string[] = [];
    try { tasks = readdirSync(`/proc/${p}/task`); } catch { return; }
    for (const t of tasks) {
      let kids = '';
      try { kids = readFileSync(`/proc/${p}/task/${t}/children`, 'latin1'); } catch { continue; }
      for (const k of kids.trim().split(/\s+/)) if (k) visit(Number(k));
    }
  };
  visit(pid);
  return out;
}

/** /proc status summed over a process tree; processes that exit while being read are skipped. */
export function readTreeStatus(pid: number): ProcStatus & { processes: number } {
  return readTree(pid);
}

const CLOCK_TICKS = 100; // USER_HZ on Linux

/**
 * utime + stime of one process, in clock ticks (/proc/<pid>/stat fields 14 and 15), plus its reaped children's
 * cutime + cstime (16, 17) when `reaped`; throws when it is gone.
 */
function cpuTicks(pid: number, reaped = false): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]) + (reaped ? Number(f[13]) + Number(f[14]) : 0);
}

/**
 * Clock ticks used by the process trees under `roots` (each process once) and by the children they reaped, so a
 * process that ended while watched still counts: two readings bracket what the trees used in between.
 */
export function treesTicks(roots: readonly number[]): number {
  const seen = new Set<number>();
  let ticks = 0;
  for (const root of roots) {
    if (seen.has(root)) continue;
    for (const p of processTree(root)) {
      if (seen.has(p)) continue;
      seen.add(p);
      try { ticks += cpuTicks(p, true); } catch { /* exited between listing and reading */ }
    }
  }
  return ticks;
}

/** utime + stime of a process tree, in seconds. */
export function treeCpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return 0;
  let ticks = 0;
  for (const p of processTree(pid)) {
    try { ticks += cpuTicks(p); } catch { /* exited between listing and reading */ }
  }
  return ticks / CLOCK_TICKS;
}

/**
 * A process tree read in one walk, for whoever measures a server from outside (the lab's sampler, `wslab watch`,
 * `swarm --server-pid`): its summed /proc status and, when asked, its CPU seconds and its open file descriptors
 * (sockets, files, pipes; listing a big tree's descriptors is the costly part). Processes that exit while being read
 * are skipped; what was not asked for reads 0.
 */
export function readTree(pid: number, { cpu = false, fds = false } = {}): ProcStatus & { processes: number; cpuSeconds: number; fds: number; switchesPartial: boolean } {
  const sum = { rssBytes: 0, rssAnonBytes: 0, threads: 0, pageTablesBytes: 0, voluntarySwitches: 0, involuntarySwitches: 0, processes: 0, cpuSeconds: 0, fds: 0, switchesPartial: false };
  let ticks = 0;
  for (const p of processTree(pid)) {
    let s: ProcStatus;
    try { s = readProcStatus(p); } catch { continue; }
    sum.rssBytes += s.rssBytes;
    sum.rssAnonBytes += s.rssAnonBytes;
    sum.threads += s.threads;
    sum.pageTablesBytes += s.pageTablesBytes;
    // every thread's switches (the status counts the main thread's); past SWITCH_THREADS threads the main thread's only
    const sw = s.threads > 1 && s.threads <= SWITCH_THREADS ? threadSwitches(p) : { voluntary: s.voluntarySwitches, involuntary: s.involuntarySwitches };
    if (s.threads > SWITCH_THREADS) sum.switchesPartial = true;
    sum.voluntarySwitches += sw.voluntary;
    sum.involuntarySwitches += sw.involuntary;
    sum.processes++;
    if (cpu) try { ticks += cpuTicks(p); } catch { /* exited meanwhile */ }
    if (fds) try { sum.fds += readdirSync(`/proc/${p}/fd`).length; } catch { /* exited meanwhile, or not ours to read */ }
  }
  sum.cpuSeconds = ticks / CLOCK_TICKS;
  return sum;
}

/** An IPv4 or IPv6 address as /proc/net/tcp{,6} writes a local address: its 32-bit words, each little-endian. */
function procHex(ip: string): { v4?: string; v6: string } | undefined {
  const word = (b: number[]) => b.reverse().map((x) => x.toString(16).padStart(2, '0')).join('').toUpperCase();
  if (isIP(ip) === 4) {
    const b = ip.split('.').map(Number);
    // an IPv4 peer of a dual-stack (::) listener shows in tcp6 as ::ffff:a.b.c.d
    return { v4: word([...b]), v6: `0000000000000000FFFF0000${word([...b])}` };
  }
  if (ip === '::1') return { v6: '00000000000000000000000001000000' };
  return undefined;
}

/** A server's end of its connections: its port, and the address clients reach it at (any local address when absent). */
export interface Endpoint { readonly port: number; readonly ip?: string }

/**
 * ESTABLISHED TCP connections whose local end is one of `endpoints`, from /proc/net/tcp and tcp6, one pass over each:
 * the server side of every connection a server there holds, whatever the server is (it need not count anything
 * itself). On loopback the clients' ends have the port as their remote port; one bound to another source address may
 * happen to get the port as its own ephemeral port, which only the address tells apart.
 */
export function established(...endpoints: readonly Endpoint[]): number {
  const wants = endpoints.map(({ port, ip }) => {
    const p = `:${port.toString(16).toUpperCase().padStart(4, '0')} `;
    const hex = ip === undefined ? undefined : procHex(ip);
    // an IPv6 address has no row in tcp
    return { tcp: hex ? (hex.v4 === undefined ? undefined : `${hex.v4}${p}`) : p, tcp6: hex ? `${hex.v6}${p}` : p };
  });
  let n = 0;
  for (const file of ['tcp', 'tcp6'] as const) {
    const want = wants.map((w) => w[file]).filter((w): w is string => w !== undefined);
    if (want.length === 0) continue;
    let text: string;
    try { text = readFileSync(`/proc/net/${file}`, 'latin1'); } catch { continue; } // no IPv6 in this kernel
    // each row: "  sl  local_address rem_address   st …"; the local address ends in :PORT, st 01 = ESTABLISHED
    for (let at = text.indexOf('\n') + 1; at > 0 && at < text.length; at = text.indexOf('\n', at) + 1) {
      const colon = text.indexOf(': ', at);
      const local = text.indexOf(' ', colon + 2);
      const remote = text.indexOf(' ', local + 1);
      if (text.startsWith(' 01 ', remote) && want.some((w) => text.startsWith(w, local + 1 - w.length))) n++;
    }
  }
  return n;
}
