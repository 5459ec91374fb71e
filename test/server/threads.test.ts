import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import WebSocket from 'ws';
import { sumOf } from '../../metrics/exposition.js';
import { eventually, spawnServer } from '../../lab/processes.js';

describe('threads --pool', () => {
  it('keeps a fifth client queued while four hold the four workers, then serves it when one leaves', async () => {
    const server = await spawnServer('threads', ['--pool', '4']);
    try {
      const held = await Promise.all(Array.from({ length: 4 }, async () => {
        const ws = new WebSocket(server.url);
        await once(ws, 'open');
        return ws;
      }));
      const fifth = new WebSocket(server.url);
      let opened = false;
      fifth.once('open', () => { opened = true; });
      const gauges = async () => {
        const s = await server.scrape();
        return {
          queued: sumOf(s, 'wslab_pool_queued', { design: 'threads' }),
          open: sumOf(s, 'wslab_connections_open', { design: 'threads' }),
          reading: sumOf(s, 'wslab_threads', { design: 'threads', state: 'reading' }),
          free: sumOf(s, 'wslab_threads', { design: 'threads', state: 'free' }),
        };
      };
      assert.ok(await eventually(async () => (await gauges()).queued === 1), 'the fifth connection waits in the queue');
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(opened, false, 'its handshake has not completed');
      assert.deepEqual(await gauges(), { queued: 1, open: 4, reading: 4, free: 0 });
      held[0].close();
      await once(fifth, 'open');
      fifth.send('1 echo served');
      const [reply] = await once(fifth, 'message');
      assert.equal(String(reply), '1 ok served');
      assert.deepEqual(await gauges(), { queued: 0, open: 4, reading: 4, free: 0 });
      for (const ws of [...held.slice(1), fifth]) ws.close();
      assert.ok(await eventually(async () => (await gauges()).free === 4), 'workers return to the pool');
    } finally {
      assert.equal(await server.stop(), 0);
    }
  });

  it('runs one thread per connection without --pool', async () => {
    const server = await spawnServer('threads');
    try {
      const clients = await Promise.all(Array.from({ length: 25 }, async () => {
        const ws = new WebSocket(server.url);
        await once(ws, 'open');
        return ws;
      }));
      const s = await server.scrape();
      assert.equal(sumOf(s, 'wslab_threads', { design: 'threads' }), 25);
      assert.ok(sumOf(s, 'wslab_process_threads', { design: 'threads' }) >= 25 + 1);
      for (const c of clients) c.close();
      assert.ok(await eventually(async () => sumOf(await server.scrape(), 'wslab_threads', { design: 'threads' }) === 0));
    } finally {
      await server.stop();
    }
  });
});

/** Sends `n` commands one after another on one connection (each waits for its reply) and returns the replies. */
async function inTurn(ws: WebSocket, n: number, command: (i: number) => string): Promise<string[]> {
  const replies: string[] = [];
  for (let i = 0; i < n; i++) {
    ws.send(command(i));
    const [reply] = await once(ws, 'message');
    replies.push(String(reply));
  }
  return replies;
}

/** The last process or thread id the kernel handed out (a new thread takes one). */
const lastPid = (): number => Number(readFileSync('/proc/sys/kernel/ns_last_pid', 'latin1'));
const PID_MAX = Number(readFileSync('/proc/sys/kernel/pid_max', 'latin1'));

const switches = async (server: Awaited<ReturnType<typeof spawnServer>>) => {
  const s = await server.scrape();
  return { voluntary: sumOf(s, 'wslab_context_switches_total', { kind: 'voluntary' }), involuntary: sumOf(s, 'wslab_context_switches_total', { kind: 'involuntary' }) };
};

describe('threads: context switches and a thread per task', () => {
  it('counts the context switches of every thread, not only the main one (which serves no connection)', async (t) => {
    const server = await spawnServer('threads');
    try {
      const clients = await Promise.all(Array.from({ length: 20 }, async () => {
        const ws = new WebSocket(server.url);
        await once(ws, 'open');
        return ws;
      }));
      const before = await switches(server);
      // each connection thread blocks in recv() for every next request: at least one voluntary switch per request
      await Promise.all(clients.map((ws, c) => inTurn(ws, 10, (i) => `${c}-${i} echo x`)));
      const after = await switches(server);
      t.diagnostic(`voluntary switches for 20 × 10 requests in turn: ${after.voluntary - before.voluntary}`);
      // (a request may arrive before its thread blocks again; the main thread alone would count a handful)
      assert.ok(after.voluntary - before.voluntary >= 180, `${after.voluntary - before.voluntary} voluntary switches for 200 requests`);
      for (const ws of clients) ws.close();
    } finally {
      assert.equal(await server.stop(), 0);
    }
  });

  it('--thread-per-task runs each command on a new thread: the same replies, a switch more per command, no thread left', async (t) => {
    const measure = async (flags: string[]) => {
      const server = await spawnServer('threads', flags);
      try {
        const ws = new WebSocket(server.url);
        await once(ws, 'open');
        const threads0 = sumOf(await server.scrape(), 'wslab_process_threads');
        const before = await switches(server);
        const pid0 = lastPid();
        const replies = await inTurn(ws, 200, (i) => `${i} cpu ${1 + (i % 7)}`);
        const pids = (lastPid() - pid0 + PID_MAX) % PID_MAX; // ids wrap around at pid_max
        const after = await switches(server);
        const threads1 = sumOf(await server.scrape(), 'wslab_process_threads');
        ws.close();
        await once(ws, 'close');
        return { replies, pids, voluntary: after.voluntary - before.voluntary, threads: [threads0, threads1] };
      } finally {
        assert.equal(await server.stop(), 0);
      }
    };
    const plain = await measure([]);
    const perTask = await measure(['--thread-per-task']);
    t.diagnostic(`voluntary switches for 200 commands in turn: ${plain.voluntary} (thread per connection), ${perTask.voluntary} (a thread per task)`);
    assert.deepEqual(perTask.replies, plain.replies, 'the same work, the same results');
    assert.match(perTask.replies[199], /^199 ok [0-9a-f]{8}$/);
    // every thread takes a new id from the kernel: 200 commands, at least 200 ids (other processes may take more)
    assert.ok(perTask.pids >= 200, `${perTask.pids} thread ids taken during 200 commands`);
    // the connection's thread also blocks in pthread_join when the task outlives its creation (measured: 333 vs 202)
    assert.ok(perTask.voluntary - plain.voluntary >= 60, `${perTask.voluntary} vs ${plain.voluntary} voluntary switches for 200 commands`);
    assert.equal(perTask.threads[1], perTask.threads[0], 'every task thread was joined: none left');
  });

  it('--thread-per-task: a shutdown interrupts a command sleeping on its task thread, and the server exits 0', async () => {
    const server = await spawnServer('threads', ['--thread-per-task']);
    const ws = new WebSocket(server.url);
    await once(ws, 'open');
    ws.send('1 wait 30000');
    await eventually(async () => sumOf(await server.scrape(), 'wslab_threads', { state: 'working' }) === 1);
    const closed = once(ws, 'close');
    const t0 = performance.now();
    assert.equal(await server.stop(), 0);
    const [code] = await closed;
    assert.equal(code, 1001);
    assert.ok(performance.now() - t0 < 5000, 'not held up by the 30 s wait');
  });
});
