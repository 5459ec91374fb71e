/**
 * bench/peers: the same idle-hold job — N connections held for 30 s against ONE fresh `wslab serve --design uws`
 * process — run by `wslab swarm`, by Artillery 2 (ws engine, a long `think`) and by Tsung (`ts_websocket`: connect,
 * then a long thinktime), one peer at a time, in one run, for each N.
 *
 *   npm run bench -- peers [--connections 5000,15000] [--peers swarm,artillery,tsung] [--hold 30s]
 *     [--source-ips 127.0.0.2-127.0.0.9] [--artillery PATH] [--tsung PATH] [--out peers.json] [--markdown peers.md]
 *   (every option and its default: `npm run bench -- peers --help`, or `options` below)
 *
 * The parts, by job: bench/peers/process-groups.ts (children in their own groups, killed on any exit),
 * bench/peers/quiet.ts (waiting for a quiet box), bench/peers/peer.ts (what a peer adapter provides) and one adapter
 * per peer (swarm.ts, artillery.ts, tsung.ts), bench/peers/run-one.ts (one run, measured), bench/peers/report.ts.
 *
 * Each peer at the settings that opened fastest here, the same --source-ips for the swarm and Tsung (Artillery's ws
 * engine takes one fixed `localAddress` at most, so it connects from 127.0.0.1; 15,000 fit in one address's ports): the swarm at its own
 * defaults (--rate 20000, --max-pending 300, one worker); Artillery with every arrival in 1 s (--artillery-rate 0);
 * Tsung at 5,000 users/s (--tsung-rate), maxusers = N so one Erlang VM holds them all.
 *
 * Artillery is not a dependency of this project: install it elsewhere and pass its binary with `--artillery` or
 * ARTILLERY_BIN, e.g. `PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --prefix /tmp/peers artillery@2` →
 * `/tmp/peers/node_modules/.bin/artillery`. Tsung is Debian's (`apt-get install tsung`); `--tsung` / TSUNG_BIN.
 * A peer whose binary is missing is reported as not run, with that reason.
 *
 * Measured from outside every peer, the same way for all of them:
 * - held: the SERVER's scraped `wslab_connections_open` (sampled every --ramp-sample, 50 ms, until the ramp ends,
 *   then every --sample, 500 ms) at the middle and at the end of the hold, and its minimum over the hold. A peer's own claim is reported next to it.
 * - the ramp: from the first sample at which the server counts a connection to the first sample at which the gauge
 *   reaches N (or, when it never does, its highest value before it stopped rising for --stall). The open time is
 *   taken between the midpoints of the bracketing samples; `openSecBounds` gives the fastest and slowest ramp the
 *   samples allow. Open rate = connections reached ÷ open time. Peer start-up (process launch, module loading) is
 *   not in the ramp and is reported separately (`startupSec`).
 * - the hold starts when the ramp ends and lasts --hold; every peer is told to hold longer than that (the swarm
 *   --hold + 5 s, Artillery/Tsung --ramp-timeout + --hold + 10 s of think time) and is stopped by the bench after
 *   the window (the swarm finishes on its own and closes cleanly).
 * - client memory: RSS summed over the peer's whole process tree (/proc; Tsung's detached `epmd` daemon is not in
 *   the tree and not counted). Peak during the hold, per connection held at the end of the hold, two ways:
 *   `bytesPerConnMinusBaseline` = (peak − the peer's idle baseline) ÷ held, where the idle baseline is the peak RSS
 *   of a calibration run of the same peer holding ONE connection for 8 s (`--baseline calibrate`, default) or the
 *   RSS of the last sample before the first connection (`--baseline preconnect`); and `bytesPerConnTotal` = peak ÷
 *   held, nothing subtracted.
 * - client CPU: user + system seconds of the whole tree (its processes alive at the end of the hold), from launch to
 *   the end of the hold; `cpuRampSeconds` covers the ramp only.
 * - errors: each peer's own error counters (swarm summary `failed`/`lost`, Artillery `errors.*` and
 *   `vusers.failed` from its periodic reports, Tsung `error_*` from tsung.log), and N − held.
 *
 * - noise: the box is shared, so before each run the bench waits (at most --quiet-wait, default 3 min) until the CPUs
 *   have been under --quiet-below (15 %) busy for 3 s in a row, and reports `otherCpusDuringRamp` / `...DuringHold`:
 *   CPUs' worth of work by anything other than the peer, the server and the bench (/proc/stat minus the three).
 *
 * Every wait is bounded (start-up --startup-timeout, ramp --ramp-timeout, hold --hold, stop 15 s, whole run
 * --deadline); targets are 127.0.0.1 only; every child runs in its own process group and the groups are killed on
 * any exit of this process. JSON goes to stdout (and --out), the markdown table to stderr (and --markdown).
 */
import { writeFileSync } from 'node:fs';
import { outputFile } from '../core/units.js';
import { UsageError } from '../core/errors.js';
import { defineBench } from './harness/bench.js';
import { choice, duration, integer, integers, names, optionalInteger, sourceIps, text } from './harness/options.js';
import { artilleryPeer } from './peers/artillery.js';
import type { Peer, PeerSettings } from './peers/peer.js';
import { round } from './peers/peer.js';
import { guardChildren } from './peers/process-groups.js';
import { peersReport, type PeerInfo, type PeerResult } from './peers/report.js';
import { runOne, type RunResult, type RunSettings } from './peers/run-one.js';
import { swarmPeer } from './peers/swarm.js';
import { tsungPeer } from './peers/tsung.js';

const PEER_NAMES = ['swarm', 'artillery', 'tsung'] as const;
/** the calibration run's hold, in seconds */
const CALIBRATE_HOLD = 8;

export const bench = defineBench({
  name: 'peers',
  describe: 'wslab swarm vs Artillery 2 vs Tsung holding 5,000 and 15,000 idle connections for 30 s against one uws server',
  options: {
    connections: integers('5000,15000', 1, 1_000_000, 'connection counts to hold, one run of every peer each'),
    peers: names(PEER_NAMES.join(','), PEER_NAMES, 'peers to run, in order'),
    hold: duration('30s', 'how long each run holds after its ramp'),
    'source-ips': sourceIps('127.0.0.2-127.0.0.9', 'source addresses for the swarm and Tsung (Artillery connects from 127.0.0.1)'),
    'swarm-rate': optionalInteger(0, 10_000_000, "the swarm's --rate ('' = its default)"),
    'swarm-max-pending': optionalInteger(1, 1_000_000, "the swarm's --max-pending ('' = its default)"),
    'swarm-workers': optionalInteger(1, 256, "the swarm's --workers ('' = its default)"),
    'artillery-rate': integer(0, 0, 1_000_000, 'Artillery arrivals per second (0 = every arrival within 1 s)'),
    'tsung-rate': integer(5000, 1, 1_000_000, 'Tsung users per second'),
    artillery: text(process.env.ARTILLERY_BIN ?? 'artillery', 'the Artillery binary (or ARTILLERY_BIN)'),
    tsung: text(process.env.TSUNG_BIN ?? 'tsung', 'the Tsung binary (or TSUNG_BIN)'),
    baseline: choice('calibrate', ['calibrate', 'preconnect'] as const, "each peer's idle baseline: a 1-connection run, or the RSS before its first connection"),
    'ramp-sample': duration('50ms', 'sampling interval during the ramp'),
    sample: duration('500ms', 'sampling interval during the hold'),
    'startup-timeout': duration('30s', 'longest wait for the first connection after launching a peer'),
    'ramp-timeout': duration('90s', 'longest ramp'),
    stall: duration('10s', 'a ramp ends when the open gauge has not risen for this long'),
    deadline: duration('45m', 'the whole run, after which every child is killed'),
    'quiet-below': {
      describe: 'the busy share of the CPUs under which the box counts as quiet, in (0, 1]', default: '0.15',
      parse(flag: string, t: string | undefined) {
        const share = Number(t);
        if (!(share > 0 && share <= 1)) throw new UsageError(`--${flag}: "${t}" must be a share of the CPUs in (0, 1]`);
        return share;
      },
    },
    'quiet-wait': duration('3m', 'longest wait for a quiet box before each run'),
    markdown: { describe: 'also write the markdown table to this file', default: '', parse: (flag: string, t: string | undefined) => (t ? outputFile(flag, t) : undefined) },
  },
  async run(o, report) {
    guardChildren(o.deadline, `${o.deadline / 1000} s`);
    const CONNECTIONS = o.connections, PEERS = o.peers, HOLD = o.hold / 1000;
    const settings: PeerSettings = {
      sourceIps: o['source-ips'],
      swarm: { rate: o['swarm-rate'], maxPending: o['swarm-max-pending'], workers: o['swarm-workers'] },
      artillery: { bin: o.artillery, rate: o['artillery-rate'] },
      tsung: { bin: o.tsung, rate: o['tsung-rate'] },
    };
    const runSettings: RunSettings = {
      quietBelow: o['quiet-below'], quietWaitSec: o['quiet-wait'] / 1000, startupTimeoutSec: o['startup-timeout'] / 1000,
      rampTimeoutSec: o['ramp-timeout'] / 1000, stallSec: o.stall / 1000, sampleMs: o.sample, rampSampleMs: o['ramp-sample'],
    };
    const PEER: Record<string, Peer> = { swarm: swarmPeer(settings), artillery: artilleryPeer(settings), tsung: tsungPeer(settings) };
    const started = new Date().toISOString();
    const peerInfo: PeerInfo = {};
    for (const p of PEERS) peerInfo[p] = { version: PEER[p].version(), unavailable: PEER[p].unavailable() };

    const baselines: Record<string, number | null> = {};
    if (o.baseline === 'calibrate') {
      for (const p of PEERS) {
        if (peerInfo[p].unavailable) continue;
        process.stderr.write(`bench/peers: ${p}: calibrating the idle baseline (1 connection held ${CALIBRATE_HOLD} s)\n`);
        const r = await runOne(PEER[p], 1, CALIBRATE_HOLD, runSettings);
        baselines[p] = r.held === 1 ? r.rssPeakHoldBytes : null;
        peerInfo[p].baseline = { rssBytes: r.rssPeakHoldBytes, rssAnonBytes: r.rssAnonPeakHoldBytes, held: r.held, processes: r.processes, threads: r.threads, cpuSeconds: r.cpuSeconds, why: r.why };
      }
    }

    const results: PeerResult[] = [];
    for (const n of CONNECTIONS) {
      for (const p of PEERS) {
        const info = peerInfo[p];
        if (info.unavailable) {
          results.push({ peer: p, connections: n, ok: false, why: [`not run: ${info.unavailable}`] } as PeerResult);
          continue;
        }
        process.stderr.write(`bench/peers: ${p}: ${n} connections, hold ${HOLD} s\n`);
        let res: RunResult;
        try { res = await runOne(PEER[p], n, HOLD, runSettings); } catch (e) {
          results.push({ peer: p, connections: n, ok: false, why: [`the run failed: ${(e as Error).message}`] } as PeerResult);
          continue;
        }
        const base = o.baseline === 'calibrate' ? baselines[p] ?? null : res.rssPreconnectBytes;
        const source = base === null ? null : o.baseline === 'calibrate' ? 'calibration run holding 1 connection (peak RSS)' : 'last sample before the first connection';
        results.push({
          ...res, baselineBytes: base, baselineSource: source,
          bytesPerConnMinusBaseline: base !== null && res.rssPeakHoldBytes !== null && res.held ? Math.round((res.rssPeakHoldBytes - base) / res.held) : null,
          bytesPerConnMethod: base !== null ? '(peak RSS during hold − idle baseline) ÷ held' : 'no baseline: total ÷ held only',
          // the other baseline, for comparison: RSS at the last sample before the server saw the first connection
          bytesPerConnMinusPreconnect: res.rssPreconnectBytes !== null && res.rssPeakHoldBytes !== null && res.held ? Math.round((res.rssPeakHoldBytes - res.rssPreconnectBytes) / res.held) : null,
        });
        process.stderr.write(`bench/peers:   held ${res.held}/${n}, open ${res.openRatePerSec}/s, peak RSS ${res.rssPeakHoldBytes !== null ? round(res.rssPeakHoldBytes / 2 ** 20, 1) : '–'} MiB, CPU ${res.cpuSeconds} s${res.why.length ? `; ${res.why.join('; ')}` : ''}\n`);
      }
    }

    const { report: json, md } = peersReport({
      started, command: report.command, connections: CONNECTIONS, peers: PEERS, holdSec: HOLD, rampSampleMs: o['ramp-sample'], sampleMs: o.sample,
      sourceIps: o['source-ips'].ips.length ? o['source-ips'].text : null, baseline: o.baseline,
    }, peerInfo, results);
    report.result(json);
    process.stderr.write(`\n${md}`);
    if (o.markdown) writeFileSync(o.markdown, md);
  },
});
