import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { sumOf } from '../../metrics/exposition.js';
import { DESIGN_CASES } from '../helpers/designs.js';
import { frame, rawConnect } from '../helpers/raw-client.js';
import { eventually, spawnServer, type ServerProcess } from '../../lab/processes.js';

/** Opens a ws-library client and resolves once it is open. */
async function open(url: string): Promise<WebSocket> {
  const ws = new WebSocket(url, { perMessageDeflate: false });
  await once(ws, 'open');
  return ws;
}

/** Sends one request and resolves with the reply text and the round trip in ms. */
async function request(ws: WebSocket, text: string): Promise<{ reply: string; ms: number }> {
  const t0 = performance.now();
  ws.send(text);
  const [data] = await once(ws, 'message');
  return { reply: String(data), ms: performance.now() - t0 };
}

async function closeCodeOf(ws: WebSocket): Promise<number> {
  const [code] = await once(ws, 'close');
  return code as number;
}

for (const dc of DESIGN_CASES) {
  describe(`protocol: ${dc.label}`, () => {
    let server: ServerProcess;
    const metric = async (name: string, labels: Record<string, string> = {}): Promise<number> =>
      sumOf(await server.scrape(), name, { design: dc.design, ...labels });

    before(async () => { server = await spawnServer(dc.design, [...dc.flags]); });
    after(async () => { await server?.stop(); });

    it('prints a ready line with the bound ports and its pid', () => {
      assert.equal(server.ready.event, 'listening');
      assert.equal(server.ready.design, dc.design);
      assert.match(server.url, /^ws:\/\/127\.0\.0\.1:\d+\/$/);
      assert.match(server.metricsUrl, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
      assert.equal(server.pid, server.child.pid);
    });

    it('echoes text, including an empty payload and multi-byte UTF-8', async () => {
      const ws = await open(server.url);
      assert.equal((await request(ws, '1 echo hello world')).reply, '1 ok hello world');
      assert.equal((await request(ws, 'abc echo')).reply, 'abc ok ');
      assert.equal((await request(ws, '2 echo żółw 🐢')).reply, '2 ok żółw 🐢');
      ws.close();
    });

    it('echoes binary byte for byte, 64 KiB included', async () => {
      const ws = await open(server.url);
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
      const ws = await open(server.url);
      ws.send('7 echo frag', { fin: false });
      ws.send('mented ', { fin: false });
      ws.send('message', { fin: true });
      const [data] = await once(ws, 'message');
      assert.equal(String(data), '7 ok fragmented message');
      ws.close();
    });

    it('waits, computes and fills as docs/protocol.md says', async () => {
      const ws = await open(server.url);
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
      const ws = await open(server.url);
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
      const ws = await open(server.url);
      ws.ping(Buffer.from('are you there'));
      const [data] = await once(ws, 'pong');
      assert.equal(String(data), 'are you there');
      ws.close();
    });

    it('echoes the client close code', async () => {
      const ws = await open(server.url);
      const closed = closeCodeOf(ws);
      ws.close(1000, 'bye');
      assert.equal(await closed, 1000);
    });

    it('closes with 1009 on a message declared larger than --max-payload', async () => {
      const raw = await rawConnect(server.url);
      const head = frame(2, Buffer.alloc(0));
      head[1] = 0x80 | 127; // masked, 64-bit length follows: declare 2 MiB, send none of it
      raw.socket.write(Buffer.concat([head.subarray(0, 2), Buffer.from([0, 0, 0, 0, 0, 0x20, 0, 0]), Buffer.alloc(4)]));
      await raw.ended;
      assert.equal(raw.closeCode(), dc.uwsFrames ? undefined : 1009);
    });

    it(dc.uwsFrames ? 'ends the TCP connection on invalid UTF-8 and ignores an unmasked frame (uWS, documented)'
      : 'closes with 1007 on invalid UTF-8 and 1002 on an unmasked frame', async () => {
      const closedBy = async (): Promise<[number, number]> => [
        await metric('wslab_connections_closed_total', { reason: 'protocol_error' }), await metric('wslab_connections_closed_total', { reason: 'error' })];
      const [protocol0, error0] = await closedBy();
      const a = await rawConnect(server.url);
      a.socket.write(frame(1, Buffer.from([0x31, 0x20, 0xff, 0xfe])));
      await a.ended;
      assert.equal(a.closeCode(), dc.uwsFrames ? undefined : 1007);
      const b = await rawConnect(server.url);
      b.socket.write(frame(1, Buffer.from('1 echo x'), { mask: false }));
      if (dc.uwsFrames) {
        await new Promise((r) => setTimeout(r, 200));
        assert.equal(b.socket.destroyed, false, 'uWS keeps the connection open');
        assert.equal(b.received().length, 0, 'and does not run the unmasked request');
        b.socket.destroy();
      } else {
        await b.ended;
        assert.equal(b.closeCode(), 1002);
      }
      // uWS names invalid UTF-8 in the message it passes to close (counted protocol_error); the second connection is
      // our own abrupt drop, counted as error.
      const counted = await eventually(async () => {
        const [protocol, error] = await closedBy();
        return protocol - protocol0 === (dc.uwsFrames ? 1 : 2) && error - error0 === (dc.uwsFrames ? 1 : 0);
      });
      assert.ok(counted, 'the closes are counted by reason');
    });

    it({ loop: 'block stalls every other client of the loop', threads: 'block stalls only its own connection',
      processes: 'block stalls one worker, clients of the other workers carry on' }[dc.model], async () => {
      // Processes: connections spread over workers (round-robin or SO_REUSEPORT hashing), so with 12 others the
      // chance that none landed on another worker is 2^-12 for two workers.
      const others = dc.model === 'processes' ? 12 : 1;
      const [a, ...rest] = await Promise.all(Array.from({ length: others + 1 }, () => open(server.url)));
      const blocked = request(a, '1 block 600');
      await new Promise((r) => setTimeout(r, 50));
      const times = await Promise.all(rest.map(async (b, i) => {
        const other = await request(b, `${i} echo hi`);
        assert.equal(other.reply, `${i} ok hi`);
        return other.ms;
      }));
      if (dc.model === 'loop') assert.ok(times[0] >= 450, `echo during block took ${times[0]} ms`);
      else assert.ok(Math.min(...times) < 300, `echo during block took ${times.join(', ')} ms`);
      assert.equal((await blocked).reply, '1 ok 600');
      for (const c of [a, ...rest]) c.close();
    });

    it('reports open, accepted and closed connections equal to the true count', async () => {
      await eventually(async () => (await metric('wslab_connections_open')) === 0);
      const accepted0 = await metric('wslab_connections_accepted_total');
      const normal0 = await metric('wslab_connections_closed_total', { reason: 'normal' });
      const K = Math.min(40, dc.capacity);
      const clients = await Promise.all(Array.from({ length: K }, () => open(server.url)));
      assert.equal(await metric('wslab_connections_open'), K);
      assert.equal(await metric('wslab_connections_accepted_total') - accepted0, K);
      await Promise.all(clients.map((c) => { const done = once(c, 'close'); c.close(1000); return done; }));
      assert.ok(await eventually(async () => (await metric('wslab_connections_open')) === 0), 'open gauge returns to 0');
      assert.equal(await metric('wslab_connections_closed_total', { reason: 'normal' }) - normal0, K);
      const ws = await open(server.url);
      await request(ws, '1 echo x');
      ws.close();
      const samples = await server.scrape();
      assert.ok(sumOf(samples, 'wslab_command_duration_seconds_count', { design: dc.design, command: 'echo' }) >= 1);
      assert.ok(sumOf(samples, 'wslab_messages_received_total', { design: dc.design }) >= 1);
      assert.ok(sumOf(samples, 'wslab_process_threads', { design: dc.design }) >= 1);
      assert.ok(sumOf(samples, 'process_resident_memory_bytes') > 0);
    });
  });

  describe(`slow-client limits: ${dc.label}`, () => {
    it('closes an idle client that does not answer pings, keeps one that does', async () => {
      const server = await spawnServer(dc.design, [...dc.flags, '--idle-timeout', '1s']);
      try {
        const live = await open(server.url); // the ws library answers pings by itself
        const silent = await rawConnect(server.url);
        const t0 = Date.now();
        await silent.ended;
        const took = Date.now() - t0;
        assert.ok(took >= 900 && took < 3000, `idle close after ${took} ms`);
        assert.equal(silent.closeCode(), 1001);
        assert.equal(live.readyState, WebSocket.OPEN);
        assert.equal((await request(live, '1 echo alive')).reply, '1 ok alive');
        assert.equal(sumOf(await server.scrape(), 'wslab_connections_closed_total', { reason: 'idle_timeout' }), 1);
        live.close();
      } finally {
        await server.stop();
      }
    });

    it('drops a client that never reads once --max-backpressure is exceeded', async () => {
      const server = await spawnServer(dc.design, [...dc.flags, '--max-backpressure', '64KiB']);
      try {
        const reader = await rawConnect(server.url, { read: false });
        for (let i = 0; i < 16; i++) reader.socket.write(frame(1, Buffer.from(`${i} fill 1048576`)));
        // The reader never reads, so it would never see the end either: watch the server's account instead.
        const closed = await eventually(async () =>
          sumOf(await server.scrape(), 'wslab_connections_closed_total', { reason: 'backpressure' }) === 1, 10_000);
        reader.socket.destroy();
        assert.ok(closed, 'a backpressure close was counted');
        const samples = await server.scrape();
        assert.ok(sumOf(samples, 'wslab_send_dropped_total') >= 1);
        assert.equal(sumOf(samples, 'wslab_connections_open'), 0);
      } finally {
        await server.stop();
      }
    });

    it(dc.handshakeTimeoutFlag ? 'ends a handshake that does not finish in --handshake-timeout' : 'refuses --handshake-timeout (fixed at 10 s by uWebSockets.js)', async () => {
      if (!dc.handshakeTimeoutFlag) {
        await assert.rejects(spawnServer(dc.design, [...dc.flags, '--handshake-timeout', '300ms']), /uws fixes the handshake timeout at 10s/);
        return;
      }
      const server = await spawnServer(dc.design, [...dc.flags, '--handshake-timeout', '300ms']);
      try {
        const slow = await rawConnect(server.url, { handshake: false });
        slow.socket.write('GET / HTTP/1.1\r\nHost: x\r\n');
        const t0 = Date.now();
        const dribble = setInterval(() => slow.socket.write('X-A: b\r\n'), 100);
        await slow.ended;
        clearInterval(dribble);
        const took = Date.now() - t0;
        assert.ok(took >= 250 && took < 2500, `slow handshake ended after ${took} ms`);
        assert.ok(await eventually(async () => sumOf(await server.scrape(), 'wslab_connections_closed_total', { reason: 'handshake_timeout' }) === 1));
      } finally {
        await server.stop();
      }
    });

    it('closes clients with 1001 on SIGTERM and exits 0', async () => {
      const server = await spawnServer(dc.design, [...dc.flags]);
      const clients = await Promise.all([open(server.url), open(server.url), open(server.url)]);
      const codes = Promise.all(clients.map(closeCodeOf));
      const t0 = Date.now();
      const code = await server.stop();
      assert.equal(code, 0, `exit ${code} (${server.child.signalCode}) after ${Date.now() - t0} ms: ${server.stderr()}`);
      assert.deepEqual(await codes, [1001, 1001, 1001]);
    });
  });
}
