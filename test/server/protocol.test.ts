import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { sumOf } from '../../metrics/exposition.js';
import { DESIGN_CASES } from '../helpers/designs.js';
import { frame, rawConnect } from '../helpers/raw-client.js';
import { eventually, spawnServer, type ServerProcess } from '../../lab/processes.js';

import { closeCodeOf, open, request, verbSuite } from '../helpers/protocol-verbs.js';

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

    verbSuite(() => server.url);


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
