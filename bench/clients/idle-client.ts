import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';

/**
 * A separate process that opens N idle WebSocket connections for bench/idle-memory and holds them until it is
 * told to stop (stdin closes or SIGTERM). Deliberately naive (a socket and a closure per connection): it measures
 * the server, and sits in its own process so its memory is not the server's. Prints one JSON line when done opening.
 * Its options come as one JSON argument (IdleClientOptions), built by the bench from its checked flags.
 */
export interface IdleClientOptions {
  readonly url: string;
  readonly connections: number;
  /** how many source addresses to spread over, from 127.0.0.2 on */
  readonly sourceIps: number;
  /** where in 127.0.0.2… this process's addresses start (each client process takes its own) */
  readonly firstSourceOffset: number;
}
const o = JSON.parse(process.argv[2] ?? '{}') as IdleClientOptions;
const { hostname, port } = new URL(o.url);
const target = o.connections;
const ipOffset = o.firstSourceOffset;
const ips = Array.from({ length: Math.max(1, o.sourceIps) }, (_, i) => `127.0.0.${((ipOffset + i) % 250) + 2}`);
const sockets: net.Socket[] = [];
let opened = 0;
let failed = 0;
let pending = 0;
let next = 0;
const t0 = performance.now();
const key = randomBytes(16).toString('base64');
const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
const request = `GET / HTTP/1.1\r\nHost: ${hostname}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`;

function pump(): void {
  while (pending < 500 && next < target) {
    const i = next++;
    pending++;
    const s = net.connect({ host: hostname, port: Number(port), localAddress: ips[i % ips.length] });
    let done = false;
    const finish = (ok: boolean): void => {
      if (done) return;
      done = true;
      pending--;
      if (ok) { opened++; sockets.push(s); } else failed++;
      if (opened + failed === target) report();
      else pump();
    };
    s.once('connect', () => s.write(request));
    s.once('data', (d: Buffer) => finish(d.toString('latin1').startsWith('HTTP/1.1 101') && d.includes(accept)));
    s.on('data', (d: Buffer) => {
      // Answer pings (opcode 9) with an empty masked pong so idle timeouts never fire during the bench.
      if (done && d.length >= 2 && (d[0] & 0x0f) === 9) s.write(Buffer.from([0x8a, 0x80, 0, 0, 0, 0]));
    });
    s.once('error', () => finish(false));
  }
}

function report(): void {
  process.stdout.write(`${JSON.stringify({ opened, failed, openSeconds: (performance.now() - t0) / 1000 })}\n`);
}

const stop = (): void => { for (const s of sockets) s.destroy(); process.exit(0); };
process.stdin.on('end', stop).resume();
process.on('SIGTERM', stop);
setTimeout(stop, 10 * 60_000).unref(); // bounded: never outlives ten minutes
pump();
