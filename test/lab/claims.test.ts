import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CLAIM_TEXT, claimsLine, judge, missing, type JudgedCell } from '../../lab/claims.js';
import { targetDesign, variantOf } from '../../lab/designs.js';
import type { Machine, ScenarioResult, Verdict } from '../../lab/results.js';
import { emptySeries } from '../../lab/results.js';
import { CLAIM_IDS, SCENARIOS } from '../../lab/scenarios/index.js';

/**
 * Each scenario judges its own claims: measured-looking cells on either side of every threshold, and the verdict
 * each must give. Cells are labelled as the lab labels variants, and carry the traits the lab records for them.
 */
const MACHINE: Machine = { cpus: 2, cpuModel: 'test', memoryBytes: 24 * 2 ** 30, fdLimit: 20_000, node: 'v20', kernel: 'test', designs: {} };
type Figs = Record<string, number | null>;
const cell = (label: string, figures: Figs) => {
  const [design, ...flags] = label.split(' ');
  return { design: label, traits: variantOf(design, flags).traits, figures } satisfies JudgedCell<Figs>;
};
const verdictOf = (scenario: string, claim: string, cells: JudgedCell<Figs>[], machine = MACHINE): Verdict => {
  const c = SCENARIOS.get(scenario)!.judge(cells, machine).find((x) => x.id === claim);
  assert.ok(c, `${scenario} judges ${claim}`);
  return c.verdict;
};

/** A cell of a Python reference target (targets/python.yaml) of this model. */
const py = (model: 'loop' | 'threads' | 'processes', name: string, figures: Figs) => ({
  design: name, figures,
  traits: targetDesign({ name, model, runtime: 'python', cwd: '.', url: 'ws://127.0.0.1:1/', ready: { port: true }, readyTimeoutMs: 1000, speaks: ['wslab'] }).traits,
}) satisfies JudgedCell<Figs>;

/**
 * cpu-fanout's cells, uws, threads and (when given) threads --thread-per-task: the sleeping setting's switches per
 * request and CPU per 1000 requests, and the runnable sweep's switches and CPU ms per request at each K.
 */
type Fan = { sleeping: [number, number]; runnable?: Record<number, [number, number]> };
const fanout = (loop: Fan, threads: Fan, perTask?: Fan): JudgedCell<Figs>[] => ([['uws', loop], ['threads', threads], ...(perTask ? [['threads --thread-per-task', perTask]] : [])] as [string, Fan][])
  .map(([label, f]) => cell(label, {
    switchesPerRequest: f.sleeping[0], cpuMsPerKiloRequest: f.sleeping[1],
    ...Object.fromEntries(Object.entries(f.runnable ?? {}).flatMap(([k, [sw, cpu]]) => [[`switchesPerRequest@${k}`, sw], [`cpuMsPerRequest@${k}`, cpu]])),
  }));

interface Case { readonly name: string; readonly cells: JudgedCell<Figs>[]; readonly want: Verdict; readonly machine?: Machine }
const table: Record<string, Record<string, Case[]>> = {
  'idle-hold': {
    'thread-per-connection-memory': [
      { name: '×10 the memory, a thread each', want: 'confirmed', cells: [cell('uws', { rssPerConnectionBytes: 1000, kernelPerConnectionBytes: 0, threadsPerConnection: 0 }), cell('threads', { rssPerConnectionBytes: 9000, kernelPerConnectionBytes: 1000, threadsPerConnection: 1 })] },
      { name: '×9.99', want: 'inconclusive', cells: [cell('uws', { rssPerConnectionBytes: 1000, threadsPerConnection: 0 }), cell('threads', { rssPerConnectionBytes: 9990, threadsPerConnection: 1 })] },
      { name: 'under ×2', want: 'refuted', cells: [cell('uws', { rssPerConnectionBytes: 1000, threadsPerConnection: 0 }), cell('threads', { rssPerConnectionBytes: 1999, threadsPerConnection: 1 })] },
      { name: 'no thread per connection', want: 'refuted', cells: [cell('uws', { rssPerConnectionBytes: 1000, threadsPerConnection: 0 }), cell('threads', { rssPerConnectionBytes: 50_000, threadsPerConnection: 0.49 })] },
      { name: 'only a pool measured', want: 'inconclusive', cells: [cell('uws', { rssPerConnectionBytes: 1000, threadsPerConnection: 0 }), cell('threads --pool 64', { rssPerConnectionBytes: 50_000, threadsPerConnection: 1 })] },
    ],
    'loop-unlimited-connections': [
      { name: 'all held, no threads', want: 'confirmed', cells: [cell('uws', { held: 10_000, failed: 0, rssPerConnectionBytes: 900, threadsPerConnection: 0.009 })] },
      { name: 'one failed', want: 'inconclusive', cells: [cell('uws', { held: 9_999, failed: 1, rssPerConnectionBytes: 900, threadsPerConnection: 0 })] },
      { name: 'a thread per 100', want: 'inconclusive', cells: [cell('uws', { held: 10_000, failed: 0, rssPerConnectionBytes: 900, threadsPerConnection: 0.01 })] },
      { name: 'the standing loop not measured (ws only)', want: 'inconclusive', cells: [cell('ws', { held: 10_000, failed: 0, rssPerConnectionBytes: 900, threadsPerConnection: 0 })] },
    ],
    'tasks-vs-threads-scale': [
      { name: 'pid_max caps threads', want: 'confirmed', cells: [cell('uws', { rssPerConnectionBytes: 900, threadsPerConnection: 0 }), cell('threads', { rssPerConnectionBytes: 26_000, threadsPerConnection: 1 })] },
      { name: 'the same cost each, memory-bound', want: 'refuted', machine: { ...MACHINE, memoryBytes: 100_000_000 }, cells: [cell('uws', { rssPerConnectionBytes: 1000, threadsPerConnection: 0 }), cell('threads', { rssPerConnectionBytes: 1000, threadsPerConnection: 1 })] },
    ],
  },
  'blocking-call': {
    'blocking-call': [
      { name: 'every loop stalled ≥ 80 %, threads < 25 %', want: 'confirmed', cells: [cell('uws', { healthyRttP99Ms: 1600 }), cell('ws', { healthyRttP99Ms: 2100 }), cell('threads', { healthyRttP99Ms: 499 })] },
      { name: 'one loop not stalled', want: 'refuted', cells: [cell('uws', { healthyRttP99Ms: 2000 }), cell('ws', { healthyRttP99Ms: 1599 }), cell('threads', { healthyRttP99Ms: 10 })] },
      { name: 'threads slowed too', want: 'inconclusive', cells: [cell('uws', { healthyRttP99Ms: 2000 }), cell('threads', { healthyRttP99Ms: 500 })] },
      { name: 'no threads cell', want: 'inconclusive', cells: [cell('uws', { healthyRttP99Ms: 2000 })] },
    ],
  },
  'slow-backend': {
    'slow-backend-queueing': [
      { name: 'the pool ×2 the loop', want: 'confirmed', cells: [cell('uws', { slowP99Ms: 500, fastP99Ms: 52 }), cell('threads', { slowP99Ms: 501 }), cell('threads --pool 64', { slowP99Ms: 1000 })] },
      { name: '×1.2', want: 'refuted', cells: [cell('uws', { slowP99Ms: 500 }), cell('threads --pool 64', { slowP99Ms: 600 })] },
      { name: '×1.5', want: 'inconclusive', cells: [cell('uws', { slowP99Ms: 500 }), cell('threads --pool 64', { slowP99Ms: 750 })] },
      { name: 'no pool: a thread per connection stands in', want: 'refuted', cells: [cell('uws', { slowP99Ms: 500 }), cell('threads', { slowP99Ms: 505 })] },
    ],
  },
  'mixed-sizes': {
    'mixed-sizes': [
      { name: 'loop ×2 threads', want: 'confirmed', cells: [cell('uws', { smallP99Ms: 20 }), cell('threads', { smallP99Ms: 10 })] },
      { name: '×1.2', want: 'refuted', cells: [cell('uws', { smallP99Ms: 12 }), cell('threads', { smallP99Ms: 10 })] },
      { name: '×1.9', want: 'inconclusive', cells: [cell('uws', { smallP99Ms: 19 }), cell('threads', { smallP99Ms: 10 })] },
    ],
  },
  'cpu-fanout': {
    // the seed's two settings, each against the loop: runnable contention at its largest K, and a thread per task;
    // threads pay in one where their switches per request are ≥ ×3 the loop's and their CPU per request ≥ ×1.2
    'context-switch': [
      { name: 'threads pay in both: exactly ×3 the switches and ×1.2 the CPU at K = 1000, a thread per task far more', want: 'confirmed', cells: fanout(
        { sleeping: [0.3, 40], runnable: { 2: [0.1, 1], 1000: [0.25, 1.25] } },
        { sleeping: [1.3, 60], runnable: { 2: [0.9, 1], 1000: [0.75, 1.5] } },
        { sleeping: [2.4, 120] }) },
      { name: 'in neither: the runnable threads cost no CPU, the task threads switch under ×3', want: 'refuted', cells: fanout(
        { sleeping: [0.3, 40], runnable: { 1000: [0.1, 1] } },
        { sleeping: [1.3, 60], runnable: { 1000: [0.5, 1.19] } },
        { sleeping: [0.89, 120] }) },
      { name: 'in one only: a thread per task pays, the runnable threads do not', want: 'inconclusive', cells: fanout(
        { sleeping: [0.3, 40], runnable: { 1000: [0.1, 1] } },
        { sleeping: [1.3, 60], runnable: { 1000: [0.29, 2] } },
        { sleeping: [2.4, 120] }) },
      { name: 'the contention judged at the largest K, not at a smaller one that pays', want: 'inconclusive', cells: fanout(
        { sleeping: [0.3, 40], runnable: { 2: [0.1, 1], 100: [0.1, 1], 1000: [0.1, 1] } },
        { sleeping: [1.3, 60], runnable: { 2: [0.9, 2], 100: [0.9, 2], 1000: [0.2, 1] } },
        { sleeping: [2.4, 120] }) },
      { name: 'no thread-per-task cell', want: 'inconclusive', cells: fanout({ sleeping: [0.3, 40], runnable: { 1000: [0.1, 1] } }, { sleeping: [1.3, 60], runnable: { 1000: [1, 2] } }) },
      { name: 'the sleeping threads alone (no sweep) decide nothing', want: 'inconclusive', cells: fanout({ sleeping: [0.3, 40] }, { sleeping: [3, 60] }, { sleeping: [2.4, 120] }) },
    ],
  },
  'cpu-bound': {
    'cpu-bound-processes': [
      { name: 'cores workers ×1.4', want: 'confirmed', cells: [cell('uws', { requestsPerSec: 200 }), cell('cluster --workers 2', { requestsPerSec: 280 }), cell('cluster --workers 3', { requestsPerSec: 290 })] },
      { name: '×1.1', want: 'refuted', cells: [cell('uws', { requestsPerSec: 200 }), cell('cluster --workers 2', { requestsPerSec: 220 })] },
      { name: '×1.3', want: 'inconclusive', cells: [cell('uws', { requestsPerSec: 200 }), cell('cluster --workers 2', { requestsPerSec: 260 })] },
      { name: 'only other worker counts', want: 'inconclusive', cells: [cell('uws', { requestsPerSec: 200 }), cell('cluster --workers 3', { requestsPerSec: 400 })] },
      { name: 'a Python loop does not stand in for ours', want: 'inconclusive', cells: [py('loop', 'py-asyncio', { requestsPerSec: 100 }), cell('cluster --workers 2', { requestsPerSec: 400 })] },
    ],
    'gil-threads': [
      { name: 'threads on one core, processes ×1.6 the cores', want: 'confirmed', cells: [py('loop', 'py-asyncio', { serverCpuCores: 0.85, requestsPerSec: 1.5 }), py('threads', 'py-threads', { serverCpuCores: 1.1, requestsPerSec: 0 }), py('processes', 'py-processes', { serverCpuCores: 1.36, requestsPerSec: 2.4 })] },
      { name: 'threads ran in parallel', want: 'refuted', cells: [py('loop', 'py-asyncio', { serverCpuCores: 0.8 }), py('threads', 'py-threads', { serverCpuCores: 1.3 }), py('processes', 'py-processes', { serverCpuCores: 1.6 })] },
      { name: 'processes did not help', want: 'refuted', cells: [py('loop', 'py-asyncio', { serverCpuCores: 1 }), py('threads', 'py-threads', { serverCpuCores: 1 }), py('processes', 'py-processes', { serverCpuCores: 1.29 })] },
      { name: 'processes ×1.5', want: 'inconclusive', cells: [py('loop', 'py-asyncio', { serverCpuCores: 1 }), py('threads', 'py-threads', { serverCpuCores: 1 }), py('processes', 'py-processes', { serverCpuCores: 1.5 })] },
      { name: 'threads ×1.4', want: 'inconclusive', cells: [py('loop', 'py-asyncio', { serverCpuCores: 1 }), py('threads', 'py-threads', { serverCpuCores: 1.4 }), py('processes', 'py-processes', { serverCpuCores: 1.8 })] },
      { name: 'our designs say nothing of Python', want: 'inconclusive', cells: [cell('uws', { serverCpuCores: 1 }), cell('threads', { serverCpuCores: 1.9 }), cell('cluster --workers 2', { serverCpuCores: 1.9 })] },
    ],
  },
  'slow-client-dos': {
    'slow-client-dos': [
      { name: 'loops served, the pool taken', want: 'confirmed', cells: [cell('uws', { healthyServedRate: 0.99, healthyRttP99Ms: 49 }), cell('threads --pool 256', { healthyConnectRate: 0.09, unavailableSec: 3, attackersHeldAtEnd: 0, recoverySec: 5 })] },
      { name: 'the pool kept serving', want: 'refuted', cells: [cell('uws', { healthyServedRate: 1, healthyRttP99Ms: 5 }), cell('threads --pool 256', { healthyConnectRate: 0.9 })] },
      { name: 'a loop fell below 90 %', want: 'refuted', cells: [cell('uws', { healthyServedRate: 0.89, healthyRttP99Ms: 5 }), cell('threads --pool 256', { healthyConnectRate: 0 })] },
      { name: 'a loop slow at p99', want: 'inconclusive', cells: [cell('uws', { healthyServedRate: 1, healthyRttP99Ms: 50 }), cell('threads --pool 256', { healthyConnectRate: 0 })] },
      { name: 'only the naked pool', want: 'inconclusive', cells: [cell('uws', { healthyServedRate: 1, healthyRttP99Ms: 5 }), cell('threads --pool 256 --no-defenses', { healthyConnectRate: 0 })] },
    ],
  },
  'proxy-defenses': {
    'proxy-shield': [
      { name: 'a hardened front cuts what the design held, none worse', want: 'confirmed', cells: [cell('uws', { slowlorisHeld: 100, slowlorisCutSec: null }),
        cell('uws --via nginx --via-profile hardened', { slowlorisHeld: 0, slowlorisCutSec: 5, slowlorisByProxy: 1 })] },
      { name: 'a front holds what the design cut', want: 'refuted', cells: [cell('uws', { slowlorisHeld: 0, slowlorisCutSec: 8.7 }),
        cell('uws --via nginx --via-profile hardened', { slowlorisHeld: 0, slowlorisCutSec: 5, slowlorisByProxy: 1 }), cell('uws --via nginx', { slowlorisHeld: 100 })] },
      { name: 'cut over 1.5× later (+1 s)', want: 'refuted', cells: [cell('uws', { 'slow-readerHeld': 0, 'slow-readerCutSec': 7, slowlorisHeld: 100 }),
        cell('uws --via haproxy', { 'slow-readerHeld': 0, 'slow-readerCutSec': 11.6, 'slow-readerByProxy': 0, slowlorisHeld: 0, slowlorisCutSec: 5, slowlorisByProxy: 1 })] },
      { name: 'cut 1.5× later (+1 s) exactly: not worse', want: 'confirmed', cells: [cell('uws', { 'slow-readerHeld': 0, 'slow-readerCutSec': 7, slowlorisHeld: 100 }),
        cell('uws --via haproxy', { 'slow-readerHeld': 0, 'slow-readerCutSec': 11.5, 'slow-readerByProxy': 0, slowlorisHeld: 0, slowlorisCutSec: 5, slowlorisByProxy: 1 })] },
      { name: 'it passes everything to the design and cuts nothing itself', want: 'refuted', cells: [cell('uws', { slowlorisHeld: 0, slowlorisCutSec: 8 }),
        cell('uws --via nginx', { slowlorisHeld: 0, slowlorisCutSec: 8.5, slowlorisByProxy: 0 })] },
      { name: 'only the design alone', want: 'inconclusive', cells: [cell('uws', { slowlorisHeld: 0, slowlorisCutSec: 8 })] },
    ],
  },
};

describe('claims: each scenario judges its own', () => {
  for (const [scenario, claims] of Object.entries(table)) {
    for (const [claim, cases] of Object.entries(claims)) {
      for (const c of cases) {
        it(`${scenario} → ${claim}: ${c.name} → ${c.want}`, () => assert.equal(verdictOf(scenario, claim, c.cells, c.machine), c.want));
      }
    }
  }

  it('every claim is judged by exactly one scenario, and the table covers each; a default run covers all but the opt-in scenarios\' claims', () => {
    assert.deepEqual([...CLAIM_IDS], Object.keys(CLAIM_TEXT).filter((id) => id !== 'proxy-shield'));
    for (const id of Object.keys(CLAIM_TEXT) as (keyof typeof CLAIM_TEXT)[]) {
      const by = [...SCENARIOS.values()].filter((s) => s.claims.includes(id)).map((s) => s.id);
      assert.equal(by.length, 1, `${id}: judged by ${by.join(', ')}`);
      assert.ok(table[by[0]]?.[id]?.length, `${id}: cases in this table`);
    }
  });

  it('a scenario that did not run leaves its claims inconclusive, saying so; verdicts come in claim order', () => {
    const ran: ScenarioResult = { id: 'mixed-sizes', title: '', question: '', method: '', columns: [], cells: [
      { ...cell('uws', { smallP99Ms: 30 }), status: 'ok', series: emptySeries() },
      { ...cell('threads', { smallP99Ms: 10 }), status: 'ok', series: emptySeries() },
      { ...cell('ws', { smallP99Ms: 1 }), status: 'failed', cause: 'crashed', series: emptySeries() },
    ] };
    const claims = judge([...SCENARIOS.values()], [ran], MACHINE);
    assert.deepEqual(claims.map((c) => c.id), Object.keys(CLAIM_TEXT));
    for (const c of claims) {
      if (c.id === 'mixed-sizes') assert.equal(c.verdict, 'confirmed');
      else { assert.equal(c.verdict, 'inconclusive', c.id); assert.match(c.evidence, /^not measured: scenario /); }
    }
  });
});

describe('the lab\'s last line', () => {
  it('counts claims decided, inconclusive and not measured apart (not "9/9 judged" when 7 were never measured)', () => {
    const text = (id: string) => CLAIM_TEXT[id as keyof typeof CLAIM_TEXT];
    const claims = [
      { id: 'a', claim: text('gil-threads'), verdict: 'confirmed' as const, evidence: 'x' },
      { id: 'b', claim: '', verdict: 'inconclusive' as const, evidence: 'the spread crosses the threshold' },
      missing('gil-threads', 'cpu-bound', 'py-threads'),
    ];
    assert.equal(claimsLine(claims, 5), '1 of 5 claims decided (1 confirmed, 0 refuted, 1 inconclusive, 3 not measured)');
  });
});
