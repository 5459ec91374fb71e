import { figure, missing, ms, ratio, times, verdict, type JudgedCell } from '../claims.js';
import { is } from '../designs.js';
import type { Claim, Verdict } from '../results.js';
import { at, chattyLoad, defineScenario, SOURCE_IPS } from '../scenario.js';

const SMALL = { quick: 30, default: 100, full: 300 } as const;
const LARGE = { quick: 2, default: 4, full: 8 } as const;
const HOLD_S = { quick: 1.5, default: 4, full: 10 } as const;
export const LARGE_COMMAND = 'cpu 20000';

/** The bank queue vs the fast-food counter: do small requests wait behind large ones? */
type MixedFigures = { smallP50Ms: number | null; smallP99Ms: number | null; largeP50Ms: number | null; largeP99Ms: number | null };

export const mixedSizes = defineScenario<MixedFigures>({
  id: 'mixed-sizes',
  title: 'Mixed task sizes',
  question: 'Do small requests wait behind large ones (head-of-line blocking)?',
  claims: ['mixed-sizes'],
  serverOptions: { idleTimeoutMs: 0 },
  columns: [
    { key: 'smallP50Ms', label: 'small: RTT p50', unit: 'ms' },
    { key: 'smallP99Ms', label: 'small: RTT p99', unit: 'ms' },
    { key: 'largeP50Ms', label: 'large: RTT p50', unit: 'ms' },
    { key: 'largeP99Ms', label: 'large: RTT p99', unit: 'ms' },
  ],
  designs: (all) => all.filter((d) => !is.processes(d)),
  method: (s) => `${at(s, SMALL)} clients send \`echo 16\` every 100 ms while ${at(s, LARGE)} clients send ` +
    `\`${LARGE_COMMAND}\` every 250 ms, for ${at(s, HOLD_S)} s. RTT of each kind from its own swarm.`,
  seconds: (s) => at(s, HOLD_S) + 1.5,
  async run(ctx) {
    const holdMs = at(ctx.scale, HOLD_S) * 1000;
    const [small, large] = await Promise.all([
      ctx.swarm({ connections: at(ctx.scale, SMALL), rate: 1000, holdMs, profile: 'chatty', command: 'echo 16', intervalMs: 100, sourceIps: SOURCE_IPS }),
      ctx.swarm({ connections: at(ctx.scale, LARGE), rate: 100, holdMs, profile: 'chatty', command: LARGE_COMMAND, intervalMs: 250 }),
    ]);
    const [s, l] = await Promise.all([ctx.finish(small), ctx.finish(large)]);
    return { smallP50Ms: s.rttMs.p50, smallP99Ms: s.rttMs.p99, largeP50Ms: l.rttMs.p50, largeP99Ms: l.rttMs.p99 };
  },
  judge,
  profileLoad: (sec) => [
    { atSec: 0, flags: chattyLoad(30, 'echo 16', 100, sec) },
    { atSec: 0, flags: chattyLoad(2, LARGE_COMMAND, 250, sec, false) },
  ],
});

/** Small requests' p99 in the loop that stands for all (else any loop) vs a thread per connection: ×2 confirms. */
function judge(cells: readonly JudgedCell<MixedFigures>[]): Claim[] {
  const lSmall = figure(cells, is.standingLoop, 'smallP99Ms') ?? figure(cells, is.loop, 'smallP99Ms');
  const tSmall = figure(cells, is.threadPerConnection, 'smallP99Ms');
  if (lSmall === null || tSmall === null) return [missing('mixed-sizes', 'mixed-sizes', 'loop and threads')];
  const r = ratio(lSmall, Math.max(tSmall, 0.1));
  const v: Verdict = r >= 2 ? 'confirmed' : r <= 1.2 ? 'refuted' : 'inconclusive';
  return [verdict('mixed-sizes', v, `small requests' RTT p99 next to large ones: loop ${ms(lSmall)} vs threads ${ms(tSmall)} (${times(r)})`)];
}
