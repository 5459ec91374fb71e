import { sumOf } from '../../metrics/exposition.js';
import { CONNECTIONS_CLOSED } from '../../metrics/index.js';
import { missing, ms, pct, verdict, type JudgedCell } from '../claims.js';
import { is, POOL_SIZE_DOS, variant, withWorkers, type LabDesign } from '../designs.js';
import type { ProfileSummary } from '../processes.js';
import type { Claim, Verdict } from '../results.js';
import { at, defineScenario, profileHold, SOURCE_IPS, sleep, type CellContext, type Scale } from '../scenario.js';

const ATTACKERS = { quick: 600, default: 2000, full: 2000 } as const;
const HEALTHY = { quick: 50, default: 200, full: 200 } as const;
/** The slowloris phase's hold, counted from when the healthy clients have joined (1 s after the attackers). */
const ATTACK_HOLD_S = { quick: 3, default: 8, full: 12 } as const;
/** After the slowloris swarm, how long the probe may take to see the service back (it probes every 0.5 s). */
export const RECOVERY_GRACE_MS = 2000;
const READERS = { quick: 100, default: 200, full: 1000 } as const;
const READ_HOLD_S = { quick: 3, default: 3, full: 8 } as const;
const FILL = 1024 * 1024;
/** Each slow reader asks for a 1 MiB reply this often (so do the healthy clients beside them, with `echo 16`). */
const READ_INTERVAL_MS = 500;
/**
 * The server's handshake timeout in this scenario: short, so that a pool's recovery fits in the cell (uWS keeps its
 * own fixed 10 s, docs/defenses.md). Healthy clients give up on an upgrade after HEALTHY_PATIENCE_S, as an impatient
 * user would: joining 1 s into the attack, they have given up before the attackers' handshake timeout frees a pool,
 * so "accepted" counts clients served *during* the attack, and the probe shows when service comes back.
 */
const HANDSHAKE_TIMEOUT_S = 4;
const HEALTHY_PATIENCE_S = 2;
const MAX_BACKPRESSURE = 1024 * 1024;
/**
 * The slow readers' ceiling: when the server's process tree reaches this RSS, the readers are stopped and the cell
 * notes the growth rate it was stopped at. A server without a send cap (`ws --no-defenses`) grew to 3.94 GiB within
 * the default 3 s otherwise. Watched from /proc every 100 ms (Sampler.whenRssAtLeast): at the 0.5 s samples, which a
 * busy server answers late, default runs peaked at 1.58–1.70 GiB.
 */
export const READER_RSS_CEILING = 1024 ** 3;

type Phase = 'slowloris' | 'slow-reader';

type DosFigures = {
  healthyConnectRate: number | null; healthyServedRate: number | null; healthyRttP99Ms: number | null; unavailableSec: number | null;
  recoverySec: number | null; attackThreadsMax: number | null; attackersHeldAtEnd: number | null; attackersCutP50Ms: number | null;
  attackRssMaxBytes: number | null; readerRssGrowthBytes: number | null; readerRssSlopeMiBps: number | null; readersCut: number | null;
  readerHealthyServedRate: number | null; readerCeilingBytes: number | null;
  /** Seconds into the slow readers at which the server reached READER_RSS_CEILING and they were stopped; null = never. */
  readerStoppedAfterSec: number | null;
  /** The server's RSS the ceiling's /proc watch read when it stopped them (the 0.5 s samples may miss that peak); null = never. */
  readerRssAtStopBytes: number | null;
};
type Slowloris = Pick<DosFigures, 'healthyConnectRate' | 'healthyServedRate' | 'healthyRttP99Ms' | 'unavailableSec' | 'recoverySec' |
  'attackThreadsMax' | 'attackersHeldAtEnd' | 'attackersCutP50Ms' | 'attackRssMaxBytes'>;
type SlowReaders = Pick<DosFigures, 'readerRssGrowthBytes' | 'readerRssSlopeMiBps' | 'readersCut' | 'readerHealthyServedRate' | 'readerCeilingBytes' | 'readerStoppedAfterSec' | 'readerRssAtStopBytes'>;

/**
 * Which phases a variant runs: a naked (`--no-defenses`) variant only the one it demonstrates (a naked loop buffers
 * for slow readers without bound; a naked pool is held by slowloris); quick, slowloris only.
 */
function phasesOf(d: LabDesign, scale: Scale): Phase[] {
  // slow readers ask for `fill`: a server that only echoes has no large reply to be slow on
  if (!d.speaks.includes('wslab')) return ['slowloris'];
  // the pool's slow readers each hold a worker in a timed-out send(): shown at full, skipped to keep default ≤ 5 min
  if (scale === 'quick' || (scale !== 'full' && is.pool(d))) return ['slowloris'];
  if (!is.naked(d)) return ['slowloris', 'slow-reader'];
  return is.loop(d) ? ['slow-reader'] : ['slowloris'];
}

/**
 * Slow clients against every design, as slowhttptest runs them, with a probe of "is the service available" every
 * 0.5 s (a fresh connection that must upgrade and get its echo within 1 s). Two phases per cell: slowloris
 * attackers (the upgrade request dribbled, never finished) with healthy chatty clients joining 1 s into the attack,
 * then readers that never read asking for 1 MiB replies, with healthy clients alongside.
 */
export const slowClientDos = defineScenario<DosFigures>({
  id: 'slow-client-dos',
  title: 'Slow-client DoS',
  question: 'Do slowloris attackers and clients that never read take the service away from healthy clients, per design, with defences on and off?',
  claims: ['slow-client-dos'],
  // healthy clients and the probe need an answer: our protocol's, or their text echoed (slowloris only, then)
  needs: ['wslab', 'echo'],
  // a design that fixes its handshake timeout (uWS's 10 s) refuses another value; --no-defenses has none.
  serverOptions: (d) => ({ idleTimeoutMs: 0, ...(d.traits.fixedHandshakeTimeout || is.naked(d) ? {} : { handshakeTimeoutMs: HANDSHAKE_TIMEOUT_S * 1000 }) }),
  columns: [
    { key: 'healthyConnectRate', label: 'slowloris: new healthy clients accepted', unit: 'ratio' },
    { key: 'healthyServedRate', label: 'slowloris: healthy requests answered', unit: 'ratio' },
    { key: 'healthyRttP99Ms', label: 'slowloris: healthy RTT p99', unit: 'ms' },
    { key: 'unavailableSec', label: 'slowloris: probe failing', unit: 's' },
    { key: 'recoverySec', label: 'slowloris: available for good after', unit: 's' },
    { key: 'attackThreadsMax', label: 'slowloris: server threads (max)', unit: 'threads' },
    { key: 'readerRssGrowthBytes', label: 'slow readers: server RSS growth', unit: 'bytes' },
    { key: 'readerRssSlopeMiBps', label: 'slow readers: RSS growth at the end', unit: 'MiB/s' },
    { key: 'readersCut', label: 'slow readers: closed as backpressure', unit: 'connections' },
    { key: 'readerHealthyServedRate', label: 'slow readers: healthy requests answered', unit: 'ratio' },
  ],
  designs: (all, scale) => {
    const pool = withWorkers('threads', POOL_SIZE_DOS);
    if (scale === 'quick') return [...all.filter(is.standingLoop), ...(pool ? [pool] : [])];
    const loops = all.filter(is.loop);
    const hasThreads = all.some((d) => d.traits.model === 'threads');
    const threads = hasThreads && pool ? [pool, ...(scale === 'full' ? all.filter(is.threadPerConnection) : [])] : [];
    // naked, the loop that can turn every defence off (one that fixes its handshake timeout cannot) and the pool
    const nakedLoop = loops.find((d) => !d.traits.fixedHandshakeTimeout);
    const naked = [
      ...(nakedLoop ? [variant(nakedLoop.design, nakedLoop.own, { defenses: false })] : []),
      ...(threads.length > 0 ? [withWorkers('threads', POOL_SIZE_DOS, { defenses: false })!] : []),
    ];
    return [...loops, ...threads, ...(scale === 'full' ? all.filter(is.processes) : []), ...naked];
  },
  method: (s) => `Server flags: \`--handshake-timeout ${HANDSHAKE_TIMEOUT_S}s\` (uWS keeps its fixed 10 s), default limits otherwise ` +
    `(\`--max-backpressure\` 1 MiB). Slowloris: ${at(s, ATTACKERS)} attackers dribble their upgrade request 4 bytes a second and never finish it; ` +
    `1 s in, ${at(s, HEALTHY)} healthy clients connect (giving up after ${HEALTHY_PATIENCE_S} s) and send \`echo 16\` every 200 ms for ${at(s, ATTACK_HOLD_S)} s. ` +
    `Slow readers: ${at(s, READERS)} clients ask for \`fill ${FILL}\` every ${READ_INTERVAL_MS} ms and never read, ${at(s, HEALTHY) / 2} healthy clients alongside, ${at(s, READ_HOLD_S)} s. ` +
    'A probe opens a fresh connection every 0.5 s and needs its echo within 1 s ("service available", as slowhttptest charts it), watched up to 2 s past the attack for the service to come back. ' +
    '`--no-defenses` variants run only the phase they demonstrate' + (s === 'quick' ? '; quick runs slowloris only. ' : s === 'full' ? '. ' : '; below full, the pool runs slowloris only. ') + 'Threads are the server process tree\'s, from /proc.',
  seconds: (s) => at(s, ATTACK_HOLD_S) + (s === 'quick' ? 0 : at(s, READ_HOLD_S) + 3) + 4,
  async run(ctx) {
    const phases = phasesOf(ctx.design, ctx.scale);
    ctx.sampler.probeService(ctx.server.url, replyMatch(ctx.design));
    await sleep(300);
    // a phase this variant does not run shows as — (null), not as a missing column
    const figures = Object.fromEntries(COLUMN_KEYS.map((k) => [k, null])) as unknown as DosFigures;
    if (phases.includes('slowloris')) Object.assign(figures, await slowloris(ctx));
    if (phases.includes('slow-reader')) Object.assign(figures, await slowReaders(ctx));
    return figures;
  },
  judge,
  // As run()'s slowloris phase: attackers first, healthy clients 1 s into the attack.
  profileLoad: (sec) => [{ atSec: 0, flags: { mix: 'slowloris:1000,chatty:50@1s', rate: 4000, holdMs: profileHold(Math.max(1, sec - 1)),
    command: 'echo 16', intervalMs: 200, sourceIps: SOURCE_IPS } }],
});
const COLUMN_KEYS = slowClientDos.columns.map((c) => c.key);

/** How a healthy reply is told: our protocol's `<id> ok …`, or, from a server that only echoes, the request itself. */
const replyMatch = (d: LabDesign): 'wslab' | 'echo' => (d.speaks.includes('wslab') ? 'wslab' : 'echo');

const group = (profiles: Record<string, ProfileSummary> | undefined, name: string): ProfileSummary => {
  const g = profiles?.[name];
  if (!g) throw new Error(`the swarm's summary has no ${name} group`);
  return g;
};

async function slowloris(ctx: CellContext): Promise<Slowloris> {
  const s = ctx.scale;
  const from = ctx.sampler.elapsedSec();
  const summary = await ctx.finish(await ctx.swarm({
    mix: `slowloris:${at(s, ATTACKERS)},chatty:${at(s, HEALTHY)}@1s`, rate: 4000, holdMs: at(s, ATTACK_HOLD_S) * 1000,
    command: 'echo 16', match: replyMatch(ctx.design), intervalMs: 200, handshakeTimeoutMs: HEALTHY_PATIENCE_S * 1000, sourceIps: SOURCE_IPS,
  }));
  // The attack can end the moment the server cuts the last attacker: give the probe a moment to see the service back.
  await ctx.sampler.untilAvailable(RECOVERY_GRACE_MS);
  const to = ctx.sampler.elapsedSec();
  const healthy = group(summary.profiles, 'chatty');
  const attack = group(summary.profiles, 'slowloris');
  return {
    healthyConnectRate: healthy.connectSuccessRate ?? null,
    healthyServedRate: healthy.servedRate ?? null,
    healthyRttP99Ms: healthy.rttMs?.p99 ?? null,
    unavailableSec: ctx.sampler.unavailableSec(from, to),
    recoverySec: ctx.sampler.recoveredAfter(from, to),
    attackThreadsMax: ctx.sampler.max('threads', from, to),
    attackersHeldAtEnd: attack.outcomes?.held ?? null,
    attackersCutP50Ms: attack.timeToCutMs?.p50 ?? null,
    attackRssMaxBytes: ctx.sampler.max('rssBytes', from, to),
  };
}

async function slowReaders(ctx: CellContext): Promise<SlowReaders> {
  const s = ctx.scale;
  await sleep(500);
  const baseRss = ctx.sampler.last('rssBytes');
  const cutBefore = sumOf(await ctx.server.scrape(), CONNECTIONS_CLOSED.name, { reason: 'backpressure' });
  const from = ctx.sampler.elapsedSec();
  const run = await ctx.swarm({
    mix: `slow-reader:${at(s, READERS)},chatty:${at(s, HEALTHY) / 2}@1s`, rate: 4000, holdMs: at(s, READ_HOLD_S) * 1000,
    command: 'echo 16', intervalMs: READ_INTERVAL_MS, readRate: 0, sourceIps: SOURCE_IPS,
  });
  // unbounded growth is shown up to the ceiling, then the readers stop (the swarm's SIGINT still writes its summary)
  const ceiling = ctx.sampler.whenRssAtLeast(READER_RSS_CEILING);
  let stoppedAt: number | null = null;
  let rssAtStop: number | null = null;
  void ceiling.reached.then((r) => { stoppedAt = r.atSec; rssAtStop = r.rssBytes; run.child.kill('SIGINT'); });
  const summary = await ctx.finish(run).finally(ceiling.cancel);
  const to = ctx.sampler.elapsedSec();
  const cut = sumOf(await ctx.server.scrape(), CONNECTIONS_CLOSED.name, { reason: 'backpressure' }) - cutBefore;
  // the ceiling's own reading counts too: the samples, 0.5 s apart or later, may miss the moment it tripped
  const sampled = ctx.sampler.max('rssBytes', from, to);
  const peak = rssAtStop === null ? sampled : Math.max(sampled ?? 0, rssAtStop);
  // over the phase's second half, and at least its last 1.5 s when it was stopped early; at least its last three
  // samples (a server busy growing answers the sampler's scrape late, and ticks are skipped: 1–2 s apart in CI runs)
  const end = stoppedAt ?? to;
  const slope = rssSlope(ctx, from, Math.max(from, Math.min(from + (end - from) / 2, end - 1.5)), end);
  if (stoppedAt !== null) {
    ctx.note(`unbounded: +${slope ?? 'n/a'} MiB/s when stopped — the server's RSS reached the lab's ${READER_RSS_CEILING / 1024 ** 3} GiB ceiling ` +
      `${(stoppedAt - from).toFixed(1)} s into the slow readers, and the readers were stopped there (peak ${(peak! / 1024 ** 3).toFixed(2)} GiB)`);
  }
  return {
    readerRssGrowthBytes: peak !== null && baseRss !== null ? Math.max(0, peak - baseRss) : null,
    readerRssSlopeMiBps: slope,
    readerStoppedAfterSec: stoppedAt === null ? null : +(stoppedAt - from).toFixed(1),
    readerRssAtStopBytes: rssAtStop,
    readersCut: cut,
    readerHealthyServedRate: group(summary.profiles, 'chatty').servedRate ?? null,
    readerCeilingBytes: at(s, READERS) * (MAX_BACKPRESSURE + FILL),
  };
}

/**
 * Least-squares slope of the server's RSS over [from, to], MiB/s: ≈0 when a cap holds, the growth rate when not. With
 * fewer than three samples there, the last three of the phase (from `phase` on) up to `to`.
 */
function rssSlope(ctx: CellContext, phase: number, from: number, to: number): number | null {
  let pts = ctx.sampler.samples('rssBytes', from, to);
  if (pts.length < 3) pts = ctx.sampler.samples('rssBytes', phase, to).slice(-3);
  if (pts.length < 3) return null;
  const mt = pts.reduce((a, p) => a + p[0], 0) / pts.length;
  const mr = pts.reduce((a, p) => a + p[1], 0) / pts.length;
  const cov = pts.reduce((a, p) => a + (p[0] - mt) * (p[1] - mr), 0);
  const vt = pts.reduce((a, p) => a + (p[0] - mt) ** 2, 0);
  return vt > 0 ? +((cov / vt) / 2 ** 20).toFixed(1) : null;
}

/**
 * Slow-client DoS: confirmed when every defended loop kept ≥ 99 % of its healthy requests answered under slowloris
 * (p99 < 50 ms) while the defended fixed pool accepted < 10 % of the healthy clients arriving during the attack;
 * refuted when the pool kept serving (≥ 90 % accepted) or a loop did not (< 90 % answered).
 */
function judge(cells: readonly JudgedCell<DosFigures>[]): Claim[] {
  const defended = cells.filter((c) => !is.naked(c));
  const loops = defended.filter(is.loop).filter((c) => c.figures.healthyServedRate != null);
  const pool = defended.find(is.pool);
  const poolRate = pool?.figures.healthyConnectRate;
  if (loops.length === 0 || !pool || typeof poolRate !== 'number') return [missing('slow-client-dos', 'slow-client-dos', 'loop and threads --pool')];
  const served = (c: JudgedCell<DosFigures>) => c.figures.healthyServedRate as number;
  const loopsOk = loops.every((c) => served(c) >= 0.99 && (c.figures.healthyRttP99Ms ?? Infinity) < 50);
  const v: Verdict = loopsOk && poolRate < 0.1 ? 'confirmed' : poolRate >= 0.9 || loops.some((c) => served(c) < 0.9) ? 'refuted' : 'inconclusive';
  const nakedLoop = cells.find((c) => is.loop(c) && is.naked(c));
  const nakedPool = cells.find((c) => is.pool(c) && is.naked(c));
  const recovery = pool.figures.recoverySec;
  // the naked loop's defended twin: the same design with its defences on
  const twin = nakedLoop && defended.find((c) => c.design === nakedLoop.design.replace(/ --no-defenses$/, ''));
  return [verdict('slow-client-dos', v, `under slowloris: ${loops.map((c) => `${c.design} answered ${pct(served(c))} of healthy requests (p99 ${ms(c.figures.healthyRttP99Ms ?? NaN)})`).join(', ')}; ` +
    `${pool.design} accepted ${pct(poolRate)} of the healthy clients arriving during the attack` +
    `; its probe failed for ${pool.figures.unavailableSec} s` +
    `${pool.figures.attackersHeldAtEnd === 0 ? ', until the handshake timeout cut every attacker' : ', until the attack ended'}` +
    `${typeof recovery === 'number' ? ` (service back ${recovery} s into the attack)` : ` and was not back within ${RECOVERY_GRACE_MS / 1000} s of its end`}` +
    `${nakedPool ? `; without defences ${nakedPool.design.split(' --no')[0]} accepted ${pct(nakedPool.figures.healthyConnectRate)}` : ''}` +
    `${nakedLoop ? `; slow readers grew ${nakedLoop.design} by ${nakedLoop.figures.readerRssSlopeMiBps ?? 'n/a'} MiB/s` +
      `${typeof nakedLoop.figures.readerStoppedAfterSec === 'number' ? `, stopped at the lab's ${READER_RSS_CEILING / 1024 ** 3} GiB ceiling after ${nakedLoop.figures.readerStoppedAfterSec} s` : ''}` +
      ` (with the send cap: ${twin?.figures.readerRssSlopeMiBps ?? 'n/a'} MiB/s)` : ''}`)];
}
