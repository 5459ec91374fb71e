import { figure, missing, ms, ratio, times, verdict, type JudgedCell } from '../claims.js';
import { kneeOf, pointKey, sweepLine, type Curve } from '../curves.js';
import { is } from '../designs.js';
import type { Cell, Claim, Verdict } from '../results.js';
import { at, chattyLoad, defineScenario, SOURCE_IPS, type Scale } from '../scenario.js';

const SMALL = { quick: 30, default: 100, full: 300 } as const;
const LARGE = { quick: 2, default: 4, full: 8 } as const;
/** Large clients swept at full (the share of large requests rises with them); one setting, LARGE, below it. */
const LARGE_SWEEP = { quick: [LARGE.quick], default: [LARGE.default], full: [0, 1, 2, 4, LARGE.full] } as const;
const SMALL_EVERY_MS = 100;
const LARGE_EVERY_MS = 250;
const sweepOf = (s: Scale): readonly number[] => at<readonly number[]>(s, LARGE_SWEEP);
/** The share of requests that are large, in %, with `large` large clients among the scale's small ones. */
const sharePct = (s: Scale, large: number): number => {
  const [l, sm] = [large * (1000 / LARGE_EVERY_MS), at(s, SMALL) * (1000 / SMALL_EVERY_MS)];
  return +((100 * l) / (l + sm)).toFixed(2);
};
/** Small requests are held up where their RTT p99 is twice what it is without large ones. */
const HELD_UP = 2;
const HOLD_S = { quick: 1.5, default: 4, full: 10 } as const;
export const LARGE_COMMAND = 'cpu 20000';

/** The bank queue vs the fast-food counter: do small requests wait behind large ones? */
type MixedFigures = {
  smallP50Ms: number | null; smallP99Ms: number | null; largeP50Ms: number | null; largeP99Ms: number | null; [point: string]: number | null;
};

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
  method: (s) => `${at(s, SMALL)} clients send \`echo 16\` every ${SMALL_EVERY_MS} ms while ${at(s, LARGE)} clients send ` +
    `\`${LARGE_COMMAND}\` every ${LARGE_EVERY_MS} ms, for ${at(s, HOLD_S)} s. RTT of each kind from its own swarm.` +
    (sweepOf(s).length > 1 ? ` Swept: ${sweepOf(s).join(', ')} large clients, a run each (${sweepOf(s).map((l) => `${sharePct(s, l)} %`).join(', ')} of the requests large); ` +
      `small requests are held up where their RTT p99 is ×${HELD_UP} what it is without large ones.` : ''),
  seconds: (s) => sweepOf(s).length * (at(s, HOLD_S) + 1.5),
  async run(ctx) {
    const holdMs = at(ctx.scale, HOLD_S) * 1000;
    const f: MixedFigures = { smallP50Ms: null, smallP99Ms: null, largeP50Ms: null, largeP99Ms: null };
    for (const large of sweepOf(ctx.scale)) {
      const [small, big] = await Promise.all([
        ctx.swarm({ connections: at(ctx.scale, SMALL), rate: 1000, holdMs, profile: 'chatty', command: 'echo 16', intervalMs: SMALL_EVERY_MS, sourceIps: SOURCE_IPS }),
        large ? ctx.swarm({ connections: large, rate: 100, holdMs, profile: 'chatty', command: LARGE_COMMAND, intervalMs: LARGE_EVERY_MS }) : undefined,
      ]);
      const [sm, l] = await Promise.all([ctx.finish(small), big && ctx.finish(big)]);
      f[pointKey('smallP99Ms', sharePct(ctx.scale, large))] = sm.rttMs.p99;
      if (large !== at(ctx.scale, LARGE)) continue;
      Object.assign(f, { smallP50Ms: sm.rttMs.p50, smallP99Ms: sm.rttMs.p99, largeP50Ms: l?.rttMs.p50 ?? null, largeP99Ms: l?.rttMs.p99 ?? null });
    }
    return f;
  },
  judge,
  curves,
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

/** Small requests' RTT p99 over the share of large ones at full, and from which share they are held up. */
function curves(cells: readonly Cell[], s: Scale): Curve[] {
  const xs = sweepOf(s).map((l) => sharePct(s, l));
  if (xs.length < 2) return [];
  const lines = cells.map((c) => sweepLine(c, 'smallP99Ms', xs)).filter((l) => l.points.length);
  return lines.length ? [{
    id: 'small-p99', title: "Small requests' RTT p99 over the share of large ones", x: { label: `requests that are \`${LARGE_COMMAND}\``, unit: '%' },
    y: { label: 'small requests\' RTT p99', unit: 'ms', log: true }, lines,
    knees: lines.map((l) => {
      const base = l.points.find((p) => p.x === 0);
      const each = l.points.map((p) => `${p.x} %: ${ms(p.y)}`).join(', ');
      if (!base) return `${l.design}: no point without large requests to compare with (${each})`;
      const k = kneeOf(l.points, (p) => p.x > 0 && p.y >= HELD_UP * Math.max(base.y, 1));
      return k ? `${l.design}: small requests held up from ${k.at.x} % large on (p99 ≥ ×${HELD_UP} the ${ms(base.y)} without; ${each})`
        : `${l.design}: small requests never held up (p99 under ×${HELD_UP} the ${ms(base.y)} without; ${each})`;
    }),
  }] : [];
}
