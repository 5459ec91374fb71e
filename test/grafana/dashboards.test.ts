/**
 * The Grafana/Prometheus stack of grafana/ and deploy/docker/: the dashboards' structure, the shipped Prometheus
 * config and rules (promtool), the compose file (docker-compose's Compose Specification schema, no engine needed),
 * and — with no Grafana binary here — every panel query of every dashboard evaluated by a real Prometheus that
 * scrapes a server of every registered design and a chatty swarm, all on loopback.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { onPath, startPrometheus, type RunningPrometheus } from '../../cli/stack.js';
import { freePort } from '../../core/net.js';
import { eventually, spawnServer, startSwarm, WSLAB, type ServerProcess, type SwarmRun } from '../../lab/processes.js';
import { DESIGNS } from '../../server/registry.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const GRAFANA = join(ROOT, 'grafana');
const RULES = ['recording.yml', 'alerts.yml'].map((f) => join(GRAFANA, 'prometheus', 'rules', f));
const COMPOSE = join(ROOT, 'deploy', 'docker', 'compose.yml');

const NEED_PROMETHEUS = 'CI needs Debian prometheus: .ci/run installs it';
const NEED_COMPOSE = 'CI needs Debian docker-compose: .ci/run installs it';
/** Skip locally when a Debian binary is missing; under CI=true run anyway, and the first assertion fails loudly. */
const skipWithout = (bins: string[], why: string): string | false =>
  bins.every((b) => onPath(b)) || process.env.CI === 'true' ? false : why;

interface Target { refId: string; expr: string; datasource?: { uid?: string } }
interface Panel {
  id: number; type: string; title: string; datasource?: { uid?: string }; targets?: Target[]; panels?: Panel[];
  gridPos: { x: number; y: number; w: number; h: number };
  fieldConfig?: { defaults?: { unit?: string; thresholds?: { steps?: unknown[] } } };
  links?: { url: string }[];
}
interface Variable {
  name: string; type: string; query?: string | { query: string }; allValue?: string; includeAll?: boolean;
  datasource?: { uid?: string }; current?: { value?: string | string[] };
}
interface Dashboard {
  uid: string; title: string; schemaVersion: number; tags: string[]; panels: Panel[];
  templating: { list: Variable[] }; links: { type: string; tags?: string[]; url?: string }[];
}

const dashboards: { file: string; d: Dashboard }[] = readdirSync(join(GRAFANA, 'dashboards'))
  .filter((f) => f.endsWith('.json')).sort()
  .map((file) => ({ file, d: JSON.parse(readFileSync(join(GRAFANA, 'dashboards', file), 'utf8')) as Dashboard }));
const allPanels = (ps: Panel[]): Panel[] => ps.flatMap((p) => [p, ...allPanels(p.panels ?? [])]);
const queryPanels = (d: Dashboard): Panel[] => allPanels(d.panels).filter((p) => p.type !== 'row');

/** The uid the datasource provisioning file gives the Prometheus datasource. */
const PROVISIONED_UID = /^\s*uid:\s*(\S+)\s*$/m.exec(readFileSync(join(GRAFANA, 'provisioning', 'datasources', 'prometheus.yml'), 'utf8'))?.[1];

/** Grafana built-ins the dashboards use: a rate window of ten of the test's 1 s scrapes. */
const BUILTINS: Record<string, string> = { __rate_interval: '10s' };

/**
 * `$var` / `${var}` / `${var:fmt}` → the value Grafana sends for "All" (allValue), or one chosen in `pick`, or a
 * built-in.
 */
function substitute(expr: string, d: Dashboard, pick: Record<string, string> = {}): string {
  const values = new Map<string, string>(Object.entries(BUILTINS));
  for (const v of d.templating.list) if (v.type === 'query') values.set(v.name, pick[v.name] ?? v.allValue ?? '.*');
  return expr.replace(/\$\{(\w+)(?::\w+)?\}|\$(\w+)/g, (m, a?: string, b?: string) => values.get((a ?? b)!) ?? m);
}

const varQuery = (v: Variable): string => (typeof v.query === 'string' ? v.query : v.query?.query ?? '');

describe('grafana dashboards: structure', () => {
  it('has the three dashboards, provisioned from one datasource uid', () => {
    assert.deepEqual(dashboards.map((x) => x.file), ['overview.json', 'slow-client-dos.json', 'swarm.json']);
    assert.equal(PROVISIONED_UID, 'wslab-prometheus');
    const uids = dashboards.map((x) => x.d.uid);
    assert.equal(new Set(uids).size, uids.length, `dashboard uids unique: ${uids.join(', ')}`);
    // The dashboards provider reads the folder compose mounts them into.
    const providerPath = /^\s*path:\s*(\S+)\s*$/m.exec(readFileSync(join(GRAFANA, 'provisioning', 'dashboards', 'wslab.yml'), 'utf8'))?.[1];
    const mount = /-\s*\.\.\/\.\.\/grafana\/dashboards:([^:\s]+)/.exec(readFileSync(COMPOSE, 'utf8'))?.[1];
    assert.ok(providerPath && providerPath === mount, `provider path ${providerPath} = compose mount ${mount}`);
  });

  for (const { file, d } of dashboards) {
    it(`${file}: current schema, variables, and on every panel a title, a unit, thresholds and the provisioned datasource`, () => {
      assert.ok(d.schemaVersion >= 39, `${file}: schemaVersion ${d.schemaVersion}`);
      assert.ok(d.title && d.tags.includes('wslab'), `${file}: title and the wslab tag`);
      const vars = new Map(d.templating.list.map((v) => [v.name, v]));
      const ds = vars.get('datasource');
      assert.equal(ds?.type, 'datasource');
      assert.equal(ds?.query, 'prometheus');
      assert.equal(ds?.current?.value, PROVISIONED_UID, `${file}: the datasource variable defaults to the provisioned uid`);
      const resolves = (uid: string | undefined): boolean => uid === '${datasource}' || uid === PROVISIONED_UID;
      for (const name of ['design', 'instance']) {
        const v = vars.get(name);
        assert.equal(v?.type, 'query', `${file}: a ${name} query variable`);
        assert.ok(v?.includeAll && v.allValue === '.*', `${file}: ${name} has All = .*`);
        assert.ok(resolves(v?.datasource?.uid), `${file}: ${name} uses \${datasource}`);
      }
      const ids = allPanels(d.panels).map((p) => p.id);
      assert.equal(new Set(ids).size, ids.length, `${file}: panel ids unique`);
      for (const p of queryPanels(d)) {
        const where = `${file} › ${p.title || `panel ${p.id}`}`;
        assert.ok(p.title?.trim(), `${where}: title`);
        assert.ok(p.fieldConfig?.defaults?.unit, `${where}: unit`);
        assert.ok((p.fieldConfig?.defaults?.thresholds?.steps?.length ?? 0) >= 1, `${where}: thresholds`);
        assert.ok(resolves(p.datasource?.uid), `${where}: datasource ${p.datasource?.uid}`);
        assert.ok(p.gridPos.x + p.gridPos.w <= 24, `${where}: fits the grid`);
        assert.ok(p.targets?.length, `${where}: has queries`);
        for (const t of p.targets) {
          assert.ok(resolves(t.datasource?.uid), `${where} [${t.refId}]: datasource`);
          assert.doesNotMatch(substitute(t.expr, d), /\$/, `${where} [${t.refId}]: every variable is defined`);
        }
      }
    });
  }

  it('link to each other', () => {
    const uids = new Set(dashboards.map((x) => x.d.uid));
    for (const { file, d } of dashboards) {
      const tagged = d.links.filter((l) => l.type === 'dashboards').flatMap((l) => l.tags ?? []);
      const reachable = dashboards.filter((o) => o.d.uid !== d.uid && o.d.tags.some((t) => tagged.includes(t)));
      assert.equal(reachable.length, dashboards.length - 1, `${file}: a dashboards link reaches the others by tag`);
      for (const p of queryPanels(d)) {
        for (const l of p.links ?? []) {
          const uid = /^\/d\/([\w-]+)/.exec(l.url)?.[1];
          assert.ok(uid && uids.has(uid), `${file} › ${p.title}: link ${l.url} names a shipped dashboard`);
        }
      }
    }
  });
});

describe('prometheus config and rules', { skip: skipWithout(['promtool'], NEED_PROMETHEUS) }, () => {
  it('pass promtool check config and check rules', async () => {
    assert.ok(onPath('promtool'), NEED_PROMETHEUS);
    await run('promtool', ['check', 'config', join(GRAFANA, 'prometheus', 'prometheus.yml')], { timeout: 20_000 });
    await run('promtool', ['check', 'rules', ...RULES], { timeout: 20_000 });
  });

  it('fire each alert on its condition and stay quiet just below it (promtool test rules)', async () => {
    assert.ok(onPath('promtool'), NEED_PROMETHEUS);
    const dir = await mkdtemp(join(tmpdir(), 'wslab-alerts-'));
    const firing = (alert: string, labels: string): string =>
      `ALERTS{alertname="${alert}",alertstate="firing",${labels},severity="warning"}`;
    const srv = 'job="wslab-server",instance="127.0.0.1:9464"';
    const sw = 'job="wslab-swarm",instance="127.0.0.1:9465"';
    const tc = (name: string, series: [string, string][], at: string, expect: string | null): string => `
  # ${name}
  - interval: 5s
    input_series:
${series.map(([s, v]) => `      - series: '${s}'\n        values: '${v}'`).join('\n')}
    promql_expr_test:
      - expr: ALERTS{alertstate="firing"}
        eval_time: ${at}
        exp_samples:${expect ? `\n          - labels: '${expect}'\n            value: 1` : ' []'}`;
    const tests = [
      tc('a 2.5 s stall', [[`wslab_event_loop_delay_seconds{${srv},design="uws",quantile="1"}`, '0.01 0.01 2.5 0.01']], '10s',
        firing('WslabEventLoopBlocked', `${srv},design="uws"`)),
      tc('stalls under 1 s', [[`wslab_event_loop_delay_seconds{${srv},design="uws",quantile="1"}`, '0.9x20']], '30s', null),
      tc('a queue growing for 2 min', [[`wslab_pool_queued{${srv},design="threads"}`, '0+5x40']], '2m30s',
        firing('WslabPoolQueueGrowing', `${srv},design="threads"`)),
      tc('a long but steady queue', [[`wslab_pool_queued{${srv},design="threads"}`, '50x40']], '2m30s', null),
      tc('a saturated swarm', [[`wslab_swarm_event_loop_delay_seconds{${sw},quantile="0.99"}`, '0.2x20']], '1m', firing('WslabSwarmSelfSaturated', sw)),
      tc('a busy but fine swarm', [[`wslab_swarm_event_loop_delay_seconds{${sw},quantile="0.99"}`, '0.05x20']], '1m', null),
      tc('100 kB per connection over 10,000', [
        [`process_resident_memory_bytes{${srv}}`, '1e9x40'], [`wslab_connections_open{${srv},design="threads"}`, '10000x40'],
      ], '2m', firing('WslabServerMemoryPerConnectionOverBudget', 'design="threads"')),
      tc('the baseline over a few connections', [
        [`process_resident_memory_bytes{${srv}}`, '1e8x40'], [`wslab_connections_open{${srv},design="uws"}`, '100x40'],
      ], '2m', null),
      tc('20 kB per connection', [
        [`process_resident_memory_bytes{${srv}}`, '2e8x40'], [`wslab_connections_open{${srv},design="threads"}`, '10000x40'],
      ], '2m', null),
    ];
    const file = join(dir, 'alerts.test.yml');
    await writeFile(file, `rule_files:\n${RULES.map((r) => `  - ${JSON.stringify(r)}`).join('\n')}\nevaluation_interval: 5s\ntests:${tests.join('\n')}\n`);
    try {
      await run('promtool', ['test', 'rules', file], { timeout: 20_000 });
    } catch (err) {
      assert.fail(`promtool test rules:\n${(err as { stdout?: string }).stdout ?? ''}${(err as { stderr?: string }).stderr ?? ''}`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('docker compose file', { skip: skipWithout(['docker-compose'], NEED_COMPOSE) }, () => {
  it('validates against the Compose Specification schema, and every file it mounts or builds from exists', async () => {
    assert.ok(onPath('docker-compose'), NEED_COMPOSE);
    // docker-compose 1.29 validates against its bundled compose_spec.json and checks the build context, engine-free.
    try {
      await run('docker-compose', ['-f', COMPOSE, 'config', '-q'], { timeout: 30_000 });
    } catch (err) {
      assert.fail(`docker-compose config: ${(err as { stderr?: string }).stderr ?? (err as Error).message}`);
    }
    const text = readFileSync(COMPOSE, 'utf8');
    const base = dirname(COMPOSE);
    const mounts = [...text.matchAll(/^\s*-\s*(\.{1,2}\/[^:\s]+):/gm)].map((m) => m[1]);
    assert.ok(mounts.length >= 3, `bind mounts found: ${mounts.join(', ')}`);
    for (const m of mounts) assert.ok(existsSync(resolve(base, m)), `compose mounts ${m}, which does not exist`);
    const context = resolve(base, /^\s*context:\s*(\S+)/m.exec(text)?.[1] ?? '?');
    const dockerfile = join(context, /^\s*dockerfile:\s*(\S+)/m.exec(text)?.[1] ?? '?');
    assert.ok(existsSync(dockerfile), `compose builds from ${dockerfile}`);
    for (const m of readFileSync(dockerfile, 'utf8').matchAll(/^COPY\s+(?:--\S+\s+)*(.+)\s+\S+$/gm)) {
      for (const src of m[1].trim().split(/\s+/)) assert.ok(existsSync(join(context, src)), `Dockerfile copies ${src}, which does not exist`);
    }
  });
});

interface Series { metric: Record<string, string>; values: [number, string][] }
interface ApiResponse<T> { status: string; data: T; error?: string }

/**
 * Series a design never has, so panels built on them are empty when one design is selected: checked to be valid
 * queries that return nothing, and this list is exact (a listed pair that has data fails, so it gets removed).
 */
const NOT_FOR_DESIGN: readonly { metric: string; designs: readonly string[]; why: string }[] = [
  { metric: 'wslab_threads', designs: ['ws', 'uws', 'cluster'], why: 'only the threads design has connection threads' },
  { metric: 'wslab_pool_queued', designs: ['ws', 'uws', 'cluster'], why: 'only the threads design has an accept queue' },
  { metric: 'wslab_worker_restarts_total', designs: ['ws', 'uws', 'threads'], why: "a cluster primary's counter" },
];
/** Flags that give a design the series its panels show in a short run: a bounded pool, one cluster worker. */
const DESIGN_FLAGS: Record<string, string[]> = { threads: ['--pool', '16'], cluster: ['--workers', '1'] };

/**
 * The system-under-test row: a server we did not write (Debian python3-websockets, asyncio, echoing), watched by
 * `wslab watch` from outside. Under Debian's own python3: a pyenv python3 earlier on PATH does not see its packages.
 */
const PYTHON = '/usr/bin/python3';
const NEED_PYTHON = 'CI needs Debian python3-websockets: .ci/run installs it';
const hasPython = (): boolean => spawnSync(PYTHON, ['-c', 'import websockets'], { stdio: 'ignore' }).status === 0;
const ECHO_PY = 'import asyncio, sys, websockets\n' +
  'async def echo(ws, path=None):\n    async for m in ws:\n        await ws.send(m)\n' +
  "async def main():\n    async with websockets.serve(echo, '127.0.0.1', int(sys.argv[1]), ping_interval=None):\n        print('ready', flush=True)\n        await asyncio.Future()\n" +
  'asyncio.run(main())\n';

describe('every dashboard query against a real Prometheus', {
  skip: skipWithout(['prometheus', 'promtool'], NEED_PROMETHEUS) || (hasPython() || process.env.CI === 'true' ? false : NEED_PYTHON),
}, () => {
  const servers: { design: string; p: ServerProcess }[] = [];
  let python: ChildProcess | undefined;
  let watcher: ChildProcess | undefined;
  let swarm: SwarmRun | undefined;
  let prom: RunningPrometheus | undefined;
  let start = 0;
  let scratch: string | undefined;
  const CONNECTIONS = 24;

  /** Prometheus' HTTP API; queries go as POST forms (some are long). */
  const api = async <T>(path: string, params: Record<string, string> = {}, method: 'GET' | 'POST' = 'GET'): Promise<T> => {
    const form = new URLSearchParams(params);
    const res = method === 'POST'
      ? await fetch(new URL(`api/v1/${path}`, prom!.url), { method, body: form, signal: AbortSignal.timeout(5000) })
      : await fetch(new URL(`api/v1/${path}?${form}`, prom!.url), { signal: AbortSignal.timeout(5000) });
    const body = await res.json() as ApiResponse<T>;
    if (body.status !== 'success') throw new Error(`${path}: ${body.error}`);
    return body.data;
  };
  /** The series of `query` over the whole run, 1 s apart. */
  const range = (query: string): Promise<Series[]> =>
    api<{ result: Series[] }>('query_range', { query, start: String(start), end: String(Date.now() / 1000), step: '1' }, 'POST').then((d) => d.result);
  const hasData = (s: Series[]): boolean => s.some((x) => x.values.some(([, v]) => Number.isFinite(Number(v))));
  /** Every panel target of every dashboard, with its variables chosen by `pick` (per dashboard). */
  const queries = (pick: (d: Dashboard) => Record<string, string> = () => ({})) => dashboards.flatMap(({ d }) =>
    queryPanels(d).flatMap((p) => (p.targets ?? []).map((t) => ({ where: `${d.title} › ${p.title} [${t.refId}]`, raw: t.expr, expr: substitute(t.expr, d, pick(d)) }))));

  /** Runs `check` over `list` until no failure is left or `ms` pass; returns the last failures. */
  async function untilAllPass<T>(list: readonly T[], check: (x: T) => Promise<string | null>, ms: number): Promise<string[]> {
    const deadline = Date.now() + ms;
    for (;;) {
      const failures = (await Promise.all(list.map(check))).filter((f): f is string => f !== null);
      if (failures.length === 0 || Date.now() > deadline) return failures;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }

  before(async () => {
    assert.ok(onPath('prometheus') && onPath('promtool'), NEED_PROMETHEUS);
    // Every registered design, so each design's own series (pool, threads, cluster restarts) is scraped.
    servers.push(...await Promise.all([...DESIGNS.keys()].map(async (design) => ({ design, p: await spawnServer(design, DESIGN_FLAGS[design] ?? []) }))));
    scratch = await mkdtemp(join(tmpdir(), 'wslab-grafana-'));
    assert.ok(hasPython(), NEED_PYTHON);
    const pyPort = await freePort('127.0.0.1');
    await writeFile(join(scratch, 'echo.py'), ECHO_PY);
    python = spawn(PYTHON, [join(scratch, 'echo.py'), String(pyPort)], { stdio: ['ignore', 'pipe', 'inherit'] });
    await once(python.stdout!, 'data');
    watcher = spawn(process.execPath, [WSLAB, 'watch', '--pid', String(python.pid), '--port', String(pyPort), '--name', 'py-echo', '--metrics-port', '0'],
      { stdio: ['ignore', 'pipe', 'inherit'] });
    const watching = JSON.parse(String((await once(watcher.stdout!, 'data'))[0]).split('\n')[0]) as { metrics: string };
    const summary = join(scratch, 'summary.json');
    // A slow ramp (12 s) so that Prometheus, started once the swarm's metrics port is known, scrapes connects too.
    // The Python server takes its share of the swarm's connections (round-robin): the watch row has them to show.
    swarm = await startSwarm([
      ...servers.flatMap((s) => ['--url', s.p.url]), '--url', `ws://127.0.0.1:${pyPort}/`, '--connections', String(CONNECTIONS), '--rate', '2', '--hold', '60s',
      '--profile', 'chatty', '--interval', '100ms', '--command', 'echo 32',
    ], summary);
    assert.ok(swarm.metricsUrl, 'the swarm serves /metrics');
    start = Date.now() / 1000 - 1;
    prom = await startPrometheus({
      servers: [...servers.map((s) => new URL(s.p.metricsUrl).host), new URL(watching.metrics).host], swarms: [new URL(swarm.metricsUrl).host],
      host: '127.0.0.1', port: 0, scrapeIntervalMs: 1000,
    });
  });

  after(async () => {
    if (swarm && swarm.child.exitCode === null && swarm.child.signalCode === null) {
      swarm.child.kill('SIGTERM');
      const killed = setTimeout(() => swarm?.child.kill('SIGKILL'), 10_000);
      await swarm.done;
      clearTimeout(killed);
    }
    await prom?.close();
    await Promise.all(servers.map((s) => s.p.stop()));
    for (const c of [watcher, python]) if (c && c.exitCode === null) { c.kill('SIGTERM'); await once(c, 'exit'); }
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  it('runs the shipped rules on a config promtool accepts, and scrapes every server and the swarm', async () => {
    await run('promtool', ['check', 'config', prom!.configFile], { timeout: 20_000 });
    let last = '';
    const up = await eventually(async () => {
      const d = await api<{ activeTargets: { scrapeUrl: string; health: string; lastError: string }[] }>('targets');
      last = JSON.stringify(d.activeTargets.map((t) => [t.scrapeUrl, t.health, t.lastError]));
      return d.activeTargets.length === servers.length + 2 && d.activeTargets.every((t) => t.health === 'up');
    }, 15_000);
    assert.ok(up, `targets up: ${last}`);
  });

  it('returns data for every panel query of every dashboard, all designs selected', async () => {
    const all = queries();
    assert.ok(all.length >= 50, `${all.length} queries`);
    // Retried until every query has data (rates need two scrapes; connects happen during the ramp), 40 s at most.
    const failures = await untilAllPass(all, async (q) => {
      const series = await range(q.expr).catch((err: Error) => err);
      if (series instanceof Error) return `${q.where}: ${q.expr} → ${series.message}`;
      return hasData(series) ? null : `${q.where}: ${q.expr} → ${series.length ? 'only NaN/Inf' : 'no series'}`;
    }, 40_000);
    assert.deepEqual(failures, [], `queries without data:\n${failures.join('\n')}`);
  });

  it('returns data for every panel query with one design selected, except the series that design never has', async () => {
    const failures: string[] = [];
    for (const { design, p } of servers) {
      const instance = new URL(p.metricsUrl).host.replace(/[.]/g, '\\\\.');
      // The server instance only where $instance means a server (on the swarm dashboard it is the swarm's).
      const list = queries((d) => ({
        design, ...(varQuery(d.templating.list.find((v) => v.name === 'instance')!).includes('wslab_connections_open') ? { instance } : {}),
      })).filter((q) => q.raw.includes('$design') || q.raw.includes('${design'));
      failures.push(...await untilAllPass(list, async (q) => {
        const exempt = NOT_FOR_DESIGN.find((n) => n.designs.includes(design) && new RegExp(`\\b${n.metric}\\b`).test(q.raw));
        const series = await range(q.expr).catch((err: Error) => err);
        if (series instanceof Error) return `${design}: ${q.where}: ${q.expr} → ${series.message}`;
        if (exempt) return hasData(series) ? `${design}: ${q.where}: has data now: remove ${design} from NOT_FOR_DESIGN ${exempt.metric}` : null;
        return hasData(series) ? null : `${design}: ${q.where}: ${q.expr} → no data`;
      }, 10_000));
    }
    assert.deepEqual(failures, [], `queries without data for one design:\n${failures.join('\n')}`);
  });

  it('evaluates every recording rule to data, and every rule is healthy', async () => {
    const d = await api<{ groups: { name: string; rules: { name: string; type: string; health: string; lastError?: string }[] }[] }>('rules');
    const rules = d.groups.flatMap((g) => g.rules);
    assert.equal(rules.filter((r) => r.type === 'alerting').length, 4);
    const recording = rules.filter((r) => r.type === 'recording');
    assert.ok(recording.length >= 5, `${recording.length} recording rules`);
    for (const r of rules) assert.equal(r.health, 'ok', `${r.name}: ${r.lastError}`);
    const empty: string[] = [];
    for (const r of recording) if (!hasData(await range(r.name))) empty.push(r.name);
    assert.deepEqual(empty, [], `recording rules without data: ${empty.join(', ')}`);
  });

  it('lists values for every template variable', async () => {
    for (const { d } of dashboards) {
      for (const v of d.templating.list.filter((x) => x.type === 'query')) {
        const m = /^label_values\((.+),\s*(\w+)\)$/.exec(substitute(varQuery(v), d));
        assert.ok(m, `${d.title} › $${v.name}: a label_values() query`);
        const values = await api<string[]>(`label/${m[2]}/values`, { 'match[]': m[1], start: String(start) });
        assert.ok(values.length > 0, `${d.title} › $${v.name}: ${varQuery(v)} lists nothing`);
      }
    }
    const designs = await api<string[]>('label/design/values', { 'match[]': 'wslab_connections_open', start: String(start) });
    assert.deepEqual(designs.sort(), [...DESIGNS.keys()].sort(), 'the design variable offers every design');
  });
});
