import net from 'node:net';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { encodeText, newKey, UpgradeRequest } from '../client/codec.js';
import { spawnServer } from '../lab/processes.js';
import { sumOf } from '../metrics/exposition.js';
import { BUFFERED_BYTES, CONNECTIONS_CLOSED, CONNECTIONS_OPEN } from '../metrics/index.js';
import { readTreeStatus } from '../metrics/proc-status.js';

/**
 * bench/slow-readers: what the send cap (--max-backpressure) buys. For each design, with its defences and with
 * --no-defenses, `--clients` sockets from 127.0.0.52 complete the upgrade, ask for `--replies` × `fill 1048576` and
 * never read. After `--hold`, reports the server's RSS growth, its buffered-bytes gauge, backpressure closes and the
 * connections still open. Prints JSON lines.
 * Usage: node dist/bench/slow-readers.js --designs ws,uws,threads --clients 100 --replies 8
 */
const { values } = parseArgs({
  options: {
    designs: { type: 'string', default: 'ws,uws,threads' },
    clients: { type: 'string', default: '100' },
    replies: { type: 'string', default: '8' },
    hold: { type: 'string', default: '4000' },
  },
});

async function measure(label: string, defenses: boolean): Promise<Record<string, unknown>> {
  const [design, ...flags] = label.split(' ');
  const server = await spawnServer(design, [...flags, ...(defenses ? [] : ['--no-defenses'])]);
  const sockets: net.Socket[] = [];
  try {
    const { hostname, port } = new URL(server.url);
    await sleep(500);
    const before = readTreeStatus(server.pid);
    const keys = new Uint8Array(16);
    const request = new UpgradeRequest(`${hostname}:${port}`, '/');
    for (let i = 0; i < Number(values.clients); i++) {
      const s = net.connect({ host: hostname, port: Number(port), localAddress: '127.0.0.52' });
      s.on('error', () => undefined);
      newKey(keys, 0);
      // The requests go after the 101 (RFC 6455 §4.1; uWS drops frames sent with the upgrade request), then the
      // client stops reading for good.
      s.write(request.build(keys, 0));
      s.once('data', () => {
        s.pause();
        s.write(Buffer.concat(Array.from({ length: Number(values.replies) }, (_, k) => encodeText(`${k} fill 1048576`))));
      });
      sockets.push(s);
    }
    await sleep(Number(values.hold));
    const after = readTreeStatus(server.pid);
    const m = await server.scrape();
    return {
      design: label, defenses, clients: sockets.length, askedMiB: sockets.length * Number(values.replies),
      rssAddedMiB: +((after.rssBytes - before.rssBytes) / 2 ** 20).toFixed(1),
      bufferedMiB: +(sumOf(m, BUFFERED_BYTES.name) / 2 ** 20).toFixed(1),
      backpressureCloses: sumOf(m, CONNECTIONS_CLOSED.name, { reason: 'backpressure' }),
      open: sumOf(m, CONNECTIONS_OPEN.name),
    };
  } finally {
    for (const s of sockets) s.destroy();
    await server.stop();
  }
}

for (const label of values.designs!.split(',')) {
  for (const defenses of [true, false]) process.stdout.write(`${JSON.stringify(await measure(label.trim(), defenses))}\n`);
}
