import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { WSLAB } from '../../lab/processes.js';
import type { LabResults } from '../../lab/results.js';
import { DEFAULT_SCENARIOS } from '../../lab/scenarios/index.js';

/**
 * `wslab lab --scenarios reconnect-storm`: the lab restarts the server under 1,000 held idle clients, twice (clients
 * reconnecting in lockstep, then with backoff and full jitter), and reports how they came back. Opt-in: `npm start`
 * does not run it.
 */
describe('wslab lab --scenarios reconnect-storm', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wslab-lab-storm-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('restarts uws under 1,000 clients twice: every retry during the outage refused, the lockstep herd back within seconds, figures in the report', { timeout: 150_000 }, () => {
    const r = spawnSync(process.execPath, [WSLAB, 'lab', '--scale', 'quick', '--scenarios', 'reconnect-storm', '--designs', 'uws', '--out', dir],
      { encoding: 'utf8', timeout: 140_000 });
    assert.equal(r.status, 0, r.stderr);
    const out = join(dir, readdirSync(dir)[0]);
    const res = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as LabResults;
    const [cell] = res.scenarios.find((s) => s.id === 'reconnect-storm')!.cells;
    assert.equal(cell.status, 'ok', cell.cause);
    const f = cell.figures;
    // the server is down ≥ 1 s and lockstep clients first retry 1 s after the drop: each is refused at least once
    assert.ok((f.lockstepRefused ?? 0) >= 1000, `lockstep refused ${f.lockstepRefused}`);
    assert.equal(f.lockstepStillDown, 0);
    assert.ok(f.lockstepBackSec !== null && f.lockstepBackSec >= 0 && f.lockstepBackSec < 5, `lockstep all back ${f.lockstepBackSec} s after the restart`);
    assert.ok((f.jitterRefused ?? 0) > 0, `backoff refused ${f.jitterRefused}`);
    assert.ok(f.jitterStillDown !== null && (f.jitterStillDown === 0) === (f.jitterBackSec !== null), JSON.stringify(f));
    for (const k of ['lockstepConnectP99Ms', 'jitterConnectP99Ms', 'lockstepPeakCpuCores', 'lockstepPeakRssBytes', 'lockstepRejected'] as const) {
      assert.notEqual(f[k], null, k);
    }
    // the sampler followed the restarted server: 1,000 open, then none (or no answer while it was down), then 1,000 again
    const open = cell.series.open;
    const held = open.indexOf(1000);
    const down = open.findIndex((v, i) => i > held && (v === null || v === 0));
    assert.ok(held >= 0 && down > held && open.slice(down).includes(1000), `open series ${JSON.stringify(open)}`);
    const md = readFileSync(join(out, 'report.md'), 'utf8');
    assert.match(md, /## Reconnect storm \(`reconnect-storm`\)/);
    assert.match(md, /lockstep: all back after restart/);
  });

  it('is not among the scenarios a lab runs by default (npm start)', () => {
    assert.ok(!DEFAULT_SCENARIOS.includes('reconnect-storm'));
    assert.ok(DEFAULT_SCENARIOS.includes('idle-hold'));
  });
});
