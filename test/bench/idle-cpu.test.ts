/**
 * Idle costs nothing (issue 22), loosely: bench/idle-cpu run for real on each loop design with a few thousand idle
 * connections; the server with none, the server holding them and the swarm worker holding them each stay under 1 %
 * of a core (the bench's budget is 0.3 %; a 1 ms timer, as the event-loop monitor once was, cost 3 % on a quiet box).
 * The idle server is measured 30 s after start-up: V8's memory reducer runs three Mark-Compact GCs some 16–18 s after
 * a Node process starts (≈100 ms of CPU, seen with --trace-gc; inside a 12 s → 22 s window it read 1.1 % on CI). The
 * held cases are measured 12 s after the last open. Each figure is the lower of the window's two halves (a steady
 * cost shows in both): the memory reducer's major GC once fell inside the held window on CI (ws 1.1–1.2 %, of which
 * ≈115 ms were two Mark-Compacts, seen with --trace-gc 44 s after the opens on a quiet run here).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

const RUN = fileURLToPath(new URL('../../bench/run.js', import.meta.url));
const LOOSE_PCT = 1;

describe('bench/idle-cpu', () => {
  it(`an idle server (0 and 3,000 connections) and a swarm worker holding 3,000 each use under ${LOOSE_PCT} % of a core`, { timeout: 240_000 }, () => {
    const r = spawnSync(process.execPath, [RUN, 'idle-cpu', '--designs', 'uws,ws', '--connections', '3000', '--window', '10s', '--start-settle', '30s', '--settle', '12s',
      '--source-ips', '127.0.0.140'], { encoding: 'utf8', timeout: 230_000 });
    assert.equal(r.status, 0, r.stderr);
    const result = JSON.parse(r.stdout.slice(r.stdout.indexOf('{\n  "bench"'))) as { results: { design: string; heldAfterWindow: number; cpuPctOfCore: Record<string, number> }[] };
    assert.deepEqual(result.results.map((x) => x.design), ['uws', 'ws']);
    // the harness's noise guard over the whole bench (its servers and swarms are its children, so not "outside")
    const { box } = result as unknown as { box: { outsideCores: number; stealCores: number; quiet: boolean } };
    assert.ok(Number.isFinite(box.outsideCores) && Number.isFinite(box.stealCores) && typeof box.quiet === 'boolean', JSON.stringify(box));
    for (const x of result.results) {
      assert.equal(x.heldAfterWindow, 3000, `${x.design}: every connection still held after the window`);
      for (const k of ['serverIdle', 'serverHeld', 'swarmWorker']) {
        assert.ok(x.cpuPctOfCore[k] <= LOOSE_PCT, `${x.design} ${k}: ${x.cpuPctOfCore[k]} % of a core (${JSON.stringify(x)})`);
      }
    }
  });
});
