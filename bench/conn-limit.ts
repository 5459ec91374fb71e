import { once } from 'node:events';
import { HANDSHAKES_REJECTED } from '../metrics/index.js';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import { sumOf } from '../metrics/exposition.js';
import { defineBench } from './harness/bench.js';
import { designs, designsWhere, integer, type DesignRun } from './harness/options.js';
import { mib, treeOf, withServer } from './harness/server.js';

/**
 * bench/conn-limit: what --max-conns-per-ip buys against a slowloris from one address. For each design and limit,
 * `--attackers` sockets from 127.0.0.50 send half a request head and stop; then `--healthy` clients from 127.0.0.51
 * each open a WebSocket and run one echo (3 s budget each). Reports the server's threads and RSS growth, attackers
 * refused, and the healthy clients served. Prints JSON lines.
 * Usage: npm run bench -- conn-limit --designs 'threads,threads --pool 256,ws,uws' --attackers 2000 --limit 100
 */
export const bench = defineBench({
  name: 'conn-limit',
  describe: 'a one-address slowloris against each design, without and with --max-conns-per-ip: threads, RSS, healthy clients served',
  options: {
    // the single-process designs, and the threads design's bounded pool as well (its variant is a flag of its own)
    designs: designs(`${designsWhere((d) => d.model === 'threads')},threads --pool 256,${designsWhere((d) => d.model === 'loop')}`, 'designs to run, each with optional serve flags'),
    attackers: integer(2000, 1, 19_000, 'half-open upgrade requests from 127.0.0.50'),
    healthy: integer(50, 0, 10_000, 'clients from 127.0.0.51 that each run one echo'),
    limit: integer(100, 1, 1_000_000, 'the --max-conns-per-ip measured against 0 (off)'),
  },
  async run(o, report) {
    for (const run of o.designs) {
      for (const limit of [0, o.limit]) report.line(await measure(run, limit, o.attackers, o.healthy));
    }
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

async function measure(run: DesignRun, limit: number, attackerCount: number, healthyCount: number): Promise<Record<string, unknown>> {
  return withServer(run, ['--max-conns-per-ip', String(limit)], { ms: 500 }, async (server, before) => {
    const attackers: net.Socket[] = [];
    try {
      const { hostname, port } = new URL(server.url);
      let refused = 0;
      const t0 = performance.now();
      for (let i = 0; i < attackerCount; i++) {
        const s = net.connect({ host: hostname, port: Number(port), localAddress: '127.0.0.50' });
        s.on('error', () => undefined).once('close', () => { refused++; }).resume(); // reading, so that it sees its end
        s.write('GET / HTTP/1.1\r\nHost: wslab\r\nUpgrade: websocket\r\n');
        attackers.push(s);
      }
      await sleep(1500);
      const attackSec = (performance.now() - t0) / 1000;
      const during = treeOf(server);
      const times = await Promise.all(Array.from({ length: healthyCount }, () => healthy(server.url)));
      const served = times.filter((t): t is number => t !== undefined).sort((a, b) => a - b);
      const samples = await server.scrape();
      return {
        design: run.label, maxConnsPerIp: limit, attackers: attackers.length, attackSec: +attackSec.toFixed(2),
        attackersCutWithin1_5s: refused, conn_limit: sumOf(samples, HANDSHAKES_REJECTED.name, { reason: 'conn_limit' }),
        serverThreads: during.threads, threadsAdded: during.threads - before.threads,
        rssAddedMiB: mib(during.rssBytes - before.rssBytes),
        healthyServed: `${served.length}/${times.length}`, healthyMaxMs: served.length ? +served.at(-1)!.toFixed(1) : null,
      };
    } finally {
      for (const s of attackers) s.destroy(); // before the server stops, as the sockets of a bench always went
    }
  });
}
