/**
 * `wslab serve --via nginx|haproxy`: the Debian binary in front of a design, as most production WebSocket servers
 * run. The config comes from the templates beside this file (nginx.conf, haproxy.cfg), filled in for the run
 * (listen address, backend, open-files sizing, the profile's timeouts, the per-address limit) and written to a
 * temporary folder; the proxy runs in the foreground as a child of `wslab serve`, so it is part of the server's
 * process tree (the lab samples its memory and CPU with the design's), dies with it (`setpriv --pdeathsig`: even
 * when serve is killed with -9) and is stopped after the design has closed its connections. Its own counters are
 * read at each scrape into the wslab_proxy_* metrics.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Registry } from 'prom-client';
import { freePort, hostForUrl } from '../../core/net.js';
import { counter, gauge } from '../../metrics/prom.js';
import { PROXY_CONNECTIONS_ACCEPTED, PROXY_CONNECTIONS_OPEN, PROXY_UP } from '../../metrics/proxy.js';
import { PROFILES, type ProxyKind, type ViaProfile } from './profiles.js';

export { PROXIES, VIA_PROFILES, type ProxyKind, type ViaProfile } from './profiles.js';

/** How the Debian package is called, for a one-line error where the binary is missing. */
const PACKAGE: Record<ProxyKind, string> = { nginx: 'nginx', haproxy: 'haproxy' };

/** Why `kind` cannot run here (the binary is not installed), or undefined when it can. */
export function proxyUnavailable(kind: ProxyKind): string | undefined {
  return versionText(kind) === undefined ? `${kind} is not installed here (Debian: apt-get install ${PACKAGE[kind]})` : undefined;
}

/** What `<kind> -v` prints (both write it to stderr), or undefined when it does not run. */
function versionText(kind: ProxyKind): string | undefined {
  const r = spawnSync(kind, ['-v'], { encoding: 'utf8' });
  return r.error || r.status !== 0 ? undefined : `${r.stdout ?? ''}${r.stderr ?? ''}`;
}

/** The proxy's version line (`nginx/1.22.1`, `HAProxy 2.6.12`), for the ready line and the lab's machine table. */
export function proxyVersion(kind: ProxyKind): string {
  const text = versionText(kind) ?? '';
  return (kind === 'nginx' ? /nginx\/[\d.]+/.exec(text)?.[0] : /HAProxy version [\d.]+/.exec(text)?.[0]?.replace(' version', '')) ?? kind;
}

export interface ProxyOptions {
  readonly kind: ProxyKind;
  readonly profile: ViaProfile;
  /** Where clients connect: the run's --host and --port (0 = a free port, chosen here). */
  readonly host: string;
  readonly port: number;
  /** The design's listener behind it. */
  readonly backendHost: string;
  readonly backendPort: number;
  /** Connections one client address may hold at the proxy (the run's --max-conns-per-ip); 0 = no limit. */
  readonly maxConnsPerIp: number;
  /** The open-files limit the proxy inherits: what its connection limits are sized from. */
  readonly fdLimit: number;
}

export interface ProxyCounts { readonly open: number; readonly accepted: number }

export interface RunningProxy {
  readonly kind: ProxyKind;
  readonly port: number;
  readonly pid: number;
  readonly version: string;
  /** The proxy's own counters now, or null when its status page does not answer. */
  counts(): Promise<ProxyCounts | null>;
  /** Registers the wslab_proxy_* metrics, read from `counts()` at each scrape. */
  register(registry: Registry): void;
  stderr(): string;
  stop(): Promise<void>;
}

const TEMPLATE_DIR = fileURLToPath(new URL('../../../server/via/', import.meta.url));
const hostPort = (h: string, p: number): string => `${hostForUrl(h)}:${p}`;
/** Fails on a placeholder the values do not fill: a template and its profile table must agree. */
function fill(template: string, values: Record<string, string | number>): string {
  return template.replace(/\{\{(\w+)\}\}/g, (_, k: string) => {
    if (!(k in values)) throw new Error(`server/via template: no value for {{${k}}}`);
    return String(values[k]);
  });
}

/** GET on the loopback status port, a fresh connection each time (a kept-alive one would count as a client). */
function get(port: number, path: string, timeoutMs = 1000): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false, headers: { connection: 'close' }, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`status page answered ${res.statusCode}`))));
    });
    req.on('timeout', () => req.destroy(new Error('status page timed out')));
    req.on('error', reject);
    req.end();
  });
}

/** nginx stub_status: "Active connections: 3 \n server accepts handled requests\n 10 10 12 \n…". */
export function parseStubStatus(text: string): { active: number; accepts: number } {
  const active = /Active connections:\s*(\d+)/.exec(text);
  const totals = /\n\s*(\d+)\s+(\d+)\s+(\d+)\s*\n/.exec(text);
  if (!active || !totals) throw new Error(`not an nginx stub_status page: ${text.slice(0, 80)}`);
  return { active: Number(active[1]), accepts: Number(totals[1]) };
}

/** The HAProxy stats CSV's `clients` frontend row (the template's): current sessions (scur) and total sessions (stot). */
export function parseHaproxyCsv(text: string): { scur: number; stot: number } {
  const [head, ...rows] = text.trim().split('\n');
  const cols = head.replace(/^#\s*/, '').split(',');
  const row = rows.map((r) => r.split(',')).find((r) => r[0] === 'clients' && r[1] === 'FRONTEND');
  if (!row) throw new Error('the HAProxy stats CSV has no clients FRONTEND row');
  return { scur: Number(row[cols.indexOf('scur')]), stot: Number(row[cols.indexOf('stot')]) };
}

/** Starts the proxy and waits until its status page answers (at most 10 s); fails with the proxy's own last line. */
export async function startProxy(o: ProxyOptions): Promise<RunningProxy> {
  const dir = await mkdtemp(join(tmpdir(), `wslab-${o.kind}-`));
  // nginx and HAProxy cannot be told to pick a port
  const port = o.port || await freePort(o.host);
  const statsPort = await freePort('127.0.0.1');
  // two descriptors per proxied WebSocket (client and backend), and a margin for the proxy's own files
  const fds = Math.max(256, o.fdLimit - 100);
  const values: Record<string, string | number> = {
    ...PROFILES[o.kind][o.profile], profile: o.profile, dir, listen: hostPort(o.host, port), stats: hostPort('127.0.0.1', statsPort),
    backend: hostPort(o.backendHost, o.backendPort), rlimit: fds, workerConnections: fds, maxconn: Math.floor(fds / 2),
    perIpZone: o.maxConnsPerIp ? '    limit_conn_zone $binary_remote_addr zone=perip:10m;\n    limit_conn_status 429;' : '',
    perIpLimit: o.maxConnsPerIp ? `        limit_conn perip ${o.maxConnsPerIp};` : '',
    perIp: o.maxConnsPerIp ? '    stick-table type ip size 100k store conn_cur\n    tcp-request connection track-sc0 src\n' +
      `    tcp-request connection reject if { sc_conn_cur(0) gt ${o.maxConnsPerIp} }` : '',
  };
  const file = join(dir, o.kind === 'nginx' ? 'nginx.conf' : 'haproxy.cfg');
  await writeFile(file, fill(await readFile(join(TEMPLATE_DIR, o.kind === 'nginx' ? 'nginx.conf' : 'haproxy.cfg'), 'utf8'), values));
  const argv = o.kind === 'nginx' ? ['nginx', '-e', 'stderr', '-p', dir, '-c', file, '-g', 'daemon off;'] : ['haproxy', '-db', '-f', file];
  // dies with wslab serve however it ends: the kernel sends SIGTERM when serve's process is gone
  const child: ChildProcess = spawn('setpriv', ['--pdeathsig', 'TERM', '--', ...argv], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (c: string) => { stderr = (stderr + c).slice(-8192); });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // every status request of ours is one of nginx's accepts, and the one in flight is one of its active connections
  let ownRequests = 0;
  let inFlight: Promise<ProxyCounts | null> | undefined;
  const read = async (): Promise<ProxyCounts> => {
    if (o.kind === 'nginx') {
      ownRequests++;
      const s = parseStubStatus(await get(statsPort, '/status').catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ECONNREFUSED') ownRequests--; // not listening yet: not one of its accepts
        throw err;
      }));
      return { open: s.active - 1, accepted: s.accepts - ownRequests };
    }
    const s = parseHaproxyCsv(await get(statsPort, '/stats;csv'));
    return { open: s.scur, accepted: s.stot };
  };
  const counts = (): Promise<ProxyCounts | null> => (inFlight ??= read().catch(() => null).finally(() => { inFlight = undefined; }));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(killer);
    await rm(dir, { recursive: true, force: true });
  };
  const lastLine = (): string => stderr.trim().split('\n').at(-1) ?? '';
  const t0 = performance.now();
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      await rm(dir, { recursive: true, force: true });
      throw new Error(`--via ${o.kind}: the proxy exited at start (${child.signalCode ?? `exit ${child.exitCode}`}): ${lastLine() || 'no message'}`);
    }
    if (await counts()) break;
    if (performance.now() - t0 > 10_000) {
      await stop();
      throw new Error(`--via ${o.kind}: its status page did not answer within 10 s: ${lastLine() || 'no message'}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const version = proxyVersion(o.kind);
  return {
    kind: o.kind, port, pid: child.pid!, version, counts, stderr: () => stderr, stop,
    register(registry) {
      // prom-client collects the three at once: they share one read (counts() has one request in flight at most)
      gauge(PROXY_UP, registry, async function () { this.set({ proxy: o.kind }, (await counts()) ? 1 : 0); });
      gauge(PROXY_CONNECTIONS_OPEN, registry, async function () { const c = await counts(); if (c) this.set({ proxy: o.kind }, c.open); });
      counter(PROXY_CONNECTIONS_ACCEPTED, registry, async function () {
        const c = await counts();
        if (c) { this.reset(); this.inc({ proxy: o.kind }, c.accepted); }
      });
    },
  };
}
