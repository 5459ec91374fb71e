import { CONNECTION_THREADS, LATENCY_BUCKETS, POOL_QUEUED } from '../metrics/index.js';
import { gauge } from '../metrics/prom.js';
import { localMetrics, type Design, type DesignHandle } from './design.js';
import { ServerMetrics } from './metrics.js';
import type { ServeOptions } from './options.js';
import { addonVersion, startThreadsServer, type ThreadsStats } from './threads/addon.js';

/**
 * The thread design: a native server (native/, C++) with a real pthread per connection doing blocking I/O, or a
 * fixed pool of worker threads fed by an accept queue (`--pool N`), as a sync-worker server runs. Connection
 * threads never call into JS: they keep atomic counters, and this adapter reads them when /metrics is scraped.
 * The JS event loop here only serves /metrics.
 */
export const threadsDesign: Design = {
  name: 'threads',
  model: 'threads',
  summary: 'native pthread per connection with blocking I/O (--pool N: N workers + accept queue)',
  async start(o: ServeOptions): Promise<DesignHandle> {
    const native = startThreadsServer({
      host: o.host, port: o.port, pool: o.pool, queueLimit: o.queueLimit, threadStack: o.threadStack,
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
      version: `${addonVersion()}${o.pool ? `, pool ${o.pool}` : ', thread per connection'}`,
      ...localMetrics(metrics.registry),
      metrics: () => { snap = undefined; return metrics.registry.metrics(); },
      async close() {
        await native.close();
        metrics.close();
      },
    };
  },
};
