import type { Registry } from 'prom-client';
import type { ServeOptions } from './options.js';

/**
 * A server design is a plug-in: `start(options)` binds the WebSocket listener and resolves once it accepts
 * connections. Every design speaks docs/protocol.md and reports through the metric contract in metrics/.
 */
export interface Design {
  readonly name: string;
  /** One line for `--help` and the report. */
  readonly summary: string;
  /**
   * How the design runs handlers: `loop` (one event loop; a blocking call stalls every client), `threads` (a thread
   * per connection or pool worker), `processes` (several loops). The lab and the protocol suite predict behaviour
   * from it, e.g. whether `block` delays other clients.
   */
  readonly model: 'loop' | 'threads' | 'processes';
  start(options: ServeOptions): Promise<DesignHandle>;
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
