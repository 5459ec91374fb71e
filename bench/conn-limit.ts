import { once } from 'node:events';
import net from 'node:net';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import { spawnServer } from '../lab/processes.js';
import { sumOf } from '../metrics/exposition.js';
import { HANDSHAKES_REJECTED } from '../metrics/index.js';
import { readTreeStatus } from '../metrics/proc-status.js';

/**
 * bench/conn-limit: what --max-conns-per-ip buys against a slowloris from one address. For each design and limit,
 * `--attackers` sockets from 127.0.0.50 send half a request head and stop; then `--healthy` clients from 127.0.0.51
 * each open a WebSocket and run one echo (3 s budget each). Reports the server's threads and RSS growth, attackers
 * refused, and the healthy clients served. Prints JSON lines.
 * Usage: node dist/bench/conn-limit.js --designs 'threads,threads --pool 256,ws,uws' --attackers 2000 --limit 100
 */
const { values } = parseArgs({
  options: {
    designs: { type: 'string', default: 'threads,threads --pool 256,ws,uws' },
    attackers: { type: 'string', default: '2000' },
    healthy: { type: 'string', default: '50' },
    limit: { type: 'string', default: '100' },
  },
});

/** One healthy client: handshake and one echo within 3 s; its time in ms, or undefined when it was not served. */
async function healthy(url: string): Promise<number | undefined> {
  const t0 = performance.now();
  const ws = new WebSocket(url, { localAddress: '127.0.0.51', perMessageDeflate: false });
  ws.on('error', () => undefined);
  const served = Promise.race([
    once(ws, 'open').then(() => { ws.send('1 echo hi'); return once(ws, 'message'); }).then(() => true),
    once(ws, 'close').then(() => false),
    sleep(3000).then(() => false),
  ]).catch(() => false);
  const ok = await served;
  ws.terminate();
  return ok ? performance.now() - t0 : undefined;
}

async function measure(label: string, limit: number): Promise<Record<string, unknown>> {
  const [design, ...flags] = label.split(' ');
  const server = await spawnServer(design, [...flags, '--max-conns-per-ip', String(limit)]);
  const attackers: net.Socket[] = [];
  try {
    const { hostname, port } = new URL(server.url);
    await sleep(500);
    const before = readTreeStatus(server.pid);
    let refused = 0;
    const t0 = performance.now();
    for (let i = 0; i < Number(values.attackers); i++) {
      const s = net.connect({ host: hostname, port: Number(port), localAddress: '127.0.0.50' });
      s.on('error', () => undefined).once('close', () => { refused++; }).resume(); // reading, so that it sees its end
      s.write('GET / HTTP/1.1\r\nHost: wslab\r\nUpgrade: websocket\r\n');
      attackers.push(s);
    }
    await sleep(1500);
    const attackSec = (performance.now() - t0) / 1000;
    const during = readTreeStatus(server.pid);
    const times = await Promise.all(Array.from({ length: Number(values.healthy) }, () => healthy(server.url)));
    const served = times.filter((t): t is number => t !== undefined).sort((a, b) => a - b);
    const samples = await server.scrape();
    return {
      design: label, maxConnsPerIp: limit, attackers: attackers.length, attackSec: +attackSec.toFixed(2),
      attackersCutWithin1_5s: refused, conn_limit: sumOf(samples, HANDSHAKES_REJECTED.name, { reason: 'conn_limit' }),
      serverThreads: during.threads, threadsAdded: during.threads - before.threads,
      rssAddedMiB: +((during.rssBytes - before.rssBytes) / 2 ** 20).toFixed(1),
      healthyServed: `${served.length}/${times.length}`, healthyMaxMs: served.length ? +served.at(-1)!.toFixed(1) : null,
    };
  } finally {
    for (const s of attackers) s.destroy();
    await server.stop();
  }
}

for (const label of values.designs!.split(',')) {
  for (const limit of [0, Number(values.limit)]) process.stdout.write(`${JSON.stringify(await measure(label.trim(), limit))}\n`);
}
