import { spec } from './spec.js';

export const EVENT_LOOP_DELAY = spec({
  name: 'wslab_event_loop_delay_seconds',
  help: 'Event-loop delay since the previous scrape, by quantile (0.5, 0.99, 1 = max): how late a 100 ms timer fired (perf_hooks; a stall reads within 100 ms of its length).',
  type: 'gauge', labelNames: ['design', 'quantile'], aggregator: 'max',
});
export const PROCESS_THREADS = spec({
  name: 'wslab_process_threads',
  help: 'OS threads of the server process (Threads: in /proc/self/status).',
  type: 'gauge', labelNames: ['design'], aggregator: 'sum',
});
export const CONTEXT_SWITCHES = spec({
  name: 'wslab_context_switches_total',
  help: 'Context switches of the server process, all threads, by kind (voluntary, involuntary).',
  type: 'counter', labelNames: ['design', 'kind'], aggregator: 'sum',
});
export const CONNECTION_THREADS = spec({
  name: 'wslab_threads',
  help: 'Connection-handling threads of a thread design, by state: working (running a command), reading (holding a connection, waiting for its next frame), free (a pool worker without a connection).',
  type: 'gauge', labelNames: ['design', 'state'], aggregator: 'sum',
});
export const POOL_QUEUED = spec({
  name: 'wslab_pool_queued',
  help: 'Accepted connections waiting in a bounded pool\'s queue for a free worker thread.',
  type: 'gauge', labelNames: ['design'], aggregator: 'sum',
});
export const WORKER_RESTARTS = spec({
  name: 'wslab_worker_restarts_total',
  help: 'Cluster worker processes that died and were restarted.',
  type: 'counter', labelNames: ['design'], aggregator: 'sum',
});
