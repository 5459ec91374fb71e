/**
 * What the swarm tells its user: a live view while it runs (a cli-progress bar on a TTY, a plain status line every
 * ~2 s otherwise, both on stderr), a summary table on stderr at the end, and the JSON summary of
 * docs/swarm-summary.md for `--summary FILE`.
 */
import { writeFileSync } from 'node:fs';
import cliProgress from 'cli-progress';
import type { Histogram } from 'hdr-histogram-js';
import type { AttackCloseCode, AttackOutcome, SwarmCause } from '../metrics/swarm.js';
import { describeNoise, type BoxNoise } from '../metrics/noise.js';
import { attributionLine, type Attribution } from './attribution.js';

export interface LatencyMs {
  p50: number | null;
  p90: number | null;
  p99: number | null;
  p999: number | null;
  max: number | null;
}

/** The JSON summary; field by field in docs/swarm-summary.md. Top-level keys are stable for scripts. */
export type SwarmBoxNoise = BoxNoise & { excludes: 'swarm' | 'swarm and server' };

export interface Summary {
  target: number;
  opened: number;
  failed: Record<SwarmCause, number> & { total: number };
  lost: { total: number; byCause: Record<SwarmCause, number>; byUrl: Record<string, number>; firstAtSec: number | null; lastAtSec: number | null };
  peakOpen: number;
  heldAtEnd: number;
  connectRatePerSec: number | null;
  connectLatencyMs: LatencyMs;
  rttMs: LatencyMs & { count: number };
  /** `errors`: error replies (ours: `<id> err …`; --send: failing --expect); `pushed`: server messages that answered no request. */
  messages: { sent: number; received: number; errors: number; pushed: number; pingsSent: number; pongsReceived: number };
  client: {
    rssBytes: number;
    baselineRssBytes: number;
    bytesPerConnection: number | null;
    cpuSeconds: number;
    workers: number;
    maxEventLoopDelayMs: number;
    maxCpuPercent: number;
  };
  /**
   * `--server-pid N`: the server's process tree read from /proc before the first connection (baseline) and at the
   * end of the hold, and the ESTABLISHED connections on the targets' ports then; null without the flag (and in a
   * merge of summaries).
   */
  server: ServerFigures | null;
  /**
   * The noise guard (metrics/noise.ts) from the start order to the end of the hold: CPU the box spent outside this
   * swarm's processes (and the `--server-pid` tree when given: `excludes` says which), and steal; null in a merge.
   */
  box: SwarmBoxNoise | null;
  durationSec: number;
  warnings: string[];
  interrupted: boolean;
  serverDied: boolean;
  /** ≥ 90 % of a chatty group's replies were errors or answered no request (exit 2; the warning names the likely cause). */
  misunderstood: boolean;
  /** `--shard i/N` of a run of `totalTarget` connections; null when not sharded. */
  shard: { index: number; of: number; totalTarget: number } | null;
  /** Wall-clock instants (epoch ms), so that summaries of swarms run side by side can be merged onto one time line. */
  clock: { startedAtMs: number; firstAttemptAtMs: number | null; lastOpenedAtMs: number | null };
  /**
   * The latency histograms themselves (HDR, microseconds, hdr-histogram-js `encodeIntoCompressedBase64`), so that
   * `wslab swarm merge` adds counts and recomputes percentiles instead of averaging them.
   */
  histograms: {
    connectUs: string;
    rttUs: string;
    /** `--probe`: the probes' round trips; null without it (and in summaries written before it existed). */
    probeRttUs: string | null;
  };
  /** Set by `wslab swarm merge`: how many summaries, and which shards, this one combines; null for a single run. */
  merged: { summaries: number; shards: string[] } | null;
  /** One entry per profile of the run (`--profile`, or each `--mix` group), keyed by profile name. */
  profiles: Record<string, HealthySummary | AttackSummary>;
  /** `--probe ping|send`: was the service available to a new client during the run? null without the flag. */
  probe: ProbeSummary | null;
  /**
   * `--server-metrics URL`: who ended what the swarm did not close itself, the server or the proxy in front of it
   * (client/attribution.ts), from the server's counters before the first connection and at the end of the hold.
   * null without the flag, when the second reading failed, and in a merge.
   */
  attribution: Attribution | null;
  /** `--reconnect fixed|backoff`: how the dropped connections came back; null without it (and in a merge). */
  reconnect: ReconnectSummary | null;
}

/**
 * `--reconnect`: every held connection lost (top-level `lost`) was retried, by its policy, until it opened again or
 * the hold ended.
 */
export interface ReconnectSummary {
  mode: 'fixed' | 'backoff';
  delayMs: number;
  maxMs: number;
  /** Attempts to reopen a dropped connection; those that opened; those that failed, by cause. */
  attempts: number;
  reconnected: number;
  failed: Record<SwarmCause, number> & { total: number };
  /** Dropped connections not open again when the hold ended (waiting or reconnecting). */
  stillDown: number;
  /** From the first drop to the moment every dropped connection was open again; null if none dropped or some are still down. */
  recoveredAfterSec: number | null;
  /** The same two instants, epoch ms (null as above), to set beside a server's restart. */
  firstDropAtMs: number | null;
  allBackAtMs: number | null;
  /** connect() → verified 101 of the reopened connections: SYN retransmits show as ≈1 s and 3 s. */
  connectLatencyMs: LatencyMs & { count: number };
}

/**
 * `--probe`: a fresh connection every `intervalSec` from the start order to the close phase (client/probe.ts).
 * Times are seconds since the run's start; in a merge of summaries they are null (each swarm probed on its own).
 */
export interface ProbeSummary {
  mode: 'ping' | 'send';
  intervalSec: number;
  /** Probes that finished (answered, failed or timed out); those still in flight at the close order are not counted. */
  sent: number;
  /** Probes answered within their deadline. */
  ok: number;
  /** ok ÷ sent, four decimals; null when none was sent. */
  available: number | null;
  /** Failing probes × the interval. */
  failingSec: number | null;
  /** Start of the first failing probe; null when none failed. */
  firstFailAtSec: number | null;
  /** Start of the first answered probe after the last failing one; null when none failed or the service never came back. */
  backAtSec: number | null;
  /** Ping → pong or send → first message back, of the answered probes. */
  rttMs: Pick<LatencyMs, 'p50' | 'p99' | 'max'>;
}

export interface ServerFigures {
  pid: number;
  rssBytes: number;
  baselineRssBytes: number;
  /** (rssBytes − baselineRssBytes) ÷ connections; null with none. */
  bytesPerConnection: number | null;
  /** CPU the tree used between the two readings. */
  cpuSeconds: number;
  threads: number;
  fds: number;
  connections: number;
}

/** The figures common to every group. */
export interface GroupSummary {
  /** Connections of the group (`--connections`, or its count in `--mix`). */
  target: number;
  /** Its delay after the run's start (`@5s` in `--mix`), seconds. */
  startAfterSec: number;
  /** Connection attempts made (fewer than `target` when the run ended first). */
  attempted: number;
  /** Attempts whose upgrade completed (a verified 101). */
  opened: number;
  /** Attempts that never opened, every cause. */
  failed: number;
  /** WebSocket connections open when the hold ended. */
  heldAtEnd: number;
  /** Of the opened, those whose 101 accepted permessage-deflate; null when it was not offered (`--deflate`, deflate-bomb). */
  deflated: number | null;
  connectLatencyMs: LatencyMs;
}

/**
 * A healthy group (idle, ping, chatty): is it still served? Defined in docs/swarm-summary.md:
 * `connectSuccessRate` = opened ÷ attempted; `servedRate` = repliesOk ÷ requestsDue.
 */
export interface HealthySummary extends GroupSummary {
  role: 'healthy';
  /** Opened connections lost before the end (closed by the server, reset). */
  lost: number;
  connectSuccessRate: number | null;
  /** ping, chatty: requests the open-loop schedule owed, from each attempt (or its open) to the end of the hold. */
  requestsDue: number;
  /** chatty: `ok` replies (with --send: matched replies that pass --expect); ping: pongs. */
  repliesOk: number;
  servedRate: number | null;
  rttMs: LatencyMs & { count: number };
  /** chatty: replies that were errors, and server messages that matched no request. */
  replyErrors: number;
  unmatched: number;
  /** `--subscribe`: what the server pushed; null without it. */
  push: PushSummary | null;
}

/** `--subscribe`: the server's pushes to a group, per connection. */
export interface PushSummary {
  /** Messages that answered no request (every message, for idle and ping). */
  messages: number;
  /** messages ÷ connection-seconds watched (from each subscribe to the end of the hold, or to its last push if lost). */
  perConnectionPerSec: number | null;
  /** Gaps between a connection's consecutive pushes (the first from its subscribe message). */
  gapMs: LatencyMs & { count: number };
  /** Connections silent for longer than `stallAfterSec` at least once (between pushes, or at the end). */
  stalled: number;
  stallAfterSec: number;
}

/** An attack group: what became of its attackers. */
export interface AttackSummary extends GroupSummary {
  role: 'attack';
  /** `held`: still connected when the hold ended (slowloris: dribbling; others: open); the rest as ATTACK_OUTCOMES. */
  outcomes: Record<AttackOutcome | 'held', number>;
  /** Close frames the server sent, by code (only codes seen). */
  closeCodes: Partial<Record<AttackCloseCode, number>>;
  /** connect() → the server's cut (closed, ended, reset, rejected), ms. */
  timeToCutMs: LatencyMs & { count: number };
  bytesSent: number;
  bytesReceived: number;
  messages: { sent: number; received: number; pingsSent: number; pongsReceived: number };
}

const ms = (us: number): number => Math.round(us) / 1000;

/** Percentiles of a microsecond histogram, in ms; nulls when nothing was recorded. */
export function latencyMs(h: Histogram): LatencyMs {
  if (h.totalCount === 0) return { p50: null, p90: null, p99: null, p999: null, max: null };
  return {
    p50: ms(h.getValueAtPercentile(50)), p90: ms(h.getValueAtPercentile(90)), p99: ms(h.getValueAtPercentile(99)),
    p999: ms(h.getValueAtPercentile(99.9)), max: ms(h.maxValue),
  };
}

/** A snapshot for the live view. */
export interface Live {
  elapsedSec: number;
  phase: 'ramp' | 'hold' | 'closing';
  open: number;
  connecting: number;
  target: number;
  ratePerSec: number;
  errors: number;
  rttP99Ms: number | null;
  /** Set when a worker's event loop or CPU says the client is the bottleneck. */
  saturated: string | null;
}

export class LiveView {
  private readonly bars: cliProgress.MultiBar | undefined;
  private readonly bar: cliProgress.SingleBar | undefined;
  private lastLine = Date.now(); // the first line after lineEveryMs, once workers have reported

  constructor(private readonly out: NodeJS.WriteStream, target: number, private readonly lineEveryMs = 2000) {
    if (!out.isTTY) return;
    this.bars = new cliProgress.MultiBar({
      stream: out,
      format: 'wslab swarm {phase} [{bar}] {value}/{total} open | {rate}/s | connecting {connecting} | errors {errors} | rtt p99 {rtt}{note}',
      hideCursor: true, clearOnComplete: false, stopOnComplete: false, barsize: 20, fps: 5, forceRedraw: true,
    }, cliProgress.Presets.shades_classic);
    this.bar = this.bars.create(target, 0, { phase: 'ramp', rate: 0, connecting: 0, errors: 0, rtt: '-', note: '' });
  }

  update(s: Live): void {
    const rtt = s.rttP99Ms === null ? '-' : `${s.rttP99Ms.toFixed(1)}ms`;
    if (this.bar) {
      this.bar.update(s.open, {
        phase: s.phase, rate: Math.round(s.ratePerSec), connecting: s.connecting, errors: s.errors, rtt,
        note: s.saturated ? ` | CLIENT IS THE BOTTLENECK: ${s.saturated}` : '',
      });
      return;
    }
    const now = Date.now();
    if (now - this.lastLine < this.lineEveryMs) return;
    this.lastLine = now;
    this.out.write(`wslab swarm: ${s.elapsedSec.toFixed(1)}s ${s.phase} open ${s.open}/${s.target} (${Math.round(s.ratePerSec)}/s) ` +
      `connecting ${s.connecting} errors ${s.errors} rtt p99 ${rtt}${s.saturated ? ` [client is the bottleneck: ${s.saturated}]` : ''}\n`);
  }

  /** A line above the bar (or just a line). */
  log(line: string): void {
    if (this.bars) this.bars.log(`${line}\n`);
    else this.out.write(`${line}\n`);
  }

  stop(): void {
    this.bars?.stop();
  }
}

const fmt = (v: number | null, unit = ''): string => (v === null ? '-' : `${Math.round(v * 100) / 100}${unit}`);
const lat = (l: LatencyMs): string =>
  l.p50 === null ? 'none' : `p50 ${fmt(l.p50)}  p90 ${fmt(l.p90)}  p99 ${fmt(l.p99)}  p99.9 ${fmt(l.p999)}  max ${fmt(l.max)} ms`;
const pct = (r: number | null): string => (r === null ? '-' : `${Math.round(r * 1000) / 10}%`);
const mb = (b: number): string => `${(b / 1024 / 1024).toFixed(1)} MiB`;

const sec1 = (ms: number | null): string => (ms === null ? '-' : (ms / 1000).toFixed(1));

/**
 * An attack group's verdict: `cut at p50 X s` when the server cut more than half of the attempted attackers,
 * `not cut within the hold` when more than half were still held at the end; otherwise how many were cut.
 */
function cutVerdict(p: AttackSummary): string {
  const cut = p.outcomes.closed + p.outcomes.ended + p.outcomes.reset + p.outcomes.rejected;
  const at = (l: LatencyMs): string => (l.p50 === null ? ' (time to cut not merged)' : ` at p50 ${sec1(l.p50)} s (p99 ${sec1(l.p99)} s)`);
  if (cut * 2 > p.attempted) return `cut${at(p.timeToCutMs)}`;
  if (p.outcomes.held * 2 > p.attempted) return 'not cut within the hold';
  return `cut ${cut} of ${p.attempted}${cut > 0 ? at(p.timeToCutMs) : ''}`;
}

/** `ping every 0.5 s: 38/40 answered (95.0 %), failing 1.0 s from 3.5 s, back at 5.0 s, rtt p99 1.2 ms`. */
function probeLine(p: ProbeSummary): string {
  const head = `${p.mode} every ${p.intervalSec} s: `;
  if (p.sent === 0) return `${head}no probe finished`;
  const failing = p.sent === p.ok ? 'never failing'
    : p.failingSec === null || p.firstFailAtSec === null ? `${p.sent - p.ok} failing (times not merged)`
      : `failing ${p.failingSec.toFixed(1)} s from ${p.firstFailAtSec.toFixed(1)} s, ${p.backAtSec === null ? 'not back by the end' : `back at ${p.backAtSec.toFixed(1)} s`}`;
  return `${head}${p.ok}/${p.sent} answered (${((p.available ?? 0) * 100).toFixed(1)} %), ${failing}${p.ok > 0 ? `, rtt p99 ${fmt(p.rttMs.p99, ' ms')}` : ''}`;
}

/** The end-of-run table, on stderr. */
export function summaryTable(s: Summary): string {
  const failed = Object.entries(s.failed).filter(([k, v]) => k !== 'total' && v > 0).map(([k, v]) => `${k} ${v}`).join(', ');
  const lost = Object.entries(s.lost.byCause).filter(([, v]) => v > 0).map(([k, v]) => `${k} ${v}`).join(', ');
  const rows: [string, string][] = [
    ['target', `${s.target}${s.shard ? ` (shard ${s.shard.index}/${s.shard.of} of a ${s.shard.totalTarget}-connection run)` : ''}`],
    ['opened', `${s.opened}${s.connectRatePerSec === null ? '' : ` (${Math.round(s.connectRatePerSec)}/s over the ramp)`}`],
    ['failed', `${s.failed.total}${failed ? ` (${failed})` : ''}`],
    ['lost', `${s.lost.total}${lost ? ` (${lost}; first at ${fmt(s.lost.firstAtSec, 's')}, last at ${fmt(s.lost.lastAtSec, 's')})` : ''}`],
    ['peak open', String(s.peakOpen)],
    ['held at end', String(s.heldAtEnd)],
    ['connect latency', lat(s.connectLatencyMs)],
    ['round trip', s.rttMs.count === 0 ? 'none' : `${lat(s.rttMs)} (${s.rttMs.count})`],
    ['messages', `sent ${s.messages.sent}, received ${s.messages.received}, error replies ${s.messages.errors}, pushed ${s.messages.pushed}, ` +
      `pings ${s.messages.pingsSent}, pongs ${s.messages.pongsReceived}`],
    ['client', `${mb(s.client.rssBytes)} RSS (${mb(s.client.baselineRssBytes)} before connecting; ` +
      `${s.client.bytesPerConnection === null ? (s.heldAtEnd > 0 ? 'RSS fell below it: no' : '-') : Math.round(s.client.bytesPerConnection)} bytes per held connection), ` +
      `CPU ${s.client.cpuSeconds.toFixed(2)} s, ${s.client.workers} worker${s.client.workers === 1 ? '' : 's'}`],
    ...(s.box ? [['box', `${describeNoise(s.box)} (outside the ${s.box.excludes})`] as [string, string]] : []),
    ...(s.attribution ? [['ended by', attributionLine(s.attribution)] as [string, string]] : []),
    ...(s.reconnect ? [['reconnect', reconnectLine(s.reconnect, s.lost.total)] as [string, string]] : []),
    ['duration', `${s.durationSec.toFixed(2)} s${s.interrupted ? ' (interrupted)' : ''}${s.serverDied ? ' (a server died)' : ''}`],
  ];
  for (const [name, p] of Object.entries(s.profiles)) {
    const head = `${p.target}${p.startAfterSec > 0 ? ` from ${p.startAfterSec}s` : ''}: opened ${p.opened}/${p.attempted}` +
      (p.deflated === null ? '' : ` (permessage-deflate accepted by ${p.deflated})`);
    if (p.role === 'healthy') {
      rows.push([name, `${head}, held ${p.heldAtEnd}, lost ${p.lost}, served ${pct(p.servedRate)} of ${p.requestsDue} requests due, ` +
        `rtt p99 ${fmt(p.rttMs.p99, ' ms')}`]);
      const u = p.push;
      if (u) {
        rows.push([`${name} pushes`, `${u.messages} (${fmt(u.perConnectionPerSec)}/s per connection), gap ${lat(u.gapMs)}, ` +
          `${u.stalled} connection${u.stalled === 1 ? '' : 's'} silent > ${u.stallAfterSec} s`]);
      }
    } else {
      const outcomes = Object.entries(p.outcomes).filter(([, v]) => v > 0).map(([k, v]) => `${k} ${v}`).join(', ');
      const codes = Object.entries(p.closeCodes).map(([k, v]) => `${k}×${v}`).join(' ');
      rows.push([name, `${head}; ${outcomes || 'nothing yet'}${codes ? ` (close ${codes})` : ''}; ${cutVerdict(p)}`]);
    }
  }
  if (s.probe) rows.push(['probe', probeLine(s.probe)]);
  const width = Math.max(...rows.map(([k]) => k.length));
  const lines = ['wslab swarm summary', ...rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`)];
  for (const w of s.warnings) lines.push(`  warning: ${w}`);
  return `${lines.join('\n')}\n`;
}

/** "fixed 1 s: 10000 dropped, all back 4.2 s after the first drop; 23000 attempts (13000 failed: ECONNREFUSED 13000), reconnect p50 … ". */
function reconnectLine(r: ReconnectSummary, dropped: number): string {
  const policy = r.mode === 'fixed' ? `fixed ${r.delayMs / 1000} s` : `backoff ${r.delayMs / 1000}–${r.maxMs / 1000} s, full jitter`;
  const back = r.recoveredAfterSec !== null ? `all back ${r.recoveredAfterSec} s after the first drop` : dropped === 0 ? 'none dropped' : `${r.stillDown} still down at the end`;
  const why = Object.entries(r.failed).filter(([k, v]) => k !== 'total' && v > 0).map(([k, v]) => `${k} ${v}`).join(', ');
  return `${policy}: ${dropped} dropped, ${back}; ${r.attempts} attempts (${r.failed.total} failed${why ? `: ${why}` : ''}), ` +
    `reconnect latency ${r.connectLatencyMs.count ? lat(r.connectLatencyMs) : 'none'}`;
}

/** Writes the JSON summary (pretty, one trailing newline). */
export function writeSummary(file: string, s: Summary): void {
  writeFileSync(file, `${JSON.stringify(s, null, 2)}\n`);
}
