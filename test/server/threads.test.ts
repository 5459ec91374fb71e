import assert from 'node:assert/strict';
import { once } from 'node:events';
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
