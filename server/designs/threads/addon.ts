/**
 * The one loader of the native `threads` addon (binding.gyp, native/src/): a pthread-per-connection WebSocket server
 * doing blocking I/O, speaking docs/protocol.md. Its threads never call into JS; they update atomic counters that
 * {@link ThreadsServer.stats} reads at scrape time.
 *
 * The addon is loaded on first use, so importing this module never fails: a missing build only fails the threads
 * design. `WSLAB_THREADS_ADDON=/path/to/wslab_threads.node` loads another build instead of build/Release, e.g. the
 * AddressSanitizer one (native/README.md). It is read here rather than at the CLI edge because it selects a build
 * artefact, not a server option.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface ThreadsStartOptions {
  /** Address to bind, numeric or a name (`127.0.0.1`, `::1`, `localhost`). */
  host: string;
  /** 0 picks a free port ({@link ThreadsServer.port} tells which). */
  port: number;
  /** 0: one pthread per connection, limited only by the OS. N: N worker threads created at start plus a FIFO queue. */
  pool: number;
  /**
   * Pool only: sockets that may wait in the queue beyond those an idle worker is about to take. A connection that does
   * not fit is answered HTTP 503 at once by the accept thread and closed, counted in `rejected.queue_full`.
   */
  queueLimit: number;
  /** Stack size of every connection and worker thread, bytes (at least 16384; rounded up to pages). */
  threadStack: number;
  /**
   * Each command runs on a new thread that the connection's thread creates and joins (with `threadStack`): a thread
   * per task, the seed's "every step a new thread". Default false: the connection's own thread runs it.
   */
  taskThreads?: boolean;
  /** Largest message, bytes, checked on each frame's declared length before reading it: bigger closes with 1009. */
  maxPayload: number;
  /** No byte from the client for half of this: ping; for all of it: close 1001 `idle timeout`. 0 = never. */
  idleTimeoutMs: number;
  /**
   * Send budget per connection, bytes, set as the socket's TCP_NOTSENT_LOWAT: the thread blocks while about this
   * much is queued and not yet sent (a small SO_SNDBUF was measured to cap bytes in flight too: an 8 MiB reply took
   * 4 s on loopback). A write that then cannot make progress for the send timeout — half of idleTimeoutMs within
   * 100 ms..2 s, or 2 s when idleTimeoutMs is 0 — ends the connection as `backpressure` and counts the reply in
   * `sendDropped`: with a 1008 `backpressure` close frame when the stall is between frames, by ending the TCP
   * connection when it is mid-frame (no close frame could be parsed there). 0 = kernel default.
   */
  maxBackpressure: number;
  /**
   * Time a client has to send a complete upgrade request, from when a thread takes the socket (in a pool, time spent
   * queued is not counted; it shows in the handshake histogram, which runs from accept()). Past it the TCP connection
   * is closed without an answer and counted as `handshake_timeout`. 0 = never.
   */
  handshakeTimeoutMs: number;
  /**
   * Sockets one source address may hold at once, counted from accept() to close. The accept thread answers one more
   * with HTTP 429 at once, without reading its request or spending a thread on it (`rejected.conn_limit`). 0 = no
   * limit, the default.
   */
  maxConnsPerIp?: number;
  /**
   * false (--no-defenses): a reply write blocks for as long as the client does not read (no send timeout, so no
   * `backpressure` close). The other limits are off when their own option is 0. Default true.
   */
  defenses?: boolean;
  /** Upper bounds, seconds, increasing, of the handshake and command-duration histograms. */
  histogramBounds: number[];
}

export type ThreadsCloseReason =
  'normal' | 'going_away' | 'protocol_error' | 'too_big' | 'idle_timeout' | 'backpressure' | 'handshake_timeout' | 'error' | 'rejected';
export type ThreadsRejectReason = 'bad_request' | 'bad_version' | 'method' | 'headers_too_large' | 'conn_limit' | 'queue_full';
export type ThreadsCommand = 'echo' | 'wait' | 'block' | 'cpu' | 'fill' | 'binary' | 'invalid';

/**
 * Histogram snapshot. `buckets` is cumulative like Prometheus `le` buckets: `buckets[i]` counts observations
 * `<= histogramBounds[i]`, and one extra last entry is the `+Inf` bucket, always equal to `count`. `sum` is seconds.
 */
export interface ThreadsHistogram { buckets: number[]; sum: number; count: number }

/**
 * Counters read at call time. Every TCP connection the server accepted ends up exactly once in `closed`:
 * - `normal`: the client sent a close frame (its status code was echoed; 1000 if it sent none);
 * - `going_away`: close() (1001 `server shutting down`; also sockets still queued or mid-handshake, by TCP close);
 * - `protocol_error`: 1002 (unmasked frame, RSV bits, bad opcode, bad control frame, bad continuation, 64-bit length
 *   with its top bit set, bad close code), 1007 (invalid UTF-8 in a text message or close reason);
 * - `rejected`: the upgrade was refused with an HTTP error (400, 405, 426, 429, 431, 503), counted by cause in
 *   {@link ThreadsStats.rejected};
 * - `too_big`: 1009; `idle_timeout`: 1001 `idle timeout`; `backpressure`: see {@link ThreadsStartOptions.maxBackpressure};
 * - `handshake_timeout`: no complete upgrade request in time;
 * - `error`: the TCP connection ended without a close frame (1006: reset, EOF, failed write), before or after the
 *   handshake; a connection refused because a thread could not be created (EAGAIN).
 */
export interface ThreadsStats {
  /** Handshake completed and not yet closed. */
  open: number;
  /** Handshakes completed since start. */
  accepted: number;
  closed: Record<ThreadsCloseReason, number>;
  /** Upgrades refused with an HTTP answer, by cause; each is also in `closed.rejected`. */
  rejected: Record<ThreadsRejectReason, number>;
  /**
   * Connection threads by state (their sum is the live connection or worker threads): `working` runs a command or
   * writes its reply, `reading` holds a connection (handshake included) and waits for bytes, `free` is a pool worker
   * without a connection.
   */
  threads: { working: number; reading: number; free: number };
  /** Pool: accepted sockets waiting for a worker (their handshake has not started). */
  queued: number;
  /** Data messages (text and binary) and their payload bytes; replies count as sent once the kernel took them. */
  messagesReceived: number;
  messagesSent: number;
  bytesReceived: number;
  bytesSent: number;
  /** Bytes of replies being written that the kernel has not accepted yet, summed over connections. */
  bufferedBytes: number;
  /** Replies not sent because their connection stalled past the send budget (see maxBackpressure). */
  sendDropped: number;
  /** Time from accept() to the 101 response being handed to the kernel. */
  handshake: ThreadsHistogram;
  /** Time from a request being parsed to its reply being accepted by the kernel; `invalid` = `err` replies. */
  commands: Record<ThreadsCommand, ThreadsHistogram>;
}

export interface ThreadsServer {
  /** The port actually bound. */
  readonly port: number;
  stats(): ThreadsStats;
  /**
   * Sends every open connection 1001 `server shutting down`, stops accepting, wakes threads blocked in reads and in
   * `wait`/`block`, and resolves once every thread has been joined. Idempotent. Until then the server keeps the
   * process alive, as a listening net.Server does.
   */
  close(): Promise<void>;
}

interface NativeServer { readonly port: number; stats(): ThreadsStats; close(): Promise<void> }
interface NativeAddon {
  startThreadsServer(o: Required<ThreadsStartOptions>): NativeServer;
  addonVersion(): string;
}

const ADDON_FILE = join('build', 'Release', 'wslab_threads.node');
let addon: NativeAddon | undefined;

/** The package root: the nearest directory up from this file holding binding.gyp (works from server/ and dist/). */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'binding.gyp')) && existsSync(join(dir, 'package.json'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error('native addon not built: cannot find the wslab package root (binding.gyp)');
    dir = up;
  }
}

function load(): NativeAddon {
  if (addon) return addon;
  const override = process.env.WSLAB_THREADS_ADDON;
  const file = override ? resolve(override) : join(packageRoot(), ADDON_FILE);
  if (!existsSync(file)) {
    throw new Error(override
      ? `native addon not found: WSLAB_THREADS_ADDON=${override}`
      : `native addon not built: ${file} is missing; run npm ci / npm run build:native`);
  }
  addon = createRequire(import.meta.url)(file) as NativeAddon;
  return addon;
}

/** Binds and starts accepting; throws an Error with `code` (EADDRINUSE, ...) on failure, TypeError on bad options. */
export function startThreadsServer(o: ThreadsStartOptions): ThreadsServer {
  const native = load().startThreadsServer({ maxConnsPerIp: 0, defenses: true, taskThreads: false, ...o });
  let closing: Promise<void> | undefined;
  return {
    port: native.port,
    stats: () => native.stats(),
    close: () => (closing ??= native.close()),
  };
}

/** e.g. `wslab_threads 0.1.0`; an AddressSanitizer build adds ` (asan)`. */
export function addonVersion(): string {
  return load().addonVersion();
}
