/**
 * `--web`: the live page of a real run, in headless Debian Chromium (npm playwright-core). While the run goes the
 * page's charts gain points; when it ends the page shows the run's verdicts (the same as results.json) and keeps the
 * report. No console error, no failed request. Screenshots go to the run's folder.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { CHROMIUM, ChromiumPage, chromiumInstalled } from '../helpers/chromium.js';
import { WSLAB } from '../../lab/processes.js';
import type { LabResults } from '../../lab/results.js';

const NO_CHROMIUM = `${CHROMIUM} not found. The --web tests need Debian chromium: .ci/run installs it (locally: apt-get install chromium)`;

/** Chromium, or a skip (a loud failure under CI=true). */
function browserOrSkip(t: { skip(m: string): void }): boolean {
  if (chromiumInstalled()) return true;
  if (process.env.CI === 'true') assert.fail(NO_CHROMIUM);
  t.skip(NO_CHROMIUM);
  return false;
}

/** Spawns `wslab args` and resolves with the live view's URL from its stderr (within 20 s). */
function startWithWeb(args: string[]): { child: ChildProcess; url: Promise<string>; stdout: () => string; stderr: () => string; exit: Promise<number | null> } {
  const child = spawn(process.execPath, [WSLAB, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => { out += d; });
  const url = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no live view URL within 20 s: ${err}`)), 20_000);
    child.stderr!.on('data', (d) => {
      err += d;
      const m = /live view on (http:\/\/\S+)/.exec(err);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`exited ${code} before the live view: ${err}`)); });
  });
  url.catch(() => undefined);
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, url, stdout: () => out, stderr: () => err, exit };
}

describe('wslab lab --web', () => {
  const out = mkdtempSync(join(tmpdir(), 'wslab-web-test-'));
  after(() => rmSync(out, { recursive: true, force: true }));

  it('draws the quick lab live, then shows its verdicts and keeps its report', { timeout: 150_000 }, async (t) => {
    if (!browserOrSkip(t)) return;
    const run = startWithWeb(['lab', '--scale', 'quick', '--scenarios', 'idle-hold,blocking-call', '--out', out, '--web', '0']);
    const page = await ChromiumPage.launch({ width: 1280, height: 1800 });
    try {
      const url = await run.url;
      assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
      await page.navigate(url);
      await page.waitFor("document.body.dataset.state === 'running'");
      // the plan: every cell, in run order, and one of them running
      const plan = await page.evaluate<string[]>("[...document.querySelectorAll('#plan li')].map((li) => li.textContent)");
      assert.deepEqual(plan, ['idle-hold × uws', 'idle-hold × threads', 'blocking-call × uws', 'blocking-call × threads']);
      // points come while the lab runs: two readings 2 s apart, both before the end
      const first = Number(await page.waitFor<string>("Number(document.body.dataset.points) > 0 && document.body.dataset.points"));
      await new Promise((r) => setTimeout(r, 2000));
      const [second, state] = await page.evaluate<[number, string]>('[Number(document.body.dataset.points), document.body.dataset.state]');
      assert.equal(state, 'running', 'the lab still runs (quick idle-hold + blocking-call take ≈20 s)');
      assert.ok(second > first, `the charts gained points while the run went on (${first} → ${second})`);

      await page.waitFor("document.body.dataset.state === 'ended'", 120_000);
      assert.equal(await run.exit, 0, run.stderr());
      const [dir] = readdirSync(out);
      const results = JSON.parse(readFileSync(join(out, dir, 'results.json'), 'utf8')) as LabResults;
      const shown = await page.evaluate<{ id: string; verdict: string }[]>(`[...document.querySelectorAll('#verdicts li')]
        .map((li) => ({ id: li.querySelector('code').textContent, verdict: li.className }))`);
      assert.deepEqual(shown, results.claims.map((c) => ({ id: c.id, verdict: c.verdict })), 'the page shows the verdicts results.json holds');
      assert.equal(results.claims.find((c) => c.id === 'blocking-call')?.verdict, 'confirmed');
      // a chart per sampled series of each scenario, each with a line per design, drawn by Chart.js
      const charts = await page.evaluate<{ id: string; lines: string[]; points: number }[]>(`[...document.querySelectorAll('canvas[data-chart]')]
        .map((c) => ({ id: c.dataset.chart, lines: Chart.getChart(c).data.datasets.map((d) => d.label), points: Chart.getChart(c).data.datasets.reduce((n, d) => n + d.data.length, 0) }))`);
      for (const s of ['idle-hold', 'blocking-call']) {
        const open = charts.find((c) => c.id === `${s}/open`);
        assert.deepEqual(open?.lines, ['uws', 'threads'], `${s}: open connections of both designs`);
        const cells = results.scenarios.find((x) => x.id === s)!.cells;
        assert.equal(open!.points, cells.reduce((n, c) => n + c.series.t.length, 0), `${s}: every sample the report keeps was drawn`);
      }
      assert.ok(charts.some((c) => c.id === 'blocking-call/rttP99Ms'), 'the RTT chart of the blocking call');
      // the report, kept by the page: a blob of the very index.html written
      const report = await page.evaluate<string>("fetch(document.getElementById('report-link').href).then((r) => r.text())");
      assert.equal(report, readFileSync(join(out, dir, 'index.html'), 'utf8'));
      assert.deepEqual(page.errors, []);
      writeFileSync(join(out, dir, 'live.png'), await page.screenshot());
    } finally {
      await page.close();
      run.child.kill('SIGKILL');
    }
  });

  it('refuses a taken --web port in one line before any work', async () => {
    const taken = startWithWeb(['serve', '--port', '0', '--web', '0']);
    try {
      const port = new URL(await taken.url).port;
      const r = spawnSync(process.execPath, [WSLAB, 'lab', '--scale', 'quick', '--out', out, '--web', port], { encoding: 'utf8', timeout: 20_000 });
      assert.equal(r.status, 1);
      assert.match(r.stderr, new RegExp(`^wslab: --web: cannot serve the live view on 127\\.0\\.0\\.1:${port}: .*EADDRINUSE.* \\(use --web 0 for any free port\\)\\n$`));
      assert.equal(r.stdout, '');
    } finally {
      taken.child.kill('SIGTERM');
      await taken.exit;
    }
  });

  it('serve --web draws the server\'s own gauge and swarm --web its progress, then its summary', { timeout: 90_000 }, async (t) => {
    if (!browserOrSkip(t)) return;
    const server = startWithWeb(['serve', '--design', 'ws', '--port', '0', '--metrics-port', '0', '--web', '0']);
    const pages: ChromiumPage[] = [];
    let swarm: ReturnType<typeof startWithWeb> | undefined;
    try {
      const serverPage = await ChromiumPage.launch({ width: 1280, height: 1200 });
      pages.push(serverPage);
      await serverPage.navigate(await server.url);
      const ready = JSON.parse(server.stdout().split('\n')[0]) as { url: string; web: string };
      assert.equal(ready.web, await server.url, 'the ready line carries the page\'s URL');
      const summaryFile = join(out, 'swarm.json');
      swarm = startWithWeb(['swarm', '--url', ready.url, '--connections', '200', '--profile', 'chatty', '--interval', '200ms', '--hold', '5s', '--summary', summaryFile, '--web', '0']);
      const swarmPage = await ChromiumPage.launch({ width: 1280, height: 1200 });
      pages.push(swarmPage);
      await swarmPage.navigate(await swarm.url);
      await swarmPage.waitFor("document.body.dataset.state === 'ended'", 60_000);
      assert.equal(await swarm.exit, 0, swarm.stderr());
      const summary = JSON.parse(readFileSync(summaryFile, 'utf8')) as { heldAtEnd: number };
      assert.equal(summary.heldAtEnd, 200);
      const swarmCharts = await swarmPage.evaluate<Record<string, Record<string, number>>>(`Object.fromEntries([...document.querySelectorAll('canvas[data-chart]')]
        .map((c) => [c.dataset.chart, Object.fromEntries(Chart.getChart(c).data.datasets.map((d) => [d.label, Math.max(...d.data.map((p) => p.y))]))]))`);
      assert.deepEqual(swarmCharts['swarm/connections'], { open: 200, connecting: swarmCharts['swarm/connections'].connecting, target: 200 });
      assert.ok(swarmCharts['swarm/rtt']?.p99 > 0, 'round trips drawn');
      const end = await swarmPage.evaluate<string>("document.getElementById('end').textContent");
      assert.match(end, /held at end\s+200/);
      assert.ok(end.includes(summaryFile), 'the page names the summary written');
      assert.deepEqual(swarmPage.errors, []);
      writeFileSync(join(out, 'swarm-live.png'), await swarmPage.screenshot());
      // the server's page saw the swarm through its own gauge: 200 open at the peak, and 0 again after the close
      const serverOpen = await serverPage.waitFor<number[]>(`(() => { const c = document.querySelector('canvas[data-chart="server/open"]');
        const d = c && Chart.getChart(c).data.datasets[0].data.map((p) => p.y); return d && d.includes(200) && d.at(-1) === 0 && d; })()`, 10_000);
      assert.equal(Math.max(...serverOpen), 200);
      assert.equal(await serverPage.evaluate('document.body.dataset.state'), 'running');
      server.child.kill('SIGTERM');
      assert.equal(await server.exit, 0);
      await serverPage.waitFor("document.body.dataset.state === 'ended'");
      assert.match(await serverPage.evaluate<string>("document.getElementById('step').textContent"), /ended: stopped \(SIGTERM\)/);
      assert.deepEqual(serverPage.errors, []);
    } finally {
      for (const p of pages) await p.close();
      swarm?.child.kill('SIGKILL');
      server.child.kill('SIGKILL');
    }
  });

  it('refuses bad --web input in one line', () => {
    for (const [args, msg] of [
      [['serve', '--port', '0', '--web', '70000'], /--web/],
      [['serve', '--port', '0', '--web-host', '127.0.0.1'], /^wslab: --web-host needs --web \(the page is off without it\)$/],
      [['swarm', '--url', 'ws://127.0.0.1:1/', '--web', '0', '--web-host', 'localhost'], /^wslab: --web-host: "localhost" is not an IP address$/],
    ] as const) {
      const r = spawnSync(process.execPath, [WSLAB, ...args], { encoding: 'utf8', timeout: 15_000 });
      assert.equal(r.status, 1, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr.trim(), msg);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    }
  });
});
