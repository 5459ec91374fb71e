/**
 * Child processes of a bench whose stdout is JSON lines: the swarm (its `started` line), the clients and servers of
 * bench/clients/. One home for spawning them, used by every bench that compares clients.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export interface Proc { child: ChildProcess; lines: Record<string, unknown>[]; nextLine(): Promise<Record<string, unknown>> }

/** The built script of bench/clients/<name>.ts. */
export const clientScript = (name: string): string => fileURLToPath(new URL(`../clients/${name}.js`, import.meta.url));

/** `node …args`, its stdout read as JSON lines; stderr is drained (a bench reads figures, not logs). */
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
  child.stderr!.resume();
  return {
    child, lines,
    nextLine: () => new Promise((resolve, reject) => {
      const l = lines.shift();
      if (l) return resolve(l);
      const t = setTimeout(() => reject(new Error(`no line from ${args.join(' ')} within 20 s`)), 20_000);
      waiters.push((x) => { clearTimeout(t); resolve(x); });
    }),
  };
}
