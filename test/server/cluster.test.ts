import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import WebSocket from 'ws';
import { sumOf } from '../../metrics/exposition.js';
import { processTree } from '../../metrics/proc-status.js';
import { eventually, spawnServer } from '../../lab/processes.js';

describe('cluster', () => {
  for (const inner of ['uws', 'ws']) {
    it(`--inner ${inner}: restarts a worker that dies, counts it, and keeps serving`, async () => {
      const server = await spawnServer('cluster', ['--workers', '2', '--inner', inner]);
      try {
        const workers = processTree(server.pid).filter((p) => p !== server.pid);
        assert.equal(workers.length, 2, 'two worker processes');
        process.kill(workers[0], 'SIGKILL');
        const restarted = await eventually(async () =>
          sumOf(await server.scrape(), 'wslab_worker_restarts_total', { design: 'cluster' }) === 1 &&
          processTree(server.pid).filter((p) => p !== server.pid && !workers.includes(p)).length === 1, 15_000);
        assert.ok(restarted, 'restart counted and a new worker running');
        const clients = await Promise.all(Array.from({ length: 6 }, async () => {
          const ws = new WebSocket(server.url);
          await once(ws, 'open');
          return ws;
        }));
        assert.equal(sumOf(await server.scrape(), 'wslab_connections_open', { design: 'cluster' }), 6);
        for (const c of clients) c.close();
        assert.match(server.stderr(), /worker \d+ died \(SIGKILL\); restarting it/);
      } finally {
        const code = await server.stop();
        assert.equal(code, 0, server.stderr());
      }
    });
  }
});
