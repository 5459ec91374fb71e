import type { SwarmFlags } from '../../client/flags.js';
import type { ReconnectMode } from '../../client/reconnect.js';
import { HANDSHAKES_REJECTED } from '../../metrics/index.js';
import { sumOf } from '../../metrics/exposition.js';
import { is, oneLoop } from '../designs.js';
import { at, defineScenario, SOURCE_IPS, sleep, type CellContext } from '../scenario.js';

const N = { quick: 1000, default: 10_000, full: 19_000 } as const;
const RATE = { quick: 4000, default: 5000, full: 5000 } as const;
/** After the restart: how long the clients have to come back before the hold ends. */
/**
 * After the restart: how long the clients have to come back before the hold ends. Backoff with full jitter has a
 * long tail after a short outage (measured at quick with 5 s: 46 and 52 of 1,000 still waiting, their ceilings at
 * 4–8 s after three refused retries), so the window is several ceilings long.
 */
const RECOVERY_S = { quick: 10, default: 20, full: 30 } as const;
/** Held before the restart, and the time the server stays down (a deploy's stop → start). */
const SETTLE_MS = 1000;
const DOWN_MS = 1000;
/** Both policies wait 1 s: lockstep every retry, backoff as the ceiling of the first (then doubling, full jitter, up to 30 s). */
const DELAY_MS = 1000;
const MAX_MS = 30_000;

/** The two client policies compared, in the order they run, and the figure-key prefix of each. */
const POLICIES = [['lockstep', 'fixed'], ['jitter', 'backoff']] as const satisfies readonly (readonly [string, Exclude<ReconnectMode, 'off'>])[];
type Policy = (typeof POLICIES)[number][0];
type PhaseKey = 'BackSec' | 'Refused' | 'ConnectP99Ms' | 'PeakCpuCores' | 'PeakRssBytes' | 'Rejected' | 'StillDown';
type StormFigures = Record<`${Policy}${PhaseKey}`, number | null>;

const COLUMNS = POLICIES.flatMap(([p, mode]) => {
  const who = mode === 'fixed' ? 'lockstep' : 'backoff + jitter';
  return [
    { key: `${p}BackSec`, label: `${who}: all back after restart`, unit: 's' },
    { key: `${p}StillDown`, label: `${who}: not back`, unit: 'connections' },
    { key: `${p}Refused`, label: `${who}: retries refused`, unit: 'attempts' },
    { key: `${p}ConnectP99Ms`, label: `${who}: reconnect p99`, unit: 'ms' },
    { key: `${p}PeakCpuCores`, label: `${who}: server CPU peak`, unit: 'cores' },
    { key: `${p}PeakRssBytes`, label: `${who}: server RSS peak`, unit: 'bytes' },
    { key: `${p}Rejected`, label: `${who}: upgrades refused`, unit: 'upgrades' },
  ];
}) as { key: keyof StormFigures & string; label: string; unit: string }[];

/**
 * A deploy under load: N idle clients held, the server restarted (SIGTERM: every client gets 1001; down 1 s; the same
 * server on the same port), every client reconnecting — in lockstep every second, or with exponential backoff and
 * full jitter. How long until all are back, how many retries the down server refused, whether the herd overflowed
 * the listen backlog (SYN retransmits: reconnects of ≥ 1 s), and what the herd cost the server.
 */
export const reconnectStorm = defineScenario<StormFigures>({
  id: 'reconnect-storm',
  title: 'Reconnect storm',
  question: 'When a server restarts under many held connections, how long until they are all back: clients retrying in lockstep, or with backoff and full jitter?',
  claims: [],
  // it restarts servers, and takes ≈40 s per design at default: run when named (`--scenarios reconnect-storm`)
  optIn: true,
  serverOptions: { idleTimeoutMs: 0 },
  // connections are only held: any WebSocket server the lab starts (and so can restart) will do
  needs: [],
  columns: COLUMNS,
  designs: (all, scale) => all.filter((d) => !is.pool(d) && (scale === 'full' || !is.processes(d)) && oneLoop(all, scale)(d)),
  method: (s) => `Twice per design: a swarm opens ${at(s, N).toLocaleString('en-US')} idle connections at ${at(s, RATE)}/s from ${SOURCE_IPS}; ` +
    `${SETTLE_MS / 1000} s after they are all open the lab restarts the server (SIGTERM, so every client gets 1001; down ${DOWN_MS / 1000} s; ` +
    `the same server on the same port) and the clients reconnect — first in lockstep (\`--reconnect fixed\`, every ${DELAY_MS / 1000} s, no jitter), ` +
    `then with exponential backoff and full jitter (\`--reconnect backoff\`: uniform(0, min(${MAX_MS / 1000} s, ${DELAY_MS / 1000} s × 2^retry))). ` +
    `They have ${at(s, RECOVERY_S)} s to come back. "All back" is from the new server ready to the last reconnect ("not back": still waiting or ` +
    'reconnecting when the hold ended); a reconnect p99 of ≥ 1 s means SYNs the full listen backlog dropped and the kernel retransmitted. ' +
    'The server\'s CPU and RSS peaks are sampled from the restart on; "upgrades refused" is the new server\'s own count.',
  seconds: (s) => 2 * (at(s, N) / at(s, RATE) + (SETTLE_MS + DOWN_MS) / 1000 + at(s, RECOVERY_S) + 3),
  async run(ctx) {
    const figures = {} as StormFigures;
    for (const [p, mode] of POLICIES) Object.assign(figures, await storm(ctx, p, mode));
    return figures;
  },
  judge: () => [],
  profileLoad: (sec) => [{ atSec: 0, flags: { ...hold(1000, sec * 1000), reconnect: 'fixed', reconnectDelayMs: DELAY_MS } }],
});

const hold = (connections: number, holdMs: number): Partial<SwarmFlags> =>
  ({ connections, rate: 5000, holdMs, profile: 'idle', sourceIps: SOURCE_IPS });

/** One restart under one policy: its figures, keyed with the policy's prefix. */
async function storm(ctx: CellContext, p: Policy, mode: Exclude<ReconnectMode, 'off'>): Promise<Partial<StormFigures>> {
  const n = at(ctx.scale, N);
  const holdMs = SETTLE_MS + DOWN_MS + at(ctx.scale, RECOVERY_S) * 1000;
  const run = await ctx.swarm({ ...hold(n, holdMs), rate: at(ctx.scale, RATE), reconnect: mode, reconnectDelayMs: DELAY_MS, ...(mode === 'backoff' ? { reconnectMaxMs: MAX_MS } : {}) });
  // the hold starts once every attempt has settled: wait for them all to be open (or for the ramp to have had its time)
  const rampUntil = performance.now() + (n / at(ctx.scale, RATE)) * 1000 + 5000;
  while ((ctx.sampler.last('open') ?? 0) < n && performance.now() < rampUntil) await sleep(100);
  await sleep(SETTLE_MS);
  const from = ctx.sampler.elapsedSec();
  const { upAtMs } = await ctx.restart(DOWN_MS);
  const s = await ctx.finish(run);
  const r = s.reconnect;
  if (!r) throw new Error('the swarm reported no reconnect figures');
  const rejected = sumOf(await ctx.server.scrape(), HANDSHAKES_REJECTED.name);
  if (r.allBackAtMs === null) ctx.note(`${mode}: ${r.stillDown} of ${s.lost.total} dropped connections were not back ${at(ctx.scale, RECOVERY_S)} s after the restart`);
  const key = (k: PhaseKey): `${Policy}${PhaseKey}` => `${p}${k}`;
  return {
    [key('BackSec')]: r.allBackAtMs === null ? null : Math.max(0, (r.allBackAtMs - upAtMs) / 1000),
    [key('Refused')]: r.failed.total,
    [key('ConnectP99Ms')]: r.connectLatencyMs.p99,
    [key('PeakCpuCores')]: ctx.sampler.max('cpuCores', from),
    [key('PeakRssBytes')]: ctx.sampler.max('rssBytes', from),
    [key('Rejected')]: rejected,
    [key('StillDown')]: r.stillDown,
  };
}
