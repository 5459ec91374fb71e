/**
 * `wslab serve` options: defaults in one frozen object, checked once at the CLI edge (cli/serve.ts) and passed
 * inward as a frozen {@link ServeOptions}. Inner modules never read argv or env.
 */
export interface ServeOptions {
  /** Design name from the registry (server/registry.ts). */
  readonly design: string;
  /** Address the WebSocket listener binds. Default `127.0.0.1`. */
  readonly host: string;
  /** Port of the WebSocket listener; 0 picks a free one. Default 8080. */
  readonly port: number;
  /** Address of the `/metrics` listener. Default `127.0.0.1`. */
  readonly metricsHost: string;
  /** Port of the `/metrics` listener; 0 picks a free one. Default 9464. */
  readonly metricsPort: number;
  /**
   * false under `--no-defenses`: the design runs naked for experiments, and every limit below that is a defence
   * (maxPayload, idleTimeoutMs, maxBackpressure, handshakeTimeoutMs, maxConnsPerIp) is 0 = off. Default true.
   */
  readonly defenses: boolean;
  /** Largest message a client may send, bytes; larger closes with 1009. 0 = no limit (--no-defenses). Default 1 MiB. */
  readonly maxPayload: number;
  /** Close a connection after this many ms without a frame from the client (a ping is sent at half); 0 = never. Default 120 s. */
  readonly idleTimeoutMs: number;
  /**
   * Unsent bytes a connection may buffer before it is closed as a slow reader (1008 `backpressure`). 0 = no cap
   * (--no-defenses: ws and uws then buffer without bound, a threads connection blocks in send). Default 1 MiB.
   */
  readonly maxBackpressure: number;
  /** Time a client has to complete the HTTP upgrade, ms. 0 = never (--no-defenses; not on uws). Default 10 s. */
  readonly handshakeTimeoutMs: number;
  /**
   * Connections one source address may hold at once; the next is refused with HTTP 429 (`conn_limit`). 0 = no
   * limit, the default: the swarm opens up to ~19.5k connections from 127.0.0.1 unless given --source-ips, and the
   * lab's scenarios rely on that. Cluster: per worker process (docs/defenses.md).
   */
  readonly maxConnsPerIp: number;
  /** threads: 0 = one thread per connection; N = fixed pool of N workers with an accept queue. Default 0. */
  readonly pool: number;
  /** threads: stack size of each connection thread, bytes. Default 256 KiB. */
  readonly threadStack: number;
  /** threads with a pool: connections that may wait in the accept queue before new ones are refused. Default 4096. */
  readonly queueLimit: number;
  /** cluster: worker processes. Default: the number of CPUs. */
  readonly workers: number;
  /** cluster: the single-loop design each worker runs. Default `uws`. */
  readonly inner: string;
}

export const SERVE_DEFAULTS: ServeOptions = Object.freeze({
  design: 'ws',
  host: '127.0.0.1',
  port: 8080,
  metricsHost: '127.0.0.1',
  metricsPort: 9464,
  defenses: true,
  maxPayload: 1024 * 1024,
  idleTimeoutMs: 120_000,
  maxBackpressure: 1024 * 1024,
  handshakeTimeoutMs: 10_000,
  maxConnsPerIp: 0,
  pool: 0,
  threadStack: 256 * 1024,
  queueLimit: 4096,
  workers: 0,
  inner: 'uws',
});
