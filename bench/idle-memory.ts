import { fork, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseExposition, sumOf } from '../metrics/exposition.js';
import { CONNECTIONS_OPEN, CONNECTION_THREADS } from '../metrics/index.js';
import { readTreeStatus } from '../metrics/proc-status.js';

/**
 * bench/idle-memory: for each design, start `wslab serve`, open N idle connections from a separate process
 * (spread over source addresses 127.0.0.2…), and report the server's RSS growth per connection, the time to open
 * them, the scraped open gauge against the true count, and how long /metrics takes to render with them open.
 * Prints JSON. Usage: node dist/bench/idle-memory.js --designs ws,uws --connections 19500 --source-ips 8
 */
const { values } = parseArgs({
  options: {
    designs: { type: 'string', default: 'ws,uws' },
    connections: { type: 'string', default: '19500' },
    'source-ips': { type: 'string', default: '8' },
    flags: { type: 'string', default: '' },
  },
});
const WSLAB = fileURLToPath(new URL('../cli/wslab.js', import.meta.url));
const CLIENT = fileURLToPath(new URL('./idle-client.js', import.meta.url));
const N = Number(values.connections);

async function readLine(child: ChildProcess): Promise<Record<string, unknown>> {
  let buf = '';
  for await (const chunk of child.stdout!) {
    buf += chunk;
    if (buf.includes('\n')) return JSON.parse(buf.slice(0, buf.indexOf('\n')));
  }
  throw new Error('process ended before printing its line');
}

async function measure(design: string): Promise<Record<string, unknown>> {
  const extra = values.flags ? values.flags.split(' ') : [];
  const server = spawn(process.execPath, [WSLAB, 'serve', '--design', design, '--port', '0', '--metrics-port', '0', ...extra], { stdio: ['ignore', 'pipe', 'inherit'] });
  server.stdout!.setEncoding('utf8');
  try {
    const ready = await readLine(server);
    const scrape = async () => parseExposition(await (await fetch(String(ready.metrics))).text());
    await scrape();
    await sleep(1000);
    const before = readTreeStatus(server.pid!);
    // One client process holds at most 19,000 sockets (the 20,000 open-files cap), so larger runs use several.
    const shares = Math.ceil(N / 19_000);
    const clients = Array.from({ length: shares }, (_, i) => fork(CLIENT,
      [String(ready.url), String(Math.floor(N / shares) + (i < N % shares ? 1 : 0)), values['source-ips']!, String(i * 64)],
      { stdio: ['pipe', 'pipe', 'inherit', 'ipc'] }));
    for (const c of clients) c.stdout!.setEncoding('utf8');
    const lines = await Promise.all(clients.map(readLine));
    const opened = {
      opened: lines.reduce((a, l) => a + Number(l.opened), 0),
      failed: lines.reduce((a, l) => a + Number(l.failed), 0),
      openSeconds: Math.max(...lines.map((l) => Number(l.openSeconds))),
    };
    await sleep(2000);
    const after = readTreeStatus(server.pid!);
    const samples = await scrape();
    const renders: number[] = [];
    for (let i = 0; i < 7; i++) {
      const res = await fetch(String(ready.metrics));
      await res.text();
      renders.push(Number(res.headers.get('x-wslab-render-ms')));
    }
    renders.sort((a, b) => a - b);
    await Promise.all(clients.map((c) => { c.kill('SIGTERM'); return once(c, 'exit'); }));
    const held = Number(opened.opened);
    return {
      design: design + (extra.length ? ` ${extra.join(' ')}` : ''), target: N, opened: held, failed: opened.failed,
      openSeconds: Number(opened.openSeconds).toFixed(2),
      scrapedOpen: sumOf(samples, CONNECTIONS_OPEN.name),
      scrapedThreads: sumOf(samples, CONNECTION_THREADS.name),
      processes: after.processes,
      processThreads: after.threads,
      rssBeforeBytes: before.rssBytes, rssAfterBytes: after.rssBytes,
      rssPerConnectionBytes: held ? Math.round((after.rssBytes - before.rssBytes) / held) : null,
      metricsRenderMs: { min: +renders[0].toFixed(2), median: +renders[3].toFixed(2) },
    };
  } finally {
    server.kill('SIGTERM');
    await once(server, 'exit');
  }
}

const results = [];
for (const d of values.designs!.split(',')) results.push(await measure(d));
process.stdout.write(`${JSON.stringify({ bench: 'idle-memory', node: process.version, results }, null, 2)}\n`);
