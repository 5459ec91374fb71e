/**
 * What a held connection does: `idle` (nothing; the pool answers server pings), `ping` (a client ping every
 * interval, timed by its pong) or `chatty` (a protocol command every interval, timed by its reply).
 *
 * ping and chatty are open-loop: each connection's sends are due at open + k × interval whether or not earlier
 * replies came back, and a round trip is measured from the *intended* send time. When the swarm or the server falls
 * behind, the late sends carry their lateness into the latency instead of silently sending fewer requests
 * (coordinated omission, as wrk2 corrects it). The intended time travels as the request id (docs/protocol.md: the
 * server echoes it), so nothing is kept per message.
 */
import { performance } from 'node:perf_hooks';
import * as hdr from 'hdr-histogram-js';
import { OP_BINARY, OP_PING, OP_TEXT, allocFrame, maskPayload } from './codec.js';
import { Matcher } from './match.js';
import type { ProfileName, SwarmCommand, SwarmSpeech } from './options.js';
import { Renderer } from './template.js';

/** A latency histogram in microseconds, 1 µs to 1 h at 3 significant digits: the same layout everywhere it merges. */
export function latencyHistogram(): hdr.Histogram {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3 });
}

/** Message counts and the RTT histogram of one worker. */
export class Traffic {
  sent = 0;
  received = 0;
  /** Replies of the form `<id> err …` (or without our id); with `--send`, matched replies that fail `--expect`. */
  replyErrors = 0;
  /** Server messages that answer no request (`--send`/`--match`, and every message to idle and ping). */
  pushed = 0;
  pingsSent = 0;
  pongsReceived = 0;
  readonly rtt = latencyHistogram();
  /** `--subscribe`: what the server pushes, per connection. */
  push: PushWatch | undefined;
}

/**
 * `--subscribe`: gaps between a connection's pushes (the first from the subscribe message), connections that went
 * silent for longer than `--stall-after` (between two pushes, or at the end of the hold), and connection-seconds
 * (for pushes per second per connection). Two numbers and a flag per connection, no timer: a gap is measured when
 * the next push arrives, and the silence at the end once, at the close order.
 */
export class PushWatch {
  readonly gaps = latencyHistogram();
  stalled = 0;
  private readonly since: Float64Array;
  private readonly last: Float64Array;
  private readonly flagged: Uint8Array;

  constructor(capacity: number, private readonly stallAfterMs: number) {
    this.since = new Float64Array(capacity);
    this.last = new Float64Array(capacity);
    this.flagged = new Uint8Array(capacity);
  }

  subscribed(slot: number, now: number): void { this.since[slot] = this.last[slot] = now; }

  arrived(slot: number, now: number): void {
    if (this.since[slot] === 0) return;
    const gap = now - this.last[slot];
    this.gaps.recordValue(Math.max(1, Math.round(gap * 1000)));
    if (gap > this.stallAfterMs) this.stall(slot);
    this.last[slot] = now;
  }

  /** At the close order: open connections silent past the limit now count as stalled; connection-seconds so far. */
  end(used: number, isOpen: (slot: number) => boolean, now: number): number {
    let seconds = 0;
    for (let s = 0; s < used; s++) {
      if (this.since[s] === 0) continue;
      const open = isOpen(s);
      if (open && now - this.last[s] > this.stallAfterMs) this.stall(s);
      seconds += ((open ? now : this.last[s]) - this.since[s]) / 1000;
    }
    return seconds;
  }

  private stall(slot: number): void {
    if (this.flagged[slot] === 1) return;
    this.flagged[slot] = 1;
    this.stalled++;
  }
}

/** The slice of the pool a profile uses. */
export interface Sender {
  send(slot: number, frame: Buffer): boolean;
  isOpen(slot: number): boolean;
}

export interface Profile {
  readonly traffic: Traffic;
  opened(slot: number): void;
  message(slot: number, opcode: number, data: Buffer, start: number, end: number): void;
  pong(slot: number, data: Buffer, start: number, end: number): void;
  /** Sends what is due now (at the end of the hold, so the requests counted as due were all sent). */
  flush?(): void;
  /** Stops sending (before the close phase). */
  stop(): void;
}

export interface ProfileOptions {
  readonly profile: ProfileName;
  readonly intervalMs: number;
  readonly command: SwarmCommand;
  readonly speech: SwarmSpeech;
  /** Global index of the worker's slot 0 (`{{conn}}` = firstIndex + slot). */
  readonly firstIndex: number;
}

/** `onRtt` (seconds) feeds /metrics when it is on. */
export function createProfile(o: ProfileOptions, pool: Sender, capacity: number, onRtt?: (seconds: number) => void): Profile {
  return o.profile === 'idle' ? new Idle(o, pool, capacity) : new OpenLoop(o, pool, capacity, onRtt);
}

/** A template's message as one masked frame (text, or binary for base64:/hex:). */
export function templateFrame(r: Renderer, conn: number, seq: number): Buffer {
  const n = r.length(conn, seq);
  const frame = allocFrame(r.binary ? OP_BINARY : OP_TEXT, n);
  r.write(frame, frame.length - n);
  maskPayload(frame);
  return frame;
}

/** `--subscribe`: the message each connection sends once after its upgrade, and the watch over what follows. */
class Subscription {
  private readonly renderer: Renderer;
  readonly watch: PushWatch;
  constructor(o: ProfileOptions, private readonly pool: Sender, capacity: number, traffic: Traffic) {
    this.renderer = new Renderer(o.speech.subscribe!, o.speech.total, o.speech.vars);
    this.watch = traffic.push = new PushWatch(capacity, o.speech.stallAfterMs);
  }
  opened(slot: number, conn: number): void {
    if (this.pool.send(slot, templateFrame(this.renderer, conn, 0))) this.watch.subscribed(slot, performance.now());
  }
}

class Idle implements Profile {
  readonly traffic = new Traffic();
  private readonly subscription: Subscription | undefined;
  constructor(private readonly o: ProfileOptions, pool: Sender, capacity: number) {
    this.subscription = o.speech.subscribe ? new Subscription(o, pool, capacity, this.traffic) : undefined;
  }
  opened(slot: number): void { this.subscription?.opened(slot, this.o.firstIndex + slot); }
  message(slot: number): void {
    this.traffic.received++;
    this.traffic.pushed++;
    this.subscription?.watch.arrived(slot, performance.now());
  }
  pong(): void { this.traffic.pongsReceived++; }
  stop(): void {}
}

/** Most overdue sends one connection makes in one visit; the rest follow on the next tick (bounded work per tick). */
const CATCH_UP = 100;
const SPACE = 0x20;

class OpenLoop implements Profile {
  readonly traffic = new Traffic();
  /** Intended time (performance.now ms) of each slot's next send. */
  private readonly due: Float64Array;
  /*
   * Slots in order of their next due time: a ring (FIFO). Every slot advances by the same interval and a new slot
   * joins at now + interval, which is never earlier than the tail's due time, so the ring stays sorted and one timer
   * armed for its head serves every connection.
   */
  private readonly ring: Int32Array;
  private head = 0;
  private count = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly chatty: boolean;
  private readonly wire: Buffer;
  private readonly echo: boolean;
  /** chatty with `--send`: the user's message, how replies match it, and each slot's messages sent so far. */
  private readonly renderer: Renderer | undefined;
  private readonly matcher: Matcher | undefined;
  private readonly sent: Uint32Array | undefined;
  private readonly subscription: Subscription | undefined;

  constructor(private readonly o: ProfileOptions, private readonly pool: Sender, capacity: number,
    private readonly onRtt: ((seconds: number) => void) | undefined) {
    this.due = new Float64Array(capacity);
    this.ring = new Int32Array(capacity);
    this.chatty = o.profile === 'chatty';
    this.wire = Buffer.from(this.chatty ? o.command.wire : '', 'latin1');
    this.echo = o.speech.match === 'echo';
    const sp = o.speech;
    if (this.chatty && sp.send) {
      this.renderer = new Renderer(sp.send, sp.total, sp.vars);
      this.matcher = new Matcher(sp.match, sp.expect, this.renderer, o.firstIndex, capacity);
      this.sent = new Uint32Array(capacity);
    }
    this.subscription = sp.subscribe ? new Subscription(o, pool, capacity, this.traffic) : undefined;
  }

  /** What follows the id in `data[at, end)` is what this profile sends after it: the server echoed the request. */
  private isEcho(data: Buffer, at: number, end: number): boolean {
    return end - at === this.wire.length && data.compare(this.wire, 0, this.wire.length, at, end) === 0;
  }

  opened(slot: number): void {
    if (this.stopped) return;
    this.subscription?.opened(slot, this.o.firstIndex + slot);
    this.due[slot] = performance.now() + this.o.intervalMs;
    this.push(slot);
    if (this.timer === undefined) this.arm(performance.now());
  }

  message(slot: number, _opcode: number, data: Buffer, start: number, end: number): void {
    const t = this.traffic;
    t.received++;
    if (this.matcher) return this.matched(slot, data, start, end);
    if (!this.chatty) {
      t.pushed++;
      this.subscription?.watch.arrived(slot, performance.now());
      return;
    }
    const idEnd = data.indexOf(SPACE, start);
    const sent = idEnd > start && idEnd < end ? decimal(data, start, idEnd) : -1;
    // `<id> ok <result>` (or, matching echoes, the request itself): anything else is a protocol-level error reply
    if (sent < 0 || (this.echo ? !this.isEcho(data, idEnd, end)
      : idEnd + 3 >= end || data[idEnd + 1] !== 0x6f || data[idEnd + 2] !== 0x6b || data[idEnd + 3] !== SPACE)) {
      t.replyErrors++;
      if (sent < 0) return;
    }
    this.record(sent);
  }

  /**
   * `--send`: the reply answers message `seq` of this slot, or nothing (a push). Its intended send time follows from
   * the schedule: message k of a slot was due at open + (k + 1) × interval, and `due` is the next one's.
   */
  private matched(slot: number, data: Buffer, start: number, end: number): void {
    const t = this.traffic;
    const sent = this.sent![slot];
    const seq = this.matcher!.reply(slot, data, start, end, sent);
    if (seq < 0) {
      t.pushed++;
      this.subscription?.watch.arrived(slot, performance.now());
      return;
    }
    if (!this.matcher!.good(data, start, end)) t.replyErrors++;
    this.record(Math.round((this.due[slot] - (sent - seq) * this.o.intervalMs) * 1000));
  }

  pong(_slot: number, data: Buffer, start: number, end: number): void {
    this.traffic.pongsReceived++;
    if (this.chatty) return;
    const sent = decimal(data, start, end);
    if (sent >= 0) this.record(sent);
  }

  flush(): void {
    if (!this.stopped) this.tick();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private record(sentUs: number): void {
    const rttUs = Math.round(performance.now() * 1000) - sentUs;
    if (rttUs < 0) return;
    this.traffic.rtt.recordValue(Math.max(1, rttUs));
    this.onRtt?.(rttUs / 1e6);
  }

  private push(slot: number): void {
    this.ring[(this.head + this.count) % this.ring.length] = slot;
    this.count++;
  }

  private arm(now: number): void {
    if (this.stopped || this.count === 0) return;
    this.timer = setTimeout(tick, Math.max(0, this.due[this.ring[this.head]] - now), this);
  }

  /** Sends what is due: each queued slot is visited at most once per tick. */
  tick(): void {
    this.timer = undefined;
    const now = performance.now();
    const ring = this.ring, due = this.due, interval = this.o.intervalMs;
    for (let visits = this.count; visits > 0 && this.count > 0; visits--) {
      const slot = ring[this.head];
      if (due[slot] > now) break;
      this.head = (this.head + 1) % ring.length;
      this.count--;
      if (!this.pool.isOpen(slot)) continue; // closed or lost: leaves the ring
      for (let k = 0; k < CATCH_UP && due[slot] <= now; k++) {
        this.fire(slot, due[slot]);
        due[slot] += interval;
      }
      this.push(slot);
    }
    this.arm(now);
  }

  private fire(slot: number, intendedMs: number): void {
    if (this.renderer) {
      // the number advances even if the write fails: the schedule (and so every later reply's send time) does
      const seq = this.sent![slot]++;
      if (this.pool.send(slot, templateFrame(this.renderer, this.o.firstIndex + slot, seq))) this.traffic.sent++;
      return;
    }
    const id = Math.round(intendedMs * 1000);
    const digits = digitCount(id);
    const frame = allocFrame(this.chatty ? OP_TEXT : OP_PING, digits + this.wire.length);
    const p = frame.length - digits - this.wire.length;
    writeDecimal(frame, p, digits, id);
    this.wire.copy(frame, p + digits);
    maskPayload(frame);
    if (!this.pool.send(slot, frame)) return;
    if (this.chatty) this.traffic.sent++;
    else this.traffic.pingsSent++;
  }
}

function tick(loop: OpenLoop): void {
  loop.tick();
}

const digitCount = (n: number): number => (n < 10 ? 1 : Math.floor(Math.log10(n)) + 1);

function writeDecimal(buf: Buffer, at: number, digits: number, n: number): void {
  for (let i = at + digits - 1; i >= at; i--) {
    buf[i] = 0x30 + (n % 10);
    n = Math.floor(n / 10);
  }
}

/** The non-negative integer written in ASCII digits in `buf[start, end)`, or -1. */
function decimal(buf: Buffer, start: number, end: number): number {
  if (end <= start || end - start > 16) return -1;
  let n = 0;
  for (let i = start; i < end; i++) {
    const d = buf[i] - 0x30;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}
