import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { WSLAB } from '../../lab/processes.js';
import type { LabResults } from '../../lab/results.js';
import { READER_RSS_CEILING } from '../../lab/scenarios/slow-client-dos.js';

/**
 * Safe defaults (issue 21): the default scale's slow readers against `ws --no-defenses` (no send cap) grew the server
 * to 3.94 GiB; now its growth is shown up to the lab's 1 GiB ceiling and the readers are stopped there, with the rate
 * it was growing at. The defended `ws` beside it cuts its readers (backpressure) and never comes near the ceiling.
 */
describe('slow readers against a naked loop stop at the lab\'s RSS ceiling', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wslab-ceiling-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('ws --no-defenses: stopped at 1 GiB with "unbounded: +X MiB/s", peak under 2 GiB; ws with its send cap: not stopped', { timeout: 150_000 }, () => {
    const r = spawnSync(process.execPath, [WSLAB, 'lab', '--scale', 'default', '--scenarios', 'slow-client-dos', '--designs', 'ws', '--out', dir],
      { encoding: 'utf8', timeout: 140_000 });
    assert.equal(r.status, 0, r.stderr);
    const res = JSON.parse(readFileSync(join(dir, readdirSync(dir)[0], 'results.json'), 'utf8')) as LabResults;
    const cells = res.scenarios[0].cells;
    const peak = (design: string) => Math.max(...cells.find((c) => c.design === design)!.series.rssBytes.filter((v): v is number => v !== null));
    const naked = cells.find((c) => c.design === 'ws --no-defenses')!;
    assert.equal(naked.status, 'ok', naked.cause);
    const after = naked.figures.readerStoppedAfterSec;
    assert.ok(typeof after === 'number' && after > 0 && after < 10, `stopped ${after} s into the slow readers (their ramp and 3 s hold)`);
    // the ceiling's /proc watch read ≥ 1 GiB when it stopped the readers; the 0.5 s samples may miss that moment
    const atStop = naked.figures.readerRssAtStopBytes;
    assert.ok(typeof atStop === 'number' && atStop >= READER_RSS_CEILING && atStop < 2 * 1024 ** 3, `RSS at the stop ${atStop} B`);
    assert.ok(peak(naked.design) < 2 * 1024 ** 3, `sampled peak ${peak(naked.design)} B`);
    assert.ok((naked.figures.readerRssSlopeMiBps ?? 0) > 50, `growing at ${naked.figures.readerRssSlopeMiBps} MiB/s when stopped`);
    assert.ok(naked.notes?.some((n) => /\(peak 1\.\d\d GiB\)$/.test(n)), `the note's peak counts the stop: ${JSON.stringify(naked.notes)}`);
    assert.ok(naked.notes?.some((n) => new RegExp(`^unbounded: \\+${naked.figures.readerRssSlopeMiBps} MiB/s when stopped — the server's RSS reached the lab's 1 GiB ceiling ${after.toFixed(1)} s into`).test(n)), JSON.stringify(naked.notes));
    const ws = cells.find((c) => c.design === 'ws')!;
    assert.equal(ws.status, 'ok', ws.cause);
    assert.equal(ws.figures.readerStoppedAfterSec, null);
    assert.ok((ws.figures.readersCut ?? 0) > 0, `ws cut ${ws.figures.readersCut} readers as backpressure`);
    assert.ok(peak('ws') < READER_RSS_CEILING, `ws peak ${peak('ws')} B`);
    assert.match(readFileSync(join(dir, readdirSync(dir)[0], 'report.md'), 'utf8'), /\*\*ws --no-defenses\*\*: unbounded: \+/);
  });
});
