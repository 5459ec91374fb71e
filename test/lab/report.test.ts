import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { formatFigure, summaryLines, writeReport } from '../../lab/report.js';
import {
  emptySeries, RESULTS_SCHEMA, SERIES_KEYS, type Cell, type Claim, type LabResults, type ScenarioResult, type Series,
} from '../../lab/results.js';
import { variantOf } from '../../lab/designs.js';
import { CLAIM_IDS } from '../../lab/scenarios/index.js';
import { CHROMIUM, ChromiumPage, chromiumInstalled } from '../helpers/chromium.js';

const MiB = 1024 * 1024;
/** The traits the lab records for a variant label (`cluster --workers 2`). */
const traitsOf = (label: string) => { const [design, ...flags] = label.split(' '); return variantOf(design, flags).traits; };
const POINTS = 20;

/** A series that ramps to `peak` over the first half; `gaps` are sample indexes that were not measured. */
function ramp(peak: number, { gaps = [] as number[], noise = 0 } = {}): (number | null)[] {
  return Array.from({ length: POINTS }, (_, i) =>
    gaps.includes(i) ? null : +(peak * Math.min(1, (i + 1) / (POINTS / 2)) + noise * Math.sin(i * 1.7)).toFixed(3));
}
const none = (): null[] => Array(POINTS).fill(null);

function series(p: Partial<Omit<Series, 't'>>): Series {
  return {
    t: Array.from({ length: POINTS }, (_, i) => i * 0.5),
    open: none(), rssBytes: none(), threads: none(), fds: none(), loopDelayMs: none(), cpuCores: none(), switchesPerSec: none(), rttP50Ms: none(), rttP99Ms: none(), available: none(),
    ...p,
  };
}

/** Truncates a failed cell's series after `at` samples, as a crash leaves it. */
const crashAt = (s: Series, at: number): Series =>
  Object.fromEntries(Object.entries(s).map(([k, v]: [string, (number | null)[]]) => [k, k === 't' ? v : v.map((x, i) => (i < at ? x : null))])) as unknown as Series;

const idleHold: ScenarioResult = {
  id: 'idle-hold',
  title: 'Idle connections held',
  question: 'What does one idle connection cost in memory and threads, and where does each design stop?',
  method: 'A swarm opens 10000 idle connections at 5000/s from 127.0.0.2-127.0.0.9 and holds them 3 s; the server\'s ' +
    'process tree is sampled from /proc every 0.5 s. Per-connection cost = (peak − baseline) ÷ connections held.',
  columns: [
    { key: 'held', label: 'held', unit: 'connections' },
    { key: 'failed', label: 'failed', unit: 'connections' },
    { key: 'rssPerConnectionBytes', label: 'RSS per connection', unit: 'bytes' },
    { key: 'threadsPerConnection', label: 'threads per connection', unit: 'threads' },
    { key: 'peakRssBytes', label: 'server RSS at peak', unit: 'bytes' },
    { key: 'connectRatePerSec', label: 'open rate', unit: 'conn/s' },
  ],
  cells: [
    { design: 'uws', traits: traitsOf('uws'), status: 'ok',
      figures: { held: 10_000, failed: 0, rssPerConnectionBytes: 921, threadsPerConnection: 0, peakRssBytes: 61.2 * MiB, connectRatePerSec: 4987.3 },
      series: series({ open: ramp(10_000), rssBytes: ramp(61.2 * MiB), threads: ramp(7), loopDelayMs: ramp(4.2, { noise: 1, gaps: [0] }), cpuCores: ramp(0.41, { noise: 0.05 }) }) },
    { design: 'threads', traits: traitsOf('threads'), status: 'failed',
      cause: 'server died after 3412 connections: pthread_create: Resource temporarily unavailable (EAGAIN) — raise ulimit -u',
      figures: { held: 3412, failed: 6588, rssPerConnectionBytes: 40_755, threadsPerConnection: 1.001, peakRssBytes: 152.7 * MiB, connectRatePerSec: null },
      series: crashAt(series({ open: ramp(6000), rssBytes: ramp(240 * MiB), threads: ramp(6010), loopDelayMs: none(), cpuCores: ramp(0.93, { noise: 0.1 }) }), 8) },
    { design: 'cluster --workers 2', traits: traitsOf('cluster --workers 2'), status: 'ok',
      figures: { held: 10_000, failed: 0, rssPerConnectionBytes: 1_433, threadsPerConnection: 0, peakRssBytes: 131.5 * MiB, connectRatePerSec: 4871 },
      series: series({ open: ramp(9_800, { gaps: [3, 4] }), rssBytes: ramp(131.5 * MiB), threads: ramp(29), loopDelayMs: ramp(2.1, { noise: 0.8 }), cpuCores: ramp(0.62, { noise: 0.05 }) }) },
  ],
};

const blockingCall: ScenarioResult = {
  id: 'blocking-call',
  title: 'One blocking call',
  question: 'Does one blocking call stall every client (loop) or only its own (threads)?',
  method: '200 clients send `echo` at 20/s each (< 1 ms of work) & one client sends `block 2000` once, 5 s in.',
  columns: [
    { key: 'healthyRttP50Ms', label: 'others: RTT p50', unit: 'ms' },
    { key: 'healthyRttP99Ms', label: 'others: RTT p99', unit: 'ms' },
    { key: 'healthyRttMaxMs', label: 'others: RTT max', unit: 'ms' },
    { key: 'blockRttMs', label: 'the blocking call', unit: 'ms' },
    { key: 'loopDelayMaxMs', label: 'event-loop delay max', unit: 'ms' },
  ],
  cells: [
    { design: 'uws', traits: traitsOf('uws'), status: 'ok',
      figures: { healthyRttP50Ms: 0.412, healthyRttP99Ms: 1995.2, healthyRttMaxMs: 2003.9, blockRttMs: 2001.4, loopDelayMaxMs: 2000.7 },
      series: series({ open: ramp(201), rssBytes: ramp(48 * MiB), threads: ramp(7), loopDelayMs: ramp(2000, { gaps: [0, 1] }),
        cpuCores: ramp(1, { noise: 0.02 }), rttP50Ms: ramp(0.45, { gaps: [0], noise: 0.1 }), rttP99Ms: ramp(1990, { gaps: [0] }) }) },
    { design: 'threads', traits: traitsOf('threads'), status: 'ok',
      figures: { healthyRttP50Ms: 0.387, healthyRttP99Ms: 1.9, healthyRttMaxMs: 4.71, blockRttMs: 2000.9, loopDelayMaxMs: null },
      series: series({ open: ramp(201), rssBytes: ramp(56 * MiB), threads: ramp(211), cpuCores: ramp(0.3, { noise: 0.05 }),
        rttP50Ms: ramp(0.39, { gaps: [0], noise: 0.05 }), rttP99Ms: ramp(1.9, { gaps: [0], noise: 0.3 }) }) },
    { design: 'cluster --workers 2', traits: traitsOf('cluster --workers 2'), status: 'skipped', cause: 'addon not built: build/Release/wslab_threads.node missing | run npm run build:native',
      figures: { healthyRttP50Ms: null, healthyRttP99Ms: null, healthyRttMaxMs: null, blockRttMs: null, loopDelayMaxMs: null },
      series: series({}) },
  ],
};

/** A swept scenario: its curve with the --repeat spread of one line, and the knees in words. */
const slowBackend: ScenarioResult = {
  id: 'slow-backend',
  title: 'Backend slows from 50 ms to 500 ms',
  question: 'Do fixed workers queue when the backend slows? Where is the knee?',
  method: '50 clients each send `wait W` every 200 ms, W = 50, 250, 500 ms, 2 s each, 3 repeats.',
  columns: [{ key: 'kneeMs', label: 'knee', unit: 'ms' }],
  cells: [
    { design: 'uws', traits: traitsOf('uws'), status: 'ok', figures: { kneeMs: null, 'rttP99Ms@50': 53, 'rttP99Ms@250': 255, 'rttP99Ms@500': 507 },
      series: series({ open: ramp(50) }) },
    { design: 'threads', traits: traitsOf('threads'), status: 'ok', figures: { kneeMs: 250, 'rttP99Ms@50': 52, 'rttP99Ms@250': 1204, 'rttP99Ms@500': 5100 },
      spread: { kneeMs: { min: 250, max: 250, n: 3 }, 'rttP99Ms@250': { min: 900, max: 1500, n: 3 } }, series: series({ open: ramp(50) }) },
  ],
  curves: [{
    id: 'rtt-p99', title: 'RTT p99 over backend latency', x: { label: 'backend latency (wait)', unit: 'ms' }, y: { label: 'RTT p99', unit: 'ms', log: true },
    lines: [
      { design: 'uws', points: [{ x: 50, y: 53 }, { x: 250, y: 255 }, { x: 500, y: 507 }] },
      { design: 'threads', points: [{ x: 50, y: 52, min: 51, max: 60 }, { x: 250, y: 1204, min: 900, max: 1500 }, { x: 500, y: 5100, min: 4800, max: 5600 }] },
    ],
    knees: ['uws: no knee up to 500 ms', 'threads: knee at 250 ms (RTT p99 1204 ms; at 50 ms: 52 ms; predicted 200 ms = 50 workers serving ÷ 250 req/s)'],
  }, {
    // a line that is no cell (one point per variant, as cpu-bound's worker processes): a colour of its own
    id: 'across', title: 'Across variants', x: { label: 'workers', unit: 'processes' }, y: { label: 'done', unit: 'req/s' },
    lines: [{ design: 'worker processes (cluster)', points: [{ x: 1, y: 100 }, { x: 2, y: 190 }, { x: 3, y: 200 }] }], knees: ['knee at 2 workers'],
  }],
};

const VERDICTS = ['confirmed', 'refuted', 'inconclusive'] as const;
const claims: Claim[] = CLAIM_IDS.map((id, i) => ({
  id,
  claim: `The seed article's claim about ${id.replace(/-/g, ' ')}.`,
  verdict: VERDICTS[i % 3],
  evidence: i === 0 ? 'threads: 39.8 KiB per connection vs uws 0.9 KiB: ×44' : `measured: p99 < ${i * 5} ms & max ${i * 7} ms | see table`,
}));

const FIXTURE: LabResults = {
  schema: RESULTS_SCHEMA,
  startedAt: '2025-11-23T09:00:00.000Z',
  finishedAt: '2025-11-23T09:04:12.000Z',
  durationSec: 252,
  scale: 'default',
  interrupted: null,
  machine: { cpus: 2, cpuModel: 'AMD EPYC 7B13', memoryBytes: 24 * 1024 * MiB, fdLimit: 1_048_576, node: 'v20.19.0',
    kernel: '6.1.0-27-amd64', designs: { ws: '8.18.3', uws: '20.30.0', threads: 'addon 0.1.0', cluster: 'node:cluster' } },
  scenarios: [idleHold, blockingCall, slowBackend],
  claims,
};

/** Charts the fixture must produce: a scenario's curves first, then one per series key with a value in some cell. */
const EXPECTED_CHARTS = FIXTURE.scenarios.flatMap((s) => [...(s.curves ?? []).map((c) => `${s.id}/curve/${c.id}`),
  ...SERIES_KEYS.filter((k) => s.cells.some((c: Cell) => c.series[k]?.some((v) => v !== null))).map((k) => `${s.id}/${k}`)]);

describe('lab report', () => {
  let dir: string;
  let out: { html: string; markdown: string; json: string };
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'wslab-report-'));
    out = await writeReport(FIXTURE, path.join(dir, 'report'));
  });
  // WSLAB_KEEP_REPORT=1 keeps the report and its screenshot to look at.
  after(async () => { if (dir && !process.env.WSLAB_KEEP_REPORT) await rm(dir, { recursive: true, force: true }); });

  it('the fixture covers what the report must handle', () => {
    assert.equal(EXPECTED_CHARTS.length, 15, 'idle-hold has no RTT series; blocking-call has all seven; slow-backend two curves and the open series');
  });

  it('writes results.json, report.md and index.html into the directory it creates', async () => {
    for (const file of [out.json, out.markdown, out.html]) {
      assert.equal(path.dirname(file), path.join(dir, 'report'));
      assert.ok((await stat(file)).size > 0, file);
    }
  });

  it('results.json round-trips', async () => {
    assert.deepEqual(JSON.parse(await readFile(out.json, 'utf8')), FIXTURE);
  });

  it('report.md has the machine, every claim and a table row per cell', async () => {
    const md = await readFile(out.markdown, 'utf8');
    for (const text of ['2 × AMD EPYC 7B13', '24.00 GiB', '1,048,576', 'v20.19.0', '6.1.0-27-amd64', 'uws 20.30.0']) assert.ok(md.includes(text), text);
    for (const c of claims) assert.match(md, new RegExp(`^- . \\*\\*${c.verdict}\\*\\* \`${c.id}\`: `, 'm'), c.id);
    for (const s of FIXTURE.scenarios) {
      assert.ok(md.includes(`## ${s.title} (\`${s.id}\`)`));
      assert.ok(md.includes(s.question) && md.includes(s.method));
      const section = md.slice(md.indexOf(`## ${s.title}`)).split('\n## ')[0];
      const table = section.split('\n\n').find((b) => b.startsWith('| design |'))!;
      const rows = table.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| design |'));
      assert.deepEqual(rows.map((r) => r.split(' | ')[0].slice(2)), s.cells.map((c) => c.design));
    }
    assert.match(md, /^\| design \| held \(connections\) \| failed \(connections\) \| RSS per connection \| threads per connection \| server RSS at peak \| open rate \(conn\/s\) \| status \|$/m);
    assert.match(md, /^\| uws \| 10,000 \| 0 \| 921 B \| 0 \| 61\.2 MiB \| 4,987 \| ok \|$/m);
    assert.match(md, /^\| threads \| 3,412 \| 6,588 \| 39\.8 KiB \| 1\.00 \| 152\.7 MiB \| — \| \*\*failed\*\*: server died after 3412 connections: .* raise ulimit -u \|$/m);
    assert.match(md, /^\| cluster --workers 2 \| — \| — \| — \| — \| — \| \*\*skipped\*\*: addon not built/m);
    assert.match(md, /^\| uws \| 0\.412 \| 1,995 \| 2,004 \| 2,001 \| 2,001 \| ok \|$/m);
    assert.ok(md.includes('missing \\| run npm run build:native |'), 'a pipe in a table cell is escaped');
  });

  it('report.md gives each curve its knees and a table of its points, the spread beside a median', async () => {
    const md = await readFile(out.markdown, 'utf8');
    assert.ok(md.includes('**Curve: RTT p99 over backend latency.** uws: no knee up to 500 ms. threads: knee at 250 ms (RTT p99 1204 ms; at 50 ms: 52 ms; ' +
      'predicted 200 ms = 50 workers serving ÷ 250 req/s).'));
    assert.match(md, /^\| backend latency \(wait\) \(ms\) \| uws: RTT p99 \(ms\) \| threads: RTT p99 \(ms\) \|$/m);
    assert.match(md, /^\| 250 \| 255 \| 1,204 \(900–1,500\) \|$/m);
  });

  it('formats figures with their units', () => {
    const cases: [number | null, string, string][] = [
      [null, 'ms', '—'], [512, 'bytes', '512 B'], [40_755, 'bytes', '39.8 KiB'], [3.5 * MiB, 'bytes', '3.5 MiB'],
      [0.12345, 'ms', '0.123'], [1.2345, 'ms', '1.23'], [12.345, 'ms', '12.3'], [2000, 'ms', '2,000'],
      [10_000, 'connections', '10,000'], [0.9312, 'ratio', '93.1 %'], [1.95, 'cores', '1.95'],
    ];
    for (const [v, unit, text] of cases) assert.equal(formatFigure(v, unit), text, `${v} ${unit}`);
  });

  it('summaryLines gives one line per claim with its mark', () => {
    const lines = summaryLines(FIXTURE);
    assert.equal(lines.length, CLAIM_IDS.length);
    assert.equal(lines[0], '✔ thread-per-connection-memory: threads: 39.8 KiB per connection vs uws 0.9 KiB: ×44');
    assert.match(lines[1], /^✘ loop-unlimited-connections: /);
    assert.match(lines[2], /^\? slow-client-dos: /);
  });

  it('index.html is offline, inlines Chart.js and escapes text', async () => {
    const html = await readFile(out.html, 'utf8');
    assert.doesNotMatch(html, /<(script|link|img|iframe)\b[^>]*\b(src|href)\s*=\s*["']?\s*(https?:)?\/\//i, 'no remote script, link or image');
    assert.doesNotMatch(html, /<script\b[^>]*\bsrc=/i, 'every script is inline');
    assert.match(html, /<script>\/\*!\n \* Chart\.js v4\./, 'Chart.js is inlined');
    assert.ok(html.length > 150_000, 'the whole Chart.js bundle is there');
    assert.ok(html.includes('p99 &#60; 5 ms &#38; max 7 ms | see table'), 'text is HTML-escaped');
    assert.ok(!html.includes('p99 < 5 ms'));
    for (const id of EXPECTED_CHARTS) assert.ok(html.includes(`<canvas data-chart="${id}"`), id);
    assert.equal(html.match(/<canvas /g)?.length, EXPECTED_CHARTS.length);
    for (const v of ['confirmed', 'refuted', 'inconclusive']) assert.ok(html.includes(`class="verdict ${v}"`), v);
    assert.match(html, /<tr class="failed"><td>threads<\/td>.*server died after 3412 connections/);
  });

  it('a cell whose server never started renders as dashes and no chart', async () => {
    const empty: Series = emptySeries();
    const results: LabResults = { ...FIXTURE, scenarios: [{ ...blockingCall, cells: [
      { design: 'threads', traits: traitsOf('threads'), status: 'failed', cause: 'server exited during the run (SIGSEGV): ', figures: {}, series: empty }] }] };
    const r = await writeReport(results, path.join(dir, 'never-started'));
    assert.match(await readFile(r.markdown, 'utf8'), /^\| threads \| — \| — \| — \| — \| — \| \*\*failed\*\*: server exited during the run \(SIGSEGV\): \|$/m);
    const html = await readFile(r.html, 'utf8');
    assert.doesNotMatch(html, /<canvas /);
    assert.ok(html.includes('<script type="application/json" id="wslab-charts">{"charts":[]}</script>'));
  });

  it('renders in headless Chromium with every chart drawn', { timeout: 120_000 }, async (t) => {
    if (!chromiumInstalled()) {
      const message = `${CHROMIUM} not found. CI needs Debian chromium: .ci/run installs it (locally: apt-get install chromium)`;
      if (process.env.CI === 'true') assert.fail(message);
      t.skip(message);
      return;
    }
    const page = await ChromiumPage.launch({ width: 1280, height: 2000 });
    try {
      await page.navigate(pathToFileURL(out.html).href);
      const ready = await page.waitFor<string>('document.body.dataset.chartsReady');
      assert.deepEqual(page.errors, [], 'no console errors or exceptions');
      assert.equal(Number(ready), EXPECTED_CHARTS.length);
      const charts = await page.evaluate<DrawnChart[]>(`(${inspectCharts.toString()})()`);
      assert.deepEqual(charts.map((c) => c.id), EXPECTED_CHARTS);
      for (const c of charts) {
        assert.ok(c.hasChart, `${c.id}: Chart.getChart finds a chart`);
        assert.ok(c.datasets.length > 0, `${c.id}: has datasets`);
        for (const d of c.datasets) {
          assert.ok(d.points > 0, `${c.id} ${d.label}: has points`);
          assert.ok(d.pixels >= 20, `${c.id} ${d.label}: its colour is drawn (${d.pixels} px)`);
        }
        assert.ok(c.inked > 0.01, `${c.id}: canvas is not blank (${(c.inked * 100).toFixed(2)} % drawn)`);
      }
      // The failed cell's lines are labelled with its status; a cell that measured nothing has no line.
      const idleOpen = charts.find((c) => c.id === 'idle-hold/open')!;
      assert.deepEqual(idleOpen.datasets.map((d) => d.label), ['uws', 'threads (failed)', 'cluster --workers 2']);
      assert.deepEqual(charts.find((c) => c.id === 'idle-hold/loopDelayMs')!.datasets.map((d) => d.label), ['uws', 'cluster --workers 2']);
      // a curve: the swept parameter on x, its y on a log axis, and a --repeat spread drawn as a band around its line
      const curve = charts.find((c) => c.id === 'slow-backend/curve/rtt-p99')!;
      assert.deepEqual(curve.datasets.map((d) => d.label), ['uws', 'threads', 'threads min', 'threads max']);
      const axes = await page.evaluate<string[]>(`(() => { const c = Chart.getChart(document.querySelector('canvas[data-chart="slow-backend/curve/rtt-p99"]'));
        return [c.scales.x.type, c.scales.y.type, c.options.scales.x.title.text, c.legend.legendItems.map((i) => i.text).join(',')]; })()`);
      assert.deepEqual(axes, ['linear', 'logarithmic', 'backend latency (wait) (ms)', 'uws,threads']);

      const png = await page.screenshot();
      const file = path.join(dir, 'report', 'screenshot.png');
      await writeFile(file, png);
      t.diagnostic(`screenshot: ${file}`);
      assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'PNG signature');
      assert.ok(png.length > 10 * 1024, `screenshot is ${png.length} bytes`);
      assert.deepEqual(page.errors, [], 'no console errors after the screenshot');
    } finally {
      await page.close();
    }
  });
});

interface DrawnChart {
  id: string;
  hasChart: boolean;
  /** Share of the canvas's pixels that are not transparent. */
  inked: number;
  datasets: { label: string; points: number; pixels: number }[];
}

/** Runs in the page: for each chart canvas, what Chart.js holds and how many pixels of each line's colour it drew. */
function inspectCharts(): DrawnChart[] {
  const g = globalThis as any;
  return [...g.document.querySelectorAll('canvas[data-chart]')].map((canvas: any) => {
    const chart = g.Chart.getChart(canvas);
    const { data } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
    let inked = 0;
    for (let i = 3; i < data.length; i += 4) if (data[i] > 0) inked++;
    const datasets = (chart?.data.datasets ?? []).map((d: any) => {
      const [r, gr, b] = [1, 3, 5].map((o) => parseInt(d.borderColor.slice(o, o + 2), 16));
      let pixels = 0;
      for (let i = 0; i < data.length; i += 4) {
        if (data[i + 3] > 200 && Math.abs(data[i] - r) < 12 && Math.abs(data[i + 1] - gr) < 12 && Math.abs(data[i + 2] - b) < 12) pixels++;
      }
      return { label: d.label, points: d.data.filter((p: any) => p.y !== null).length, pixels };
    });
    return { id: canvas.dataset.chart, hasChart: !!chart, inked: inked / (data.length / 4), datasets };
  });
}
