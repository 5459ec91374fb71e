import { isIP } from 'node:net';
import { UsageError } from '../core/errors.js';
import { parseDuration, parseInteger, parseSize } from '../core/units.js';
import { option, type OptionDef, type OptionDefs } from '../core/flags.js';
import { PROXIES, VIA_PROFILES, type ProxyKind, type ViaProfile } from './via/profiles.js';

/**
 * `wslab serve` options every design takes: defaults in one frozen object, checked once at the CLI edge
 * (cli/serve.ts) and passed inward as a frozen {@link ServeOptions}. Inner modules never read argv or env. A
 * design's own knobs (threads' --pool, cluster's --workers) are declared in its folder (server/designs/<name>/) and
 * ride in {@link ServeOptions.own}.
 */
export interface CommonServeOptions {
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
  /** Time a client has to complete the HTTP upgrade, ms. 0 = never (--no-defenses; not where the design fixes it). Default 10 s. */
  readonly handshakeTimeoutMs: number;
  /**
   * Connections one source address may hold at once; the next is refused with HTTP 429 (`conn_limit`). 0 = no
   * limit, the default: the swarm opens up to ~19.5k connections from 127.0.0.1 unless given --source-ips, and the
   * lab's scenarios rely on that. Cluster: per worker process (docs/defenses.md).
   */
  readonly maxConnsPerIp: number;
  /**
   * `--via nginx|haproxy`: the Debian proxy in front of the design (server/via/proxy.ts): clients connect to it, the
   * design listens on a loopback port behind it, and the per-address limit is the proxy's. Default `none`.
   */
  readonly via: 'none' | ProxyKind;
  /** The proxy's profile: `default` (the distribution's) or `hardened` (docs/defenses.md). Default `default`. */
  readonly viaProfile: ViaProfile;
  /**
   * `--deflate`: negotiate permessage-deflate (RFC 7692) with clients that offer it, where the design can
   * (Traits.deflate). A compressed message is inflated under --max-payload: past it, the connection ends as too big
   * (1009; uWS ends the TCP connection). No compression context is carried between messages either way
   * (server_ and client_no_context_takeover); ws keeps a connection's zlib streams once it has used them (README,
   * "permessage-deflate"), uWS shares one compressor and one decompressor per loop. Default false.
   */
  readonly deflate: boolean;
}

/** Options of a design's own flags, as its folder declares and checks them. */
export type OwnOptions = Readonly<Record<string, string | number | boolean>>;

export interface ServeOptions extends CommonServeOptions {
  /** Design name from the registry (server/registry.ts). */
  readonly design: string;
  /** The design's own options, parsed and checked by its own definitions (`Design.flags`). */
  readonly own: OwnOptions;
}

const host = (flag: string, dflt: string): OptionDef<string> => option({
  flag, type: 'string', default: dflt, describe: flag === 'host' ? 'address to listen on' : 'address of the /metrics endpoint',
  parse: (raw) => {
    const h = String(raw);
    if (!isIP(h) && h !== 'localhost') throw new UsageError(`--${flag}: "${h}" is not an IP address`);
    return h;
  },
});
const size = (flag: string, dflt: number, text: string, describe: string): OptionDef<number> =>
  option({ flag, type: 'string', default: dflt, defaultDescription: `"${text}"`, describe, parse: (raw) => parseSize(flag, raw) });
const duration = (flag: string, dflt: number, text: string, describe: string): OptionDef<number> =>
  option({ flag, type: 'string', default: dflt, defaultDescription: `"${text}"`, describe, parse: (raw) => parseDuration(flag, raw), format: (ms) => (ms ? `${ms}ms` : '0') });

/** Every common option, once: the CLI's flags, their checks, and the argv the lab builds. */
export const SERVE_OPTIONS: OptionDefs<CommonServeOptions> = Object.freeze({
  host: host('host', '127.0.0.1'),
  port: option({ flag: 'port', type: 'number', default: 8080, describe: 'WebSocket port (0 = any free port)', parse: (raw) => parseInteger('port', raw, 0, 65535) }),
  metricsHost: host('metrics-host', '127.0.0.1'),
  metricsPort: option({ flag: 'metrics-port', type: 'number', default: 9464, describe: '/metrics port (0 = any free port)', parse: (raw) => parseInteger('metrics-port', raw, 0, 65535) }),
  defenses: option({ flag: 'defenses', type: 'boolean', default: true, describe: 'limits on; --no-defenses runs the design naked (no handshake timeout, max payload, idle timeout, send cap, per-IP limit)', parse: (raw) => raw !== false }),
  maxPayload: size('max-payload', 1024 * 1024, '1MiB', 'largest client message; larger closes with 1009'),
  idleTimeoutMs: duration('idle-timeout', 120_000, '120s', 'close after this long without a frame from the client (ping sent at half); 0 = never'),
  maxBackpressure: size('max-backpressure', 1024 * 1024, '1MiB', 'unsent bytes per connection before it is dropped as a slow reader'),
  handshakeTimeoutMs: duration('handshake-timeout', 10_000, '10s', 'time a client has to complete the HTTP upgrade'),
  via: option({
    flag: 'via', type: 'string', default: 'none' as CommonServeOptions['via'], describe: `a proxy in front of the design: ${PROXIES.join(' | ')} (the Debian binary, a child of this server; none = clients connect to the design)`,
    parse: (raw) => {
      const v = String(raw);
      if (v !== 'none' && !(PROXIES as readonly string[]).includes(v)) throw new UsageError(`--via: "${v}" is not one of none, ${PROXIES.join(', ')}`);
      return v as CommonServeOptions['via'];
    },
  }),
  viaProfile: option({
    flag: 'via-profile', type: 'string', default: 'default' as ViaProfile, describe: `--via: the proxy's settings: ${VIA_PROFILES.join(' | ')} (the distribution's timeouts, or short header and send deadlines; docs/defenses.md)`,
    parse: (raw) => {
      const v = String(raw);
      if (!(VIA_PROFILES as readonly string[]).includes(v)) throw new UsageError(`--via-profile: "${v}" is not one of ${VIA_PROFILES.join(', ')}`);
      return v as ViaProfile;
    },
  }),
  deflate: option({ flag: 'deflate', type: 'boolean', default: false, describe: 'negotiate permessage-deflate with clients that offer it (ws, uws, cluster; threads has no inflater)', parse: (raw) => raw === true }),
  maxConnsPerIp: option({ flag: 'max-conns-per-ip', type: 'string', default: 0, defaultDescription: '0 (no limit: the swarm opens ~19.5k from 127.0.0.1)', describe: 'connections one source address may hold; the next gets HTTP 429 (cluster: per worker)', parse: (raw) => parseInteger('max-conns-per-ip', raw, 0, 1_000_000) }),
});

/** The defaults of every common option, from their definitions. */
export const SERVE_DEFAULTS: CommonServeOptions = Object.freeze(Object.fromEntries(
  Object.entries<OptionDef<unknown>>(SERVE_OPTIONS).map(([k, d]) => [k, d.default])) as unknown as CommonServeOptions);

/** The design `wslab serve` runs when none is given. */
export const DEFAULT_DESIGN = 'ws';
