import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { sumOf, type Sample } from '../../metrics/exposition.js';
import { eventually, spawnServer, type ServerProcess } from '../../lab/processes.js';
import { UWS_HEAD_BUFFER } from '../../server/designs/uws/index.js';
import { MAX_REQUEST_HEAD } from '../../server/upgrade-check.js';

/*
 * Which big request heads uWebSockets.js 20.30 passes on to the uws design (docs/defenses.md, "uws and request
 * heads"): a head that one read holds whole is ours to answer, 101 up to MAX_REQUEST_HEAD and 431 past it, counted
 * as headers_too_large; a head in several reads is parsed only up to UWS_HEAD_BUFFER bytes, and a longer one is
 * closed by uWS without an answer, before JS hears of it. These pin that boundary on the wire and in the metrics,
 * so that a uWS that buffers more (or answers by itself) fails here and the docs get rewritten with it.
 */

/** Loading uWS in a child: a native binary per Node ABI may be missing, and the test process should not hold it. */
const loads = spawnSync(process.execPath, ['--input-type=module', '-e',
  `import { loadUws } from ${JSON.stringify(new URL('../../server/designs/uws/loader.js', import.meta.url).href)}; loadUws();`]).status === 0;
// skipped locally when uWS does not load on this Node; under CI=true run anyway, and the server start fails loudly
const skip = loads || process.env.CI === 'true' ? false : `uWebSockets.js does not load on Node ${process.version}`;

/** A source address of its own per connection (127.0.130.1 onwards), clear of a swarm holding 127.0.0.1's ports. */
let nextSource = Math.floor(Math.random() * 5000);
const source = (): string => { const n = nextSource++; return `127.0.${130 + Math.floor(n / 250) % 100}.${1 + (n % 250)}`; };

/** An upgrade request whose head is exactly `bytes` long, padded in one header. */
function head(bytes: number): string {
  const base = `GET / HTTP/1.1\r\nHost: wslab\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\nX-Pad: \r\n\r\n`;
  return base.replace('X-Pad: ', `X-Pad: ${'a'.repeat(bytes - base.length)}`);
}

interface Seen { status: number; end: 'open' | 'fin' | 'reset' }

/**
 * Sends `request` on a fresh socket in `pieces` writes 50 ms apart (so uWS reads it in as many reads), and says what
 * came back: the status (0: none) and how the server left (a 101 stays open; anything else within 3 s).
 */
async function exchange(server: ServerProcess, request: string, pieces: number): Promise<Seen> {
  const s = net.connect({ host: '127.0.0.1', port: server.port, localAddress: source() });
  s.setNoDelay(true);
  let got = '';
  let end: Seen['end'] = 'open';
  s.setEncoding('latin1').on('data', (d: string) => { got += d; });
  const closed = new Promise<void>((resolve) => {
    s.on('end', () => { if (end === 'open') end = 'fin'; });
    s.on('error', (err: NodeJS.ErrnoException) => { if (end === 'open' && (err.code === 'ECONNRESET' || err.code === 'EPIPE')) end = 'reset'; });
    s.once('close', () => resolve());
  });
  await new Promise((resolve) => s.once('connect', resolve));
  const step = Math.ceil(request.length / pieces);
  for (let i = 0; i < request.length && end === 'open'; i += step) {
    if (i > 0) await sleep(50);
    s.write(request.slice(i, i + step));
  }
  const upgraded = new Promise<void>((resolve) => s.on('data', () => { if (got.startsWith('HTTP/1.1 101 ')) resolve(); }));
  await Promise.race([closed, upgraded, sleep(3000, undefined, { ref: false })]);
  s.destroy();
  await closed;
  return { status: Number(/^HTTP\/1\.1 (\d{3}) /.exec(got)?.[1] ?? 0), end };
}

const COUNTED = [
  ['wslab_handshakes_rejected_total', { reason: 'headers_too_large' }],
  ['wslab_connections_closed_total', { reason: 'rejected' }],
  ['wslab_connections_accepted_total', {}],
] as const;
const counts = (samples: Sample[]): number[] => COUNTED.map(([name, labels]) => sumOf(samples, name, { design: 'uws', ...labels }));

describe('uws: request heads over what uWS buffers', { skip }, () => {
  let server: ServerProcess;
  before(async () => { server = await spawnServer('uws'); });
  after(async () => { await server?.stop(); });

  /** Sends each case, checks what the client saw, then that the metrics moved by exactly `expected`. */
  async function check(cases: readonly [string, number, number, Seen][], expected: readonly number[]): Promise<void> {
    const before = counts(await server.scrape());
    for (const [what, bytes, pieces, seen] of cases) assert.deepEqual(await exchange(server, head(bytes), pieces), seen, what);
    const moved = async () => counts(await server.scrape()).map((n, i) => n - before[i]);
    assert.ok(await eventually(async () => (await moved()).every((n, i) => n === expected[i])), `moved ${await moved()}, not ${expected}`);
    await sleep(300);
    assert.deepEqual(await moved(), expected, `${COUNTED.map(([n]) => n).join(', ')}`);
  }

  /*
   * One read: a head within the socket's initial send buffer (tcp_wmem's 16 KiB default) goes out as one segment and
   * arrives whole. Larger single writes usually do too on loopback (docs/defenses.md: 60 KiB 200 of 200 in one run),
   * but not always: a CI run here saw a 60 KiB head arrive in two reads and dropped, so the test stays under 16 KiB.
   */
  it('answers a head that arrives in one read itself: 101 up to 8 KiB, 431 past it, counted headers_too_large', () =>
    check([
      ['8 KiB exactly, one write', MAX_REQUEST_HEAD, 1, { status: 101, end: 'open' }],
      ['8 KiB + 1 B, one write', MAX_REQUEST_HEAD + 1, 1, { status: 431, end: 'fin' }],
      ['12 KiB, one write', 12 * 1024, 1, { status: 431, end: 'fin' }],
      ['15 KiB, one write', 15 * 1024, 1, { status: 431, end: 'fin' }],
    ], [3, 3, 1]));

  it(`drops a head over ${UWS_HEAD_BUFFER} B in several reads unanswered and uncounted, even one under 8 KiB`, () =>
    check([
      [`${UWS_HEAD_BUFFER} B in three writes`, UWS_HEAD_BUFFER, 3, { status: 101, end: 'open' }],
      [`${UWS_HEAD_BUFFER + 1} B in three writes`, UWS_HEAD_BUFFER + 1, 3, { status: 0, end: 'fin' }],
      ['8 KiB − 1 B in three writes', MAX_REQUEST_HEAD - 1, 3, { status: 0, end: 'fin' }],
      ['9 KiB in three writes', 9 * 1024, 3, { status: 0, end: 'fin' }],
      ['30 KiB in three writes', 30 * 1024, 3, { status: 0, end: 'fin' }],
    ], [0, 0, 1]));

  // One write larger than the receive window (tcp_rmem's 128 KiB default) cannot arrive in one read.
  it('resets a 200 KiB head sent in one write, uncounted (the bytes uWS left unread make its close a reset)', () =>
    check([['200 KiB, one write', 200 * 1024, 1, { status: 0, end: 'reset' }]], [0, 0, 0]));
});
