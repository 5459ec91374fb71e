import { figure, missing, ms, verdict, type JudgedCell } from '../claims.js';
import { kneeOf, pointKey, sweepLine, type Curve } from '../curves.js';
import { is } from '../designs.js';
import type { Cell, Claim, Verdict } from '../results.js';
import { at, chattyLoad, defineScenario, SOURCE_IPS, sleep, type Scale } from '../scenario.js';

const CLIENTS = { quick: 100, default: 500, full: 1000 } as const;
const HOLD_S = { quick: 4, default: 6, full: 10 } as const;
export const BLOCK_MS = 2000;
/** Block lengths swept, ms, the claim's own last: one block below full, a curve at full. */
const BLOCKS = { quick: [BLOCK_MS], default: [BLOCK_MS], full: [100, 250, 500, 1000, BLOCK_MS] } as const;
const blocks = (s: Scale): readonly number[] => at<readonly number[]>(s, BLOCKS);
/** Others are stalled by a block when their RTT p99 reaches this share of it. */
const STALLED = 0.8;

/** The time.sleep() mistake: one client's blocking call, everyone else's latency. */
type BlockFigures = {
  healthyRttP50Ms: number | null; healthyRttP99Ms: number | null; healthyRttMaxMs: number | null; blockRttMs: number | null;
  loopDelayMaxMs: number | null; healthyReplies: number | null; [point: string]: number | null;
};

export const blockingCall = defineScenario<BlockFigures>({
  id: 'blocking-call',
  title: 'One blocking call',
  question: 'Does one blocking call stall every client (loop) or only its own (threads)?',
  claims: ['blocking-call'],
  serverOptions: { idleTimeoutMs: 0 },
  columns: [
    { key: 'healthyRttP50Ms', label: 'others: RTT p50', unit: 'ms' },
    { key: 'healthyRttP99Ms', label: 'others: RTT p99', unit: 'ms' },
    { key: 'healthyRttMaxMs', label: 'others: RTT max', unit: 'ms' },
    { key: 'blockRttMs', label: 'the blocking call', unit: 'ms' },
    { key: 'loopDelayMaxMs', label: 'event-loop delay max', unit: 'ms' },
  ],
  // cluster only at full: each of its workers is a loop that stalls the same way; cpu-bound is where it is the question.
  designs: (all, scale) => all.filter((d) => !is.pool(d) && (scale === 'full' || !is.processes(d))),
  method: (s) => `${at(s, CLIENTS)} clients send \`echo 16\` every 100 ms (open loop) for ${at(s, HOLD_S)} s; 0.5 s in, ` +
    `one more client starts and sends \`block B\` once (about 1.5–2 s in), so the block ends inside the others' run` +
    `${blocks(s).length > 1 ? `; B = ${blocks(s).join(', ')} ms, a run each, the others' RTT p99 over B charted` : `; B = ${BLOCK_MS} ms`}. ` +
    'Others\' RTT is measured by the swarm from the intended send time.',
  seconds: (s) => blocks(s).length * (at(s, HOLD_S) + 1.5),
  async run(ctx) {
    const f: BlockFigures = { healthyRttP50Ms: null, healthyRttP99Ms: null, healthyRttMaxMs: null, blockRttMs: null, loopDelayMaxMs: null, healthyReplies: null };
    for (const block of blocks(ctx.scale)) {
      const healthy = await ctx.swarm({ connections: at(ctx.scale, CLIENTS), rate: 2000, holdMs: at(ctx.scale, HOLD_S) * 1000,
        profile: 'chatty', command: 'echo 16', intervalMs: 100, sourceIps: SOURCE_IPS });
      await sleep(500);
      const from = ctx.sampler.elapsedSec();
      // Chatty sends first at open + interval and the hold ends 0.8 s after open: exactly one `block` goes out.
      const blocker = await ctx.swarm({ connections: 1, holdMs: 800, profile: 'chatty', command: `block ${block}`, intervalMs: 500 });
      const [h, b] = await Promise.all([ctx.finish(healthy), ctx.finish(blocker)]);
      f[pointKey('healthyRttP99Ms', block)] = h.rttMs.p99;
      if (block !== BLOCK_MS) continue;
      Object.assign(f, {
        healthyRttP50Ms: h.rttMs.p50, healthyRttP99Ms: h.rttMs.p99, healthyRttMaxMs: h.rttMs.max,
        blockRttMs: b.rttMs.max, loopDelayMaxMs: ctx.sampler.max('loopDelayMs', from),
        healthyReplies: h.messages.received,
      });
    }
    return f;
  },
  judge,
  curves,
  // As run() above: others chat while one client, 1 s in, sends one `block` (chatty sends first at open + interval,
  // and a 1.5 s hold lets exactly one go out).
  profileLoad: (sec) => [
    { atSec: 0, flags: chattyLoad(100, 'echo 16', 100, sec) },
    { atSec: 1, flags: { connections: 1, holdMs: 1500, profile: 'chatty', command: `block ${BLOCK_MS}`, intervalMs: 1000 } },
  ],
});

/** Confirmed when every loop's other clients waited ≥ 80 % of the block at p99 while threads stayed under 25 % of it. */
function judge(cells: readonly JudgedCell<BlockFigures>[]): Claim[] {
  const loops = cells.filter(is.loop);
  const thrP99 = figure(cells, is.threadPerConnection, 'healthyRttP99Ms');
  if (figure(loops, () => true, 'healthyRttP99Ms') === null || thrP99 === null) return [missing('blocking-call', 'blocking-call', 'loop and threads')];
  const stalled = loops.every((c) => (c.figures.healthyRttP99Ms ?? 0) >= STALLED * BLOCK_MS);
  const v: Verdict = stalled && thrP99 < 0.25 * BLOCK_MS ? 'confirmed' : !stalled ? 'refuted' : 'inconclusive';
  return [verdict('blocking-call', v, `during one \`block ${BLOCK_MS}\`: others' RTT p99 ${loops.map((c) => `${c.design} ${ms(c.figures.healthyRttP99Ms ?? NaN)}`).join(', ')}; ` +
    `${cells.find(is.threadPerConnection)!.design} ${ms(thrP99)}`)];
}

/** Others' RTT p99 over the block's length at full, and from which block it follows the block (p99 ≥ 80 % of it). */
function curves(cells: readonly Cell[], s: Scale): Curve[] {
  const bs = blocks(s);
  if (bs.length < 2) return [];
  const lines = cells.map((c) => sweepLine(c, 'healthyRttP99Ms', bs)).filter((l) => l.points.length);
  return lines.length ? [{
    id: 'others-p99', title: "Others' RTT p99 over the blocking call's length", x: { label: 'block length', unit: 'ms', log: true },
    y: { label: "others' RTT p99", unit: 'ms', log: true }, lines,
    knees: lines.map((l) => {
      const k = kneeOf(l.points, (p) => p.y >= STALLED * p.x);
      const each = l.points.map((p) => `${p.x} ms: ${ms(p.y)}`).join(', ');
      return k ? `${l.design}: the others wait out the block from ${k.at.x} ms on (p99 ≥ ${STALLED * 100} % of it; ${each})`
        : `${l.design}: the others never wait out the block (${each})`;
    }),
  }] : [];
}
