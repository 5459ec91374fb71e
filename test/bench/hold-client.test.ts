import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { clientScript, start } from '../../bench/harness/child.js';
import type { HoldClientOptions } from '../../bench/clients/hold-client.js';
import { spawnServer, type ServerProcess } from '../../lab/processes.js';
import { CONNECTIONS_OPEN } from '../../metrics/index.js';
import { sumOf } from '../../metrics/exposition.js';

/**
 * bench/swarm-vs-ws-client's comparison clients: each kind really upgrades what it holds, counted by the server
 * itself, so a client that fails its handshakes can never pass for a light one.
 */
describe('bench/clients/hold-client against a real uws server', () => {
  const servers: ServerProcess[] = [];
  after(async () => { await Promise.all(servers.map((s) => s.stop())); });

  for (const kind of ['handle', 'net'] as const) {
    it(`--kind ${kind}: 300 connections upgraded and held, the server's gauge says 300`, { timeout: 30_000 }, async () => {
      const server = await spawnServer('uws');
      servers.push(server);
      const o: HoldClientOptions = { kind, urls: [server.url], connections: 300, maxPending: 50, sourceIps: ['127.0.0.2', '127.0.0.3'] };
      const client = start([clientScript('hold-client'), JSON.stringify(o)]);
      try {
        assert.equal((await client.nextLine()).event, 'started');
        const held = await client.nextLine();
        assert.deepEqual([held.event, held.kind, held.opened, held.failed], ['held', kind, 300, 0], client.stderrTail());
        assert.equal(sumOf(await server.scrape(), CONNECTIONS_OPEN.name), 300);
      } finally {
        client.child.kill('SIGTERM');
      }
    });
  }
});
