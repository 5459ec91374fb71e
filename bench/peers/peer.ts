/**
 * What bench/peers asks of a peer (a load tool holding N idle connections): its version, why it cannot run here,
 * and how to launch it for one run. One adapter file per peer implements it (swarm.ts, artillery.ts, tsung.ts).
 */
import type { ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { onPath } from '../../cli/stack.js';

/** The bench's options the adapters read, already checked. */
export interface PeerSettings {
  /** --source-ips as written (for the swarm) and expanded (for Tsung) */
  readonly sourceIps: { readonly text: string; readonly ips: readonly string[] };
  /** --swarm-rate, --swarm-max-pending, --swarm-workers; undefined = the swarm's own default */
  readonly swarm: { readonly rate?: number; readonly maxPending?: number; readonly workers?: number };
  /** --artillery (binary), --artillery-rate (0 = every arrival within 1 s) */
  readonly artillery: { readonly bin: string; readonly rate: number };
  /** --tsung (binary), --tsung-rate */
  readonly tsung: { readonly bin: string; readonly rate: number };
}

export interface Launch {
  command: string;
  args: string[];
  env?: Record<string, string>;
  files: Record<string, string>;
  /** stop the peer after the hold window */
  stop(child: ChildProcess): Promise<void>;
  /** the peer's own view: its claims and its error counters */
  selfReport(stdout: string, stderr: string, exitCode: number | null): Record<string, unknown> & { errors: Record<string, number> };
}
export interface Peer {
  name: string;
  version(): string | null;
  unavailable(): string | null;
  prepare(dir: string, url: string, n: number, holdFor: number): Launch;
}

/** `bin` if it is an executable path, else its place on PATH (cli/stack's lookup), else null. */
export function findBin(bin: string): string | null {
  if (!bin.includes('/')) return onPath(bin) ?? null;
  try { accessSync(bin, constants.X_OK); return bin; } catch { return null; }
}

export const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;
