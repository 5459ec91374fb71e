/**
 * `wslab swarm merge`: the summaries of several swarms (the shards of one run, on as many pods or hosts) combined
 * into one summary of the same shape (docs/swarm-summary.md). Counts add; latency percentiles are recomputed from
 * the added HDR histograms each summary carries (`histograms`), never averaged; instants are put on one wall-clock
 * time line through each summary's `clock` (machines' clocks are assumed in sync to within what the reader needs).
 */
import * as hdr from 'hdr-histogram-js';
import { UsageError } from '../core/errors.js';
import { latencyHistogram } from './profiles.js';
import type { AttackSummary, HealthySummary, Summary } from './recorder.js';
import { assembleSummary, attackGroup, exactRate, healthyGroup, round3, type ProbeParts } from './summary.js';

/** One summary and where it came from (named in errors and warnings). */
export interface Source {
  readonly name: string;
  readonly summary: Summary;
}

/** Throws a one-line UsageError naming the file when `value` is not a summary this version can merge. */
export function checkSummary(name: string, value: unknown): Summary {
  const s = value as Partial<Summary> | null;
  if (typeof s !== 'object' || s === null || typeof s.target !== 'number' || typeof s.opened !== 'number') {
    throw new UsageError(`${name}: not a wslab swarm summary (write one with wslab swarm --summary FILE)`);
  }
  if (typeof s.histograms?.connectUs !== 'string' || typeof s.histograms?.rttUs !== 'string' || typeof s.clock?.startedAtMs !== 'number') {
    throw new UsageError(`${name}: has no histograms or clock (written by an older wslab): its percentiles cannot be merged exactly; rerun the swarm`);
  }
  return s as Summary;
}

const sumKeys = (records: Record<string, number>[]): Record<string, number> => {
  const out: Record<string, number> = {};
  for (const r of records) for (const [k, v] of Object.entries(r)) out[k] = (out[k] ?? 0) + v;
  return out;
};
const total = (xs: Source[], f: (s: Summary) => number): number => xs.reduce((a, x) => a + f(x.summary), 0);
const nonNull = (xs: (number | null)[]): number[] => xs.filter((x): x is number => x !== null);

/** Checks that sharded summaries belong to one run: same N and total, no index twice; lists missing shards. */
function shardSet(xs: Source[]): { labels: string[]; warnings: string[] } {
  const sharded = xs.filter((x) => x.summary.shard !== null);
  if (sharded.length === 0) return { labels: [], warnings: [] };
  if (sharded.length !== xs.length) {
    const plain = xs.find((x) => x.summary.shard === null)!;
    throw new UsageError(`${plain.name} is not a shard but ${sharded[0].name} is (--shard): merge the shards of one run together`);
  }
  const first = sharded[0];
  const { of, totalTarget } = first.summary.shard!;
  const seen = new Map<number, string>();
  for (const x of sharded) {
    const s = x.summary.shard!;
    if (s.of !== of || s.totalTarget !== totalTarget) {
      throw new UsageError(`${x.name} is shard ${s.index}/${s.of} of ${s.totalTarget} connections but ${first.name} is of ${of} shards of ${totalTarget}: not the same run`);
    }
    if (seen.has(s.index)) throw new UsageError(`${x.name} and ${seen.get(s.index)} are both shard ${s.index}/${of}: give each shard once`);
    seen.set(s.index, x.name);
  }
  const missing = Array.from({ length: of }, (_, i) => i).filter((i) => !seen.has(i));
  const warnings = missing.length === 0 ? [] : [
    `shard${missing.length === 1 ? '' : 's'} ${missing.join(', ')} of ${of} missing: this merge covers ${total(xs, (s) => s.target)} of the run's ${totalTarget} connections`,
  ];
  return { labels: [...seen.keys()].sort((a, b) => a - b).map((i) => `${i}/${of}`), warnings };
}

/**
 * The per-profile sections added. A shard runs one group (`--shard` refuses `--mix`), so a healthy group's latencies
 * are the merged top-level ones; summaries of several groups (a `--mix` run) are refused, since their per-group
 * histograms are not in the summary. An attack group's `timeToCutMs` has no histogram either: its count adds and
 * its percentiles are left out (null) rather than averaged.
 */
function mergeProfiles(xs: Source[], connect: hdr.Histogram, rtt: hdr.Histogram): { profiles: Summary['profiles']; warnings: string[] } {
  const each = xs.map((x) => Object.values(x.summary.profiles ?? {}));
  if (each.every((g) => g.length === 0)) return { profiles: {}, warnings: [] };
  const bare = xs.find((_, i) => each[i].length === 0);
  if (bare) throw new UsageError(`${bare.name} has no per-profile section (written by an older wslab) but ${xs.find((_, i) => each[i].length > 0)!.name} has: rerun the swarm`);
  const several = xs.find((_, i) => each[i].length > 1);
  if (several) throw new UsageError(`${several.name}: a --mix run (${Object.keys(several.summary.profiles).join(', ')}): its groups cannot be merged with others; merge single-profile shards`);
  const names = new Set(xs.map((x) => Object.keys(x.summary.profiles ?? {})[0]));
  if (names.size !== 1) {
    throw new UsageError(`profiles differ (${[...names].map(String).join(', ')}): merge the shards of one run, which share one --profile`);
  }
  const name = [...names][0];
  const groups = each.map((g) => g[0]);
  const add = <T>(f: (g: T) => number): number => (groups as T[]).reduce((a, g) => a + f(g), 0);
  const attempted = add<HealthySummary>((g) => g.attempted);
  const opened = add<HealthySummary>((g) => g.opened);
  const counts = {
    target: add<HealthySummary>((g) => g.target), startAfterSec: groups[0].startAfterSec, attempted, opened,
    failed: add<HealthySummary>((g) => g.failed), heldAtEnd: add<HealthySummary>((g) => g.heldAtEnd),
    deflated: groups.some((g) => g.deflated != null) ? add<HealthySummary>((g) => g.deflated ?? 0) : null,
  };
  if (groups[0].role === 'healthy') {
    const merged = healthyGroup({
      ...counts, lost: add<HealthySummary>((g) => g.lost),
      requestsDue: add<HealthySummary>((g) => g.requestsDue), repliesOk: add<HealthySummary>((g) => g.repliesOk),
      replyErrors: add<HealthySummary>((g) => g.replyErrors ?? 0), unmatched: add<HealthySummary>((g) => g.unmatched ?? 0),
      sending: groups.some((g) => (g as HealthySummary).servedRate !== null),
    }, connect, rtt, exactRate);
    // pushes: counts add; the gap percentiles and the rate need histograms and seconds the summary does not keep
    const pushes = (groups as HealthySummary[]).map((g) => g.push).filter((u) => u != null);
    if (pushes.length > 0) {
      merged.push = {
        messages: pushes.reduce((a, u) => a + u.messages, 0), perConnectionPerSec: null,
        gapMs: { p50: null, p90: null, p99: null, p999: null, max: null, count: pushes.reduce((a, u) => a + u.gapMs.count, 0) },
        stalled: pushes.reduce((a, u) => a + u.stalled, 0), stallAfterSec: pushes[0].stallAfterSec,
      };
      return { profiles: { [name]: merged }, warnings: [`${name}: push gap percentiles and the per-connection rate are not merged; counts added`] };
    }
    return { profiles: { [name]: merged }, warnings: [] };
  }
  const attacks = groups as AttackSummary[];
  const merged = attackGroup({
    ...counts,
    outcomes: sumKeys(attacks.map((g) => g.outcomes)) as AttackSummary['outcomes'],
    closeCodes: sumKeys(attacks.map((g) => g.closeCodes as Record<string, number>)),
    timeToCutMs: { p50: null, p90: null, p99: null, p999: null, max: null, count: add<AttackSummary>((g) => g.timeToCutMs.count) },
    bytesSent: add<AttackSummary>((g) => g.bytesSent), bytesReceived: add<AttackSummary>((g) => g.bytesReceived),
    messages: sumKeys(attacks.map((g) => g.messages)) as AttackSummary['messages'],
  }, connect);
  return { profiles: { [name]: merged }, warnings: [`${name}: timeToCutMs percentiles are not merged (the summary keeps no histogram of them); count added`] };
}

/**
 * The probes added: each swarm probed on its own from its own start, so `sent` and `ok` add (and `available` is
 * their ratio again) but the time fields do not, and are left out (null). The round trips add as histograms.
 */
function mergeProbes(xs: Source[]): { probe: ProbeParts | null; warnings: string[] } {
  // a summary written before --probe existed has no `probe` key: as one without the flag
  const probed = xs.filter((x) => (x.summary.probe ?? null) !== null);
  if (probed.length === 0) return { probe: null, warnings: [] };
  const bare = xs.find((x) => (x.summary.probe ?? null) === null);
  if (bare) throw new UsageError(`${bare.name} has no probe but ${probed[0].name} has (--probe ${probed[0].summary.probe!.mode}): merge the shards of one run together`);
  const first = probed[0].summary.probe!;
  const other = probed.find((x) => x.summary.probe!.mode !== first.mode || x.summary.probe!.intervalSec !== first.intervalSec);
  if (other) throw new UsageError(`${other.name} probed with ${other.summary.probe!.mode} but ${probed[0].name} with ${first.mode}: merge the shards of one run together`);
  const rtt = latencyHistogram();
  for (const x of probed) {
    if (typeof x.summary.histograms.probeRttUs !== 'string') throw new UsageError(`${x.name}: has a probe but no probe histogram: rerun the swarm`);
    try {
      rtt.add(hdr.decodeFromCompressedBase64(x.summary.histograms.probeRttUs));
    } catch (err) {
      throw new UsageError(`${x.name}: its probe histogram does not decode (${(err as Error).message})`);
    }
  }
  return {
    probe: {
      mode: first.mode, intervalSec: first.intervalSec, sent: total(xs, (s) => s.probe!.sent), ok: total(xs, (s) => s.probe!.ok),
      failingSec: null, firstFailAtSec: null, backAtSec: null, rtt,
    },
    warnings: ['probe: failingSec, firstFailAtSec and backAtSec are not merged (each swarm probed on its own time line); sent and ok added'],
  };
}

/** One summary of them all: counts added, histograms added, peaks and instants on one time line. */
export function mergeSummaries(xs: Source[]): Summary {
  if (xs.length === 0) throw new UsageError('wslab swarm merge: give at least one summary file');
  const { labels, warnings: setWarnings } = shardSet(xs);
  const connect = latencyHistogram();
  const rtt = latencyHistogram();
  for (const x of xs) {
    try {
      connect.add(hdr.decodeFromCompressedBase64(x.summary.histograms.connectUs));
      rtt.add(hdr.decodeFromCompressedBase64(x.summary.histograms.rttUs));
    } catch (err) {
      throw new UsageError(`${x.name}: its histograms do not decode (${(err as Error).message})`);
    }
  }
  const { profiles, warnings: profileWarnings } = mergeProfiles(xs, connect, rtt);
  const { probe, warnings: probeWarnings } = mergeProbes(xs);
  const started = Math.min(...xs.map((x) => x.summary.clock.startedAtMs));
  const ended = Math.max(...xs.map((x) => x.summary.clock.startedAtMs + x.summary.durationSec * 1000));
  const firstAttempt = nonNull(xs.map((x) => x.summary.clock.firstAttemptAtMs));
  const lastOpened = nonNull(xs.map((x) => x.summary.clock.lastOpenedAtMs));
  // A shard's lost.firstAtSec is seconds since its own start: moved onto the merged time line.
  const lostAt = (f: (s: Summary) => number | null, pick: (...v: number[]) => number): number | null => {
    const at = nonNull(xs.map((x) => { const v = f(x.summary); return v === null ? null : x.summary.clock.startedAtMs + v * 1000; }));
    return at.length === 0 ? null : round3((pick(...at) - started) / 1000);
  };

  const opened = total(xs, (s) => s.opened);
  const heldAtEnd = total(xs, (s) => s.heldAtEnd);
  const label = (x: Source): string => (x.summary.shard ? `shard ${x.summary.shard.index}/${x.summary.shard.of}` : x.name);
  return assembleSummary({
    target: total(xs, (s) => s.target),
    opened,
    failed: sumKeys(xs.map((x) => x.summary.failed)) as Summary['failed'],
    lost: {
      total: total(xs, (s) => s.lost.total),
      byCause: sumKeys(xs.map((x) => x.summary.lost.byCause)) as Summary['lost']['byCause'],
      byUrl: sumKeys(xs.map((x) => x.summary.lost.byUrl)),
      firstAtSec: lostAt((s) => s.lost.firstAtSec, Math.min),
      lastAtSec: lostAt((s) => s.lost.lastAtSec, Math.max),
    },
    // Each shard's own peak, added: an upper bound of the true peak when shards peaked at different moments.
    peakOpen: total(xs, (s) => s.peakOpen),
    heldAtEnd,
    rampSec: firstAttempt.length > 0 && lastOpened.length > 0 ? (Math.max(...lastOpened) - Math.min(...firstAttempt)) / 1000 : 0,
    connect,
    rtt,
    messages: {
      sent: total(xs, (s) => s.messages.sent), received: total(xs, (s) => s.messages.received),
      errors: total(xs, (s) => s.messages.errors), pushed: total(xs, (s) => s.messages.pushed ?? 0), pingsSent: total(xs, (s) => s.messages.pingsSent),
      pongsReceived: total(xs, (s) => s.messages.pongsReceived),
    },
    client: {
      rssBytes: total(xs, (s) => s.client.rssBytes),
      baselineRssBytes: total(xs, (s) => s.client.baselineRssBytes),
      cpuSeconds: total(xs, (s) => s.client.cpuSeconds),
      workers: total(xs, (s) => s.client.workers),
      maxEventLoopDelayMs: Math.max(...xs.map((x) => x.summary.client.maxEventLoopDelayMs)),
      maxCpuPercent: Math.max(...xs.map((x) => x.summary.client.maxCpuPercent)),
    },
    durationSec: (ended - started) / 1000,
    warnings: [...setWarnings, ...profileWarnings, ...probeWarnings, ...xs.flatMap((x) => x.summary.warnings.map((w) => `${label(x)}: ${w}`))],
    interrupted: xs.some((x) => x.summary.interrupted),
    serverDied: xs.some((x) => x.summary.serverDied),
    misunderstood: xs.some((x) => x.summary.misunderstood === true),
    // each swarm read the server at its own instants: their figures do not add up
    server: null,
    // likewise the box each swarm saw outside itself
    box: null,
    shard: null,
    clock: {
      startedAtMs: started,
      firstAttemptAtMs: firstAttempt.length > 0 ? Math.min(...firstAttempt) : null,
      lastOpenedAtMs: lastOpened.length > 0 ? Math.max(...lastOpened) : null,
    },
    merged: { summaries: xs.length, shards: labels },
    profiles,
    probe,
    // each swarm read the server's counters at its own instants, and saw only its own connections end
    attribution: null,
    reconnect: null,
  });
}
