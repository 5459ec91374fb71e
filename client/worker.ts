/**
 * A swarm worker process (forked by client/coordinator.ts): one pool of at most ~19,000 connections, one profile
 * (healthy, client/profiles.ts, or hostile, client/attacks.ts), one ramp, started after its group's delay. It speaks to the coordinator over the IPC channel only (messages in coordinator.ts) and never decides
 * when the run ends: SIGINT reaches it from the terminal too, and is ignored here so that the coordinator can
 * collect every worker's figures before anything closes.
 */
import { openSync, readSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import * as hdr from 'hdr-histogram-js';
import { LoopDelay } from '../metrics/loop-delay.js';
import type { FromWorker, ToWorker, WorkerInit, WorkerStats } from './coordinator.js';
import type { SwarmMetrics } from './metrics.js';
import { createAttack, type Attack } from './attacks.js';
import { isAttack, type AttackProfile } from './options.js';
import { Pool } from './pool.js';
import { createProfile, latencyHistogram, type Profile } from './profiles.js';
import { Reconnector } from './reconnect.js';
import { Ramp, closeAll } from './scheduler.js';
import { Renderer } from './template.js';

/** A sample says "the client is the bottleneck" above these (MACHINE.md: 2 vCPU shared with the servers). */
const SATURATED_DELAY_MS = 100;
const SATURATED_CPU = 0.9;
const STATS_EVERY_MS = 500;
const SAMPLE_EVERY_MS = 1000;

const send = (m: FromWorker, then?: () => void): void => { process.send!(m, undefined, undefined, then); };
/*
 * RSS through a file descriptor opened once: process.memoryUsage() opens /proc/self/stat on every call, which fails
 * with EMFILE exactly when a worker has used up its descriptors — the moment its figures matter most.
 */
const STATUS_FD = openSync('/proc/self/status', 'r');
const STATUS = Buffer.alloc(4096);
function rss(): number {
  const text = STATUS.toString('latin1', 0, readSync(STATUS_FD, STATUS, 0, STATUS.length, 0));
  const at = text.indexOf('VmRSS:');
  return at < 0 ? 0 : Number.parseInt(text.slice(at + 6, text.indexOf('\n', at)), 10) * 1024;
}

process.on('SIGINT', () => {});
process.on('SIGTERM', () => {});
process.on('disconnect', () => process.exit(3)); // the coordinator is gone: nothing to report to

let run: WorkerRun | undefined;
process.on('message', (m: ToWorker) => {
  if (m.t === 'init') {
    // prom-client and http load only when /metrics is on: a worker without them starts lighter.
    const metrics = m.metrics ? import('./metrics.js').then((mod) => mod.SwarmMetrics) : Promise.resolve(undefined);
    void metrics.then((Metrics) => {
      const baseline = rss(); // code loaded, no per-connection array allocated yet
      run = new WorkerRun(m, Metrics);
      send({ t: 'ready', baselineRssBytes: baseline });
    });
  } else if (m.t === 'start') run?.start();
  else if (m.t === 'close') void run?.close(m.graceful);
  else if (m.t === 'metrics') {
    if (run?.metrics) run.metrics.json().then((data) => send({ t: 'metrics', id: m.id, data }), () => send({ t: 'metrics', id: m.id, data: [] }));
    else send({ t: 'metrics', id: m.id, data: [] });
  }
});

/**
 * The upgrade's extra header lines, split once: those the same for every connection (built into each target's
 * request once) and those with placeholders, rendered per connection (`{{conn}}` global: a shard's offset added).
 */
function headerLines(o: WorkerInit): { fixed: string; perConnection?: (conn: number) => string } {
  const line = (name: string, r: Renderer, conn: number): string => `${name}: ${r.text(conn, 0)}\r\n`;
  const all = o.handshake.headers.map((h) => ({ name: h.name, r: new Renderer(h.value, o.speech.total, o.speech.vars), same: h.value.parts.every((p) => p.k === 'lit') }));
  const own = all.filter((h) => !h.same);
  const offset = o.speech.offset;
  return {
    fixed: all.filter((h) => h.same).map((h) => line(h.name, h.r, 0)).join(''),
    perConnection: own.length === 0 ? undefined : (conn) => own.map((h) => line(h.name, h.r, offset + conn)).join(''),
  };
}

class WorkerRun {
  readonly pool: Pool;
  readonly profile: Profile;
  readonly attack: Attack | undefined;
  readonly ramp: Ramp;
  /**
   * ping and chatty: when each slot's schedule began (performance.now ms): its attempt, replaced by its open. The
   * requests due are counted from it (docs/swarm-summary.md, `requestsDue`), so a connection the server never
   * accepted still owes the requests it would have sent.
   */
  private readonly origin: Float64Array | undefined;
  private delayTimer: NodeJS.Timeout | undefined;
  private closeAt = 0;
  readonly metrics: SwarmMetrics | undefined;
  private readonly connect = latencyHistogram();
  /** `--reconnect`: brings dropped slots back, and the connect latency of those reopened. */
  private readonly reconnector: Reconnector | undefined;
  private readonly reconnectLatency: hdr.Histogram | undefined;
  private readonly loop = new LoopDelay();
  private statsTimer: NodeJS.Timeout | undefined;
  private sampleTimer: NodeJS.Timeout | undefined;
  private cpuAt = process.cpuUsage();
  private sampledAt = performance.now();
  private readonly load = { delayMs: 0, cpu: 0, maxDelayMs: 0, maxCpu: 0, saturatedRamp: 0, saturatedHold: 0 };
  private closing = false;
  /** `--subscribe`: connection-seconds watched for pushes, taken at the close order. */
  private pushSeconds = 0;

  constructor(private readonly o: WorkerInit, Metrics: typeof SwarmMetrics | undefined) {
    let metrics: SwarmMetrics | undefined;
    let profile: Profile | undefined;
    let attack: Attack | undefined;
    const hostile = isAttack(o.profile);
    const reconnector = this.reconnector = o.reconnect && !hostile ? new Reconnector(o.reconnect, o.count, (slot) => this.pool.reopen(slot)) : undefined;
    const reconnectLatency = this.reconnectLatency = reconnector && latencyHistogram();
    const origin = this.origin = o.profile === 'ping' || o.profile === 'chatty' ? new Float64Array(o.count) : undefined;
    this.pool = new Pool({
      capacity: o.count, firstIndex: o.firstIndex, targets: o.targets, sources: o.sources,
      handshakeTimeoutMs: o.handshakeTimeoutMs, closeTimeoutMs: o.closeTimeoutMs,
      attack: hostile, answerPings: o.profile !== 'no-pong', dribble: o.profile === 'slowloris',
      handshake: o.handshake, headerLines: headerLines(o), offerDeflate: o.profile === 'deflate-bomb', reconnect: reconnector !== undefined,
    }, {
      opened: (slot, connectMs) => {
        this.connect.recordValue(Math.max(1, Math.round(connectMs * 1000)));
        metrics?.connect(connectMs / 1000);
        if (origin) origin[slot] = performance.now();
        profile!.opened(slot);
      },
      dribbling: (slot) => attack!.dribbling(slot),
      ended: (slot, how, code, ageMs) => attack!.ended(slot, how, code, ageMs),
      read: hostile ? (slot, bytes) => attack!.read(slot, bytes) : undefined,
      settled: () => this.ramp.settled(),
      message: (slot, op, data, s, e) => profile!.message(slot, op, data, s, e),
      pong: (slot, data, s, e) => profile!.pong(slot, data, s, e),
      firstFailure: (cause, detail) => send({ t: 'failure', cause, detail }),
      down: reconnector && ((slot) => reconnector.down(slot)),
      reopened: reconnector && ((slot, connectMs) => {
        reconnectLatency!.recordValue(Math.max(1, Math.round(connectMs * 1000)));
        reconnector.up(slot);
        profile!.opened(slot); // idle: its --subscribe message again, as a client re-subscribes
      }),
    });
    attack = this.attack = hostile ? createAttack({
      profile: o.profile as AttackProfile, attack: o.attack, intervalMs: o.intervalMs, command: o.readerCommand, targets: o.targets,
      speech: o.speech, firstIndex: o.speech.offset + o.firstIndex,
    }, this.pool, o.count) : undefined;
    // {{conn}} is global: a shard's workers number their connections from the shard's first
    profile = this.profile = attack ?? createProfile({ ...o, firstIndex: o.speech.offset + o.firstIndex }, this.pool, o.count, (sec) => metrics?.rtt(sec));
    metrics = this.metrics = Metrics ? new Metrics(this.pool.counts, this.profile.traffic, o.count, attack && { profile: o.profile, tally: attack.tally }) : undefined;
    this.ramp = new Ramp(o.count, o.rate, o.maxPending, (slot) => {
      if (origin) origin[slot] = performance.now();
      this.pool.open(slot);
    }, () => {
      send({ t: 'ramped' });
    });
  }

  start(): void {
    this.cpuAt = process.cpuUsage();
    this.sampledAt = performance.now();
    this.statsTimer = setInterval(() => send({ t: 'stats', s: this.stats() }), STATS_EVERY_MS);
    this.sampleTimer = setInterval(() => this.sample(), SAMPLE_EVERY_MS);
    if (this.o.startDelayMs > 0) this.delayTimer = setTimeout(() => this.ramp.start(), this.o.startDelayMs);
    else this.ramp.start();
  }

  /** ping, chatty: requests the open-loop schedule owes from each attempted slot's origin to the end of the hold. */
  private requestsDue(): number {
    const origin = this.origin;
    if (!origin) return 0;
    const until = this.closeAt || performance.now();
    let due = 0;
    for (let s = 0; s < this.pool.counts.attempted; s++) due += Math.max(0, Math.floor((until - origin[s]) / this.o.intervalMs));
    return due;
  }

  /** The end of the hold: note what is held, then close gracefully (1000) or drop everything (SIGINT). */
  async close(graceful: boolean): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    clearInterval(this.sampleTimer); // saturation is judged over ramp and hold, not over the close
    const c = this.pool.counts;
    this.closeAt = performance.now();
    clearTimeout(this.delayTimer);
    const atEnd = {
      heldAtEnd: c.open, attackersHeldAtEnd: this.attack ? c.open + c.dribbling : 0,
      rssAtEndBytes: rss(), openByTargetAtEnd: Array.from(c.openByTarget),
    };
    // sent before closing: a close of ~19k sockets on a busy box can outlast the coordinator's close budget
    send({ t: 'held', ...atEnd });
    this.ramp.stop();
    this.reconnector?.stop();
    this.profile.flush?.();
    this.profile.stop();
    const push = this.profile.traffic.push;
    this.pushSeconds = push ? push.end(this.pool.slotsUsed, (s) => this.pool.isOpen(s), performance.now()) : 0;
    // Attackers do not say goodbye: they are dropped (RST), which also spares a close timeout on never-reading sockets.
    if (graceful && !this.attack) await closeAll(this.pool, this.o.closeTimeoutMs);
    else this.pool.destroyAll();
    clearInterval(this.statsTimer);
    this.loop.disable();
    this.metrics?.close();
    send({
      t: 'final', s: this.stats(), ...atEnd,
      connectHdr: hdr.encodeIntoCompressedBase64(this.connect),
      reconnectHdr: this.reconnectLatency ? hdr.encodeIntoCompressedBase64(this.reconnectLatency) : null,
      rttHdr: hdr.encodeIntoCompressedBase64(this.profile.traffic.rtt),
      cutHdr: this.attack ? hdr.encodeIntoCompressedBase64(this.attack.tally.timeToCut) : null,
      pushGapHdr: push ? hdr.encodeIntoCompressedBase64(push.gaps) : null,
    }, () => process.exit(0));
  }

  /** One self-saturation sample: event-loop delay p99 and CPU share of one core over the last second. */
  private sample(): void {
    const now = performance.now();
    const cpu = process.cpuUsage(this.cpuAt);
    const l = this.load;
    l.cpu = (cpu.user + cpu.system) / 1000 / Math.max(1, now - this.sampledAt);
    l.delayMs = this.loop.seconds(99) * 1000;
    this.loop.reset();
    this.cpuAt = process.cpuUsage();
    l.maxDelayMs = Math.max(l.maxDelayMs, l.delayMs);
    l.maxCpu = Math.max(l.maxCpu, l.cpu);
    if (l.delayMs > SATURATED_DELAY_MS || l.cpu >= SATURATED_CPU) {
      // a sample that saw any of the ramp belongs to the ramp
      const rampEnd = this.ramp.endedAt === 0 ? Infinity : this.ramp.endedAt - performance.timeOrigin;
      if (rampEnd > this.sampledAt) l.saturatedRamp++;
      else l.saturatedHold++;
    }
    this.sampledAt = now;
  }

  private stats(): WorkerStats {
    const c = this.pool.counts;
    const t = this.profile.traffic;
    const cpu = process.cpuUsage();
    return {
      attempted: c.attempted, opened: c.opened, open: c.open, connecting: c.connecting, closing: c.closing,
      peakOpen: c.peakOpen, closeTimeouts: c.closeTimeouts, dribbling: c.dribbling, dropped: c.dropped,
      deflated: this.pool.deflated ? c.deflated : null,
      failed: Array.from(c.failed), lost: Array.from(c.lost), lostFirstAt: c.lostFirstAt, lostLastAt: c.lostLastAt,
      openByTarget: Array.from(c.openByTarget), lostByTarget: Array.from(c.lostByTarget), abruptByTarget: Array.from(c.abruptByTarget),
      firstAttemptAt: c.firstAttemptAt, lastOpenedAt: c.lastOpenedAt, rampEndedAt: this.ramp.endedAt,
      sent: t.sent, received: t.received, replyErrors: t.replyErrors, pushed: t.pushed, pingsSent: t.pingsSent, pongsReceived: t.pongsReceived,
      push: t.push ? { stalled: t.push.stalled, seconds: this.pushSeconds } : null,
      rttCount: t.rtt.totalCount, rttP99Us: t.rtt.totalCount > 0 ? t.rtt.getValueAtPercentile(99) : 0,
      rssBytes: rss(), cpuSeconds: (cpu.user + cpu.system) / 1e6, load: { ...this.load },
      requestsDue: this.requestsDue(),
      reconnect: this.reconnector ? {
        attempts: c.reconnectAttempts, reconnected: c.reconnected, failed: Array.from(c.reconnectFailed), down: c.down,
        firstDownAt: c.firstDownAt, allUpAt: c.allUpAt,
      } : null,
      attack: this.attack ? {
        outcomes: Array.from(this.attack.tally.outcomes), closeCodes: Array.from(this.attack.tally.closeCodes),
        bytesSent: this.attack.tally.bytesSent, bytesReceived: this.attack.tally.bytesReceived,
      } : null,
    };
  }
}
