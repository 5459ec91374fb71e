import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { AttackSummary, HealthySummary, Summary } from '../../client/recorder.js';
import { ATTACK_PROFILES } from '../../client/options.js';
import { eventually, spawnServer, startSwarm, type ServerProcess } from '../../lab/processes.js';
import { parseExposition, sumOf } from '../../metrics/exposition.js';
import { readTreeStatus } from '../../metrics/proc-status.js';
import { DESIGN_CASES } from '../helpers/designs.js';

/*
 * Every attack profile against every design of the registry (its first case: the design's defaults), all profiles
 * at once in one --mix, with a healthy group joining during the attack. Each profile ends with its own close
 * reason on the server, so the counts are told apart even though they run together. The servers get short
 * timeouts and a small send cap so the defences act within the test's few seconds.
 *
 * Source addresses of their own: a big measurement elsewhere on this machine may use most of 127.0.0.1's ports.
 */
const dir = mkdtempSync(join(tmpdir(), 'wslab-attacks-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const SOURCES = ['--source-ips', '127.0.41.1-127.0.41.8'];

async function swarm(args: string[]): Promise<{ code: number | null; summary: Summary; stderr: string; metricsUrl: string | null; run: Awaited<ReturnType<typeof startSwarm>> }> {
  const run = await startSwarm([...SOURCES, ...args], join(dir, `summary-${n++}.json`));
  const kill = setTimeout(() => run.child.kill('SIGKILL'), 30_000);
  const { code, summary, stderr } = await run.done;
  clearTimeout(kill);
  return { code, summary: summary as unknown as Summary, stderr, metricsUrl: run.metricsUrl, run };
}

/** The WebSocket-layer attacks (fragment-pin, deflate-bomb) have their own file, with a server per defence: ws-layer-attacks.test.ts. */
const WS_LAYER = ['fragment-pin', 'deflate-bomb'] as const;
const COUNTS: Record<Exclude<(typeof ATTACK_PROFILES)[number], (typeof WS_LAYER)[number]>, number> = {
  slowloris: 50, 'slow-reader': 20, 'slow-frame': 20, 'no-pong': 20, 'ping-flood': 5, oversize: 20, garbage: 20, 'conn-flood': 100,
};
const MIX = [...Object.entries(COUNTS).map(([p, count]) => `${p}:${count}`), 'chatty:10@2s'].join(',');
/**
 * Growth of the server's process tree RSS allowed over its RSS at start, sampled through the attack. Measured on this
 * machine with this mix: +27 MiB for ws with the 64 KiB send cap, +180 MiB with the cap at 1 GiB (no cap in effect).
 */
const RSS_GROWTH_CEILING = 64 * 1024 * 1024;
/** One case per design of the registry: its first, the design's defaults (cluster: 2 workers of uws). */
const CASES = DESIGN_CASES.filter((c, i, all) => all.findIndex((x) => x.design === c.design) === i);

for (const c of CASES) {
  describe(`every attack profile against ${c.label}`, () => {
    it('the server survives, counts each close reason, keeps its memory bounded, and serves healthy clients', async () => {
      const server: ServerProcess = await spawnServer(c.design, [...c.flags, '--idle-timeout', '2s', '--max-backpressure', '64KiB',
        ...(c.handshakeTimeoutFlag ? ['--handshake-timeout', '1s'] : [])]);
      try {
        const baselineRss = readTreeStatus(server.pid).rssBytes;
        let peakRss = 0;
        const sampler = setInterval(() => { peakRss = Math.max(peakRss, readTreeStatus(server.pid).rssBytes); }, 200);
        const { code, summary, stderr } = await swarm(['--url', server.url, '--mix', MIX, '--hold', '2s', '--dribble-interval', '200ms', '--interval', '500ms']);
        clearInterval(sampler);
        assert.equal(code, 0, stderr);
        const p = summary.profiles as Record<string, AttackSummary> & { chatty: HealthySummary };
        const closed = async (reason: string): Promise<number> => sumOf(await server.scrape(), 'wslab_connections_closed_total', { design: c.design, reason });

        // healthy clients that arrived 2 s into the attack were accepted and answered
        assert.equal(p.chatty.connectSuccessRate, 1, JSON.stringify(p.chatty));
        assert.ok(p.chatty.servedRate! >= 0.9, `served ${p.chatty.servedRate}`);

        assert.equal(p.oversize.outcomes.held, 0, JSON.stringify(p.oversize));
        assert.equal(p.garbage.outcomes.held, 0, JSON.stringify(p.garbage));
        assert.equal(p['no-pong'].closeCodes['1001'], COUNTS['no-pong'], JSON.stringify(p['no-pong']));
        assert.equal(p['conn-flood'].outcomes.dropped, COUNTS['conn-flood']);
        assert.ok(await eventually(async () => await closed('idle_timeout') >= COUNTS['no-pong'], 3000), 'no-pong: idle_timeout');
        assert.ok(await eventually(async () => await closed('backpressure') === COUNTS['slow-reader'], 3000), `slow-reader: backpressure ${await closed('backpressure')}`);
        if (c.uwsFrames) {
          // docs/protocol.md: uWS ends TCP without a close frame on an oversize or malformed frame (counted `error`),
          // and its fixed 10 s handshake timeout is invisible to JS: the slowloris are still held after 4 s.
          assert.ok(await closed('error') >= COUNTS.oversize + COUNTS.garbage);
          assert.equal(p.slowloris.outcomes.held, COUNTS.slowloris);
        } else {
          assert.equal(await closed('too_big'), COUNTS.oversize);
          assert.equal(await closed('protocol_error'), COUNTS.garbage);
          assert.equal(await closed('handshake_timeout'), COUNTS.slowloris);
          assert.equal(p.oversize.closeCodes['1009'], COUNTS.oversize);
          assert.equal(p.garbage.closeCodes['1002'], COUNTS.garbage);
          assert.equal(p.slowloris.outcomes.ended + p.slowloris.outcomes.reset, COUNTS.slowloris, JSON.stringify(p.slowloris));
          assert.ok(p.slowloris.timeToCutMs.p50! >= 900 && p.slowloris.timeToCutMs.p50! < 3000, `slowloris cut at ${p.slowloris.timeToCutMs.p50} ms`);
        }

        // still alive, bounded, and serving a new healthy client after the attack
        assert.equal(server.child.exitCode, null, server.stderr());
        peakRss = Math.max(peakRss, readTreeStatus(server.pid).rssBytes);
        const mib = (b: number): string => `${(b / 2 ** 20).toFixed(0)} MiB`;
        assert.ok(peakRss - baselineRss < RSS_GROWTH_CEILING, `server RSS grew from ${mib(baselineRss)} to ${mib(peakRss)}`);
        const healthy = await swarm(['--url', server.url, '--profile', 'chatty', '--connections', '5', '--interval', '200ms', '--hold', '500ms']);
        assert.equal(healthy.code, 0, healthy.stderr);
        assert.equal((healthy.summary.profiles.chatty as HealthySummary).servedRate, 1);
      } finally {
        await server.stop();
      }
    });
  });
}

describe('--mix: the per-profile summary and the attack metrics', () => {
  it('slowloris first, healthy clients 1 s later: outcomes, close codes, served rate, wslab_swarm_attack_* series', async () => {
    const server = await spawnServer('ws', ['--handshake-timeout', '1s', '--idle-timeout', '1s']);
    try {
      const run = await startSwarm([...SOURCES, '--url', server.url, '--mix', 'slowloris:20,no-pong:5,chatty:10@1s', '--interval', '100ms',
        '--hold', '2500ms', '--dribble-interval', '100ms', '--dribble-bytes', '2', '--threshold', 'profiles.chatty.servedRate>=1',
        '--threshold', 'profiles.slowloris.outcomes.held==0'], join(dir, `summary-${n++}.json`));
      const scrape = async (): Promise<ReturnType<typeof parseExposition>> => parseExposition(await (await fetch(run.metricsUrl!)).text());
      const outcome = async (profile: string): Promise<number> => sumOf(await scrape(), 'wslab_swarm_attack_outcomes_total', { profile });
      assert.ok(await eventually(async () => await outcome('slowloris') === 20 && await outcome('no-pong') === 5, 6000), 'attack outcomes never reached 20 + 5');
      const m = await scrape();
      assert.equal(sumOf(m, 'wslab_swarm_attack_time_to_cut_seconds_count', { profile: 'slowloris' }), 20);
      assert.equal(sumOf(m, 'wslab_swarm_attack_close_codes_total', { profile: 'no-pong', code: '1001' }), 5);
      assert.equal(sumOf(m, 'wslab_swarm_attackers_held', { profile: 'slowloris' }), 0);
      const { code, summary: s, stderr } = await run.done;
      assert.equal(code, 0, stderr);
      const summary = s as unknown as Summary;
      // the top-level keys in their documented order (docs/swarm-summary.md): `server` is --server-pid's, `profiles` the groups'
      assert.deepEqual(Object.keys(summary), ['target', 'opened', 'failed', 'lost', 'peakOpen', 'heldAtEnd', 'connectRatePerSec', 'connectLatencyMs',
        'rttMs', 'messages', 'client', 'server', 'box', 'durationSec', 'warnings', 'interrupted', 'serverDied', 'misunderstood', 'shard', 'clock', 'histograms', 'merged', 'profiles', 'probe', 'attribution', 'reconnect']);
      assert.equal(summary.target, 35);
      assert.deepEqual(Object.keys(summary.profiles), ['slowloris', 'no-pong', 'chatty']);
      const chatty = summary.profiles.chatty as HealthySummary;
      assert.equal(chatty.role, 'healthy');
      assert.equal(chatty.startAfterSec, 1);
      assert.equal(chatty.attempted, 10);
      assert.equal(chatty.opened, 10);
      assert.equal(chatty.heldAtEnd, 10);
      assert.equal(chatty.connectSuccessRate, 1);
      assert.ok(chatty.requestsDue >= 10 * 20, `due ${chatty.requestsDue}`);
      assert.equal(chatty.repliesOk, chatty.requestsDue);
      assert.equal(chatty.servedRate, 1);
      assert.equal(chatty.rttMs.count, chatty.repliesOk);
      const slowloris = summary.profiles.slowloris as AttackSummary;
      assert.equal(slowloris.role, 'attack');
      assert.equal(slowloris.attempted, 20);
      assert.equal(slowloris.opened, 0);
      assert.deepEqual({ ...slowloris.outcomes, ended: 0, reset: 0 }, { held: 0, closed: 0, ended: 0, reset: 0, rejected: 0, failed: 0, dropped: 0 });
      assert.equal(slowloris.outcomes.ended + slowloris.outcomes.reset, 20);
      assert.equal(slowloris.timeToCutMs.count, 20);
      assert.ok(slowloris.bytesSent >= 20 * 2 * 5, `bytes ${slowloris.bytesSent}`);
      const noPong = summary.profiles['no-pong'] as AttackSummary;
      assert.deepEqual(noPong.closeCodes, { 1001: 5 });
      assert.equal(noPong.outcomes.closed, 5);
      // attackers cut by the server are outcomes, not lost connections
      assert.equal(summary.lost.total, 0);
      assert.equal(sumOf(await server.scrape(), 'wslab_connections_closed_total', { design: 'ws', reason: 'handshake_timeout' }), 20);
    } finally {
      await server.stop();
    }
  });

  it('threads --pool 4: four slowloris hold every worker, and healthy clients arriving after them are not served', async () => {
    const server = await spawnServer('threads', ['--pool', '4', '--handshake-timeout', '3s']);
    try {
      const { code, summary, stderr } = await swarm(['--url', server.url, '--mix', 'slowloris:4,chatty:4@500ms', '--handshake-timeout', '1500ms',
        '--hold', '500ms', '--interval', '100ms']);
      assert.equal(code, 0, stderr);
      const chatty = summary.profiles.chatty as HealthySummary;
      assert.equal(chatty.attempted, 4);
      assert.equal(chatty.opened, 0, JSON.stringify(chatty));
      assert.equal(chatty.connectSuccessRate, 0);
      assert.equal(chatty.servedRate, 0);
      assert.equal(summary.failed.handshake_timeout, 4);
      assert.equal((summary.profiles.slowloris as AttackSummary).outcomes.held, 4);
      // the warning names what happened (nothing opened), not a server that does not understand the requests
      assert.ok(summary.warnings.some((w) => /^none of the 4 chatty connections opened, so none of \d+ requests due was sent/.test(w)), JSON.stringify(summary.warnings));
      assert.ok(!summary.warnings.some((w) => /does the server answer/.test(w)), JSON.stringify(summary.warnings));
    } finally {
      await server.stop();
    }
  });
});

describe('attack option errors', () => {
  const cases: [string, string[], RegExp][] = [
    ['a remote target', ['--url', 'ws://10.1.2.3:8080/', '--profile', 'slowloris'], /--url: "ws:\/\/10\.1\.2\.3:8080\/" is not a loopback target: the swarm only loads loopback targets/],
    ['a malformed mix', ['--url', 'ws://127.0.0.1:1/', '--mix', 'slowloris=5'], /--mix: "slowloris=5" is not <profile>:<connections>\[@<delay>\]/],
    ['an unknown mix profile', ['--url', 'ws://127.0.0.1:1/', '--mix', 'evil:3'], /--mix: "evil" is not one of idle, ping, chatty, slowloris/],
    ['a profile twice', ['--url', 'ws://127.0.0.1:1/', '--mix', 'chatty:1,chatty:2'], /--mix: chatty appears twice/],
    ['a bad delay', ['--url', 'ws://127.0.0.1:1/', '--mix', 'chatty:1@soon'], /--mix: "soon" is not a duration/],
    ['--mix with --connections', ['--url', 'ws://127.0.0.1:1/', '--mix', 'chatty:1', '--connections', '5'], /--connections does not combine with --mix/],
    ['--read-rate without slow-reader', ['--url', 'ws://127.0.0.1:1/', '--profile', 'oversize', '--read-rate', '1KiB'], /--read-rate applies to slow-reader only \(this run is oversize\)/],
    ['a bad read rate', ['--url', 'ws://127.0.0.1:1/', '--profile', 'slow-reader', '--read-rate', 'fast'], /--read-rate: "fast" is not a size/],
    ['a too short dribble', ['--url', 'ws://127.0.0.1:1/', '--profile', 'slowloris', '--dribble-interval', '1ms'], /--dribble-interval: must be at least 10ms/],
    ['a threshold on a profile not in the run', ['--url', 'ws://127.0.0.1:1/', '--profile', 'chatty', '--threshold', 'profiles.slowloris.outcomes.held==0'], /--threshold "profiles\.slowloris\.outcomes\.held==0": no slowloris group in this run \(chatty\)/],
    ['a zero declared size', ['--url', 'ws://127.0.0.1:1/', '--profile', 'oversize', '--declared-size', '0'], /--declared-size: must be from 1 byte/],
  ];
  it('rejects each with one line on stderr and exit 1, before connecting anything', async () => {
    const runs = await Promise.all(cases.map(([, args]) => startSwarm(args, join(dir, `summary-${n++}.json`)).then((r) => r.done)));
    runs.forEach((r, i) => {
      const [label, , pattern] = cases[i];
      assert.equal(r.code, 1, `${label}: ${r.stderr}`);
      assert.equal(r.stderr.trimEnd().split('\n').length, 1, `${label}: ${r.stderr}`);
      assert.match(r.stderr, pattern, label);
      assert.equal(r.summary, null, label);
    });
  });
});
