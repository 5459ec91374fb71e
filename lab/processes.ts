import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { parseExposition, type Sample } from '../../metrics/exposition.js';

/** The built CLI, as a user runs it. */
export const WSLAB = fileURLToPath(new URL('../../cli/wslab.js', import.meta.url));

export interface ServerProcess {
  readonly child: ChildProcess;
  readonly url: string;
  readonly metricsUrl: string;
  readonly pid: number;
  readonly ready: Record<string, unknown>;
  stderr(): string;
  scrape(): Promise<Sample[]>;
  /** SIGTERM, then the exit code (SIGKILL after 10 s so a test never hangs). */
  stop(): Promise<number | null>;
}

/** Spawns `wslab serve --design <design> --port 0 --metrics-port 0 ...flags` and waits for its ready line. */
export async function spawnServer(design: string, flags: string[] = []): Promise<ServerProcess> {
  const child = spawn(process.execPath, [WSLAB, 'serve', '--design', design, '--port', '0', '--metrics-port', '0', ...flags], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { err += d; });
  let out = '';
  const ready = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server ${design} not ready in 15 s: ${err}`)), 15_000);
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const nl = out.indexOf('\n');
      if (nl >= 0) { clearTimeout(timer); resolve(JSON.parse(out.slice(0, nl))); }
    });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`server ${design} exited ${code}: ${err}`)); });
  });
  const metricsUrl = String(ready.metrics);
  return {
    child, ready, url: String(ready.url), metricsUrl, pid: Number(ready.pid),
    stderr: () => err,
    scrape: async () => parseExposition(await (await fetch(metricsUrl)).text()),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
      const [code] = await exited;
      clearTimeout(kill);
      return code as number | null;
    },
  };
}

/** Polls `check` until it returns true or `ms` pass (a check that throws counts as not yet). */
export async function eventually(check: () => Promise<boolean> | boolean, ms = 5000): Promise<boolean> {
  const until = Date.now() + ms;
  for (;;) {
    if (await Promise.resolve().then(check).catch(() => false)) return true;
    if (Date.now() > until) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
}
