import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { evaluate, parseThreshold } from '../../lab/compare.js';
import { WSLAB } from '../../lab/processes.js';
import type { LabResults } from '../../lab/results.js';

/**
 * `wslab compare A B`: two real quick runs of idle-hold (uws, ws), compared as a user would: the table shows each
 * figure of both runs and B − A as results.json has them, a threshold that holds exits 0, one that does not exits 99
 * naming it, bad input is one line and exit 1 before anything is printed; the threshold rule at its boundaries.
 */
const dir = mkdtempSync(join(tmpdir(), 'wslab-compare-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const compare = (...args: string[]) => spawnSync(process.execPath, [WSLAB, 'compare', ...args], { encoding: 'utf8', timeout: 20_000 });

function labRun(name: string): string {
  const out = join(dir, name);
  const r = spawnSync(process.execPath, [WSLAB, 'lab', '--scale', 'quick', '--scenarios', 'idle-hold', '--designs', 'uws,ws', '--out', out], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  return join(out, readdirSync(out)[0]);
}

describe('wslab compare on two real lab runs', () => {
  let A = '', B = '';
  let a: LabResults, b: LabResults;
  before(() => {
    A = labRun('a');
    B = labRun('b');
    a = JSON.parse(readFileSync(join(A, 'results.json'), 'utf8')) as LabResults;
    b = JSON.parse(readFileSync(join(B, 'results.json'), 'utf8')) as LabResults;
  });
  const fig = (r: LabResults, design: string, key: string): number => r.scenarios[0].cells.find((c) => c.design === design)!.figures[key]!;

  it('shows every figure of both runs with B − A as results.json has them, and thresholds that hold pass (exit 0)', () => {
    const r = compare(A, B, '--json', '--threshold', 'idle-hold.uws.held>=1000', '--threshold', 'idle-hold.ws.rssPerConnectionBytes<+100000%');
    assert.equal(r.status, 0, r.stderr);
    const c = JSON.parse(r.stdout) as { figures: { design: string; figure: string; a: number; b: number; delta: number }[]; thresholds: { ok: boolean; actual: number }[] };
    for (const design of ['uws', 'ws']) {
      for (const key of ['held', 'rssPerConnectionBytes', 'connectRatePerSec']) {
        const f = c.figures.find((x) => x.design === design && x.figure === key)!;
        assert.deepEqual([f.a, f.b, f.delta], [fig(a, design, key), fig(b, design, key), fig(b, design, key) - fig(a, design, key)], `${design} ${key}`);
      }
    }
    assert.deepEqual(c.thresholds.map((t) => t.ok), [true, true]);
    assert.equal(c.thresholds[0].actual, fig(b, 'uws', 'held'));
    const text = compare(A, B).stdout;
    assert.match(text, /^idle-hold$/m);
    assert.match(text, new RegExp(`^  uws +held \\(connections\\) +${fig(a, 'uws', 'held').toLocaleString('en-US')} +${fig(b, 'uws', 'held').toLocaleString('en-US')} `, 'm'));
  });

  it('exits 99 naming every threshold that failed, with both figures', () => {
    const r = compare(A, B, '--threshold', 'idle-hold.uws.held>1000', '--threshold', 'idle-hold.uws.rssPerConnectionBytes<-99%', '--threshold', 'idle-hold.ws.held>=1000');
    assert.equal(r.status, 99, r.stderr);
    assert.match(r.stdout, /threshold FAILED: idle-hold\.uws\.held>1000 \(A 1,000, B 1,000: 1,000\)/);
    assert.match(r.stdout, /threshold FAILED: idle-hold\.uws\.rssPerConnectionBytes<-99% \(A .+ B .+: [+-]\d+\.\d %\)/);
    assert.match(r.stdout, /threshold passed: idle-hold\.ws\.held>=1000/);
    assert.match(r.stderr, /^wslab compare: 2 thresholds failed: idle-hold\.uws\.held>1000; idle-hold\.uws\.rssPerConnectionBytes<-99% \(exit 99\)\n$/);
  });

  it('lists the verdicts that changed, a cell that failed in B and one that ran on a busy box', () => {
    const changed = structuredClone(b);
    const claim = changed.claims.find((c) => c.verdict === 'confirmed')!;
    claim.verdict = 'refuted';
    const cell = changed.scenarios[0].cells.find((c) => c.design === 'ws')!;
    Object.assign(cell, { status: 'failed', cause: 'the server died' });
    changed.scenarios[0].cells.find((c) => c.design === 'uws')!.noise = { outsideCores: 0.97, stealCores: 0, quiet: false };
    const file = join(dir, 'changed.json');
    writeFileSync(file, JSON.stringify(changed));
    const r = compare(A, file, '--threshold', 'idle-hold.ws.held>=1');
    assert.equal(r.status, 99);
    assert.match(r.stdout, new RegExp(`^  ${claim.id}: confirmed → refuted`, 'm'));
    assert.match(r.stdout, /^  idle-hold × ws: failed in B \(the server died\)$/m);
    assert.match(r.stdout, /^  idle-hold × uws: busy box: 0\.97 cores used outside the run, 0\.00 stolen in B: its figures share the box with another load$/m);
    assert.match(r.stdout, /threshold FAILED: idle-hold\.ws\.held>=1 \(not measured in B\)/);
  });

  it('refuses bad input in one line, exit 1, before printing anything', () => {
    const notResults = join(dir, 'other.json');
    writeFileSync(notResults, '{"schema":"wslab-swarm-summary/1"}');
    const cases: [string[], RegExp][] = [
      [[A, join(dir, 'missing')], /^wslab: B: no such file or folder ".+missing"/],
      [[A, dir], /^wslab: B: the folder ".+" holds no results\.json/],
      [[notResults, B], /^wslab: A: ".+other\.json" is not a lab results file \(schema "wslab-swarm-summary\/1", expected "wslab-lab-results\/1"\)/],
      [[A, B, '--threshold', 'idle-hold.uws.heldd>1'], /^wslab: --threshold "idle-hold\.uws\.heldd>1": no figure "heldd" in idle-hold \(its figures: held, failed, /],
      [[A, B, '--threshold', 'idle-hold.threads.held>1'], /no design "threads" in idle-hold \(A and B have: /],
      [[A, B, '--threshold', 'slow-backend.uws.held>1'], /no scenario "slow-backend" in A or B \(they have: idle-hold\)/],
      [[A, B, '--threshold', 'idle-hold.uws.held<10%'], /"10%" needs a sign: \+10%/],
      [[A, B, '--threshold', 'idle-hold.uws.held=1'], /not of the form <scenario>\.<design>\.<figure><op><value>/],
    ];
    for (const [args, message] of cases) {
      const r = compare(...args);
      assert.equal(r.status, 1, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(r.stdout, '', args.join(' '));
      assert.match(r.stderr, message);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    }
  });
});

describe('compare thresholds at their boundaries', () => {
  const run = (value: number | null, status: 'ok' | 'failed' = 'ok'): LabResults => ({
    schema: 'wslab-lab-results/1', startedAt: '', finishedAt: '', durationSec: 0, scale: 'quick', interrupted: null,
    machine: { cpus: 2, cpuModel: '', memoryBytes: 0, fdLimit: 0, node: '', kernel: '', designs: {} }, claims: [],
    scenarios: [{ id: 's', title: '', question: '', method: '', columns: [{ key: 'x', label: 'x', unit: 'bytes' }],
      cells: [{ design: 'uws', status, traits: {} as never, figures: { x: value }, series: {} as never }] }],
  });
  const cases: [string, number | null, number | null, boolean | string][] = [
    ['s.uws.x<+10%', 100, 109.9, true], ['s.uws.x<+10%', 100, 110, false], ['s.uws.x<=+10%', 100, 110, true],
    ['s.uws.x>-10%', 100, 90, false], ['s.uws.x>=-10%', 100, 90, true], ['s.uws.x<-10%', -100, -120, true],
    ['s.uws.x<+20', 100, 119, true], ['s.uws.x<+20', 100, 120, false], ['s.uws.x>=-5', 100, 95, true],
    ['s.uws.x<=100', null, 100, true], ['s.uws.x<100', null, 100, false],
    ['s.uws.x<+10%', 0, 0, 'A is 0: no relative change'], ['s.uws.x<+10', null, 5, 'not measured in A'], ['s.uws.x<+10%', 5, null, 'not measured in B'],
  ];
  for (const [expr, va, vb, want] of cases) {
    it(`${expr} with A ${va}, B ${vb}: ${want}`, () => {
      const A = run(va), B = run(vb);
      const v = evaluate(parseThreshold(expr, A, B), A, B);
      if (typeof want === 'string') assert.deepEqual([v.ok, v.why], [false, want]);
      else assert.equal(v.ok, want);
    });
  }
  it('a figure of a failed cell is not measured', () => {
    const A = run(1), B = run(1, 'failed');
    assert.deepEqual(evaluate(parseThreshold('s.uws.x<=1', A, B), A, B).why, 'not measured in B');
  });
});
