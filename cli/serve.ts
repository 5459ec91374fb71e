import { availableParallelism } from 'node:os';
import { isIP } from 'node:net';
import type { Argv } from 'yargs';
import { SERVE_DEFAULTS, type ServeOptions } from '../server/options.js';
import { DESIGNS } from '../server/registry.js';
import { serve } from '../server/serve.js';
import { UsageError } from '../core/errors.js';
import { parseDuration, parseInteger, parseSize } from '../core/units.js';

const D = SERVE_DEFAULTS;
const KiB = 1024;

/** Flags shared by every command that starts a server (serve, lab, profile): same names, same meaning. */
export function serverFlags<T>(y: Argv<T>) {
  return y
    // The limits carry no yargs default (their defaults are SERVE_DEFAULTS, applied in serveOptions) so that a flag the
    // user gave can be told from one left alone: --no-defenses conflicts only with the given ones.
    .option('max-payload', { type: 'string', defaultDescription: '"1MiB"', describe: 'largest client message; larger closes with 1009' })
    .option('idle-timeout', { type: 'string', defaultDescription: '"120s"', describe: 'close after this long without a frame from the client (ping sent at half); 0 = never' })
    .option('max-backpressure', { type: 'string', defaultDescription: '"1MiB"', describe: 'unsent bytes per connection before it is dropped as a slow reader' })
    .option('handshake-timeout', { type: 'string', defaultDescription: '"10s"', describe: 'time a client has to complete the HTTP upgrade' })
    .option('max-conns-per-ip', { type: 'string', defaultDescription: '0 (no limit: the swarm opens ~19.5k from 127.0.0.1)', describe: 'connections one source address may hold; the next gets HTTP 429 (cluster: per worker)' })
    .option('defenses', { type: 'boolean', default: true, describe: 'limits on; --no-defenses runs the design naked (no handshake timeout, max payload, idle timeout, send cap, per-IP limit)' })
    .option('pool', { type: 'number', default: D.pool, describe: 'threads: 0 = a thread per connection, N = fixed pool of N workers + accept queue' })
    .option('thread-stack', { type: 'string', default: '256KiB', describe: 'threads: stack size per connection thread' })
    .option('queue-limit', { type: 'number', default: D.queueLimit, describe: 'threads --pool: connections that may wait for a worker' })
    .option('workers', { type: 'number', default: 0, describe: 'cluster: worker processes (0 = one per CPU)' })
    .option('inner', { type: 'string', default: D.inner, describe: 'cluster: the single-loop design each worker runs (uws|ws)' });
}

type Raw = Record<string, unknown>;

/** The flags that set a defence, and their option; --no-defenses refuses them unless 0. */
const LIMIT_FLAGS = {
  'max-payload': 'maxPayload', 'idle-timeout': 'idleTimeoutMs', 'max-backpressure': 'maxBackpressure',
  'handshake-timeout': 'handshakeTimeoutMs', 'max-conns-per-ip': 'maxConnsPerIp',
} as const satisfies Record<string, keyof ServeOptions>;
/** --no-defenses: every defence off (0), for experiments that show what the defences are for. */
const NAKED = Object.freeze({ maxPayload: 0, idleTimeoutMs: 0, maxBackpressure: 0, handshakeTimeoutMs: 0, maxConnsPerIp: 0 });

/** Checks every server flag once and returns the frozen options the servers receive. */
export function serveOptions(a: Raw): ServeOptions {
  const design = String(a.design ?? D.design);
  if (!DESIGNS.has(design)) throw new UsageError(`--design: unknown design "${design}" (known: ${[...DESIGNS.keys()].join(', ')})`);
  const host = String(a.host ?? D.host);
  const metricsHost = String(a['metrics-host'] ?? D.metricsHost);
  for (const [flag, h] of [['host', host], ['metrics-host', metricsHost]] as const) {
    if (!isIP(h) && h !== 'localhost') throw new UsageError(`--${flag}: "${h}" is not an IP address`);
  }
  const inner = String(a.inner ?? D.inner);
  if (inner !== 'uws' && inner !== 'ws') throw new UsageError(`--inner: "${inner}" is not a single-loop design (use uws or ws)`);
  const defenses = a.defenses !== false;
  const o: ServeOptions = {
    design, host, metricsHost, inner, defenses,
    port: parseInteger('port', a.port ?? D.port, 0, 65535),
    metricsPort: parseInteger('metrics-port', a['metrics-port'] ?? D.metricsPort, 0, 65535),
    maxPayload: parseSize('max-payload', a['max-payload'] ?? D.maxPayload),
    idleTimeoutMs: parseDuration('idle-timeout', a['idle-timeout'] ?? '120s'),
    maxBackpressure: parseSize('max-backpressure', a['max-backpressure'] ?? D.maxBackpressure),
    handshakeTimeoutMs: parseDuration('handshake-timeout', a['handshake-timeout'] ?? '10s'),
    maxConnsPerIp: parseInteger('max-conns-per-ip', a['max-conns-per-ip'] ?? D.maxConnsPerIp, 0, 1_000_000),
    pool: parseInteger('pool', a.pool ?? D.pool, 0, 100_000),
    threadStack: parseSize('thread-stack', a['thread-stack'] ?? D.threadStack),
    queueLimit: parseInteger('queue-limit', a['queue-limit'] ?? D.queueLimit, 1, 1_000_000),
    workers: parseInteger('workers', a.workers ?? 0, 0, 256) || availableParallelism(),
  };
  if (!defenses) {
    // A limit given as 0 says "off" too (a lab scenario's --idle-timeout 0), so only a real limit conflicts.
    const given = Object.entries(LIMIT_FLAGS).filter(([flag, key]) => a[flag] !== undefined && o[key] !== 0).map(([flag]) => flag);
    if (given.length) throw new UsageError(`--no-defenses turns every limit off, so it conflicts with --${given.join(', --')}: drop one or the other`);
    Object.assign(o, NAKED);
  } else {
    if (o.maxPayload < 125 || o.maxPayload > 256 * 1024 * 1024) throw new UsageError('--max-payload: must be from 125 bytes to 256MiB');
    if (o.maxBackpressure < 1) throw new UsageError('--max-backpressure: must be at least 1 byte');
    if (o.handshakeTimeoutMs < 100) throw new UsageError('--handshake-timeout: must be at least 100ms');
    if (o.idleTimeoutMs !== 0 && o.idleTimeoutMs < 200) throw new UsageError('--idle-timeout: must be 0 (off) or at least 200ms');
    const uwsInside = design === 'uws' || (design === 'cluster' && inner === 'uws');
    if (uwsInside && o.handshakeTimeoutMs !== SERVE_DEFAULTS.handshakeTimeoutMs) {
      // uWebSockets.js closes an unfinished HTTP request after its fixed 10 s HTTP idle timeout; JS cannot change it.
      throw new UsageError('--handshake-timeout: uws fixes the handshake timeout at 10s (uWebSockets.js HTTP idle timeout); use --design ws or threads to vary it');
    }
  }
  if (o.threadStack < 64 * KiB || o.threadStack > 64 * 1024 * KiB) throw new UsageError('--thread-stack: must be from 64KiB to 64MiB');
  if (o.port !== 0 && o.port === o.metricsPort && o.host === o.metricsHost) {
    throw new UsageError(`--port and --metrics-port are both ${o.port}: give them different ports (or 0 for any free port)`);
  }
  return Object.freeze(o);
}

export const serveCommand = {
  command: 'serve',
  describe: 'Run one server design speaking the wslab protocol, with Prometheus metrics',
  builder: (y: Argv) => serverFlags(y
    .option('design', { type: 'string', default: D.design, describe: `server design: ${[...DESIGNS.keys()].join(' | ')}` })
    .option('host', { type: 'string', default: D.host, describe: 'address to listen on' })
    .option('port', { type: 'number', default: D.port, describe: 'WebSocket port (0 = any free port)' })
    .option('metrics-host', { type: 'string', default: D.metricsHost, describe: 'address of the /metrics endpoint' })
    .option('metrics-port', { type: 'number', default: D.metricsPort, describe: '/metrics port (0 = any free port)' }))
    .example('$0 serve --design uws --port 8080', 'the uWebSockets.js single loop on ws://127.0.0.1:8080/'),
  handler: (a: Raw) => serve(serveOptions(a)),
};
