import { readFileSync } from 'node:fs';
import { Registry } from 'prom-client';
import { serveMetrics, type MetricsEndpoint } from '../metrics/endpoint.js';
import {
  TARGET_CONNECTIONS, TARGET_CONTEXT_SWITCHES, TARGET_CPU, TARGET_FDS, TARGET_RSS, TARGET_THREADS, TARGET_UP,
} from '../metrics/index.js';
import { counter, gauge } from '../metrics/prom.js';
import { established, readTree } from '../metrics/proc-status.js';

export interface WatchOptions {
  /** The server's process (its whole tree is read). */
  readonly pid: number;
  /** The server's WebSocket port: its ESTABLISHED connections are counted. */
  readonly port: number;
  /** The address clients reach it at; undefined = any local address. */
  readonly host?: string;
  /** The `target` label. */
  readonly name: string;
  readonly metricsHost: string;
  /** 0 = any free port. */
  readonly metricsPort: number;
}

/** What one scrape reads of the watched process, once for every metric of that scrape. */
interface Reading {
  up: boolean;
  rssBytes: number;
  threads: number;
  fds: number;
  cpuSeconds: number;
  voluntary: number;
  involuntary: number;
  connections: number;
}

function read(o: WatchOptions): Reading {
  const connections = established({ port: o.port, ip: o.host });
  const tree = readTree(o.pid, { cpu: true, fds: true });
  if (!tree.processes) return { up: false, rssBytes: 0, threads: 0, fds: 0, cpuSeconds: 0, voluntary: 0, involuntary: 0, connections };
  return {
    up: true, rssBytes: tree.rssBytes, threads: tree.threads, fds: tree.fds, cpuSeconds: tree.cpuSeconds,
    voluntary: tree.voluntarySwitches, involuntary: tree.involuntarySwitches, connections,
  };
}

/**
 * `wslab watch`: any server's process tree and connections as `wslab_target_*` series, read from /proc when
 * Prometheus scrapes (nothing runs between scrapes), so the dashboards' "system under test" row works for a server
 * we did not write.
 */
export async function watch(o: WatchOptions): Promise<MetricsEndpoint> {
  const registry = new Registry();
  const target = { target: o.name };
  let snap: Reading | undefined;
  const now = (): Reading => (snap ??= read(o));
  gauge(TARGET_UP, registry, function () { this.set(target, now().up ? 1 : 0); });
  gauge(TARGET_CONNECTIONS, registry, function () { this.set(target, now().connections); });
  gauge(TARGET_RSS, registry, function () { this.set(target, now().rssBytes); });
  gauge(TARGET_THREADS, registry, function () { this.set(target, now().threads); });
  gauge(TARGET_FDS, registry, function () { this.set(target, now().fds); });
  // counters read as totals from /proc: set by reset + inc at scrape time
  counter(TARGET_CPU, registry, function () { this.reset(); this.inc(target, now().cpuSeconds); });
  counter(TARGET_CONTEXT_SWITCHES, registry, function () {
    this.reset();
    this.inc({ ...target, kind: 'voluntary' }, now().voluntary);
    this.inc({ ...target, kind: 'involuntary' }, now().involuntary);
  });
  return serveMetrics({
    host: o.metricsHost, port: o.metricsPort, who: 'wslab watch', what: 'watch metrics',
    render: async () => { snap = undefined; return { body: await registry.metrics(), contentType: registry.contentType }; },
  });
}

/** Whether `pid` is a process this machine has now. */
export function processExists(pid: number): boolean {
  try { readFileSync(`/proc/${pid}/stat`, 'latin1'); return true; } catch { return false; }
}
