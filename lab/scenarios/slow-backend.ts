import { figure, missing, ms, ratio, times, verdict, type JudgedCell } from '../claims.js';
import { is, oneLoop } from '../designs.js';
import type { Claim, Verdict } from '../results.js';
import { at, chattyLoad, defineScenario, SOURCE_IPS } from '../scenario.js';

const CLIENTS = { quick: 20, default: 50, full: 200 } as const;
const PHASE_S = { quick: 1, default: 4, full: 10 } as const;
const INTERVAL_MS = 200;

/**
 * A backend slowing from 50 ms to 500 ms at the same arrival rate. Each client sends every 200 ms. A thread (or a
 * pool worker) serves its connection's requests one after another, so at 500 ms per request its queue grows; a
 * loop waits on timers for all of them at once.
 */
type SlowBackendFigures = {
  fastP50Ms: number | null; fastP99Ms: number | null; slowP50Ms: number | null; slowP99Ms: number | null; slowAnsweredRatio: number | null;
};

export const slowBackend = defineScenario<SlowBackendFigures>({
  id: 'slow-backend',
  title: 'Backend slows from 50 ms to 500 ms',
  question: 'Do fixed workers queue when the backend slows, while a loop just waits longer?',
  claims: ['slow-backend-queueing'],
  serverOptions: { idleTimeoutMs: 0 },
  columns: [
    { key: 'fastP50Ms', label: 'wait 50: RTT p50', unit: 'ms' },
    { key: 'fastP99Ms', label: 'wait 50: RTT p99', unit: 'ms' },
    { key: 'slowP50Ms', label: 'wait 500: RTT p50', unit: 'ms' },
    { key: 'slowP99Ms', label: 'wait 500: RTT p99', unit: 'ms' },
    { key: 'slowAnsweredRatio', label: 'wait 500: answered', unit: 'ratio' },
  ],
  // one loop stands for all below full: a timer-based wait is the same in every loop.
  designs: (all, scale) => all.filter((d) => !is.processes(d)).filter(oneLoop(all, scale)),
  method: (s) => `${at(s, CLIENTS)} clients each send a request every ${INTERVAL_MS} ms (open loop): \`wait 50\` for ` +
    `${at(s, PHASE_S)} s, then a new swarm at the same rate with \`wait 500\` for ${at(s, PHASE_S)} s. RTT from the swarm.`,
  seconds: (s) => 2 * at(s, PHASE_S) + 3,
  async run(ctx) {
    const phase = (ms: number) => ctx.swarm({ connections: at(ctx.scale, CLIENTS), rate: 1000, holdMs: at(ctx.scale, PHASE_S) * 1000,
      profile: 'chatty', command: `wait ${ms}`, intervalMs: INTERVAL_MS, sourceIps: SOURCE_IPS });
    const fast = await ctx.finish(await phase(50));
    const slow = await ctx.finish(await phase(500));
    return {
      fastP50Ms: fast.rttMs.p50, fastP99Ms: fast.rttMs.p99,
      slowP50Ms: slow.rttMs.p50, slowP99Ms: slow.rttMs.p99,
      slowAnsweredRatio: slow.messages.sent ? +(slow.messages.received / slow.messages.sent).toFixed(3) : null,
    };
  },
  judge,
  profileLoad: (sec) => [
    { atSec: 0, flags: chattyLoad(20, 'wait 50', 200, sec / 2) },
    { atSec: sec / 2, flags: chattyLoad(20, 'wait 500', 200, sec / 2) },
  ],
});

/** Fixed workers (a pool, else a thread per connection) against the loop that stands for all: p99 at wait 500, ×2 confirms. */
function judge(cells: readonly JudgedCell<SlowBackendFigures>[]): Claim[] {
  const workers = figure(cells, is.pool, 'slowP99Ms') !== null ? is.pool : is.threadPerConnection;
  const loop = figure(cells, is.standingLoop, 'slowP99Ms') !== null ? is.standingLoop : is.loop;
  const wP99 = figure(cells, workers, 'slowP99Ms');
  const lP99 = figure(cells, loop, 'slowP99Ms');
  if (wP99 === null || lP99 === null) return [missing('slow-backend-queueing', 'slow-backend', 'threads and loop')];
  const r = ratio(wP99, lP99);
  const v: Verdict = r >= 2 ? 'confirmed' : r <= 1.2 ? 'refuted' : 'inconclusive';
  const w = cells.find(workers)!.design;
  return [verdict('slow-backend-queueing', v, `at wait 500: ${w} RTT p99 ${ms(wP99)} vs loop ${ms(lP99)} (${times(r)}); ` +
    `at wait 50: ${w} ${ms(figure(cells, workers, 'fastP99Ms') ?? NaN)} vs loop ${ms(figure(cells, loop, 'fastP99Ms') ?? NaN)}`)];
}
