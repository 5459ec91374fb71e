import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { judge } from '../../lab/claims.js';
import { LAB_DESIGNS, withWorkers, type LabDesign } from '../../lab/designs.js';
import { WSLAB } from '../../lab/processes.js';
import { median, mergeRuns } from '../../lab/repeat.js';
import { emptySeries, type Cell, type LabResults, type Machine, type ScenarioResult } from '../../lab/results.js';
import { SCENARIOS } from '../../lab/scenarios/index.js';

/**
 * `lab --repeat N`: each cell N times, merged into medians with min–max, and a claim decided only when every run
 * decides it alike. The rule at its boundaries through a real scenario's judge (cpu-bound's ×1.4 / ×1.1), the merge
 * itself, and a real `--repeat 3` quick run whose results.json, report and verdicts a user reads.
 */
const machine: Machine = { cpus: 2, cpuModel: 'test', memoryBytes: 2 ** 34, fdLimit: 20_000, node: process.version, kernel: 'test', designs: {} };
const uws = LAB_DESIGNS.find((d) => d.design === 'uws')!;
const cluster = withWorkers('processes', machine.cpus)!;

const run = (d: LabDesign, figures: Record<string, number | null>, status: Cell['status'] = 'ok', cause?: string): Cell =>
  ({ design: d.label, traits: d.traits, status, ...(cause ? { cause } : {}), figures, series: emptySeries() });

/** cpu-bound judged from repeats where the loop did 100 req/s and the processes `ratios[k]` × that (null: that run failed). */
function cpuBound(ratios: readonly (number | null)[]) {
  const loopRuns = ratios.map(() => run(uws, { requestsPerSec: 100, serverCpuCores: 1, rttP50Ms: 5 }));
  const procRuns = ratios.map((r) => (r === null ? run(cluster, {}, 'failed', 'server exited during the run (SIGKILL)')
    : run(cluster, { requestsPerSec: 100 * r, serverCpuCores: 2, rttP50Ms: 3 })));
  const result: ScenarioResult = {
    id: 'cpu-bound', title: '', question: '', method: '', columns: [],
    cells: [mergeRuns(loopRuns, ratios.length), mergeRuns(procRuns, ratios.length)],
  };
  return judge([SCENARIOS.get('cpu-bound')!], [result], machine).find((c) => c.id === 'cpu-bound-processes')!;
}

describe('--repeat: a claim is decided only when every run decides it alike', () => {
  const cases: { ratios: (number | null)[]; verdict: string; says: RegExp }[] = [
    { ratios: [1.5, 1.6, 1.45], verdict: 'confirmed', says: /×1\.5\).*\(medians of 3 repeats; each repeat alone: confirmed\)/ },
    { ratios: [1.4, 1.4, 1.4], verdict: 'confirmed', says: /each repeat alone: confirmed/ }, // ≥ ×1.4 confirms, at exactly ×1.4
    { ratios: [1.1, 1.1, 1.1], verdict: 'refuted', says: /each repeat alone: refuted/ }, // ≤ ×1.1 refutes, at exactly ×1.1
    { ratios: [1.3, 1.5, 1.6], verdict: 'inconclusive', says: /^the spread crosses the threshold: repeat 1 inconclusive: .*×1\.3.*; repeat 2 confirmed: .*×1\.5.*; repeat 3 confirmed: .*×1\.6/ },
    { ratios: [1.05, 1.5, 1.5], verdict: 'inconclusive', says: /^the spread crosses the threshold: repeat 1 refuted: .*; repeat 2 confirmed/ },
    { ratios: [1.2, 1.2, 1.3], verdict: 'inconclusive', says: /\(medians of 3 repeats; each repeat alone: inconclusive\)/ },
    { ratios: [1.5, null, 1.5], verdict: 'inconclusive', says: /^not every repeat measured it: repeat 1 confirmed: .*; repeat 2 inconclusive: not measured: .*; repeat 3 confirmed/ },
    { ratios: [1.5, 1.5], verdict: 'confirmed', says: /\(medians of 2 repeats; each repeat alone: confirmed\)/ },
  ];
  for (const c of cases) {
    it(`processes at ${c.ratios.map((r) => (r === null ? 'failed' : `×${r}`)).join(', ')} of the loop: ${c.verdict}`, () => {
      const claim = cpuBound(c.ratios);
      assert.equal(claim.verdict, c.verdict, claim.evidence);
      assert.match(claim.evidence, c.says);
    });
  }

  it('one run is judged as before: no repeat wording', () => {
    const result: ScenarioResult = { id: 'cpu-bound', title: '', question: '', method: '', columns: [],
      cells: [run(uws, { requestsPerSec: 100 }), run(cluster, { requestsPerSec: 150 })] };
    const claim = judge([SCENARIOS.get('cpu-bound')!], [result], machine).find((x) => x.id === 'cpu-bound-processes')!;
    assert.equal(claim.verdict, 'confirmed');
    assert.doesNotMatch(claim.evidence, /repeat/);
  });
});

describe('mergeRuns: one cell from its runs', () => {
  it('medians (the middle two averaged for an even count), min–max over the ok runs, each run kept, the busiest noise', () => {
    assert.equal(median([3, 1, 2]), 2);
    assert.equal(median([4, 1, 3, 2]), 2.5);
    assert.equal(median([]), null);
    const runs = [
      { ...run(uws, { held: 1000, rss: 10, rate: null }), noise: { outsideCores: 0.05, stealCores: 0, quiet: true }, notes: ['same note'] },
      { ...run(uws, { held: 1000, rss: 30, rate: 7 }), noise: { outsideCores: 0.9, stealCores: 0.01, quiet: false }, notes: ['same note', 'only here'] },
      run(uws, { held: 990, rss: 999 }, 'failed', 'server exited during the run (SIGKILL)'),
      { ...run(uws, { held: 1000, rss: 20, rate: 9 }), noise: { outsideCores: 0.1, stealCores: 0.02, quiet: true }, notes: ['same note'] },
    ];
    const m = mergeRuns(runs, 4);
    assert.equal(m.status, 'ok');
    assert.deepEqual(m.figures, { held: 1000, rss: 20, rate: 8 }); // the failed run's 999 and 990 are not measurements
    assert.deepEqual(m.spread, { held: { min: 1000, max: 1000, n: 3 }, rss: { min: 10, max: 30, n: 3 }, rate: { min: 7, max: 9, n: 2 } });
    assert.deepEqual(m.repeats!.map((r) => r.status), ['ok', 'ok', 'failed', 'ok']);
    assert.equal(m.repeats![1].figures.rss, 30);
    assert.deepEqual(m.noise, { outsideCores: 0.9, stealCores: 0.02, quiet: false });
    assert.deepEqual(m.notes, ['repeat 3 of 4 failed: server exited during the run (SIGKILL)', 'same note', 'repeat 2: only here']);
  });

  it('every run failed: the cell failed with the first cause; an interrupted cell says how many runs it has', () => {
    const m = mergeRuns([run(uws, {}, 'failed', 'first'), run(uws, {}, 'failed', 'second')], 3);
    assert.equal(m.status, 'failed');
    assert.equal(m.cause, 'first');
    assert.ok(m.notes!.includes('2 of 3 repeats ran (the lab was interrupted)'), JSON.stringify(m.notes));
  });
});

describe('wslab lab --repeat 3 (a real quick run)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wslab-repeat-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const lab = (...args: string[]) => spawnSync(process.execPath, [WSLAB, 'lab', '--scale', 'quick', '--scenarios', 'idle-hold', ...args], { encoding: 'utf8', timeout: 120_000 });

  it('runs every cell three times in rounds and reports medians with min–max and verdicts over the three', { timeout: 130_000 }, () => {
    const r = lab('--designs', 'uws,ws', '--repeat', '3', '--out', dir);
    assert.equal(r.status, 0, r.stderr);
    // rounds: every design once, then again (the progress lines on stderr, not a TTY)
    const order = [...r.stderr.matchAll(/\] idle-hold × (\S+ · \d\/3)/g)].map((m) => m[1]);
    const out = join(dir, readdirSync(dir)[0]);
    const res = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as LabResults;
    assert.equal(res.repeat, 3);
    const cells = res.scenarios[0].cells;
    const designs = cells.map((c) => c.design);
    assert.deepEqual([...designs].sort(), ['uws', 'ws']);
    assert.deepEqual(order, [1, 2, 3].flatMap((k) => designs.map((d) => `${d} · ${k}/3`)));
    for (const c of cells) {
      assert.equal(c.repeats?.length, 3, c.design);
      for (const [key, v] of Object.entries(c.figures)) {
        const vs: number[] = c.repeats!.map((x) => x.figures[key]).filter((x): x is number => typeof x === 'number');
        assert.equal(v, vs.length ? median(vs) : null, `${c.design} ${key}`);
        if (vs.length) assert.deepEqual(c.spread![key], { min: Math.min(...vs), max: Math.max(...vs), n: vs.length });
      }
      assert.ok(c.repeats!.every((x) => x.series.t.length > 0 && x.noise !== undefined), `${c.design}: each run keeps its series and noise`);
    }
    // the report's table shows a median with its min–max where the runs differ
    const md = readFileSync(join(out, 'report.md'), 'utf8');
    assert.match(md, /every cell 3 times \(figures: median \(min–max\) of the runs/);
    const rss = cells.find((c) => c.design === 'uws')!.spread!.rssPerConnectionBytes!;
    if (rss.min !== rss.max) assert.match(md, /^\| uws \| [\d,]+ \| \d+ \| -?[\d.]+ (?:B|KiB) \(-?[\d.]+ (?:B|KiB)–-?[\d.]+ (?:B|KiB)\) \|/m);
    // a measured verdict says it rests on three runs (or on their disagreement)
    const measuredClaims = res.claims.filter((c) => !c.evidence.startsWith('not measured'));
    assert.ok(measuredClaims.length > 0, JSON.stringify(res.claims));
    for (const c of measuredClaims) assert.match(c.evidence, /of 3 repeats|repeat 1 \w+: .*repeat 3 \w+: /, c.evidence);
    for (const c of res.claims.filter((x) => !measuredClaims.includes(x))) assert.doesNotMatch(c.evidence, /repeat/, c.evidence);
    // the html charts every run: a line per run of each design
    const html = readFileSync(join(out, 'index.html'), 'utf8');
    for (const label of ['uws · 1/3', 'uws · 3/3', 'ws · 2/3']) assert.ok(html.includes(`"label":"${label}"`), label);
    // wslab compare shows both spreads: the run against itself is within them
    const cmp = spawnSync(process.execPath, [WSLAB, 'compare', out, out, '--json'], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(cmp.status, 0, cmp.stderr);
    const f = (JSON.parse(cmp.stdout) as { figures: { design: string; figure: string; spreadA: unknown; spreadB: unknown; withinSpread: boolean | null }[] })
      .figures.find((x) => x.design === 'uws' && x.figure === 'rssPerConnectionBytes')!;
    assert.deepEqual([f.spreadA, f.spreadB, f.withinSpread], [rss, rss, true]);
    const text = spawnSync(process.execPath, [WSLAB, 'compare', out, out], { encoding: 'utf8', timeout: 20_000 }).stdout;
    assert.match(text, /^  uws +RSS per connection .*\+0\.0 % \(within spread\)$/m);
  });

  for (const [args, says] of [
    [['--repeat', '0'], /^wslab: --repeat: "0" must be a whole number from 1 to 20\n$/],
    [['--repeat', 'three'], /^wslab: --repeat: "three" must be a whole number from 1 to 20\n$/],
    [['--repeat', '2', '--profile', 'doctor'], /^wslab: --repeat does not apply with --profile/],
  ] as const) {
    it(`refuses ${args.join(' ')} in one line before any work`, () => {
      const r = lab(...args, '--out', join(dir, 'never'));
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, says);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.equal(r.stdout, '');
    });
  }
});
