import { serveMetrics, type MetricsEndpoint } from '../metrics/endpoint.js';
import { openFilesLimit } from '../metrics/proc-status.js';
import type { DesignHandle } from './design.js';
import type { ServeOptions } from './options.js';
import { DESIGNS } from './registry.js';
import type { WebOptions } from '../web/options.js';
import { Registry } from 'prom-client';
import { hostForUrl } from '../core/net.js';
import type { RunningProxy } from './via/proxy.js';

export interface Running {
  readonly handle: DesignHandle;
  /** `--via`: the proxy in front of the design (clients connect to it), with the design's own URL behind it. */
  readonly proxy?: { readonly running: RunningProxy; readonly backendUrl: string };
  readonly url: string;
  readonly metricsUrl: string;
  close(): Promise<void>;
}

/** Starts a design and its /metrics endpoint. The returned `close()` is idempotent. */
export async function startServer(o: ServeOptions): Promise<Running> {
  const design = DESIGNS.get(o.design);
  if (!design) throw new Error(`unknown design ${o.design}`);
  let handle: DesignHandle;
  const via = o.via === 'none' ? undefined : o.via;
  try {
    // behind a proxy, the design listens on loopback and every connection comes from the proxy: the per-address
    // limit is the proxy's, where the client addresses are
    handle = await design.start(via ? Object.freeze({ ...o, host: '127.0.0.1', port: 0, maxConnsPerIp: 0 }) : o);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    // the fix in the line itself: every design reports a taken port its own way
    if (e?.code === 'EADDRINUSE' && o.port !== 0) {
      throw Object.assign(new Error(`--port: ${o.host}:${o.port} is in use (${e.message}): pick another --port, or --port 0 for any free port`), { code: 'EADDRINUSE' });
    }
    throw err;
  }
  let proxy: RunningProxy | undefined;
  const proxyMetrics = new Registry();
  if (via) {
    const { startProxy } = await import('./via/proxy.js');
    try {
      proxy = await startProxy({ kind: via, profile: o.viaProfile, host: o.host, port: o.port, backendHost: '127.0.0.1', backendPort: handle.port,
        maxConnsPerIp: o.maxConnsPerIp, fdLimit: openFilesLimit() });
    } catch (err) {
      await handle.close();
      const inUse = /Address already in use/.test((err as Error).message);
      throw inUse ? Object.assign(new Error(`--port: ${o.host}:${o.port} is in use (${via} could not bind it): pick another --port, or --port 0 for any free port`), { code: 'EADDRINUSE' }) : err;
    }
    proxy.register(proxyMetrics);
  }
  let metrics: MetricsEndpoint;
  try {
    metrics = await serveMetrics({
      host: o.metricsHost, port: o.metricsPort, who: 'wslab', what: 'metrics',
      render: async () => ({ body: proxy ? `${await handle.metrics()}\n${await proxyMetrics.metrics()}` : await handle.metrics(), contentType: handle.contentType }),
    });
  } catch (err) {
    await Promise.all([handle.close(), proxy?.stop()]);
    throw err;
  }
  let closing: Promise<void> | undefined;
  const backendUrl = `ws://${hostForUrl(via ? '127.0.0.1' : o.host)}:${handle.port}/`;
  return {
    handle,
    ...(proxy ? { proxy: { running: proxy, backendUrl } } : {}),
    url: proxy ? `ws://${hostForUrl(o.host)}:${proxy.port}/` : backendUrl,
    metricsUrl: metrics.url,
    // the design first (its 1001 close frames go out through the proxy), then the proxy
    close: () => (closing ??= Promise.all([handle.close().then(() => proxy?.stop()), metrics.close()]).then(() => undefined)),
  };
}


/**
 * `wslab serve`: start, print the ready line, and shut down cleanly (1001 to every client, exit 0) on a signal.
 * `web`: the live page (`--web`), bound before the server starts; it draws the lab's sampler run on this process.
 */
export async function serve(o: ServeOptions, web?: WebOptions): Promise<void> {
  // Handlers go in before the ready line: a client may act on that line at once (a thread design accepts without
  // the JS loop), and a signal that arrived before the handler would kill the process with its default action.
  let running: Running | undefined;
  let signalled: string | undefined;
  let live: { stop(why: string): Promise<void> } | undefined;
  const shutdown = (r: Running, signal: string): void => {
    process.stderr.write(`wslab serve: ${signal}, closing connections with 1001\n`);
    Promise.all([r.close(), live?.stop(`stopped (${signal})`)]).then(() => process.exit(0), (err: Error) => {
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
  // loaded only with --web: a plain server does not pay for the page's modules
  const page = web && await import('../web/serve.js');
  const liveWeb = page && await page.openServeWeb(web!, o.design);
  try {
    running = await startServer(o);
  } catch (err) {
    await liveWeb?.close({ type: 'end', status: `failed: ${(err as Error).message}`, lines: [], files: [] });
    throw err;
  }
  if (page && liveWeb) live = page.sampleServe(liveWeb, running, o.design);
  const fdLimit = openFilesLimit();
  const fixed = DESIGNS.get(o.design)!.traits(o.own).fixedHandshakeTimeout;
  process.stdout.write(`${JSON.stringify({
    event: 'listening', design: o.design, url: running.url, metrics: running.metricsUrl, pid: process.pid,
    version: running.proxy ? `${running.handle.version} via ${running.proxy.running.version} (${o.viaProfile})` : running.handle.version,
    fdLimit, defenses: o.defenses, maxConnsPerIp: o.maxConnsPerIp, web: liveWeb?.url ?? null,
    via: running.proxy ? { proxy: o.via, profile: o.viaProfile, version: running.proxy.running.version, pid: running.proxy.running.pid, backend: running.proxy.backendUrl } : null,
  })}\n`);
  if (liveWeb) process.stderr.write(`wslab serve: live view on ${liveWeb.url}\n`);
  process.stderr.write(`wslab serve: ${o.design} (${running.handle.version}) on ${running.proxy ? `${running.proxy.backendUrl} behind ${running.proxy.running.version} (${o.viaProfile} profile) on ` : ''}${running.url}, metrics ${running.metricsUrl}; ` +
    `open-files limit ${fdLimit} (≈ the most connections this process can hold)` +
    `${o.defenses ? '' : `; --no-defenses: no handshake timeout${fixed ? ` (but ${fixed.by} keeps its fixed ${fixed.ms / 1000} s)` : ''}, max payload, idle timeout, send cap or per-IP limit`}\n`);
  if (signalled) shutdown(running, signalled);
}
