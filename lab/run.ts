import { once } from 'node:events';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { cpus, release, totalmem, tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { SWARM_FLAGS } from '../client/flags.js';
import { toArgv } from '../core/flags.js';
import { hostAddress } from '../core/net.js';
import { openFilesLimit } from '../metrics/proc-status.js';
import { judge } from './claims.js';
import { behind, compressed, is, judged, LAB_DESIGNS, targetDesign, type LabDesign } from './designs.js';
import type { ProxyKind, ViaProfile } from '../server/via/profiles.js';
import type { Target } from './targets.js';
import { spawnServer, startSwarm, startTarget, stopChildren, type LabServer, type SwarmRun } from './processes.js';
import { profile, type ProfileTool } from './profile.js';
import { mergeRuns } from './repeat.js';
import { writeReport } from './report.js';
import type { Cell, Claim, LabResults, Machine, ScenarioResult } from './results.js';
import { NoiseWatch } from '../metrics/noise.js';
import { emptySeries, RESULTS_SCHEMA } from './results.js';
import { Sampler, type SampleRow } from './sampler.js';
import { notApplicable, scenarioServerFlags, type CellContext, type MaxRun, type Scale, type Scenario } from './scenario.js';
import { SCENARIOS } from './scenarios/index.js';

export interface LabOptions {
  /** Design and target names to include (all registered designs and every target when empty). */
  readonly designs: readonly string[];
  /** `--targets FILE` (or the reference designs of targets/python.yaml): servers we did not write, run beside ours. */
  readonly targets?: readonly Target[];
  /** Targets that cannot run here (their `check` failed), by name, with why: their cells say so. */
  readonly unavailable?: ReadonlyMap<string, string>;
  readonly scenarios: readonly string[];
  readonly scale: Scale;
  /** Folder under which reports/<timestamp>/ is written. */
  readonly out: string;
  /** `--profile`: after each cell, a clinic profile of that design under that scenario, linked from the report. */
  readonly profile?: ProfileTool;
  /** `--scale max`: the budgeted plan, checked against the box at the CLI edge before anything starts. */
  readonly max?: MaxRun;
  /** `--wait-quiet`: how long the CLI waits for a quiet box before the first cell (metrics/noise.ts waitQuiet). */
  readonly waitQuietMs?: number;
  /** `--repeat N`: each cell N times, in rounds over a scenario's designs, merged (lab/repeat.ts); 1 when absent. */
  readonly repeat?: number;
  /** `--deflate`: each of our designs a scenario runs that can negotiate permessage-deflate also runs with it (shown, not judged). */
  readonly deflate?: boolean;
  /** `--via`: each of our designs a scenario runs also runs behind each of these proxies (shown, not judged). */
  readonly via?: readonly { readonly proxy: ProxyKind; readonly profile: ViaProfile }[];
}

/** Seconds of load in each `--profile` run; clinic's own start and analysis add about as much again. */
const PROFILE_SEC = 5;

export interface PlanStep {
  readonly scenario: Scenario;
  readonly design: LabDesign;
  /** Set when the design cannot run the scenario (a target that does not speak what it needs): the cell says why. */
  readonly notApplicable?: string;
  /** `--repeat`: which run of the cell this is, from 0. */
  readonly round?: number;
}

export interface Progress {
  start(total: number, seconds: number): void;
  step(done: number, label: string, remainingSec: number): void;
  stop(): void;
}

/**
 * What a live view (`lab --web`) is told as the lab goes, from the very plan, samples, cells and judges the report is
 * built from. `index` counts the cells that run (those of the plan without `skipped`).
 */
export interface LabObserver {
  planned(cells: readonly { scenario: string; design: string; skipped?: string }[], seconds: number): void;
  step(index: number, label: string, remainingSec: number): void;
  /** Cell `index` starts: its scenario (the first cell of a scenario introduces it) and its design's label. */
  cellStarted(index: number, scenario: Pick<ScenarioResult, 'id' | 'title'>, design: string): void;
  /** A sample of the running cell: seconds since it started, a value per series. */
  sample(scenario: string, design: string, t: number, row: SampleRow): void;
  cellEnded(index: number, cell: Cell): void;
  /** Claims judged: a scenario's when its last cell has run, then every claim once the lab is done. */
  judged(claims: Claim[]): void;
}

/** Every (scenario, design) cell the options ask for, in run order. */
export function plan(o: LabOptions): PlanStep[] {
  // quick keeps the loop that stands for all, a thread per connection, and processes where they are the question (cpu-bound).
  const quick = o.scale === 'quick' && o.designs.length === 0;
  const available = LAB_DESIGNS.filter((d) => quick
    ? is.standingLoop(d) || is.threadPerConnection(d) || is.processes(d)
    : o.designs.length === 0 || o.designs.includes(d.design));
  // every target asked for runs in every scenario it can: it is what the user came to measure
  const targets = (o.targets ?? []).filter((t) => o.designs.length === 0 || o.designs.includes(t.name));
  return o.scenarios.flatMap((id) => {
    const scenario = SCENARIOS.get(id)!;
    const mine = o.scale === 'max' ? [] : targets.filter((t) => !t.scenarios || t.scenarios.includes(id)).map(targetDesign);
    const ours = scenario.designs(available, o.scale, o.max);
    // a scenario may put proxies in front itself (proxy-defenses): --via adds only the fronts it lacks
    const proxied = ours.filter(judged).flatMap((d) => (o.via ?? []).map((v) => behind(d, v.proxy, v.profile)))
      .filter((p) => !ours.some((d) => d.label === p.label));
    const deflated = o.deflate ? ours.filter((d) => judged(d) && d.traits.deflate).map(compressed) : [];
    return [...ours, ...proxied, ...deflated, ...mine].map((design) => {
      const down = design.target && o.unavailable?.get(design.target.name);
      return { scenario, design, notApplicable: down ? `cannot run here: ${down}` : notApplicable(scenario, design) };
    });
  });
}

/**
 * Runs the plan cell by cell: start the design as a child process, sample it, drive it with swarms, stop it.
 * A cell that fails (the design does not start, crashes, a swarm fails) is recorded with its cause and the lab
 * goes on; the report is always written.
 */
export async function runLab(o: LabOptions, progress: Progress, watch?: LabObserver): Promise<{ results: LabResults; dir: string }> {
  const all = plan(o);
  const repeat = o.repeat ?? 1;
  // --repeat: a scenario's designs round after round, so a noisy minute falls on every design, not on one
  const inOrder = [...new Set(all.map((s) => s.scenario))];
  const steps = inOrder.flatMap((scenario) => {
    const mine = all.filter((s) => s.scenario === scenario && !s.notApplicable);
    return Array.from({ length: repeat }, (_, round) => mine.map((s) => (repeat > 1 ? { ...s, round } : s))).flat();
  });
  /** A step's name in the progress and the live view: the design, and which run of it under --repeat. */
  const runLabel = (st: PlanStep): string => (st.round === undefined ? st.design.label : `${st.design.label} · ${st.round + 1}/${repeat}`);
  /** --repeat: the runs of each cell so far, by scenario and design, merged once its last round has run. */
  const runsOf = new Map<string, { step: PlanStep; cells: Cell[] }>();
  const started = new Date();
  const versions: Record<string, string> = {};
  const byScenario = new Map<string, ScenarioResult>();
  const tmp = await mkdtemp(join(tmpdir(), 'wslab-lab-'));
  const startsAhead = !o.profile && !o.max;
  // per cell: a server start (≈0.5 s, most of it hidden when servers start ahead) and a clinic run under --profile
  const eta = (from: number) => steps.slice(from).reduce((s, st) => s + st.scenario.seconds(o.scale, o.max) + (startsAhead ? 0.5 : 1.5) + (o.profile ? 2.5 * PROFILE_SEC : 0), 0);
  const dir = join(o.out, started.toISOString().replace(/[:.]/g, '-'));
  progress.start(steps.length, eta(0));
  watch?.planned(inOrder.flatMap((sc) => [...steps.filter((st) => st.scenario === sc), ...all.filter((st) => st.scenario === sc && st.notApplicable)]).map((st) => ({ scenario: st.scenario.id, design: runLabel(st), ...(st.notApplicable ? { skipped: st.notApplicable } : {}) })), eta(0));
  const machine: Machine = {
    cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', memoryBytes: totalmem(), fdLimit: openFilesLimit(),
    node: process.version, kernel: release(), designs: versions, // filled in as the cells start their designs
  };
  /*
   * The next cell's server starts while this cell runs, at nice 19, and waits idle: its start (≈0.4 s of CPU per
   * process) uses the cycles this cell leaves free instead of adding to every cell, and yields to anything this cell
   * runs. Its cell sets it back to nice 0 first (every thread of its tree), or, where that is not allowed (raising
   * priority needs root or CAP_SYS_NICE), starts a fresh server the plain way and stops starting ahead. Not under
   * --profile (clinic runs between cells) or at max (one cell that loads the whole box).
   */
  let ahead = startsAhead;
  const resultFor = (scenario: Scenario): ScenarioResult => {
    const r = byScenario.get(scenario.id) ?? {
      id: scenario.id, title: scenario.title, question: scenario.question, method: scenario.method(o.scale, o.max),
      columns: [...(scenario.columnsAt?.(o.scale) ?? scenario.columns)], cells: [],
    };
    byScenario.set(scenario.id, r);
    return r;
  };
  const start = (i: number, background = false): Promise<LabServer> => {
    const { scenario, design } = steps[i];
    // dozens of cluster workers start on two cores: give them a second each; in the background, a whole cell's time
    const readyMs = o.max ? 15_000 + 1000 * o.max.plan.serverWorkers : background ? 15_000 + cellLimitMs(steps[i - 1].scenario, o.scale) : undefined;
    const p: Promise<LabServer> = design.target ? startTarget(design.target, background ? 19 : 0)
      : spawnServer(design.design, [...design.flags, ...scenarioServerFlags(scenario, design)], readyMs, background ? 19 : 0);
    p.catch(() => {}); // the cell that takes it records the failure
    return p;
  };
  const foreground = async (i: number, p: Promise<LabServer>): Promise<LabServer> => {
    const srv = await p;
    try {
      srv.renice(0);
      return srv;
    } catch {
      ahead = false;
      await srv.stop();
      return start(i);
    }
  };
  let next: Promise<LabServer> | undefined;
  /*
   * SIGINT or SIGTERM: every child is stopped (the running cell's server and swarms, the server started ahead, a
   * target's process group), the cell that was running is left out, the cells not run are listed as such, and the
   * report of the finished ones is written with the signal in it. A second signal exits at once.
   */
  let interrupted: 'SIGINT' | 'SIGTERM' | undefined;
  const onSignal = (signal: 'SIGINT' | 'SIGTERM'): void => {
    if (interrupted) {
      void stopChildren(0).finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
      return;
    }
    interrupted = signal;
    progress.stop();
    process.stderr.write(`wslab lab: ${signal}: stopping every server and swarm, writing the report of the finished cells (again to quit at once)\n`);
    void stopChildren();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    for (const [i, st] of steps.entries()) {
      const { scenario, design } = st;
      if (interrupted) break;
      const label = runLabel(st);
      progress.step(i, `${scenario.id} × ${label}`, eta(i));
      watch?.step(i, `${scenario.id} × ${label}`, eta(i));
      const result = resultFor(scenario);
      watch?.cellStarted(i, result, label);
      const server = next ? foreground(i, next) : start(i);
      next = undefined;
      const ready = () => { if (ahead && i + 1 < steps.length) next = start(i + 1, true); };
      const onSample = watch && ((t: number, row: SampleRow) => watch.sample(scenario.id, label, t, row));
      const cell = await runCell(scenario, design, o.scale, join(tmp, `${i}`), versions, server, ready, o.max, onSample);
      if (interrupted) break; // cut short by the signal: not a measurement
      if (st.round === undefined) result.cells.push(cell);
      else {
        const key = `${scenario.id}\0${design.label}`;
        const runs = runsOf.get(key) ?? { step: st, cells: [] };
        runs.cells.push(cell);
        runsOf.set(key, runs);
        if (st.round === repeat - 1) {
          result.cells.push(mergeRuns(runs.cells, repeat));
          runsOf.delete(key);
        }
      }
      watch?.cellEnded(i, cell);
      if (steps[i + 1]?.scenario !== scenario) watch?.judged(judge([scenario], [result], machine));
      if (o.profile) {
        progress.step(i, `${scenario.id} × ${design.label}: clinic ${o.profile}`, eta(i) - scenario.seconds(o.scale, o.max));
        await profileCell(o.profile, scenario, design, dir, cell);
      }
    }
    // interrupted between the rounds of a cell: the runs it finished, merged, say so
    for (const { step, cells } of runsOf.values()) resultFor(step.scenario).cells.push(mergeRuns(cells, repeat));
    // the cells a target cannot run, each saying why, after the cells that ran; after a signal, those not run
    const done = new Set(steps.filter((st) => resultFor(st.scenario).cells.some((c) => c.design === st.design.label)));
    for (const st of all) {
      const why = st.notApplicable ?? (interrupted && !done.has(st) ? `not run: the lab was interrupted (${interrupted})` : undefined);
      if (why) resultFor(st.scenario).cells.push({ design: st.design.label, traits: st.design.traits, status: 'skipped', cause: why, figures: {}, series: emptySeries() });
    }
    if (!interrupted) {
      progress.step(steps.length, 'writing the report', 0);
      watch?.step(steps.length, 'writing the report', 0);
    }
  } finally {
    if (next) await next.then((srv) => srv.stop(), () => undefined); // interrupted between cells
    if (interrupted) await stopChildren();
    progress.stop();
    await rm(tmp, { recursive: true, force: true });
  }
  const scenarios = [...byScenario.values()];
  for (const r of scenarios) {
    const curves = SCENARIOS.get(r.id)?.curves?.(r.cells.filter((c) => c.status === 'ok'), o.scale, machine);
    if (curves?.length) r.curves = curves;
  }
  const finished = new Date();
  const results: LabResults = {
    schema: RESULTS_SCHEMA, startedAt: started.toISOString(), finishedAt: finished.toISOString(),
    durationSec: +((finished.getTime() - started.getTime()) / 1000).toFixed(1), scale: o.scale, machine, scenarios,
    // every claim of the scenarios a lab runs by default, measured or not; an opt-in scenario's only when it ran
    claims: judge([...SCENARIOS.values()].filter((s) => !s.optIn || o.scenarios.includes(s.id)), scenarios, machine),
    ...(repeat > 1 ? { repeat } : {}),
    interrupted: interrupted ?? null,
  };
  watch?.judged(results.claims);
  try {
    await mkdir(dir, { recursive: true });
    await writeReport(results, dir);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  return { results, dir };
}

/** How long a cell may take before it is failed: three times its estimate, plus half a minute. */
const cellLimitMs = (scenario: Scenario, scale: Scale, max?: MaxRun): number => (scenario.seconds(scale, max) * 3 + 30) * 1000;

/** `starting`: this cell's server, already spawning; `ready`: called once it is up (or failed to start). */
async function runCell(scenario: Scenario, design: LabDesign, scale: Scale, tmp: string, versions: Record<string, string>,
  starting: Promise<LabServer>, ready: () => void, max?: MaxRun, onSample?: (t: number, row: SampleRow) => void): Promise<Cell> {
  const cell: Cell = { design: design.label, traits: design.traits, status: 'ok', figures: {}, series: emptySeries() };
  let server: LabServer | undefined;
  let sampler: Sampler | undefined;
  let noise: NoiseWatch | undefined;
  const swarms: SwarmRun[] = [];
  let started = 0;
  try {
    await mkdir(tmp, { recursive: true });
    server = await starting.finally(ready);
    versions[design.label] = String(server.ready.version ?? 'unknown');
    // one of our designs: its /metrics speaks the wslab contract, which the sampler and every swarm's attribution read
    const wslabMetrics = server.countsFrom === 'metrics' ? server.metricsUrl : null;
    sampler = new Sampler(server.pid, wslabMetrics, 500, max !== undefined,
      server.countsFrom === 'proc' ? { ip: hostAddress(new URL(server.url)), port: server.port } : undefined);
    sampler.onSample = onSample;
    // a target of --targets given by url without a pid: its own CPU would count as the box's, so no noise figure
    if (server.pid !== undefined) noise = new NoiseWatch(() => [process.pid, server?.pid ?? process.pid]);
    sampler.start();
    const s = sampler;
    const srv = server;
    // the server exiting during the run fails the cell, unless the scenario restarts it (ctx.restart)
    let restarting = false;
    let crash!: (err: Error) => void;
    const crashed = new Promise<never>((_, reject) => { crash = reject; });
    const watchExit = (p: LabServer): void => void p.child?.once('exit', (code, signal) => {
      if (!restarting) crash(new Error(`server exited during the run (${signal ?? `exit ${code}`}): ${lastLine(p.stderr())}`));
    });
    watchExit(srv);
    const ctx: CellContext = {
      design, scale, sampler: s, max,
      get server() { return server ?? srv; }, // the restarted one, after ctx.restart
      note: (text) => { (cell.notes ??= []).push(text); },
      async restart(downMs) {
        const old = server!;
        if (!old.restart) throw new Error(`${design.label}: the lab did not start this server, so it cannot restart it`);
        restarting = true;
        let stoppedAtMs = 0;
        const stopping = old.child ? once(old.child, 'exit').then(() => { stoppedAtMs = Date.now(); }) : Promise.resolve();
        try {
          server = await old.restart(downMs);
        } catch (err) {
          server = undefined;
          throw new Error(`restart: ${(err as Error).message}`);
        }
        await stopping;
        s.follow(server.pid);
        restarting = false;
        watchExit(server);
        return { stoppedAtMs, upAtMs: Date.now() };
      },
      async swarm(flags) {
        const file = join(tmp, `swarm-${started++}.json`); // taken before the await: swarms may start concurrently
        // a --deflate variant (lab --deflate) is driven by clients that offer permessage-deflate
        const all = { ...flags, ...(design.common.deflate ? { deflate: true } : {}), ...(wslabMetrics ? { serverMetrics: wslabMetrics } : {}) };
        const run = await startSwarm(['--url', srv.url, ...toArgv(SWARM_FLAGS, all)], file);
        swarms.push(run);
        s.watchSwarm(run.metricsUrl);
        return run;
      },
      async finish(run) {
        const { code, summary, stderr } = await run.done;
        if (!summary) throw new Error(`swarm exited ${code} without a summary: ${lastLine(stderr)}`);
        return summary;
      },
    };
    const limit = cellLimitMs(scenario, scale, max);
    let timer: NodeJS.Timeout | undefined;
    cell.figures = await Promise.race([
      scenario.run(ctx),
      crashed,
      new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`cell took longer than ${limit / 1000} s`)), limit); }),
    ]).finally(() => clearTimeout(timer));
  } catch (err) {
    cell.status = 'failed';
    cell.cause = (err as Error).message;
  } finally {
    if (noise) cell.noise = noise.end(); // before anything is stopped: the run's processes are still in the trees
    for (const w of swarms) if (w.child.exitCode === null) w.child.kill('SIGINT');
    const ended = await Promise.all(swarms.map((w) => w.done.catch(() => undefined)));
    // a failed cell says why in its cause; a partial attribution beside it would read as a finding
    const attribution = ended.flatMap((d) => (d?.summary?.attribution ? [d.summary.attribution] : []));
    if (cell.status === 'ok' && attribution.length) cell.attribution = attribution;
    await sampler?.stop();
    if (sampler) cell.series = sampler.series;
    await server?.stop();
  }
  return cell;
}

/** Profiles the design as its own run after the cell (clinic slows what it profiles, so never during the cell). */
async function profileCell(tool: ProfileTool, scenario: Scenario, design: LabDesign, dir: string, cell: Cell): Promise<void> {
  if (design.target) {
    cell.profileNote = `no ${tool} profile: clinic profiles our Node designs; ${design.label} runs in its own runtime`;
    return;
  }
  try {
    const r = await profile({
      tool, design: design.design, serverFlags: design.flags, scenario: scenario.id, durationMs: PROFILE_SEC * 1000,
      out: join(dir, 'profiles'), name: `${scenario.id}-${design.label}`,
    });
    // Ctrl+C went to clinic (which still reported); end the lab as that signal would have.
    if (r.interrupted) process.kill(process.pid, 'SIGINT');
    cell.profile = relative(dir, r.html);
    cell.profileNote = [...r.findings, ...(r.caveat ? [`Note: ${r.caveat}`] : [])].join(' ');
  } catch (err) {
    cell.profileNote = `no ${tool} profile: ${(err as Error).message}`;
  }
}

/** The line of a child's stderr that says what went wrong: the last error line, else the last line. */
const lastLine = (text: string): string => {
  const lines = text.trim().split('\n');
  // V8's own end (heap out of memory) comes first: its native stack trace follows it and the start banner precedes it
  return (lines.find((l) => /^FATAL ERROR: /.test(l)) ?? lines.findLast((l) => /\b\w*Error\b|^wslab[^:]*: /.test(l)) ?? lines.at(-1) ?? '').trim().slice(0, 300);
};
