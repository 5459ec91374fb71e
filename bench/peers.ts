/**
 * bench/peers: the same idle-hold job — N connections held for 30 s against ONE fresh `wslab serve --design uws`
 * process — run by `wslab swarm`, by Artillery 2 (ws engine, a long `think`) and by Tsung (`ts_websocket`: connect,
 * then a long thinktime), one peer at a time, in one run, for each N.
 *
 *   npm run bench -- peers [--connections 5000,15000] [--peers swarm,artillery,tsung] [--hold 30s]
 *     [--source-ips 127.0.0.2-127.0.0.9] [--artillery PATH] [--tsung PATH] [--out peers.json] [--markdown peers.md]
 *   (the same as `node dist/bench/peers.js …` after `npm run build`; every option and its default: DEFAULTS below)
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
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { accessSync, closeSync, constants, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { UsageError } from '../core/errors.js';
import { onPath } from '../cli/stack.js';
import { parseSourceIps } from '../cli/swarm.js';
import { parseDuration, parseInteger } from '../core/units.js';
import { spawnServer, WSLAB, type ServerProcess } from '../lab/processes.js';
import { treeCpuSeconds } from '../lab/sampler.js';
import { parseExposition, sumOf } from '../metrics/exposition.js';
import { CONNECTIONS_OPEN } from '../metrics/index.js';
import { readTreeStatus } from '../metrics/proc-status.js';

const CLK_TCK = 100; // USER_HZ, for /proc/stat

/** Every option's default, in one place. Durations take units (`30s`, `500ms`); '' = the peer's own default. */
const DEFAULTS = {
  connections: '5000,15000',
  peers: 'swarm,artillery,tsung',
  hold: '30s',
  'source-ips': '127.0.0.2-127.0.0.9',
  'swarm-rate': '',
  'swarm-max-pending': '',
  'swarm-workers': '',
  'artillery-rate': '0',
  'tsung-rate': '5000',
  artillery: process.env.ARTILLERY_BIN ?? 'artillery',
  tsung: process.env.TSUNG_BIN ?? 'tsung',
  baseline: 'calibrate',
  'ramp-sample': '50ms',
  sample: '500ms',
  'startup-timeout': '30s',
  'ramp-timeout': '90s',
  stall: '10s',
  deadline: '45m',
  'quiet-below': '0.15',
  'quiet-wait': '3m',
} as const;
const { values: a } = parseArgs({
  options: {
    ...Object.fromEntries(Object.entries(DEFAULTS).map(([k, v]) => [k, { type: 'string' as const, default: v }])),
    out: { type: 'string' },
    markdown: { type: 'string' },
  },
}) as unknown as { values: Record<keyof typeof DEFAULTS, string> & { out?: string; markdown?: string } };

/** The options, checked once: a bad one is a one-line error naming it, exit 1. */
function options() {
  const sec = (flag: keyof typeof DEFAULTS) => parseDuration(flag, a[flag]) / 1000;
  const peers = a.peers.split(',').map((s) => s.trim()).filter(Boolean);
  for (const p of peers) if (!['swarm', 'artillery', 'tsung'].includes(p)) throw new UsageError(`--peers: unknown peer "${p}" (swarm, artillery, tsung)`);
  const sourceIps = a['source-ips'] ? parseSourceIps(a['source-ips']) : [];
  for (const ip of sourceIps) if (!ip.startsWith('127.')) throw new UsageError(`--source-ips: ${ip} is not a loopback address (this bench talks to 127.0.0.1 only)`);
  const quietBelow = Number(a['quiet-below']);
  if (!(quietBelow > 0 && quietBelow <= 1)) throw new UsageError(`--quiet-below: "${a['quiet-below']}" must be a share of the CPUs in (0, 1]`);
  if (!['calibrate', 'preconnect'].includes(a.baseline)) throw new UsageError(`--baseline: "${a.baseline}" must be calibrate or preconnect`);
  if (a['swarm-rate']) parseInteger('swarm-rate', a['swarm-rate'], 0, 10_000_000);
  if (a['swarm-max-pending']) parseInteger('swarm-max-pending', a['swarm-max-pending'], 1, 1_000_000);
  if (a['swarm-workers']) parseInteger('swarm-workers', a['swarm-workers'], 1, 256);
  return Object.freeze({
    connections: a.connections.split(',').map((s) => parseInteger('connections', s, 1, 1_000_000)),
    peers, sourceIps, quietBelow,
    hold: sec('hold'), rampSampleMs: parseDuration('ramp-sample', a['ramp-sample']), sampleMs: parseDuration('sample', a.sample),
    startupTimeout: sec('startup-timeout'), rampTimeout: sec('ramp-timeout'), stall: sec('stall'), deadline: sec('deadline'),
    quietWait: sec('quiet-wait'),
    artilleryRate: parseInteger('artillery-rate', a['artillery-rate'], 0, 1_000_000),
    tsungRate: parseInteger('tsung-rate', a['tsung-rate'], 1, 1_000_000),
  });
}
let o: ReturnType<typeof options>;
try { o = options(); } catch (e) {
  if (!(e instanceof UsageError)) throw e;
  process.stderr.write(`bench/peers: ${e.message}\n`);
  process.exit(1);
}
const { connections: CONNECTIONS, peers: PEERS, hold: HOLD, sourceIps: SOURCE_IPS, startupTimeout: STARTUP_TIMEOUT,
  rampTimeout: RAMP_TIMEOUT, stall: STALL, deadline: DEADLINE, quietBelow: QUIET_BELOW, quietWait: QUIET_WAIT } = o;
const CALIBRATE_HOLD = 8;

const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

// ---- children: every one in its own process group, all killed on any exit -------------------------------------

const live = new Set<ChildProcess>();
/** the epmd daemons that existed when the current run started (a new one is the run's own: Tsung started it) */
let epmdAtRunStart: Set<number> | null = null;
const tempDirs = new Set<string>();
function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try { process.kill(-child.pid, signal); } catch { try { child.kill(signal); } catch { /* gone */ } }
}
function killEverything(): void {
  for (const c of live) {
    // the group outlives its leader (e.g. Tsung's beam after the shell), so kill it even if the leader exited;
    // the server is not a group leader (lab/processes spawns it): kill it alone
    if (c.pid !== undefined) try { process.kill(-c.pid, 'SIGKILL'); } catch { try { c.kill('SIGKILL'); } catch { /* gone */ } }
  }
  if (epmdAtRunStart) for (const pid of epmdPids()) if (!epmdAtRunStart.has(pid)) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
}
process.on('exit', killEverything);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => { process.stderr.write(`bench/peers: ${sig}, killing every child\n`); killEverything(); process.exit(130); });
}
process.on('uncaughtException', (e) => { process.stderr.write(`bench/peers: ${e.stack ?? e}\n`); killEverything(); process.exit(1); });
setTimeout(() => {
  process.stderr.write(`bench/peers: the whole run passed --deadline ${a.deadline}, killing every child\n`);
  killEverything();
  process.exit(1);
}, DEADLINE * 1000).unref();

function launch(command: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; stdout: number | 'pipe'; stderr: number | 'pipe' }): ChildProcess {
  const child = spawn(command, args, { stdio: ['ignore', opts.stdout, opts.stderr], env: opts.env ?? process.env, cwd: opts.cwd, detached: true });
  live.add(child);
  child.on('exit', () => { if (child.pid !== undefined) { try { process.kill(-child.pid, 0); } catch { live.delete(child); } } });
  child.on('error', () => { /* reported by the caller through exitCode / missing samples */ });
  return child;
}
async function stopGroup(child: ChildProcess, first: NodeJS.Signals, graceMs: number): Promise<void> {
  const exited = child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : once(child, 'exit').then(() => undefined);
  killGroup(child, first);
  await Promise.race([exited, sleep(graceMs)]);
  if (child.pid !== undefined) try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ }
  await Promise.race([exited, sleep(2000)]);
  live.delete(child);
}

/** `bin` if it is an executable path, else its place on PATH (cli/stack's lookup), else null. */
function findBin(bin: string): string | null {
  if (!bin.includes('/')) return onPath(bin) ?? null;
  try { accessSync(bin, constants.X_OK); return bin; } catch { return null; }
}
function epmdPids(): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try { if (readFileSync(`/proc/${d}/comm`, 'latin1').trim() === 'epmd') out.push(Number(d)); } catch { /* gone */ }
  }
  return out;
}

// ---- the box ----------------------------------------------------------------------------------------------------

/** CPU seconds the whole box has spent busy since boot (/proc/stat: everything but idle and iowait). */
function boxBusySeconds(): number {
  const f = readFileSync('/proc/stat', 'latin1').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  return (f.reduce((s, v) => s + v, 0) - f[3] - f[4]) / CLK_TCK;
}
/** share of all CPUs busy over `ms`: how much else runs on the box. */
async function machineBusy(ms: number): Promise<number> {
  const b0 = boxBusySeconds(), t0 = performance.now();
  await sleep(ms);
  return round((boxBusySeconds() - b0) / ((performance.now() - t0) / 1000) / cpus().length, 3);
}
/**
 * The box is shared (other sessions build and test on it): before each run, wait — at most --quiet-wait — until the
 * CPUs have been less than --quiet-below busy for 3 s in a row. Returns the busy share of the last second and the
 * seconds waited.
 */
async function waitQuiet(): Promise<{ busy: number; waitedSec: number; quiet: boolean }> {
  const t0 = performance.now();
  let streak = 0, busy = 0;
  while (true) {
    busy = await machineBusy(1000);
    streak = busy < QUIET_BELOW ? streak + 1 : 0;
    const waited = (performance.now() - t0) / 1000;
    if (streak >= 3) return { busy, waitedSec: round(waited, 1), quiet: true };
    if (waited >= QUIET_WAIT) return { busy, waitedSec: round(waited, 1), quiet: false };
  }
}

// ---- the server ---------------------------------------------------------------------------------------------------

/** A fresh `wslab serve --design uws --port 0 --metrics-port 0`, killed with everything else on any exit. */
async function startServer(): Promise<ServerProcess> {
  const server = await spawnServer('uws');
  live.add(server.child);
  if (!/^ws:\/\/127\.0\.0\.\d+:\d+\/$/.test(server.url) || !/^http:\/\/127\.0\.0\.\d+:\d+\//.test(server.metricsUrl)) {
    throw new Error(`the server is not on 127.0.0.x: ${server.url} ${server.metricsUrl}`);
  }
  return server;
}
async function scrapeOpen(metrics: string): Promise<number> {
  const res = await fetch(metrics, { signal: AbortSignal.timeout(2000) });
  return sumOf(parseExposition(await res.text()), CONNECTIONS_OPEN.name);
}

// ---- the peers ----------------------------------------------------------------------------------------------------

interface Launch {
  command: string;
  args: string[];
  env?: Record<string, string>;
  files: Record<string, string>;
  /** stop the peer after the hold window */
  stop(child: ChildProcess): Promise<void>;
  /** the peer's own view: its claims and its error counters */
  selfReport(stdout: string, stderr: string, exitCode: number | null): Record<string, unknown> & { errors: Record<string, number> };
}
interface Peer {
  name: string;
  version(): string | null;
  unavailable(): string | null;
  prepare(dir: string, url: string, n: number, holdFor: number): Launch;
}

const swarmPeer: Peer = {
  name: 'swarm',
  version: () => { try { return (JSON.parse(readFileSync(fileURLToPath(new URL('../../package.json', import.meta.url)), 'utf8')) as { version: string }).version; } catch { return null; } },
  unavailable: () => (existsSync(WSLAB) ? null : `${WSLAB} is missing: run npx tsc -p . first`),
  prepare(dir, url, n, holdFor) {
    const summary = join(dir, 'summary.json');
    const flag = (name: string, v: string) => (v ? [`--${name}`, v] : []);
    const args = [WSLAB, 'swarm', '--url', url, '--connections', String(n), ...flag('rate', a['swarm-rate']), ...flag('max-pending', a['swarm-max-pending']),
      '--hold', `${holdFor}s`, '--profile', 'idle', ...flag('workers', a['swarm-workers']), ...flag('source-ips', a['source-ips']), '--summary', summary];
    return {
      command: process.execPath, args, files: {},
      // --hold covers the window: it ends by itself and closes cleanly (1000); SIGINT only if it overstays.
      async stop(child) {
        if (child.exitCode === null && child.signalCode === null) await Promise.race([once(child, 'exit'), sleep(30_000)]);
        await stopGroup(child, 'SIGINT', 10_000);
      },
      selfReport(_out, stderr, exitCode) {
        let s: Record<string, any> | null = null;
        try { s = JSON.parse(readFileSync(summary, 'utf8')) as Record<string, any>; } catch { /* none */ }
        if (!s) return { exitCode, errors: { no_summary: 1 }, stderrTail: stderr.slice(-600) };
        const errors: Record<string, number> = {};
        for (const [k, v] of Object.entries(s.failed as Record<string, number>)) if (k !== 'total' && v) errors[`failed.${k}`] = v;
        for (const [k, v] of Object.entries((s.lost?.byCause ?? {}) as Record<string, number>)) if (v) errors[`lost.${k}`] = v;
        return {
          exitCode, errors, opened: s.opened, heldAtEnd: s.heldAtEnd, peakOpen: s.peakOpen, connectRatePerSec: s.connectRatePerSec,
          connectLatencyMs: s.connectLatencyMs, client: s.client, durationSec: s.durationSec, warnings: s.warnings,
        };
      },
    };
  },
};

const artilleryPeer: Peer = {
  name: 'artillery',
  version() {
    const bin = findBin(a.artillery);
    if (!bin) return null;
    // <prefix>/node_modules/.bin/artillery → <prefix>/node_modules/artillery/package.json
    for (const p of [join(bin, '..', '..', 'artillery', 'package.json'), join(bin, '..', '..', 'lib', 'node_modules', 'artillery', 'package.json')]) {
      try { return (JSON.parse(readFileSync(p, 'utf8')) as { version: string }).version; } catch { /* next */ }
    }
    return 'unknown';
  },
  unavailable: () => (findBin(a.artillery) ? null
    : `no artillery binary at '${a.artillery}': install it outside the project (PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --prefix /tmp/peers artillery@2) and pass --artillery /tmp/peers/node_modules/.bin/artillery or ARTILLERY_BIN`),
  prepare(dir, url, n, holdFor) {
    // 0 (default) = every arrival scheduled within 1 s: Artillery opens as fast as its one event loop can (measured
    // here at 15,000: 2,518/s when asked for 15,000/s, 2,145/s when asked for 3,000/s). maxVusers: without it, 15,151
    // connections opened for arrivalCount 15,000.
    const rate = o.artilleryRate === 0 ? n : Math.min(n, o.artilleryRate);
    const duration = Math.max(1, Math.ceil(n / rate));
    const yml = [
      'config:',
      `  target: "${url}"`,
      '  phases:',
      `    - duration: ${duration}`,
      `      arrivalCount: ${n}`,
      `      maxVusers: ${n}`,
      'scenarios:',
      '  - engine: ws',
      '    flow:',
      `      - think: ${holdFor}`,
      '',
    ].join('\n');
    const script = join(dir, 'idle-hold.yml');
    return {
      command: findBin(a.artillery)!, args: ['run', script], env: { ARTILLERY_DISABLE_TELEMETRY: 'true' }, files: { [script]: yml },
      stop: (child) => stopGroup(child, 'SIGINT', 15_000),
      selfReport(stdout, stderr, exitCode) {
        // Periodic reports ("Metrics for period to: …", every 10 s) carry the counters of their period: sum them.
        // A summary report appears only when the run ends by itself; it is not used, to count nothing twice.
        const body = stdout.split(/^Summary report/m)[0];
        const errors: Record<string, number> = {};
        let created = 0, failed = 0, completed = 0;
        for (const m of body.matchAll(/^(errors\.[^:]+|vusers\.created|vusers\.failed|vusers\.completed):\s*\.*\s*(\d+)\s*$/gm)) {
          const v = Number(m[2]);
          if (m[1] === 'vusers.created') created += v;
          else if (m[1] === 'vusers.failed') failed += v;
          else if (m[1] === 'vusers.completed') completed += v;
          else errors[m[1]] = (errors[m[1]] ?? 0) + v;
        }
        if (failed) errors['vusers.failed'] = failed;
        return { exitCode, errors, vusersCreated: created, vusersCompleted: completed, arrivalsRequested: { count: n, overSec: duration }, stderrTail: stderr.trim() ? stderr.slice(-600) : undefined };
      },
    };
  },
};

const tsungPeer: Peer = {
  name: 'tsung',
  version() {
    const bin = findBin(a.tsung);
    if (!bin) return null;
    try { return /VERSION=(\S+)/.exec(readFileSync(bin, 'utf8'))?.[1] ?? 'unknown'; } catch { return 'unknown'; }
  },
  unavailable: () => (findBin(a.tsung) ? null : `no tsung binary at '${a.tsung}': apt-get install -y tsung, or pass --tsung PATH / TSUNG_BIN`),
  prepare(dir, url, n, holdFor) {
    const u = new URL(url);
    // 5000/s (default) opened 15,000 fastest here: asked 1,500/s → 2,001/s achieved, 3,000 → 4,620, 5,000 → 5,995,
    // 8,000 → 4,631, 10,000 → 3,168, 15,000 → 2,069 (Tsung's launcher overshoots low rates, chokes on high ones).
    const rate = Math.min(n, o.tsungRate);
    // Tsung stops launching users when the phase's duration ends, even short of maxnumber (measured here: 500 users
    // at 500/s in a 1 s phase launched 2, at 250/s in 2 s 227): give the phase twice the time plus 5 s, and let
    // maxnumber stop it at N.
    const duration = 2 * Math.ceil(n / rate) + 5;
    const xml = [
      '<?xml version="1.0"?>',
      '<!DOCTYPE tsung SYSTEM "/usr/share/tsung/tsung-1.0.dtd" []>',
      '<tsung loglevel="notice" version="1.0" dumptraffic="false">',
      '  <clients>',
      `    <client host="localhost" use_controller_vm="true" maxusers="${Math.max(n, 1000)}">`,
      ...SOURCE_IPS.map((ip) => `      <ip value="${ip}"/>`),
      '    </client>',
      '  </clients>',
      `  <servers><server host="${u.hostname}" port="${u.port}" type="tcp"/></servers>`,
      '  <load>',
      `    <arrivalphase phase="1" duration="${duration}" unit="second">`,
      `      <users maxnumber="${n}" arrivalrate="${rate}" unit="second"/>`,
      '    </arrivalphase>',
      '  </load>',
      '  <sessions>',
      '    <session name="idle-hold" probability="100" type="ts_websocket">',
      '      <request><websocket type="connect" path="/"></websocket></request>',
      `      <thinktime value="${holdFor}" random="false"/>`,
      '    </session>',
      '  </sessions>',
      '</tsung>',
      '',
    ].join('\n');
    const config = join(dir, 'idle-hold.xml');
    const logs = join(dir, 'log');
    return {
      // -n: no web GUI (port 8091); -i: a controller name of our own; the Erlang distribution and epmd on loopback.
      command: findBin(a.tsung)!, args: ['-n', '-i', `peers${process.pid}`, '-f', config, '-l', logs, 'start'],
      env: { ERL_EPMD_ADDRESS: '127.0.0.1', ERL_FLAGS: '-kernel inet_dist_use_interface {127,0,0,1} -tsung_controller dumpstats_interval 2000' },
      files: { [config]: xml },
      stop: (child) => stopGroup(child, 'SIGTERM', 15_000),
      selfReport(_out, stderr, exitCode) {
        let log = '';
        try {
          for (const d of readdirSync(logs)) if (existsSync(join(logs, d, 'tsung.log'))) log = readFileSync(join(logs, d, 'tsung.log'), 'utf8');
        } catch { /* no log dir */ }
        const last: Record<string, number[]> = {};
        for (const m of log.matchAll(/^stats: (\S+) (-?[\d.]+) (-?[\d.]+)/gm)) last[m[1]] = [Number(m[2]), Number(m[3])];
        const errors: Record<string, number> = {};
        for (const [k, v] of Object.entries(last)) if (k.startsWith('error_')) errors[k] = v[1];
        return {
          exitCode, errors, connected: last.connected?.[1] ?? null, users: last.users?.[0] ?? null, websocketSucc: last.websocket_succ?.[1] ?? null,
          arrivalsRequested: { count: n, ratePerSec: rate, overSec: duration }, stderrTail: stderr.trim() ? stderr.slice(-600) : undefined,
        };
      },
    };
  },
};

const PEER: Record<string, Peer> = { swarm: swarmPeer, artillery: artilleryPeer, tsung: tsungPeer };

// ---- one run: fresh server, one peer, ramp, hold ------------------------------------------------------------------

interface S { t: number; open: number | null; rss: number; anon: number; cpu: number; processes: number; threads: number; serverCpu: number; boxBusy: number; benchCpu: number }

interface RunResult {
  peer: string; connections: number; ok: boolean; why: string[];
  command: string; files: Record<string, string>;
  held: number | null; heldMid: number | null; heldMinDuringHold: number | null; reached: number;
  startupSec: number | null; openSec: number | null; openSecBounds: [number, number] | null;
  openRatePerSec: number | null; openRateBounds: [number | null, number | null] | null;
  rssPeakHoldBytes: number | null; rssPreconnectBytes: number | null; rssAnonPeakHoldBytes: number | null;
  bytesPerConnTotal: number | null; anonBytesPerConnTotal: number | null; cpuSeconds: number | null; cpuRampSeconds: number | null;
  processes: number | null; threads: number | null;
  errors: Record<string, number>; notHeld: number | null; self: Record<string, unknown>;
  loadavg: [number, number]; machineBusyBefore: number; waitedForQuietSec: number;
  serverCpuRampSeconds: number | null; otherCpusDuringRamp: number | null; otherCpusDuringHold: number | null; samples?: string[];
}

/** CPUs' worth of work done on the box between two samples by anything but the peer, the server and this bench. */
function othersCpus(x: S, y: S): number | null {
  const wall = y.t - x.t;
  if (wall <= 0) return null;
  const others = (y.boxBusy - x.boxBusy) - (y.cpu - x.cpu) - (y.serverCpu - x.serverCpu) - (y.benchCpu - x.benchCpu);
  return round(Math.max(0, others) / wall, 2);
}

const shellQuote = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

async function runOne(peer: Peer, n: number, holdSec: number): Promise<RunResult> {
  const dir = mkdtempSync(join(tmpdir(), `wslab-peers-${peer.name}-`));
  tempDirs.add(dir);
  const owned: ChildProcess[] = [];
  const epmdBefore = new Set(epmdPids());
  epmdAtRunStart = epmdBefore;
  try {
    return await runIn(dir, owned, peer, n, holdSec);
  } finally {
    // normally already stopped; after a failure, nothing of this run may outlive it
    for (const c of owned) await stopGroup(c, 'SIGKILL', 0);
    // Tsung starts epmd as a daemon outside its process tree: stop the one it started (by pid), not one already there.
    for (const p of epmdPids()) if (!epmdBefore.has(p)) { try { process.kill(p, 'SIGTERM'); } catch { /* gone */ } }
    epmdAtRunStart = null;
    rmSync(dir, { recursive: true, force: true });
    tempDirs.delete(dir);
    await sleep(3000); // let the kernel reap the sockets before the next peer
  }
}

async function runIn(dir: string, owned: ChildProcess[], peer: Peer, n: number, holdSec: number): Promise<RunResult> {
  const load0 = loadavg()[0];
  const why: string[] = [];
  const quiet = await waitQuiet();
  if (!quiet.quiet) why.push(`the box never got quiet: CPUs still ${Math.round(quiet.busy * 100)} % busy after --quiet-wait ${QUIET_WAIT} s`);
  const server = await startServer();
  owned.push(server.child);
  const holdFor = peer.name === 'swarm' ? holdSec + 5 : Math.ceil(RAMP_TIMEOUT + holdSec + 10);
  const l = peer.prepare(dir, server.url, n, holdFor);
  for (const [f, text] of Object.entries(l.files)) { mkdirSync(join(f, '..'), { recursive: true }); writeFileSync(f, text); }
  const outFile = join(dir, 'stdout.txt'), errFile = join(dir, 'stderr.txt');
  const outFd = openSync(outFile, 'w'), errFd = openSync(errFile, 'w');
  const t0 = performance.now();
  const child = launch(l.command, l.args, { env: { ...process.env, ...l.env }, cwd: dir, stdout: outFd, stderr: errFd });
  owned.push(child);
  closeSync(outFd); closeSync(errFd);
  const envText = Object.entries(l.env ?? {}).map(([k, v]) => `${k}=${shellQuote(v)} `).join('');
  const command = envText + [l.command === process.execPath ? 'node' : l.command, ...l.args].map(shellQuote).join(' ').replace(WSLAB, 'dist/cli/wslab.js');
  let exited: { code: number | null; signal: string | null; atSec: number } | null = null;
  child.on('exit', (code, signal) => { exited = { code, signal, atSec: (performance.now() - t0) / 1000 }; });

  const samples: S[] = [];
  const sample = async (): Promise<S> => {
    const ts = performance.now();
    let open: number | null = null;
    try { open = await scrapeOpen(server.metricsUrl); } catch { open = null; }
    const t = ((ts + performance.now()) / 2 - t0) / 1000;
    const st = readTreeStatus(child.pid!);
    const u = process.cpuUsage();
    const s = { t, open, rss: st.rssBytes, anon: st.rssAnonBytes, cpu: treeCpuSeconds(child.pid!), processes: st.processes, threads: st.threads,
      serverCpu: treeCpuSeconds(server.pid), boxBusy: boxBusySeconds(), benchCpu: (u.user + u.system) / 1e6 };
    samples.push(s);
    return s;
  };

  let phase: 'startup' | 'ramp' | 'hold' | 'done' = 'startup';
  let firstIdx = -1, reachIdx = -1, holdStartT = 0, maxOpen = 0, lastIncreaseT = 0;
  let midIdx = -1;
  let next = performance.now();
  while (phase !== 'done') {
    // finely while the connections open (the open rate is read off these samples), coarsely over the hold
    next += phase === 'hold' ? o.sampleMs : o.rampSampleMs;
    await sleep(Math.max(0, next - performance.now()));
    const s = await sample();
    const i = samples.length - 1;
    const open = s.open ?? 0;
    if (phase === 'startup') {
      if (open > 0) { phase = 'ramp'; firstIdx = i; maxOpen = open; reachIdx = i; lastIncreaseT = s.t; }
      else if (s.t > STARTUP_TIMEOUT) { why.push(`no connection reached the server within --startup-timeout ${STARTUP_TIMEOUT} s of launching the peer`); phase = 'done'; }
    }
    if (phase === 'ramp') {
      if (open > maxOpen) { maxOpen = open; reachIdx = i; lastIncreaseT = s.t; }
      if (maxOpen >= n) { phase = 'hold'; holdStartT = s.t; }
      else if (s.t - lastIncreaseT >= STALL) {
        why.push(`the server's open gauge stopped rising at ${maxOpen} of ${n} (no increase for ${STALL} s)`);
        phase = 'hold'; holdStartT = s.t;
      } else if (s.t - samples[firstIdx].t >= RAMP_TIMEOUT) {
        why.push(`the ramp passed --ramp-timeout ${RAMP_TIMEOUT} s at ${maxOpen} of ${n}`);
        phase = 'hold'; holdStartT = s.t;
      }
    } else if (phase === 'hold') {
      if (midIdx < 0 && s.t >= holdStartT + holdSec / 2) midIdx = i;
      if (s.t >= holdStartT + holdSec) phase = 'done';
    }
    if (exited && phase !== 'done') {
      const e = exited as { code: number | null; signal: string | null; atSec: number };
      why.push(`the peer exited (code ${e.code}, signal ${e.signal}) at ${round(e.atSec, 1)} s, during the ${phase}`);
      phase = 'done';
    }
  }
  const endIdx = samples.length - 1;
  const end = samples[endIdx];
  const cpuAtEnd = end.cpu;
  const holdSamples = firstIdx >= 0 ? samples.filter((s) => s.t >= holdStartT - 1e-9 && holdStartT > 0) : [];

  await l.stop(child);
  await server.stop();
  live.delete(server.child);
  const stdout = readFileSync(outFile, 'utf8'), stderr = readFileSync(errFile, 'utf8');
  const self = l.selfReport(stdout, stderr, child.exitCode);
  const { errors } = self;

  const held = holdSamples.length ? end.open : null;
  const heldMid = midIdx >= 0 ? samples[midIdx].open : null;
  const openVals = holdSamples.map((s) => s.open).filter((x): x is number => x !== null);
  const rssPeak = holdSamples.length ? Math.max(...holdSamples.map((s) => s.rss)) : null;
  const anonPeak = holdSamples.length ? Math.max(...holdSamples.map((s) => s.anon)) : null;
  const pre = firstIdx > 0 ? samples[firstIdx - 1] : null;
  let openSec: number | null = null, openSecBounds: [number, number] | null = null;
  if (firstIdx >= 0) {
    const first = samples[firstIdx], reach = samples[reachIdx];
    const lastZeroT = pre ? pre.t : 0;
    const beforeReachT = reachIdx > firstIdx ? samples[reachIdx - 1].t : first.t;
    openSec = round((reach.t + beforeReachT) / 2 - (first.t + lastZeroT) / 2, 3);
    openSecBounds = [round(Math.max(0, beforeReachT - first.t), 3), round(reach.t - lastZeroT, 3)];
  }
  if (held !== null && held < n) why.push(`held ${held} of ${n} at the end of the hold`);
  if (heldMid !== null && held !== null && heldMid !== held) why.push(`the gauge moved during the hold: ${heldMid} at the middle, ${held} at the end`);
  const result: RunResult = {
    peer: peer.name, connections: n, ok: held === n && (heldMid ?? n) === n, why, command, files: Object.fromEntries(Object.entries(l.files).map(([f, t]) => [f.slice(dir.length + 1), t])),
    held, heldMid, heldMinDuringHold: openVals.length ? Math.min(...openVals) : null, reached: maxOpen,
    startupSec: firstIdx >= 0 ? round((samples[firstIdx].t + (pre ? pre.t : 0)) / 2, 2) : null,
    openSec, openSecBounds,
    openRatePerSec: openSec ? Math.round(maxOpen / openSec) : null,
    openRateBounds: openSecBounds ? [Math.round(maxOpen / openSecBounds[1]), openSecBounds[0] > 0 ? Math.round(maxOpen / openSecBounds[0]) : null] : null,
    rssPeakHoldBytes: rssPeak, rssPreconnectBytes: pre ? pre.rss : null, rssAnonPeakHoldBytes: anonPeak,
    bytesPerConnTotal: rssPeak !== null && held ? Math.round(rssPeak / held) : null,
    anonBytesPerConnTotal: anonPeak !== null && held ? Math.round(anonPeak / held) : null,
    cpuSeconds: round(cpuAtEnd, 2),
    cpuRampSeconds: firstIdx >= 0 ? round(samples[reachIdx].cpu - (pre ? pre.cpu : 0), 2) : null,
    processes: end.processes, threads: end.threads,
    errors, notHeld: held !== null ? n - held : null, self,
    loadavg: [round(load0), round(loadavg()[0])], machineBusyBefore: quiet.busy, waitedForQuietSec: quiet.waitedSec,
    serverCpuRampSeconds: firstIdx >= 0 ? round(samples[reachIdx].serverCpu - (pre ? pre.serverCpu : samples[0].serverCpu), 2) : null,
    otherCpusDuringRamp: firstIdx >= 0 && pre ? othersCpus(pre, samples[reachIdx]) : null,
    otherCpusDuringHold: holdSamples.length > 1 ? othersCpus(holdSamples[0], holdSamples[holdSamples.length - 1]) : null,
    samples: samples.map((s) => `${s.t.toFixed(3)} ${s.open ?? '-'} ${(s.rss / 2 ** 20).toFixed(1)} ${(s.anon / 2 ** 20).toFixed(1)} ${s.cpu.toFixed(2)}`),
  };
  return result;
}

// ---- the run ------------------------------------------------------------------------------------------------------

interface PeerResult extends RunResult {
  baselineBytes: number | null; baselineSource: string | null; bytesPerConnMinusBaseline: number | null; bytesPerConnMethod: string;
  bytesPerConnMinusPreconnect: number | null;
}

const started = new Date().toISOString();
const peerInfo: Record<string, { version: string | null; unavailable: string | null; baseline?: Record<string, unknown> }> = {};
for (const p of PEERS) peerInfo[p] = { version: PEER[p].version(), unavailable: PEER[p].unavailable() };

const baselines: Record<string, number | null> = {};
if (a.baseline === 'calibrate') {
  for (const p of PEERS) {
    if (peerInfo[p].unavailable) continue;
    process.stderr.write(`bench/peers: ${p}: calibrating the idle baseline (1 connection held ${CALIBRATE_HOLD} s)\n`);
    const r = await runOne(PEER[p], 1, CALIBRATE_HOLD);
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
    let r: RunResult;
    try { r = await runOne(PEER[p], n, HOLD); } catch (e) {
      results.push({ peer: p, connections: n, ok: false, why: [`the run failed: ${(e as Error).message}`] } as PeerResult);
      continue;
    }
    const base = a.baseline === 'calibrate' ? baselines[p] ?? null : r.rssPreconnectBytes;
    const source = base === null ? null : a.baseline === 'calibrate' ? 'calibration run holding 1 connection (peak RSS)' : 'last sample before the first connection';
    results.push({
      ...r, baselineBytes: base, baselineSource: source,
      bytesPerConnMinusBaseline: base !== null && r.rssPeakHoldBytes !== null && r.held ? Math.round((r.rssPeakHoldBytes - base) / r.held) : null,
      bytesPerConnMethod: base !== null ? '(peak RSS during hold − idle baseline) ÷ held' : 'no baseline: total ÷ held only',
      // the other baseline, for comparison: RSS at the last sample before the server saw the first connection
      bytesPerConnMinusPreconnect: r.rssPreconnectBytes !== null && r.rssPeakHoldBytes !== null && r.held ? Math.round((r.rssPeakHoldBytes - r.rssPreconnectBytes) / r.held) : null,
    });
    process.stderr.write(`bench/peers:   held ${r.held}/${n}, open ${r.openRatePerSec}/s, peak RSS ${r.rssPeakHoldBytes !== null ? round(r.rssPeakHoldBytes / 2 ** 20, 1) : '–'} MiB, CPU ${r.cpuSeconds} s${r.why.length ? `; ${r.why.join('; ')}` : ''}\n`);
  }
}

// ---- verdicts and output ------------------------------------------------------------------------------------------

// null unless both are positive (a per-connection figure within the RSS noise can come out ≤ 0 at small N)
const ratio = (x: number | null | undefined, y: number | null | undefined) => (x != null && y != null && x > 0 && y > 0 ? round(x / y, 2) : null);
const comparisons = CONNECTIONS.map((n) => {
  const at = (p: string) => results.find((r) => r.peer === p && r.connections === n);
  const sw = at('swarm');
  return {
    connections: n,
    vs: Object.fromEntries(PEERS.filter((p) => p !== 'swarm').map((p) => {
      const o = at(p);
      return [p, {
        // how many times less client RSS per held connection the swarm needs, and how many times faster it opens
        rssPerConnMinusBaselineTimes: ratio(o?.bytesPerConnMinusBaseline, sw?.bytesPerConnMinusBaseline),
        rssPerConnTotalTimes: ratio(o?.bytesPerConnTotal, sw?.bytesPerConnTotal),
        openRateTimes: ratio(sw?.openRatePerSec, o?.openRatePerSec),
        // worst case for the swarm within the 250 ms sampling: its slowest ramp vs the peer's fastest
        openRateTimesWorstCase: ratio(sw?.openRateBounds?.[0], o?.openRateBounds?.[1] ?? null),
      }];
    })),
  };
});
const art15 = comparisons.find((c) => c.connections === 15000)?.vs.artillery;
const doneWhen = art15 ? {
  rule: 'at 15,000: wslab swarm ≥ 5× less total client RSS per held connection than Artillery and ≥ 10× faster opening',
  rssMinusBaseline: art15.rssPerConnMinusBaselineTimes, rssTotal: art15.rssPerConnTotalTimes, openRate: art15.openRateTimes,
  openRateWorstCase: art15.openRateTimesWorstCase,
  // each half on its own, so a report says which one fails
  rssHolds: art15.rssPerConnMinusBaselineTimes !== null ? art15.rssPerConnMinusBaselineTimes >= 5 : null,
  rssHoldsOnTotal: art15.rssPerConnTotalTimes !== null ? art15.rssPerConnTotalTimes >= 5 : null,
  openRateHolds: art15.openRateTimes !== null ? art15.openRateTimes >= 10 : null,
} : null;

const argv = process.argv.slice(2).map(shellQuote).join(' ');
const report = {
  bench: 'peers', started, finished: new Date().toISOString(),
  command: `node dist/bench/peers.js${argv ? ` ${argv}` : ''}`,
  machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, memBytes: totalmem(), node: process.version },
  sampleColumns: 'each result\'s `samples`: seconds since the peer was launched, server open gauge, client tree RSS MiB, its anonymous part MiB, client CPU s',
  job: { holdSec: HOLD, server: 'one `wslab serve --design uws --port 0 --metrics-port 0` per run, fresh', rampSampleMs: o.rampSampleMs, holdSampleMs: o.sampleMs, sourceIps: SOURCE_IPS.length ? a['source-ips'] : null, baseline: a.baseline },
  peers: peerInfo, results, comparisons, doneWhen,
};
const json = `${JSON.stringify(report, null, 2)}\n`;

const verdict = (x: boolean | null) => (x === null ? 'not measured' : x ? 'holds' : 'does NOT hold');
const kb = (b: number | null | undefined) => (b == null ? '–' : `${(b / 1000).toFixed(2)} KB`);
const int = (x: number | null | undefined) => (x == null ? '–' : Math.round(x).toLocaleString('en-US'));
const selfWarnings = (r: PeerResult): string => {
  const w = (r.self?.warnings ?? []) as string[];
  return w.length ? `; its own warning: ${w.map((x) => x.split(':')[0]).join('; ')}` : '';
};
const rows = results.map((r) => {
  const errs = Object.entries(r.errors ?? {}).map(([k, v]) => `${k} ${v}`).join(', ') || '0';
  const rate = r.openRatePerSec == null ? '–' : `${int(r.openRatePerSec)}/s (${int(r.openRateBounds?.[0])}–${r.openRateBounds?.[1] == null ? '∞' : int(r.openRateBounds[1])})`;
  return `| ${int(r.connections)} | ${r.peer} | ${r.held == null ? '–' : `${int(r.heldMid)} / ${int(r.held)}`} | ${r.openSec == null ? '–' : `${r.openSec} s`} | ${rate} | ${kb(r.bytesPerConnMinusBaseline)} (${kb(r.bytesPerConnMinusPreconnect)}) | ${kb(r.bytesPerConnTotal)} | ${r.rssPeakHoldBytes == null ? '–' : `${(r.rssPeakHoldBytes / 2 ** 20).toFixed(1)} MiB (${((r.rssAnonPeakHoldBytes ?? 0) / 2 ** 20).toFixed(1)} MiB)`} | ${r.cpuSeconds ?? '–'} s | ${errs} | ${r.why.join('; ') || 'held the job'}${selfWarnings(r)}${r.otherCpusDuringRamp != null ? `; other work on the box during the ramp: ${r.otherCpusDuringRamp} CPUs` : ''} |`;
});
const md = [
  '| connections | peer | held, server gauge (mid / end of hold) | time to open | open rate (bounds) | client RSS per held conn, peak − idle baseline (− pre-connect RSS instead) | client RSS per held conn, total ÷ held | client tree RSS, peak (anonymous part) | client CPU (launch → end of hold) | errors | notes |',
  '|---:|---|---:|---:|---:|---:|---:|---:|---:|---|---|',
  ...rows,
  '',
  ...comparisons.flatMap((c) => Object.entries(c.vs).map(([p, v]) => `- ${int(c.connections)}: swarm vs ${p}: RSS per held connection ×${v.rssPerConnMinusBaselineTimes ?? '–'} less (baseline subtracted), ×${v.rssPerConnTotalTimes ?? '–'} less (total ÷ held); opens ×${v.openRateTimes ?? '–'} faster (worst case within the sampling ×${v.openRateTimesWorstCase ?? '–'})`)),
  ...(doneWhen ? [`- done-when (${doneWhen.rule}): RSS ×${doneWhen.rssMinusBaseline ?? '–'} with the idle baseline subtracted: ${verdict(doneWhen.rssHolds)} (×${doneWhen.rssTotal ?? '–'} on total RSS ÷ held: ${verdict(doneWhen.rssHoldsOnTotal)}); open rate ×${doneWhen.openRate ?? '–'}: ${verdict(doneWhen.openRateHolds)}`] : []),
  '',
].join('\n');

process.stdout.write(json);
process.stderr.write(`\n${md}`);
if (a.out) writeFileSync(a.out, json);
if (a.markdown) writeFileSync(a.markdown, md);
process.exit(0);
