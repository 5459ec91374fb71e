import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import * as hdr from 'hdr-histogram-js';
import { mergeSummaries } from '../../client/merge.js';
import { latencyHistogram } from '../../client/profiles.js';
import { latencyMs, summaryTable, type HealthySummary, type Summary } from '../../client/recorder.js';
import { SWARM_CAUSES } from '../../metrics/swarm.js';
import { WSLAB } from '../../lab/processes.js';

const zeroCauses = () => Object.fromEntries(SWARM_CAUSES.map((c) => [c, 0])) as Summary['failed'];

/** A shard's summary whose connect latencies are `connectUs` and round trips `rttUs` (microseconds). */
function shardSummary(index: number, of: number, totalTarget: number, opts: { target: number; connectUs: number[]; rttUs: number[]; startedAtMs: number; lost?: number; lostAtSec?: number }): Summary {
  const connect = latencyHistogram();
  for (const v of opts.connectUs) connect.recordValue(v);
  const rtt = latencyHistogram();
  for (const v of opts.rttUs) rtt.recordValue(v);
  const lost = opts.lost ?? 0;
  return {
    target: opts.target, opened: opts.connectUs.length,
    failed: { ...zeroCauses(), ECONNREFUSED: opts.target - opts.connectUs.length, total: opts.target - opts.connectUs.length },
    lost: { total: lost, byCause: { ...zeroCauses(), ECONNRESET: lost }, byUrl: { 'ws://198.18.0.1:8080/': lost }, firstAtSec: lost ? opts.lostAtSec! : null, lastAtSec: lost ? opts.lostAtSec! : null },
    peakOpen: opts.connectUs.length, heldAtEnd: opts.connectUs.length - lost,
    connectRatePerSec: 1000, connectLatencyMs: latencyMs(connect), rttMs: { ...latencyMs(rtt), count: rtt.totalCount },
    messages: { sent: opts.rttUs.length, received: opts.rttUs.length, errors: 0, pushed: 0, pingsSent: 0, pongsReceived: 0 },
    attribution: null, reconnect: null,
    client: { rssBytes: 100e6 + opts.target * 1000, baselineRssBytes: 100e6, bytesPerConnection: 1000, cpuSeconds: 1.5, workers: 1, maxEventLoopDelayMs: 10 + index, maxCpuPercent: 20 + index },
    server: null, box: null, durationSec: 10, warnings: index === 1 ? ['something'] : [], interrupted: false, serverDied: false, misunderstood: false,
    shard: { index, of, totalTarget },
    clock: { startedAtMs: opts.startedAtMs, firstAttemptAtMs: opts.startedAtMs + 1, lastOpenedAtMs: opts.startedAtMs + 1001 },
    histograms: { connectUs: hdr.encodeIntoCompressedBase64(connect), rttUs: hdr.encodeIntoCompressedBase64(rtt), probeRttUs: null },
    merged: null,
    profiles: {
      chatty: {
        role: 'healthy', target: opts.target, startAfterSec: 0, attempted: opts.target, opened: opts.connectUs.length,
        failed: opts.target - opts.connectUs.length, heldAtEnd: opts.connectUs.length - lost, deflated: null, connectLatencyMs: latencyMs(connect),
        lost, connectSuccessRate: opts.connectUs.length / opts.target, requestsDue: opts.target * 5, repliesOk: opts.rttUs.length,
        servedRate: opts.rttUs.length / (opts.target * 5), rttMs: { ...latencyMs(rtt), count: rtt.totalCount },
        replyErrors: 0, unmatched: 0, push: null,
      },
    },
    probe: null,
  };
}

/** `part` as probed with --probe ping: `sent` probes, `ok` of them answered, each in `rttUs`. */
function withProbe(part: Summary, sent: number, ok: number, rttUs: number): Summary {
  const h = latencyHistogram();
  for (let i = 0; i < ok; i++) h.recordValue(rttUs);
  const { p50, p99, max } = latencyMs(h);
  return {
    ...part, histograms: { ...part.histograms, probeRttUs: hdr.encodeIntoCompressedBase64(h) },
    probe: { mode: 'ping', intervalSec: 0.5, sent, ok, available: ok / sent, failingSec: (sent - ok) / 2, firstFailAtSec: ok < sent ? 1.5 : null,
      backAtSec: ok < sent ? 3 : null, rttMs: { p50, p99, max } },
  };
}

const range = (n: number, f: (i: number) => number): number[] => Array.from({ length: n }, (_, i) => f(i));

// Three very different shards: averaging their percentiles would be far from the percentiles of all values.
const T0 = 1_800_000_000_000;
const values = [
  { connectUs: range(100, (i) => 1000 + i), rttUs: range(500, () => 2000) },
  { connectUs: range(100, (i) => 5000 + i * 10), rttUs: range(10, () => 900_000) },
  { connectUs: range(99, (i) => 200_000 + i), rttUs: [] },
];
const parts = values.map((v, i) => shardSummary(i, 3, 301, { target: 100 + (i === 0 ? 1 : 0), ...v, startedAtMs: T0 + i * 2000, lost: i === 2 ? 4 : 0, lostAtSec: 3 }));

describe('wslab swarm merge: the summary of the shards of one run', () => {
  const m = mergeSummaries(parts.map((summary, i) => ({ name: `s${i}.json`, summary })));

  it('adds the counts', () => {
    assert.equal(m.target, 301);
    assert.equal(m.opened, 299);
    assert.equal(m.failed.ECONNREFUSED, 2);
    assert.equal(m.failed.total, 2);
    assert.equal(m.heldAtEnd, 295);
    assert.equal(m.lost.total, 4);
    assert.equal(m.lost.byUrl['ws://198.18.0.1:8080/'], 4);
    assert.equal(m.messages.sent, 510);
    assert.equal(m.client.workers, 3);
    assert.equal(m.client.cpuSeconds, 4.5);
    assert.equal(m.client.maxCpuPercent, 22);
    assert.deepEqual(m.merged, { summaries: 3, shards: ['0/3', '1/3', '2/3'] });
    assert.equal(m.shard, null);
    const chatty = m.profiles.chatty as HealthySummary;
    assert.deepEqual([chatty.target, chatty.attempted, chatty.opened, chatty.heldAtEnd, chatty.lost, chatty.requestsDue, chatty.repliesOk], [301, 301, 299, 295, 4, 1505, 510]);
    assert.equal(chatty.servedRate, 510 / 1505, 'served = replies ÷ requests due over every shard, not an average of rates');
    assert.deepEqual(chatty.rttMs, m.rttMs, "one group: the group's round trips are the run's");
  });

  it('refuses a --mix summary (several groups) and shards of different profiles', () => {
    const mix = { ...parts[1], profiles: { ...parts[1].profiles, slowloris: parts[1].profiles.chatty } };
    assert.throws(() => mergeSummaries([{ name: 'a', summary: parts[0] }, { name: 'b', summary: mix }]), /b: a --mix run \(chatty, slowloris\)/);
    const ping = { ...parts[1], profiles: { ping: parts[1].profiles.chatty } };
    assert.throws(() => mergeSummaries([{ name: 'a', summary: parts[0] }, { name: 'b', summary: ping }]), /profiles differ \(chatty, ping\)/);
  });

  it('merges the histograms: percentiles of all values, not averages of percentiles', () => {
    const all = latencyHistogram();
    for (const v of values.flatMap((x) => x.connectUs)) all.recordValue(v);
    const { max, ...percentiles } = latencyMs(all);
    assert.deepEqual({ ...m.connectLatencyMs, max: undefined }, { ...percentiles, max: undefined });
    // an added histogram keeps max at its bucket's top: equal within HDR's 3 significant digits
    assert.ok(Math.abs(m.connectLatencyMs.max! - max!) / max! < 1e-3, `max ${m.connectLatencyMs.max} vs ${max}`);
    assert.equal(m.rttMs.count, 510);
    assert.ok(m.rttMs.p50! >= 1.99 && m.rttMs.p50! <= 2.01, `rtt p50 ${m.rttMs.p50}`);
    assert.ok(m.rttMs.p99! > 800, `rtt p99 ${m.rttMs.p99}: the slow shard's round trips count`);
    const averaged = parts.reduce((a, p) => a + p.connectLatencyMs.p50!, 0) / 3;
    assert.ok(Math.abs(m.connectLatencyMs.p50! - averaged) > 10, 'p50 equals the average of the shards\' p50s');
    assert.equal(hdr.decodeFromCompressedBase64(m.histograms.connectUs).totalCount, 299);
  });

  it('puts instants on one time line', () => {
    assert.equal(m.clock.startedAtMs, T0);
    assert.equal(m.durationSec, 14, 'the last shard started 4 s later and ran 10 s');
    assert.equal(m.lost.firstAtSec, 7, 'shard 2 lost at its 3 s, which is 7 s into the run');
    assert.equal(m.connectRatePerSec, Math.round(299 / 5), 'opened ÷ (last open of any shard − first attempt of any)');
    assert.deepEqual(m.warnings, ['shard 1/3: something']);
  });

  it('adds the probes: sent and ok add, available is their ratio again, the time fields are null with a warning', () => {
    const probed = mergeSummaries([withProbe(parts[0], 20, 20, 1000), withProbe(parts[1], 20, 14, 3000), withProbe(parts[2], 20, 20, 1000)]
      .map((summary, i) => ({ name: `p${i}.json`, summary })));
    assert.deepEqual({ ...probed.probe, rttMs: undefined }, {
      mode: 'ping', intervalSec: 0.5, sent: 60, ok: 54, available: 0.9, failingSec: null, firstFailAtSec: null, backAtSec: null, rttMs: undefined,
    });
    assert.ok(probed.probe!.rttMs.max! >= 2.99 && probed.probe!.rttMs.p50! <= 1.01, JSON.stringify(probed.probe!.rttMs));
    assert.ok(probed.warnings.includes('probe: failingSec, firstFailAtSec and backAtSec are not merged (each swarm probed on its own time line); sent and ok added'), probed.warnings.join('\n'));
    assert.match(summaryTable(probed), /\n {2}probe +ping every 0\.5 s: 54\/60 answered \(90\.0 %\), 6 failing \(times not merged\), rtt p99 3 ms\n/);
    assert.equal(m.probe, null, 'no probe in any shard: null');
    assert.throws(() => mergeSummaries([{ name: 'a', summary: withProbe(parts[0], 4, 4, 1000) }, { name: 'b', summary: parts[1] }]), /b has no probe but a has \(--probe ping\)/);
  });

  it('warns about a missing shard; refuses a shard twice and shards of different runs', () => {
    const partial = mergeSummaries([{ name: 'a', summary: parts[0] }, { name: 'c', summary: parts[2] }]);
    assert.match(partial.warnings[0], /shard 1 of 3 missing: this merge covers 201 of the run's 301 connections/);
    assert.throws(() => mergeSummaries([{ name: 'a', summary: parts[0] }, { name: 'b', summary: parts[0] }]), /b and a are both shard 0\/3/);
    const other = { ...parts[1], shard: { index: 1, of: 4, totalTarget: 301 } };
    assert.throws(() => mergeSummaries([{ name: 'a', summary: parts[0] }, { name: 'b', summary: other }]), /not the same run/);
    const plain = { ...parts[1], shard: null };
    assert.throws(() => mergeSummaries([{ name: 'a', summary: parts[0] }, { name: 'b', summary: plain }]), /b is not a shard but a is/);
  });
});

describe('wslab swarm merge (the CLI)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wslab-merge-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const files = parts.map((p, i) => {
    const f = join(dir, `s${i}.json`);
    writeFileSync(f, JSON.stringify(p));
    return f;
  });
  const merge = (args: string[]) => spawnSync(process.execPath, [WSLAB, 'swarm', 'merge', ...args], { encoding: 'utf8', timeout: 15_000 });

  it('writes the merged summary, prints the table, checks thresholds on the merge', () => {
    const out = join(dir, 'merged.json');
    const ok = merge([...files, '--out', out, '--threshold', 'opened==299', '--threshold', 'connect.max>150ms']);
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stderr, /wslab swarm merge: 3 summaries/);
    assert.match(ok.stderr, /threshold passed: opened==299/);
    assert.equal((JSON.parse(readFileSync(out, 'utf8')) as Summary).opened, 299);
    const failing = merge([...files, '--threshold', 'heldAtEnd==301']);
    assert.equal(failing.status, 99, failing.stderr);
    assert.equal((JSON.parse(failing.stdout) as Summary).heldAtEnd, 295, 'without --out the merge goes to stdout');
  });

  it('bad input: one line naming the file, exit 1', () => {
    const old = join(dir, 'old.json');
    const { histograms: _h, ...withoutHistograms } = parts[0];
    writeFileSync(old, JSON.stringify(withoutHistograms));
    const notJson = join(dir, 'x.txt');
    writeFileSync(notJson, 'hello');
    for (const [args, pattern] of [
      [[old], /old\.json: has no histograms or clock \(written by an older wslab\)/],
      [[notJson], /x\.txt: not JSON/],
      [[join(dir, 'missing.json')], /missing\.json: cannot read it \(ENOENT\)/],
      [[files[0], files[0]], /are both shard 0\/3/],
      [[files[0], '--url', 'ws://127.0.0.1:1/'], /Unknown argument: url/],
      [[files[0], '--out', join(dir, 'no', 'such', 'dir', 'm.json')], /--out: the directory of ".*m\.json" does not exist/],
    ] as [string[], RegExp][]) {
      const r = merge(args);
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, pattern);
      assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
    }
  });
});
