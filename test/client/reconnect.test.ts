import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocketServer } from 'ws';
import { Reconnector } from '../../client/reconnect.js';
import type { HealthySummary } from '../../client/recorder.js';
import { expectUsageErrors, swarmRunner } from '../helpers/swarm-run.js';

const dir = mkdtempSync(join(tmpdir(), 'wslab-reconnect-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const swarm = swarmRunner(dir);

describe('Reconnector: one heap, one timer', () => {
  it('fixed waits the delay every time; backoff waits uniform(0, min(max, delay × 2^k)); due slots come out in order', async () => {
    const fixed = new Reconnector({ mode: 'fixed', delayMs: 1000, maxMs: 30_000 }, 4, () => {});
    assert.deepEqual([0, 1, 5, 40].map((k) => fixed.waitMs(k)), [1000, 1000, 1000, 1000]);
    const top = new Reconnector({ mode: 'backoff', delayMs: 100, maxMs: 1000 }, 4, () => {}, () => 0.999999);
    assert.deepEqual([0, 1, 2, 3, 4, 40].map((k) => Math.round(top.waitMs(k))), [100, 200, 400, 800, 1000, 1000]);
    const bottom = new Reconnector({ mode: 'backoff', delayMs: 100, maxMs: 1000 }, 4, () => {}, () => 0);
    assert.equal(bottom.waitMs(3), 0);

    // 50 slots with random waits in (0, 60] ms: each reopened once, none early, in the order they fell due
    const due = new Map<number, number>();
    const seen: number[] = [];
    let r = 0;
    const waits = Array.from({ length: 50 }, (_, i) => ((i * 37) % 50 + 1) / 50); // a fixed shuffle of (0, 1]
    const rc = new Reconnector({ mode: 'backoff', delayMs: 60, maxMs: 60 }, 50, (slot) => {
      assert.ok(performance.now() >= due.get(slot)! - 1, `slot ${slot} reopened early`);
      seen.push(slot);
    }, () => waits[r++]);
    for (let s = 0; s < 50; s++) { due.set(s, performance.now() + waits[s] * 60); rc.down(s); }
    assert.equal(rc.waiting, 50);
    await sleep(150);
    assert.equal(seen.length, 50);
    assert.deepEqual(seen, [...seen].sort((a, b) => due.get(a)! - due.get(b)!));
    rc.stop();
  });
});

/**
 * A plain `ws` server (not ours) that can be restarted on the same port: `drop()` cuts every connection (RST) and
 * stops listening; `up()` listens again. What the swarm's reconnects look like against any server.
 */
async function restartable(): Promise<{ port: number; held: () => number; drop: () => Promise<void>; up: () => Promise<void>; close: () => Promise<void> }> {
  const wss = new WebSocketServer({ noServer: true });
  let http: Server | undefined;
  let port = 0;
  const up = async (): Promise<void> => {
    http = createServer().on('upgrade', (req, socket, head) => wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws)));
    http.listen(port, '127.0.0.1');
    await once(http, 'listening');
    port = (http.address() as AddressInfo).port;
  };
  const drop = async (): Promise<void> => {
    for (const c of wss.clients) c.terminate();
    await new Promise((resolve) => http!.close(resolve));
  };
  await up();
  return { port, held: () => wss.clients.size, drop, up, close: async () => { await drop().catch(() => {}); wss.close(); } };
}

describe('swarm --reconnect against a server that restarts', () => {
  for (const [mode, flags] of [['fixed', ['--reconnect-delay', '300ms']], ['backoff', ['--reconnect-delay', '100ms', '--reconnect-max', '1s']]] as const) {
    it(`${mode}: every dropped connection comes back; recovery time, retries refused while it was down, exit 0`, async () => {
      const server = await restartable();
      try {
        const run = swarm(['--url', `ws://127.0.0.1:${server.port}/`, '--connections', '200', '--hold', '4s', '--reconnect', mode, ...flags,
          '--threshold', 'reconnect.stillDown==0', '--threshold', 'reconnect.recoveredAfterSec<3']);
        await run.started;
        for (let i = 0; i < 100 && server.held() < 200; i++) await sleep(20);
        assert.equal(server.held(), 200);
        await sleep(300);
        await server.drop();
        await sleep(700); // down: every retry meanwhile is refused
        await server.up();
        for (let i = 0; i < 100 && server.held() < 200; i++) await sleep(20);
        assert.equal(server.held(), 200, 'the server holds them all again, within the hold');
        const r = await run.done;
        assert.equal(r.code, 0, r.stderr);
        const s = r.summary!;
        assert.equal(s.lost.total, 200);
        assert.equal(s.heldAtEnd, 200);
        assert.equal((s.profiles.idle as HealthySummary).opened, 200, 'reopens are not counted as the ramp\'s opens');
        const rc = s.reconnect!;
        assert.equal(rc.mode, mode);
        assert.equal(rc.reconnected, 200);
        assert.equal(rc.stillDown, 0);
        assert.ok(rc.failed.ECONNREFUSED > 0, JSON.stringify(rc.failed));
        assert.equal(rc.attempts, rc.reconnected + rc.failed.total);
        assert.ok(rc.recoveredAfterSec! >= 0.6 && rc.recoveredAfterSec! < 3, `recovered after ${rc.recoveredAfterSec} s`);
        assert.equal(rc.connectLatencyMs.count, 200);
        assert.match(r.stderr, new RegExp(`reconnect +${mode}.*200 dropped, all back ${rc.recoveredAfterSec} s after the first drop`));
      } finally {
        await server.close();
      }
    });
  }

  it('a server that does not come back: the dropped are still down at the end, and the run fails (exit 2) saying so', async () => {
    const server = await restartable();
    try {
      const run = swarm(['--url', `ws://127.0.0.1:${server.port}/`, '--connections', '50', '--hold', '2s', '--reconnect', 'fixed', '--reconnect-delay', '200ms']);
      await run.started;
      for (let i = 0; i < 100 && server.held() < 50; i++) await sleep(20);
      await sleep(200);
      await server.drop();
      const r = await run.done;
      assert.equal(r.code, 2, r.stderr);
      assert.equal(r.summary!.reconnect!.stillDown, 50);
      assert.equal(r.summary!.reconnect!.recoveredAfterSec, null);
      assert.equal(r.summary!.reconnect!.reconnected, 0);
      assert.match(r.stderr, /50 dropped connections were not back by the end of the hold/);
    } finally {
      await server.close();
    }
  });
});

describe('reconnect option errors', () => {
  it('each is one line on stderr and exit 1, before any connection', () => expectUsageErrors(swarm, [
    ['a mode that does not exist', ['--url', 'ws://127.0.0.1:1/', '--reconnect', 'always'], /--reconnect: "always" is not one of off, fixed, backoff/],
    ['--reconnect on a chatty run', ['--url', 'ws://127.0.0.1:1/', '--profile', 'chatty', '--reconnect', 'fixed'], /--reconnect applies to idle connections only/],
    ['a delay without --reconnect', ['--url', 'ws://127.0.0.1:1/', '--reconnect-delay', '1s'], /--reconnect-delay applies with --reconnect fixed or backoff only/],
    ['--reconnect-max with fixed', ['--url', 'ws://127.0.0.1:1/', '--reconnect', 'fixed', '--reconnect-max', '5s'], /--reconnect-max applies to --reconnect backoff only/],
    ['a ceiling under the delay', ['--url', 'ws://127.0.0.1:1/', '--reconnect', 'backoff', '--reconnect-delay', '2s', '--reconnect-max', '1s'], /--reconnect-max: must be at least --reconnect-delay \(2000 ms\)/],
  ]));
});
