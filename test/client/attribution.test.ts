import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { spawnServer, WSLAB } from '../../lab/processes.js';
import type { Attribution } from '../../client/attribution.js';
import { proxyUnavailable } from '../../server/via/proxy.js';

/**
 * `swarm --server-metrics`: who ended what the swarm did not close itself. Through real nginx, a slowloris the
 * proxy's 5 s header deadline cuts is the proxy's (the server upgraded none), and clients that never answer pings,
 * cut by the server's idle timeout, are the server's; directly, ws's counted handshake timeout is the server's and
 * uWS's uncounted one is said to be missing from the server's counters, not guessed.
 */
const dir = mkdtempSync(join(tmpdir(), 'wslab-attribution-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const skipNginx = proxyUnavailable('nginx') === undefined || process.env.CI === 'true' ? false : 'needs Debian nginx (.ci/run installs it)';

/** A swarm against `server` with --server-metrics: its exit code, summary and stderr. */
async function swarm(design: string, serverFlags: string[], args: string[]) {
  const s = await spawnServer(design, serverFlags);
  try {
    const file = join(dir, `${design}-${Math.random().toString(36).slice(2)}.json`);
    const r = spawnSync(process.execPath, [WSLAB, 'swarm', '--url', s.url, '--server-metrics', s.metricsUrl, '--summary', file, ...args], { encoding: 'utf8', timeout: 40_000 });
    const summary = JSON.parse(readFileSync(file, 'utf8')) as { attribution: Attribution | null };
    return { code: r.status, stderr: r.stderr, a: summary.attribution! };
  } finally {
    await s.stop();
  }
}

describe('swarm --server-metrics: who ended it', () => {
  it('through nginx (hardened): 20 slowloris cut by nginx, the server upgraded none', { skip: skipNginx, timeout: 60_000 }, async () => {
    const { code, stderr, a } = await swarm('ws', ['--via', 'nginx', '--via-profile', 'hardened'], ['--profile', 'slowloris', '--connections', '20', '--hold', '7s']);
    assert.equal(code, 0, stderr);
    assert.deepEqual({ proxy: a.proxy, proxyAccepted: a.proxyAccepted, serverUpgraded: a.serverUpgraded, endedUnasked: a.endedUnasked, byServer: a.byServer, byProxy: a.byProxy },
      { proxy: 'nginx', proxyAccepted: 20, serverUpgraded: 0, endedUnasked: 20, byServer: 0, byProxy: 20 });
    assert.match(stderr, /ended by +20 ended without the swarm asking: 0 by the server, 20 by nginx \(it accepted 20; the server upgraded 0\)/);
  });

  it('through nginx: 20 clients that never answer pings, cut by the server\'s 2 s idle timeout, are the server\'s', { skip: skipNginx, timeout: 60_000 }, async () => {
    const { code, stderr, a } = await swarm('ws', ['--via', 'nginx', '--idle-timeout', '2s'], ['--profile', 'no-pong', '--connections', '20', '--hold', '5s']);
    assert.equal(code, 0, stderr);
    assert.equal(a.proxy, 'nginx');
    assert.equal(a.serverUpgraded, 20);
    assert.equal(a.endedUnasked, 20);
    assert.deepEqual([a.byServer, a.byProxy, a.serverEnded], [20, 0, { idle_timeout: 20 }]);
    assert.match(stderr, /ended by +20 ended without the swarm asking: 20 by the server \(idle_timeout 20\), 0 by nginx/);
  });

  it('directly: ws\'s 2 s handshake timeout is the server\'s, no proxy', { timeout: 60_000 }, async () => {
    const { code, stderr, a } = await swarm('ws', ['--handshake-timeout', '2s'], ['--profile', 'slowloris', '--connections', '20', '--hold', '4s']);
    assert.equal(code, 0, stderr);
    assert.deepEqual([a.proxy, a.byProxy, a.byServer, a.unattributed, a.serverEnded], [null, null, 20, 0, { handshake_timeout: 20 }]);
  });

  it('directly: uWS cuts slowloris at its fixed 10 s without counting it, and the summary says so instead of guessing', { timeout: 60_000 }, async () => {
    const { code, stderr, a } = await swarm('uws', [], ['--profile', 'slowloris', '--connections', '20', '--hold', '13s']);
    assert.equal(code, 0, stderr);
    assert.deepEqual([a.proxy, a.endedUnasked, a.byServer, a.unattributed], [null, 20, 0, 20]);
    assert.match(stderr, /20 not in the server's counters/);
  });

  for (const [value, says] of [
    ['ftp://127.0.0.1/metrics', /^wslab: --server-metrics: ftp:\/\/127\.0\.0\.1\/metrics is not http:\/\//],
    ['not a url', /^wslab: --server-metrics: "not a url" is not a URL/],
    ['http://127.0.0.1:1/metrics', /^wslab: --server-metrics: http:\/\/127\.0\.0\.1:1\/metrics: /],
  ] as const) {
    it(`refuses --server-metrics ${value} in one line before any connection`, () => {
      const r = spawnSync(process.execPath, [WSLAB, 'swarm', '--url', 'ws://127.0.0.1:1/', '--connections', '1', '--server-metrics', value], { encoding: 'utf8', timeout: 15_000 });
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr.trim(), says);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.equal(r.stdout, '', 'no "started" line: nothing ran');
    });
  }
});
