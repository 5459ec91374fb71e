import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Registry, collectDefaultMetrics, type Counter, type Histogram } from 'prom-client';
import {
  BUFFERED_BYTES, BYTES_RECEIVED, BYTES_SENT, CLOSE_REASONS, COMMANDS, COMMAND_DURATION, CONNECTIONS_ACCEPTED,
  CONNECTIONS_CLOSED, CONNECTIONS_OPEN, CONTEXT_SWITCHES, EVENT_LOOP_DELAY, HANDSHAKE_DURATION, MESSAGES_RECEIVED,
  MESSAGES_SENT, PROCESS_THREADS, SEND_DROPPED, type CloseReason, type Command,
} from '../metrics/index.js';
import { counter, gauge, histogram } from '../metrics/prom.js';
import { readProcStatus } from '../metrics/proc-status.js';

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
  private readonly commandBy: Record<Command, Histogram.Internal<string>>;
  private readonly loopDelay = monitorEventLoopDelay({ resolution: 1 });

  constructor(readonly design: string, live: LiveCounts) {
    const r = this.registry;
    const labels = { design };
    collectDefaultMetrics({ register: r });
    for (const name of O_N_DEFAULTS) r.removeSingleMetric(name);
    this.loopDelay.enable();
    this.accepted = counter(CONNECTIONS_ACCEPTED, r).labels(labels);
    const closed = counter(CONNECTIONS_CLOSED, r);
    this.closedBy = Object.fromEntries(CLOSE_REASONS.map((reason) => [reason, closed.labels(design, reason)])) as Record<CloseReason, Child>;
    for (const c of Object.values(this.closedBy)) c.inc(0);
    this.handshake = histogram(HANDSHAKE_DURATION, r).labels(labels);
    this.messagesReceived = counter(MESSAGES_RECEIVED, r).labels(labels);
    this.messagesSent = counter(MESSAGES_SENT, r).labels(labels);
    this.bytesReceived = counter(BYTES_RECEIVED, r).labels(labels);
    this.bytesSent = counter(BYTES_SENT, r).labels(labels);
    this.sendDropped = counter(SEND_DROPPED, r).labels(labels);
    const commands = histogram(COMMAND_DURATION, r);
    this.commandBy = Object.fromEntries(COMMANDS.map((c) => [c, commands.labels(design, c)])) as Record<Command, Histogram.Internal<string>>;
    for (const c of COMMANDS) commands.zero({ design, command: c });
    gauge(CONNECTIONS_OPEN, r, function () { this.set(labels, live.open()); });
    gauge(BUFFERED_BYTES, r, function () { this.set(labels, live.bufferedBytes()); });
    const loop = this.loopDelay;
    gauge(EVENT_LOOP_DELAY, r, function () {
      this.set({ design, quantile: '0.5' }, loop.percentile(50) / 1e9);
      this.set({ design, quantile: '0.99' }, loop.percentile(99) / 1e9);
      this.set({ design, quantile: '1' }, loop.count ? loop.max / 1e9 : 0);
      loop.reset();
    });
    gauge(PROCESS_THREADS, r, function () { this.set(labels, readProcStatus().threads); });
    const seen = { voluntary: 0, involuntary: 0 };
    // A counter that mirrors a kernel counter: add what the kernel counted since the previous scrape.
    counter(CONTEXT_SWITCHES, r, function () {
      const s = readProcStatus();
      this.inc({ design, kind: 'voluntary' }, s.voluntarySwitches - seen.voluntary);
      this.inc({ design, kind: 'involuntary' }, s.involuntarySwitches - seen.involuntary);
      seen.voluntary = s.voluntarySwitches;
      seen.involuntary = s.involuntarySwitches;
    });
  }

  closed(reason: CloseReason): void {
    this.closedBy[reason].inc();
  }

  /** Records one command from parse (performance.now() at `startedMs`) to reply hand-off. */
  command(command: Command, startedMs: number, nowMs: number): void {
    this.commandBy[command].observe((nowMs - startedMs) / 1000);
  }

  close(): void {
    this.loopDelay.disable();
  }
}
