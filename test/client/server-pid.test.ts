import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { WSLAB } from '../../lab/processes.js';

describe('wslab swarm --server-pid: any server measured from outside, in the summary', () => {
  it('reports the server\'s tree and its connections, equal to the connections held', async () => {
    // a plain ws server written here, not ours: the swarm knows its pid and its URL, nothing else
    const server = spawn(process.execPath, ['--input-type=module', '-e', `
      import { WebSocketServer } from 'ws';
      const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
      wss.on('listening', () => console.log(wss.address().port));
    `], { stdio: ['ignore', 'pipe', 'inherit'], cwd: new URL('../../../', import.meta.url).pathname });
    const port = Number(String((await once(server.stdout!, 'data'))[0]).trim());
    const dir = mkdtempSync(join(tmpdir(), 'wslab-server-pid-'));
    try {
      const file = join(dir, 's.json');
      const r = spawnSync(process.execPath, [WSLAB, 'swarm', '--url', `ws://127.0.0.1:${port}/`, '--connections', '300', '--rate', '3000', '--hold', '500ms',
        '--server-pid', String(server.pid), '--summary', file], { encoding: 'utf8', timeout: 30_000 });
      assert.equal(r.status, 0, r.stderr);
      const s = JSON.parse(readFileSync(file, 'utf8')) as { heldAtEnd: number; server: Record<string, number> };
      assert.equal(s.heldAtEnd, 300);
      assert.equal(s.server.pid, server.pid);
      assert.equal(s.server.connections, 300, 'ESTABLISHED on its port at the end of the hold = held');
      assert.ok(s.server.fds >= 300, `a socket each: ${s.server.fds} fds`);
      assert.ok(s.server.rssBytes > s.server.baselineRssBytes, 'the server grew with 300 connections');
      assert.equal(s.server.bytesPerConnection, Math.round((s.server.rssBytes - s.server.baselineRssBytes) / 300));
      assert.ok(s.server.cpuSeconds > 0 && s.server.threads >= 1);
    } finally {
      server.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a pid that is not on this machine before connecting, exit 1', () => {
    const r = spawnSync(process.execPath, [WSLAB, 'swarm', '--url', 'ws://127.0.0.1:9/', '--server-pid', '4194303'], { encoding: 'utf8', timeout: 10_000 });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^wslab: --server-pid: no process 4194303 on this machine/);
  });
});
