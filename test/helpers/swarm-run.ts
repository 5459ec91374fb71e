import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Summary } from '../../client/recorder.js';
import { WSLAB } from '../../lab/processes.js';

export interface SwarmRun {
  readonly child: ChildProcess;
  /** The `{"event":"started",…}` line. */
  readonly started: Promise<Record<string, unknown>>;
  /** Exit code (a signal shows as 128 + its number), stdout, stderr and the summary file if written. */
  readonly done: Promise<{ code: number; stdout: string; stderr: string; summary: Summary | undefined }>;
}

/**
 * Spawns the built `wslab swarm …` with a fresh `--summary` file in `dir`; killed after `timeoutMs` (30 s) so a test
 * never hangs. One runner for every test that drives the real CLI.
 */
export function swarmRunner(dir: string, timeoutMs = 30_000): (args: string[]) => SwarmRun {
  let n = 0;
  return (args) => {
    const file = join(dir, `summary-${n++}.json`);
    const child = spawn(process.execPath, [WSLAB, 'swarm', '--summary', file, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let onLine: ((l: Record<string, unknown>) => void) | undefined;
    const started = new Promise<Record<string, unknown>>((resolve) => { onLine = resolve; });
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      const nl = stdout.indexOf('\n');
      if (nl >= 0) onLine?.(JSON.parse(stdout.slice(0, nl)));
    });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    const kill = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    const done = new Promise<{ code: number; stdout: string; stderr: string; summary: Summary | undefined }>((resolve) => {
      child.once('exit', (code, signal) => {
        clearTimeout(kill);
        resolve({
          code: code ?? 128 + (signal === 'SIGKILL' ? 9 : 15), stdout, stderr,
          summary: existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) as Summary : undefined,
        });
      });
    });
    return { child, started, done };
  };
}

/**
 * Each case's argv must be refused as a user sees it: exit 1, one line on stderr matching the pattern, nothing on
 * stdout (not even the `started` line: no work began), no summary written.
 */
export async function expectUsageErrors(swarm: (args: string[]) => SwarmRun, cases: readonly (readonly [string, string[], RegExp])[]): Promise<void> {
  const runs = await Promise.all(cases.map(([, args]) => swarm(args).done));
  runs.forEach((r, i) => {
    const [label, , pattern] = cases[i];
    assert.equal(r.code, 1, `${label}: ${r.stderr}`);
    assert.equal(r.stderr.trimEnd().split('\n').length, 1, `${label}: ${r.stderr}`);
    assert.match(r.stderr, pattern, label);
    assert.equal(r.stdout, '', label);
    assert.equal(r.summary, undefined, label);
  });
}
