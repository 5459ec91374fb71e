/**
 * bench/soak: does a design hold idle connections for an hour? For each design, `--servers` fresh server processes
 * (one process holds at most ~19,900 sockets here) and one `wslab swarm --profile ping` holding `--connections` over
 * them for `--duration`, pinging every `--interval`. Every `--every` the servers' /metrics are scraped (did each
 * answer? what does its open gauge say?) and their process trees' RSS read. Prints JSON: connections lost (the
 * swarm's summary), scrapes failed, the open gauge's lowest and highest reading over the hold, and the RSS slope
 * (least squares, KiB per minute, all servers together) over the samples after `--settle`, with its spread.
 *
 *   npm run bench -- soak --designs uws,ws --connections 100000 --servers 6 --duration 1h
 *   npm run bench -- soak --designs threads --connections 10000 --servers 1 --duration 1h
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { WSLAB, type ServerProcess } from '../lab/processes.js';
import { CONNECTIONS_OPEN } from '../metrics/index.js';
import { sumOf } from '../metrics/exposition.js';
import { BenchFailure, defineBench } from './harness/bench.js';
import { start } from './harness/child.js';
import { designs, designsWhere, duration, integer, sourceIps, type DesignRun } from './harness/options.js';
import { startServer, treeOf } from './harness/server.js';

export const bench = defineBench({
  name: 'soak',
  describe: 'idle connections with pings held for a long time: lost, /metrics answered, server RSS slope',
  options: {
    designs: designs(designsWhere((d) => d.model === 'loop'), 'designs to soak, one after the other'),
    connections: integer(100_000, 1, 1_000_000, 'idle connections held, spread over the servers'),
    servers: integer(6, 1, 64, 'server processes per design (one holds at most ~19,900 here)'),
    duration: duration('1h', 'how long to hold them, e.g. 1h, 10m'),
    interval: duration('30s', 'ping interval per connection'),
    every: duration('10s', 'how often to scrape /metrics and read RSS'),
    settle: duration('10m', 'the RSS slope is fitted from this long after the hold began'),
    'source-ips': sourceIps('127.0.0.2-127.0.0.60', 'source addresses for the swarm'),
  },
  async run(o, report) {
    if (o.connections > o.servers * 19_000) throw new BenchFailure(`--connections ${o.connections} over ${o.servers} servers: at most 19,000 each here (add --servers)`);
    if (o.settle >= o.duration) throw new BenchFailure('--settle must be shorter than --duration');
    const results = [];
    for (const run of o.designs) {
      const r = await soak(run, o);
      results.push(r);
      report.line(r);
    }
    report.result({ bench: 'soak', command: report.command, node: process.version, results });
  },
});
type Opts = Parameters<typeof bench.run>[0];

interface Sample { atSec: number; rssBytes: number; open: number; scrapesFailed: number }

/** Least-squares slope of y over x, the residuals' standard deviation and the slope's standard error. */
function fit(xs: number[], ys: number[]): { slope: number; sd: number; se: number } {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  const sxx = xs.reduce((a, x) => a + (x - mx) ** 2, 0);
  const slope = sxx > 0 ? xs.reduce((a, x, i) => a + (x - mx) * (ys[i] - my), 0) / sxx : 0;
  const sd = Math.sqrt(ys.reduce((a, y, i) => a + (y - (my + slope * (xs[i] - mx))) ** 2, 0) / Math.max(1, n - 2));
  return { slope, sd, se: sxx > 0 ? sd / Math.sqrt(sxx) : NaN };
}

async function soak(run: DesignRun, o: Opts): Promise<Record<string, unknown>> {
  const loadBefore = loadavg()[0];
  const servers: ServerProcess[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'wslab-soak-'));
  try {
    // idle timeout off: the pings are the traffic, and a server's own timeout is not what a soak measures
    for (let i = 0; i < o.servers; i++) servers.push(await startServer(run, ['--idle-timeout', '0']));
    await sleep(1000);
    const summaryFile = join(dir, 'summary.json');
    const swarm = start([WSLAB, 'swarm', ...servers.flatMap((s) => ['--url', s.url]), '--connections', String(o.connections),
      '--profile', 'ping', '--interval', `${o.interval}ms`, '--hold', `${o.duration}ms`, '--handshake-timeout', '30s',
      ...(o['source-ips'].text ? ['--source-ips', o['source-ips'].text] : []), '--summary', summaryFile]);
    await swarm.nextLine();
    const exited = new Promise<number | null>((r) => swarm.child.once('exit', (code) => r(code)));
    let ended = false;
    void exited.then(() => { ended = true; });
    const samples: Sample[] = [];
    const t0 = performance.now();
    let scrapesFailed = 0, scrapes = 0;
    while (!ended) {
      let open = 0;
      for (const s of servers) {
        scrapes++;
        try {
          open += sumOf(await s.scrape(), CONNECTIONS_OPEN.name);
        } catch {
          scrapesFailed++;
        }
      }
      const rssBytes = servers.reduce((a, s) => a + treeOf(s).rssBytes, 0);
      samples.push({ atSec: (performance.now() - t0) / 1000, rssBytes, open, scrapesFailed });
      await Promise.race([sleep(o.every), exited]);
    }
    const code = await exited;
    if (!existsSync(summaryFile)) throw new BenchFailure(`${run.label}: the swarm exited ${code} without a summary`);
    const s = JSON.parse(readFileSync(summaryFile, 'utf8')) as { opened: number; heldAtEnd: number; lost: { total: number }; failed: { total: number }; connectRatePerSec: number };
    // the hold began once every connection was up: from the first sample that saw them all
    const full = samples.find((x) => x.open >= s.opened);
    const from = (full?.atSec ?? 0) + o.settle / 1000;
    const tail = samples.filter((x) => x.atSec >= from && x.open > 0);
    const { slope, sd, se } = tail.length >= 3 ? fit(tail.map((x) => x.atSec / 60), tail.map((x) => x.rssBytes / 1024)) : { slope: NaN, sd: NaN, se: NaN };
    const minutes = tail.length >= 2 ? (tail.at(-1)!.atSec - tail[0].atSec) / 60 : 0;
    const held = samples.filter((x) => full && x.atSec >= full.atSec && x.open > 0).map((x) => x.open);
    return {
      design: run.label, connections: o.connections, servers: o.servers, durationSec: o.duration / 1000, pingIntervalSec: o.interval / 1000,
      loadavgBefore: loadBefore, loadavgAfter: loadavg()[0], swarmExit: code,
      // the swarm's own lines ("wslab swarm: worker 3 did not finish closing …") and its warnings: why it failed
      ...(code === 0 ? {} : { swarmSaid: swarm.stderrTail().split('\n').filter((l) => /^wslab swarm:|warning|FAILED/.test(l)).slice(-10) }),
      opened: s.opened, failed: s.failed.total, lost: s.lost.total, heldAtEnd: s.heldAtEnd, connectRatePerSec: s.connectRatePerSec,
      scrapes, scrapesFailed, openGauge: { min: held.length ? Math.min(...held) : null, max: held.length ? Math.max(...held) : null },
      rss: {
        startMiB: tail.length ? +(tail[0].rssBytes / 2 ** 20).toFixed(1) : null, endMiB: tail.length ? +(tail.at(-1)!.rssBytes / 2 ** 20).toFixed(1) : null,
        slopeKiBPerMin: Number.isFinite(slope) ? +slope.toFixed(1) : null, slopeStdErrKiBPerMin: Number.isFinite(se) ? +se.toFixed(2) : null,
        residualSdKiB: Number.isFinite(sd) ? +sd.toFixed(1) : null,
        // the fitted growth over the whole window, against the samples' own scatter: "within noise" when it is smaller
        driftKiB: Number.isFinite(slope) ? +(slope * minutes).toFixed(0) : null,
        withinNoise: Number.isFinite(slope) ? Math.abs(slope * minutes) <= 2 * sd : null,
        fittedFromSec: +from.toFixed(0), fittedMinutes: +minutes.toFixed(1), samples: tail.length,
        // one reading a minute over the whole run, to see whether a slope levels off
        byMinuteMiB: samples.filter((x, i) => i === 0 || Math.floor(x.atSec / 60) > Math.floor(samples[i - 1].atSec / 60)).map((x) => +(x.rssBytes / 2 ** 20).toFixed(1)),
      },
    };
  } finally {
    await Promise.all(servers.map((x) => x.stop()));
    rmSync(dir, { recursive: true, force: true });
  }
}
