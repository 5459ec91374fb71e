import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { UsageError } from '../core/errors.js';
import { hostAddress, isLoopback } from '../core/net.js';
import { parseDuration } from '../core/units.js';
import type { Model } from '../server/design.js';

/**
 * A server we did not write, put in the lab beside our designs: started by the lab (`start`) or already running
 * (`url`, optionally `pid`), measured from outside (its process tree in /proc, its established connections on its
 * port from /proc/net/tcp) and, if it has one, through its own Prometheus endpoint. Declared in a targets file
 * (`--targets FILE`, YAML or JSON), checked here once, before anything starts.
 */
export interface Target {
  readonly name: string;
  /** How it runs handlers, for the verdicts; `unknown` = its cells are measured but judge no claim. */
  readonly model: Model | 'unknown';
  /** argv the lab starts it with; `{port}` and `{metricsPort}` are free ports the lab picks. Absent: already running. */
  readonly start?: readonly string[];
  /** Working directory of `start`: the targets file's folder, or `cwd` relative to it. */
  readonly cwd: string;
  /** Its WebSocket URL, with the same placeholders. */
  readonly url: string;
  /** When a started target is ready: it accepts TCP on its URL's port, or prints a line matching `line`. */
  readonly ready: { readonly port: true } | { readonly line: RegExp };
  /** How long a start may take to be ready, ms. Default 15 s. */
  readonly readyTimeoutMs: number;
  /** Its own Prometheus endpoint, scraped as-is (its series go into nothing of ours but are kept reachable). */
  readonly metrics?: string;
  /** What it answers: `wslab` (docs/protocol.md), `echo` (returns any text as sent). Empty: only connections are held. */
  readonly speaks: readonly Speaks[];
  /** An already-running target's process, whose tree is sampled. */
  readonly pid?: number;
  /** What it runs on (`python`, `go`, …; free text): claims about a runtime (the GIL) judge its cells. Default `unknown`. */
  readonly runtime: string;
  /** The scenarios it runs in; every scenario when absent. */
  readonly scenarios?: readonly string[];
  /**
   * A command that must succeed before the lab uses it (`[python3, -c, "import websockets"]`); when it fails, the
   * target's cells say so instead of running. Absent: no check.
   */
  readonly check?: readonly string[];
}

export const SPEAKS = ['wslab', 'echo'] as const;
export type Speaks = (typeof SPEAKS)[number];
const MODELS = ['loop', 'threads', 'processes', 'unknown'] as const;
const KEYS = ['name', 'model', 'runtime', 'start', 'cwd', 'url', 'ready', 'ready-timeout', 'metrics', 'speaks', 'pid', 'scenarios', 'check'] as const;
const NAME = /^[a-z0-9][a-z0-9._-]{0,39}$/;

/**
 * Reads and checks a targets file: every mistake is one UsageError naming the file and the key
 * (`targets[1].model: "fast" is not one of loop, threads, processes, unknown`). `taken` are names already used
 * (the built-in designs).
 */
export function readTargets(file: string, taken: readonly string[], scenarios?: readonly string[]): Target[] {
  const where = `--targets ${file}`;
  let text: string;
  try { text = readFileSync(file, 'utf8'); } catch (err) {
    throw new UsageError(`${where}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  let doc: unknown;
  try { doc = parseYaml(text); } catch (err) {
    throw new UsageError(`${where}: not YAML or JSON: ${(err as Error).message.split('\n')[0]}`);
  }
  const list = (doc as { targets?: unknown } | null)?.targets;
  if (!doc || typeof doc !== 'object' || Array.isArray(doc) || !Array.isArray(list) || list.length === 0) {
    throw new UsageError(`${where}: expected a mapping with a non-empty \`targets:\` list`);
  }
  const extra = Object.keys(doc).filter((k) => k !== 'targets');
  if (extra.length) throw new UsageError(`${where}: unknown key "${extra[0]}" (the file holds \`targets:\` only)`);
  const names = new Set(taken);
  return list.map((raw, i) => {
    const t = checkTarget(raw, `${where}: targets[${i}]`, dirname(resolve(file)), scenarios);
    if (names.has(t.name)) throw new UsageError(`${where}: targets[${i}].name: "${t.name}" is already taken (built-in designs and other targets: ${[...names].join(', ')})`);
    names.add(t.name);
    return t;
  });
}

function checkTarget(raw: unknown, at: string, base: string, known?: readonly string[]): Target {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new UsageError(`${at}: expected a mapping (name:, url: or start:, …)`);
  const r = raw as Record<string, unknown>;
  const unknown = Object.keys(r).find((k) => !(KEYS as readonly string[]).includes(k));
  if (unknown) throw new UsageError(`${at}: unknown key "${unknown}" (known: ${KEYS.join(', ')})`);
  const str = (key: string): string | undefined => {
    if (r[key] === undefined) return undefined;
    if (typeof r[key] !== 'string' && typeof r[key] !== 'number') throw new UsageError(`${at}.${key}: expected text`);
    return String(r[key]);
  };
  const name = str('name');
  if (name === undefined) throw new UsageError(`${at}.name: missing (a short name for the report, e.g. py-echo)`);
  if (!NAME.test(name)) throw new UsageError(`${at}.name: "${name}" must be lower-case letters, digits, . _ - (at most 40)`);
  const model = str('model') ?? 'unknown';
  if (!(MODELS as readonly string[]).includes(model)) throw new UsageError(`${at}.model: "${model}" is not one of ${MODELS.join(', ')}`);

  let start: string[] | undefined;
  if (r.start !== undefined) {
    if (!Array.isArray(r.start) || r.start.length === 0 || !r.start.every((a) => typeof a === 'string' || typeof a === 'number')) {
      throw new UsageError(`${at}.start: expected a non-empty list of arguments, e.g. [python3, srv.py, --port, "{port}"]`);
    }
    start = r.start.map(String);
  }
  const pid = r.pid === undefined ? undefined : Number(r.pid);
  if (pid !== undefined && (!Number.isInteger(pid) || pid < 1)) throw new UsageError(`${at}.pid: "${String(r.pid)}" is not a process id`);
  if (pid !== undefined && start) throw new UsageError(`${at}: give start (the lab runs it) or pid (it runs already), not both`);
  const url = str('url') ?? (start ? 'ws://127.0.0.1:{port}/' : undefined);
  if (url === undefined) throw new UsageError(`${at}: give start (a command the lab runs) or url (a server already running)`);
  const metrics = str('metrics');
  if (!start && /\{(port|metricsPort)\}/.test(`${url} ${metrics ?? ''}`)) throw new UsageError(`${at}: {port} and {metricsPort} need start (the lab picks them for a server it starts)`);
  checkUrl(url, `${at}.url`);
  if (metrics !== undefined && !/^https?:\/\//.test(metrics)) throw new UsageError(`${at}.metrics: "${metrics}" is not an http:// URL`);

  let ready: Target['ready'] = { port: true };
  if (r.ready !== undefined) {
    const rd = r.ready as Record<string, unknown>;
    if (r.ready === 'port') ready = { port: true };
    else if (rd && typeof rd === 'object' && typeof rd.line === 'string' && Object.keys(rd).length === 1) {
      try { ready = { line: new RegExp(rd.line) }; } catch (err) { throw new UsageError(`${at}.ready.line: ${(err as Error).message}`); }
    } else throw new UsageError(`${at}.ready: expected port or {line: "<regex on its stdout>"}`);
    if (!start) throw new UsageError(`${at}.ready: applies to a target the lab starts (give start)`);
  }
  const readyTimeoutMs = parseDuration(`targets ${at.split(': ')[1]}.ready-timeout`, r['ready-timeout'] ?? '15s');
  if (readyTimeoutMs < 100 || readyTimeoutMs > 300_000) throw new UsageError(`${at}.ready-timeout: from 100ms to 5m`);

  const speaks = r.speaks === undefined ? [] : Array.isArray(r.speaks) ? r.speaks.map(String) : [String(r.speaks)];
  const bad = speaks.find((s) => !(SPEAKS as readonly string[]).includes(s));
  if (bad !== undefined) throw new UsageError(`${at}.speaks: "${bad}" is not one of ${SPEAKS.join(', ')}`);
  const cwd = resolve(base, str('cwd') ?? '.');
  const runtime = str('runtime') ?? 'unknown';
  const list = (key: string): string[] | undefined => {
    if (r[key] === undefined) return undefined;
    if (!Array.isArray(r[key]) || (r[key] as unknown[]).length === 0 || !(r[key] as unknown[]).every((a) => typeof a === 'string' || typeof a === 'number')) {
      throw new UsageError(`${at}.${key}: expected a non-empty list`);
    }
    return (r[key] as unknown[]).map(String);
  };
  const scenarios = list('scenarios');
  const unknownScenario = scenarios?.find((s) => known && !known.includes(s));
  if (unknownScenario !== undefined) throw new UsageError(`${at}.scenarios: "${unknownScenario}" is not a scenario (known: ${known!.join(', ')})`);
  const check = list('check');
  return Object.freeze({
    name, model: model as Target['model'], start, cwd, url, ready, readyTimeoutMs, metrics, speaks: Object.freeze(speaks as Speaks[]), pid,
    runtime, scenarios, check,
  });
}

/** A ws:// URL to a loopback address (the lab loads nothing else); placeholders allowed where the lab picks ports. */
function checkUrl(text: string, at: string): void {
  let u: URL;
  try { u = new URL(text.replace(/\{(port|metricsPort)\}/g, '1')); } catch {
    throw new UsageError(`${at}: "${text}" is not a URL (e.g. ws://127.0.0.1:{port}/)`);
  }
  if (u.protocol !== 'ws:') throw new UsageError(`${at}: "${text}" must be a ws:// URL`);
  if (!isLoopback(hostAddress(u))) throw new UsageError(`${at}: "${text}" is not a loopback address: the lab loads only 127.0.0.0/8 and ::1`);
}

/**
 * Runs each target's `check` (in its cwd, bounded to 10 s) and returns why the failing ones cannot run, by name: the
 * command and the last line it printed.
 */
export function failedChecks(targets: readonly Target[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const t of targets) {
    if (!t.check) continue;
    const r = spawnSync(t.check[0], t.check.slice(1), { cwd: t.cwd, encoding: 'utf8', timeout: 10_000 });
    if (r.status === 0) continue;
    const said = `${r.stderr ?? ''}${r.stdout ?? ''}`.trim().split('\n').at(-1) || r.error?.message || `exit ${r.status}`;
    out.set(t.name, `its check \`${t.check.join(' ')}\` failed: ${said}`);
  }
  return out;
}

/** The target's text with the lab's ports put in. */
export const fill = (text: string, ports: { port: number; metricsPort: number }): string =>
  text.replace(/\{port\}/g, String(ports.port)).replace(/\{metricsPort\}/g, String(ports.metricsPort));
