/**
 * bench/peers' report: the swarm against each other peer at each N (ratios), the done-when verdict, the JSON and the
 * markdown table.
 */
import { cpus, totalmem } from 'node:os';
import { round } from './peer.js';
import type { RunResult } from './run-one.js';

export interface PeerResult extends RunResult {
  baselineBytes: number | null; baselineSource: string | null; bytesPerConnMinusBaseline: number | null; bytesPerConnMethod: string;
  bytesPerConnMinusPreconnect: number | null;
}
export type PeerInfo = Record<string, { version: string | null; unavailable: string | null; baseline?: Record<string, unknown> }>;

/** What the report states about the run besides its results. */
export interface RunFacts {
  readonly started: string;
  readonly command: string;
  readonly connections: readonly number[];
  readonly peers: readonly string[];
  readonly holdSec: number;
  readonly rampSampleMs: number;
  readonly sampleMs: number;
  /** --source-ips as written, or null when none */
  readonly sourceIps: string | null;
  readonly baseline: string;
}

/** The JSON report and its markdown table. */
export function peersReport(f: RunFacts, peerInfo: PeerInfo, results: PeerResult[]): { report: Record<string, unknown>; md: string } {
  const CONNECTIONS = f.connections, PEERS = f.peers;
  // null unless both are positive (a per-connection figure within the RSS noise can come out ≤ 0 at small N)
  const ratio = (x: number | null | undefined, y: number | null | undefined) => (x != null && y != null && x > 0 && y > 0 ? round(x / y, 2) : null);
  const comparisons = CONNECTIONS.map((n) => {
    const at = (p: string) => results.find((r) => r.peer === p && r.connections === n);
    const sw = at('swarm');
    return {
      connections: n,
      vs: Object.fromEntries(PEERS.filter((p) => p !== 'swarm').map((p) => {
        const o = at(p);
        return [p, {
          // how many times less client RSS per held connection the swarm needs, and how many times faster it opens
          rssPerConnMinusBaselineTimes: ratio(o?.bytesPerConnMinusBaseline, sw?.bytesPerConnMinusBaseline),
          rssPerConnTotalTimes: ratio(o?.bytesPerConnTotal, sw?.bytesPerConnTotal),
          openRateTimes: ratio(sw?.openRatePerSec, o?.openRatePerSec),
          // worst case for the swarm within the 250 ms sampling: its slowest ramp vs the peer's fastest
          openRateTimesWorstCase: ratio(sw?.openRateBounds?.[0], o?.openRateBounds?.[1] ?? null),
        }];
      })),
    };
  });
  const art15 = comparisons.find((c) => c.connections === 15000)?.vs.artillery;
  // issue 22's bar (it replaced issue 4's ×5 RSS, ×10 open rate)
  const [RSS_TIMES, RATE_TIMES] = [10, 8];
  const doneWhen = art15 ? {
    rule: `at 15,000: wslab swarm ≥ ${RATE_TIMES}× Artillery's open rate and ≥ ${RSS_TIMES}× less client RSS per held connection, same run`,
    rssMinusBaseline: art15.rssPerConnMinusBaselineTimes, rssTotal: art15.rssPerConnTotalTimes, openRate: art15.openRateTimes,
    openRateWorstCase: art15.openRateTimesWorstCase,
    // each half on its own, so a report says which one fails
    rssHolds: art15.rssPerConnMinusBaselineTimes !== null ? art15.rssPerConnMinusBaselineTimes >= RSS_TIMES : null,
    rssHoldsOnTotal: art15.rssPerConnTotalTimes !== null ? art15.rssPerConnTotalTimes >= RSS_TIMES : null,
    openRateHolds: art15.openRateTimes !== null ? art15.openRateTimes >= RATE_TIMES : null,
  } : null;

  const report = {
    bench: 'peers', started: f.started, finished: new Date().toISOString(),
    command: f.command,
    machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, memBytes: totalmem(), node: process.version },
    sampleColumns: 'each result\'s `samples`: seconds since the peer was launched, server open gauge, client tree RSS MiB, its anonymous part MiB, client CPU s',
    job: { holdSec: f.holdSec, server: 'one `wslab serve --design uws --port 0 --metrics-port 0` per run, fresh', rampSampleMs: f.rampSampleMs, holdSampleMs: f.sampleMs, sourceIps: f.sourceIps, baseline: f.baseline },
    peers: peerInfo, results, comparisons, doneWhen,
  };

  const verdict = (x: boolean | null) => (x === null ? 'not measured' : x ? 'holds' : 'does NOT hold');
  const kb = (b: number | null | undefined) => (b == null ? '–' : `${(b / 1000).toFixed(2)} KB`);
  const int = (x: number | null | undefined) => (x == null ? '–' : Math.round(x).toLocaleString('en-US'));
  const selfWarnings = (r: PeerResult): string => {
    const w = (r.self?.warnings ?? []) as string[];
    return w.length ? `; its own warning: ${w.map((x) => x.split(':')[0]).join('; ')}` : '';
  };
  const rows = results.map((r) => {
    const errs = Object.entries(r.errors ?? {}).map(([k, v]) => `${k} ${v}`).join(', ') || '0';
    const rate = r.openRatePerSec == null ? '–' : `${int(r.openRatePerSec)}/s (${int(r.openRateBounds?.[0])}–${r.openRateBounds?.[1] == null ? '∞' : int(r.openRateBounds[1])})`;
    return `| ${int(r.connections)} | ${r.peer} | ${r.held == null ? '–' : `${int(r.heldMid)} / ${int(r.held)}`} | ${r.openSec == null ? '–' : `${r.openSec} s`} | ${rate} | ${kb(r.bytesPerConnMinusBaseline)} (${kb(r.bytesPerConnMinusPreconnect)}) | ${kb(r.bytesPerConnTotal)} | ${r.rssPeakHoldBytes == null ? '–' : `${(r.rssPeakHoldBytes / 2 ** 20).toFixed(1)} MiB (${((r.rssAnonPeakHoldBytes ?? 0) / 2 ** 20).toFixed(1)} MiB)`} | ${r.cpuSeconds ?? '–'} s | ${errs} | ${r.why.join('; ') || 'held the job'}${selfWarnings(r)}${r.otherCpusDuringRamp != null ? `; other work on the box during the ramp: ${r.otherCpusDuringRamp} CPUs` : ''} |`;
  });
  const md = [
    '| connections | peer | held, server gauge (mid / end of hold) | time to open | open rate (bounds) | client RSS per held conn, peak − idle baseline (− pre-connect RSS instead) | client RSS per held conn, total ÷ held | client tree RSS, peak (anonymous part) | client CPU (launch → end of hold) | errors | notes |',
    '|---:|---|---:|---:|---:|---:|---:|---:|---:|---|---|',
    ...rows,
    '',
    ...comparisons.flatMap((c) => Object.entries(c.vs).map(([p, v]) => `- ${int(c.connections)}: swarm vs ${p}: RSS per held connection ×${v.rssPerConnMinusBaselineTimes ?? '–'} less (baseline subtracted), ×${v.rssPerConnTotalTimes ?? '–'} less (total ÷ held); opens ×${v.openRateTimes ?? '–'} faster (worst case within the sampling ×${v.openRateTimesWorstCase ?? '–'})`)),
    ...(doneWhen ? [`- done-when (${doneWhen.rule}): RSS ×${doneWhen.rssMinusBaseline ?? '–'} with the idle baseline subtracted: ${verdict(doneWhen.rssHolds)} (×${doneWhen.rssTotal ?? '–'} on total RSS ÷ held: ${verdict(doneWhen.rssHoldsOnTotal)}); open rate ×${doneWhen.openRate ?? '–'}: ${verdict(doneWhen.openRateHolds)}`] : []),
    '',
  ].join('\n');
  return { report, md };
}
