import type { Registry } from 'prom-client';
import type { OptionDefs } from '../core/flags.js';
import type { OwnOptions, ServeOptions } from './options.js';

/**
 * How a design runs handlers: `loop` (one event loop; a blocking call stalls every client), `threads` (a thread per
 * connection or pool worker), `processes` (several loops). Verdicts and scenarios predict behaviour from it.
 */
export type Model = 'loop' | 'threads' | 'processes';

/**
 * Which reading of RFC 6455 a design's frame layer gives (the fuzzer's model of it, docs/protocol.md's
 * deviations): `ws` and `threads` follow the RFC; `uws` ends the TCP connection without a close frame on oversize
 * or invalid UTF-8 and ignores unmasked frames.
 */
export type Dialect = 'ws' | 'uws' | 'threads';

/**
 * What a design (with given options) is, for everyone who must predict its behaviour: the lab's verdicts and
 * scenarios, the protocol suite, the fuzzer. Callers ask traits, never compare design names.
 */
export interface Traits {
  readonly model: Model;
  /**
   * Set where the library fixes the handshake timeout and --handshake-timeout cannot change it (uWebSockets.js:
   * its 10 s HTTP idle timeout); `by` names who fixes it, for the one-line error.
   */
  readonly fixedHandshakeTimeout: { readonly ms: number; readonly by: string; readonly why: string } | null;
  readonly dialect: Dialect;
  /**
   * Fixed workers serving connections: a pool's size, a cluster's process count, 1 for a loop; null when the design
   * gives every connection its own worker (a thread per connection). A pool serves `workers` connections at once.
   */
  readonly workers: number | null;
  /**
   * Whether it answers and counts what is not an HTTP upgrade at all (garbage bytes): uWS drops them unseen by JS.
   */
  readonly countsNonHttp: boolean;
  /**
   * Whether `--deflate` makes it negotiate permessage-deflate (RFC 7692) with a client that offers it. The thread
   * design's frame layer has no inflater: it refuses the flag.
   */
  readonly deflate: boolean;
  /** Set where every command runs on a thread of its own, created for it (threads --thread-per-task). */
  readonly threadPerTask?: true;
}

/**
 * A server design is a plug-in: one folder under server/designs/ holding this object, its own flags and their
 * checks, and its loader/addon/worker files. `start(options)` binds the WebSocket listener and resolves once it
 * accepts connections. Every design speaks docs/protocol.md and reports through the metric contract in metrics/.
 */
export interface Design<O extends OwnOptions = OwnOptions> {
  readonly name: string;
  /** One line for `--help` and the report. */
  readonly summary: string;
  /** The model of every variant of the design (traits() may say more per variant). */
  readonly model: Model;
  /** The design's own flags (`--pool`, `--workers`), defined once: parsed, checked and written back as argv with them. */
  readonly flags: OptionDefs<O>;
  /** Checks a combination of its own options and the common ones; throws a UsageError naming the flags. */
  validate?(o: ServeOptions & { readonly own: O }): void;
  traits(own: O): Traits;
  /**
   * `true` for the one design that stands for its model where a scenario runs one design per model below
   * `--scale full` (uws for the loops: a timer or an epoll wake-up costs the same in ws).
   */
  readonly representative?: boolean;
  /**
   * As a cluster worker, it binds its own listening socket with SO_REUSEPORT (uSockets' default on Linux) rather
   * than sharing the primary's through node:cluster.
   */
  readonly reusePort?: boolean;
  /** The variant with `n` fixed workers (a pool, a process count), where the design has that knob. */
  withWorkers?(n: number): Partial<O>;
  /** Own options that run every command on a new thread created for it (a thread per task), where the design can. */
  readonly threadPerTask?: Partial<O>;
  /** The variants the lab compares by default (own options); one with the defaults when absent. */
  readonly labVariants?: readonly Partial<O>[];
  /** The variants the protocol suite runs (own options); one with the defaults when absent. */
  readonly testVariants?: readonly Partial<O>[];
  /** The own options that label a variant when they differ from the default (all of them when absent). */
  readonly labelFlags?: readonly (keyof O)[];
  start(options: ServeOptions & { readonly own: O }): Promise<DesignHandle>;
}

export interface DesignHandle {
  /** The port actually bound (differs from options.port when that was 0). */
  readonly port: number;
  /** Library and version, for the ready line and the report (e.g. `ws 8.18.3`). */
  readonly version: string;
  /** Renders this design's metrics in the Prometheus text format (the cluster primary aggregates its workers). */
  metrics(): Promise<string>;
  readonly contentType: string;
  /** The registry behind metrics(), when it is local to this process (a cluster worker hands it to the primary). */
  readonly registry?: Registry;
  /** Closes every connection with 1001 `server shutting down`, stops listening, releases threads/workers. */
  close(): Promise<void>;
}

/** A design's registry plus the prom-client rendering, for the designs that render locally. */
export function localMetrics(registry: Registry): Pick<DesignHandle, 'metrics' | 'contentType' | 'registry'> {
  return { metrics: () => registry.metrics(), contentType: registry.contentType, registry };
}

/** Declares a design with its own options typed, and erases them for the registry. */
export const defineDesign = <O extends OwnOptions>(d: Design<O>): Design => d as unknown as Design;

/** A design's own options with every default filled in. */
export function ownDefaults(d: Design): OwnOptions {
  return Object.freeze(Object.fromEntries(Object.entries(d.flags).map(([k, def]) => [k, def.default])));
}
