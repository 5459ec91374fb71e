import { readFileSync } from 'node:fs';

export interface ProcStatus {
  rssBytes: number;
  threads: number;
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
    threads: field(text, 'Threads'),
    voluntarySwitches: field(text, 'voluntary_ctxt_switches'),
    involuntarySwitches: field(text, 'nonvoluntary_ctxt_switches'),
  };
}

/** The soft open-files limit of this process, from /proc/self/limits (what caps the sockets one process holds). */
export function openFilesLimit(): number {
  const line = readFileSync('/proc/self/limits', 'latin1').split('\n').find((l) => l.startsWith('Max open files'));
  return line ? Number.parseInt(line.slice(26), 10) || 0 : 0;
}
