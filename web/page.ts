/**
 * The live page of `--web`: one self-contained HTML document (Chart.js inlined from the report's bundle, the report's
 * CSS and colours, no network but its own WebSocket), drawing the messages of web/messages.ts as they come.
 *
 * The page keeps no timer of the run's: a message changes its state, and the charts that changed are redrawn at most
 * twice a second (`animation: false`, `update('none')`). A chart is created on its first value, so a section whose
 * series stay empty (no RTT in an idle hold) shows no empty frame. `document.body.dataset` carries what a test reads:
 * `state` (connecting, running, ended, lost), `points` (values drawn so far) and `verdicts` (claims shown).
 */
import { chartJsSource, esc, htmlHead, PALETTE, REPORT_CSS, VERDICT_MARK } from '../lab/report.js';

const CSS = `${REPORT_CSS}
header.run { display: flex; gap: 1rem; align-items: baseline; flex-wrap: wrap; }
#state { padding: .05rem .6rem; border-radius: 1em; background: #6e7781; color: #fff; font-size: 13px; font-weight: 600; }
body[data-state="running"] #state { background: #0969da; } body[data-state="ended"] #state { background: #1a7f37; }
body[data-state="lost"] #state { background: #cf222e; }
#now { color: #57606a; }
ol.plan { columns: 2 360px; font-size: 14px; padding-left: 1.6rem; } ol.plan li { margin: .1rem 0; }
ol.plan li.current { font-weight: 600; } ol.plan li.current::after { content: " ◀ running"; color: #0969da; }
ol.plan li.ok::after { content: " ✔"; color: #1a7f37; } ol.plan li.failed { color: #cf222e; } ol.plan li.failed::after { content: " ✘ failed"; }
ol.plan li.skipped { color: #8c959f; }
figure.chart[hidden] { display: none; }
pre.end { background: #f6f8fa; padding: .6rem; overflow-x: auto; font-size: 13px; }
`;

/*
 * Runs in the page. Messages are applied in order (the history first, as one array, then one message per frame);
 * each handler changes the DOM or the chart data, and `dirty` collects the charts a redraw must update.
 */
const CLIENT = `(() => {
  const PALETTE = ${JSON.stringify(PALETTE)};
  const MARK = ${JSON.stringify(VERDICT_MARK)};
  const $ = (id) => document.getElementById(id);
  const el = (tag, attrs, text) => { const e = document.createElement(tag); Object.assign(e, attrs || {}); if (text !== undefined) e.textContent = text; return e; };
  const body = document.body.dataset;
  const colors = new Map();
  const colorOf = (name) => { if (!colors.has(name)) colors.set(name, PALETTE[colors.size % PALETTE.length]); return colors.get(name); };
  const sections = new Map();
  const claims = new Map();
  const dirty = new Set();
  let points = 0, planItems = [], eta = null, drawTimer = null, ended = false;

  const fmtSec = (s) => s >= 90 ? Math.round(s / 60) + ' min' : Math.max(0, Math.round(s)) + ' s';
  setInterval(() => {
    if (eta && !ended) $('eta').textContent = ' · ≈' + fmtSec(eta.sec - (Date.now() - eta.at) / 1000) + ' left';
  }, 1000);

  function chartOf(sec, decl) {
    let c = sec.charts.get(decl.key);
    if (c) return c;
    const fig = sec.figures.get(decl.key);
    fig.hidden = false;
    const canvas = el('canvas');
    canvas.dataset.chart = sec.id + '/' + decl.key;
    canvas.setAttribute('role', 'img');
    canvas.setAttribute('aria-label', sec.title + ': ' + decl.title);
    fig.append(canvas);
    c = { decl, lines: new Map(), chart: new Chart(canvas, {
      type: 'line', data: { datasets: [] },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false, parsing: false, normalized: true,
        interaction: { mode: 'nearest', axis: 'x', intersect: false },
        plugins: { title: { display: true, text: decl.title }, legend: { position: 'bottom' } },
        scales: { x: { type: 'linear', title: { display: true, text: sec.xTitle } }, y: { beginAtZero: true, title: { display: true, text: decl.axis } } },
      },
    }) };
    sec.charts.set(decl.key, c);
    return c;
  }

  function lineOf(c, name) {
    let data = c.lines.get(name);
    if (data) return data;
    data = [];
    c.lines.set(name, data);
    c.chart.data.datasets.push({ label: name, data, borderColor: colorOf(name), backgroundColor: colorOf(name), borderWidth: 2, pointRadius: 0, spanGaps: false });
    return data;
  }

  function renderVerdicts() {
    const ul = $('verdicts');
    ul.replaceChildren(...[...claims.values()].map((c) => {
      const li = el('li', { className: c.verdict });
      li.append(el('span', { className: 'verdict ' + c.verdict }, MARK[c.verdict] + ' ' + c.verdict), ' ', el('code', {}, c.id), ' ' + c.claim, el('br'), el('span', { className: 'evidence' }, c.evidence));
      return li;
    }));
    $('verdicts-head').hidden = claims.size === 0;
    body.verdicts = String(claims.size);
  }

  const handlers = {
    hello(m) {
      $('title').textContent = m.title;
      document.title = m.title + ' · wslab live';
      $('now').textContent = m.kind + ', pid ' + m.pid + ', started ' + m.startedAt;
    },
    plan(m) {
      $('plan-head').hidden = false;
      planItems = [];
      $('plan').replaceChildren(...m.cells.map((c) => {
        const li = el('li', { className: c.skipped ? 'skipped' : '' }, c.scenario + ' × ' + c.design + (c.skipped ? ' (' + c.skipped + ')' : ''));
        if (!c.skipped) planItems.push(li);
        return li;
      }));
      eta = { sec: m.seconds, at: Date.now() };
    },
    step(m) {
      for (const li of planItems) li.classList.remove('current');
      if (planItems[m.index]) planItems[m.index].classList.add('current');
      $('step').textContent = (m.index < planItems.length ? 'cell ' + (m.index + 1) + ' of ' + planItems.length + ': ' : '') + m.label;
      eta = { sec: m.remainingSec, at: Date.now() };
    },
    cell(m) {
      const li = planItems[m.index];
      if (!li) return;
      li.classList.remove('current');
      li.classList.add(m.status);
      if (m.cause) li.title = m.cause;
    },
    section(m) {
      if (sections.has(m.id)) return;
      const s = el('section', { id: 'live-' + m.id });
      const grid = el('div', { className: 'charts' });
      s.append(el('h2', {}, m.title), grid);
      $('sections').append(s);
      // a frame per chart in the declared order, shown at the chart's first value
      const figures = new Map(m.charts.map((c) => [c.key, el('figure', { className: 'chart', hidden: true })]));
      grid.append(...figures.values());
      sections.set(m.id, { id: m.id, title: m.title, xTitle: m.xTitle, decls: new Map(m.charts.map((c) => [c.key, c])), figures, charts: new Map() });
    },
    point(m) {
      const sec = sections.get(m.section);
      if (!sec) return;
      for (const [key, lines] of Object.entries(m.y)) {
        const decl = sec.decls.get(key);
        if (!decl) continue;
        for (const [name, v] of Object.entries(lines)) {
          const c = sec.charts.get(key);
          if (v === null && (!c || !c.lines.has(name))) continue; // nothing to draw yet
          const chart = c || chartOf(sec, decl);
          lineOf(chart, name).push({ x: m.t, y: v === null ? null : v * decl.factor });
          if (v !== null) points++;
          dirty.add(chart);
        }
      }
    },
    verdicts(m) {
      // a message holding every claim shown so far (the lab's last) brings its order: the report's
      const ids = new Set(m.claims.map((c) => c.id));
      if ([...claims.keys()].every((id) => ids.has(id))) claims.clear();
      for (const c of m.claims) claims.set(c.id, c);
      renderVerdicts();
    },
    end(m) {
      ended = true;
      $('eta').textContent = '';
      $('step').textContent = 'ended: ' + m.status;
      for (const li of planItems) li.classList.remove('current');
      const box = $('end');
      box.hidden = false;
      if (m.reportHtml) {
        const a = el('a', { href: URL.createObjectURL(new Blob([m.reportHtml], { type: 'text/html' })), target: '_blank', id: 'report-link' }, 'open the report');
        const p = el('p');
        p.append(a, ' (this run’s report, kept by this page after the run is gone)');
        box.append(p);
      }
      for (const f of m.files) { const p = el('p', {}, 'written: '); p.append(el('code', {}, f)); box.append(p); }
      if (m.lines.length) box.append(el('pre', { className: 'end' }, m.lines.join('\\n')));
      body.state = 'ended';
      $('state').textContent = 'ended';
    },
  };

  function apply(m) {
    const h = handlers[m.type];
    if (!h) { console.warn('wslab live: unknown message ' + m.type); return; }
    try { h(m); } catch (err) { console.error('wslab live: ' + m.type + ': ' + (err && err.message || err)); }
  }

  function draw() {
    drawTimer = null;
    for (const c of dirty) c.chart.update('none');
    dirty.clear();
    body.points = String(points);
  }

  const ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/live');
  ws.onopen = () => { if (!ended) { body.state = 'running'; $('state').textContent = 'live'; } };
  ws.onmessage = (e) => {
    const m = JSON.parse(e.data);
    if (Array.isArray(m)) m.forEach(apply); else apply(m);
    if (ended) draw(); else if (drawTimer === null) drawTimer = setTimeout(draw, 500);
  };
  ws.onclose = () => {
    if (ended) return;
    body.state = 'lost';
    $('state').textContent = 'connection lost';
    draw();
  };
})();`;

/** The page for a run titled `title`: built once when `--web` opens, served to every request for `/`. */
export async function livePage(title: string): Promise<string> {
  const chartJs = await chartJsSource();
  return `${htmlHead(`${title} · wslab live`, "connect-src 'self' blob:; img-src data: blob:", CSS)}
<body data-state="connecting" data-points="0" data-verdicts="0">
<header class="run"><h1 id="title">${esc(title)}</h1><span id="state">connecting</span></header>
<p><span id="now"></span><br><strong id="step"></strong><span id="eta"></span></p>
<div id="end" hidden></div>
<h2 id="verdicts-head" hidden>Verdicts</h2>
<ul class="verdicts" id="verdicts"></ul>
<h2 id="plan-head" hidden>Plan</h2>
<ol class="plan" id="plan"></ol>
<div id="sections"></div>
<script>${chartJs.replace(/<\/(script)/gi, '<\\/$1')}</script>
<script>${CLIENT.replace(/<\/(script)/gi, '<\\/$1')}</script>
</body>
</html>
`;
}
