import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { WSLAB } from '../../lab/processes.js';
import type { LabResults } from '../../lab/results.js';

/**
 * `wslab lab` and signals, as a user meets them: Ctrl-C or a SIGTERM keeps the finished cells (a report marked
 * interrupted, exit 130/143) and leaves no server, swarm or temporary folder behind; a SIGKILLed lab takes its
 * servers and swarms with it (their IPC channel to it closes).
 */
const out = mkdtempSync(join(tmpdir(), 'wslab-interrupt-'));
after(() => rmSync(out, { recursive: true, force: true }));

const childrenOf = (pid: number): number[] => {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((t) => readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number));
  } catch { return []; }
};
const alive = (pid: number): boolean => existsSync(`/proc/${pid}/stat`) && !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ');
const labTmpDirs = (): string[] => readdirSync(tmpdir()).filter((d) => d.startsWith('wslab-lab-'));

/** Starts a quick lab and resolves once its second cell began (the first finished), with the lab's children then. */
function labUntilSecondCell(dir: string): Promise<{ child: ReturnType<typeof spawn>; kids: number[]; done: Promise<{ code: number | null; signal: string | null; stderr: string }> }> {
  const child = spawn(process.execPath, [WSLAB, 'lab', '--scale', 'quick', '--scenarios', 'idle-hold', '--designs', 'ws,uws,threads', '--out', dir],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  const kill = setTimeout(() => child.kill('SIGKILL'), 90_000);
  const done = new Promise<{ code: number | null; signal: string | null; stderr: string }>((resolve) => child.once('exit', (code, signal) => { clearTimeout(kill); resolve({ code, signal, stderr }); }));
  return new Promise((resolve, reject) => {
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      const before = stderr;
      stderr += d;
      if (!/\[2\/\d+\]/.test(before) && /\[2\/\d+\]/.test(stderr)) setTimeout(() => resolve({ child, kids: childrenOf(child.pid!), done }), 1500);
    });
    void done.then((r) => reject(new Error(`the lab ended before its second cell: ${r.stderr}`)));
  });
}

describe('wslab lab interrupted', () => {
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    it(`${signal}: the finished cells are reported, marked interrupted, exit ${code}, nothing left running`, async () => {
      const dir = join(out, signal);
      const tmpBefore = new Set(labTmpDirs());
      const { child, kids, done } = await labUntilSecondCell(dir);
      assert.ok(kids.length > 0, 'the lab had a server running');
      child.kill(signal);
      const r = await done;
      assert.equal(r.code, code, r.stderr);
      const [run] = readdirSync(dir);
      const results = JSON.parse(readFileSync(join(dir, run, 'results.json'), 'utf8')) as LabResults;
      assert.equal(results.interrupted, signal);
      const cells = results.scenarios.flatMap((s) => s.cells);
      assert.ok(cells.some((c) => c.status === 'ok'), 'the first cell, finished before the signal, is in the report');
      assert.ok(cells.some((c) => c.status === 'skipped' && /not run: the lab was interrupted/.test(c.cause ?? '')), 'the cells not run are listed');
      assert.match(readFileSync(join(dir, run, 'report.md'), 'utf8'), new RegExp(`Interrupted \\(${signal}\\)`));
      await new Promise((res) => setTimeout(res, 500));
      assert.deepEqual(kids.filter(alive), [], 'every server and swarm of the lab stopped');
      assert.deepEqual(labTmpDirs().filter((d) => !tmpBefore.has(d)), [], 'no /tmp/wslab-lab-* left');
    });
  }

  it('SIGKILL: its servers and swarms exit with it', async () => {
    const tmpBefore = new Set(labTmpDirs());
    const { child, kids, done } = await labUntilSecondCell(join(out, 'SIGKILL'));
    assert.ok(kids.length > 0);
    child.kill('SIGKILL');
    await done;
    for (let i = 0; i < 50 && kids.some(alive); i++) await new Promise((res) => setTimeout(res, 100));
    assert.deepEqual(kids.filter(alive), [], 'no orphan left under pid 1');
    for (const d of labTmpDirs().filter((x) => !tmpBefore.has(x))) rmSync(join(tmpdir(), d), { recursive: true, force: true }); // a SIGKILLed process cleans nothing
  });
});
