import { spec } from './spec.js';

/**
 * A server we did not write, measured from outside by `wslab watch` (its process tree in /proc, its connections in
 * /proc/net/tcp), so Prometheus and the dashboards work for any server. `target` is the name given to the watch.
 */
export const TARGET_UP = spec({
  name: 'wslab_target_up',
  help: 'Whether the watched process is alive (1) or gone (0).',
  type: 'gauge', labelNames: ['target'], aggregator: 'sum',
});
export const TARGET_CONNECTIONS = spec({
  name: 'wslab_target_connections',
  help: 'ESTABLISHED TCP connections whose local port is the watched server\'s port (/proc/net/tcp and tcp6).',
  type: 'gauge', labelNames: ['target'], aggregator: 'sum',
});
export const TARGET_RSS = spec({
  name: 'wslab_target_rss_bytes',
  help: 'Resident memory of the watched process tree (VmRSS summed over it), bytes.',
  type: 'gauge', labelNames: ['target'], aggregator: 'sum',
});
export const TARGET_CPU = spec({
  name: 'wslab_target_cpu_seconds_total',
  help: 'CPU time (user + system) of the watched process tree, seconds.',
  type: 'counter', labelNames: ['target'], aggregator: 'sum',
});
export const TARGET_THREADS = spec({
  name: 'wslab_target_threads',
  help: 'OS threads of the watched process tree.',
  type: 'gauge', labelNames: ['target'], aggregator: 'sum',
});
export const TARGET_FDS = spec({
  name: 'wslab_target_open_fds',
  help: 'Open file descriptors of the watched process tree (sockets, files, pipes).',
  type: 'gauge', labelNames: ['target'], aggregator: 'sum',
});
export const TARGET_CONTEXT_SWITCHES = spec({
  name: 'wslab_target_context_switches_total',
  help: 'Context switches of the watched process tree, all threads, by kind (voluntary, involuntary).',
  type: 'counter', labelNames: ['target', 'kind'], aggregator: 'sum',
});
