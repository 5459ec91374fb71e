import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseExposition, sumOf } from '../../metrics/exposition.js';
import { WSLAB, eventually, spawnServer, type ServerProcess } from '../../lab/processes.js';
import { expectUsageErrors, swarmRunner } from '../helpers/swarm-run.js';

const dir = mkdtempSync(join(tmpdir(), 'wslab-swarm-'));
const swarm = swarmRunner(dir);

const scrape = async (url: string): Promise<ReturnType<typeof parseExposition>> => parseExposition(await (await fetch(url)).text());

after(() => rmSync(dir, { recursive: true, force: true }));

for (const design of ['ws', 'uws']) {
  describe(`swarm against the ${design} design`, () => {
    let server: ServerProcess;
    before(async () => { server = await spawnServer(design); });
    after(async () => { await server?.stop(); });

    it('idle: holds every connection, and the server counts exactly what the swarm holds', async () => {
      const run = swarm(['--url', server.url, '--connections', '60', '--hold', '2s', '--metrics-port', '0']);
      const started = await run.started;
      assert.match(String(started.metrics), /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
      const own = String(started.metrics);
      assert.ok(await eventually(async () => sumOf(await scrape(own), 'wslab_swarm_connections_open') === 60, 5000), 'swarm never reported 60 open');
      const swarmOpen = sumOf(await scrape(own), 'wslab_swarm_connections_open');
      const serverOpen = sumOf(await server.scrape(), 'wslab_connections_open', { design });
      assert.equal(serverOpen, swarmOpen);
      const mine = await scrape(own);
      assert.equal(sumOf(mine, 'wslab_swarm_target'), 60);
      assert.equal(sumOf(mine, 'wslab_swarm_connect_duration_seconds_count'), 60);
      const { code, stderr, summary } = await run.done;
      assert.equal(code, 0, stderr);
      assert.equal(summary!.opened, 60);
      assert.equal(summary!.heldAtEnd, 60);
      assert.equal(summary!.peakOpen, 60);
      assert.equal(summary!.failed.total, 0);
      assert.equal(summary!.lost.total, 0);
      assert.ok(summary!.connectLatencyMs.p50! > 0);
      assert.match(stderr, /wslab swarm summary/);
      // the close with 1000 reached the server: nothing left open there
      assert.ok(await eventually(async () => sumOf(await server.scrape(), 'wslab_connections_open', { design }) === 0, 3000));
    });

    it("idle: answers the server's pings, so an idle timeout never closes a held connection", async () => {
      const strict = await spawnServer(design, ['--idle-timeout', '1s']); // pings at 0.5 s of silence, closes at 1 s
      try {
        const { code, stderr, summary } = await swarm(['--url', strict.url, '--connections', '20', '--hold', '2500ms']).done;
        assert.equal(code, 0, stderr);
        assert.equal(summary!.heldAtEnd, 20);
        assert.equal(summary!.lost.total, 0);
        assert.equal(sumOf(await strict.scrape(), 'wslab_connections_closed_total', { design, reason: 'idle_timeout' }), 0);
      } finally {
        await strict.stop();
      }
    });

    it('ping: a ping per connection per interval, each answered', async () => {
      const { code, stderr, summary } = await swarm(['--url', server.url, '--connections', '20', '--hold', '1s', '--profile', 'ping', '--interval', '100ms']).done;
      assert.equal(code, 0, stderr);
      assert.ok(summary!.messages.pingsSent >= 20 * 8, `pings ${summary!.messages.pingsSent}`);
      assert.ok(summary!.messages.pongsReceived >= summary!.messages.pingsSent - 20);
      assert.equal(summary!.rttMs.count, summary!.messages.pongsReceived);
    });

    it("chatty: 'echo 32' every interval, replies timed", async () => {
      const { code, stderr, summary } = await swarm(['--url', server.url, '--connections', '20', '--hold', '1s', '--profile', 'chatty', '--command', 'echo 32', '--interval', '100ms']).done;
      assert.equal(code, 0, stderr);
      assert.ok(summary!.messages.sent >= 20 * 8, `sent ${summary!.messages.sent}`);
      assert.ok(summary!.messages.received >= summary!.messages.sent - 20);
      assert.equal(summary!.messages.errors, 0);
      assert.equal(summary!.rttMs.count, summary!.messages.received);
      assert.ok(summary!.rttMs.p50! < 50, `rtt p50 ${summary!.rttMs.p50}`);
    });
  });
}

describe('swarm measurements, thresholds, faults', () => {
  let server: ServerProcess;
  before(async () => { server = await spawnServer('uws'); });
  after(async () => { await server?.stop(); });

  it("measures a server-side 'wait 50' as a 50–60 ms round trip (p50)", async () => {
    const { code, stderr, summary } = await swarm(['--url', server.url, '--connections', '20', '--hold', '2s', '--profile', 'chatty',
      '--command', 'wait 50', '--interval', '100ms']).done;
    assert.equal(code, 0, stderr);
    assert.ok(summary!.rttMs.count >= 20 * 15, `count ${summary!.rttMs.count}`);
    assert.ok(summary!.rttMs.p50! >= 50 && summary!.rttMs.p50! <= 60, `p50 ${summary!.rttMs.p50} ms`);
  });

  it('thresholds: all pass → exit 0; one fails → exit 99 naming it', async () => {
    const [pass, fail] = await Promise.all([
      swarm(['--url', server.url, '--connections', '20', '--hold', '0', '--threshold', 'heldAtEnd>=20', '--threshold', 'failed==0', '--threshold', 'connect.p99<5s']).done,
      swarm(['--url', server.url, '--connections', '20', '--hold', '0', '--threshold', 'failed==0', '--threshold', 'heldAtEnd>=21']).done,
    ]);
    assert.equal(pass.code, 0, pass.stderr);
    assert.equal(fail.code, 99, fail.stderr);
    assert.match(fail.stderr, /threshold FAILED: heldAtEnd>=21 \(actual 20\)/);
    assert.match(fail.stderr, /threshold passed: failed==0/);
    assert.doesNotMatch(fail.stderr, /FAILED: failed==0/);
  });

  it('--workers 2 splits the connections and aggregates both workers', async () => {
    const { code, stderr, summary } = await swarm(['--url', server.url, '--url', server.url, '--connections', '41', '--workers', '2',
      '--hold', '500ms', '--profile', 'chatty', '--interval', '100ms']).done;
    assert.equal(code, 0, stderr);
    assert.equal(summary!.client.workers, 2);
    assert.equal(summary!.opened, 41);
    assert.equal(summary!.heldAtEnd, 41);
    assert.equal(summary!.rttMs.count, summary!.messages.received);
    assert.ok(summary!.rttMs.count >= 41 * 3);
    assert.ok(summary!.client.rssBytes > summary!.client.baselineRssBytes);
  });

  it('SIGINT: drops everything at once, writes the summary, exits 130', async () => {
    const run = swarm(['--url', server.url, '--connections', '30', '--hold', '20s']);
    await run.started;
    assert.ok(await eventually(async () => sumOf(await server.scrape(), 'wslab_connections_open', { design: 'uws' }) >= 30, 5000));
    const t0 = Date.now();
    run.child.kill('SIGINT');
    const { code, summary, stderr } = await run.done;
    assert.equal(code, 130, stderr);
    assert.ok(Date.now() - t0 < 3000, 'SIGINT takes effect at once');
    assert.equal(summary!.interrupted, true);
    assert.equal(summary!.heldAtEnd, 30);
  });
});

describe('swarm when one of its workers is killed', () => {
  it('counts what the dead worker held as lost (worker_died), not held: no false summary, exit 2', async () => {
    const srv = await spawnServer('uws');
    try {
      const run = swarm(['--url', srv.url, '--connections', '3000', '--workers', '2', '--hold', '20s', '--source-ips', '127.0.0.2-127.0.0.3',
        '--threshold', 'heldAtEnd>=3000']);
      const { pid } = await run.started as { pid: number };
      assert.ok(await eventually(async () => sumOf(await srv.scrape(), 'wslab_connections_open', { design: 'uws' }) === 3000, 10_000));
      const workers = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).map(Number);
      assert.equal(workers.length, 2);
      await new Promise((r) => setTimeout(r, 1200)); // a worker reports every 0.5 s: its last report has them open
      process.kill(workers[0], 'SIGKILL');
      const { code, stderr, summary } = await run.done;
      assert.equal(code, 2, stderr);
      assert.equal(summary!.heldAtEnd, 1500, `only the living worker held its connections at the end: ${stderr}`);
      assert.equal(summary!.lost.byCause.worker_died, 1500);
      assert.equal(summary!.serverDied, false, 'the server did not die: a worker did');
      assert.match(stderr, /worker 0 died holding 1500 connections \(its last report\): counted as lost \(worker_died\)/);
      assert.match(stderr, /run failed: a worker failed; 1500 held connections were lost/);
    } finally {
      await srv.stop();
    }
  });
});

describe('swarm under a low open-files limit (ulimit -n 1024)', () => {
  const underUlimit = (args: string[]) => new Promise<{ code: number | null; stderr: string }>((resolve) => {
    const child = spawn('bash', ['-c', `ulimit -n 1024 && exec "$0" "$@"`, process.execPath, WSLAB, 'swarm', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    const kill = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.once('exit', (code) => { clearTimeout(kill); resolve({ code, stderr }); });
  });
  let srv: ServerProcess;
  before(async () => { srv = await spawnServer('uws'); });
  after(async () => { await srv?.stop(); });

  it('the default worker count follows the real limit: 3,000 connections held, no EMFILE', async () => {
    const r = await underUlimit(['--url', srv.url, '--connections', '3000', '--hold', '500ms', '--source-ips', '127.0.0.2-127.0.0.5']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /held at end\s+3000/);
    assert.match(r.stderr, /4 workers/);
  });

  it('--workers 1 beyond it: the warning and the EMFILE advice name the real limit, not 20,000', async () => {
    const r = await underUlimit(['--url', srv.url, '--connections', '3000', '--workers', '1', '--hold', '300ms', '--source-ips', '127.0.0.2-127.0.0.3']);
    assert.match(r.stderr, /exceed the ~960 sockets one process may hold under its open-files limit of 1024/);
    assert.match(r.stderr, /first EMFILE: .*\(its open-files limit is 1024, ulimit -n\): add --workers \(each holds at most ~960 sockets/);
    assert.doesNotMatch(r.stderr, /20,000/);
  });
});

describe('swarm when the server dies mid-hold', () => {
  it('reports the lost connections and when, writes the summary, exits 2', async () => {
    const victim = await spawnServer('uws');
    const run = swarm(['--url', victim.url, '--connections', '50', '--hold', '20s']);
    await run.started;
    assert.ok(await eventually(async () => sumOf(await victim.scrape(), 'wslab_connections_open', { design: 'uws' }) === 50, 5000));
    const t0 = Date.now();
    victim.child.kill('SIGKILL');
    const { code, stderr, summary } = await run.done;
    assert.equal(code, 2, stderr);
    assert.ok(Date.now() - t0 < 5000, 'the swarm stops holding once nothing is left open');
    assert.equal(summary!.opened, 50);
    assert.equal(summary!.lost.total, 50);
    assert.equal(summary!.lost.byUrl[victim.url], 50);
    assert.equal(summary!.serverDied, true);
    assert.ok(summary!.lost.firstAtSec! > 0 && summary!.lost.lastAtSec! >= summary!.lost.firstAtSec!);
    assert.match(stderr, /run failed: 50 held connections were lost \(a server died\)/);
    assert.ok(summary!.warnings.some((w) => w.includes(`every connection held to ${victim.url} was lost (50), most without a close frame: the server died`)));
  });
});

describe('swarm option errors', () => {
  const cases: [string, string[], RegExp][] = [
    ['no --url', ['--connections', '1'], /--url: give at least one/],
    ['a non-ws URL', ['--url', 'http://127.0.0.1:1/'], /--url: "http:\/\/127\.0\.0\.1:1\/" must be a ws:\/\/ or wss:\/\/ URL/],
    ['a remote target', ['--url', 'ws://10.1.2.3:8080/'], /not a loopback target: the swarm only loads loopback targets/],
    ['an unknown profile', ['--url', 'ws://127.0.0.1:1/', '--profile', 'busy'], /--profile: "busy" is not one of idle, ping, chatty/],
    ['a bad threshold', ['--url', 'ws://127.0.0.1:1/', '--threshold', 'rtt.p99<5parsecs'], /--threshold "rtt\.p99<5parsecs": "5parsecs" is not a duration/],
    ['an unknown threshold metric', ['--url', 'ws://127.0.0.1:1/', '--threshold', 'speed>3'], /--threshold "speed>3": unknown metric "speed"/],
    ['a duration without unit', ['--url', 'ws://127.0.0.1:1/', '--hold', '10'], /--hold: "10" is not a duration/],
    ['--command without chatty', ['--url', 'ws://127.0.0.1:1/', '--command', 'echo 32'], /--command applies to chatty or slow-reader only/],
    ['a bad command', ['--url', 'ws://127.0.0.1:1/', '--profile', 'chatty', '--command', 'wait forever'], /--command: "wait forever" is not/],
    ['a reversed range', ['--url', 'ws://127.0.0.1:1/', '--source-ips', '127.0.0.9-127.0.0.2'], /--source-ips: "127\.0\.0\.9-127\.0\.0\.2" ends before it starts/],
    ['zero connections', ['--url', 'ws://127.0.0.1:1/', '--connections', '0'], /--connections: "0" must be a whole number from 1/],
    ['an unknown flag', ['--url', 'ws://127.0.0.1:1/', '--conections', '5'], /Unknown argument/i],
  ];
  it('rejects each with one line on stderr and exit 1, before connecting anything', () => expectUsageErrors(swarm, cases));
});
