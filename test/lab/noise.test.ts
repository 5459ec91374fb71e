import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { QUIET_LIMIT } from '../../metrics/noise.js';
import { WSLAB } from '../../lab/processes.js';
import type { LabResults } from '../../lab/results.js';

/**
 * The noise guard as a user meets it: a quick lab of three idle-hold cells, with a CPU hog (one core, not a child
 * of the lab) running during the second cell only. That cell is marked busy with about the hog's core, the other
 * two quiet; the report's row and the verdict that rests on the busy cell say so.
 */
const out = mkdtempSync(join(tmpdir(), 'wslab-noise-'));
let hog: ChildProcess | undefined;
after(() => { hog?.kill('SIGKILL'); rmSync(out, { recursive: true, force: true }); });

it('marks the cell that ran beside a CPU hog busy, with the hog\'s core, and the others quiet', async () => {
  const lab = spawn(process.execPath, [WSLAB, 'lab', '--scale', 'quick', '--scenarios', 'idle-hold', '--designs', 'ws,uws,threads', '--out', out],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  const kill = setTimeout(() => lab.kill('SIGKILL'), 90_000);
  lab.stderr!.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
    // a busy loop in a process of its own (its parent is the test, not the lab): stopped when the third cell starts
    if (!hog && /\[2\/3\]/.test(stderr)) hog = spawn(process.execPath, ['-e', 'const end = Date.now() + 60_000; while (Date.now() < end);'], { stdio: 'ignore' });
    if (hog && /\[3\/3\]/.test(stderr)) hog.kill('SIGKILL');
  });
  const code = await new Promise<number | null>((r) => lab.once('exit', (c) => { clearTimeout(kill); r(c); }));
  assert.equal(code, 0, stderr);
  assert.ok(hog, 'the second cell never started');
  const dir = join(out, readdirSync(out)[0]);
  const r = JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8')) as LabResults;
  const cells = r.scenarios[0].cells;
  assert.deepEqual(cells.map((c) => c.status), ['ok', 'ok', 'ok']);
  const [first, second, third] = cells.map((c) => c.noise!);
  assert.equal(second.quiet, false, JSON.stringify(cells.map((c) => c.noise)));
  assert.ok(second.outsideCores >= 0.6 && second.outsideCores <= 1.2, `the hog's one core, measured ${second.outsideCores}`);
  // the hog is CPU outside the run; steal (the hypervisor's, 0.1–0.27 cores on this box some days) may mark any cell
  // busy on its own, so the other cells are judged by what the hog changes: the cores used outside
  assert.ok(first.outsideCores < QUIET_LIMIT.outsideCores && third.outsideCores < QUIET_LIMIT.outsideCores, `the other cells without the hog: ${JSON.stringify([first, third])}`);
  const md = readFileSync(join(dir, 'report.md'), 'utf8');
  assert.match(md, new RegExp(`^\\| ${cells[1].design} \\|.*\\| ok · \\*\\*busy box: ${second.outsideCores.toFixed(2)} cores used outside the run, [0-9.]+ stolen\\*\\* \\|$`, 'm'));
  assert.match(md, new RegExp(`^\\| ${cells[0].design} \\|.*\\| ok · ${first.quiet ? 'quiet' : '\\*\\*busy'} box: ${first.outsideCores.toFixed(2)} cores used outside the run`, 'm'));
  // the claims judged from idle-hold rest on all three cells: each says which one ran on a busy box
  const judged = r.claims.filter((c) => !c.evidence.startsWith('not measured'));
  assert.ok(judged.length > 0);
  for (const c of judged) assert.match(c.evidence, new RegExp(` — measured on a busy box: (.+; )?${cells[1].design} with ${second.outsideCores.toFixed(2)} cores used outside the run`), c.id);
});
