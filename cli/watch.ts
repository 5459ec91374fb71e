import { isIP } from 'node:net';
import type { Argv } from 'yargs';
import { UsageError } from '../core/errors.js';
import { parseInteger } from '../core/units.js';
import { processExists, watch } from '../lab/watch.js';

type Raw = Record<string, unknown>;

/** Checks the watch flags once, before anything is served. */
export function watchOptions(a: Raw) {
  if (a.pid === undefined) throw new UsageError('--pid: give the process id of the server to watch');
  if (a.port === undefined) throw new UsageError('--port: give the server\'s WebSocket port (its connections are counted there)');
  const pid = parseInteger('pid', a.pid, 1, 4_194_304);
  if (!processExists(pid)) throw new UsageError(`--pid: no process ${pid} on this machine (is the server running?)`);
  const name = String(a.name ?? `pid-${pid}`);
  if (!/^[\w.-]{1,40}$/.test(name)) throw new UsageError(`--name: "${name}" must be letters, digits, . _ - (at most 40)`);
  const host = a.host === undefined ? undefined : String(a.host);
  if (host !== undefined && isIP(host) === 0) throw new UsageError(`--host: "${host}" is not an IP address`);
  return Object.freeze({
    pid, name, host, port: parseInteger('port', a.port, 1, 65535),
    metricsHost: String(a['metrics-host'] ?? '127.0.0.1'), metricsPort: parseInteger('metrics-port', a['metrics-port'] ?? 9466, 0, 65535),
  });
}

export const watchCommand = {
  command: 'watch',
  describe: 'Export any server\'s process tree (RSS, CPU, threads, fds, context switches) and its connections as Prometheus series (metrics/target.ts)',
  builder: (y: Argv) => y
    .option('pid', { type: 'string', describe: 'process id of the server (its whole process tree is read)' })
    .option('port', { type: 'string', describe: 'the server\'s WebSocket port: ESTABLISHED connections on it are counted (/proc/net/tcp)' })
    .option('host', { type: 'string', describe: 'the address clients reach it at, e.g. 127.0.0.1 (default: any local address; give it when clients bound to other source addresses may get --port as their own port)' })
    .option('name', { type: 'string', describe: 'the target label (default pid-<pid>)' })
    .option('metrics-host', { type: 'string', describe: 'address of the /metrics endpoint (default 127.0.0.1)' })
    .option('metrics-port', { type: 'string', describe: '/metrics port; 0 = any free port (default 9466)' })
    .example('$0 watch --pid 1234 --port 8765 --name py-echo', 'a Python server on :8765, labelled target="py-echo", on :9466/metrics'),
  handler: async (a: Raw) => {
    const o = watchOptions(a);
    const endpoint = await watch(o);
    const stop = (signal: string): void => {
      process.stderr.write(`wslab watch: ${signal}, stopping\n`);
      endpoint.close().then(() => process.exit(0));
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    process.stdout.write(`${JSON.stringify({ event: 'watching', pid: o.pid, port: o.port, target: o.name, metrics: endpoint.url, watcherPid: process.pid })}\n`);
    process.stderr.write(`wslab watch: ${o.name} (pid ${o.pid}, port ${o.port}) on ${endpoint.url}\n`);
  },
};
