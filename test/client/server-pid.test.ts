import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { WSLAB } from '../../lab/processes.js';

describe('wslab swarm --server-pid: any server measured from outside, in the summary', () => {
  it('reports the server\'s tree and its connections, equal to the connections held, and a busy box beside a CPU hog', async () => {
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
      // the noise guard: this run's box figure leaves out the swarm and the server
      const box = (s as unknown as { box: { excludes: string; outsideCores: number; quiet: boolean } }).box;
      assert.equal(box.excludes, 'swarm and server');
      assert.ok(Number.isFinite(box.outsideCores) && typeof box.quiet === 'boolean');

      // the same run beside a one-core busy loop (not the server's, not the swarm's): the box is busy, and said so
      const hog = spawn(process.execPath, ['-e', 'const end = Date.now() + 30_000; while (Date.now() < end);'], { stdio: 'ignore' });
      try {
        const busy = spawnSync(process.execPath, [WSLAB, 'swarm', '--url', `ws://127.0.0.1:${port}/`, '--connections', '300', '--rate', '3000', '--hold', '2s',
          '--server-pid', String(server.pid), '--summary', file], { encoding: 'utf8', timeout: 30_000 });
        assert.equal(busy.status, 0, busy.stderr);
        const b = (JSON.parse(readFileSync(file, 'utf8')) as { box: { outsideCores: number; quiet: boolean }; warnings: string[] });
        assert.equal(b.box.quiet, false, JSON.stringify(b.box));
        assert.ok(b.box.outsideCores >= 0.6 && b.box.outsideCores <= 1.2, `the busy loop's core: ${b.box.outsideCores}`);
        assert.ok(b.warnings.some((w) => w.startsWith(`busy box: ${b.box.outsideCores.toFixed(2)} cores used outside the run`)), b.warnings.join('\n'));
        assert.match(busy.stdout + busy.stderr, /box +busy box: \d\.\d\d cores used outside the run, \d\.\d\d stolen \(outside the swarm and server\)/);
      } finally {
        hog.kill('SIGKILL');
      }
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
