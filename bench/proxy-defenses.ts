/**
 * bench/proxy-defenses (issue 18): which slow attacks does nginx or HAProxy stop in front of a design, with the
 * Debian defaults and with the hardened profile, and after how long, while healthy clients keep asking? For one
 * design, five fronts — the design alone, and behind `--via nginx|haproxy --via-profile default|hardened` — and
 * against each, for each attack, one `wslab swarm --mix '<attack>:N,chatty:M@1s' --probe ping --server-metrics …`
 * held `--hold`. Read from the swarm's summary: the attackers' outcomes, close codes and time to cut (connect → cut,
 * p50 and max), those still held at the end, the chatty group's servedRate and connectSuccessRate, the probe's
 * availability, and the attribution (who cut them: the server's own counters, the rest the proxy's).
 *
 * The attacks (ATTACKS below) and the server flags each needs:
 * - `slowloris`, `slow-frame`, `slow-reader` (never reads): the design's defaults.
 * - `no-pong`: the server's pings are the point, and at the default 120 s idle timeout the first ping goes at 60 s,
 *   so the design runs with `--idle-timeout` `--ping-idle-timeout` (20 s: ping at 10 s, cut at 20 s).
 * - `silent`: the same no-pong client against a design with `--idle-timeout 0` (it never pings): only the proxy's
 *   own idle timeout can cut it.
 * The hold must let the defaults' 50 s (HAProxy) and 60 s (nginx) timeouts fire: ≈75 s. Five fronts × five attacks
 * one after another would be ≈30 min, so the five fronts of one attack run side by side (five servers, five swarms,
 * each from its own source addresses, 127.0.<source-net + attack>.<10 × front + 1…4>), the attacks one after the
 * other — except the never-reading clients, whose fronts run one at a time (they share the kernel's TCP memory, see
 * ATTACKS): ≈12 min in all. Side by side, the fronts share the 2 vCPUs: each round's noise guard (`box`, CPU used
 * outside the bench's own processes) is in its record, and the harness's over the whole bench; each row keeps the
 * box's peak TCP memory over its batch (`kernel`).
 *
 *   npm run bench -- proxy-defenses [--design uws] [--attackers 100] [--healthy 20] [--hold 75s] [--design 'threads --pool 256']
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Attribution } from '../client/attribution.js';
import { startSwarm, type ServerProcess } from '../lab/processes.js';
import { readBox } from '../lab/sockstat.js';
import { describeNoise, NoiseWatch } from '../metrics/noise.js';
import { PROXIES, VIA_PROFILES, type ProxyKind, type ViaProfile } from '../server/via/profiles.js';
import { BenchFailure, defineBench } from './harness/bench.js';
import { design, duration, integer, names } from './harness/options.js';
import { startServer } from './harness/server.js';

/**
 * An attack: the swarm profile it runs, the serve flags it needs (`pingIdle` = --ping-idle-timeout), and whether its
 * fronts may run side by side. Never-reading clients may not: what they pin is kernel socket memory, which the
 * fronts share. Side by side (a trial, 2026-12-07), 5 × 100 slow readers took the box's TCP memory to 391,352 pages,
 * past tcp_mem's pressure threshold (383,879), and every front's healthy clients then failed their upgrade, the
 * design alone included; one front at a time, the same 100 behind nginx left all 20 served.
 */
interface Attack { readonly profile: string; serveFlags(pingIdle: string): string[]; readonly sideBySide: boolean; readonly why: string }
const ATTACKS = {
  slowloris: { profile: 'slowloris', serveFlags: () => [], sideBySide: true, why: 'the upgrade request dribbled 4 bytes a second, never ended; design defaults' },
  'slow-frame': { profile: 'slow-frame', serveFlags: () => [], sideBySide: true, why: 'a 125-byte frame, its payload one byte a second; design defaults' },
  'no-pong': { profile: 'no-pong', serveFlags: (t) => ['--idle-timeout', t], sideBySide: true, why: 'never answers pings; the design pings at half its --idle-timeout' },
  silent: { profile: 'no-pong', serveFlags: () => ['--idle-timeout', '0'], sideBySide: true, why: 'sends nothing; the design never pings (--idle-timeout 0)' },
  'slow-reader': { profile: 'slow-reader', serveFlags: () => [], sideBySide: false, why: 'asks for `fill 1048576` every second and never reads; design defaults; fronts one at a time (kernel TCP memory is shared)' },
} as const satisfies Record<string, Attack>;
type AttackName = keyof typeof ATTACKS;
const ATTACK_NAMES = Object.keys(ATTACKS) as AttackName[];

/** A front: the design alone, or behind one proxy with one profile (server/via/profiles.ts). */
interface Front { readonly name: string; readonly proxy: ProxyKind | null; readonly profile: ViaProfile | null }
const FRONTS: readonly Front[] = [
  { name: 'direct', proxy: null, profile: null },
  ...PROXIES.flatMap((proxy) => VIA_PROFILES.map((profile) => ({ name: `${proxy} ${profile}`, proxy, profile }))),
];
const FRONT_NAMES = FRONTS.map((f) => f.name.replace(' ', '-'));
const viaFlags = (f: Front): string[] => (f.proxy ? ['--via', f.proxy, '--via-profile', f.profile!] : []);

export const bench = defineBench({
  name: 'proxy-defenses',
  describe: 'slowloris, slow-frame, no-pong, silent and never-reading clients against one design alone and behind nginx/HAProxy (default, hardened): cut by whom, after how long, healthy clients served',
  options: {
    design: design('uws', 'the design behind every front, with optional serve flags, e.g. "threads --pool 256"'),
    attackers: integer(100, 1, 5000, 'attackers per run'),
    healthy: integer(20, 1, 1000, 'chatty clients per run (echo 32 every second), joining 1 s into the attack'),
    hold: duration('75s', 'how long each run holds once every attempt settled (long enough for the 50 s / 60 s defaults)'),
    attacks: names(ATTACK_NAMES.join(','), ATTACK_NAMES, 'attacks, one round each, in order'),
    fronts: names(FRONT_NAMES.join(','), FRONT_NAMES, 'fronts, side by side in a round (an attack with sideBySide false: one after another)'),
    'ping-idle-timeout': duration('20s', "no-pong: the design's --idle-timeout (it pings at half)"),
    'source-net': integer(50, 2, 240, 'third octet of the first round\'s source addresses (127.0.N.x; round k uses N + k)'),
  },
  async run(o, report) {
    if (o.hold < 1000) throw new BenchFailure('--hold must be at least 1s');
    const fronts = FRONTS.filter((f) => o.fronts.includes(f.name.replace(' ', '-') as (typeof FRONT_NAMES)[number]));
    const loadBefore = loadavg();
    const t0 = performance.now();
    const dir = mkdtempSync(join(tmpdir(), 'wslab-proxy-defenses-'));
    const rounds = [];
    try {
      for (const [k, attack] of o.attacks.entries()) {
        const r = await round(attack, o['source-net'] + k, fronts, o, dir);
        rounds.push(r);
        report.line(r);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const rows = rounds.flatMap((r) => r.results);
    report.result({
      bench: 'proxy-defenses', command: report.command, node: process.version, date: new Date().toISOString(),
      design: o.design.label, attackers: o.attackers, healthy: o.healthy, holdSec: o.hold / 1000,
      sideBySide: `the ${fronts.length} fronts of each attack ran side by side (one server and one swarm each, own source addresses), except where an attack says sideBySide: false (one front after the other); the attacks one after the other`,
      attacks: Object.fromEntries(o.attacks.map((a) => [a, { profile: ATTACKS[a].profile, serveFlags: ATTACKS[a].serveFlags(`${o['ping-idle-timeout'] / 1000}s`), sideBySide: ATTACKS[a].sideBySide, what: ATTACKS[a].why }])),
      tcpMemPages: readBox().tcpMem,
      loadavgBefore: loadBefore.map((x) => +x.toFixed(2)), loadavgAfter: loadavg().map((x) => +x.toFixed(2)),
      runSec: Math.round((performance.now() - t0) / 1000),
      table: tableOf(rows, fronts, o.attacks, o.hold / 1000),
      rounds,
    });
  },
});
type Opts = Parameters<typeof bench.run>[0];

/** The parts of the swarm's summary read here (docs/swarm-summary.md). */
interface Summary {
  durationSec: number;
  warnings: string[];
  attribution: Attribution | null;
  probe: { sent: number; ok: number; available: number | null; failingSec: number | null } | null;
  profiles: Record<string, {
    attempted: number; opened: number; failed: number; heldAtEnd: number; lost?: number;
    connectSuccessRate?: number | null; servedRate?: number | null; requestsDue?: number; repliesOk?: number;
    rttMs?: { p50: number | null; p99: number | null };
    outcomes?: Record<string, number>; closeCodes?: Record<string, number>;
    timeToCutMs?: { p50: number | null; max: number | null; count: number };
  }>;
}

/** One row: one front against one attack. */
interface Row {
  front: string; attack: AttackName;
  /** yes: every attacker cut within the hold; no: none; partly: some */
  stopped: 'yes' | 'no' | 'partly';
  /** who cut them: the proxy (its name), the server, both, or none */
  cutBy: string;
  cut: number;
  cutAfterSec: { p50: number | null; max: number | null };
  attackersHeldAtEnd: number;
  /** Closes the server started during the run, by reason: behind a proxy they may not reach the client (see cellOf). */
  serverEnded: Record<string, number>;
  attackers: { attempted: number; opened: number; outcomes: Record<string, number>; closeCodes: Record<string, number> };
  healthy: { servedRate: number | null; connectSuccessRate: number | null; lost: number; rttMsP99: number | null };
  probe: { available: number | null; failingSec: number | null; sent: number } | null;
  attribution: Attribution | null;
  swarmExit: number | null;
  /** the swarm's run, start order to closed: shorter than the hold when nothing of it was left open */
  swarmSec: number;
  serverExitedEarly: boolean;
  /** the box's TCP memory over the batch this row ran in (side by side: shared with the other fronts) */
  kernel?: { sideBySide: number; tcpMemPeakMiB: number; tcpMemPeakPages: number; pressureThresholdPages: number; tcpMemoryPressures: number };
  warnings: string[];
}

const sec = (ms: number | null | undefined): number | null => (typeof ms === 'number' ? +(ms / 1000).toFixed(1) : null);

/**
 * One attack against every front: at once, or one front after another (`sideBySide: false`); fresh servers each
 * time. The box's TCP memory (/proc/net/sockstat) is sampled every 0.5 s over each batch: its peak and how often
 * the kernel entered memory pressure are kept with the batch's rows.
 */
async function round(attack: AttackName, net: number, fronts: readonly Front[], o: Opts, dir: string) {
  const a = ATTACKS[attack];
  const serveFlags = a.serveFlags(`${o['ping-idle-timeout'] / 1000}s`);
  const noise = new NoiseWatch(() => [process.pid]);
  const startedAt = new Date().toISOString();
  const t0 = performance.now();
  const results: Row[] = [];
  for (const batch of a.sideBySide ? [fronts] : fronts.map((f) => [f])) results.push(...await runBatch(attack, serveFlags, net, batch, o, dir));
  const box = noise.end();
  return { attack, profile: a.profile, serveFlags, sideBySide: a.sideBySide, startedAt, sec: Math.round((performance.now() - t0) / 1000), loadavg1: +loadavg()[0].toFixed(2), box, boxSaid: describeNoise(box), results };
}

async function runBatch(attack: AttackName, serveFlags: string[], net: number, fronts: readonly Front[], o: Opts, dir: string): Promise<Row[]> {
  const a = ATTACKS[attack];
  const servers: ServerProcess[] = [];
  const first = readBox();
  let peakPages = first.tcpMemPages;
  const sampler = setInterval(() => { peakPages = Math.max(peakPages, readBox().tcpMemPages); }, 500);
  try {
    for (const f of fronts) servers.push(await startServer(o.design, [...serveFlags, ...viaFlags(f)]));
    const swarms = await Promise.all(fronts.map((f, i) => {
      const lo = 10 * FRONTS.indexOf(f) + 1;
      return startSwarm(['--url', servers[i].url, '--mix', `${a.profile}:${o.attackers},chatty:${o.healthy}@1s`, '--probe', 'ping',
        '--server-metrics', servers[i].metricsUrl, '--hold', `${o.hold}ms`, '--source-ips', `127.0.${net}.${lo}-127.0.${net}.${lo + 3}`],
      join(dir, `${attack}-${FRONTS.indexOf(f)}.json`));
    }));
    const done = await Promise.all(swarms.map((s) => s.done));
    const exitedEarly = servers.map((s) => s.child.exitCode !== null || s.child.signalCode !== null);
    const last = readBox();
    const kernel = {
      sideBySide: fronts.length, tcpMemPeakMiB: +(peakPages * 4096 / 2 ** 20).toFixed(0), tcpMemPeakPages: peakPages,
      pressureThresholdPages: last.tcpMem[1], tcpMemoryPressures: last.tcpMemoryPressures - first.tcpMemoryPressures,
    };
    return fronts.map((f, i) => {
      const { code, summary, stderr } = done[i];
      if (!summary) throw new BenchFailure(`${attack} against ${f.name}: the swarm exited ${code} without a summary: ${stderr.trim().split('\n').slice(-3).join(' | ')}`);
      return { ...rowOf(f, attack, summary as unknown as Summary, a.profile, code, exitedEarly[i]), kernel };
    });
  } finally {
    clearInterval(sampler);
    await Promise.all(servers.map((s) => s.stop()));
  }
}

function rowOf(f: Front, attack: AttackName, s: Summary, profile: string, code: number | null, serverExitedEarly: boolean): Row {
  const p = s.profiles[profile];
  const h = s.profiles.chatty;
  const outcomes = p.outcomes ?? {};
  const cut = (outcomes.closed ?? 0) + (outcomes.ended ?? 0) + (outcomes.reset ?? 0) + (outcomes.rejected ?? 0);
  // outcomes.held, not heldAtEnd: a slowloris never opens a WebSocket, so it is held without being "open"
  const held = outcomes.held ?? 0;
  const att = s.attribution;
  // The server's counters say what it cut; with a proxy in front the rest is the proxy's. Without one, uWS's fixed
  // handshake timeout is not counted (`unattributed`): nobody else is there, so it is the server's.
  let cutBy = 'none';
  if (cut > 0) {
    if (!f.proxy || !att) cutBy = 'server';
    else if (att.byServer > 0 && (att.byProxy ?? 0) > 0) cutBy = `server ${att.byServer} + ${f.proxy} ${att.byProxy}`;
    else cutBy = att.byServer > 0 ? 'server' : f.proxy;
  }
  return {
    front: f.name, attack,
    stopped: held === 0 && cut > 0 ? 'yes' : cut === 0 ? 'no' : 'partly',
    cutBy, cut,
    cutAfterSec: { p50: sec(p.timeToCutMs?.p50), max: sec(p.timeToCutMs?.max) },
    attackersHeldAtEnd: held,
    serverEnded: att?.serverEnded ?? {},
    attackers: { attempted: p.attempted, opened: p.opened, outcomes, closeCodes: p.closeCodes ?? {} },
    healthy: { servedRate: h.servedRate ?? null, connectSuccessRate: h.connectSuccessRate ?? null, lost: h.lost ?? 0, rttMsP99: h.rttMs?.p99 ?? null },
    probe: s.probe ? { available: s.probe.available, failingSec: s.probe.failingSec, sent: s.probe.sent } : null,
    attribution: att, swarmExit: code, swarmSec: s.durationSec, serverExitedEarly, warnings: s.warnings,
  };
}

const PROXY_NAME: Record<ProxyKind, string> = { nginx: 'nginx', haproxy: 'HAProxy' };

/** One cell in words: "cut by nginx at 5.0 s (max 5.1)", "held 75 s", "40 cut by the server at …, 60 held". */
function cellOf(r: Row, holdSec: number): string {
  const who = r.cutBy === 'server' ? 'the server' : r.cutBy in PROXY_NAME ? PROXY_NAME[r.cutBy as ProxyKind] : r.cutBy;
  const when = `at ${r.cutAfterSec.p50?.toFixed(1)} s (max ${r.cutAfterSec.max?.toFixed(1)})`;
  const held = r.attackersHeldAtEnd;
  const served = `; healthy served ${r.healthy.servedRate === null ? '–' : `${(r.healthy.servedRate * 100).toFixed(0)} %`}`;
  // Behind a proxy the server may cut its side while the proxy keeps the client's open: the client is still held.
  const behind = Object.entries(r.serverEnded).map(([why, n]) => `${n} ${why}`).join(', ');
  if (r.stopped === 'no') return `held ${holdSec} s (${held}/${r.attackers.attempted})${behind ? `, though the server closed its side (${behind})` : ''}${served}`;
  if (r.stopped === 'yes') return `cut by ${who} ${when}${served}`;
  return `${r.cut} cut by ${who} ${when}, ${held} held ${holdSec} s${served}`;
}

function tableOf(rows: readonly Row[], fronts: readonly Front[], attacks: readonly AttackName[], holdSec: number) {
  return Object.fromEntries(fronts.map((f) => [f.name, Object.fromEntries(attacks.map((a) => {
    const r = rows.find((x) => x.front === f.name && x.attack === a);
    return [a, r ? cellOf(r, holdSec) : null];
  }))]));
}
