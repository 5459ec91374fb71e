import cluster, { type Worker } from 'node:cluster';
import { fileURLToPath } from 'node:url';
import { availableParallelism } from 'node:os';
import { Registry } from 'prom-client';
import { UsageError } from '../../../core/errors.js';
import { option } from '../../../core/flags.js';
import { freePort } from '../../../core/net.js';
import { parseInteger } from '../../../core/units.js';
import { IpcGather, type MetricJson } from '../../../metrics/gather.js';
import { WORKER_RESTARTS } from '../../../metrics/index.js';
import { counter } from '../../../metrics/prom.js';
import { defineDesign, ownDefaults, type Design, type DesignHandle } from '../../design.js';
import type { ServeOptions } from '../../options.js';

/** Messages between the primary and its workers (besides prom-client's own metric requests). */
export type WorkerMessage =
  | { type: 'wslab:ready'; port: number }
  | { type: 'wslab:failed'; message: string; code?: string }
  | { type: 'wslab:metrics'; id: number; metrics: MetricJson[] };
export const METRICS_REQUEST = 'wslab:metrics?';
export const SHUTDOWN = 'wslab:shutdown';
export const OPTIONS_ENV = 'WSLAB_CLUSTER_OPTIONS';

const WORKER_ENTRY = fileURLToPath(new URL('./worker.js', import.meta.url));

/**
 * One single-loop server per worker process on one port. `--inner ws` shares the listening socket through Node's
 * cluster module (the primary accepts and hands connections round-robin); `--inner uws` has every worker bind the
 * port itself with SO_REUSEPORT (uSockets' default on Linux), so the kernel spreads connections. The primary serves
 * no WebSocket traffic: it owns the workers, restarts any that dies (counted), and aggregates their metrics and its
 * own with prom-client's AggregatorRegistry.aggregate, each metric by the aggregator the contract declares (sum for
 * counts, max for event-loop delay).
 */
export interface ClusterOptions {
  /** Worker processes. Default: the number of CPUs. */
  readonly workers: number;
  /** The single-loop design each worker runs (a registered design of model `loop`). Default: the representative loop. */
  readonly inner: string;
  [key: string]: string | number;
}

const CORES = availableParallelism();

/**
 * The cluster of `loops` (the registry's single-loop designs): each worker runs one of them, chosen by --inner,
 * and the cluster has that design's traits but for its model and worker count.
 */
export function clusterOf(loops: readonly Design[]): Design {
  const defaultInner = (loops.find((d) => d.representative) ?? loops[0]).name;
  const innerOf = (name: string): Design => {
    const d = loops.find((l) => l.name === name);
    if (!d) throw new UsageError(`--inner: "${name}" is not a single-loop design (use ${loops.map((l) => l.name).join(' or ')})`);
    return d;
  };
  return defineDesign<ClusterOptions>({
    name: 'cluster',
    model: 'processes',
    summary: `one single loop per worker process (--workers, --inner ${loops.map((l) => l.name).join('|')}), metrics aggregated by the primary`,
    flags: {
      workers: option({ flag: 'workers', type: 'number', default: CORES, defaultDescription: '0 (one per CPU)', describe: 'cluster: worker processes (0 = one per CPU)', parse: (raw) => parseInteger('workers', raw, 0, 256) || CORES }),
      inner: option({ flag: 'inner', type: 'string', default: defaultInner, describe: `cluster: the single-loop design each worker runs (${loops.map((l) => l.name).join('|')})`, parse: (raw) => innerOf(String(raw)).name }),
    },
    traits: (own) => {
      const inner = innerOf(own.inner);
      return { ...inner.traits(ownDefaults(inner)), model: 'processes', workers: own.workers };
    },
    withWorkers: (n) => ({ workers: n }),
    labVariants: [{ workers: CORES }],
    testVariants: [{ workers: 2, inner: 'uws' }, { workers: 2, inner: 'ws' }].filter((v) => loops.some((l) => l.name === v.inner)),
    labelFlags: ['workers'],
    start: (o) => startCluster(o, innerOf(o.own.inner)),
  });
}

async function startCluster(o: ServeOptions & { readonly own: ClusterOptions }, inner: Design): Promise<DesignHandle> {
  {
    // A listener that binds in each worker (SO_REUSEPORT) would get a different port per worker from port 0, so the
    // primary picks one first; a node:http loop shares the primary's listening socket instead.
    const reusePort = inner.reusePort === true;
    const port = o.port === 0 && reusePort ? await freePort(o.host) : o.port;
    const options: ServeOptions = Object.freeze({ ...o, port });
    const primary = new Registry();
    /*
     * Only workers that said ready are asked for metrics, and one that dies mid-scrape is skipped: prom-client's
     * clusterMetrics() asks every connected worker and fails the whole scrape when a restarting one stays silent.
     */
    const ready = new Set<Worker>();
    const workerMetrics = new IpcGather<Worker>((w, id, failed) => w.send({ type: METRICS_REQUEST, id }, undefined, (err) => { if (err) failed(); }));
    const scrape = async (): Promise<string> => (await workerMetrics.gather(ready, [await primary.getMetricsAsJSON()])).metrics();
    const restarts = counter(WORKER_RESTARTS, primary).labels({ design: o.design });
    restarts.inc(0);
    let closing = false;

    cluster.setupPrimary({ exec: WORKER_ENTRY, args: [], silent: false });
    const spawnWorker = (): Promise<number> => new Promise((resolve, reject) => {
      const worker = cluster.fork({ [OPTIONS_ENV]: JSON.stringify(options) });
      // A message to a worker that is dying fails with EPIPE; its 'exit' handles the death, so the error is moot.
      worker.on('error', () => undefined);
      worker.on('message', (m: WorkerMessage) => {
        if (m.type === 'wslab:ready') { ready.add(worker); resolve(m.port); }
        else if (m.type === 'wslab:metrics') workerMetrics.answered(worker, m.id, m.metrics);
        else if (m.type === 'wslab:failed') reject(Object.assign(new Error(m.message), { code: m.code }));
      });
      worker.once('exit', (code, signal) => {
        ready.delete(worker);
        workerMetrics.gone(worker);
        reject(new Error(`cluster worker exited (${signal ?? code}) before it was ready`));
        if (closing) return;
        restarts.inc();
        process.stderr.write(`wslab cluster: worker ${worker.process.pid} died (${signal ?? `exit ${code}`}); restarting it\n`);
        spawnWorker().catch((err: Error) => process.stderr.write(`wslab cluster: restart failed: ${err.message}\n`));
      });
    });

    let ports: number[];
    try {
      ports = await Promise.all(Array.from({ length: o.own.workers }, spawnWorker));
    } catch (err) {
      closing = true;
      await stopWorkers();
      throw err;
    }
    return {
      port: ports[0],
      version: `cluster of ${o.own.workers} × ${o.own.inner}`,
      contentType: primary.contentType,
      metrics: scrape,
      async close() {
        closing = true;
        await stopWorkers();
      },
    };
  }
}

/** Asks every worker to close its connections with 1001 and exit; kills any that has not exited after 5 s. */
async function stopWorkers(): Promise<void> {
  const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => !!w);
  await Promise.all(workers.map((w) => new Promise<void>((resolve) => {
    if (w.isDead()) return resolve();
    const kill = setTimeout(() => w.process.kill('SIGKILL'), 5000);
    w.once('exit', () => { clearTimeout(kill); resolve(); });
    if (w.isConnected()) w.send(SHUTDOWN); else w.process.kill('SIGTERM');
  })));
}
