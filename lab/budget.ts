import { readFileSync } from 'node:fs';
import { swarmPorts } from '../client/ports.js';
import { openFilesLimit } from '../metrics/proc-status.js';
import { readBox, type Box } from './sockstat.js';

/**
 * The plan and the memory budget of `wslab lab --scenarios idle-hold --scale max`: how many server and swarm
 * processes, over how many source addresses, hold N idle connections on this one box, what that costs, and which of
 * the machine's limits would stop it first. Pure: the caller reads the machine (readBox(), the fd limit) and passes
 * it in, so the refusal and the plan are tested without a heavy run.
 *
 * There is no swap here: a hold that does not fit ends in the OOM killer, taking other people's processes with it.
 * So the lab refuses, before starting anything, a request whose budget exceeds what the box has.
 */

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

/** Measured per-connection and per-process costs on this machine (../shared/MACHINE.md, bench/results/idle-memory.json). */
export interface HoldCosts {
  /** uws server userland RSS per idle connection: 725 B at 19,500 (bench/results/idle-memory.json), 638–771 B at 1M (bench/results/million/). */
  readonly serverBytesPerConnection: number;
  /** Swarm worker RSS per held connection: 870–894 B at 300k and 1M (bench/results/million/), 1.1 KB at 20k. */
  readonly swarmBytesPerConnection: number;
  /** Kernel memory per loopback pair (both sockets, slab): 8.2 KB at 100,200 pairs (MACHINE.md), 8.4–9.4 KiB at 1M. */
  readonly kernelBytesPerPair: number;
  /**
   * MemAvailable one idle Node worker process costs before it holds anything: Private_Dirty of a cluster uws worker
   * and of a swarm worker, 30–31 MiB each in /proc/<pid>/smaps_rollup; 26 MiB per server worker in MemAvailable.
   */
  readonly processBaseBytes: number;
  /** The lab, the server's primary and the swarm's coordinator, together. */
  readonly fixedBytes: number;
  /** Pages a held loopback pair charges to tcp_mem (sockstat `mem`): 0.15 measured at 20,000 pairs (lab --scale max). */
  readonly tcpMemPagesPerPair: number;
}

export const HOLD_COSTS: HoldCosts = Object.freeze({
  serverBytesPerConnection: 900,
  swarmBytesPerConnection: 1100,
  kernelBytesPerPair: 9 * KiB,
  processBaseBytes: 32 * MiB,
  fixedBytes: 300 * MiB,
  tcpMemPagesPerPair: 0.15,
});

/** Limits of the plan, each with its default. */
export interface HoldLimits {
  /** Memory left to everything else on the box: MemAvailable minus this is what the hold may use. Default 1 GiB. */
  readonly reserveBytes: number;
  /** The whole box's used memory (MemTotal − MemAvailable) must stay under this at the peak. Default 20 GiB (issue 10). */
  readonly boxCapBytes: number;
  /** File descriptors a process keeps for itself besides sockets (node, IPC, /metrics). Default 1,000. */
  readonly fdReserve: number;
  /**
   * Share of a server worker's socket capacity the plan fills: SO_REUSEPORT spreads connections by a hash of the
   * 4-tuple, not evenly, so a worker must have room above the mean. Default 0.97.
   */
  readonly serverFill: number;
  /**
   * Connections per source address and server port: the swarm binds 27,208 ports per address (client/ports.ts), of
   * which the plan uses about half so the swarm's port walk stays fast (connect() slows as a pair's ports fill up, MACHINE.md). Default 14,000.
   */
  readonly perSource: number;
  /** Source addresses there are: 127.0.0.2 … 127.0.0.254. */
  readonly maxSources: number;
}

export const HOLD_LIMITS: HoldLimits = Object.freeze({
  reserveBytes: 1 * GiB, boxCapBytes: 20 * GiB, fdReserve: 1000, serverFill: 0.97, perSource: 14_000, maxSources: 253,
});

/** What the machine offers, read by the caller. */
export type HoldMachine = Pick<Box, 'memTotalBytes' | 'memAvailableBytes' | 'tcpMem' | 'conntrackCount' | 'conntrackMax' | 'filesOpen' | 'fileMax'> & {
  /** Open files one process may have (20,000 here, hard). */
  readonly fdLimit: number;
  readonly pageSize: number;
  /** fs.file-max binds only processes without CAP_SYS_ADMIN (the kernel lets that capability past it). */
  readonly fileMaxEnforced: boolean;
  /** Local ports the swarm binds per source address (client/ports.ts: the ephemeral range less the kernel's band). */
  readonly swarmPortsPerSource: number;
};

/** One limit of the machine and how many connections it allows with this plan. */
export interface HoldLimit {
  readonly name: string;
  readonly allows: number;
  readonly note: string;
}

export interface HoldPlan {
  readonly connections: number;
  readonly serverWorkers: number;
  readonly swarmWorkers: number;
  /** `127.0.0.2-127.0.0.N`: a whole number of addresses per swarm worker, each worker its own. */
  readonly sourceIps: string;
  readonly sources: number;
  readonly maxPending: number;
  /** Bytes the hold is budgeted to take from MemAvailable, by part. */
  readonly need: { readonly kernel: number; readonly server: number; readonly swarm: number; readonly processes: number; readonly fixed: number; readonly total: number };
  readonly availableBytes: number;
  /** Box memory in use at the peak if the budget holds (MemTotal − MemAvailable now + need). */
  readonly boxUsedBytes: number;
  /** Every limit, lowest `allows` first: the first is what would stop a bigger run. */
  readonly limits: readonly HoldLimit[];
}

export class BudgetError extends Error {
  readonly code = 'WSLAB_BUDGET';
}

const gib = (b: number): string => `${(b / GiB).toFixed(1)} GiB`;
const count = (n: number): string => Math.floor(n).toLocaleString('en-US');

/** Connections whose total cost, processes included, fits in `bytes` (the process count grows with connections). */
function fitting(bytes: number, c: HoldCosts, perProcess: number, serverPerProcess: number): number {
  const perConnection = c.kernelBytesPerPair + c.serverBytesPerConnection + c.swarmBytesPerConnection
    + c.processBaseBytes / perProcess + c.processBaseBytes / serverPerProcess;
  // two extra processes' worth for the rounding up of each side's worker count
  return Math.max(0, Math.floor((bytes - c.fixedBytes - 2 * c.processBaseBytes) / perConnection));
}

/**
 * The plan for holding `connections` idle connections on this box, or a BudgetError whose one-line message says
 * how much is needed, how much there is, and what to lower.
 */
export function planHold(connections: number, m: HoldMachine, c: HoldCosts = HOLD_COSTS, l: HoldLimits = HOLD_LIMITS): HoldPlan {
  const perProcess = m.fdLimit - l.fdReserve;
  if (perProcess < 1000) throw new BudgetError(`open files per process is ${m.fdLimit}: too few to hold connections (raise ulimit -n)`);
  const serverPerProcess = Math.floor(perProcess * l.serverFill);
  const serverWorkers = Math.ceil(connections / serverPerProcess);
  const swarmWorkers = Math.ceil(connections / perProcess);
  const perWorkerSources = Math.ceil(Math.ceil(connections / l.perSource) / swarmWorkers);
  const sources = perWorkerSources * swarmWorkers;

  const need = {
    kernel: connections * c.kernelBytesPerPair,
    server: connections * c.serverBytesPerConnection,
    swarm: connections * c.swarmBytesPerConnection,
    processes: (serverWorkers + swarmWorkers) * c.processBaseBytes,
    fixed: c.fixedBytes,
    total: 0,
  };
  need.total = need.kernel + need.server + need.swarm + need.processes + need.fixed;
  const availableBytes = m.memAvailableBytes - l.reserveBytes;
  const usedNow = m.memTotalBytes - m.memAvailableBytes;
  const boxUsedBytes = usedNow + need.total;

  const tcpPages = c.tcpMemPagesPerPair;
  const tracking = m.conntrackCount !== null && m.conntrackMax !== null && m.conntrackCount > 0;
  const limits: HoldLimit[] = [
    { name: 'memory', allows: fitting(availableBytes, c, perProcess, serverPerProcess),
      note: `MemAvailable ${gib(m.memAvailableBytes)} − ${gib(l.reserveBytes)} reserve; ≈${((c.kernelBytesPerPair + c.serverBytesPerConnection + c.swarmBytesPerConnection) / KiB).toFixed(1)} KiB per connection (kernel pair ${(c.kernelBytesPerPair / KiB).toFixed(1)} KiB, server ${c.serverBytesPerConnection} B, swarm ${c.swarmBytesPerConnection} B) + ${Math.round(c.processBaseBytes / MiB)} MiB per process` },
    { name: 'box memory cap', allows: fitting(l.boxCapBytes - usedNow, c, perProcess, serverPerProcess),
      note: `whole box under ${gib(l.boxCapBytes)} used (${gib(usedNow)} in use before the run)` },
    { name: 'tcp_mem', allows: tcpPages > 0 ? Math.floor(m.tcpMem[2] / tcpPages) : Infinity,
      note: `hard limit ${count(m.tcpMem[2])} pages (${gib(m.tcpMem[2] * m.pageSize)}), pressure at ${count(m.tcpMem[1])}; an idle loopback pair charges ≈${tcpPages} pages` },
    { name: 'nf_conntrack', allows: tracking ? m.conntrackMax! - m.conntrackCount! : Infinity,
      note: m.conntrackMax === null ? 'not loaded' : tracking ? `tracking: ${count(m.conntrackCount!)} of ${count(m.conntrackMax)} entries used, one per connection`
        : `loaded, max ${count(m.conntrackMax)}, not tracking loopback (count 0): would stop at ${count(m.conntrackMax)} if a rule made it track` },
    { name: 'fs.file-max', allows: m.fileMaxEnforced ? Math.floor((m.fileMax - m.filesOpen) / 2) : Infinity,
      note: `${count(m.fileMax)} file handles, ${count(m.filesOpen)} open; two per connection (one each side)${m.fileMaxEnforced ? '' : '; not enforced here: these processes have CAP_SYS_ADMIN'}` },
    { name: 'source ports', allows: l.maxSources * m.swarmPortsPerSource,
      note: `${l.maxSources} addresses 127.0.0.2–254 × ${count(m.swarmPortsPerSource)} ports the swarm binds towards one server port` },
  ].sort((a, b) => a.allows - b.allows);

  const fix = `lower --connections to ${count(Math.min(limits[0].allows, connections - 1))} or free memory`;
  if (need.total > availableBytes) {
    throw new BudgetError(`${count(connections)} connections need ≈${gib(need.total)} (kernel ${gib(need.kernel)}, server ${gib(need.server)}, swarm ${gib(need.swarm)}, ` +
      `${serverWorkers + swarmWorkers} processes ${gib(need.processes)}) but ${gib(availableBytes)} is available (MemAvailable ${gib(m.memAvailableBytes)} − ${gib(l.reserveBytes)} reserve): ${fix}`);
  }
  if (boxUsedBytes > l.boxCapBytes) {
    throw new BudgetError(`${count(connections)} connections would bring the box to ≈${gib(boxUsedBytes)} used (${gib(usedNow)} now + ${gib(need.total)}), over the ${gib(l.boxCapBytes)} cap: ${fix}`);
  }
  const other = limits.find((x) => x.name !== 'memory' && x.name !== 'box memory cap' && x.allows < connections);
  if (other) throw new BudgetError(`${count(connections)} connections exceed ${other.name} (${other.note}): lower --connections to ${count(other.allows)}`);
  if (sources > l.maxSources) throw new BudgetError(`${count(connections)} connections need ${sources} source addresses, more than the ${l.maxSources} of 127.0.0.2–254: lower --connections`);

  return Object.freeze({
    connections, serverWorkers, swarmWorkers, sources, sourceIps: `127.0.0.2-127.0.0.${1 + sources}`,
    maxPending: 1000, need: Object.freeze(need), availableBytes, boxUsedBytes, limits: Object.freeze(limits),
  });
}

/** This machine, now: /proc (lab/sockstat.ts) and this process's open-files limit, which its children inherit. */
export function readHoldMachine(): HoldMachine {
  // x86-64 and arm64 Linux both use 4 KiB pages for tcp_mem accounting
  const capEff = /^CapEff:\s*([0-9a-f]+)/m.exec(readFileSync('/proc/self/status', 'latin1'))?.[1] ?? '0';
  const CAP_SYS_ADMIN = 21n;
  return Object.freeze({
    ...readBox(), fdLimit: openFilesLimit(), pageSize: 4096, fileMaxEnforced: ((BigInt(`0x${capEff}`) >> CAP_SYS_ADMIN) & 1n) === 0n,
    swarmPortsPerSource: swarmPorts().perSource,
  });
}
