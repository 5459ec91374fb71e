import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { SERIES_KEYS, type Cell, type Column, type LabResults, type ScenarioResult, type Verdict } from './results.js';
import { attributionLine } from '../client/attribution.js';
import { describeNoise } from '../metrics/noise.js';
import type { Curve } from './curves.js';

type SeriesKey = (typeof SERIES_KEYS)[number];

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

/** How each sampled series is charted: its title, the y-axis title with the unit, and stored unit → axis unit. */
export const SERIES_CHARTS: Record<SeriesKey, { title: string; axis: string; factor: number }> = {
  open: { title: 'Open connections', axis: 'open connections', factor: 1 },
  rssBytes: { title: 'Server RSS', axis: 'RSS (MiB)', factor: 1 / MiB },
  threads: { title: 'Server threads', axis: 'threads', factor: 1 },
  loopDelayMs: { title: 'Event-loop delay', axis: 'loop delay (ms)', factor: 1 },
  cpuCores: { title: 'Server CPU', axis: 'CPU (cores)', factor: 1 },
  fds: { title: 'Server open files', axis: 'file descriptors', factor: 1 },
  switchesPerSec: { title: 'Server context switches', axis: 'switches per second', factor: 1 },
  rttP50Ms: { title: 'Client RTT p50', axis: 'RTT p50 (ms)', factor: 1 },
  rttP99Ms: { title: 'Client RTT p99', axis: 'RTT p99 (ms)', factor: 1 },
  available: { title: 'Service available (fresh probe client)', axis: 'available (1 = yes)', factor: 1 },
  boxAvailableBytes: { title: 'Box MemAvailable', axis: 'MemAvailable (GiB)', factor: 1 / GiB },
  tcpInuse: { title: 'TCP sockets in use (box)', axis: 'sockets', factor: 1 },
  tcpMemPages: { title: 'tcp_mem charged (box)', axis: 'pages', factor: 1 },
  proxyOpen: { title: 'Open connections at the proxy in front', axis: 'proxy connections', factor: 1 },
};

export const VERDICT_MARK: Record<Verdict, string> = { confirmed: '✔', refuted: '✘', inconclusive: '?' };

/** Tableau 10: one colour per design label, the same in every chart of the report. */
export const PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];

/** Units whose cells carry their own (scaled) unit; every other unit goes once into the column header. */
const SELF_UNITS = new Set(['bytes', 'ratio', '']);

function plain(v: number): string {
  const a = Math.abs(v);
  if (Number.isInteger(v) || a >= 1000) return Math.round(v).toLocaleString('en-US');
  return v.toFixed(a >= 10 ? 1 : a >= 1 ? 2 : 3);
}

function bytes(v: number): string {
  const a = Math.abs(v);
  if (a < KiB) return `${Math.round(v)} B`;
  if (a < MiB) return `${(v / KiB).toFixed(1)} KiB`;
  if (a < GiB) return `${(v / MiB).toFixed(1)} MiB`;
  return `${(v / GiB).toFixed(2)} GiB`;
}

/**
 * One figure as a table shows it: bytes scaled to B/KiB/MiB/GiB, a ratio as a percentage, integers grouped
 * (`10,000`), anything else (ms, cores, …) to about three significant digits with 1–3 decimals; null is `—`.
 */
export function formatFigure(value: number | null | undefined, unit: string): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '—';
  if (unit === 'bytes') return bytes(value);
  if (unit === 'ratio') return `${(value * 100).toFixed(1)} %`;
  return plain(value);
}

/** A cell's figure in a table: the value, and under --repeat the runs' min–max when they differ (the value is their median). */
export function figureText(c: Pick<Cell, 'figures' | 'spread'>, col: Column): string {
  const v = formatFigure(c.figures[col.key], col.unit);
  const sp = c.spread?.[col.key];
  return sp && sp.n > 1 && sp.min !== sp.max ? `${v} (${formatFigure(sp.min, col.unit)}–${formatFigure(sp.max, col.unit)})` : v;
}

/** The run's line under the title: when, how long, the scale, and under --repeat how figures read. */
const runLine = (r: LabResults): string =>
  `Run ${r.startedAt} → ${r.finishedAt} (${duration(r.durationSec)}), scale \`${r.scale}\`` +
  `${(r.repeat ?? 1) > 1 ? `, every cell ${r.repeat} times (figures: median (min–max) of the runs; a verdict holds only when every run gives it)` : ''}, schema \`${r.schema}\`.`;

const header = (c: Column): string => (SELF_UNITS.has(c.unit) || c.label.includes(c.unit) ? c.label : `${c.label} (${c.unit})`);

function duration(sec: number): string {
  if (sec < 60) return `${plain(sec)} s`;
  const m = Math.floor(sec / 60);
  return m < 60 ? `${m} min ${Math.round(sec % 60)} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

function machineRows(r: LabResults): [string, string][] {
  const m = r.machine;
  return [
    ['cores', `${m.cpus} × ${m.cpuModel}`],
    ['memory', bytes(m.memoryBytes)],
    ['fd limit', plain(m.fdLimit)],
    ['Node', m.node],
    ['kernel', m.kernel],
    ['designs', Object.entries(m.designs).map(([d, v]) => `${d} ${v}`).join(', ') || '—'],
  ];
}

/** Terminal summary, one line per claim: `✔ id: evidence` (✘ refuted, ? inconclusive). */
export function summaryLines(results: LabResults): string[] {
  return results.claims.map((c) => `${VERDICT_MARK[c.verdict]} ${c.id}: ${c.evidence}`);
}

/**
 * Who ended what a cell's swarms did not close themselves, in the swarm's own words (its `ended by` line): one line
 * per swarm that saw anything end unasked, each run's under --repeat. None for a cell without attribution (a target,
 * a failed cell) or where nothing ended unasked.
 */
export function attributionLines(c: Cell): string[] {
  const runs = c.repeats && c.repeats.length > 1 ? c.repeats : [c];
  return runs.flatMap((r, k) => (r.status === 'ok' ? r.attribution ?? [] : []).filter((a) => a.endedUnasked > 0)
    .map((a) => `${runs.length > 1 ? `repeat ${k + 1}: ` : ''}${attributionLine(a)}`));
}

/** What the list under a scenario's table says of a cell: its notes, then who ended what. */
const cellLines = (c: Cell): string[] => [...(c.notes ?? []), ...attributionLines(c)];

// ---- Markdown

const mdCell = (s: string): string => s.trim().replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\s*\r?\n\s*/g, ' ');

function mdTable(head: string[], rows: string[][], right: boolean[]): string {
  const line = (cells: string[]): string => `| ${cells.map(mdCell).join(' | ')} |`;
  return [line(head), `|${right.map((r) => (r ? '---:' : '---')).join('|')}|`, ...rows.map(line)].join('\n');
}

/** The noise guard's mark for a cell that ran: `quiet box (0.03 cores outside the run)` or `busy box: …`. */
const noiseMark = (c: Cell): string => (c.noise && c.status === 'ok' ? ` · ${describeNoise(c.noise)}` : '');

function mdScenario(s: ScenarioResult): string {
  const head = ['design', ...s.columns.map(header), 'status'];
  const rows = s.cells.map((c) => [c.design, ...s.columns.map((col) => figureText(c, col)),
    (c.status === 'ok' ? 'ok' : `**${c.status}**: ${c.cause ?? 'no cause recorded'}`) + (c.noise?.quiet === false ? ` · **${describeNoise(c.noise)}**` : noiseMark(c)) + (c.profile ? ` · [clinic profile](${c.profile} "${(c.profileNote ?? '').replace(/"/g, "'")}")` : c.profileNote ? ` · ${c.profileNote}` : '')]);
  return [
    `## ${s.title} (\`${s.id}\`)`,
    `**Question.** ${s.question}`,
    `**Method.** ${s.method}`,
    rows.length ? mdTable(head, rows, [false, ...s.columns.map(() => true), false]) : '_No cells ran._',
    ...(s.cells.some((c) => cellLines(c).length) ? [s.cells.flatMap((c) => cellLines(c).map((n) => `- **${c.design}**: ${n}`)).join('\n')] : []),
    ...(s.curves ?? []).map(mdCurve),
  ].join('\n\n');
}

/** A point as a table shows it: the value, and under --repeat the runs' min–max when they differ. */
const pointText = (p: { y: number; min?: number; max?: number } | undefined, unit: string): string =>
  (p ? `${formatFigure(p.y, unit)}${p.min !== undefined && p.max !== undefined ? ` (${formatFigure(p.min, unit)}–${formatFigure(p.max, unit)})` : ''}` : '—');

/** A curve in markdown: its knees, then its points, a row per x and a column per line. */
function mdCurve(c: Curve): string {
  const xs = [...new Set(c.lines.flatMap((l) => l.points.map((p) => p.x)))].sort((a, b) => a - b);
  const rows = xs.map((x) => [`${formatFigure(x, c.x.unit)}`, ...c.lines.map((l) => pointText(l.points.find((p) => p.x === x), c.y.unit))]);
  return [
    `**Curve: ${c.title}.** ${c.knees.map((k) => `${k}.`).join(' ')}`,
    mdTable([`${c.x.label} (${c.x.unit})`, ...c.lines.map((l) => `${l.design}: ${header({ key: '', label: c.y.label, unit: c.y.unit })}`)], rows, [true, ...c.lines.map(() => true)]),
  ].join('\n\n');
}

function markdown(r: LabResults): string {
  return [
    '# wslab lab report',
    runLine(r),
    ...(r.interrupted ? ['', `**Interrupted (${r.interrupted})**: this report holds the cells finished before the signal; the others are listed as not run.`] : []),
    '## Machine',
    mdTable(['', ''], machineRows(r), [false, false]),
    '## Verdicts',
    r.claims.map((c) => `- ${VERDICT_MARK[c.verdict]} **${c.verdict}** \`${c.id}\`: ${c.claim} — ${c.evidence}`).join('\n'),
    ...r.scenarios.map(mdScenario),
  ].join('\n\n') + '\n';
}

// ---- HTML

export const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/**
 * A self-contained page's head: nothing loaded from anywhere (`default-src 'none'`), inline scripts and styles, and
 * `sources` (more CSP directives) on top; shared by the report and the live page (web/page.ts).
 */
export const htmlHead = (title: string, sources: string, css: string): string => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; ${sources}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<link rel="icon" href="data:,">
<style>${css}</style>
</head>`;

/** Escaped prose, with markdown's `code` spans kept as code. */
const prose = (s: string): string => esc(s).replace(/`([^`]+)`/g, '<code>$1</code>');

interface ChartSpec {
  /** `<scenario id>/<series key>` or `<scenario id>/curve/<curve id>`, also the canvas's `data-chart`. */
  id: string;
  title: string;
  yTitle: string;
  /** The x axis: seconds since the cell started for a series; the swept parameter for a curve. */
  xTitle: string;
  xLog?: boolean;
  yLog?: boolean;
  /** `band`: the runs' min or max of a curve under --repeat (dotted, the space between them filled). */
  datasets: { label: string; color: string; failed: boolean; band?: 'min' | 'max'; data: { x: number; y: number | null }[] }[];
}

/** A curve's chart: a line per design, and under --repeat its min and max as a band around it. */
function curveChart(s: ScenarioResult, c: Curve, colorOf: (design: string) => string): ChartSpec {
  return {
    id: `${s.id}/curve/${c.id}`, title: c.title, yTitle: `${c.y.label} (${c.y.unit})`, xTitle: `${c.x.label} (${c.x.unit})`,
    ...(c.x.log ? { xLog: true } : {}), ...(c.y.log ? { yLog: true } : {}),
    datasets: c.lines.flatMap((l) => {
      const color = colorOf(l.design);
      const line = { label: l.design, color, failed: false, data: l.points.map((p) => ({ x: p.x, y: p.y })) };
      if (!l.points.some((p) => p.min !== undefined)) return [line];
      const band = (b: 'min' | 'max') => ({ label: `${l.design} ${b}`, color, failed: false, band: b, data: l.points.map((p) => ({ x: p.x, y: p[b] ?? p.y })) });
      return [line, band('min'), band('max')];
    }),
  };
}

/** One chart per series key with any value in any cell; a cell that measured nothing for it gets no line. */
function chartSpecs(s: ScenarioResult, colorOf: (design: string) => string): ChartSpec[] {
  const runs = s.cells.flatMap((c) => c.repeats ?? [c]);
  return SERIES_KEYS.filter((key) => runs.some((c) => c.series[key]?.some((v) => v !== null))).map((key) => {
    const { title, axis, factor } = SERIES_CHARTS[key];
    return {
      id: `${s.id}/${key}`,
      title,
      yTitle: axis,
      xTitle: 'seconds since the cell started',
      // under --repeat every run is a line of its design's colour: the spread is seen as the lines' spread
      datasets: s.cells.flatMap((c) => (c.repeats && c.repeats.length > 1 ? c.repeats.map((r, k) => ({ ...r, label: `${c.design} · ${k + 1}/${c.repeats!.length}` }))
        : [{ ...c, label: c.design }]).filter((r) => r.series[key]?.some((v) => v !== null)).map((r) => ({
        label: r.status === 'ok' ? r.label : `${r.label} (${r.status})`,
        color: colorOf(c.design),
        failed: r.status !== 'ok',
        data: r.series.t.map((x, i) => {
          const y = r.series[key]?.[i] ?? null;
          return { x, y: y === null ? null : +(y * factor).toPrecision(6) };
        }),
      }))),
    };
  });
}

function htmlTable(head: string[] | null, rows: { cells: string[]; cls?: string }[], numeric: boolean[]): string {
  const td = (tag: string, cells: string[]): string =>
    cells.map((c, i) => `<${tag}${numeric[i] ? ' class="num"' : ''}>${c}</${tag}>`).join('');
  return `<table>${head ? `<thead><tr>${td('th', head.map(esc))}</tr></thead>` : ''}<tbody>` +
    rows.map((r) => `<tr${r.cls ? ` class="${r.cls}"` : ''}>${td('td', r.cells)}</tr>`).join('') + '</tbody></table>';
}

/** `lab --profile`: a link to the cell's clinic report with its findings as the title, or why there is none. */
const profileLink = (c: Cell): string => (c.profile ? ` · <a href="${esc(c.profile)}" title="${esc(c.profileNote ?? '')}">clinic profile</a>` : c.profileNote ? ` · <span title="${esc(c.profileNote)}">no profile</span>` : '');

function htmlScenario(s: ScenarioResult, charts: ChartSpec[]): string {
  const rows = s.cells.map((c) => ({
    cls: c.status === 'ok' ? undefined : c.status,
    cells: [esc(c.design), ...s.columns.map((col) => esc(figureText(c, col))),
      (c.status === 'ok' ? 'ok' : `<strong>${esc(c.status)}</strong>: ${prose(c.cause ?? 'no cause recorded')}`) +
        (c.noise?.quiet === false ? ` · <strong class="busy">${esc(describeNoise(c.noise))}</strong>` : esc(noiseMark(c))) + profileLink(c)],
  }));
  const table = rows.length
    ? htmlTable(['design', ...s.columns.map(header), 'status'], rows, [false, ...s.columns.map(() => true), false])
    : '<p><em>No cells ran.</em></p>';
  return `<section id="${esc(s.id)}">
<h2>${esc(s.title)} <code>${esc(s.id)}</code></h2>
<p><strong>Question.</strong> ${prose(s.question)}</p>
<p><strong>Method.</strong> ${prose(s.method)}</p>
${table}
${s.cells.some((c) => cellLines(c).length) ? `<ul class="notes">${s.cells.flatMap((c) => cellLines(c).map((n) => `<li><strong>${esc(c.design)}</strong>: ${prose(n)}</li>`)).join('\n')}</ul>` : ''}
${(s.curves ?? []).map((c) => `<p class="knees"><strong>Curve: ${esc(c.title)}.</strong> ${c.knees.map((k) => `${prose(k)}.`).join(' ')}</p>`).join('\n')}
<div class="charts">${charts.map((c) => `<figure class="chart"><canvas data-chart="${esc(c.id)}" role="img" aria-label="${esc(`${s.title}: ${c.title}`)}"></canvas></figure>`).join('\n')}</div>
</section>`;
}

/*
 * Runs in the page. Animations are off so a chart is drawn when `new Chart` returns and screenshots are
 * deterministic; `chartsReady` is set once every canvas has been handed to Chart.js, and a chart that throws is
 * logged (not counted) so a test sees both the error and the shortfall.
 */
const CLIENT = `(() => {
  const { charts } = JSON.parse(document.getElementById('wslab-charts').textContent);
  const byId = new Map(charts.map((c) => [c.id, c]));
  let drawn = 0;
  for (const canvas of document.querySelectorAll('canvas[data-chart]')) {
    const spec = byId.get(canvas.dataset.chart);
    try {
      new Chart(canvas, {
        type: 'line',
        data: { datasets: spec.datasets.map((d) => (d.band ? {
          label: d.label, data: d.data, borderColor: d.color, backgroundColor: d.color + '22', borderWidth: 1, borderDash: [2, 3],
          pointRadius: 0, fill: d.band === 'max' ? '-1' : false, wslabBand: d.band,
        } : {
          label: d.label, data: d.data, borderColor: d.color, backgroundColor: d.color, borderWidth: 2,
          borderDash: d.failed ? [6, 4] : [], pointRadius: d.data.length > 60 ? 0 : 2, spanGaps: false,
        })) },
        options: {
          animation: false, responsive: true, maintainAspectRatio: false,
          interaction: { mode: 'nearest', axis: 'x', intersect: false },
          plugins: { title: { display: true, text: spec.title }, legend: { position: 'bottom', labels: { filter: (item, data) => !data.datasets[item.datasetIndex].wslabBand } } },
          scales: {
            x: { type: spec.xLog ? 'logarithmic' : 'linear', title: { display: true, text: spec.xTitle } },
            y: { type: spec.yLog ? 'logarithmic' : 'linear', beginAtZero: !spec.yLog, title: { display: true, text: spec.yTitle } },
          },
        },
      });
      drawn++;
    } catch (err) {
      console.error('chart ' + canvas.dataset.chart + ': ' + (err && err.message || err));
    }
  }
  document.body.dataset.chartsReady = String(drawn);
})();`;

export const REPORT_CSS = `
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1f2328; margin: 0 auto; padding: 1.5rem; max-width: 1280px; }
h1 { margin-top: 0; } h2 { margin-top: 2.5rem; border-bottom: 1px solid #d0d7de; padding-bottom: .3rem; }
h2 code { font-size: .7em; color: #57606a; font-weight: normal; }
table { border-collapse: collapse; margin: .8rem 0; font-size: 14px; }
th, td { border: 1px solid #d0d7de; padding: .3rem .6rem; text-align: left; vertical-align: top; }
td:first-child { white-space: nowrap; }
th { background: #f6f8fa; } td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.failed td { background: #ffebe9; } tr.skipped td { background: #f6f8fa; color: #57606a; }
ul.verdicts { list-style: none; padding: 0; } ul.verdicts li { margin: .45rem 0; }
.verdict { display: inline-block; min-width: 7.5em; padding: .05rem .5rem; border-radius: 1em; color: #fff; font-weight: 600; font-size: 13px; text-align: center; }
.verdict.confirmed { background: #1a7f37; } .verdict.refuted { background: #cf222e; } .verdict.inconclusive { background: #6e7781; }
.evidence { color: #57606a; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(400px, 1fr)); gap: 1rem; }
figure.chart { position: relative; height: 280px; margin: 0; border: 1px solid #d0d7de; border-radius: 6px; padding: .4rem; }
`;

function html(r: LabResults, chartJs: string): string {
  const designs = [...new Set(r.scenarios.flatMap((s) => s.cells.map((c) => c.design)))];
  // a curve's line that is no cell (cpu-bound's `worker processes (cluster)`) gets the next colour of its own
  const colorOf = (d: string): string => PALETTE[(designs.includes(d) ? designs.indexOf(d) : designs.push(d) - 1) % PALETTE.length];
  const charts = r.scenarios.map((s) => [...(s.curves ?? []).map((c) => curveChart(s, c, colorOf)), ...chartSpecs(s, colorOf)]);
  // `<` escaped: neither the data nor Chart.js may end their <script> early.
  const data = JSON.stringify({ charts: charts.flat() }).replace(/</g, '\\u003c');
  const verdicts = r.claims.map((c) => `<li class="${esc(c.verdict)}"><span class="verdict ${esc(c.verdict)}">` +
    `${VERDICT_MARK[c.verdict]} ${esc(c.verdict)}</span> <code>${esc(c.id)}</code> ${prose(c.claim)}<br>` +
    `<span class="evidence">${prose(c.evidence)}</span></li>`).join('\n');
  return `${htmlHead(`wslab lab report ${r.startedAt}`, 'img-src data:', REPORT_CSS)}
<body>
<h1>wslab lab report</h1>
<p>${prose(runLine(r))}</p>
${r.interrupted ? `<p class="interrupted"><strong>Interrupted (${esc(r.interrupted)})</strong>: this report holds the cells finished before the signal; the others are listed as not run.</p>` : ''}
<h2>Machine</h2>
${htmlTable(null, machineRows(r).map(([k, v]) => ({ cells: [`<strong>${esc(k)}</strong>`, esc(v)] })), [false, false])}
<h2>Verdicts</h2>
<ul class="verdicts">
${verdicts}
</ul>
${r.scenarios.map((s, i) => htmlScenario(s, charts[i])).join('\n')}
<script type="application/json" id="wslab-charts">${data}</script>
<script>${chartJs.replace(/<\/(script)/gi, '<\\/$1')}</script>
<script>${CLIENT}</script>
</body>
</html>
`;
}

const require = createRequire(import.meta.url);

/** Chart.js's UMD bundle (registers every chart type as `window.Chart`), read at report time: the page is offline. */
export async function chartJsSource(): Promise<string> {
  // The package's exports map hides dist/*: resolve its main file and look beside it.
  const dist = path.dirname(require.resolve('chart.js'));
  for (const name of ['chart.umd.js', 'chart.umd.min.js']) {
    try {
      return await readFile(path.join(dist, name), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  throw new Error(`Chart.js UMD bundle not found in ${dist}: run npm install`);
}

/**
 * Writes `results.json`, `report.md` and a self-contained `index.html` (Chart.js inlined, no network) into `dir`,
 * creating it, and returns their paths.
 */
export async function writeReport(results: LabResults, dir: string): Promise<{ html: string; markdown: string; json: string }> {
  await mkdir(dir, { recursive: true });
  const out = { html: path.resolve(dir, 'index.html'), markdown: path.resolve(dir, 'report.md'), json: path.resolve(dir, 'results.json') };
  await Promise.all([
    writeFile(out.json, `${JSON.stringify(results, null, 2)}\n`),
    writeFile(out.markdown, markdown(results)),
    chartJsSource().then((js) => writeFile(out.html, html(results, js))),
  ]);
  return out;
}
