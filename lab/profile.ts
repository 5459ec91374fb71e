import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SWARM_FLAGS } from '../client/flags.js';
import { toArgv } from '../core/flags.js';
import { freePort } from '../core/net.js';
import { CONNECTION_THREADS } from '../metrics/index.js';
import { DESIGNS } from '../server/registry.js';
import { WSLAB } from './processes.js';
import { variantOf } from './designs.js';
import { scenarioServerFlags, type SwarmStep } from './scenario.js';
import { SCENARIOS } from './scenarios/index.js';

/*
 * clinic (npm `clinic` 13, an optional dependency) profiles one server design while a swarm drives it. clinic is
 * heavy and no longer maintained, so this path is optional end to end: nothing here loads clinic until a profile
 * runs, it runs as a child process (`clinic <tool> --on-port '<swarm>' -- node wslab.js serve ...`), and every
 * way it can fail on this Node ends in one ClinicUnavailableError line instead of a hang or a silent exit 0.
 */

export const PROFILE_TOOLS = ['doctor', 'flame', 'bubbleprof'] as const;
export type ProfileTool = (typeof PROFILE_TOOLS)[number];

export interface ProfileOptions {
  readonly tool: ProfileTool;
  /** A registered design name. */
  readonly design: string;
  /** Extra `wslab serve` flags (a lab variant's, the user's); the scenario's own server flags come first. */
  readonly serverFlags: readonly string[];
  /** A lab scenario id: its swarm recipe is the load. */
  readonly scenario: string;
  /** How long the load runs. */
  readonly durationMs: number;
  /** Folder for the HTML report and clinic's data folder (created). */
  readonly out: string;
  /** File-name stem of the report; default `<scenario>-<design>-<time>`. */
  readonly name?: string;
}

export interface ProfileResult {
  /** Absolute path of clinic's self-contained HTML report. */
  readonly html: string;
  /** Absolute path of clinic's data folder (`<name>.clinic-<tool>`). */
  readonly data: string;
  /** What clinic's own analysis says, one line each (doctor's issues, flame's hottest frames). */
  readonly findings: readonly string[];
  /** What clinic cannot see in this design, said once. */
  readonly caveat: string | null;
  /** The command that ran, for the reader who wants to run clinic by hand. */
  readonly command: string;
  /** SIGINT/SIGTERM arrived during the run: it was passed to clinic, which cut the load short and still reported. */
  readonly interrupted: boolean;
}

/** clinic is missing, cannot profile this design, or failed on this Node: one line, and the rest of wslab works. */
export class ClinicUnavailableError extends Error {
  readonly code = 'WSLAB_CLINIC_UNAVAILABLE';
}

/** Each scenario's profile load (Scenario.profileLoad), by scenario id. */
export const SWARM_RECIPES: Readonly<Record<string, (sec: number) => readonly SwarmStep[]>> =
  Object.fromEntries([...SCENARIOS.values()].map((s) => [s.id, s.profileLoad]));

/** Printed by the load command when every swarm has exited: from then on clinic must stop the server. */
const LOAD_DONE = 'wslab profile: load done';

/** POSIX shell quoting: the load runs as clinic's `--on-port` shell command. */
const sh = (s: string): string => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

/** The `--on-port` command: every swarm of the recipe in the background, each after its delay, then the marker. */
export function loadCommand(scenario: string, url: string, sec: number): string {
  const recipe = SWARM_RECIPES[scenario];
  if (!recipe) throw new ClinicUnavailableError(`--scenario: no swarm recipe for "${scenario}" (known: ${Object.keys(SWARM_RECIPES).join(', ')})`);
  const swarms = recipe(sec).map(({ atSec, flags }) => {
    const cmd = [process.execPath, WSLAB, 'swarm', '--url', url, ...toArgv(SWARM_FLAGS, flags)].map(sh).join(' ');
    return atSec > 0 ? `(sleep ${+atSec.toFixed(1)}; ${cmd}) &` : `${cmd} &`;
  });
  return `${swarms.join(' ')} wait; echo ${sh(LOAD_DONE)}`;
}

const require = createRequire(import.meta.url);

/** clinic's CLI entry, or a ClinicUnavailableError saying it is optional. Resolved only when a profile runs. */
export function clinicBin(): { bin: string; version: string } {
  try {
    const pkg = require.resolve('clinic/package.json');
    return { bin: path.join(path.dirname(pkg), 'bin.js'), version: String((JSON.parse(readFileSync(pkg, 'utf8')) as { version: string }).version) };
  } catch {
    throw new ClinicUnavailableError(`clinic is not installed (Node ${process.version}); it is an optional dependency, needed only by ` +
      'wslab profile and lab --profile: npm install clinic@^13');
  }
}

/**
 * Whether this profile can run at all, before anything starts: clinic installed, the design one clinic can follow.
 * Returns clinic's entry and what clinic cannot see in the design; throws a ClinicUnavailableError otherwise.
 */
export function preflight(o: Pick<ProfileOptions, 'tool' | 'design'>): { bin: string; version: string; caveat: string | null } {
  return { ...clinicBin(), caveat: designCaveat(o.design, o.tool) };
}

/** What clinic can and cannot see in a design, or why it cannot profile it at all. */
function designCaveat(design: string, tool: ProfileTool): string | null {
  const model = DESIGNS.get(design)?.model;
  if (model === 'processes') {
    // clinic's collectors inject a hook that throws on cluster 'fork' ("does not support clustering").
    throw new ClinicUnavailableError(`clinic ${tool} cannot profile --design ${design}: it refuses node:cluster workers. ` +
      'Profile the loop each worker runs instead: --design uws or --design ws');
  }
  if (model === 'threads') {
    return `clinic sees only the JS side of ${design}: the main event loop, which serves /metrics. The native connection ` +
      `threads that run the protocol (and any block, wait or cpu) are invisible to it; read ${CONNECTION_THREADS.name} and the swarm's RTT for them`;
  }
  return null;
}

/** `--flag value` lists merged by flag name, later lists winning: yargs would turn a repeated flag into an array. */
function mergeFlags(...lists: (readonly string[])[]): string[] {
  const byName = new Map<string, string[]>();
  for (const list of lists) {
    for (let i = 0; i < list.length; i++) {
      const hasValue = i + 1 < list.length && !list[i + 1].startsWith('--');
      byName.set(list[i], hasValue ? [list[i], list[++i]] : [list[i]]);
    }
  }
  return [...byName.values()].flat();
}

/** Bounds on each phase of a run, so a clinic that hangs on this Node ends in an error, never a stuck lab. */
const START_MS = 30_000;
const LOAD_SLACK_MS = 30_000;
const STOP_MS = 20_000;
const ANALYSE_MS = 120_000;

/**
 * Runs `clinic <tool>` on `wslab serve --design <design>` while the scenario's swarm drives it, and returns where
 * the report is and what clinic's analysis found. `log` gets clinic's, the server's and the swarms' output lines.
 */
export async function profile(o: ProfileOptions, log: (line: string) => void = () => undefined): Promise<ProfileResult> {
  const { bin, version, caveat } = preflight(o);
  const scenario = SCENARIOS.get(o.scenario);
  const scenarioFlags = scenario ? scenarioServerFlags(scenario, variantOf(o.design, o.serverFlags)) : [];
  // A fixed port, not clinic's $PORT: --on-port reports the first server that listens in JS, which for uws and
  // threads (native WebSocket listeners) is /metrics. It fires after the design is up either way.
  const port = await freePort('127.0.0.1');
  const sec = o.durationMs / 1000;
  const onPort = loadCommand(o.scenario, `ws://127.0.0.1:${port}/`, sec);
  const out = path.resolve(o.out);
  await mkdir(out, { recursive: true });
  const stamp = new Date().toISOString().replace(/\.\d+Z$/, '').replace(/[:]/g, '-');
  const name = (o.name ?? `${o.scenario}-${o.design}-${stamp}`).replace(/[^\w.-]+/g, '-').replace(/-{2,}/g, '-');
  // clinic's checkArgs wants a command named `node`; the server runs under this very Node.
  const node = /^node(\.exe)?$/.test(path.basename(process.execPath)) ? process.execPath : 'node';
  const server = [node, WSLAB, 'serve', '--design', o.design, '--port', String(port), '--metrics-port', '0', ...mergeFlags(scenarioFlags, o.serverFlags)];
  const args = [bin, o.tool, '--open=false', '--dest', out, '--name', name, '--on-port', onPort, '--', ...server];
  const command = ['NO_INSIGHT=1', 'NO_UPDATE_NOTIFIER=1', 'clinic', ...args.slice(1)].map(sh).join(' ');
  // The server writes node_trace.*.log to its working directory and clinic collects them from there: a private
  // folder keeps two profiles (or a lab and a profile) from taking each other's traces.
  const cwd = await mkdtemp(path.join(tmpdir(), 'wslab-profile-'));
  log(`running: ${command}`);
  try {
    const { html, interrupted } = await runClinic(args, cwd, o, version, log);
    return { html, data: html.replace(/\.html$/, ''), findings: findings(o.tool, html), caveat, command, interrupted };
  } catch (err) {
    // What a failed run left (a data folder without a report) would only mislead.
    await rm(path.join(out, `${name}.clinic-${o.tool}`), { recursive: true, force: true });
    throw err;
  } finally {
    await rm(cwd, { recursive: true, force: true });
  }
}

function runClinic(args: string[], cwd: string, o: ProfileOptions, version: string, log: (line: string) => void): Promise<{ html: string; interrupted: boolean }> {
  // NO_INSIGHT=1: without a TTY and without it, clinic 13 waits on a usage-statistics prompt it cannot show and
  // exits 0 having done nothing. NO_UPDATE_NOTIFIER=1: no background registry query on every run. detached: its
  // own process group, so a stuck run ends with its server and swarms.
  const env = { ...process.env, NO_INSIGHT: '1', NO_UPDATE_NOTIFIER: '1' };
  const child = spawn(process.execPath, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const group = (signal: NodeJS.Signals): void => { try { process.kill(-child.pid!, signal); } catch { /* already gone */ } };
  // Ctrl+C reaches only our own process group: pass it on, and clinic stops the server and still writes its report.
  let interrupted = false;
  const interrupt = (): void => { interrupted = true; group('SIGINT'); };
  process.on('SIGINT', interrupt).on('SIGTERM', interrupt);
  let lastWords = '';
  let html: string | null = null;
  let phase = 'while starting the server';
  let timer: NodeJS.Timeout | undefined;
  const fail = (why: string): ClinicUnavailableError => new ClinicUnavailableError(
    `clinic ${o.tool} ${why} (clinic ${version} on Node ${process.version}; clinic is optional and unmaintained, the rest of wslab does not need it)`);
  return new Promise<{ html: string; interrupted: boolean }>((resolve, reject) => {
    const deadline = (ms: number, what: string, why: string): void => {
      clearTimeout(timer);
      phase = what;
      timer = setTimeout(() => { group('SIGKILL'); reject(fail(`${why} (gave up after ${Math.round(ms / 1000)} s)`)); }, ms);
    };
    deadline(START_MS, 'while starting the server', 'did not start the server');
    const onLine = (line: string): void => {
      log(line);
      if (/\S/.test(line) && !line.startsWith('{')) lastWords = line.trim().slice(0, 240);
      const generated = /Generated HTML file is (file:\/\/\S+)/.exec(line);
      if (generated) html = fileURLToPath(generated[1]);
      else if (line.startsWith('{"event":"listening"')) deadline(o.durationMs + LOAD_SLACK_MS, 'during the load', 'did not see the load end');
      // bubbleprof 10 on Node 20: its collector's last write never completes, so the server never exits.
      else if (line === LOAD_DONE) deadline(STOP_MS, 'while stopping the server', 'kept the server running after the load ended: its collector in the server never finished writing');
      else if (line === 'Analysing data') deadline(ANALYSE_MS, 'during its analysis', 'did not finish its analysis');
    };
    for (const stream of [child.stdout!, child.stderr!]) {
      let buf = '';
      stream.setEncoding('utf8').on('data', (d: string) => {
        buf += d;
        for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) { onLine(buf.slice(0, nl)); buf = buf.slice(nl + 1); }
      });
    }
    child.once('error', (err) => reject(fail(`did not start: ${err.message}`)));
    child.once('exit', (code, signal) => {
      if (html && code === 0) return resolve({ html, interrupted });
      group('SIGKILL'); // a clinic that died leaves no server or swarm behind
      reject(fail(`exited (${signal ?? `code ${code}`}) ${phase} without writing a report${lastWords ? `: ${lastWords}` : ''}`));
    });
  }).finally(() => {
    clearTimeout(timer);
    process.off('SIGINT', interrupt).off('SIGTERM', interrupt);
  });
}

// ---- Reading clinic's own analysis out of the HTML it wrote

/** Doctor's analysis as embedded in its report (`<script type="application/json" id="clinic-data">`). */
export interface DoctorData {
  analysis: {
    issueCategory: 'event-loop' | 'io' | 'gc' | 'none' | 'unknown' | 'data';
    issues: { delay: string; cpu: string; handles: string; loopUtilization: string; memory: Record<string, string> };
  };
  processStat: { timestamp: number; delay: number; cpu: number }[];
}

export function readDoctor(html: string): DoctorData {
  const text = readFileSync(html, 'utf8');
  const m = /<script type="application\/json" id="clinic-data">([\s\S]*?)<\/script>/.exec(text);
  if (!m) throw new Error(`${html}: no clinic-data in this doctor report`);
  return JSON.parse(m[1]) as DoctorData;
}

/** A node of flame's merged call tree: `value` samples with it on the stack, `onStackTop.asViewed` at the top. */
export interface FlameNode {
  name: string;
  functionName: string | null;
  fileName: string | null;
  lineNumber: number | null;
  category: string;
  value: number;
  onStackTop: { asViewed: number };
  children: FlameNode[];
}

/** Flame's call tree, from the data module its visualiser bundle carries (`.../visualizer/data.json`). */
export function readFlame(html: string): FlameNode {
  const text = readFileSync(html, 'utf8');
  const at = text.indexOf('visualizer/data.json":[function(require,module,exports){');
  const start = text.indexOf('module.exports=', at);
  if (at < 0 || start < 0) throw new Error(`${html}: no call tree in this flame report`);
  const end = text.indexOf('\n', start);
  return (JSON.parse(text.slice(start + 'module.exports='.length, end).replace(/;\s*$/, '')) as { merged: FlameNode }).merged;
}

/**
 * wslab's own frames by time on top of the stack, as flame colours them hottest: samples summed per function, as a
 * share of every sample. A blocked loop shows as its blocking frame holding the top.
 */
export function hottestAppFrames(root: FlameNode, n = 3): { frame: string; share: number }[] {
  const self = new Map<string, number>();
  const walk = (node: FlameNode): void => {
    const file = node.fileName ? path.relative(PACKAGE_ROOT, node.fileName.startsWith('file:') ? fileURLToPath(node.fileName) : node.fileName) : '';
    // flame's "app" can include nested node_modules (yargs' help layout at start-up): wslab's own code only.
    if (node.category === 'app' && node.functionName && file && !file.split(path.sep).includes('node_modules')) {
      const key = `${node.functionName} (${file}:${node.lineNumber})`;
      self.set(key, (self.get(key) ?? 0) + node.onStackTop.asViewed);
    }
    node.children.forEach(walk);
  };
  walk(root);
  return [...self].sort((a, b) => b[1] - a[1]).slice(0, n).map(([frame, samples]) => ({ frame, share: samples / root.value }));
}

/** wslab's own folder (dist/lab/ is two below it): frames are named relative to it. */
const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url));

const pct = (x: number): string => `${(x * 100).toFixed(1)} %`;

/** One line per thing clinic's analysis found, for the terminal and the lab report. */
function findings(tool: ProfileTool, html: string): string[] {
  if (tool === 'doctor') {
    const { analysis, processStat } = readDoctor(html);
    const flagged = Object.entries({ 'event-loop delay': analysis.issues.delay, 'CPU usage under 90 %': analysis.issues.cpu, 'active handles': analysis.issues.handles, 'event-loop utilization': analysis.issues.loopUtilization, ...Object.fromEntries(Object.entries(analysis.issues.memory).map(([k, v]) => [`memory ${k}`, v])) })
      .filter(([, v]) => v === 'performance').map(([k]) => k);
    const maxDelay = Math.max(0, ...processStat.map((s) => s.delay));
    const lines = [`doctor: issue category "${analysis.issueCategory}"; flagged: ${flagged.join(', ') || 'nothing'}; longest event-loop delay ${Math.round(maxDelay)} ms`];
    /*
     * Doctor files a stalled loop under "event-loop" only when the CPU was busy meanwhile. A loop stalled while
     * sleeping (Atomics.wait, sync I/O, a lock) shows long delays with CPU under 90 %, which doctor cannot
     * categorise ("unknown"): say what that pattern means, since it is exactly the time.sleep() mistake.
     */
    if (analysis.issues.delay === 'performance' && analysis.issues.cpu === 'performance') {
      lines.push('hint: long event-loop delays while the CPU was mostly idle: the loop was blocked waiting, not computing (a sleep, sync I/O, Atomics.wait); --tool flame shows the frame');
    }
    if (analysis.issueCategory === 'data') {
      lines.push('hint: doctor had too little data to judge (it needs at least one garbage collection and a few samples of a responsive loop in the busy interval); try a longer --duration');
    }
    return lines;
  }
  if (tool === 'flame') {
    const hot = hottestAppFrames(readFlame(html));
    return [`flame: hottest wslab frames (share of samples on top of the stack): ${hot.map((h) => `${h.frame} ${pct(h.share)}`).join(', ') || 'none sampled'}`];
  }
  return ['bubbleprof: open the report to see where asynchronous operations waited'];
}
