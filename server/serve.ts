import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { openFilesLimit } from '../metrics/proc-status.js';
import type { DesignHandle } from './design.js';
import { listen, closeHttp } from '../core/net.js';
import type { ServeOptions } from './options.js';
import { DESIGNS } from './registry.js';

export interface Running {
  readonly handle: DesignHandle;
  readonly url: string;
  readonly metricsUrl: string;
  close(): Promise<void>;
}

/** Starts a design and its /metrics endpoint. The returned `close()` is idempotent. */
export async function startServer(o: ServeOptions): Promise<Running> {
  const design = DESIGNS.get(o.design);
  if (!design) throw new Error(`unknown design ${o.design}`);
  const handle = await design.start(o);
  const metricsServer = http.createServer((req, res) => {
    if (req.method !== 'GET' || (req.url !== '/metrics' && !req.url?.startsWith('/metrics?'))) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('wslab: try GET /metrics\n');
      return;
    }
    const t0 = performance.now();
    handle.metrics().then(
      // The render time rides along in a header, so a scraper can check the cost of a scrape under load.
      (body) => res.writeHead(200, { 'content-type': handle.contentType, 'x-wslab-render-ms': (performance.now() - t0).toFixed(3) }).end(body),
      (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`wslab: metrics failed: ${err.message}\n`),
    );
  });
  let metricsPort: number;
  try {
    metricsPort = await listen(metricsServer, o.metricsHost, o.metricsPort);
  } catch (err) {
    await handle.close();
    throw Object.assign(new Error(`cannot serve metrics on ${o.metricsHost}:${o.metricsPort}: ${(err as Error).message} (use --metrics-port 0 for any free port)`), { code: (err as NodeJS.ErrnoException).code });
  }
  let closing: Promise<void> | undefined;
  return {
    handle,
    url: `ws://${hostForUrl(o.host)}:${handle.port}/`,
    metricsUrl: `http://${hostForUrl(o.metricsHost)}:${metricsPort}/metrics`,
    close: () => (closing ??= Promise.all([handle.close(), closeHttp(metricsServer, () => metricsServer.closeAllConnections())]).then(() => undefined)),
  };
}

const uwsInside = (o: ServeOptions): boolean => o.design === 'uws' || (o.design === 'cluster' && o.inner === 'uws');
const hostForUrl = (h: string): string => (h.includes(':') ? `[${h}]` : h);

/** `wslab serve`: start, print the ready line, and shut down cleanly (1001 to every client, exit 0) on a signal. */
export async function serve(o: ServeOptions): Promise<void> {
  // Handlers go in before the ready line: a client may act on that line at once (a thread design accepts without
  // the JS loop), and a signal that arrived before the handler would kill the process with its default action.
  let running: Running | undefined;
  let signalled: string | undefined;
  const shutdown = (r: Running, signal: string): void => {
    process.stderr.write(`wslab serve: ${signal}, closing connections with 1001\n`);
    r.close().then(() => process.exit(0), (err: Error) => {
      process.stderr.write(`wslab serve: shutdown failed: ${err.message}\n`);
      process.exit(1);
    });
  };
  const stop = (signal: string): void => {
    if (signalled) return;
    signalled = signal;
    if (running) shutdown(running, signal); // else still starting: shut down as soon as it is up
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  running = await startServer(o);
  const fdLimit = openFilesLimit();
  process.stdout.write(`${JSON.stringify({
    event: 'listening', design: o.design, url: running.url, metrics: running.metricsUrl, pid: process.pid,
    version: running.handle.version, fdLimit, defenses: o.defenses, maxConnsPerIp: o.maxConnsPerIp,
  })}\n`);
  process.stderr.write(`wslab serve: ${o.design} (${running.handle.version}) on ${running.url}, metrics ${running.metricsUrl}; ` +
    `open-files limit ${fdLimit} (≈ the most connections this process can hold)` +
    `${o.defenses ? '' : `; --no-defenses: no handshake timeout${uwsInside(o) ? ' (but uws keeps its fixed 10 s)' : ''}, max payload, idle timeout, send cap or per-IP limit`}\n`);
  if (signalled) shutdown(running, signalled);
}
