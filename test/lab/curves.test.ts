import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseThreshold } from '../../lab/compare.js';
import { acrossLine, kneeOf, pointKey, sweepLine } from '../../lab/curves.js';
import { variantOf } from '../../lab/designs.js';
import { emptySeries, RESULTS_SCHEMA, type Cell, type LabResults, type Machine } from '../../lab/results.js';
import { SCENARIOS } from '../../lab/scenarios/index.js';

/**
 * Curves and their knees: a sweep's points are figures of their own (`<figure>@<x>`), the scenario turns its cells
 * into lines and names where each bends, with the numbers around the bend.
 */
const MACHINE: Machine = { cpus: 2, cpuModel: 'test', memoryBytes: 24 * 2 ** 30, fdLimit: 20_000, node: 'v20', kernel: 'test', designs: {} };
const cell = (label: string, figures: Record<string, number | null>, spread?: Cell['spread']): Cell => {
  const [design, ...flags] = label.split(' ');
  return { design: label, traits: variantOf(design, flags).traits, status: 'ok', figures, series: emptySeries(), ...(spread ? { spread } : {}) };
};
/** A sweep of `key` as figures: x → y. */
const sweep = (key: string, points: Record<number, number | null>): Record<string, number | null> =>
  Object.fromEntries(Object.entries(points).map(([x, y]) => [pointKey(key, Number(x)), y]));

describe('curves', () => {
  it('a sweep is its cell\'s point figures in x order, unmeasured points left out, the --repeat spread kept', () => {
    const c = cell('uws', sweep('rttP99Ms', { 50: 51, 150: null, 250: 260 }), { 'rttP99Ms@50': { min: 50, max: 55, n: 3 }, 'rttP99Ms@250': { min: 260, max: 260, n: 3 } });
    assert.deepEqual(sweepLine(c, 'rttP99Ms', [50, 150, 250]).points, [{ x: 50, y: 51, min: 50, max: 55 }, { x: 250, y: 260 }]);
  });

  it('a line across variants takes x from each cell and sorts by it', () => {
    const cells = [cell('cluster --workers 3', { r: 3 }), cell('cluster --workers 1', { r: 1 }), cell('cluster --workers 2', { r: null })];
    assert.deepEqual(acrossLine('procs', cells, (c) => c.traits.workers, 'r').points, [{ x: 1, y: 1 }, { x: 3, y: 3 }]);
  });

  it('the knee is the first point that bends, with the one before it; none when nothing does', () => {
    const pts = [{ x: 1, y: 1 }, { x: 2, y: 2 }, { x: 3, y: 9 }];
    assert.deepEqual(kneeOf(pts, (p) => p.y >= 2 * p.x), { at: { x: 3, y: 9 }, before: { x: 2, y: 2 } });
    assert.deepEqual(kneeOf(pts, (p) => p.y >= 1), { at: { x: 1, y: 1 } });
    assert.equal(kneeOf(pts, () => false), null);
  });

  it('a point is a figure for `wslab compare --threshold`, whole or decimal x, a design label with spaces or dots', () => {
    const run = (cells: Cell[]): LabResults => ({
      schema: RESULTS_SCHEMA, startedAt: '', finishedAt: '', durationSec: 1, scale: 'full', machine: MACHINE, claims: [], interrupted: null,
      scenarios: [{ id: 'mixed-sizes', title: '', question: '', method: '', columns: [], cells }],
    });
    const r = run([cell('threads --pool 64', sweep('smallP99Ms', { 0: 4, 0.27: 5 })), { ...cell('uws', sweep('smallP99Ms', { 250: 9 })), design: 'my.server' }]);
    assert.deepEqual({ ...parseThreshold('mixed-sizes.threads --pool 64.smallP99Ms@0.27<+10%', r, r) },
      { expression: 'mixed-sizes.threads --pool 64.smallP99Ms@0.27<+10%', scenario: 'mixed-sizes', design: 'threads --pool 64', figure: 'smallP99Ms@0.27', op: '<', kind: 'relative', value: 0.1 });
    assert.equal(parseThreshold('mixed-sizes.my.server.smallP99Ms@250>=1', r, r).design, 'my.server');
    assert.throws(() => parseThreshold('mixed-sizes.uws.smallP99Ms@1<1', r, r), /no design "uws"|no figure "smallP99Ms@1"/);
  });

  it('slow-backend: each design\'s knee (RTT p99 ≥ ×2 the wait) against queueing theory\'s, a loop without one', () => {
    const s = SCENARIOS.get('slow-backend')!;
    const [curve] = s.curves!([
      cell('uws', sweep('rttP99Ms', { 50: 53, 150: 153, 250: 254, 350: 356, 500: 506 })),
      cell('threads', sweep('rttP99Ms', { 50: 52, 150: 160, 250: 1204, 350: 2900, 500: 5100 })),
      cell('threads --pool 64', sweep('rttP99Ms', { 50: 52, 150: 299, 250: 1100 })),
    ], 'default', MACHINE);
    assert.equal(curve.id, 'rtt-p99');
    assert.deepEqual(curve.lines.map((l) => [l.design, l.points.length]), [['uws', 5], ['threads', 5], ['threads --pool 64', 3]]);
    assert.match(curve.knees[0], /^uws: no knee up to 500 ms \(RTT p99 at most ×1\.1 the wait; a loop waits on timers: no knee expected\)$/);
    // default: 50 clients, a request each every 200 ms = 250 req/s; a thread per connection serves one connection each
    assert.equal(curve.knees[1], 'threads: knee at 250 ms (RTT p99 1204 ms; at 150 ms: 160 ms; predicted 200 ms = the time between a connection\'s requests, each worker keeping its connection)');
    // 299 < 2 × 150: not yet bent; a pool of 64 serves the 50 connections, one worker each
    assert.match(curve.knees[2], /^threads --pool 64: knee at 250 ms .*predicted 200 ms = .*; pool size ÷ arrival rate, where a pool taking any connection's requests would bend, is 256 ms\)$/);
    // full: 200 clients at 1000 req/s, more than the pool's 64 workers
    const [full] = s.curves!([cell('threads --pool 64', sweep('rttP99Ms', { 200: 256, 250: 4176 }))], 'full', MACHINE);
    assert.match(full.knees[0], /is 64 ms; 136 of the 200 connections wait for a worker, unanswered\)$/);
  });

  it('cpu-bound: the knee is the last worker count that still added 10 %, named against the cores', () => {
    const s = SCENARIOS.get('cpu-bound')!;
    const cells = [cell('uws', { requestsPerSec: 200 }), cell('cluster --workers 1', { requestsPerSec: 190 }), cell('cluster --workers 2', { requestsPerSec: 350 }),
      cell('cluster --workers 3', { requestsPerSec: 370 }), cell('cluster --workers 4', { requestsPerSec: 340 })];
    const [curve] = s.curves!(cells, 'full', MACHINE);
    assert.deepEqual(curve.lines[0].points.map((p) => p.x), [1, 2, 3, 4]);
    assert.deepEqual(curve.lines[1], { design: 'uws (one loop)', points: [{ x: 1, y: 200 }] });
    assert.equal(curve.knees[0], 'knee at 2 workers (this machine has 2 cores): going to 3 adds under 10 %; gain per added worker 1→2 ×1.8, 2→3 ×1.1, 3→4 ×0.9; the swarm shares the cores');
    const none = s.curves!([cell('cluster --workers 1', { requestsPerSec: 100 }), cell('cluster --workers 2', { requestsPerSec: 190 })], 'default', MACHINE);
    assert.match(none[0].knees[0], /^no knee up to 2 workers \(this machine has 2 cores\): each added ≥ 10 %/);
    assert.deepEqual(s.curves!([cell('cluster --workers 2', { requestsPerSec: 190 })], 'default', MACHINE), [], 'one point is no curve');
  });

  it('idle-hold: the server\'s RSS over the connections it holds while they open, its slope per connection, the limit', () => {
    const s = SCENARIOS.get('idle-hold')!;
    const MiB = 2 ** 20;
    const series = { ...emptySeries(), t: [0, 0.5, 1, 1.5, 2, 2.5, 3], open: [0, 2000, 5000, 8000, 10_000, 10_000, 3000],
      rssBytes: [100, 102, 105, 108, 110, 110, 90].map((m) => m * MiB) };
    const held = { ...cell('uws', { held: 10_000 }), series };
    const stopped = { ...cell('threads', { held: 8000 }), series: { ...series, open: [0, 2000, 5000, 8000, 8000, 8000, 0] } };
    const [curve] = s.curves!([held, stopped], 'default', MACHINE);
    assert.deepEqual(curve.lines[0].points, [{ x: 2000, y: 2 }, { x: 5000, y: 5 }, { x: 8000, y: 8 }, { x: 10_000, y: 10 }], 'the teardown left out');
    assert.equal(curve.knees[0], 'uws: 1.0 KiB per connection over 4 samples up to 10,000 open; no limit reached up to the 10,000 asked');
    assert.equal(curve.knees[1], 'threads: 1.0 KiB per connection over 3 samples up to 8,000 open; the ramp stopped at 8,000 of 10,000: its limit here');
  });

  it('blocking-call at full: from which block length the others wait it out (p99 ≥ 80 % of it); none below full', () => {
    const s = SCENARIOS.get('blocking-call')!;
    const [curve] = s.curves!([
      cell('uws', sweep('healthyRttP99Ms', { 100: 60, 250: 230, 500: 480, 1000: 990, 2000: 1990 })),
      cell('threads', sweep('healthyRttP99Ms', { 100: 9, 250: 10, 500: 11, 1000: 9, 2000: 12 })),
    ], 'full', MACHINE);
    assert.equal(curve.knees[0], 'uws: the others wait out the block from 250 ms on (p99 ≥ 80 % of it; 100 ms: 60 ms, 250 ms: 230 ms, 500 ms: 480 ms, 1000 ms: 990 ms, 2000 ms: 1990 ms)');
    assert.match(curve.knees[1], /^threads: the others never wait out the block \(100 ms: 9 ms, /);
    assert.deepEqual(s.curves!([cell('uws', sweep('healthyRttP99Ms', { 2000: 1990 }))], 'default', MACHINE), [], 'one block below full');
  });

  it('mixed-sizes at full: from which share of large requests the small ones are held up (p99 ×2 theirs without)', () => {
    const s = SCENARIOS.get('mixed-sizes')!;
    // 300 small clients every 100 ms and 0, 1, 2, 4, 8 large ones every 250 ms: 0, 0.13, 0.27, 0.53, 1.06 % large
    const [curve] = s.curves!([
      cell('uws', sweep('smallP99Ms', { 0: 5, 0.13: 8, 0.27: 30, 0.53: 90, 1.06: 160 })),
      cell('threads', sweep('smallP99Ms', { 0: 4, 0.13: 5, 0.27: 5, 0.53: 6, 1.06: 7 })),
    ], 'full', MACHINE);
    assert.deepEqual(curve.lines[0].points.map((p) => p.x), [0, 0.13, 0.27, 0.53, 1.06]);
    assert.match(curve.knees[0], /^uws: small requests held up from 0\.27 % large on \(p99 ≥ ×2 the 5 ms without; 0 %: 5 ms, /);
    assert.match(curve.knees[1], /^threads: small requests never held up \(p99 under ×2 the 4 ms without; /);
  });

  it('cpu-fanout: from which K each threads design pays (switches ×3 and CPU ×1.2 the loop\'s) on the runnable sweep', () => {
    const s = SCENARIOS.get('cpu-fanout')!;
    const at = (points: Record<number, [number, number, number]>) => ({
      ...sweep('switchesPerRequest', Object.fromEntries(Object.entries(points).map(([k, v]) => [k, v[0]]))),
      ...sweep('involuntaryPerRequest', Object.fromEntries(Object.entries(points).map(([k, v]) => [k, v[1]]))),
      ...sweep('cpuMsPerRequest', Object.fromEntries(Object.entries(points).map(([k, v]) => [k, v[2]]))),
    });
    const curves = s.curves!([
      cell('uws', at({ 2: [0.1, 0.01, 1], 100: [0.1, 0.01, 1], 1000: [0.1, 0.01, 1] })),
      cell('threads', at({ 2: [0.9, 0.8, 1], 100: [0.3, 0.25, 1.1], 1000: [0.5, 0.4, 1.3] })),
      cell('threads --thread-per-task', at({ 2: [2, 1, 1.3], 100: [2, 1, 1.3], 1000: [0.2, 0.1, 2] })),
    ], 'default', MACHINE);
    assert.deepEqual(curves.map((c) => c.id), ['runnable-involuntary', 'runnable-cpu'], 'no throughput or working-thread points: no such curves');
    const [threads, perTask] = curves[1].knees;
    assert.match(threads, /^threads pays from K = 1000 \(CPU per request shown; vs uws: K=2 switches ×9\.0, CPU ×1\.0; K=100 switches ×3\.0, CPU ×1\.1; K=1000 switches ×5\.0, CPU ×1\.3\)$/);
    assert.match(perTask, /^threads --thread-per-task pays from K = 2 /);
  });
});
