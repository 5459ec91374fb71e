/**
 * The swarm's connections: one integer slot each, state in typed arrays (struct of arrays), one shared set of
 * handler functions that find their slot through `this`. No closure, no EventEmitter, no stream per connection.
 *
 * Why libuv TCP handles and not `net.Socket`: a held `net.Socket` is a Duplex stream with two state objects, an
 * EventEmitter and its listeners — measured here at ≈4.5 KB RSS per idle connection and ≈7.7k connections/s while
 * opening, against ≈1.3 KB and ≈13k/s for the bare handle that `net.Socket` wraps (the same `TCP` object, reached
 * through `process.binding('tcp_wrap')`, which Node 20 and 22 still expose). The swarm must weigh less than the
 * servers it loads, so it talks to the handle directly: bind, connect, readStart into one shared read buffer
 * (`useUserBuffer`, so a read allocates nothing), writeBuffer, close. Everything RFC 6455 lives in codec.ts.
 *
 * Local ports are chosen here, not by the kernel: bind(address, 0) searches the ephemeral range for a port free on
 * every address and gets slow as ports fill up (measured here: ≈280 µs per bind on a source address with ~4k
 * TIME_WAIT sockets, ≈25 µs on a fresh one). We walk the range with one cursor per source address instead; libuv
 * binds with SO_REUSEADDR, so a port is refused only when the same 4-tuple is in use, and such an attempt is retried
 * on the next port (EADDRINUSE / EADDRNOTAVAIL, up to PORT_TRIES times) before it counts as EADDRNOTAVAIL. The walk
 * leaves the top of the range to the kernel, for everything else on the box that connects ({@link swarmPorts}).
 */
import { getSystemErrorName } from 'node:util';
import { performance } from 'node:perf_hooks';
import { SWARM_CAUSES, type SwarmCause } from '../metrics/swarm.js';
import {
  DEFLATE_OFFER, FrameReader, UpgradeRequest, checkUpgrade, deflateAccepted, encodeClose, encodeFrame, newKey, upgradeFailure,
  OP_PONG, UPGRADE_PARTIAL, UPGRADE_REJECTED, type FrameSink,
} from './codec.js';
import type { SwarmHandshake, SwarmTarget } from './options.js';
import { TlsHandle, secureContext } from './tls-transport.js';
import { swarmPorts } from './ports.js';

/* The parts of Node's internal TCP binding used here (lib/net.js uses the same calls). */
export interface TcpHandle {
  slot: number;
  onread: (this: TcpHandle, ab?: ArrayBuffer) => void;
  bind(ip: string, port: number): number;
  bind6(ip: string, port: number, flags: number): number;
  connect(req: object, ip: string, port: number): number;
  connect6(req: object, ip: string, port: number): number;
  readStart(): number;
  readStop(): number;
  /** Bytes queued in libuv, not yet handed to the kernel. */
  readonly writeQueueSize: number;
  writeBuffer(req: object, buf: Uint8Array): number;
  setNoDelay(on: boolean): number;
  useUserBuffer(buf: Uint8Array): void;
  close(): void;
  /** Closes with SO_LINGER 0: an RST, so no TIME_WAIT is left on our side. */
  reset(): number;
}
interface ConnectReq { oncomplete: (status: number, handle: TcpHandle) => void }
interface WriteReq { handle: TcpHandle; oncomplete: (status: number, handle: TcpHandle) => void; async: boolean; buffer?: Uint8Array }
interface TcpBinding {
  TCP: new (type: number) => TcpHandle;
  TCPConnectWrap: new () => ConnectReq;
  constants: { SOCKET: number };
}
interface StreamBinding {
  WriteWrap: new () => WriteReq;
  streamBaseState: Int32Array;
  kReadBytesOrError: number;
  kLastWriteWasAsync: number;
}

function loadBindings(): { tcp: TcpBinding; stream: StreamBinding } {
  const binding = (process as unknown as { binding?: (name: string) => unknown }).binding;
  try {
    return { tcp: binding!('tcp_wrap') as TcpBinding, stream: binding!('stream_wrap') as StreamBinding };
  } catch (err) {
    throw Object.assign(new Error(`wslab swarm needs Node's tcp_wrap binding (Node 20/22), unavailable here: ${(err as Error).message}`), { code: 'WSLAB_NO_TCP_BINDING' });
  }
}
/** Node's tcp_wrap and stream_wrap, loaded once; bench/clients/hold-client's bare `handle` kind drives the same. */
export const { tcp: TCP_BINDING, stream: STREAM } = loadBindings();
const { TCP, TCPConnectWrap } = TCP_BINDING;
const { WriteWrap, streamBaseState } = STREAM;
const kReadBytesOrError = STREAM.kReadBytesOrError;
const kLastWriteWasAsync = STREAM.kLastWriteWasAsync;
const UV_EOF = -4095;

/** Every socket reads into this one buffer; the parser copies only what must outlive the read. */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

export const FREE = 0;
export const CONNECTING = 1; // TCP connect in progress
export const UPGRADING = 2;  // upgrade request sent, waiting for 101
export const OPEN = 3;
export const CLOSING = 4;    // close frame sent or received, waiting for the server to end TCP
export const DONE = 5;
/*
 * slowloris: TCP connected, the upgrade request is being dribbled and never finishes. Numbered after DONE so the
 * deadline sweep (CONNECTING…CLOSING) never times it out: the attack is to be held until the server cuts it.
 */
export const DRIBBLING = 6;

/* `--reconnect` (downState): a lost slot is RELEASING until its socket is released, then DOWN until it opens again. */
const RELEASING = 2;
const DOWN = 1;

/**
 * How an attacker's connection ended without the swarm asking (the `outcome` label, metrics/swarm.ts): `closed`
 * the server sent a close frame, `ended` it ended TCP (FIN) without one, `reset` an RST or a write error,
 * `rejected` it answered the upgrade with something other than 101, `failed` no TCP connection, no answer in time,
 * or the server broke RFC 6455 and the swarm failed the connection.
 */
export type AttackEnd = 'closed' | 'ended' | 'reset' | 'rejected' | 'failed';

/** Ports tried for one connection before it fails with EADDRNOTAVAIL. */
const PORT_TRIES = 32;

export const CAUSE_INDEX: ReadonlyMap<string, number> = new Map(SWARM_CAUSES.map((c, i) => [c, i]));
const cause = (c: SwarmCause): number => CAUSE_INDEX.get(c)!;

/** A negative libuv status → the `cause` label. Port exhaustion on a bound source address shows as EADDRINUSE. */
export function causeOfErrno(status: number): SwarmCause {
  const name = getSystemErrorName(status);
  if (name === 'EADDRINUSE') return 'EADDRNOTAVAIL';
  if (name === 'ENFILE') return 'EMFILE';
  return CAUSE_INDEX.has(name) ? name as SwarmCause : 'other';
}

/** What a pool reports to the rest of the worker. Called with the slot, never with a per-connection object. */
export interface PoolHooks {
  /** A connection completed its upgrade; `connectMs` from connect() to the verified 101. */
  opened(slot: number, connectMs: number): void;
  /** An attempt ended, opened or failed: a place under --max-pending is free. */
  settled(): void;
  message(slot: number, opcode: number, data: Buffer, start: number, end: number): void;
  pong(slot: number, data: Buffer, start: number, end: number): void;
  /** The first failure of each cause, with a line saying what happened (resource errors carry the fix). */
  firstFailure(cause: SwarmCause, detail: string): void;
  /** Attack pools only ({@link PoolOptions.attack}): TCP is up and the slot is DRIBBLING (slowloris). */
  dribbling?(slot: number): void;
  /** Attack pools only: the connection ended without our asking, `ageMs` after its attempt began; `code` of a close frame, else 0. */
  ended?(slot: number, how: AttackEnd, code: number, ageMs: number): void;
  /** Bytes read on a slot (before parsing): slow readers pace themselves on it. */
  read?(slot: number, bytes: number): void;
  /**
   * {@link PoolOptions.reconnect} only: an opened connection was lost, or an attempt to reopen it failed; the slot is
   * free, and {@link Pool.reopen} may start it again.
   */
  down?(slot: number): void;
  /** A slot reopened ({@link Pool.reopen}) completed its upgrade again, `connectMs` after that attempt began. */
  reopened?(slot: number, connectMs: number): void;
}

export interface PoolOptions {
  /** Slots (connections this worker attempts). */
  readonly capacity: number;
  /** Global index of slot 0: connection g goes to targets[g % targets.length] from sources[g % sources.length]. */
  readonly firstIndex: number;
  readonly targets: readonly SwarmTarget[];
  readonly sources: readonly string[];
  readonly handshakeTimeoutMs: number;
  readonly closeTimeoutMs: number;
  /** Local ports to bind when sources are given. Default: {@link swarmPorts} (the ephemeral range less a band kept for the kernel). */
  readonly ports?: readonly [number, number];
  /**
   * An attack pool: ends of connections go to {@link PoolHooks.ended} as outcomes instead of `lost` (an attacker cut
   * by the server is the experiment's result, not a lost connection); failed attempts are still counted by cause.
   * Default false.
   */
  readonly attack?: boolean;
  /** Answer the server's pings (no-pong turns this off). Default true. */
  readonly answerPings?: boolean;
  /** slowloris: after TCP connect, hand the slot to {@link PoolHooks.dribbling} instead of sending the upgrade. Default false. */
  readonly dribble?: boolean;
  /** Extra upgrade headers and subprotocols, TLS checks for wss:// targets, `--deflate`. Default none. */
  readonly handshake?: SwarmHandshake;
  /** Offer permessage-deflate whatever `handshake.deflate` says (deflate-bomb must). Default false. */
  readonly offerDeflate?: boolean;
  /**
   * `--reconnect`: a lost connection goes to {@link PoolHooks.down} (after it is counted as lost) so the worker can
   * reopen the slot. Default false.
   */
  readonly reconnect?: boolean;
  /** Extra upgrade header lines (each ending in CRLF): the same for every connection, and per connection (`conn` = global index). */
  readonly headerLines?: { readonly fixed: string; readonly perConnection?: (conn: number) => string };
}

/** A slot's transport: a bare libuv TCP handle (ws://) or a TLS socket (wss://, client/tls-transport.ts). */
type Handle = TcpHandle | TlsHandle;

/** Counts a pool keeps; plain numbers read by the stats reporter and the /metrics collectors. */
export class PoolCounts {
  attempted = 0;
  opened = 0;
  open = 0;
  connecting = 0;
  closing = 0;
  peakOpen = 0;
  closedNormally = 0;
  closeTimeouts = 0;
  /** slowloris connections dribbling their upgrade now. */
  dribbling = 0;
  /** conn-flood connections dropped by the swarm right after their upgrade. */
  dropped = 0;
  /** Upgrades whose 101 accepted the permessage-deflate offered (`--deflate`, deflate-bomb). */
  deflated = 0;
  /** `--reconnect`: slots that opened, were lost and are not open again (waiting or reconnecting now). */
  down = 0;
  /** `--reconnect`: attempts to reopen a lost slot, those that opened, and those that failed by cause. */
  reconnectAttempts = 0;
  reconnected = 0;
  readonly reconnectFailed = new Float64Array(SWARM_CAUSES.length);
  /** `--reconnect`: epoch ms of the first loss, and of the last moment `down` went back to 0 (0 = never). */
  firstDownAt = 0;
  allUpAt = 0;
  readonly failed = new Float64Array(SWARM_CAUSES.length);
  readonly lost = new Float64Array(SWARM_CAUSES.length);
  /** Epoch ms of the first and last loss of an open connection (0 = none). */
  lostFirstAt = 0;
  lostLastAt = 0;
  /** Epoch ms of the first attempt and of the latest successful upgrade. */
  firstAttemptAt = 0;
  lastOpenedAt = 0;
  constructor(targets: number) {
    this.openByTarget = new Float64Array(targets);
    this.lostByTarget = new Float64Array(targets);
    this.abruptByTarget = new Float64Array(targets);
  }
  readonly openByTarget: Float64Array;
  readonly lostByTarget: Float64Array;
  /** Of those, lost without a close frame (reset, TCP ended): what a dead server looks like. */
  readonly abruptByTarget: Float64Array;
}

const epochMs = (): number => performance.timeOrigin + performance.now();

export class Pool implements FrameSink {
  readonly counts: PoolCounts;
  private readonly state: Uint8Array;
  private readonly startedAt: Float64Array;
  private readonly deadline: Float64Array;
  /** Sec-WebSocket-Key nonces, 16 bytes per slot, kept until the 101 is verified. */
  private readonly keys: Uint8Array;
  private readonly handles: (Handle | undefined)[];
  private readonly requests: UpgradeRequest[];
  private readonly reader: FrameReader;
  /** Partial HTTP response heads, only while one straddles reads. */
  private readonly heads = new Map<number, Buffer>();
  /** Local port tries per slot, and the next port to try per source address. */
  private readonly tries: Uint8Array;
  private readonly cursor: Int32Array;
  private readonly ports: readonly [number, number];
  private readonly seenFailure = new Set<SwarmCause>();
  private readonly protocols: readonly string[];
  /** `--reconnect`: 1 while the slot is down (lost, waiting or reconnecting), 2 from its loss until it is released. */
  private readonly downState: Uint8Array | undefined;
  /** Offering permessage-deflate: `deflated[slot]` = 1 where the server accepted it (undefined when not offering). */
  readonly deflated: Uint8Array | undefined;
  private used = 0;
  private sweepTimer: NodeJS.Timeout | undefined;
  /*
   * The handlers every handle and request of this pool shares: three closures per pool, none per connection.
   * `this` is the handle (reads) and the slot is a property of the handle.
   */
  private readonly onRead: (this: TcpHandle) => void;
  private readonly afterConnect: (status: number, h: TcpHandle) => void;
  private readonly afterWrite: (status: number, h: TcpHandle) => void;
  private readonly tlsEvents: import('./tls-transport.js').TlsEvents;
  /** wss:// only: made at the first TLS connect. */
  private tlsContext: import('node:tls').SecureContext | undefined;

  constructor(private readonly o: PoolOptions, private readonly hooks: PoolHooks) {
    this.counts = new PoolCounts(o.targets.length);
    this.state = new Uint8Array(o.capacity);
    this.startedAt = new Float64Array(o.capacity);
    this.deadline = new Float64Array(o.capacity);
    this.keys = new Uint8Array(o.capacity * 16);
    this.handles = new Array(o.capacity).fill(undefined);
    this.tries = new Uint8Array(o.sources.length > 0 ? o.capacity : 0);
    this.ports = o.ports ?? swarmPorts().range;
    const [lo, hi] = this.ports;
    // a random start per address: workers sharing an address, and a run right after another, rarely collide
    this.cursor = Int32Array.from(o.sources, () => lo + Math.floor(Math.random() * (hi - lo + 1)));
    const hs = o.handshake;
    this.protocols = hs?.subprotocols ?? [];
    this.deflated = hs?.deflate || o.offerDeflate ? new Uint8Array(o.capacity) : undefined;
    this.downState = o.reconnect ? new Uint8Array(o.capacity) : undefined;
    const offered = (this.protocols.length > 0 ? `Sec-WebSocket-Protocol: ${this.protocols.join(', ')}\r\n` : '') +
      (this.deflated ? `Sec-WebSocket-Extensions: ${DEFLATE_OFFER}\r\n` : '');
    this.requests = o.targets.map((t) => new UpgradeRequest(t.host, t.path, (o.headerLines?.fixed ?? '') + offered, o.headerLines?.perConnection));
    this.reader = new FrameReader(this, undefined, this.deflated);
    const pool = this;
    this.onRead = function onRead(this: TcpHandle) { pool.received(this.slot, streamBaseState[kReadBytesOrError]); };
    this.afterConnect = (status, h) => pool.connected(h.slot, h, status);
    this.afterWrite = (status, h) => { if (status < 0) pool.received(h.slot, status); };
    this.tlsEvents = {
      connected: (slot, h, status) => pool.connected(slot, h, status),
      received: (slot, nread, buf) => { if (pool.handles[slot] !== undefined) pool.received(slot, nread, buf); },
      tlsFailed: (slot, h, why, detail) => {
        if (pool.handles[slot] !== h) return;
        const t = pool.o.targets[pool.targetOf(slot)];
        pool.failAttempt(slot, why, `${detail} (${t.url})`);
      },
    };
  }

  isOpen(slot: number): boolean { return this.state[slot] === OPEN; }
  targetOf(slot: number): number { return (this.o.firstIndex + slot) % this.o.targets.length; }

  /** Starts connection attempt `slot` (each slot is attempted once; failures are counted, not retried). */
  open(slot: number): void {
    const now = performance.now();
    this.state[slot] = CONNECTING;
    this.startedAt[slot] = now;
    this.deadline[slot] = now + this.o.handshakeTimeoutMs;
    if (slot >= this.used) this.used = slot + 1;
    const c = this.counts;
    if (c.attempted++ === 0) c.firstAttemptAt = epochMs();
    c.connecting++;
    this.armSweep();
    this.connect(slot);
  }

  /**
   * `--reconnect`: starts a new attempt for a slot that opened once and is down (lost, or its last reopen failed).
   * Counted apart from the ramp's attempts: `reconnectAttempts`, then `reconnected` or `reconnectFailed`.
   */
  reopen(slot: number): void {
    if (this.state[slot] !== DONE || this.downState?.[slot] !== DOWN) return;
    const now = performance.now();
    this.state[slot] = CONNECTING;
    this.startedAt[slot] = now;
    this.deadline[slot] = now + this.o.handshakeTimeoutMs;
    if (this.tries.length > 0) this.tries[slot] = 0;
    this.counts.reconnectAttempts++;
    this.counts.connecting++;
    this.armSweep();
    this.connect(slot);
  }

  /** A TCP handle for `slot`, bound to its source address and the next local port, connecting. */
  private connect(slot: number): void {
    const g = this.o.firstIndex + slot;
    const t = this.o.targets[g % this.o.targets.length];
    const si = this.o.sources.length > 0 ? g % this.o.sources.length : -1;
    if (t.tls) {
      let port = 0;
      if (si >= 0) {
        port = this.cursor[si];
        this.cursor[si] = port >= this.ports[1] ? this.ports[0] : port + 1;
      }
      this.tlsContext ??= secureContext(this.o.handshake!);
      this.handles[slot] = new TlsHandle(slot, t, si >= 0 ? this.o.sources[si] : undefined, port, this.o.handshake!, this.tlsContext, this.tlsEvents);
      return;
    }
    const h = new TCP(TCP_BINDING.constants.SOCKET);
    h.slot = slot;
    h.onread = this.onRead;
    h.useUserBuffer(READ_BUFFER);
    this.handles[slot] = h;
    if (si >= 0) {
      const src = this.o.sources[si];
      const port = this.cursor[si];
      this.cursor[si] = port >= this.ports[1] ? this.ports[0] : port + 1;
      // A port in use comes back later, from connect (libuv defers EADDRINUSE); an error here is about the address.
      const err = t.family === 6 ? h.bind6(src, port, 0) : h.bind(src, port);
      if (err !== 0) {
        const name = getSystemErrorName(err);
        return this.failAttempt(slot, causeOfErrno(err), `${name} binding ${src}${name === 'EADDRNOTAVAIL' ? ' (is it an address of this machine?)' : ''}`);
      }
    }
    const req = new TCPConnectWrap();
    req.oncomplete = this.afterConnect;
    const err = t.family === 6 ? h.connect6(req, t.ip, t.port) : h.connect(req, t.ip, t.port);
    if (err !== 0) this.connected(slot, h, err);
  }

  /** Sends a frame on an open slot (the profile's command or ping); false if it could not be written. */
  send(slot: number, frame: Buffer): boolean {
    const h = this.handles[slot];
    if (h === undefined || this.state[slot] !== OPEN) return false;
    return this.write(slot, h, frame);
  }

  /** Writes raw bytes on an open or DRIBBLING slot (attacks: a dribbled request, a partial frame, garbage). */
  sendRaw(slot: number, bytes: Buffer): boolean {
    const h = this.handles[slot];
    const st = this.state[slot];
    if (h === undefined || (st !== OPEN && st !== DRIBBLING)) return false;
    return this.write(slot, h, bytes);
  }

  isDribbling(slot: number): boolean { return this.state[slot] === DRIBBLING; }

  /** Bytes libuv still holds for `slot` (0 for a closed slot): what a flood checks before queueing more. */
  queued(slot: number): number { return this.handles[slot]?.writeQueueSize ?? 0; }

  /** Stops or restarts reading `slot` (slow-reader): a stopped socket's kernel receive window fills and closes. */
  pauseReading(slot: number): void { this.handles[slot]?.readStop(); }
  resumeReading(slot: number): void {
    const h = this.handles[slot];
    if (h !== undefined && (this.state[slot] === OPEN || this.state[slot] === CLOSING)) h.readStart();
  }

  /** conn-flood: drops an open slot at once with an RST, no close frame (counted as `dropped`, not lost). */
  drop(slot: number): void {
    if (this.state[slot] !== OPEN) return;
    this.leaveOpen(slot);
    this.counts.dropped++;
    this.release(slot, true);
  }

  /** Starts the close handshake (1000) on an open slot; the server's echo and TCP end finish it. */
  startClose(slot: number, code = 1000): void {
    const h = this.handles[slot];
    if (h === undefined || this.state[slot] !== OPEN) return;
    this.leaveOpen(slot);
    this.toClosing(slot);
    this.write(slot, h, encodeClose(code));
  }

  /** Slots opened so far (the scan bound for sweeps and closeAll). */
  get slotsUsed(): number { return this.used; }

  /** Drops every socket at once with an RST, no close frames (SIGINT, or what is left after the close timeout). */
  destroyAll(): void {
    for (let s = 0; s < this.used; s++) if (this.handles[s] !== undefined) this.release(s, true);
    const c = this.counts;
    c.open = c.connecting = c.closing = c.dribbling = 0;
    c.openByTarget.fill(0);
    this.stop();
  }

  /** The deadline sweep (handshake and close timeouts), every 100 ms while a connection is connecting or closing. */
  private armSweep(): void {
    this.sweepTimer ??= setInterval(() => this.sweep(performance.now()), 100);
  }

  /** Stops the deadline sweep (the pool holds no other timer). */
  stop(): void {
    if (this.sweepTimer !== undefined) clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
  }

  /* ---- FrameSink: what the reader found on a slot ---- */

  /* Replies that arrive while our close handshake runs still count: the last requests are due right at the close. */
  message(slot: number, opcode: number, data: Buffer, start: number, end: number): void {
    if (this.state[slot] === OPEN || this.state[slot] === CLOSING) this.hooks.message(slot, opcode, data, start, end);
  }
  ping(slot: number, data: Buffer, start: number, end: number): void {
    const h = this.handles[slot];
    if (h !== undefined && this.state[slot] === OPEN && this.o.answerPings !== false) this.write(slot, h, encodeFrame(OP_PONG, data, start, end));
  }
  pong(slot: number, data: Buffer, start: number, end: number): void {
    if (this.state[slot] === OPEN || this.state[slot] === CLOSING) this.hooks.pong(slot, data, start, end);
  }
  close(slot: number, code: number): void {
    const h = this.handles[slot];
    if (h === undefined || this.state[slot] !== OPEN) return; // our own close, echoed: wait for the TCP end
    this.lose(slot, 'closed_by_server', `the server closed with ${code}`, code);
    this.toClosing(slot);
    this.write(slot, h, encodeClose(code)); // echo its code (RFC 6455 §5.5.1), then let it end TCP
  }
  fail(slot: number, closeCode: number, detail: string): void {
    const h = this.handles[slot];
    if (h === undefined) return;
    if (this.state[slot] === OPEN) {
      this.write(slot, h, encodeClose(closeCode)); // RFC 6455 §7.1.7: fail the connection, saying why
      this.lose(slot, 'protocol_error', `protocol error: ${detail}`);
    }
    this.release(slot);
  }

  /** An attempt that never opened: counted by cause; the first of each cause is reported. */
  private failAttempt(slot: number, why: SwarmCause, detail: string): void {
    const st = this.state[slot];
    if (st !== CONNECTING && st !== UPGRADING) return;
    const c = this.counts;
    c.connecting--;
    this.first(why, detail);
    if (this.downState?.[slot] === DOWN) {
      // a reopen that failed: not one of the ramp's attempts; the slot stays down and is retried
      c.reconnectFailed[cause(why)]++;
      this.downState[slot] = RELEASING;
      return this.release(slot, true);
    }
    c.failed[cause(why)]++;
    if (this.o.attack) this.hooks.ended?.(slot, why === 'handshake_rejected' ? 'rejected' : 'failed', 0, performance.now() - this.startedAt[slot]);
    this.release(slot, true);
    this.hooks.settled();
  }

  /* ---- transport events, reached through the shared handlers made in the constructor ---- */

  private connected(slot: number, h: Handle, status: number): void {
    if (this.state[slot] !== CONNECTING || this.handles[slot] !== h) return; // timed out meanwhile
    if (status < 0) {
      const name = getSystemErrorName(status);
      const t = this.o.targets[this.targetOf(slot)];
      if ((name === 'EADDRINUSE' || name === 'EADDRNOTAVAIL') && this.tries.length > 0) {
        if (++this.tries[slot] < PORT_TRIES) { // that local port is taken towards this server: the next one
          h.close();
          return this.connect(slot);
        }
        const src = this.o.sources[(this.o.firstIndex + slot) % this.o.sources.length];
        return this.failAttempt(slot, 'EADDRNOTAVAIL', `no free local port on ${src} towards ${t.url} after ${PORT_TRIES} tries`);
      }
      return this.failAttempt(slot, causeOfErrno(status), `${name} connecting to ${t.url}`);
    }
    h.setNoDelay(true);
    const err = h.readStart();
    if (err !== 0) return this.failAttempt(slot, causeOfErrno(err), `${getSystemErrorName(err)} starting to read`);
    if (this.o.dribble) {
      // slowloris: the attempt has settled for the ramp (TCP is up); from here on only the server ends it
      this.state[slot] = DRIBBLING;
      this.counts.connecting--;
      this.counts.dribbling++;
      this.hooks.settled();
      this.hooks.dribbling?.(slot);
      return;
    }
    this.state[slot] = UPGRADING;
    newKey(this.keys, slot * 16);
    this.write(slot, h, this.requests[this.targetOf(slot)].build(this.keys, slot * 16, this.o.firstIndex + slot));
  }

  private received(slot: number, nread: number, buf: Buffer = READ_BUFFER): void {
    const st = this.state[slot];
    if (st === DRIBBLING) return this.dribbleAnswered(slot, nread);
    if (nread > 0) this.hooks.read?.(slot, nread);
    if (nread < 0) {
      const why = nread === UV_EOF ? undefined : causeOfErrno(nread);
      if (st === CLOSING) return this.finish(slot);
      if (st === OPEN) {
        this.lose(slot, why ?? 'ECONNRESET', `${why ?? 'TCP ended'} without a close frame`, 0, why === undefined);
        return this.release(slot);
      }
      const t = this.o.targets[this.targetOf(slot)];
      return this.failAttempt(slot, why ?? 'ECONNRESET', `${why ?? 'the server ended TCP'} before answering the upgrade (${t.url})`);
    }
    if (st === OPEN || st === CLOSING) return this.reader.feed(slot, buf, 0, nread);
    if (st === UPGRADING) this.upgrade(slot, buf, nread);
  }

  /**
   * The server reacted to a dribbling slowloris: it ended TCP (FIN or RST), or answered (a 408 or 400 status line:
   * `rejected`). Either way the attack on this slot is over; it counts as an outcome, not as a failed attempt.
   */
  private dribbleAnswered(slot: number, nread: number): void {
    const how: AttackEnd = nread === UV_EOF ? 'ended' : nread < 0 ? 'reset' : 'rejected';
    this.counts.dribbling--;
    this.hooks.ended?.(slot, how, 0, performance.now() - this.startedAt[slot]);
    this.release(slot, how !== 'ended');
  }

  /** Fails attempts and ends close handshakes past their deadline: one scan every 100 ms, only while any is pending. */
  private sweep(now: number): void {
    const c = this.counts;
    // nothing has a deadline: a pool holding idle connections wakes no one (the next attempt or close re-arms it)
    if (c.connecting === 0 && c.closing === 0) return this.stop();
    for (let s = 0; s < this.used; s++) {
      const st = this.state[s];
      if (st < CONNECTING || st > CLOSING || st === OPEN || this.deadline[s] > now) continue;
      if (st === CLOSING) {
        c.closeTimeouts++;
        c.closedNormally++;
        this.release(s, true);
      } else {
        const t = this.o.targets[this.targetOf(s)].url;
        this.failAttempt(s, st === CONNECTING ? 'ETIMEDOUT' : 'handshake_timeout',
          `${st === CONNECTING ? 'TCP connect' : 'upgrade'} to ${t} took longer than ${this.o.handshakeTimeoutMs} ms`);
      }
    }
  }

  private upgrade(slot: number, buf: Buffer, nread: number): void {
    let data = buf, end = nread;
    const head = this.heads.get(slot);
    if (head !== undefined) {
      this.heads.delete(slot);
      data = Buffer.concat([head, buf.subarray(0, nread)]);
      end = data.length;
    }
    const deflate = this.deflated !== undefined;
    const at = checkUpgrade(data, 0, end, this.keys, slot * 16, this.protocols, deflate);
    if (at === UPGRADE_PARTIAL) {
      this.heads.set(slot, Buffer.from(data.subarray(0, end)));
      return;
    }
    if (at < 0) {
      const why = upgradeFailure(data, 0, end, this.keys, slot * 16, this.protocols, deflate);
      return this.failAttempt(slot, at === UPGRADE_REJECTED ? 'handshake_rejected' : 'protocol_error', `upgrade refused: ${why}`);
    }
    const c = this.counts;
    // a reopened slot (--reconnect) is counted in `reconnected`, not again in `opened` or `deflated`
    const again = this.downState !== undefined && this.downState[slot] === DOWN;
    if (deflate) {
      this.deflated![slot] = deflateAccepted(data, 0, at) ? 1 : 0;
      if (!again) c.deflated += this.deflated![slot];
    }
    this.state[slot] = OPEN;
    c.connecting--;
    if (++c.open > c.peakOpen) c.peakOpen = c.open;
    c.openByTarget[this.targetOf(slot)]++;
    if (again) {
      this.downState![slot] = 0;
      c.reconnected++;
      if (--c.down === 0) c.allUpAt = epochMs();
      this.hooks.reopened?.(slot, performance.now() - this.startedAt[slot]);
    } else {
      c.opened++;
      c.lastOpenedAt = epochMs(); // the ramp's last open: reopens do not lengthen the ramp
      this.hooks.opened(slot, performance.now() - this.startedAt[slot]);
      this.hooks.settled();
    }
    if (at < end && this.state[slot] === OPEN) this.reader.feed(slot, data, at, end);
  }

  private write(slot: number, h: Handle, buf: Buffer): boolean {
    if (h instanceof TlsHandle) {
      h.write(buf);
      return true;
    }
    const req = new WriteWrap();
    req.handle = h;
    req.oncomplete = this.afterWrite;
    req.async = false;
    const err = h.writeBuffer(req, buf);
    if (err !== 0) {
      this.received(slot, err);
      return false;
    }
    if (streamBaseState[kLastWriteWasAsync] !== 0) req.buffer = buf; // libuv holds a pointer into it until done
    return true;
  }

  /**
   * An open connection ended without our asking: counted as lost, by cause, with the time; in an attack pool it is
   * an outcome instead (closed with `code`, ended, reset).
   */
  private lose(slot: number, why: SwarmCause, detail: string, code = 0, fin = false): void {
    if (this.o.attack) {
      this.leaveOpen(slot);
      const how: AttackEnd = why === 'closed_by_server' ? 'closed' : why === 'protocol_error' ? 'failed' : fin ? 'ended' : 'reset';
      this.hooks.ended?.(slot, how, code, performance.now() - this.startedAt[slot]);
      return;
    }
    const c = this.counts;
    const now = epochMs();
    c.lost[cause(why)]++;
    c.lostByTarget[this.targetOf(slot)]++;
    if (why !== 'closed_by_server' && why !== 'protocol_error') c.abruptByTarget[this.targetOf(slot)]++;
    if (c.lostFirstAt === 0) c.lostFirstAt = now;
    c.lostLastAt = now;
    this.leaveOpen(slot);
    this.first(why, detail);
    if (this.downState) {
      this.downState[slot] = RELEASING; // goes down (to be reopened) once its socket is released
      if (c.down++ === 0 && c.firstDownAt === 0) c.firstDownAt = now;
    }
  }

  private leaveOpen(slot: number): void {
    const c = this.counts;
    c.open--;
    c.openByTarget[this.targetOf(slot)]--;
  }

  private toClosing(slot: number): void {
    this.state[slot] = CLOSING;
    this.deadline[slot] = performance.now() + this.o.closeTimeoutMs;
    this.counts.closing++;
    this.armSweep();
  }

  /** A close handshake ended (the server ended TCP, or the close timeout passed). */
  private finish(slot: number): void {
    this.counts.closedNormally++;
    this.release(slot);
  }

  /**
   * Ends a slot. `reset` sends an RST instead of a FIN: used when we give up on a socket (timeouts, SIGINT), so the
   * swarm leaves no TIME_WAIT on its own source ports (a FIN from us would, for 60 s, slowing the next run's connects).
   */
  private release(slot: number, reset = false): void {
    const h = this.handles[slot];
    if (this.state[slot] === CLOSING) this.counts.closing--;
    this.state[slot] = DONE;
    this.handles[slot] = undefined;
    this.heads.delete(slot);
    this.reader.forget(slot);
    if (h !== undefined && (!reset || h.reset() !== 0)) h.close();
    if (this.downState?.[slot] === RELEASING) {
      this.downState[slot] = DOWN;
      this.hooks.down?.(slot);
    }
  }

  private first(why: SwarmCause, detail: string): void {
    if (this.seenFailure.has(why)) return;
    this.seenFailure.add(why);
    this.hooks.firstFailure(why, detail);
  }
}
