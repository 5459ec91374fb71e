import { WebSocket } from 'ws';
import { bucketDelta, bucketQuantile, histogramBuckets, parseExposition, sumOf, type Sample } from '../metrics/exposition.js';
import { CONNECTIONS_OPEN, EVENT_LOOP_DELAY, PROXY_CONNECTIONS_OPEN, SWARM_RTT } from '../metrics/index.js';
import { established, readTree, treeCpuSeconds } from '../metrics/proc-status.js';
import { readBox, type Box } from './sockstat.js';
import { emptySeries, SERIES_KEYS, type Series } from './results.js';

/** One sample: the value of each series the sampler keeps (null = not measured this time). */
export type SampleRow = { [K in (typeof SERIES_KEYS)[number]]?: number | null };

async function scrape(url: string | null): Promise<Sample[] | null> {
  if (url === null) return null;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    return res.ok ? parseExposition(await res.text()) : null;
  } catch {
    return null;
  }
}

/**
 * Samples a server (its /metrics and its process tree in /proc) and the swarms driving it every `intervalMs`,
 * into the time series of a report cell. Windowed values (CPU, RTT quantiles) are computed from the change since
 * the previous sample, as Prometheus' rate() would.
 */
export class Sampler {
  readonly series: Series = emptySeries();
  private readonly swarmUrls = new Set<string>();
  private readonly prevRtt = new Map<string, [number, number][]>();
  private readonly t0 = performance.now();
  private prevCpu: number;
  private prevSwitches: number | null = null;
  private prevAt = performance.now();
  private timer: NodeJS.Timeout | undefined;
  private busy: Promise<void> | undefined;
  /** The availability probe: its latest result (1/0; null before the first one ends) and its loop. */
  private available: number | null = null;
  private probing: Promise<void> | undefined;
  private probeStop = false;

  /**
   * Called after every sample with its time (seconds since the sampler started) and the value of each series at it:
   * the live view (`--web`) draws the very samples the report keeps.
   */
  onSample: ((t: number, row: SampleRow) => void) | undefined;

  /** Keep at most about this many samples, dropping the oldest (a sampler that runs for days: `serve --web`). */
  retain: number | undefined;

  /** The latest machine-wide reading, when sampling the box (`box`). */
  lastBox: Box | undefined;

  /**
   * `pid`: the server's process tree, when known; `metricsUrl`: its wslab metrics, or null (a target); `count`:
   * count the open connections from /proc/net/tcp at this address and port instead of the server's gauge (a target keeps none).
   * `box`: also sample the machine (MemAvailable, TCP sockets, tcp_mem), for holds that load the whole box.
   */
  constructor(private pid: number | undefined, private readonly metricsUrl: string | null, private readonly intervalMs = 500,
    private readonly box = false, private readonly count?: { readonly ip: string; readonly port: number }) {
    this.prevCpu = treeCpuSeconds(pid);
    if (box) Object.assign(this.series, { boxAvailableBytes: [], tcpInuse: [], tcpMemPages: [] });
  }

  /** The server was restarted (CellContext.restart): its new process tree from the next sample on. */
  follow(pid: number | undefined): void {
    this.pid = pid;
    this.prevCpu = treeCpuSeconds(pid);
    this.prevSwitches = null;
  }

  /** A swarm whose RTT histogram joins the series from now on. */
  watchSwarm(url: string | null): void {
    if (url) this.swarmUrls.add(url);
  }

  /**
   * Probes the service as slowhttptest does, from now until stop(): a fresh connection every `everyMs` must
   * complete its upgrade and get its `echo` answered within `timeoutMs`; the `available` series records the latest
   * result (1 or 0). One probe at a time, so the probe never adds more than one connection to the server's load.
   */
  probeService(url: string, match: 'wslab' | 'echo' = 'wslab', everyMs = 500, timeoutMs = 1000): void {
    if (this.probing) return;
    this.probing = (async () => {
      while (!this.probeStop) {
        const t0 = performance.now();
        this.available = (await probeOnce(url, timeoutMs, match)) ? 1 : 0;
        const rest = everyMs - (performance.now() - t0);
        if (rest > 0 && !this.probeStop) await new Promise((r) => setTimeout(r, rest));
      }
    })();
  }

  /**
   * A memory ceiling: `reached` resolves with the time (seconds since the start) at which the server's process tree
   * first held `bytes` of RSS or more, and the RSS read then, and never if it does not; `cancel` stops watching. Read from /proc every
   * `everyMs` by a timer of its own while watched, not at the samples: a server busy growing answers the samples'
   * scrape late (measured: samples 1.5–2 s apart while a naked ws grew at ≈300 MiB/s, 0.6 GiB past the ceiling).
   */
  whenRssAtLeast(bytes: number, everyMs = 100): { reached: Promise<{ atSec: number; rssBytes: number }>; cancel(): void } {
    let timer: NodeJS.Timeout | undefined;
    const reached = new Promise<{ atSec: number; rssBytes: number }>((resolve) => {
      timer = setInterval(() => {
        if (this.pid === undefined) return;
        let rss: number;
        try { rss = readTree(this.pid).rssBytes; } catch { return; } // gone: the cell fails on its exit
        if (rss < bytes) return;
        clearInterval(timer);
        resolve({ atSec: this.elapsedSec(), rssBytes: rss });
      }, everyMs);
    });
    return { reached, cancel: () => clearInterval(timer) };
  }

  /** When the latest sample saw the probe fail: waits, at most `ms`, for a sample that sees it succeed again. */
  async untilAvailable(ms: number): Promise<void> {
    const until = performance.now() + ms;
    while (this.series.available.at(-1) === 0 && performance.now() < until) await new Promise((r) => setTimeout(r, 100));
  }

  /**
   * Seconds from `from` until the probe succeeded for good (every later sample up to `to`): 0 when it never failed,
   * null when it was still failing at `to` (or never probed).
   */
  recoveredAfter(from: number, to = Infinity): number | null {
    let since: number | null = null;
    let failed = false;
    for (const [t, v] of this.samples('available', from, to)) {
      if (v === 0) { failed = true; since = null; } else since ??= t;
    }
    if (since === null) return null;
    return failed ? +((since as number) - from).toFixed(1) : 0;
  }

  /** Seconds within [from, to] whose samples saw the probe fail (sample count × the interval). */
  unavailableSec(from: number, to = Infinity): number {
    const failed = this.samples('available', from, to).filter(([, v]) => v === 0).length;
    return (failed * this.intervalMs) / 1000;
  }

  start(): this {
    void this.tick();
    this.timer = setInterval(() => { if (!this.busy) this.busy = this.tick().finally(() => { this.busy = undefined; }); }, this.intervalMs);
    return this;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.probeStop = true;
    await this.busy;
    await this.tick();
    await this.probing;
  }

  /** The latest value of a series (skipping nulls), or null. */
  last(key: keyof Omit<Series, 't'>): number | null {
    const v = this.series[key] ?? [];
    for (let i = v.length - 1; i >= 0; i--) if (v[i] !== null) return v[i];
    return null;
  }

  /** The [time, value] samples of a series within [from, to] seconds (all when omitted), nulls left out. */
  samples(key: keyof Omit<Series, 't'>, from = 0, to = Infinity): [number, number][] {
    const out: [number, number][] = [];
    (this.series[key] ?? []).forEach((v, i) => {
      const t = this.series.t[i];
      if (v !== null && t >= from && t <= to) out.push([t, v]);
    });
    return out;
  }

  /** Max of a series over samples whose time is within [from, to] seconds (all when omitted). */
  max(key: keyof Omit<Series, 't'>, from = 0, to = Infinity): number | null {
    const v = this.samples(key, from, to);
    return v.length ? Math.max(...v.map(([, x]) => x)) : null;
  }

  /** Median of a series over [from, to] (the lower middle of an even count), or null. */
  median(key: keyof Omit<Series, 't'>, from = 0, to = Infinity): number | null {
    const v = this.samples(key, from, to).map(([, x]) => x).sort((a, b) => a - b);
    return v.length ? v[(v.length - 1) >> 1] : null;
  }

  elapsedSec(): number {
    return (performance.now() - this.t0) / 1000;
  }

  private async tick(): Promise<void> {
    const now = performance.now();
    const [server, ...swarms] = await Promise.all([scrape(this.metricsUrl), ...[...this.swarmUrls].map(scrape)]);
    // one walk of the tree; not its descriptors at --scale max (`box`): listing a million every half second would
    // load the run it measures
    let status: ReturnType<typeof readTree> | null = null;
    try { if (this.pid !== undefined) status = readTree(this.pid, { cpu: true, fds: !this.box }); } catch { /* the server is gone: the cell records nulls */ }
    const cpu = status?.cpuSeconds ?? 0;
    const dt = (now - this.prevAt) / 1000;
    const s = this.series;
    s.t.push(+((now - this.t0) / 1000).toFixed(2));
    s.open.push(this.count !== undefined ? established(this.count) : server ? sumOf(server, CONNECTIONS_OPEN.name) : null);
    s.rssBytes.push(status?.processes ? status.rssBytes : null);
    s.threads.push(status?.processes ? status.threads : null);
    s.loopDelayMs.push(server ? loopDelay(server) : null);
    s.cpuCores.push(status?.processes && dt > 0.05 ? +((cpu - this.prevCpu) / dt).toFixed(3) : null);
    s.fds.push(status?.processes && !this.box ? status.fds : null);
    // a process with more threads than SWITCH_THREADS: its threads' switches are not summed, so not measured
    const switches = status?.processes && !status.switchesPartial ? status.voluntarySwitches + status.involuntarySwitches : null;
    s.switchesPerSec.push(switches !== null && this.prevSwitches !== null && dt > 0.05 ? Math.max(0, Math.round((switches - this.prevSwitches) / dt)) : null);
    this.prevSwitches = switches;
    if (this.box) {
      const b = this.lastBox = readBox();
      s.boxAvailableBytes!.push(b.memAvailableBytes);
      s.tcpInuse!.push(b.tcpInuse);
      s.tcpMemPages!.push(b.tcpMemPages);
    }
    // behind a proxy (serve --via): what it holds beside what the design holds (a slowloris it buffers never reaches it)
    const proxied = server?.some((x) => x.name === PROXY_CONNECTIONS_OPEN.name) ?? false;
    if (proxied || s.proxyOpen) (s.proxyOpen ??= s.t.slice(1).map(() => null)).push(proxied ? sumOf(server!, PROXY_CONNECTIONS_OPEN.name) : null);
    const window = this.rttWindow(swarms);
    s.rttP50Ms.push(window ? round(bucketQuantile(window, 0.5) * 1000) : null);
    s.rttP99Ms.push(window ? round(bucketQuantile(window, 0.99) * 1000) : null);
    s.available.push(this.available);
    this.prevAt = now;
    if (status?.processes) this.prevCpu = cpu;
    if (this.retain !== undefined && s.t.length >= 2 * this.retain) {
      for (const v of Object.values(s)) v?.splice(0, v.length - this.retain);
    }
    if (this.onSample) {
      const row: SampleRow = {};
      for (const key of SERIES_KEYS) { const v = s[key]; if (v) row[key] = v[v.length - 1]; }
      this.onSample(s.t[s.t.length - 1], row);
    }
  }

  /** RTT buckets added since the previous sample, summed over the swarms; null when no reply arrived. */
  private rttWindow(swarms: (Sample[] | null)[]): [number, number][] | null {
    let sum: [number, number][] | null = null;
    [...this.swarmUrls].forEach((url, i) => {
      const samples = swarms[i];
      if (!samples) return;
      const now = histogramBuckets(samples, SWARM_RTT.name);
      const delta = bucketDelta(now, this.prevRtt.get(url) ?? []);
      this.prevRtt.set(url, now);
      sum = sum ? sum.map(([le, c], j) => [le, c + (delta[j]?.[1] ?? 0)]) : delta;
    });
    const total = (sum as [number, number][] | null)?.at(-1)?.[1] ?? 0;
    return total > 0 ? sum : null;
  }
}

/** One fresh connection: upgrade, `echo`, its reply (ours, or the text echoed back), all within `timeoutMs`. */
function probeOnce(url: string, timeoutMs: number, match: 'wslab' | 'echo'): Promise<boolean> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { handshakeTimeout: timeoutMs, perMessageDeflate: false });
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      ws.removeAllListeners();
      ws.on('error', () => {}); // a late error of the dropped socket
      ws.terminate();
      resolve(ok);
    };
    const timer = setTimeout(done, timeoutMs, false);
    ws.on('open', () => ws.send('probe echo available'));
    ws.on('message', (data) => done(String(data) === (match === 'echo' ? 'probe echo available' : 'probe ok available')));
    ws.on('error', () => done(false));
    ws.on('close', () => done(false));
  });
}

function loopDelay(samples: Sample[]): number | null {
  let max: number | null = null;
  for (const s of samples) {
    if (s.name === EVENT_LOOP_DELAY.name && s.labels.quantile === '1' && (max === null || s.value > max)) max = s.value;
  }
  return max === null ? null : round(max * 1000);
}

const round = (v: number): number | null => (Number.isFinite(v) ? +v.toFixed(2) : null);
