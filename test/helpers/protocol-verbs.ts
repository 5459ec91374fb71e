import assert from 'node:assert/strict';
import { once } from 'node:events';
import { it } from 'node:test';
import WebSocket from 'ws';

/*
 * The verbs of docs/protocol.md as a client sees them, for any server that speaks the wslab protocol: every design
 * of the registry (test/server/protocol.test.ts) and the reference designs in their own runtime
 * (test/targets/python.test.ts). `url()` is read when each test runs, after the suite's before() started the server.
 */

/** Opens a ws-library client and resolves once it is open. */
export async function open(url: string): Promise<WebSocket> {
  const ws = new WebSocket(url, { perMessageDeflate: false });
  await once(ws, 'open');
  return ws;
}

/** Sends one request and resolves with the reply text and the round trip in ms. */
export async function request(ws: WebSocket, text: string): Promise<{ reply: string; ms: number }> {
  const t0 = performance.now();
  ws.send(text);
  const [data] = await once(ws, 'message');
  return { reply: String(data), ms: performance.now() - t0 };
}

export async function closeCodeOf(ws: WebSocket): Promise<number> {
  const [code] = await once(ws, 'close');
  return code as number;
}

/** The verb tests: echo, binary, fragments, wait/cpu/fill/block, malformed requests, ping, close. */
export function verbSuite(url: () => string): void {
  it('echoes text, including an empty payload and multi-byte UTF-8', async () => {
    const ws = await open(url());
    assert.equal((await request(ws, '1 echo hello world')).reply, '1 ok hello world');
    assert.equal((await request(ws, 'abc echo')).reply, 'abc ok ');
    assert.equal((await request(ws, '2 echo żółw 🐢')).reply, '2 ok żółw 🐢');
    ws.close();
  });

  it('echoes binary byte for byte, 64 KiB included', async () => {
    const ws = await open(url());
    for (const size of [1, 125, 126, 65535, 65536]) {
      const payload = Buffer.alloc(size);
      for (let i = 0; i < size; i++) payload[i] = (i * 7 + size) & 0xff;
      ws.send(payload);
      const [data, isBinary] = await once(ws, 'message');
      assert.equal(isBinary, true);
      assert.ok(payload.equals(data as Buffer), `binary echo of ${size} bytes differs`);
    }
    ws.close();
  });

  it('reassembles a fragmented text message before running it', async () => {
    const ws = await open(url());
    ws.send('7 echo frag', { fin: false });
    ws.send('mented ', { fin: false });
    ws.send('message', { fin: true });
    const [data] = await once(ws, 'message');
    assert.equal(String(data), '7 ok fragmented message');
    ws.close();
  });

  it('waits, computes and fills as docs/protocol.md says', async () => {
    const ws = await open(url());
    const w = await request(ws, '3 wait 50');
    assert.equal(w.reply, '3 ok 50');
    assert.ok(w.ms >= 49 && w.ms < 1000, `wait 50 took ${w.ms} ms`);
    for (const [n, hex] of [[0, '9e3779b9'], [1, '8e987cb6'], [1000, '2358450d'], [10000, '8398134b']] as const) {
      assert.equal((await request(ws, `c${n} cpu ${n}`)).reply, `c${n} ok ${hex}`);
    }
    const fill = await request(ws, '4 fill 100000');
    assert.equal(fill.reply.length, '4 ok '.length + 100000);
    assert.match(fill.reply, /^4 ok x+$/);
    const b = await request(ws, '5 block 100');
    assert.equal(b.reply, '5 ok 100');
    assert.ok(b.ms >= 99, `block 100 took ${b.ms} ms`);
    ws.close();
  });

  it('answers malformed commands with err replies and stays open', async () => {
    const ws = await open(url());
    const cases: [string, string][] = [
      ['9 nope', '9 err unknown_command nope'],
      ['9', '9 err unknown_command missing command'],
      [' echo x', '- err bad_request missing or oversized request id'],
      ['', '- err bad_request missing or oversized request id'],
      [`${'i'.repeat(33)} echo x`, '- err bad_request missing or oversized request id'],
      ['9 wait', '9 err bad_argument wait takes an integer 0-60000'],
      ['9 wait -5', '9 err bad_argument wait takes an integer 0-60000'],
      ['9 wait 60001', '9 err bad_argument wait takes an integer 0-60000'],
      ['9 cpu 1e3', '9 err bad_argument cpu takes an integer 0-1000000'],
      ['9 fill 8388609', '9 err bad_argument fill takes an integer 0-8388608'],
      // The verb is cut at 32 UTF-16 units, splitting the emoji: valid UTF-8 still (U+FFFD), which ws checks.
      [`9 ${'v'.repeat(31)}\u{1F600} 1`, `9 err unknown_command ${'v'.repeat(31)}\uFFFD`],
    ];
    for (const [req, want] of cases) assert.equal((await request(ws, req)).reply, want, `reply to ${JSON.stringify(req)}`);
    assert.equal((await request(ws, '10 echo still here')).reply, '10 ok still here');
    ws.close();
  });

  it('answers a ping with a pong carrying the same payload', async () => {
    const ws = await open(url());
    ws.ping(Buffer.from('are you there'));
    const [data] = await once(ws, 'pong');
    assert.equal(String(data), 'are you there');
    ws.close();
  });

  it('echoes the client close code', async () => {
    const ws = await open(url());
    const closed = closeCodeOf(ws);
    ws.close(1000, 'bye');
    assert.equal(await closed, 1000);
  });
}
