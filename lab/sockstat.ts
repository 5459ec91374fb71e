import { readFileSync } from 'node:fs';

/**
 * The machine-wide figures a big hold is judged by, read from /proc: the kernel's TCP socket counts and memory
 * (/proc/net/sockstat), its TCP memory limits (tcp_mem, in pages), netfilter's connection table when the module is
 * loaded, the file table, and the box's memory (/proc/meminfo). Each read is a few small files, cheap enough to
 * sample every 500 ms during a run.
 */
export interface Box {
  /** /proc/net/sockstat `TCP:` line: sockets in use (established + listening + …), orphans, TIME_WAIT, allocated. */
  tcpInuse: number;
  tcpOrphan: number;
  tcpTw: number;
  tcpAlloc: number;
  /** Pages the TCP stack has charged against tcp_mem (socket buffers, not the sockets themselves). */
  tcpMemPages: number;
  /** /proc/sys/net/ipv4/tcp_mem: [low, pressure, high] in pages. */
  tcpMem: [number, number, number];
  /** nf_conntrack entries and their cap; null when netfilter's connection tracking is not loaded. */
  conntrackCount: number | null;
  conntrackMax: number | null;
  /** fs.file-nr (allocated file handles) and fs.file-max. */
  filesOpen: number;
  fileMax: number;
  memTotalBytes: number;
  memAvailableBytes: number;
  /** Kernel slab (sockets, dentries, …): where a held TCP socket's memory goes. */
  slabBytes: number;
  /** /proc/net/netstat TcpExt: times TCP entered memory pressure, and connections it aborted for lack of memory. */
  tcpMemoryPressures: number;
  tcpAbortOnMemory: number;
}

const read = (path: string): string | null => {
  try { return readFileSync(path, 'latin1'); } catch { return null; }
};
const numbers = (text: string | null): number[] => (text ?? '').trim().split(/\s+/).filter(Boolean).map(Number);

/** `TCP: inuse 205 orphan 0 tw 415 alloc 205 mem 160` → { inuse: 205, … }. */
export function parseSockstat(text: string): Record<string, number> {
  const line = text.split('\n').find((l) => l.startsWith('TCP:')) ?? '';
  const f = line.slice(4).trim().split(/\s+/);
  const out: Record<string, number> = {};
  for (let i = 0; i + 1 < f.length; i += 2) out[f[i]] = Number(f[i + 1]);
  return out;
}

/** The `TcpExt:` header and value lines of /proc/net/netstat → value by name. */
export function parseTcpExt(text: string): Record<string, number> {
  const lines = text.split('\n').filter((l) => l.startsWith('TcpExt:'));
  if (lines.length < 2) return {};
  const [names, values] = [lines[0].split(/\s+/), lines[1].split(/\s+/)];
  return Object.fromEntries(names.slice(1).map((k, i) => [k, Number(values[i + 1])]));
}

/** `MemAvailable:   23012345 kB` lines → bytes by key. */
export function parseMeminfo(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^(\w+):\s+(\d+)(?: kB)?$/gm)) out[m[1]] = Number(m[2]) * (m[0].endsWith('kB') ? 1024 : 1);
  return out;
}

export function readBox(): Box {
  const tcp = parseSockstat(read('/proc/net/sockstat') ?? '');
  const mem = parseMeminfo(read('/proc/meminfo') ?? '');
  const tcpMem = numbers(read('/proc/sys/net/ipv4/tcp_mem'));
  const count = read('/proc/sys/net/netfilter/nf_conntrack_count');
  const max = read('/proc/sys/net/netfilter/nf_conntrack_max');
  const fileNr = numbers(read('/proc/sys/fs/file-nr'));
  const ext = parseTcpExt(read('/proc/net/netstat') ?? '');
  return {
    tcpInuse: tcp.inuse ?? 0, tcpOrphan: tcp.orphan ?? 0, tcpTw: tcp.tw ?? 0, tcpAlloc: tcp.alloc ?? 0, tcpMemPages: tcp.mem ?? 0,
    tcpMem: [tcpMem[0] ?? 0, tcpMem[1] ?? 0, tcpMem[2] ?? 0],
    conntrackCount: count === null ? null : Number(count), conntrackMax: max === null ? null : Number(max),
    filesOpen: fileNr[0] ?? 0, fileMax: fileNr[2] ?? numbers(read('/proc/sys/fs/file-max'))[0] ?? 0,
    memTotalBytes: mem.MemTotal ?? 0, memAvailableBytes: mem.MemAvailable ?? 0, slabBytes: mem.Slab ?? 0,
    tcpMemoryPressures: ext.TCPMemoryPressures ?? 0, tcpAbortOnMemory: ext.TCPAbortOnMemory ?? 0,
  };
}

/** Under tcp_mem's pressure threshold, at it (the kernel trims buffers), or past its hard limit (allocations fail). */
export function tcpMemState(b: Pick<Box, 'tcpMemPages' | 'tcpMem'>): 'ok' | 'pressure' | 'exhausted' {
  return b.tcpMemPages >= b.tcpMem[2] ? 'exhausted' : b.tcpMemPages >= b.tcpMem[1] ? 'pressure' : 'ok';
}
