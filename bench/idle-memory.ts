import { fork, type ChildProcess } from 'node:child_process';
import { CONNECTIONS_OPEN, CONNECTION_THREADS } from '../metrics/index.js';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { sumOf } from '../metrics/exposition.js';
import type { IdleClientOptions } from './clients/idle-client.js';
import { defineBench } from './harness/bench.js';
import { designs, designsWhere, integer, text, type DesignRun } from './harness/options.js';
import { readingOf, withServer } from './harness/server.js';

/**
 * bench/idle-memory: for each design, start `wslab serve`, open N idle connections from a separate process
 * (spread over source addresses 127.0.0.2…), and report the server's RSS growth per connection, the time to open
 * them, the scraped open gauge against the true count, and how long /metrics takes to render with them open.
 * Prints JSON. Usage: npm run bench -- idle-memory --designs ws,uws --connections 19500 --source-ips 8
 */
export const bench = defineBench({
  name: 'idle-memory',
  describe: 'server RSS per idle connection for each design, open time, /metrics render time',
  options: {
    designs: designs(designsWhere((d) => d.model === 'loop'), 'designs to run, each with optional serve flags'),
    connections: integer(19_500, 1, 1_000_000, 'idle connections to open'),
    'source-ips': integer(8, 1, 250, 'source addresses to spread them over, from 127.0.0.2 on'),
    flags: text('', 'serve flags added to every design, e.g. "--idle-timeout 0"'),
  },
  async run(o, report) {
    const extra = o.flags ? o.flags.split(' ') : [];
    const results = [];
    for (const run of o.designs) results.push(await measure(run, extra, o.connections, o['source-ips']));
    report.result({ bench: 'idle-memory', node: process.version, results });
  },
});

const CLIENT = fileURLToPath(new URL('./clients/idle-client.js', import.meta.url));

async function readLine(child: ChildProcess): Promise<Record<string, unknown>> {
  let buf = '';
  for await (const chunk of child.stdout!) {
    buf += chunk;
    if (buf.includes('\n')) return JSON.parse(buf.slice(0, buf.indexOf('\n')));
  }
  throw new Error('process ended before printing its line');
}

async function measure(run: DesignRun, extra: string[], n: number, sourceIps: number): Promise<Record<string, unknown>> {
  return withServer(run, extra, { ms: 1000, warm: (s) => s.scrape() }, async (server, before) => {
    // One client process holds at most 19,000 sockets (the 20,000 open-files cap), so larger runs use several.
    const shares = Math.ceil(n / 19_000);
    const clients = Array.from({ length: shares }, (_, i) => {
      const o: IdleClientOptions = { url: server.url, connections: Math.floor(n / shares) + (i < n % shares ? 1 : 0), sourceIps, firstSourceOffset: i * 64 };
      return fork(CLIENT, [JSON.stringify(o)], { stdio: ['pipe', 'pipe', 'inherit', 'ipc'] });
    });
    for (const c of clients) c.stdout!.setEncoding('utf8');
    const lines = await Promise.all(clients.map(readLine));
    const opened = {
      opened: lines.reduce((a, l) => a + Number(l.opened), 0),
      failed: lines.reduce((a, l) => a + Number(l.failed), 0),
      openSeconds: Math.max(...lines.map((l) => Number(l.openSeconds))),
    };
    await sleep(2000);
    const { tree: after, metrics: samples } = await readingOf(server);
    const renders: number[] = [];
    for (let i = 0; i < 7; i++) {
      const res = await fetch(server.metricsUrl);
      await res.text();
      renders.push(Number(res.headers.get('x-wslab-render-ms')));
    }
    renders.sort((a, b) => a - b);
    await Promise.all(clients.map((c) => { c.kill('SIGTERM'); return once(c, 'exit'); }));
    const held = opened.opened;
    return {
      design: run.label + (extra.length ? ` ${extra.join(' ')}` : ''), target: n, opened: held, failed: opened.failed,
      openSeconds: opened.openSeconds.toFixed(2),
      scrapedOpen: sumOf(samples, CONNECTIONS_OPEN.name),
      scrapedThreads: sumOf(samples, CONNECTION_THREADS.name),
      processes: after.processes,
      processThreads: after.threads,
      rssBeforeBytes: before.rssBytes, rssAfterBytes: after.rssBytes,
      rssPerConnectionBytes: held ? Math.round((after.rssBytes - before.rssBytes) / held) : null,
      metricsRenderMs: { min: +renders[0].toFixed(2), median: +renders[3].toFixed(2) },
    };
  });
}
