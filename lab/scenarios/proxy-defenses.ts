import type { SwarmFlags } from '../../client/flags.js';
import { PROXIES, VIA_PROFILES } from '../../server/via/profiles.js';
import { missing, num, verdict, type JudgedCell } from '../claims.js';
import { behind, is, POOL_SIZE_DOS, withWorkers, type LabDesign } from '../designs.js';
import type { Claim, Column } from '../results.js';
import { at, defineScenario, SOURCE_IPS, type Scale } from '../scenario.js';

/**
 * The slow clients a proxy is put in front to stop, and how each is run: `slowloris` never finishes its request head,
 * `slow-frame` dribbles a frame's payload a byte a second, `no-pong` never answers the server's pings (the design
 * pings at half its 20 s idle timeout here), `slow-reader` asks for 1 MiB replies and never reads them.
 */
const ATTACKS = ['slowloris', 'slow-frame', 'no-pong', 'slow-reader'] as const;
type Attack = (typeof ATTACKS)[number];
const ATTACKS_AT: Record<Exclude<Scale, 'max'>, readonly Attack[]> = { quick: ['slowloris'], default: ATTACKS, full: ATTACKS };
const ATTACKERS = { quick: 100, default: 100, full: 100 } as const;
const HEALTHY = 20;
/**
 * Each attack's hold: long enough for the designs' own cuts (uWS's fixed 10 s handshake timeout, the 20 s idle
 * timeout, the 1 MiB send cap) and the hardened proxies' 5 s; the distributions' 50 and 60 s timeouts fire only at
 * `full`. Held past the design's own cut is what "worse" means below.
 */
const HOLD_S = { quick: 15, default: 25, full: 75 } as const;
const IDLE_TIMEOUT_MS = 20_000;
/** Cut later than this × the design alone (plus a second) counts as held longer: worse. */
const LATER = 1.5;

type Key = 'CutSec' | 'Held' | 'ByProxy' | 'Served';
type ProxyFigures = Record<`${Attack}${Key}`, number | null>;
const key = (a: Attack, k: Key): `${Attack}${Key}` => `${a}${k}`;

const columnsOf = (attacks: readonly Attack[]): Column<keyof ProxyFigures>[] => attacks.flatMap((a) => [
  { key: key(a, 'CutSec'), label: `${a}: cut at p50`, unit: 's' },
  { key: key(a, 'Held'), label: `${a}: held at the end`, unit: 'attackers' },
  { key: key(a, 'Served'), label: `${a}: healthy served`, unit: 'ratio' },
] as Column<keyof ProxyFigures>[]);

/**
 * Does a proxy in front stop the slow clients a WebSocket server fears, pass them through to the server's own
 * defences, or make them worse? For the standing loop and `threads --pool 256`, each reached directly and behind
 * nginx and HAProxy with the distribution's settings and hardened ones (server/via/profiles.ts): every attack in
 * turn with healthy clients beside it, who cut each attacker (the server's counters against the proxy's:
 * client/attribution.ts) and when. Opt-in: ten cells of a minute and a half at default.
 */
export const proxyDefenses = defineScenario<ProxyFigures>({
  id: 'proxy-defenses',
  title: 'Proxy defences',
  question: 'Does nginx or HAProxy in front stop slow clients, pass them through to the server, or make them worse?',
  claims: ['proxy-shield'],
  judgesProxied: true,
  optIn: true,
  serverOptions: { idleTimeoutMs: IDLE_TIMEOUT_MS },
  columns: columnsOf(ATTACKS),
  columnsAt: (scale) => columnsOf(at(scale, ATTACKS_AT)),
  designs: (all, scale) => {
    const loop = all.find(is.standingLoop) ?? all.find(is.loop);
    const pool = scale !== 'quick' && all.some(is.pool) ? withWorkers('threads', POOL_SIZE_DOS) : undefined;
    return [loop, pool].filter((d): d is LabDesign => d !== undefined)
      .flatMap((d) => [d, ...PROXIES.flatMap((p) => VIA_PROFILES.map((v) => behind(d, p, v)))]);
  },
  method: (s) => `For each front — the design alone, then behind nginx and HAProxy, each with the Debian package's settings and ` +
    `hardened ones — every attack in turn: ${at(s, ATTACKS_AT).join(', ')}, ${at(s, ATTACKERS)} attackers each with ${HEALTHY} healthy ` +
    `clients (\`chatty\`, \`echo 32\` every 500 ms) joining 1 s in, held ${at(s, HOLD_S)} s (the design's idle timeout ${IDLE_TIMEOUT_MS / 1000} s, ` +
    `pinging at half). Per attack: when the attackers were cut (p50), how many were still held at the end, the healthy clients' served ` +
    `rate, and who cut them (the server's counters against the proxy's). Against the design alone, a front *stops* an attack it ` +
    `cuts itself, *passes* one the design cuts behind it, and is *worse* where it holds attackers the design alone had cut, or ` +
    `cuts them more than ${LATER}× later.`,
  seconds: (s) => at(s, ATTACKS_AT).length * (at(s, HOLD_S) + 3),
  async run(ctx) {
    const figures = {} as ProxyFigures;
    for (const a of at(ctx.scale, ATTACKS_AT)) {
      const s = await ctx.finish(await ctx.swarm(load(a, at(ctx.scale, ATTACKERS), at(ctx.scale, HOLD_S) * 1000)));
      const p = s.profiles[a];
      const cut = p?.timeToCutMs;
      const by = s.attribution;
      Object.assign(figures, {
        [key(a, 'CutSec')]: cut && cut.count > 0 && cut.p50 !== null ? cut.p50 / 1000 : null,
        [key(a, 'Held')]: p?.outcomes?.held ?? null,
        // of what ended without the swarm asking, the share the proxy cut (null directly: no proxy to cut it)
        [key(a, 'ByProxy')]: by && by.byProxy !== null && by.endedUnasked > 0 ? by.byProxy / by.endedUnasked : null,
        [key(a, 'Served')]: s.profiles.chatty?.servedRate ?? null,
      });
    }
    return figures;
  },
  judge,
  profileLoad: (sec) => [{ atSec: 0, flags: load('slowloris', 100, sec * 1000) }],
});

const load = (a: Attack, n: number, holdMs: number): Partial<SwarmFlags> =>
  ({ mix: `${a}:${n},chatty:${HEALTHY}@1s`, holdMs, intervalMs: 500, sourceIps: SOURCE_IPS });

type Outcome = 'stops' | 'passes' | 'worse' | 'better' | 'neither';

/**
 * What a front does to one attack against the same design alone: `worse` if it holds attackers the design cut, or
 * cuts them over LATER× later; `better` if it cuts what the design held; `stops` if it cuts them itself; `passes` if
 * the design behind it cuts them as it would alone; `neither` if neither cut them within the hold.
 */
function outcome(direct: ProxyFigures, front: ProxyFigures, a: Attack): Outcome | null {
  // not run at this scale, or not measured
  const dHeld = num(direct[key(a, 'Held')]), fHeld = num(front[key(a, 'Held')]);
  if (dHeld === null || fHeld === null) return null;
  const dCut = dHeld === 0, fCut = fHeld === 0;
  if (dCut && !fCut) return 'worse';
  if (!dCut && fCut) return 'better';
  if (!dCut && !fCut) return 'neither';
  const dAt = direct[key(a, 'CutSec')] ?? 0, fAt = front[key(a, 'CutSec')] ?? 0;
  if (fAt > dAt * LATER + 1) return 'worse';
  return (front[key(a, 'ByProxy')] ?? 0) > 0.5 ? 'stops' : 'passes';
}

/**
 * Confirmed when every front, in front of every design measured, makes no attack worse and itself cuts (stops, or
 * better) at least one; refuted when a front makes one worse or cuts none; the evidence gives each front's outcome per
 * attack.
 */
function judge(cells: readonly JudgedCell<ProxyFigures>[]): Claim[] {
  const lines: string[] = [];
  let worse = false;
  let idle = false;
  let fronts = 0;
  for (const direct of cells.filter((c) => !c.traits.via)) {
    const base = direct.design;
    for (const front of cells.filter((c) => c.traits.via && c.design.startsWith(`${base} --via `))) {
      const got = ATTACKS.map((a) => [a, outcome(direct.figures as ProxyFigures, front.figures as ProxyFigures, a)] as const)
        .filter((x): x is readonly [Attack, Outcome] => x[1] !== null);
      if (got.length === 0) continue;
      fronts++;
      worse ||= got.some(([, o]) => o === 'worse');
      idle ||= !got.some(([, o]) => o === 'stops' || o === 'better');
      const said = got.map(([a, o]) => `${o} on ${a}${o === 'worse' ? ` (${describe(front.figures as ProxyFigures, a)}; alone ${describe(direct.figures as ProxyFigures, a)})` : ''}`);
      lines.push(`${front.traits.via} in front of ${base}: ${said.join(', ')}`);
    }
  }
  if (fronts === 0) return [missing('proxy-shield', 'proxy-defenses', 'design measured both alone and behind a proxy')];
  return [verdict('proxy-shield', worse || idle ? 'refuted' : 'confirmed', lines.join('; '))];
}

function describe(f: ProxyFigures, a: Attack): string {
  const held = f[key(a, 'Held')];
  const cut = f[key(a, 'CutSec')];
  return held ? `${held} held to the end` : `cut at ${cut === null ? '?' : `${cut.toFixed(1)} s`}`;
}
