/**
 * The server of a bench and its readings: one way to start a design (lab/processes' spawnServer, every server
 * stopped if the bench is cut short), the server's process tree from /proc and its /metrics, before and after.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { spawnServer, type ServerProcess } from '../../lab/processes.js';
import type { Sample } from '../../metrics/exposition.js';
import { readTreeStatus, type ProcStatus } from '../../metrics/proc-status.js';
import type { DesignRun } from './options.js';

const servers = new Set<ServerProcess>();
/** Stops every server a bench started and has not stopped yet. */
export const stopAll = async (): Promise<void> => { await Promise.all([...servers].map((s) => s.stop())); };

/** `wslab serve --design <design> --port 0 --metrics-port 0 ...flags` (lab/processes), stopped if the bench is cut short. */
export async function startServer(run: DesignRun, extraFlags: readonly string[] = []): Promise<ServerProcess> {
  const server = await spawnServer(run.design, [...run.flags, ...extraFlags]);
  servers.add(server);
  const stop = server.stop.bind(server);
  return Object.assign(server, { stop: () => stop().finally(() => servers.delete(server)) });
}

export type TreeStatus = ProcStatus & { processes: number };
/** What a reading holds: the server's whole process tree from /proc and, when asked, its /metrics parsed. */
export interface Reading { readonly tree: TreeStatus; readonly metrics: readonly Sample[] }

/** The server's process tree now (RSS, threads, processes). */
export const treeOf = (server: ServerProcess): TreeStatus => readTreeStatus(server.pid);
/** The tree, then a /metrics scrape. */
export const readingOf = async (server: ServerProcess): Promise<Reading> => {
  const tree = treeOf(server);
  return { tree, metrics: await server.scrape() };
};

/**
 * The shell of a server bench: start the design, let it settle `settleMs` (after `warm`, e.g. a first scrape), read
 * its tree, run `body` with that reading, and stop the server whatever happens.
 */
export async function withServer<T>(run: DesignRun, flags: readonly string[], settle: { ms: number; warm?: (s: ServerProcess) => Promise<unknown> },
  body: (server: ServerProcess, before: TreeStatus) => Promise<T>): Promise<T> {
  const server = await startServer(run, flags);
  try {
    await settle.warm?.(server);
    await sleep(settle.ms);
    return await body(server, treeOf(server));
  } finally {
    await server.stop();
  }
}

/** Bytes as MiB with one decimal, the unit of the benches' `…MiB` fields. */
export const mib = (bytes: number): number => +(bytes / 2 ** 20).toFixed(1);
