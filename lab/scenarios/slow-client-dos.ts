import { sumOf } from '../../metrics/exposition.js';
import { CONNECTIONS_CLOSED } from '../../metrics/index.js';
import { POOL_SIZE_DOS, variant, type LabDesign } from '../designs.js';
import type { ProfileSummary } from '../processes.js';
import { at, SOURCE_IPS, sleep, type CellContext, type Figures, type Scale, type Scenario } from '../scenario.js';

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

type Phase = 'slowloris' | 'slow-reader';

/** Which phases a variant runs: a naked (`--no-defenses`) variant only the one it demonstrates; quick, slowloris only. */
function phasesOf(d: LabDesign, scale: Scale): Phase[] {
  // the pool's slow readers each hold a worker in a timed-out send(): shown at full, skipped to keep default ≤ 5 min
  if (scale === 'quick' || (scale !== 'full' && d.flags.includes('--pool'))) return ['slowloris'];
  if (!d.flags.includes('--no-defenses')) return ['slowloris', 'slow-reader'];
  return d.design === 'ws' ? ['slow-reader'] : ['slowloris'];
}

/**
 * Slow clients against every design, as slowhttptest runs them, with a probe of "is the service available" every
 * 0.5 s (a fresh connection that must upgrade and get its echo within 1 s). Two phases per cell: slowloris
 * attackers (the upgrade request dribbled, never finished) with healthy chatty clients joining 1 s into the attack,
 * then readers that never read asking for 1 MiB replies, with healthy clients alongside.
 */
export const slowClientDos: Scenario = {
  id: 'slow-client-dos',
  title: 'Slow-client DoS',
  question: 'Do slowloris attackers and clients that never read take the service away from healthy clients, per design, with defences on and off?',
  claims: ['slow-client-dos'],
  // uws (and a cluster of uws) keeps uWebSockets.js's fixed 10 s and refuses another value; --no-defenses has none.
  serverFlags: (design, flags) => ['--idle-timeout', '0',
    ...((design === 'ws' || design === 'threads') && !flags.includes('--no-defenses') ? ['--handshake-timeout', `${HANDSHAKE_TIMEOUT_S}s`] : [])],
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
    const pool = variant('threads', ['--pool', String(POOL_SIZE_DOS)]);
    if (scale === 'quick') return [...all.filter((d) => d.design === 'uws'), pool];
    const loops = all.filter((d) => d.model === 'loop');
    const threads = all.some((d) => d.design === 'threads') ? [pool, ...(scale === 'full' ? [variant('threads')] : [])] : [];
    const naked = [
      ...(loops.some((d) => d.design === 'ws') ? [variant('ws', ['--no-defenses'])] : []),
      ...(threads.length > 0 ? [variant('threads', ['--pool', String(POOL_SIZE_DOS), '--no-defenses'])] : []),
    ];
    return [...loops, ...threads, ...(scale === 'full' ? all.filter((d) => d.model === 'processes') : []), ...naked];
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
    ctx.sampler.probeService(ctx.server.url);
    await sleep(300);
    // a phase this variant does not run shows as — (null), not as a missing column
    const figures: Figures = Object.fromEntries(slowClientDos.columns.map((c) => [c.key, null]));
    if (phases.includes('slowloris')) Object.assign(figures, await slowloris(ctx));
    if (phases.includes('slow-reader')) Object.assign(figures, await slowReaders(ctx));
    return figures;
  },
};

const group = (profiles: Record<string, ProfileSummary> | undefined, name: string): ProfileSummary => {
  const g = profiles?.[name];
  if (!g) throw new Error(`the swarm's summary has no ${name} group`);
  return g;
};

async function slowloris(ctx: CellContext): Promise<Figures> {
  const s = ctx.scale;
  const from = ctx.sampler.elapsedSec();
  const summary = await ctx.finish(await ctx.swarm([
    '--mix', `slowloris:${at(s, ATTACKERS)},chatty:${at(s, HEALTHY)}@1s`, '--rate', '4000', '--hold', `${at(s, ATTACK_HOLD_S)}s`,
    '--command', 'echo 16', '--interval', '200ms', '--handshake-timeout', `${HEALTHY_PATIENCE_S}s`, '--source-ips', SOURCE_IPS,
  ]));
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

async function slowReaders(ctx: CellContext): Promise<Figures> {
  const s = ctx.scale;
  await sleep(500);
  const baseRss = ctx.sampler.last('rssBytes');
  const cutBefore = sumOf(await ctx.server.scrape(), CONNECTIONS_CLOSED.name, { reason: 'backpressure' });
  const from = ctx.sampler.elapsedSec();
  const summary = await ctx.finish(await ctx.swarm([
    '--mix', `slow-reader:${at(s, READERS)},chatty:${at(s, HEALTHY) / 2}@1s`, '--rate', '4000', '--hold', `${at(s, READ_HOLD_S)}s`,
    '--command', 'echo 16', '--interval', `${READ_INTERVAL_MS}ms`, '--read-rate', '0', '--source-ips', SOURCE_IPS,
  ]));
  const to = ctx.sampler.elapsedSec();
  const cut = sumOf(await ctx.server.scrape(), CONNECTIONS_CLOSED.name, { reason: 'backpressure' }) - cutBefore;
  const peak = ctx.sampler.max('rssBytes', from, to);
  return {
    readerRssGrowthBytes: peak !== null && baseRss !== null ? Math.max(0, peak - baseRss) : null,
    readerRssSlopeMiBps: rssSlope(ctx, from + (to - from) / 2, to),
    readersCut: cut,
    readerHealthyServedRate: group(summary.profiles, 'chatty').servedRate ?? null,
    readerCeilingBytes: at(s, READERS) * (MAX_BACKPRESSURE + FILL),
  };
}

/** Least-squares slope of the server's RSS over [from, to], MiB/s: ≈0 when a cap holds, the growth rate when not. */
function rssSlope(ctx: CellContext, from: number, to: number): number | null {
  const pts = ctx.sampler.samples('rssBytes', from, to);
  if (pts.length < 3) return null;
  const mt = pts.reduce((a, p) => a + p[0], 0) / pts.length;
  const mr = pts.reduce((a, p) => a + p[1], 0) / pts.length;
  const cov = pts.reduce((a, p) => a + (p[0] - mt) * (p[1] - mr), 0);
  const vt = pts.reduce((a, p) => a + (p[0] - mt) ** 2, 0);
  return vt > 0 ? +((cov / vt) / 2 ** 20).toFixed(1) : null;
}
