import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { awaitClosing } from '../../client/close-phase.js';

/**
 * "A slow close is called a failure": a worker still closing past the budget is waited for while its count of
 * connections left keeps falling, and given up on only when nothing moves for the grace period.
 */
const worker = (startLeft: number, perTick: number, tickMs: number) => {
  let left = startLeft;
  const t = setInterval(() => { left = Math.max(0, left - perTick); if (left === 0) clearInterval(t); }, tickMs);
  return { done: () => left === 0, left: () => left, stop: () => clearInterval(t) };
};

describe('the close phase', () => {
  it('waits past the budget for a worker that keeps closing, however slowly', async () => {
    const slow = worker(1000, 100, 100); // 1 s to close, the budget is 0.3 s
    const { stuck, ms } = await awaitClosing([slow], { budgetMs: 300, graceMs: 400, pollMs: 20 });
    assert.deepEqual(stuck, []);
    assert.ok(ms >= 900, `waited ${ms} ms`);
  });

  it('gives up on a worker that stopped moving, after the budget and one grace period, not before', async () => {
    const stalled = worker(1000, 0, 100);
    const slow = worker(500, 100, 100);
    const t0 = performance.now();
    const { stuck } = await awaitClosing([stalled, slow], { budgetMs: 300, graceMs: 300, pollMs: 20 });
    const ms = performance.now() - t0;
    stalled.stop();
    assert.deepEqual(stuck, [stalled]);
    assert.ok(ms >= 500 && ms < 1500, `gave up after ${Math.round(ms)} ms: the slow one's progress extended the wait, then nothing moved`);
  });

  it('without a grace period (the swarm interrupted) the budget is the budget', async () => {
    const slow = worker(1000, 100, 100);
    const { stuck, ms } = await awaitClosing([slow], { budgetMs: 200, graceMs: 0, pollMs: 20 });
    slow.stop();
    assert.equal(stuck.length, 1);
    assert.ok(ms < 400, `${ms} ms`);
  });
});
