import { readdirSync, readFileSync } from 'node:fs';

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

/** Reads /proc/<pid>/status (Linux). Throws ENOENT when the process is gone. */
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
  const sum = { rssBytes: 0, rssAnonBytes: 0, threads: 0, pageTablesBytes: 0, voluntarySwitches: 0, involuntarySwitches: 0, processes: 0 };
  for (const p of processTree(pid)) {
    let s: ProcStatus;
    try { s = readProcStatus(p); } catch { continue; }
    sum.rssBytes += s.rssBytes;
    sum.rssAnonBytes += s.rssAnonBytes;
    sum.threads += s.threads;
    sum.pageTablesBytes += s.pageTablesBytes;
    sum.voluntarySwitches += s.voluntarySwitches;
    sum.involuntarySwitches += s.involuntarySwitches;
    sum.processes++;
  }
  return sum;
}
