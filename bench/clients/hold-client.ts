/**
 * The comparison clients of bench/swarm-vs-ws-client.ts: open N idle WebSocket connections (at most --max-pending
 * in flight, round-robin over the URLs and source addresses) and hold them until SIGTERM.
 *
 *   --kind ws   the `ws` library's client, as an application would use it (one WebSocket object per connection)
 *   --kind net  a careful `net.Socket` client on the swarm's own codec: shared listeners, a shared read buffer
 *               (`onread`), state on the socket — the best a public-API client does, to show what the swarm's bare
 *               libuv handles save
 *   --kind handle  the bare libuv TCP handle the swarm drives (Node's tcp_wrap), the upgrade written and its 101
 *               checked, nothing else kept: the floor under the swarm's bytes per connection
 *
 * stdout: `{"event":"started"}` before the first connect, `{"event":"held",…}` once every attempt settled.
 */
import net from 'node:net';
import WebSocket from 'ws';
import { FrameReader, OP_PONG, UpgradeRequest, checkUpgrade, encodeFrame, newKey, UPGRADE_PARTIAL, type FrameSink } from '../../client/codec.js';
import { STREAM, TCP_BINDING, type TcpHandle } from '../../client/pool.js';

/** What the bench hands this process, as one JSON argument (built from its checked options, never re-parsed here). */
export interface HoldClientOptions {
  readonly kind: 'ws' | 'net' | 'handle';
  readonly urls: readonly string[];
  readonly connections: number;
  readonly maxPending: number;
  /** local addresses to bind, round-robin; none = the kernel's choice */
  readonly sourceIps: readonly string[];
  /** wss:// URLs: do not verify the server's certificate (bench/wss-hold.ts's self-signed one). Default false. */
  readonly insecure?: boolean;
}

const a = JSON.parse(process.argv[2] ?? '{}') as HoldClientOptions;
const urls = a.urls.map((u) => new URL(u));
const n = a.connections;
const maxPending = a.maxPending;
const sources = a.sourceIps;

let next = 0, pending = 0, opened = 0, failed = 0;
const t0 = performance.now();
const held: unknown[] = [];

function settle(ok: boolean): void {
  pending--;
  if (ok) opened++; else failed++;
  if (opened + failed === n) {
    const ms = performance.now() - t0;
    process.stdout.write(`${JSON.stringify({ event: 'held', kind: a.kind, opened, failed, ms: Math.round(ms), ratePerSec: Math.round(opened / (ms / 1000)) })}\n`);
  }
  pump();
}

/* --- ws: the library client --- */
function onWsOpen(this: WebSocket): void { settle(true); }
function onWsError(this: WebSocket): void { if (this.readyState !== WebSocket.OPEN) settle(false); }
function openWs(i: number): void {
  const ws = new WebSocket(urls[i % urls.length], {
    perMessageDeflate: false, localAddress: sources.length ? sources[i % sources.length] : undefined, rejectUnauthorized: a.insecure !== true,
  });
  ws.once('open', onWsOpen);
  ws.once('error', onWsError);
  held.push(ws);
}

/* --- net: net.Socket + the swarm codec, shared listeners, state on the socket --- */
interface Sock extends net.Socket { slot: number; upgraded: boolean }
const keys = new Uint8Array(n * 16);
const requests = urls.map((u) => new UpgradeRequest(u.host, u.pathname));
const sockets: (Sock | undefined)[] = [];
const sink: FrameSink = {
  message() {}, pong() {}, fail() {},
  ping(slot, d, s, e) { sockets[slot]?.write(encodeFrame(OP_PONG, d, s, e)); },
  close(slot) { sockets[slot]?.end(); },
};
const reader = new FrameReader(sink);
const READ = Buffer.allocUnsafe(64 * 1024);
function onNetRead(this: Sock, nread: number, buf: Buffer): boolean {
  if (this.upgraded) { reader.feed(this.slot, buf, 0, nread); return true; }
  const at = checkUpgrade(buf, 0, nread, keys, this.slot * 16); // a 101 arrives in one read on loopback
  if (at === UPGRADE_PARTIAL) return true;
  this.upgraded = at >= 0;
  settle(at >= 0);
  if (at < 0) this.destroy();
  return true;
}
function onNetConnect(this: Sock): void {
  newKey(keys, this.slot * 16);
  this.write(requests[this.slot % requests.length].build(keys, this.slot * 16));
}
function onNetError(this: Sock): void { if (!this.upgraded) settle(false); }
function openNet(i: number): void {
  const u = urls[i % urls.length];
  const s = net.connect({
    host: u.hostname, port: Number(u.port), noDelay: true, localAddress: sources.length ? sources[i % sources.length] : undefined,
    onread: { buffer: READ, callback: onNetRead as never },
  }) as Sock;
  s.slot = i;
  s.upgraded = false;
  s.on('connect', onNetConnect);
  s.on('error', onNetError);
  sockets[i] = s;
}

/* --- handle: Node's bare TCP handle, as client/pool.ts uses it, with none of the swarm's state around it --- */
const handles: (TcpHandle | undefined)[] = [];
const upgraded = new Uint8Array(a.kind === 'handle' ? n : 0);
function onHandleRead(this: TcpHandle): void {
  const nread = STREAM.streamBaseState[STREAM.kReadBytesOrError];
  if (upgraded[this.slot] !== 0) return; // held: frames (pings) are not read further
  if (nread < 0) { handles[this.slot] = undefined; return settle(false); }
  const at = checkUpgrade(READ, 0, nread, keys, this.slot * 16); // a 101 arrives in one read on loopback
  if (at === UPGRADE_PARTIAL) return;
  upgraded[this.slot] = at >= 0 ? 1 : 2;
  settle(at >= 0);
}
function afterWrite(status: number, h: TcpHandle): void { if (status < 0 && upgraded[h.slot] === 0) { upgraded[h.slot] = 2; settle(false); } }
function afterConnect(status: number, h: TcpHandle): void {
  if (status < 0 || h.readStart() !== 0) { upgraded[h.slot] = 2; return settle(false); }
  newKey(keys, h.slot * 16);
  const req = new STREAM.WriteWrap();
  const buf = requests[h.slot % requests.length].build(keys, h.slot * 16);
  Object.assign(req, { handle: h, oncomplete: afterWrite, async: false, buffer: buf });
  if (h.writeBuffer(req, buf) !== 0) { upgraded[h.slot] = 2; settle(false); }
}
function openHandle(i: number): void {
  const u = urls[i % urls.length];
  const h = new TCP_BINDING.TCP(TCP_BINDING.constants.SOCKET);
  h.slot = i;
  h.onread = onHandleRead;
  h.useUserBuffer(READ);
  handles[i] = h;
  if (sources.length && h.bind(sources[i % sources.length], 0) !== 0) return settle(false);
  const req = new TCP_BINDING.TCPConnectWrap();
  req.oncomplete = afterConnect;
  if (h.connect(req, u.hostname, Number(u.port)) !== 0) settle(false);
}

const open = a.kind === 'net' ? openNet : a.kind === 'handle' ? openHandle : openWs;
function pump(): void {
  while (pending < maxPending && next < n) {
    pending++;
    open(next++);
  }
}

process.on('SIGTERM', () => process.exit(0));
// bounded like bench/clients/idle-client: a bench cut short (SIGKILL, a crash) never leaves this holding sockets
setTimeout(() => process.exit(0), 10 * 60_000).unref();
process.stdout.write(`${JSON.stringify({ event: 'started', kind: a.kind, pid: process.pid })}\n`);
setTimeout(pump, 200); // the bench samples the baseline between the started line and the first connect
