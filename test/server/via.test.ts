import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import WebSocket from 'ws';
import { spawnServer, startSwarm, WSLAB, type ServerProcess } from '../../lab/processes.js';
import { sumOf } from '../../metrics/exposition.js';
import { CONNECTIONS_CLOSED, CONNECTIONS_OPEN, PROXY_CONNECTIONS_ACCEPTED, PROXY_CONNECTIONS_OPEN, PROXY_UP } from '../../metrics/index.js';
import { processTree } from '../../metrics/proc-status.js';
import { PROXIES, proxyUnavailable, type ProxyKind } from '../../server/via/proxy.js';

/**
 * `wslab serve --via nginx|haproxy`: the real Debian binaries (installed by .ci/run) in front of a design. Through
 * the proxy a swarm's clients are served as directly; the design's own gauge and the proxy's counters both equal the
 * true count; the proxy is part of the server's process tree, passes the design's 1001 on shutdown, and dies with
 * serve even under kill -9. Slowloris through each proxy: the hardened profile's 5 s header deadline cuts the
 * attackers while the design never sees one; the distribution's defaults hold them past 7 s.
 */
const DESIGN: Record<ProxyKind, string> = { nginx: 'uws', haproxy: 'ws' };
const alive = (pid: number): boolean => { try { process.kill(pid, 0); return true; } catch { return false; } };
const viaOf = (s: ServerProcess) => s.ready.via as { proxy: string; profile: string; pid: number; backend: string; version: string };

async function swarm(url: string, args: string[]) {
  const run = await startSwarm(['--url', url, ...args], `/tmp/wslab-via-${process.pid}-${Math.random().toString(36).slice(2)}.json`);
  return run;
}

for (const kind of PROXIES) {
  // skipped locally without the binary; under CI=true run anyway, and the first server start fails loudly
  const skip = proxyUnavailable(kind) === undefined || process.env.CI === 'true' ? false : `needs Debian ${kind} (.ci/run installs it)`;
  describe(`serve --via ${kind}`, { skip }, () => {
    it(`serves a swarm through ${kind}: the design's gauge and ${kind}'s counters equal the true count`, { timeout: 60_000 }, async () => {
      const s = await spawnServer(DESIGN[kind], ['--via', kind]);
      try {
        const via = viaOf(s);
        assert.equal(via.proxy, kind);
        assert.equal(via.profile, 'default');
        assert.notEqual(new URL(via.backend).port, new URL(s.url).port, 'clients connect to the proxy, not the design');
        assert.ok(processTree(s.pid).includes(via.pid), 'the proxy is part of the server\'s process tree');
        const run = await swarm(s.url, ['--connections', '200', '--hold', '3s', '--profile', 'chatty', '--command', 'echo 16', '--interval', '200ms', '--source-ips', '127.0.0.150-127.0.0.151']);
        await new Promise((r) => setTimeout(r, 2200));
        const m = await s.scrape();
        assert.equal(sumOf(m, CONNECTIONS_OPEN.name), 200, 'the design holds every connection, through the proxy');
        assert.equal(sumOf(m, PROXY_UP.name, { proxy: kind }), 1);
        assert.equal(sumOf(m, PROXY_CONNECTIONS_OPEN.name, { proxy: kind }), 200);
        assert.equal(sumOf(m, PROXY_CONNECTIONS_ACCEPTED.name, { proxy: kind }), 200);
        const { code, summary } = await run.done;
        assert.equal(code, 0);
        assert.equal(summary!.opened, 200);
        assert.equal(summary!.failed.total, 0);
        assert.ok(summary!.messages.sent > 0);
        assert.equal(summary!.messages.received, summary!.messages.sent, 'every echo came back through the proxy');
      } finally {
        await s.stop();
      }
    });

    it(`passes the design's 1001 to a client on shutdown, exits 0, and stops ${kind} with it`, { timeout: 30_000 }, async () => {
      const s = await spawnServer(DESIGN[kind], ['--via', kind]);
      const { pid } = viaOf(s);
      const ws = new WebSocket(s.url);
      await once(ws, 'open');
      const closed = once(ws, 'close');
      assert.equal(await s.stop(), 0);
      const [code] = await closed as [number];
      assert.equal(code, 1001);
      assert.equal(alive(pid), false, `${kind} (pid ${pid}) stopped with serve`);
    });

    it(`dies with serve when serve is killed with -9 (${kind} gets SIGTERM from the kernel)`, { timeout: 30_000 }, async () => {
      const s = await spawnServer(DESIGN[kind], ['--via', kind]);
      const { pid } = viaOf(s);
      assert.ok(alive(pid));
      s.child.kill('SIGKILL');
      const t0 = performance.now();
      // a zombie until pid 1 reaps it: gone means no longer listening (its listener port refuses)
      const listening = async () => new Promise<boolean>((resolve) => {
        const ws = new WebSocket(s.url);
        ws.on('open', () => { ws.terminate(); resolve(true); });
        ws.on('error', () => resolve(false));
      });
      while (await listening() && performance.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 100));
      assert.equal(await listening(), false, `${kind} still listening ${Math.round(performance.now() - t0)} ms after serve was killed`);
    });

    for (const profile of ['default', 'hardened'] as const) {
      it(`slowloris through ${kind} (${profile}): ${profile === 'hardened' ? 'cut by the proxy at its 5 s header deadline' : 'held past 7 s'}, the design never sees one`, { timeout: 40_000 }, async () => {
        const s = await spawnServer(DESIGN[kind], ['--via', kind, '--via-profile', profile]);
        try {
          const { code, summary } = await (await swarm(s.url, ['--connections', '20', '--profile', 'slowloris', '--hold', '7s'])).done;
          assert.equal(code, 0);
          const g = summary!.profiles!.slowloris;
          const m = await s.scrape();
          // nginx buffers a request head until it is complete and HAProxy parses it: neither passes on a slowloris
          assert.equal(sumOf(m, CONNECTIONS_OPEN.name), 0);
          assert.equal(sumOf(m, CONNECTIONS_CLOSED.name), 0, 'the design closed none: it never saw them');
          assert.equal(sumOf(m, PROXY_CONNECTIONS_ACCEPTED.name, { proxy: kind }), 20);
          if (profile === 'hardened') {
            assert.equal(g.outcomes?.held ?? 0, 0, JSON.stringify(g));
            const p50 = g.timeToCutMs?.p50 ?? NaN;
            assert.ok(p50 >= 4500 && p50 <= 6500, `cut after ${p50} ms (the hardened header deadline is 5 s)`);
          } else {
            assert.equal(g.outcomes?.held, 20, JSON.stringify(g));
          }
        } finally {
          await s.stop();
        }
      });
    }
  });
}

describe('serve --via: bad input', () => {
  const serve = (args: string[], env: NodeJS.ProcessEnv = process.env) =>
    spawnSync(process.execPath, [WSLAB, 'serve', '--port', '0', '--metrics-port', '0', ...args], { encoding: 'utf8', timeout: 15_000, env });
  for (const [args, says, env] of [
    [['--via', 'squid'], /^wslab: --via: "squid" is not one of none, nginx, haproxy$/],
    [['--via-profile', 'hardened'], /^wslab: --via-profile applies with --via nginx or --via haproxy only$/],
    [['--via', 'nginx', '--via-profile', 'paranoid'], /^wslab: --via-profile: "paranoid" is not one of default, hardened$/],
    [['--via', 'haproxy'], /^wslab: --via haproxy: haproxy is not installed here \(Debian: apt-get install haproxy\)$/, { ...process.env, PATH: '/nonexistent' }],
  ] as const) {
    it(`refuses ${args.join(' ')}${env ? ' (no haproxy on PATH)' : ''} in one line, exit 1, before listening`, () => {
      const r = serve([...args], env);
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr.trim(), says);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.equal(r.stdout, '');
    });
  }
});
