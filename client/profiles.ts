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
import { OP_PING, OP_TEXT, allocFrame, maskPayload } from './codec.js';
import type { ProfileName, ReplyMatch, SwarmCommand } from './options.js';

/** A latency histogram in microseconds, 1 µs to 1 h at 3 significant digits: the same layout everywhere it merges. */
export function latencyHistogram(): hdr.Histogram {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3 });
}

/** Message counts and the RTT histogram of one worker. */
export class Traffic {
  sent = 0;
  received = 0;
  /** Replies of the form `<id> err …` (or without our id). */
  replyErrors = 0;
  pingsSent = 0;
  pongsReceived = 0;
  readonly rtt = latencyHistogram();
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
  readonly match: ReplyMatch;
}

/** `onRtt` (seconds) feeds /metrics when it is on. */
export function createProfile(o: ProfileOptions, pool: Sender, capacity: number, onRtt?: (seconds: number) => void): Profile {
  return o.profile === 'idle' ? new Idle() : new OpenLoop(o, pool, capacity, onRtt);
}

class Idle implements Profile {
  readonly traffic = new Traffic();
  opened(): void {}
  message(): void { this.traffic.received++; }
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

  constructor(private readonly o: ProfileOptions, private readonly pool: Sender, capacity: number,
    private readonly onRtt: ((seconds: number) => void) | undefined) {
    this.due = new Float64Array(capacity);
    this.ring = new Int32Array(capacity);
    this.chatty = o.profile === 'chatty';
    this.wire = Buffer.from(this.chatty ? o.command.wire : '', 'latin1');
    this.echo = o.match === 'echo';
  }

  /** What follows the id in `data[at, end)` is what this profile sends after it: the server echoed the request. */
  private isEcho(data: Buffer, at: number, end: number): boolean {
    return end - at === this.wire.length && data.compare(this.wire, 0, this.wire.length, at, end) === 0;
  }

  opened(slot: number): void {
    if (this.stopped) return;
    this.due[slot] = performance.now() + this.o.intervalMs;
    this.push(slot);
    if (this.timer === undefined) this.arm(performance.now());
  }

  message(_slot: number, _opcode: number, data: Buffer, start: number, end: number): void {
    const t = this.traffic;
    t.received++;
    if (!this.chatty) return;
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
