import net from 'node:net';
import { BUFFERED_BYTES, CONNECTIONS_CLOSED, CONNECTIONS_OPEN } from '../metrics/index.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { encodeText, newKey, UpgradeRequest } from '../client/codec.js';
import { sumOf } from '../metrics/exposition.js';
import { defineBench } from './harness/bench.js';
import { designs, designsWhere, duration, integer, type DesignRun } from './harness/options.js';
import { mib, readingOf, withServer } from './harness/server.js';

/**
 * bench/slow-readers: what the send cap (--max-backpressure) buys. For each design, with its defences and with
 * --no-defenses, `--clients` sockets from 127.0.0.52 complete the upgrade, ask for `--replies` × `fill 1048576` and
 * never read. After `--hold`, reports the server's RSS growth, its buffered-bytes gauge, backpressure closes and the
 * connections still open. Prints JSON lines.
 * Usage: npm run bench -- slow-readers --designs ws,uws,threads --clients 100 --replies 8 --hold 4s
 */
export const bench = defineBench({
  name: 'slow-readers',
  describe: 'never-reading clients asking for MiBs, with and without defences: RSS, buffered bytes, backpressure closes',
  options: {
    designs: designs(designsWhere((d) => d.model !== 'processes'), 'designs to run, each with optional serve flags'),
    clients: integer(100, 1, 19_000, 'never-reading clients from 127.0.0.52'),
    replies: integer(8, 1, 1024, 'replies of 1 MiB each client asks for'),
    hold: duration('4s', 'how long the clients hold before the reading'),
  },
  async run(o, report) {
    for (const run of o.designs) {
      for (const defenses of [true, false]) report.line(await measure(run, defenses, o.clients, o.replies, o.hold));
    }
  },
});

async function measure(run: DesignRun, defenses: boolean, clients: number, replies: number, holdMs: number): Promise<Record<string, unknown>> {
  return withServer(run, defenses ? [] : ['--no-defenses'], { ms: 500 }, async (server, before) => {
    const sockets: net.Socket[] = [];
    try {
      const { hostname, port } = new URL(server.url);
      const keys = new Uint8Array(16);
      const request = new UpgradeRequest(`${hostname}:${port}`, '/');
      for (let i = 0; i < clients; i++) {
        const s = net.connect({ host: hostname, port: Number(port), localAddress: '127.0.0.52' });
        s.on('error', () => undefined);
        newKey(keys, 0);
        // The requests go after the 101 (RFC 6455 §4.1; uWS drops frames sent with the upgrade request), then the
        // client stops reading for good.
        s.write(request.build(keys, 0));
        s.once('data', () => {
          s.pause();
          s.write(Buffer.concat(Array.from({ length: replies }, (_, k) => encodeText(`${k} fill 1048576`))));
        });
        sockets.push(s);
      }
      await sleep(holdMs);
      const { tree: after, metrics: m } = await readingOf(server);
      return {
        design: run.label, defenses, clients: sockets.length, askedMiB: sockets.length * replies,
        rssAddedMiB: mib(after.rssBytes - before.rssBytes),
        bufferedMiB: mib(sumOf(m, BUFFERED_BYTES.name)),
        backpressureCloses: sumOf(m, CONNECTIONS_CLOSED.name, { reason: 'backpressure' }),
        open: sumOf(m, CONNECTIONS_OPEN.name),
      };
    } finally {
      for (const s of sockets) s.destroy(); // before the server stops
    }
  });
}
