/**
 * The swarm summary of docs/swarm-summary.md, assembled from parts already added up: a run's workers
 * (client/coordinator.ts) or several runs' summaries (client/merge.ts). What is derived from those parts — latency
 * percentiles from the HDR histograms, the connect rate, bytes per connection, success and served rates — is
 * derived here, once, so that a run and a merge of runs can never disagree on a definition.
 */
import * as hdr from 'hdr-histogram-js';
import { latencyMs, type AttackSummary, type GroupSummary, type HealthySummary, type ProbeSummary, type ReconnectSummary, type Summary } from './recorder.js';

export const round3 = (n: number): number => Math.round(n * 1000) / 1000;

/** n ÷ d, null when d is 0. */
export type Rate = (n: number, d: number) => number | null;
export const exactRate: Rate = (n, d) => (d > 0 ? n / d : null);
/** To four decimals: what a run writes. */
export const roundedRate: Rate = (n, d) => (d > 0 ? Math.round(n / d * 10_000) / 10_000 : null);

/** A group's counts, added over its workers or shards: its summary but the percentiles. */
export type GroupCounts = Omit<GroupSummary, 'connectLatencyMs'>;

/** The common part of a group's summary. */
function groupCommon(c: GroupCounts, connect: hdr.Histogram) {
  return {
    target: c.target, startAfterSec: c.startAfterSec, attempted: c.attempted, opened: c.opened, failed: c.failed,
    heldAtEnd: c.heldAtEnd, deflated: c.deflated, connectLatencyMs: latencyMs(connect),
  };
}

/** A healthy group's summary; `sending` is false for idle, whose servedRate is null. */
export function healthyGroup(
  c: GroupCounts & { lost: number; requestsDue: number; repliesOk: number; replyErrors: number; unmatched: number; sending: boolean },
  connect: hdr.Histogram, rtt: hdr.Histogram, rate: Rate,
  push?: { messages: number; seconds: number; gaps: hdr.Histogram; stalled: number; stallAfterMs: number },
): HealthySummary {
  return {
    role: 'healthy', ...groupCommon(c, connect), lost: c.lost,
    connectSuccessRate: rate(c.opened, c.attempted),
    requestsDue: c.requestsDue, repliesOk: c.repliesOk,
    servedRate: c.sending ? rate(Math.min(c.repliesOk, c.requestsDue), c.requestsDue) : null,
    rttMs: { ...latencyMs(rtt), count: rtt.totalCount },
    replyErrors: c.replyErrors, unmatched: c.unmatched,
    push: push ? {
      messages: push.messages, perConnectionPerSec: rate(push.messages, push.seconds),
      gapMs: { ...latencyMs(push.gaps), count: push.gaps.totalCount }, stalled: push.stalled, stallAfterSec: push.stallAfterMs / 1000,
    } : null,
  };
}

/**
 * "No silent nonsense": a chatty group whose replies are ≥ 90 % errors or match no request measured nothing but a
 * misunderstanding. The likely cause, named for the match mode in use; undefined when the replies made sense.
 */
export function nonsense(p: HealthySummary, match: string, sendGiven: boolean): string | undefined {
  const bad = p.replyErrors + p.unmatched;
  const replies = p.repliesOk + bad;
  if (replies < 10 || bad < 0.9 * replies) return undefined;
  const share = `${bad} of ${replies} replies were errors or answered no request`;
  const cause = !sendGiven
    ? match === 'echo' ? 'the server does not echo our protocol\'s requests: use --send with --match echo, next, json:PATH or regex:RE'
      : 'the server does not speak the wslab protocol: use --send/--match (e.g. --send \'hello {{seq}}\' --match echo for an echo server)'
    : match === 'echo' ? 'the replies are not the messages sent: not an echo server? use --match next, json:PATH or regex:RE'
      : match === 'next' ? '--expect rejects the replies (or the server pushes more than it answers): check --expect, or match by id with --match json:PATH'
        : `the replies do not carry the request's {{id}} where --match ${match} looks (or fail --expect)`;
  return `${share}: ${cause}`;
}

/** An attack group's summary. */
export function attackGroup(
  c: GroupCounts & Pick<AttackSummary, 'outcomes' | 'closeCodes' | 'timeToCutMs' | 'bytesSent' | 'bytesReceived' | 'messages'>,
  connect: hdr.Histogram,
): AttackSummary {
  return {
    role: 'attack', ...groupCommon(c, connect), outcomes: c.outcomes, closeCodes: c.closeCodes, timeToCutMs: c.timeToCutMs,
    bytesSent: c.bytesSent, bytesReceived: c.bytesReceived, messages: c.messages,
  };
}

/** The probe's figures as counted (client/probe.ts) or added (client/merge.ts): its summary but the derived ones. */
export interface ProbeParts extends Omit<ProbeSummary, 'available' | 'rttMs'> {
  /** Round trips of the answered probes, µs. */
  rtt: hdr.Histogram;
}

/**
 * A summary's parts: the figures as added up, the latency histograms (µs), and the seconds from the first attempt to
 * the last open (`rampSec`, for the connect rate). `durationSec` and `client.cpuSeconds` are rounded here to ms.
 */
export interface SummaryParts extends Omit<Summary, 'connectRatePerSec' | 'connectLatencyMs' | 'rttMs' | 'client' | 'histograms' | 'probe' | 'reconnect'> {
  /** `--reconnect`: the summary but its latency percentiles, and the reopened connections' connect histogram. */
  reconnect: (Omit<ReconnectSummary, 'connectLatencyMs'> & { connect: hdr.Histogram }) | null;
  rampSec: number;
  connect: hdr.Histogram;
  rtt: hdr.Histogram;
  client: Omit<Summary['client'], 'bytesPerConnection'>;
  probe: ProbeParts | null;
}

/** The summary, its fields in the documented order. */
export function assembleSummary(p: SummaryParts): Summary {
  const { rssBytes, baselineRssBytes } = p.client;
  return {
    target: p.target,
    opened: p.opened,
    failed: p.failed,
    lost: p.lost,
    peakOpen: p.peakOpen,
    heldAtEnd: p.heldAtEnd,
    connectRatePerSec: p.opened > 0 && p.rampSec > 0 ? Math.round(p.opened / p.rampSec) : null,
    connectLatencyMs: latencyMs(p.connect),
    rttMs: { ...latencyMs(p.rtt), count: p.rtt.totalCount },
    messages: p.messages,
    client: {
      rssBytes, baselineRssBytes,
      // RSS below its baseline (a GC between the readings, few connections) measures nothing: null, not a negative cost
      bytesPerConnection: p.heldAtEnd > 0 && rssBytes >= baselineRssBytes ? Math.round((rssBytes - baselineRssBytes) / p.heldAtEnd) : null,
      cpuSeconds: round3(p.client.cpuSeconds),
      workers: p.client.workers,
      maxEventLoopDelayMs: p.client.maxEventLoopDelayMs,
      maxCpuPercent: p.client.maxCpuPercent,
    },
    server: p.server,
    box: p.box,
    durationSec: round3(p.durationSec),
    warnings: p.warnings,
    interrupted: p.interrupted,
    serverDied: p.serverDied,
    misunderstood: p.misunderstood,
    shard: p.shard,
    clock: p.clock,
    histograms: {
      connectUs: hdr.encodeIntoCompressedBase64(p.connect), rttUs: hdr.encodeIntoCompressedBase64(p.rtt),
      probeRttUs: p.probe && hdr.encodeIntoCompressedBase64(p.probe.rtt),
    },
    merged: p.merged,
    profiles: p.profiles,
    probe: p.probe && probeSummary(p.probe),
    attribution: p.attribution,
    reconnect: p.reconnect && (({ connect, ...r }) => ({ ...r, connectLatencyMs: { ...latencyMs(connect), count: connect.totalCount } }))(p.reconnect),
  };
}

function probeSummary({ rtt, ...p }: ProbeParts): ProbeSummary {
  const { p50, p99, max } = latencyMs(rtt);
  return {
    mode: p.mode, intervalSec: p.intervalSec, sent: p.sent, ok: p.ok, available: roundedRate(p.ok, p.sent),
    failingSec: p.failingSec, firstFailAtSec: p.firstFailAtSec, backAtSec: p.backAtSec, rttMs: { p50, p99, max },
  };
}
