import { Registry, collectDefaultMetrics, type Counter, type Histogram } from 'prom-client';
import {
  BUFFERED_BYTES, BYTES_RECEIVED, BYTES_SENT, CLOSE_REASONS, COMMANDS, COMMAND_DURATION, CONNECTIONS_ACCEPTED,
  CONNECTIONS_CLOSED, CONNECTIONS_OPEN, CONTEXT_SWITCHES, EVENT_LOOP_DELAY, HANDSHAKE_DURATION, HANDSHAKES_REJECTED,
  MESSAGES_RECEIVED, MESSAGES_SENT, PROCESS_THREADS, REJECT_REASONS, SEND_DROPPED, SERVER_INFO, type CloseReason,
  type Command, type RejectReason,
} from '../metrics/index.js';
import { counter, gauge, histogram } from '../metrics/prom.js';
import type { MetricSpec } from '../metrics/spec.js';
import { LoopDelay } from '../metrics/loop-delay.js';
import { readProcStatus } from '../metrics/proc-status.js';

/** A histogram snapshot kept outside JS: cumulative `le` buckets over LATENCY_BUCKETS plus +Inf, sum in seconds. */
export interface HistogramTotals { buckets: number[]; sum: number; count: number }

/**
 * Totals a design keeps outside JS (the native thread design's atomics). With these, every counter and histogram
 * of the contract reads its value at scrape time instead of being incremented on the hot path.
 */
export interface NativeTotals {
  accepted: number;
  closed: Record<CloseReason, number>;
  rejected: Record<RejectReason, number>;
  messagesReceived: number;
  messagesSent: number;
  bytesReceived: number;
  bytesSent: number;
  sendDropped: number;
  handshake: HistogramTotals;
  commands: Record<Command, HistogramTotals>;
}

/** What a design knows about its live connections; read at scrape time, never pushed. */
export interface LiveCounts {
  open(): number;
  bufferedBytes(): number;
}

type Child = Counter.Internal;

/**
 * prom-client defaults whose collect() walks every open handle or fd: with 14.5k sockets open, a scrape took
 * 55 ms with them and 1 ms without (measured, Node 20). The lab holds ~20k connections per process, so they go;
 * wslab_connections_open counts what they would.
 */
export const O_N_DEFAULTS = Object.freeze([
  'process_open_fds', 'nodejs_active_handles', 'nodejs_active_handles_total', 'nodejs_active_resources',
  'nodejs_active_resources_total', 'nodejs_active_requests', 'nodejs_active_requests_total',
]);

/** prom-client's event-loop lag series, replaced by wslab_event_loop_delay_seconds (metrics/loop-delay.ts). */
const PROM_LOOP_LAG = ['', '_min', '_max', '_mean', '_stddev', '_p50', '_p90', '_p99'].map((q) => `nodejs_eventloop_lag${q}_seconds`);
/** The largest timer resolution monitorEventLoopDelay takes (2³¹ − 1 ms): prom-client's monitor then never wakes. */
const NO_PROM_LOOP_MONITOR = 2 ** 31 - 1;

/**
 * The server half of the metric contract for one design in one process. Counters are pre-bound to the design label
 * (no label hashing on the hot path); gauges read their value in collect(). Every close reason and command series
 * exists from the start at 0, so a dashboard shows a flat line rather than "no data".
 */
export class ServerMetrics {
  readonly registry = new Registry();
  readonly accepted: Child;
  readonly messagesReceived: Child;
  readonly messagesSent: Child;
  readonly bytesReceived: Child;
  readonly bytesSent: Child;
  readonly sendDropped: Child;
  readonly handshake: Histogram.Internal<string>;
  private readonly closedBy: Record<CloseReason, Child>;
  private readonly rejectedBy: Record<RejectReason, Child>;
  private readonly commandBy: Record<Command, Histogram.Internal<string>>;
  private readonly loopDelay = new LoopDelay();

  /** `defenses`: false under --no-defenses, shown as the `defenses` label of wslab_server_info. */
  constructor(readonly design: string, live: LiveCounts, { defenses, native }: { defenses: boolean; native?: () => NativeTotals }) {
    const r = this.registry;
    const labels = { design };
    // prom-client's own event-loop monitor would wake the loop every 10 ms: given a resolution of ~24 days it never
    // does, and its nodejs_eventloop_lag_* series go (wslab_event_loop_delay_seconds is the one kept)
    collectDefaultMetrics({ register: r, eventLoopMonitoringPrecision: NO_PROM_LOOP_MONITOR });
    for (const name of [...O_N_DEFAULTS, ...PROM_LOOP_LAG]) r.removeSingleMetric(name);
    // A counter mirrored from native totals: set to the total at scrape time.
    const mirrored = (pick: (t: NativeTotals) => number) => native && function (this: Counter<string>) {
      this.reset();
      this.inc(labels, pick(native()));
    };
    this.accepted = counter(CONNECTIONS_ACCEPTED, r, mirrored((t) => t.accepted)).labels(labels);
    // A counter by `reason`, every series present from the start; with native totals, mirrored at scrape time.
    const byReason = <R extends string>(s: MetricSpec, reasons: readonly R[], pick: (t: NativeTotals) => Record<R, number>) => {
      const c = counter(s, r, native && function () {
        const t = pick(native());
        this.reset();
        for (const reason of reasons) this.inc({ design, reason }, t[reason]);
      });
      const children = Object.fromEntries(reasons.map((reason) => [reason, c.labels(design, reason)])) as Record<R, Child>;
      for (const child of Object.values<Child>(children)) child.inc(0);
      return children;
    };
    this.closedBy = byReason(CONNECTIONS_CLOSED, CLOSE_REASONS, (t) => t.closed);
    this.rejectedBy = byReason(HANDSHAKES_REJECTED, REJECT_REASONS, (t) => t.rejected);
    gauge(SERVER_INFO, r).set({ design, defenses: defenses ? 'on' : 'off' }, 1);
    this.messagesReceived = counter(MESSAGES_RECEIVED, r, mirrored((t) => t.messagesReceived)).labels(labels);
    this.messagesSent = counter(MESSAGES_SENT, r, mirrored((t) => t.messagesSent)).labels(labels);
    this.bytesReceived = counter(BYTES_RECEIVED, r, mirrored((t) => t.bytesReceived)).labels(labels);
    this.bytesSent = counter(BYTES_SENT, r, mirrored((t) => t.bytesSent)).labels(labels);
    this.sendDropped = counter(SEND_DROPPED, r, mirrored((t) => t.sendDropped)).labels(labels);
    this.sendDropped.inc(0);
    if (native) {
      r.registerMetric(new MirroredHistogram(HANDSHAKE_DURATION, () => [[labels, native().handshake]]) as never);
      r.registerMetric(new MirroredHistogram(COMMAND_DURATION, () => {
        const t = native();
        return COMMANDS.map((command) => [{ design, command }, t.commands[command]]);
      }) as never);
    }
    // With native totals these JS histograms stay unregistered and unused.
    const own = native ? undefined : r;
    this.handshake = histogram(HANDSHAKE_DURATION, own).labels(labels);
    const commands = histogram(COMMAND_DURATION, own);
    this.commandBy = Object.fromEntries(COMMANDS.map((c) => [c, commands.labels(design, c)])) as Record<Command, Histogram.Internal<string>>;
    if (own) for (const c of COMMANDS) commands.zero({ design, command: c });
    gauge(CONNECTIONS_OPEN, r, function () { this.set(labels, live.open()); });
    gauge(BUFFERED_BYTES, r, function () { this.set(labels, live.bufferedBytes()); });
    const loop = this.loopDelay;
    gauge(EVENT_LOOP_DELAY, r, function () {
      this.set({ design, quantile: '0.5' }, loop.seconds(50));
      this.set({ design, quantile: '0.99' }, loop.seconds(99));
      this.set({ design, quantile: '1' }, loop.maxSeconds());
      loop.reset();
    });
    gauge(PROCESS_THREADS, r, function () { this.set(labels, readProcStatus().threads); });
    const seen = { voluntary: 0, involuntary: 0 };
    /*
     * A counter that mirrors a kernel counter: add what the kernel counted since the previous scrape. From getrusage
     * (RUSAGE_SELF): every thread of the process, those that ended too (a thread per task's); /proc/self/status
     * counts the main thread only, which in the threads design is the one thread that serves no connection.
     */
    counter(CONTEXT_SWITCHES, r, function () {
      const u = process.resourceUsage();
      this.inc({ design, kind: 'voluntary' }, u.voluntaryContextSwitches - seen.voluntary);
      this.inc({ design, kind: 'involuntary' }, u.involuntaryContextSwitches - seen.involuntary);
      seen.voluntary = u.voluntaryContextSwitches;
      seen.involuntary = u.involuntaryContextSwitches;
    });
  }

  closed(reason: CloseReason): void {
    this.closedBy[reason].inc();
  }

  /** An upgrade refused with an HTTP error: counted by cause, and its connection as closed `rejected`. */
  rejected(reason: RejectReason): void {
    this.rejectedBy[reason].inc();
    this.closedBy.rejected.inc();
  }

  /** Records one command from parse (performance.now() at `startedMs`) to reply hand-off. */
  command(command: Command, startedMs: number, nowMs: number): void {
    this.commandBy[command].observe((nowMs - startedMs) / 1000);
  }

  close(): void {
    this.loopDelay.disable();
  }
}

/**
 * A contract histogram whose buckets live outside JS, rendered by prom-client's registry at scrape time (prom-client
 * has no way to set a Histogram's buckets, and observing each native event from JS is what the design must avoid).
 */
class MirroredHistogram {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram';
  readonly aggregator: string;
  constructor(private readonly spec: MetricSpec, private readonly read: () => [Record<string, string>, HistogramTotals][]) {
    this.name = spec.name;
    this.help = spec.help;
    this.aggregator = spec.aggregator;
  }

  get() {
    const values: { labels: Record<string, string | number>; value: number; metricName: string }[] = [];
    const bounds = this.spec.buckets ?? [];
    for (const [labels, h] of this.read()) {
      bounds.forEach((le, i) => values.push({ labels: { le, ...labels }, value: h.buckets[i] ?? 0, metricName: `${this.name}_bucket` }));
      values.push({ labels: { le: '+Inf', ...labels }, value: h.count, metricName: `${this.name}_bucket` });
      values.push({ labels, value: h.sum, metricName: `${this.name}_sum` });
      values.push({ labels, value: h.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  reset(): void {}
}
