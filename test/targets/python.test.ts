import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { established } from '../../metrics/proc-status.js';
import { startTarget, type LabServer } from '../../lab/processes.js';
import { readTargets } from '../../lab/targets.js';
import { open, request, verbSuite } from '../helpers/protocol-verbs.js';

/**
 * The reference designs of targets/python.yaml, in their own runtime: py-asyncio (Debian python3-websockets, one
 * asyncio loop) and py-threads (stdlib, a thread per connection, its own RFC 6455 framing). The protocol suite's
 * verb tests run against them as against our designs; they count nothing themselves, so connections are read from
 * /proc/net/tcp. Under CI=true a missing python3-websockets fails instead of skipping.
 */
const FILE = fileURLToPath(new URL('../../../targets/python.yaml', import.meta.url));
const hasPython = spawnSync('/usr/bin/python3', ['-c', 'import websockets'], { stdio: 'ignore' }).status === 0;
const skip = hasPython || process.env.CI === 'true' ? false : 'needs Debian python3-websockets (.ci/run installs it)';

for (const target of readTargets(FILE, [])) {
  describe(`protocol: ${target.name} (${target.model}, targets/python.yaml)`, { skip }, () => {
    let server: LabServer;
    before(async () => {
      assert.ok(hasPython, 'Debian python3-websockets: .ci/run installs it');
      server = await startTarget(target);
    });
    after(async () => { await server?.stop(); });

    verbSuite(() => server.url);

    it({ loop: 'block stalls every client of the loop', threads: 'block stalls only its own connection',
      processes: 'block stalls one worker process, clients of the others carry on', unknown: '' }[target.model], async () => {
      // with worker processes the kernel spreads connections (SO_REUSEPORT): among 12 others, some are on another one
      const others = target.model === 'processes' ? 12 : 1;
      const [blocker, ...rest] = await Promise.all(Array.from({ length: others + 1 }, () => open(server.url)));
      const blocked = once(blocker, 'message'); // listening first: the loop may answer it before the echoes below
      blocker.send('b block 600');
      await new Promise((r) => setTimeout(r, 100));
      const times = (await Promise.all(rest.map((ws) => request(ws, 'o echo x')))).map((r) => r.ms);
      const fastest = Math.min(...times);
      if (target.model === 'loop') assert.ok(fastest >= 400, `echo beside a block took ${fastest.toFixed(0)} ms: the loop should have stalled`);
      else assert.ok(fastest < 300, `echoes beside a block took ${times.map((t) => t.toFixed(0)).join(', ')} ms: another thread or process should have answered`);
      assert.equal(String((await blocked)[0]), 'b ok 600');
      [blocker, ...rest].forEach((ws) => ws.terminate());
    });

    it('holds connections that /proc/net/tcp counts exactly, and is stopped with its process group', async () => {
      const clients = await Promise.all(Array.from({ length: 20 }, () => open(server.url)));
      // the previous tests' connections may still be closing (the server's end stays ESTABLISHED until it reads the RST)
      let n = 0;
      for (let i = 0; i < 100 && (n = established({ port: server.port, ip: '127.0.0.1' })) !== 20; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(n, 20);
      clients.forEach((c) => c.terminate());
      const pid = server.pid!;
      await server.stop();
      assert.throws(() => process.kill(pid, 0), /ESRCH/, 'the target process is gone');
    });
  });
}
