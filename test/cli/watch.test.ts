import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { WSLAB } from '../../lab/processes.js';
import { parseExposition, sumOf } from '../../metrics/exposition.js';
import { TARGET_CONNECTIONS, TARGET_FDS, TARGET_RSS, TARGET_THREADS, TARGET_UP } from '../../metrics/index.js';

describe('wslab watch', () => {
  it('exports a foreign server\'s connections and process tree: the count equals the connections held', async () => {
    // a plain ws server, written here: wslab knows nothing of it but its pid and port
    const server = spawn(process.execPath, ['--input-type=module', '-e', `
      import { WebSocketServer } from 'ws';
      const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
      wss.on('listening', () => console.log(wss.address().port));
      wss.on('connection', (ws) => ws.on('message', (m) => ws.send(m)));
    `], { stdio: ['ignore', 'pipe', 'inherit'], cwd: new URL('../../../', import.meta.url).pathname });
    const port = Number(String((await once(server.stdout!, 'data'))[0]).trim());
    const watch = spawn(process.execPath, [WSLAB, 'watch', '--pid', String(server.pid), '--port', String(port), '--name', 'plain-ws', '--metrics-port', '0'],
      { stdio: ['ignore', 'pipe', 'inherit'] });
    const ready = JSON.parse(String((await once(watch.stdout!, 'data'))[0]).split('\n')[0]) as { metrics: string; target: string };
    const clients: WebSocket[] = [];
    try {
      assert.equal(ready.target, 'plain-ws');
      for (let i = 0; i < 17; i++) {
        const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
        await once(ws, 'open');
        clients.push(ws);
      }
      const s = parseExposition(await (await fetch(ready.metrics)).text());
      const at = { target: 'plain-ws' };
      assert.equal(sumOf(s, TARGET_UP.name, at), 1);
      assert.equal(sumOf(s, TARGET_CONNECTIONS.name, at), 17);
      assert.ok(sumOf(s, TARGET_THREADS.name, at) >= 1);
      assert.ok(sumOf(s, TARGET_FDS.name, at) >= 17, 'a socket each');
      assert.ok(sumOf(s, TARGET_RSS.name, at) > 10 * 2 ** 20, 'a Node process tree');
      clients.splice(0, 5).forEach((c) => c.terminate());
      let n = -1;
      for (let i = 0; i < 50 && n !== 12; i++) {
        n = sumOf(parseExposition(await (await fetch(ready.metrics)).text()), TARGET_CONNECTIONS.name, at);
        if (n !== 12) await new Promise((r) => setTimeout(r, 20));
      }
      assert.equal(n, 12);
      server.kill('SIGKILL');
      await once(server, 'exit');
      assert.equal(sumOf(parseExposition(await (await fetch(ready.metrics)).text()), TARGET_UP.name, at), 0, 'gone: up 0');
    } finally {
      clients.forEach((c) => c.terminate());
      if (server.exitCode === null && server.signalCode === null) server.kill('SIGKILL');
      watch.kill('SIGTERM');
      const [code] = await once(watch, 'exit');
      assert.equal(code, 0, 'SIGTERM ends the watch with exit 0');
    }
  });

  it('refuses a pid that does not exist in one line, exit 1', () => {
    const r = spawnSync(process.execPath, [WSLAB, 'watch', '--pid', '4194303', '--port', '8080'], { encoding: 'utf8', timeout: 10_000 });
    assert.equal(r.status, 1);
    assert.equal(r.stderr.trim().split('\n').length, 1);
    assert.match(r.stderr, /--pid: no process 4194303 on this machine/);
  });
});
