/**
 * The one /metrics endpoint, served by `wslab serve` (a design's metrics) and by `wslab swarm --metrics-port` (the
 * workers' metrics, aggregated): GET /metrics renders, anything else is a 404 that says what to ask for.
 */
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { closeHttp, hostForUrl, listen } from '../core/net.js';

/** A rendered scrape: the text and its content type (Prometheus text or OpenMetrics). */
export interface Exposition {
  readonly body: string;
  readonly contentType: string;
}

export interface MetricsEndpointOptions {
  readonly host: string;
  /** 0 = any free port. */
  readonly port: number;
  /** Called on every GET /metrics; a rejection is answered with a 500 naming its message. */
  readonly render: () => Promise<Exposition>;
  /** Who answers, at the start of the 404 and 500 bodies: `wslab`, `wslab swarm`. */
  readonly who: string;
  /** What a bind error says could not be served: `metrics`, `swarm metrics`. */
  readonly what: string;
}

export interface MetricsEndpoint {
  /** e.g. `http://127.0.0.1:9100/metrics`, with the port actually bound. */
  readonly url: string;
  /** Stops serving; open scrapes get 2 s to finish. */
  close(): Promise<void>;
}

const isMetricsPath = (url: string | undefined): boolean => url === '/metrics' || !!url?.startsWith('/metrics?');

/**
 * Serves `render` on http://host:port/metrics. A bind failure rejects with one line naming host, port and the way
 * out (`--metrics-port 0`), carrying the bind error's code (EADDRINUSE...).
 */
export async function serveMetrics(o: MetricsEndpointOptions): Promise<MetricsEndpoint> {
  const server = http.createServer((req, res) => {
    if (req.method !== 'GET' || !isMetricsPath(req.url)) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end(`${o.who}: try GET /metrics\n`);
      return;
    }
    const t0 = performance.now();
    o.render().then(
      // The render time rides along in a header, so a scraper can check the cost of a scrape under load.
      ({ body, contentType }) => res.writeHead(200, { 'content-type': contentType, 'x-wslab-render-ms': (performance.now() - t0).toFixed(3) }).end(body),
      (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${o.who}: metrics failed: ${err.message}\n`),
    );
  });
  let bound: number;
  try {
    bound = await listen(server, o.host, o.port);
  } catch (err) {
    throw Object.assign(new Error(`cannot serve ${o.what} on ${o.host}:${o.port}: ${(err as Error).message} (use --metrics-port 0 for any free port)`),
      { code: (err as NodeJS.ErrnoException).code });
  }
  return {
    url: `http://${hostForUrl(o.host)}:${bound}/metrics`,
    close: () => closeHttp(server, () => server.closeAllConnections()),
  };
}
