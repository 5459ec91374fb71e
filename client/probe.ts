/**
 * `--probe ping|send`: is the service still available to a *new* client while the swarm loads it? As slowhttptest
 * charts it, the coordinator opens a fresh connection every interval (round-robin over the targets), asks one round
 * trip (a ping and its pong, or a text message and the first message back) and closes it with 1000. A probe that
 * is refused, reset, answered with a non-101, or not answered within its deadline (connect + upgrade + round trip)
 * is failing.
 *
 * The probe is not a hot path: it uses the `ws` client, one connection at a time per interval, in the coordinator,
 * so that a saturated worker does not make the service look down. At most {@link MAX_IN_FLIGHT} probes wait at once:
 * with the default 2 s deadline and 0.5 s interval that is every probe a silent server can hold, so a probe due
 * while 4 still wait is counted failing without opening a fifth connection (the server left 4 unanswered).
 */
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import type { ProbeOptions, SwarmTarget } from './options.js';
import { latencyHistogram } from './profiles.js';
import { round3, type ProbeParts } from './summary.js';

export const MAX_IN_FLIGHT = 4;

/** One finished probe: its start (ms since start()) and whether it was answered; null = abandoned at stop(). */
type Outcome = { readonly startMs: number; readonly ok: boolean } | null;

export class Prober {
  private readonly rtt = latencyHistogram();
  private timer: NodeJS.Timeout | undefined;
  private origin = 0;
  /** Sequence number of the next probe, and of the next one to fold into the figures (they fold in start order). */
  private next = 0;
  private folded = 0;
  private readonly finished = new Map<number, Outcome>();
  /** Probes waiting for their answer: how to abandon each. */
  private readonly waiting = new Map<number, () => void>();
  /** Every socket not yet closed, answered ones in their close handshake included. */
  private readonly sockets = new Set<WebSocket>();
  /** Called when the last socket closes after stop(). */
  private onDrained: (() => void) | undefined;
  private sent = 0;
  private ok = 0;
  private firstFailMs: number | null = null;
  private lastFailMs: number | null = null;
  private backMs: number | null = null;

  constructor(private readonly targets: readonly SwarmTarget[], private readonly o: ProbeOptions) {}

  /** Probes now and every interval until stop(); times are counted from now (the run's start). */
  start(): void {
    this.origin = performance.now();
    this.probe();
    this.timer = setInterval(() => this.probe(), this.o.intervalMs);
  }

  /**
   * Stops probing and returns the figures. Probes still waiting are not counted: an open one is closed with 1001 (the
   * client is going away), one still connecting is dropped; answered ones finish their close handshake. {@link closed}
   * says when every probe socket is gone.
   */
  stop(): ProbeParts {
    clearInterval(this.timer);
    for (const abandon of [...this.waiting.values()]) abandon();
    const sec = (ms: number | null): number | null => (ms === null ? null : round3(ms / 1000));
    return {
      mode: this.o.mode, intervalSec: this.o.intervalMs / 1000, sent: this.sent, ok: this.ok,
      failingSec: round3((this.sent - this.ok) * this.o.intervalMs / 1000),
      firstFailAtSec: sec(this.firstFailMs), backAtSec: sec(this.backMs), rtt: this.rtt,
    };
  }

  /** Resolves when every probe socket has closed; those still open after `graceMs` (a probe's deadline) are dropped. */
  async closed(graceMs = this.o.timeoutMs): Promise<void> {
    if (this.sockets.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => { this.onDrained = resolve; timer = setTimeout(resolve, graceMs); });
      clearTimeout(timer);
    }
    for (const ws of this.sockets) ws.terminate();
    this.sockets.clear();
  }

  private probe(): void {
    const seq = this.next++;
    const startMs = performance.now() - this.origin;
    if (this.waiting.size >= MAX_IN_FLIGHT) return this.fold(seq, { startMs, ok: false });
    const t = this.targets[seq % this.targets.length];
    const { headers, protocols, tls } = this.o.connect;
    const ws = new WebSocket(`${t.tls ? 'wss' : 'ws'}://${t.family === 6 ? `[${t.ip}]` : t.ip}:${t.port}${t.path}`, [...protocols], {
      ...(t.tls ? { ...tls, servername: tls?.servername ?? (t.hostname || undefined) } : {}),
      headers: { Host: t.host, ...headers }, perMessageDeflate: false, followRedirects: false,
    });
    this.sockets.add(ws);
    let askedAt = 0;
    const deadline = setTimeout(() => done(false), this.o.timeoutMs);
    const done = (ok: boolean | null): void => {
      if (!this.waiting.delete(seq)) return;
      clearTimeout(deadline);
      if (ok) {
        this.rtt.recordValue(Math.max(1, Math.round((performance.now() - askedAt) * 1000)));
        ws.close(1000);
      } else if (ok === null && ws.readyState === WebSocket.OPEN) {
        ws.close(1001);
      } else {
        ws.terminate();
      }
      this.fold(seq, ok === null ? null : { startMs, ok });
    };
    this.waiting.set(seq, () => done(null));
    ws.on('open', () => {
      askedAt = performance.now();
      if (this.o.mode === 'ping') ws.ping();
      else ws.send(this.o.payload);
    });
    ws.on(this.o.mode === 'ping' ? 'pong' : 'message', () => done(true));
    ws.on('error', () => done(false)); // refused, reset, a non-101: also every late error of a socket already done
    ws.on('close', () => {
      this.sockets.delete(ws);
      done(false);
      if (this.sockets.size === 0) this.onDrained?.();
    });
  }

  /** Adds finished probes to the figures in start order, so that "back at" is the first answer after the last failure. */
  private fold(seq: number, outcome: Outcome): void {
    this.finished.set(seq, outcome);
    while (this.finished.has(this.folded)) {
      const r = this.finished.get(this.folded);
      this.finished.delete(this.folded++);
      if (!r) continue;
      this.sent++;
      if (r.ok) {
        this.ok++;
        if (this.lastFailMs !== null) this.backMs ??= r.startMs;
      } else {
        this.firstFailMs ??= r.startMs;
        this.lastFailMs = r.startMs;
        this.backMs = null;
      }
    }
  }
}
