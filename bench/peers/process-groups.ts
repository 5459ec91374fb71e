/**
 * bench/peers' children: every one in its own process group (a peer such as Tsung is a shell, an Erlang VM and
 * helpers), every group killed on any exit of the bench — normal end, signal, uncaught error, or --deadline — with
 * the epmd daemon a run started and the run's temporary folders.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

/** every child still alive (a group counts while any of its processes is) */
export const live = new Set<ChildProcess>();
/** the epmd daemons that existed when the current run started (a new one is the run's own: Tsung started it) */
let epmdAtRunStart: Set<number> | null = null;
/** Marks the start (a snapshot of epmd pids) or the end (null) of a run. */
export const setEpmdAtRunStart = (pids: Set<number> | null): void => { epmdAtRunStart = pids; };
/** the runs' temporary folders, removed on any exit */
export const tempDirs = new Set<string>();
export function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try { process.kill(-child.pid, signal); } catch { try { child.kill(signal); } catch { /* gone */ } }
}
export function killEverything(): void {
  for (const c of live) {
    // the group outlives its leader (e.g. Tsung's beam after the shell), so kill it even if the leader exited;
    // the server is not a group leader (lab/processes spawns it): kill it alone
    if (c.pid !== undefined) try { process.kill(-c.pid, 'SIGKILL'); } catch { try { c.kill('SIGKILL'); } catch { /* gone */ } }
  }
  if (epmdAtRunStart) for (const pid of epmdPids()) if (!epmdAtRunStart.has(pid)) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
}

/**
 * Kills every child on any exit of this process, and the whole run once it passes `deadlineMs` (`deadlineText` as
 * the user wrote it, for the message). Called once, before the first child starts.
 */
export function guardChildren(deadlineMs: number, deadlineText: string): void {
  process.on('exit', killEverything);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => { process.stderr.write(`bench/peers: ${sig}, killing every child\n`); killEverything(); process.exit(130); });
  }
  process.on('uncaughtException', (e) => { process.stderr.write(`bench/peers: ${e.stack ?? e}\n`); killEverything(); process.exit(1); });
  setTimeout(() => {
    process.stderr.write(`bench/peers: the whole run passed --deadline ${deadlineText}, killing every child\n`);
    killEverything();
    process.exit(1);
  }, deadlineMs).unref();
}

export function launch(command: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; stdout: number | 'pipe'; stderr: number | 'pipe' }): ChildProcess {
  const child = spawn(command, args, { stdio: ['ignore', opts.stdout, opts.stderr], env: opts.env ?? process.env, cwd: opts.cwd, detached: true });
  live.add(child);
  child.on('exit', () => { if (child.pid !== undefined) { try { process.kill(-child.pid, 0); } catch { live.delete(child); } } });
  child.on('error', () => { /* reported by the caller through exitCode / missing samples */ });
  return child;
}
export async function stopGroup(child: ChildProcess, first: NodeJS.Signals, graceMs: number): Promise<void> {
  const exited = child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : once(child, 'exit').then(() => undefined);
  killGroup(child, first);
  await Promise.race([exited, sleep(graceMs)]);
  if (child.pid !== undefined) try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ }
  await Promise.race([exited, sleep(2000)]);
  live.delete(child);
}
export function epmdPids(): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try { if (readFileSync(`/proc/${d}/comm`, 'latin1').trim() === 'epmd') out.push(Number(d)); } catch { /* gone */ }
  }
  return out;
}
