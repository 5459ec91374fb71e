/**
 * `wslab swarm` options: defaults in one frozen object, checked once at the CLI edge (cli/swarm.ts) and passed inward
 * as a frozen {@link SwarmOptions}. Inner modules (coordinator, workers) never read argv or env.
 */
import type { ConnectionOptions } from 'node:tls';
import type { ReconnectOptions } from './reconnect.js';
import type { Shard } from './shard.js';
import type { Template, VarTable } from './template.js';
import type { Threshold } from './thresholds.js';

/** Healthy profiles: what a well-behaved client does with a held connection. */
export const HEALTHY_PROFILES = Object.freeze(['idle', 'ping', 'chatty'] as const);
/** Hostile profiles (client/attacks.ts): loopback targets only unless --allow-remote-target. */
export const ATTACK_PROFILES = Object.freeze([
  'slowloris', 'slow-reader', 'slow-frame', 'no-pong', 'ping-flood', 'oversize', 'garbage', 'conn-flood',
  'fragment-pin', 'deflate-bomb',
] as const);
export type HealthyProfile = (typeof HEALTHY_PROFILES)[number];
export type AttackProfile = (typeof ATTACK_PROFILES)[number];
export type ProfileName = HealthyProfile | AttackProfile;
export const PROFILES: readonly ProfileName[] = Object.freeze([...HEALTHY_PROFILES, ...ATTACK_PROFILES]);
export const isAttack = (p: ProfileName): p is AttackProfile => (ATTACK_PROFILES as readonly string[]).includes(p);

/**
 * One group of connections with one profile: a plain `--profile p --connections n` run is one group; `--mix
 * 'slowloris:2000,chatty:200@5s'` is two, each with its own workers. A group starts `startDelayMs` after the run
 * (its ramp begins then), so healthy clients can arrive while an attack already holds the server.
 */
export interface SwarmGroup {
  readonly profile: ProfileName;
  readonly connections: number;
  /** Delay from the run's start to the group's first attempt, ms. Default 0. */
  readonly startDelayMs: number;
}

/** What the attack profiles do; each field applies to the profiles named. */
export interface AttackOptions {
  /** slowloris, slow-frame: time between two dribbled writes, ms. Default 1 s. */
  readonly dribbleIntervalMs: number;
  /** slowloris: bytes of the upgrade request per dribble (slow-frame always sends one payload byte). Default 4. */
  readonly dribbleBytes: number;
  /** slow-reader: bytes per second read from each socket; 0 = never read (the socket is paused). Default 0. */
  readonly readRate: number;
  /** oversize: the payload length the frame header declares, bytes. Default 1 GiB. */
  readonly declaredBytes: number;
  /** fragment-pin: payload bytes of each fragment (0–125). Default 1. */
  readonly fragmentBytes: number;
  /** deflate-bomb: bytes the compressed message inflates to. Default 16 MiB. */
  readonly inflatedBytes: number;
}

/** One `--url`, resolved to an IP address so that a worker connects without DNS. */
export interface SwarmTarget {
  /** The URL as given (for reports). */
  readonly url: string;
  readonly ip: string;
  readonly family: 4 | 6;
  readonly port: number;
  /** Path and query of the upgrade request. */
  readonly path: string;
  /** `Host:` header value. */
  readonly host: string;
  /** wss://: TLS over node:tls before the upgrade. */
  readonly tls: boolean;
  /** The URL's host name when it is not an IP address (the default TLS servername, SNI). */
  readonly hostname: string;
}

/** A `--command` of docs/protocol.md, checked at the edge: `echo 32` = echo a 32-byte payload. */
export interface SwarmCommand {
  readonly verb: 'echo' | 'wait' | 'cpu' | 'block' | 'fill';
  readonly arg: number;
  /** What follows the request id on the wire, e.g. ` echo xxxx…` or ` wait 50`. */
  readonly wire: string;
}

/**
 * `--match`: which server message answers which request (client/match.ts). `wslab` = `<id> ok …` of
 * docs/protocol.md; `echo` = the request itself; `next` = the next message on the connection (FIFO); `json:PATH` =
 * the message's JSON field at PATH carries the request's `{{id}}`; `regex:RE` = RE's first group does.
 */
export type ReplyMatch = 'wslab' | 'echo' | 'next' | `json:${string}` | `regex:${string}`;
/** `--expect`: a matched reply is good only if its JSON field equals VALUE (`json:PATH==VALUE`) or it matches RE. */
export type ReplyExpect = `json:${string}` | `regex:${string}`;

/** The user's protocol, for servers that do not speak ours (`--send`, `--subscribe`, …; client/template.ts). */
export interface SwarmSpeech {
  /** chatty: the message sent every interval instead of `--command`. Default none (our protocol). */
  readonly send: Template | undefined;
  /** idle, ping, chatty: sent once after the upgrade; what the server pushes then is measured. Default none. */
  readonly subscribe: Template | undefined;
  /** slow-reader: the request that makes a large reply, instead of `fill`. Default none. */
  readonly readerSend: Template | undefined;
  readonly match: ReplyMatch;
  readonly expect: ReplyExpect | undefined;
  /** `--subscribe`: a connection silent this long (between pushes, or at the end) counts as stalled, ms. Default 5 s. */
  readonly stallAfterMs: number;
  /** `--vars FILE.csv`: rows for `{{var:NAME}}`, row = connection index mod rows. */
  readonly vars: VarTable | undefined;
  /** The modulus of `{{id}}`: the whole run's connections (across shards). */
  readonly total: number;
  /** `{{conn}}` of this swarm's first connection: its shard's first global index (`--shard`), else 0. */
  readonly offset: number;
}

/** What the upgrade request carries besides the RFC 6455 headers, and how TLS is checked. */
export interface SwarmHandshake {
  /** `--header 'Name: value'` (values may hold placeholders), `--origin`, `--user-agent`, in that order. */
  readonly headers: readonly { readonly name: string; readonly value: Template }[];
  /** `--subprotocol a,b`: offered in Sec-WebSocket-Protocol; the server must choose one of them. */
  readonly subprotocols: readonly string[];
  /** wss://: PEM text of `--ca FILE`; undefined = the system's CAs. */
  readonly ca: string | undefined;
  /** `--insecure`: do not verify the server's certificate. Default false. */
  readonly insecure: boolean;
  /** `--servername`: the TLS server name (SNI, certificate check); default the URL's host name. */
  readonly servername: string | undefined;
  /**
   * `--deflate`: offer permessage-deflate (client/codec.ts DEFLATE_OFFER, no context takeover) and inflate what the
   * server compresses. Default false.
   */
  readonly deflate: boolean;
}

/** `--probe`: what one probe asks of a fresh connection (client/probe.ts). */
export const PROBE_MODES = Object.freeze(['ping', 'send'] as const);
export type ProbeMode = (typeof PROBE_MODES)[number];

/**
 * The availability probe of client/probe.ts, run by the coordinator (not the workers). It lives here, with the other
 * options, so that the CLI checks `--probe` without loading the `ws` client the prober uses.
 */
export interface ProbeOptions {
  /** `ping`: a WebSocket ping, answered by its pong; `send`: a text message, answered by the first data message back. */
  readonly mode: ProbeMode;
  /** `send`: the text sent. Default `probe`. */
  readonly payload: string;
  /** A fresh connection every interval, ms. Default 500. */
  readonly intervalMs: number;
  /** Each probe's deadline for connect + upgrade + its round trip, ms; later = failing. Default 2000. */
  readonly timeoutMs: number;
  /**
   * The handshake: extra request headers, subprotocols offered, and the TLS options of the wss:// targets (each
   * target says whether it is one; `servername` unset = the target's host name). Default none.
   */
  readonly connect: {
    readonly headers: Readonly<Record<string, string>>;
    readonly protocols: readonly string[];
    readonly tls?: ConnectionOptions;
  };
}

export interface SwarmOptions {
  /** Servers, round-robin by connection index. Required. */
  readonly targets: readonly SwarmTarget[];
  /** Connections to open and hold, every group together. Default 1000. */
  readonly connections: number;
  /** The groups of connections: one for `--profile`, one per entry of `--mix`. Default one `idle` group. */
  readonly groups: readonly SwarmGroup[];
  /** Attack profiles' parameters. */
  readonly attack: AttackOptions;
  /** New connections per second over the whole swarm (token bucket); 0 = as fast as `maxPending` allows. Default 20,000. */
  readonly rate: number;
  /**
   * Connection attempts in flight (TCP connect + upgrade) over the whole swarm. Default 300: measured here, 100 to
   * 1000 in flight open equally fast (≈17–18k/s against two uws servers); more only queues in the servers' backlogs
   * and inflates connect latency (p50 ≈3.5 ms at 100, ≈10 ms at 300, ≈34 ms at 1000).
   */
  readonly maxPending: number;
  /** How long to hold the connections once every attempt has settled, ms. Default 30 s. */
  readonly holdMs: number;
  /** ping: a ping per connection every interval; chatty and slow-reader: a command per connection every interval, ms. Default 1 s. */
  readonly intervalMs: number;
  /** chatty: the command sent. Default `echo 32`. */
  readonly command: SwarmCommand;
  /** The user's messages and how replies are matched (`--send`, `--match`, `--subscribe`, …). Default our protocol. */
  readonly speech: SwarmSpeech;
  /** Extra upgrade headers, subprotocols, TLS checks. */
  readonly handshake: SwarmHandshake;
  /** slow-reader: the command sent every interval, a large reply. Default `fill 1048576` (`--command` in a run without chatty). */
  readonly readerCommand: SwarmCommand;
  /** Worker processes. Default: ceil(connections / socketsPerWorker) per group. */
  readonly workers: number;
  /** The most sockets a worker may hold under this process's open-files limit ({@link socketsPerWorker}), and that limit. */
  readonly socketsPerWorker: number;
  readonly openFilesLimit: number;
  /** Local addresses connections bind to before connecting (rotated); empty = let the kernel choose. Default empty. */
  readonly sourceIps: readonly string[];
  /** Where the JSON summary goes (docs/swarm-summary.md); undefined = nowhere. */
  readonly summaryFile: string | undefined;
  /** Pass/fail expressions over the summary; one failing = exit 99. */
  readonly thresholds: readonly Threshold[];
  /** Port of the swarm's own /metrics; undefined = no endpoint, 0 = any free port. Default undefined. */
  readonly metricsPort: number | undefined;
  /** Address of the swarm's /metrics. Default `127.0.0.1`. */
  readonly metricsHost: string;
  /** `--server-pid`: a local server's process whose tree and connections the summary reports (`server`). Default none. */
  readonly serverPid: number | undefined;
  /** `--server-metrics`: a wslab server's /metrics, read before and after the hold for `attribution`. Default none. */
  readonly serverMetricsUrl: string | undefined;
  /** Time a connection has for TCP connect + HTTP upgrade, ms. Default 10 s. */
  readonly handshakeTimeoutMs: number;
  /** Time a close handshake may take before the socket is dropped, ms. Default 2 s. */
  readonly closeTimeoutMs: number;
  /**
   * `--shard i/N`: this swarm is one of N (client/shard.ts); `connections`, `sourceIps` and `targets` above are
   * already this shard's slice, `totalTarget` is the whole run's `--connections`. Undefined = not sharded (default).
   */
  readonly shard: (Shard & { readonly totalTarget: number }) | undefined;
  /** `--probe ping|send`: a fresh connection every 0.5 s asks one round trip (client/probe.ts). Default undefined (none). */
  readonly probe: ProbeOptions | undefined;
  /** `--reconnect fixed|backoff`: idle connections the server drops come back (client/reconnect.ts). Default undefined (off). */
  readonly reconnect: ReconnectOptions | undefined;
}

/** The most sockets one worker process is given under the machine this was built for (20,000 open files, ../shared/MACHINE.md). */
export const SOCKETS_PER_WORKER = 19_000;

/**
 * The most sockets one worker may hold under an open-files limit: the limit less what a worker's process needs
 * besides sockets (stdio, IPC, epoll, /proc reads), 5 % of it and 64 to 1,000 descriptors: 19,000 under 20,000,
 * 960 under `ulimit -n 1024`. Workers inherit the swarm's limit (RLIMIT_NOFILE).
 */
export const socketsPerWorker = (openFiles: number): number =>
  openFiles > 0 ? Math.max(1, openFiles - Math.max(64, Math.min(1000, Math.round(openFiles * 0.05)))) : SOCKETS_PER_WORKER;

export const SWARM_DEFAULTS = Object.freeze({
  connections: 1000,
  rate: 20_000,
  maxPending: 300,
  hold: '30s',
  profile: 'idle' as ProfileName,
  interval: '1s',
  command: 'echo 32',
  match: 'wslab' as ReplyMatch,
  stallAfter: '5s',
  slowReaderCommand: 'fill 1048576',
  dribbleInterval: '1s',
  dribbleBytes: 4,
  readRate: 0,
  declaredBytes: 1024 ** 3,
  fragmentBytes: 1,
  inflatedBytes: 16 * 1024 ** 2,
  metricsHost: '127.0.0.1',
  handshakeTimeout: '10s',
  closeTimeoutMs: 2000,
  probeIntervalMs: 500,
  probeTimeoutMs: 2000,
  probePayload: 'probe',
  reconnect: 'off',
  reconnectDelay: '1s',
  reconnectMax: '30s',
});
