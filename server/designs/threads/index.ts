import { CONNECTION_THREADS, LATENCY_BUCKETS, POOL_QUEUED } from '../../../metrics/index.js';
import { gauge } from '../../../metrics/prom.js';
import { parseInteger, parseSize } from '../../../core/units.js';
import { UsageError } from '../../../core/errors.js';
import { option } from '../../../core/flags.js';
import { defineDesign, localMetrics, type DesignHandle } from '../../design.js';
import { ServerMetrics } from '../../metrics.js';
import { addonVersion, startThreadsServer, type ThreadsStats } from './addon.js';

const KiB = 1024;

export interface ThreadsOptions {
  /** 0 = one thread per connection; N = fixed pool of N workers with an accept queue. Default 0. */
  readonly pool: number;
  /** Stack size of each connection thread, bytes. Default 256 KiB. */
  readonly threadStack: number;
  /** With a pool: connections that may wait in the accept queue before new ones are refused. Default 4096. */
  readonly queueLimit: number;
  /** Each command on a new thread, created and joined by the connection's (or worker's) thread. Default false. */
  readonly threadPerTask: boolean;
  [key: string]: number | boolean;
}

/**
 * The thread design: a native server (native/, C++) with a real pthread per connection doing blocking I/O, or a
 * fixed pool of worker threads fed by an accept queue (`--pool N`), as a sync-worker server runs. Connection
 * threads never call into JS: they keep atomic counters, and this adapter reads them when /metrics is scraped.
 * The JS event loop here only serves /metrics.
 */
export const threadsDesign = defineDesign<ThreadsOptions>({
  name: 'threads',
  model: 'threads',
  summary: 'native pthread per connection with blocking I/O (--pool N: N workers + accept queue)',
  flags: {
    pool: option({ flag: 'pool', type: 'number', default: 0, describe: 'threads: 0 = a thread per connection, N = fixed pool of N workers + accept queue', parse: (raw) => parseInteger('pool', raw, 0, 100_000) }),
    threadStack: option({
      flag: 'thread-stack', type: 'string', default: 256 * KiB, defaultDescription: '"256KiB"', describe: 'threads: stack size per connection thread',
      parse: (raw) => {
        const b = parseSize('thread-stack', raw);
        if (b < 64 * KiB || b > 64 * 1024 * KiB) throw new UsageError('--thread-stack: must be from 64KiB to 64MiB');
        return b;
      },
    }),
    threadPerTask: option({ flag: 'thread-per-task', type: 'boolean', default: false, describe: 'threads: run each command on a new thread, created and joined per command (a thread per task)', parse: (raw) => raw === true }),
    queueLimit: option({ flag: 'queue-limit', type: 'number', default: 4096, describe: 'threads --pool: connections that may wait for a worker', parse: (raw) => parseInteger('queue-limit', raw, 1, 1_000_000) }),
  },
  traits: (own) => ({
    model: 'threads', fixedHandshakeTimeout: null, dialect: 'threads', workers: own.pool || null, countsNonHttp: true, deflate: false,
    ...(own.threadPerTask ? { threadPerTask: true as const } : {}),
  }),
  withWorkers: (n) => ({ pool: n }),
  threadPerTask: { threadPerTask: true },
  // the lab compares a thread per connection with 64 fixed workers, as a prefork/sync-worker server runs them
  labVariants: [{}, { pool: 64 }],
  testVariants: [{}, { pool: 4 }, { threadPerTask: true }],
  labelFlags: ['pool', 'threadPerTask'],
  async start(o): Promise<DesignHandle> {
    const { pool, queueLimit, threadStack, threadPerTask } = o.own;
    const native = startThreadsServer({
      host: o.host, port: o.port, pool, queueLimit, threadStack, taskThreads: threadPerTask,
      // maxPayload 0 (--no-defenses): no limit, i.e. the largest length a frame can declare that JS can pass.
      maxPayload: o.maxPayload || Number.MAX_SAFE_INTEGER, idleTimeoutMs: o.idleTimeoutMs, maxBackpressure: o.maxBackpressure,
      handshakeTimeoutMs: o.handshakeTimeoutMs, maxConnsPerIp: o.maxConnsPerIp, defenses: o.defenses,
      histogramBounds: [...LATENCY_BUCKETS],
    });
    // One native read per scrape, shared by every metric that scrape renders (metrics() below starts a new one).
    let snap: ThreadsStats | undefined;
    const stats = (): ThreadsStats => (snap ??= native.stats());
    const metrics = new ServerMetrics(o.design, { open: () => stats().open, bufferedBytes: () => stats().bufferedBytes },
      { defenses: o.defenses, native: stats });
    gauge(CONNECTION_THREADS, metrics.registry, function () {
      const t = stats().threads;
      for (const state of ['working', 'reading', 'free'] as const) this.set({ design: o.design, state }, t[state]);
    });
    gauge(POOL_QUEUED, metrics.registry, function () { this.set({ design: o.design }, stats().queued); });
    return {
      port: native.port,
      version: `${addonVersion()}${pool ? `, pool ${pool}` : ', thread per connection'}${threadPerTask ? ', a thread per command' : ''}`,
      ...localMetrics(metrics.registry),
      metrics: () => { snap = undefined; return metrics.registry.metrics(); },
      async close() {
        await native.close();
        metrics.close();
      },
    };
  },
});
