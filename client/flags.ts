import { UsageError } from '../core/errors.js';
import { option, type OptionDef, type OptionDefs } from '../core/flags.js';
import { parseDuration, parseInteger, parseSize } from '../core/units.js';
import { parseExpect, parseMatch } from './match.js';
import { RECONNECT_MODES, type ReconnectMode } from './reconnect.js';
import { ATTACK_PROFILES, PROFILES, SOCKETS_PER_WORKER, SWARM_DEFAULTS as D, type ProfileName, type ReplyExpect, type ReplyMatch } from './options.js';

/**
 * The load-shaping flags of `wslab swarm`, each defined once: `--help`, the check of its own value, and the argv
 * the lab and `wslab profile` write for a swarm they start ({@link toArgv} in core/flags.ts). How flags combine
 * (`--mix` with `--profile`, a flag for a profile not in the run) is checked by cli/swarm.ts once they are read.
 * The run's plumbing (`--url`, `--summary`, `--threshold`, `--metrics-port`, `--shard`) is declared there.
 */
export interface SwarmFlags {
  connections: number;
  rate: number;
  maxPending: number;
  holdMs: number;
  profile: ProfileName;
  /** `<profile>:<connections>[@<delay>],…`, read by cli/swarm.ts parseMix. */
  mix: string;
  intervalMs: number;
  match: ReplyMatch;
  /** Template sources (client/template.ts), compiled by cli/swarm.ts with --vars; '' = none. */
  send: string;
  subscribe: string;
  readerSend: string;
  /** A CSV file for {{var:NAME}}; '' = none. */
  vars: string;
  /** `json:PATH==VALUE` or `regex:RE` (client/match.ts); '' = none. */
  expect: ReplyExpect | '';
  stallAfterMs: number;
  /** `<verb> <n>`, read by cli/swarm.ts parseCommand (it knows the protocol's limits). */
  command: string;
  dribbleIntervalMs: number;
  dribbleBytes: number;
  readRate: number;
  declaredBytes: number;
  fragmentBytes: number;
  inflatedBytes: number;
  deflate: boolean;
  reconnect: ReconnectMode;
  reconnectDelayMs: number;
  reconnectMaxMs: number;
  workers: number;
  /** `127.0.0.2-127.0.0.9` or a comma list, read by cli/swarm.ts parseSourceIps. */
  sourceIps: string;
  handshakeTimeoutMs: number;
  /** 0 = none. */
  serverPid: number;
  /** '' = none. */
  serverMetrics: string;
}

const duration = (flag: string, dflt: string, describe: string): OptionDef<number> => option({
  flag, type: 'string', default: parseDuration(flag, dflt), defaultDescription: `"${dflt}"`, describe,
  parse: (raw) => parseDuration(flag, raw), format: (ms) => (ms ? `${ms}ms` : '0'),
});
const whole = (flag: string, dflt: number, min: number, max: number, describe: string, defaultDescription?: string): OptionDef<number> =>
  option({ flag, type: 'string', default: dflt, defaultDescription, describe, parse: (raw) => parseInteger(flag, raw, min, max) });
const text = (flag: string, describe: string, check: (v: string) => string = (v) => v, dflt = ''): OptionDef<string> =>
  option({ flag, type: 'string', default: dflt, defaultDescription: dflt ? `"${dflt}"` : 'none', describe, parse: (raw) => check(String(raw)) });
const oneOf = <T extends string>(flag: string, values: readonly T[], dflt: T, describe: string): OptionDef<T> => option({
  flag, type: 'string', default: dflt, defaultDescription: `"${dflt}"`, describe,
  parse: (raw) => {
    if (!(values as readonly string[]).includes(String(raw))) throw new UsageError(`--${flag}: "${String(raw)}" is not one of ${values.join(', ')}`);
    return String(raw) as T;
  },
});

export const SWARM_FLAGS: OptionDefs<SwarmFlags> = Object.freeze({
  connections: whole('connections', D.connections, 1, 10_000_000, 'connections to open and hold'),
  rate: whole('rate', D.rate, 0, 10_000_000, 'new connections per second, whole swarm; 0 = only --max-pending limits'),
  maxPending: whole('max-pending', D.maxPending, 1, 1_000_000, 'connection attempts (TCP + upgrade) in flight, whole swarm'),
  holdMs: duration('hold', D.hold, 'how long to hold once every attempt settled, e.g. 30s, 2m'),
  profile: oneOf('profile', PROFILES, D.profile, 'healthy: idle (answer pings) | ping (ping every --interval) | chatty (--command every --interval); ' +
    `attacks (loopback only): ${ATTACK_PROFILES.join(' | ')}`),
  mix: text('mix', "healthy and hostile groups in one run, <profile>:<connections>[@<start delay>], e.g. 'slowloris:2000,chatty:200@5s'"),
  intervalMs: duration('interval', D.interval, 'ping/chatty/slow-reader: per-connection send interval'),
  match: option({
    flag: 'match', type: 'string', default: D.match, defaultDescription: `"${D.match}"`, parse: (raw) => parseMatch(String(raw)),
    describe: 'chatty: which server message answers a request: wslab = `<id> ok …` (our protocol); echo = the request itself; next = the next message (FIFO); ' +
      'json:PATH = its JSON field PATH holds the request\'s {{id}}; regex:RE = RE\'s first group does',
  }),
  send: text('send', 'chatty (and slow-frame): your own message instead of --command: text with {{conn}} {{seq}} {{id}} {{now}} {{rand:N}} {{var:NAME}}, @file, ' +
    `or base64:…/hex:… for binary, e.g. '{"id":{{id}},"type":"ping"}'`),
  subscribe: text('subscribe', 'sent once after the upgrade (idle, ping, chatty); the server\'s pushes are then measured: rate per connection, gaps, stalls (a template, like --send)'),
  readerSend: text('reader-send', 'slow-reader: your request for a large reply instead of our `fill` (a template, like --send)'),
  vars: text('vars', 'a CSV file (header row of names, one row per connection, used round-robin) for {{var:NAME}} in --send, --subscribe, --reader-send and --header'),
  expect: option<ReplyExpect | ''>({
    flag: 'expect', type: 'string', default: '', defaultDescription: 'none', parse: (raw) => (raw === '' ? '' : parseExpect(String(raw))),
    describe: "chatty with --send: a matched reply is good only if 'json:PATH==VALUE' holds or 'regex:RE' matches (else an error reply)",
  }),
  stallAfterMs: duration('stall-after', D.stallAfter, '--subscribe: a connection silent this long counts as stalled'),
  command: text('command', `chatty (or slow-reader without chatty): protocol command, e.g. 'echo 32' (32-byte payload), 'wait 50', 'cpu 1000', 'block 10', 'fill 100' (default chatty '${D.command}', slow-reader '${D.slowReaderCommand}')`, (v) => v, D.command),
  dribbleIntervalMs: duration('dribble-interval', D.dribbleInterval, 'slowloris, slow-frame: time between dribbled writes'),
  dribbleBytes: whole('dribble-bytes', D.dribbleBytes, 1, 4096, 'slowloris: bytes of the upgrade request per dribble'),
  readRate: option({ flag: 'read-rate', type: 'string', default: D.readRate, describe: 'slow-reader: bytes read per second per connection, e.g. 1KiB; 0 = never read', parse: (raw) => parseSize('read-rate', raw) }),
  declaredBytes: option({ flag: 'declared-size', type: 'string', default: D.declaredBytes, defaultDescription: '"1GiB"', describe: 'oversize: payload length the frame header declares, e.g. 64MiB', parse: (raw) => parseSize('declared-size', raw) }),
  fragmentBytes: whole('fragment-bytes', D.fragmentBytes, 0, 125, 'fragment-pin: payload bytes of each fragment of the message that never ends'),
  inflatedBytes: option({
    flag: 'inflated-size', type: 'string', default: D.inflatedBytes, defaultDescription: '"16MiB"', describe: 'deflate-bomb: what the one compressed message inflates to (zeros; ≈1/1000 of it on the wire), up to 256MiB',
    parse: (raw) => {
      const n = parseSize('inflated-size', raw);
      if (n < 1 || n > 256 * 1024 ** 2) throw new UsageError('--inflated-size: must be from 1 byte to 256MiB');
      return n;
    },
  }),
  deflate: option({ flag: 'deflate', type: 'boolean', default: false, describe: 'offer permessage-deflate (no context takeover either way) and inflate what the server compresses', parse: (raw) => raw === true }),
  reconnect: oneOf('reconnect', RECONNECT_MODES, D.reconnect as ReconnectMode, 'idle: a connection the server drops comes back: fixed = every --reconnect-delay, no jitter (the herd retries in lockstep); ' +
    'backoff = exponential backoff with full jitter, uniform(0, min(--reconnect-max, --reconnect-delay × 2^retry))'),
  reconnectDelayMs: duration('reconnect-delay', D.reconnectDelay, '--reconnect fixed: the wait before every retry; backoff: the first retry\'s ceiling'),
  reconnectMaxMs: duration('reconnect-max', D.reconnectMax, '--reconnect backoff: the ceiling of one wait'),
  workers: whole('workers', 1, 1, 256, 'worker processes', `ceil(connections / (open-files limit − 5 %)), ${SOCKETS_PER_WORKER} per worker under 20,000`),
  sourceIps: text('source-ips', 'local addresses to bind before connecting, rotated: 127.0.0.2-127.0.0.60 or a comma list (default: kernel choice)'),
  handshakeTimeoutMs: duration('handshake-timeout', D.handshakeTimeout, 'time a connection has for TCP connect + upgrade'),
  serverMetrics: text('server-metrics', 'the server\'s /metrics (a wslab server, with or without serve --via): who ended the connections the swarm did not close, the server or its proxy, goes into the summary (`attribution`)'),
  serverPid: whole('server-pid', 0, 0, 4_194_304, 'a local server\'s process: its tree (RSS, CPU, threads, fds) and its connections go into the summary (`server`); any server', 'none'),
});
