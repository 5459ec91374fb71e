import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { rateSteps } from '../../lab/hold-max.js';
import { WSLAB } from '../../lab/processes.js';
import type { LabResults, Machine } from '../../lab/results.js';
import { judgeMax } from '../../lab/scenarios/idle-hold.js';

/**
 * `wslab lab --scale max`, small: the same cluster-of-loops hold as the million (lab/hold-max.ts) at 30,000
 * connections, so that what the million reports — the server's own count, the aggregated scrape's time, CPU per
 * connection on both sides, the loop claim judged from what was held — is checked on every CI run.
 */
describe('wslab lab --scale max (30,000 connections)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wslab-lab-max-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('judges loop-unlimited-connections from what the cluster held, counted by its own gauge, with the ramp\'s CPU per connection', { timeout: 120_000 }, () => {
    const r = spawnSync(process.execPath, [WSLAB, 'lab', '--scenarios', 'idle-hold', '--scale', 'max', '--connections', '30000', '--hold', '2s', '--out', dir],
      { encoding: 'utf8', timeout: 110_000 });
    assert.equal(r.status, 0, r.stderr);
    const res = JSON.parse(readFileSync(join(dir, readdirSync(dir)[0], 'results.json'), 'utf8')) as LabResults;
    const cell = res.scenarios[0].cells[0];
    assert.equal(cell.status, 'ok', JSON.stringify(cell));
    const f = cell.figures;
    assert.equal(f.held, 30_000);
    assert.equal(f.serverOpenScrapedAtHold, 30_000, 'the primary\'s aggregated gauge equals what the swarm held');
    assert.equal(typeof f.serverScrapeMs, 'number');
    assert.ok(f.serverScrapeMs! < 1000, `aggregated scrape ${f.serverScrapeMs} ms`);
    // a loopback connection costs both sides some CPU; none costs a whole millisecond on an idle-connection ramp
    for (const k of ['serverCpuPerConnectionUs', 'swarmCpuPerConnectionUs'] as const) assert.ok(f[k]! > 0 && f[k]! < 5000, `${k} ${f[k]}`);
    assert.ok(f.serverThreads! > 0);
    assert.ok(cell.notes?.some((n) => /^the ramp, from the swarm's start to all held .* open rate per 30 s [\d.]+k/.test(n)), JSON.stringify(cell.notes));
    const loop = res.claims.find((c) => c.id === 'loop-unlimited-connections')!;
    assert.equal(loop.verdict, 'confirmed', loop.evidence);
    assert.match(loop.evidence, /held 30,000 of 30,000 \(0 failed\); the server's own gauge read 30,000;/);
  });
});

describe('lab/hold-max: the figures of a wide hold', () => {
  const machine: Machine = { cpus: 2, cpuModel: 'x', memoryBytes: 24 * 2 ** 30, fdLimit: 20_000, node: 'v20', kernel: 'k', designs: {} };
  const cell = (over: Record<string, number | null> = {}) => ({
    design: 'cluster --workers 55', traits: { model: 'processes' as const, representative: true },
    figures: { target: 1_000_000, held: 1_000_000, failed: 0, serverWorkers: 55, serverOpenScrapedAtHold: 1_000_000, serverThreads: 616,
      serverRssPerConnectionBytes: 820, kernelSlabPerConnectionBytes: 10_370, boxPerConnectionBytes: 9094, serverMaxFdsPerProcess: 18_412, ...over },
  });
  const loop = (over?: Record<string, number | null>) => judgeMax(cell(over) as never, machine).find((c) => c.id === 'loop-unlimited-connections')!;

  it('confirms only when every connection was held and the server counted them itself', () => {
    assert.equal(loop().verdict, 'confirmed');
    assert.equal(loop({ serverOpenScrapedAtHold: null }).verdict, 'inconclusive');
    assert.match(loop({ serverOpenScrapedAtHold: null }).evidence, /gauge read nothing \(scrape failed\)/);
    assert.equal(loop({ serverOpenScrapedAtHold: 999_999 }).verdict, 'inconclusive');
    assert.match(loop({ serverOpenScrapedAtHold: 999_999 }).evidence, /read 999,999 against the swarm's 1,000,000/);
    assert.equal(loop({ held: 999_000, failed: 1000, serverOpenScrapedAtHold: 999_000 }).verdict, 'inconclusive');
    assert.equal(loop({ serverThreads: 20_000 }).verdict, 'inconclusive', 'a thread per 50 connections is no loop');
    assert.match(loop().evidence, /55 loops held 1,000,000 of 1,000,000 .* 616 threads \(0\.0006 per connection\).* take 55 processes/);
  });

  it('open rate per step from the pairs open on the box', () => {
    const t = [0, 10, 20, 30, 40, 50, 60, 65];
    const pairs = [null, 0, 50_000, 90_000, null, 200_000, 240_000, 250_000];
    // 10 → 40 s: the samples at 10 and 30 s (40 s read nothing); 40 → 65 s: those at 30 and 65 s
    assert.deepEqual(rateSteps(t, pairs, 10, 65, 30), [4500, 4571]);
    assert.deepEqual(rateSteps(t, pairs, 10, 10, 30), []);
  });
});
