import type { Registry } from 'prom-client';
import { METRICS_REQUEST, OPTIONS_ENV, SHUTDOWN, type WorkerMessage } from './index.js';
import type { ServeOptions } from '../../options.js';
import { ownDefaults } from '../../design.js';
import { DESIGNS } from '../../registry.js';

/**
 * A cluster worker: runs the inner single-loop design under the design label `cluster` and answers the primary's
 * metric requests with its registry as JSON. Signals are the primary's business (a Ctrl-C reaches the whole process
 * group): the worker closes only when the primary says so, or when the primary is gone.
 */
const cluster = JSON.parse(process.env[OPTIONS_ENV] ?? '{}') as ServeOptions;
const inner = DESIGNS.get(String(cluster.own.inner))!; // checked by the primary's --inner
// the inner design with its own defaults, under the cluster's design label
const options: ServeOptions = { ...cluster, own: ownDefaults(inner) };
const send = (m: WorkerMessage): void => { process.send?.(m); };

process.on('SIGINT', () => undefined);
process.on('SIGTERM', () => undefined);
let registry: Registry | undefined;
process.on('message', (m: { type?: string; id?: number }) => {
  if (m?.type !== METRICS_REQUEST || !registry) return;
  registry.getMetricsAsJSON().then((metrics) => send({ type: 'wslab:metrics', id: m.id!, metrics }));
});
try {
  const handle = await inner.start(options);
  registry = handle.registry;
  const stop = (): void => { handle.close().finally(() => process.exit(0)); };
  process.on('message', (m) => { if (m === SHUTDOWN) stop(); });
  process.on('disconnect', stop);
  send({ type: 'wslab:ready', port: handle.port });
} catch (err) {
  const e = err as Error & { code?: string };
  send({ type: 'wslab:failed', message: e.message, code: e.code });
  process.exit(1);
}
