/**
 * `wslab stack`: the shipped Prometheus config and rules (grafana/prometheus/) run by the local `prometheus` binary
 * (Debian's package or the official one, whichever is on PATH) against running servers and swarms — the Docker-free
 * half of deploy/docker/compose.yml. Grafana is not started: point one at the printed URL, or use the Prometheus UI.
 *
 * The shipped prometheus.yml is the template. Only three things change, line by line: each job's `targets` list
 * (from --server / --swarm), the global intervals (--scrape-interval), and the rule files (made absolute, since the
 * generated file lives in a temp dir). Storage is a temp dir too, deleted when the stack stops.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Argv } from 'yargs';
import { UsageError } from '../core/errors.js';
import { freePort, hostForUrl } from '../core/net.js';
import { parseDuration, parseInteger } from '../core/units.js';

/** grafana/prometheus/ of this checkout: prometheus.yml and rules/. */
export const PROMETHEUS_DIR = fileURLToPath(new URL('../../grafana/prometheus/', import.meta.url));

export const STACK_DEFAULTS = Object.freeze({
  server: '127.0.0.1:9464',
  swarm: '127.0.0.1:9465',
  host: '127.0.0.1',
  port: 9090,
});

export interface StackOptions {
  /** `wslab serve` metrics endpoints, host:port. Default [`127.0.0.1:9464`]. */
  readonly servers: readonly string[];
  /** `wslab swarm --metrics-port` endpoints, host:port. Default [`127.0.0.1:9465`]. */
  readonly swarms: readonly string[];
  /** Address of the Prometheus web UI and API. Default `127.0.0.1`. */
  readonly host: string;
  /** Port of the Prometheus web UI and API; 0 = any free port. Default 9090. */
  readonly port: number;
  /** Scrape and rule-evaluation interval, ms; undefined = the shipped file's (5 s). */
  readonly scrapeIntervalMs: number | undefined;
}

/** The jobs of the shipped prometheus.yml, and the option that gives each its targets. */
const JOBS: Readonly<Record<string, 'servers' | 'swarms'>> = Object.freeze({ 'wslab-server': 'servers', 'wslab-swarm': 'swarms' });
const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;

const list = (v: unknown): string[] => (v === undefined ? [] : Array.isArray(v) ? v.map(String) : [String(v)]);

function hostPort(flag: string, text: string): string {
  const m = HOST_PORT.exec(text.trim());
  if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) throw new UsageError(`--${flag}: "${text}" is not host:port (e.g. 127.0.0.1:9464)`);
  return text.trim();
}

/** Checks the stack flags once and returns the frozen options. */
export function stackOptions(a: Record<string, unknown>): StackOptions {
  const servers = list(a.server).map((s) => hostPort('server', s));
  const swarms = list(a.swarm).map((s) => hostPort('swarm', s));
  const host = String(a.host ?? STACK_DEFAULTS.host);
  if (isIP(host) === 0 && host !== 'localhost') throw new UsageError(`--host: "${host}" is not an IP address`);
  let scrapeIntervalMs: number | undefined;
  if (a['scrape-interval'] !== undefined) {
    scrapeIntervalMs = parseDuration('scrape-interval', a['scrape-interval']);
    if (scrapeIntervalMs < 100 || scrapeIntervalMs > 300_000) throw new UsageError('--scrape-interval: must be from 100ms to 5m');
  }
  return Object.freeze({
    servers: Object.freeze(servers.length ? servers : [STACK_DEFAULTS.server]),
    swarms: Object.freeze(swarms.length ? swarms : [STACK_DEFAULTS.swarm]),
    host,
    port: parseInteger('port', a.port ?? STACK_DEFAULTS.port, 0, 65535),
    scrapeIntervalMs,
  });
}

/**
 * The shipped config with this run's targets, intervals and absolute rule paths. Throws if the template no longer
 * has the lines it rewrites (a job without a one-line `targets: [...]`, an unknown job), so a change to the template
 * cannot silently scrape the wrong thing.
 */
export function prometheusConfig(template: string, o: Pick<StackOptions, 'servers' | 'swarms' | 'scrapeIntervalMs'>, dir = PROMETHEUS_DIR): string {
  const rewritten = new Set<string>();
  let job: string | undefined;
  let section = '';
  const out = template.split('\n').map((line) => {
    const top = /^([a-z_]+):/.exec(line);
    if (top) section = top[1];
    const jobName = /^\s*-\s*job_name:\s*['"]?([\w.-]+)/.exec(line);
    if (jobName) job = jobName[1];
    const targets = /^(\s*-?\s*targets:\s*)\[.*\]\s*(#.*)?$/.exec(line);
    if (targets) {
      const key = job !== undefined && Object.hasOwn(JOBS, job) ? JOBS[job] : undefined;
      if (!job || !key || rewritten.has(job)) throw new Error(`${dir}prometheus.yml: unexpected targets line for job ${job ?? '(none)'}`);
      rewritten.add(job);
      return `${targets[1]}${JSON.stringify(o[key])}`;
    }
    const rule = /^(\s*-\s*)(\S+\.ya?ml)\s*$/.exec(line);
    if (section === 'rule_files' && rule) return `${rule[1]}${JSON.stringify(resolve(dir, rule[2]))}`;
    const interval = /^(\s+(?:scrape|evaluation)_interval:\s*)\S+/.exec(line);
    if (section === 'global' && interval && o.scrapeIntervalMs !== undefined) return `${interval[1]}${o.scrapeIntervalMs}ms`;
    return line;
  });
  const missing = Object.keys(JOBS).filter((j) => !rewritten.has(j));
  if (missing.length) throw new Error(`${dir}prometheus.yml: no targets line for job ${missing.join(', ')}`);
  return `# Generated by wslab stack from ${join(dir, 'prometheus.yml')}\n${out.join('\n')}`;
}

/** The absolute path of an executable on PATH, or undefined. */
export function onPath(name: string): string | undefined {
  for (const d of (process.env.PATH ?? '').split(delimiter)) {
    if (!d) continue;
    try {
      accessSync(join(d, name), constants.X_OK);
      return join(d, name);
    } catch { /* not here */ }
  }
  return undefined;
}

/**
 * Binds `port` (0 = any) and lets it go: picks a port for Prometheus, which prints none when given 0, and checks a
 * given one up front, since another Prometheus on it would answer our readiness probe.
 */
async function prometheusPort(host: string, port: number): Promise<number> {
  try {
    return await freePort(host, port);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') throw new UsageError(`--port: ${host}:${port} is in use (pick another --port, or 0 for any free port)`);
    throw err;
  }
}

export interface RunningPrometheus {
  /** The web UI and API, e.g. `http://127.0.0.1:9090/`. */
  readonly url: string;
  readonly pid: number;
  /** The generated config (in the temp dir). */
  readonly configFile: string;
  /** Resolves with the exit code when Prometheus exits, whoever ended it. */
  readonly exited: Promise<number | null>;
  /** The last 64 KiB Prometheus logged. */
  logs(): string;
  /** SIGTERM (SIGKILL after 10 s), then deletes the temp dir. Idempotent. */
  close(): Promise<void>;
}

/** Writes the config, starts Prometheus, and resolves once /-/ready answers (15 s at most). */
export async function startPrometheus(o: StackOptions): Promise<RunningPrometheus> {
  const bin = onPath('prometheus');
  if (!bin) throw new UsageError('prometheus is not installed: apt-get install prometheus (or put the official binary on PATH)');
  const config = prometheusConfig(await readFile(join(PROMETHEUS_DIR, 'prometheus.yml'), 'utf8'), o);
  const port = await prometheusPort(o.host, o.port);
  const dir = await mkdtemp(join(tmpdir(), 'wslab-stack-'));
  const configFile = join(dir, 'prometheus.yml');
  await writeFile(configFile, config);
  const listen = `${hostForUrl(o.host)}:${port}`;
  const child = spawn(bin, [
    `--config.file=${configFile}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=${listen}`,
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const keep = (d: string): void => { log = (log + d).slice(-65_536); };
  child.stdout!.setEncoding('utf8').on('data', keep);
  child.stderr!.setEncoding('utf8').on('data', keep);
  const exited = new Promise<number | null>((ok) => {
    child.once('exit', (code) => ok(code));
    child.once('error', (err) => { keep(`${err.message}\n`); ok(null); });
  });
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => (closing ??= (async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(kill);
    }
    await rm(dir, { recursive: true, force: true });
  })());

  const url = `http://${listen}/`;
  const until = Date.now() + 15_000;
  let gone = false;
  void exited.then(() => { gone = true; });
  for (;;) {
    if (gone) break;
    if (await fetch(`${url}-/ready`).then((r) => r.ok, () => false) && !gone) {
      return { url, pid: child.pid!, configFile, exited, logs: () => log, close };
    }
    if (Date.now() > until) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const logs = log;
  await close();
  if (/address already in use/.test(logs)) throw new UsageError(`--port: ${listen} is in use (pick another --port, or 0 for any free port)`);
  const last = logs.trim().split('\n').filter((l) => /level=(error|fatal)|err=/.test(l)).at(-1) ?? logs.trim().split('\n').at(-1) ?? '';
  throw new Error(`prometheus did not become ready on ${url} within 15 s${gone ? ' (it exited)' : ''}: ${last}`);
}

/** `wslab stack`: run Prometheus until SIGINT/SIGTERM, then stop it and delete its data. */
async function stack(o: StackOptions): Promise<void> {
  let running: RunningPrometheus | undefined;
  let signalled = false;
  const shutdown = (r: RunningPrometheus): void => { void r.close().then(() => process.exit(0)); };
  // A signal while Prometheus is still starting waits for it to be up, so it is stopped rather than orphaned.
  const stop = (): void => {
    if (signalled) return;
    signalled = true;
    process.stderr.write('wslab stack: stopping Prometheus\n');
    if (running) shutdown(running);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  running = await startPrometheus(o);
  if (signalled) return shutdown(running);
  process.stdout.write(`${JSON.stringify({
    event: 'listening', prometheus: running.url, servers: o.servers, swarms: o.swarms, config: running.configFile, pid: running.pid,
  })}\n`);
  process.stderr.write(`wslab stack: Prometheus UI on ${running.url} scraping server ${o.servers.join(', ')} and swarm ${o.swarms.join(', ')} ` +
    `with the rules of ${join(PROMETHEUS_DIR, 'rules')}; Ctrl-C stops it and deletes its data\n`);
  const code = await running.exited;
  if (signalled) return;
  // Ctrl-C reaches Prometheus too (same process group) and it exits 0: that is a stop, not a failure.
  await running.close();
  if (code === 0) process.exit(0);
  process.stderr.write(`wslab stack: prometheus exited ${code}: ${running.logs().trim().split('\n').slice(-3).join('\n')}\n`);
  process.exit(1);
}

export const stackCommand = {
  command: 'stack',
  describe: 'Run the local Prometheus with the shipped config and rules (grafana/prometheus/) against running servers and swarms',
  builder: (y: Argv) => y
    .option('server', { type: 'string', array: true, describe: `metrics host:port of a wslab serve (repeatable; default ${STACK_DEFAULTS.server})` })
    .option('swarm', { type: 'string', array: true, describe: `metrics host:port of a wslab swarm --metrics-port (repeatable; default ${STACK_DEFAULTS.swarm})` })
    .option('host', { type: 'string', describe: `address of the Prometheus UI (default ${STACK_DEFAULTS.host})` })
    .option('port', { type: 'number', describe: `port of the Prometheus UI; 0 = any free port (default ${STACK_DEFAULTS.port})` })
    .option('scrape-interval', { type: 'string', describe: 'scrape and rule interval, e.g. 1s (default: the shipped 5s)' })
    .example('$0 stack --server 127.0.0.1:9464 --swarm 127.0.0.1:9465', 'Prometheus on http://127.0.0.1:9090/ for one server and one swarm'),
  handler: (a: Record<string, unknown>) => stack(stackOptions(a)),
};
