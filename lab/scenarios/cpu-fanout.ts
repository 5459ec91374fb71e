import { sumOf, type Sample } from '../../metrics/exposition.js';
import { COMMAND_DURATION, CONNECTION_THREADS, CONNECTIONS_OPEN, CONTEXT_SWITCHES } from '../../metrics/index.js';
import { treeCpuSeconds } from '../../metrics/proc-status.js';
import { figure, missing, ratio, times, verdict, type JudgedCell } from '../claims.js';
import { kneeOf, pointKey, sweepLine, type Curve, type CurveLine } from '../curves.js';
import { CORES, is, oneLoop, withThreadPerTask, type LabDesign } from '../designs.js';
import type { Cell, Claim, Verdict } from '../results.js';
import { at, chattyLoad, defineScenario, SOURCE_IPS, sleep, type CellContext, type Scale } from '../scenario.js';

const CLIENTS = { quick: 100, default: 400, full: 1000 } as const;
const HOLD_S = { quick: 1, default: 2, full: 8 } as const;
/** Runnable contention: concurrent clients, each with requests always queued (the seed's "many runnable threads"). */
const RUNNABLE = { quick: [300], default: [CORES, 100, 1000], full: [CORES, 10, 30, 100, 300, 1000] } as const;
/** The measured window of a contention point, once K requests are queued. */
const CONTENTION_S = { quick: 0.75, default: 1, full: 4 } as const;
const UNITS = 500;
/** How long the design's service time of `cpu UNITS` is measured, one request at a time per core. */
const CALIBRATE_MS = { quick: 500, default: 800, full: 2000 } as const;
/** Offered load in the contention sweep: this many times what the design can serve (its service time × its cores). */
const OVERLOAD = 2;
/**
 * A loop's offered load, of what its one core serves: a loop has no threads to contend, and saturated it answers
 * /metrics only after whole read batches of queued requests (measured: scrapes late by seconds, the window lost).
 */
const LOOP_OVERLOAD = 0.9;
/**
 * The hold past the measured window, never waited for: the lab times the window from what the server holds and stops
 * the swarm once it is measured; the hold only bounds a swarm the lab lost track of.
 */
const HOLD_SLACK_MS = 5000;
/** Threads pay where their switches per request are ×3 the loop's and their CPU per request ×1.2. */
const SWITCHES_PAY = 3;
const CPU_PAYS = 1.2;

/**
 * Context switches in three settings. Sleeping threads: many connections each sending `cpu 5` (≈10–25 µs) every
 * 100 ms, so a connection's thread sleeps between requests. Runnable contention (the seed's first setting): K clients
 * whose requests (`cpu 500`) are always queued, K = cores … 1,000, so K threads want the cores at once. A thread per
 * task (the seed's second): the threads design creating a new thread for each command.
 */
type FanoutFigures = {
  requestsPerSec: number | null; switchesPerRequest: number | null; involuntaryPerSec: number | null; cpuMsPerKiloRequest: number | null;
  runnableInvoluntaryPerRequest: number | null; runnableCpuMsPerRequest: number | null; [point: string]: number | null;
};

const runnable = (s: Scale): readonly number[] => at<readonly number[]>(s, RUNNABLE);

/**
 * The server's command count, switches and CPU, read together: time and CPU are taken on both sides of the scrape and
 * averaged, since a server busy with K threads may answer it late (the counters are read somewhere in between).
 */
async function reading(ctx: CellContext) {
  const [t0, cpu0] = [performance.now(), treeCpuSeconds(ctx.server.pid)];
  const s: Sample[] = await ctx.server.scrape();
  return {
    t: (t0 + performance.now()) / 2, cpu: (cpu0 + treeCpuSeconds(ctx.server.pid)) / 2,
    requests: sumOf(s, `${COMMAND_DURATION.name}_count`, { command: 'cpu' }),
    busySec: sumOf(s, `${COMMAND_DURATION.name}_sum`, { command: 'cpu' }),
    voluntary: sumOf(s, CONTEXT_SWITCHES.name, { kind: 'voluntary' }),
    involuntary: sumOf(s, CONTEXT_SWITCHES.name, { kind: 'involuntary' }),
    open: sumOf(s, CONNECTIONS_OPEN.name),
    // a threads design's threads running a command now (absent for a loop: its one thread)
    working: s.some((x) => x.name === CONNECTION_THREADS.name) ? sumOf(s, CONNECTION_THREADS.name, { state: 'working' }) : null,
  };
}

/** Waits (bounded) until the server holds no connection and its command count stands still: a backlog burnt. */
async function drained(ctx: CellContext, boundMs: number): Promise<void> {
  const until = performance.now() + boundMs;
  let last = await reading(ctx);
  while (performance.now() < until) {
    await sleep(200);
    const now = await reading(ctx);
    if (now.open === 0 && now.requests === last.requests) return;
    last = now;
  }
}

/** Waits (bounded) until the server holds `n` connections: the swarm's hold starts about then. */
async function opened(ctx: CellContext, n: number, boundMs: number): Promise<void> {
  const until = performance.now() + boundMs;
  while (performance.now() < until && (await reading(ctx)).open < n) await sleep(50);
}

export const cpuFanout = defineScenario<FanoutFigures>({
  id: 'cpu-fanout',
  title: 'Context switches: sleeping threads, runnable threads, a thread per task',
  question: 'Where do many threads pay in context switches for work a loop does without them, and where do they not?',
  claims: ['context-switch'],
  serverOptions: { idleTimeoutMs: 0 },
  columns: [
    { key: 'requestsPerSec', label: 'sleeping: cpu 5 done', unit: 'req/s' },
    { key: 'switchesPerRequest', label: 'sleeping: switches per request', unit: 'switches' },
    { key: 'cpuMsPerKiloRequest', label: 'sleeping: CPU per 1000 requests', unit: 'ms' },
    { key: 'runnableInvoluntaryPerRequest', label: 'runnable at the most clients: involuntary switches per request', unit: 'switches' },
    { key: 'runnableCpuMsPerRequest', label: `runnable at the most clients: CPU per cpu ${UNITS}`, unit: 'ms' },
  ],
  // one loop stands for all below full: every loop wakes on an epoll loop (libuv, uSockets) per request.
  designs: (all, scale) => [
    ...all.filter((d) => !is.processes(d) && !is.pool(d)).filter(oneLoop(all, scale)),
    ...(all.some(is.threadPerConnection) ? [withThreadPerTask('threads')].filter((d): d is LabDesign => !!d) : []),
  ],
  method: (s) => `Sleeping threads: ${at(s, CLIENTS)} clients each send \`cpu 5\` (≈10–25 µs of work) every 100 ms for ${at(s, HOLD_S)} s. ` +
    `Runnable contention: K = ${runnable(s).join(', ')} clients send \`cpu ${UNITS}\` at ×${OVERLOAD} what the design serves (its mean service time, measured first, × its cores; a loop ×${LOOP_OVERLOAD} of its one core), ` +
    `so requests queue on every connection until K are queued, then measured over ${at(s, CONTENTION_S)} s (a threads design's threads running a command read as the window opens); the server's threads but its main one run the sweep at nice 19 so that K of them do not starve the swarm on the shared cores; the server drains between points. A thread per task: the threads design creating a thread per command, in both. ` +
    `Switches of the server process from its ${CONTEXT_SWITCHES.name} (getrusage: every thread, ended ones too), requests from its command counter, CPU from /proc, over each measured window.`,
  seconds: (s) => at(s, HOLD_S) + 1.5 + 1.5 + runnable(s).length * (at(s, CONTENTION_S) + 2.5),
  async run(ctx) {
    const f: FanoutFigures = {
      requestsPerSec: null, switchesPerRequest: null, involuntaryPerSec: null, cpuMsPerKiloRequest: null,
      runnableInvoluntaryPerRequest: null, runnableCpuMsPerRequest: null,
    };
    // sleeping threads: the measurement starts once every client is open and sending
    const sleeping = await ctx.swarm({ connections: at(ctx.scale, CLIENTS), rate: 2000, holdMs: at(ctx.scale, HOLD_S) * 1000,
      profile: 'chatty', command: 'cpu 5', intervalMs: 100, sourceIps: SOURCE_IPS });
    await sleep(Math.min(1000, at(ctx.scale, HOLD_S) * 500));
    const a = await reading(ctx);
    await ctx.finish(sleeping);
    const b = await reading(ctx);
    const n = b.requests - a.requests;
    f.requestsPerSec = +(n / ((b.t - a.t) / 1000)).toFixed(1);
    f.switchesPerRequest = n ? +((b.voluntary + b.involuntary - a.voluntary - a.involuntary) / n).toFixed(2) : null;
    f.involuntaryPerSec = +((b.involuntary - a.involuntary) / ((b.t - a.t) / 1000)).toFixed(1);
    f.cpuMsPerKiloRequest = n ? +(((b.cpu - a.cpu) * 1e6) / n).toFixed(1) : null;
    await drained(ctx, 3000);

    // runnable contention: the design's service time first (one request at a time per core), then the sweep
    const par = ctx.design.traits.model === 'loop' ? 1 : CORES;
    const c0 = await reading(ctx);
    await ctx.finish(await ctx.swarm({ connections: par, rate: 1000, holdMs: at(ctx.scale, CALIBRATE_MS), profile: 'chatty', command: `cpu ${UNITS}`, intervalMs: 50 }));
    const c1 = await reading(ctx);
    const serviceSec = c1.requests > c0.requests ? (c1.busySec - c0.busySec) / (c1.requests - c0.requests) : null;
    if (serviceSec === null) throw new Error(`the server answered no \`cpu ${UNITS}\` while its service time was measured`);
    const capacity = par / serviceSec;
    // threads: overloaded so that a backlog builds on every connection; a loop has one thread, busy once anything waits
    const overload = par === 1 ? LOOP_OVERLOAD : OVERLOAD;
    const offered = overload * capacity;
    const windowMs = at(ctx.scale, CONTENTION_S) * 1000;
    /*
     * The server's threads yield to the swarm for the sweep (nice 19; the connection threads the accept thread
     * creates inherit it): K runnable threads at nice 0 leave the swarm 1/K of the shared cores (measured here: at
     * K = 1,000 the swarm got 19 % of a core and the requests queued in it, not in the server), which would measure
     * the swarm's starvation. The main thread keeps nice 0: in the threads design it answers /metrics, which K threads
     * at its nice delayed by up to 2 s a scrape. A loop has no threads to yield.
     */
    const yielded = par > 1;
    if (yielded) ctx.server.renice(19, true);
    for (const k of runnable(ctx.scale)) {
      await drained(ctx, 5000);
      // every client sends every k / offered seconds: together `offered` requests per second, whatever k is; the
      // backlog grows by what the design cannot serve until k requests are queued (threads), then the window opens
      const intervalMs = Math.max(1, Math.round((k / offered) * 1000));
      // a whole millisecond per client: few clients may be offered less than asked; the queue fills from what is
      const over = (k / intervalMs) * 1000 - capacity;
      const fillMs = par === 1 || over <= 0 ? 300 : Math.min(5000, (k / over) * 1000);
      // all K open before their first sends (one interval after each open), so that the accepts do not contend
      const run = await ctx.swarm({ connections: k, rate: 20_000, holdMs: Math.round(intervalMs + fillMs + windowMs + HOLD_SLACK_MS), profile: 'chatty',
        command: `cpu ${UNITS}`, intervalMs, sourceIps: SOURCE_IPS });
      await opened(ctx, k, 5000);
      await sleep(intervalMs + fillMs);
      const x = await reading(ctx);
      await sleep(windowMs);
      const y = await reading(ctx);
      run.child.kill('SIGTERM'); // the window is measured: the swarm closes now (1001) and writes its summary
      await ctx.finish(run);
      if (x.open < k || y.open < k) {
        ctx.note(`K = ${k}: not measured, the server held ${Math.min(x.open, y.open)} of the ${k} connections in the window`);
        continue;
      }
      const done = y.requests - x.requests;
      f[pointKey('reqPerSec', k)] = +(done / ((y.t - x.t) / 1000)).toFixed(1);
      f[pointKey('involuntaryPerRequest', k)] = done ? +((y.involuntary - x.involuntary) / done).toFixed(3) : null;
      f[pointKey('switchesPerRequest', k)] = done ? +((y.involuntary + y.voluntary - x.involuntary - x.voluntary) / done).toFixed(3) : null;
      f[pointKey('cpuMsPerRequest', k)] = done ? +(((y.cpu - x.cpu) * 1000) / done).toFixed(3) : null;
      f[pointKey('workingThreads', k)] = x.working;
    }
    // raising it back needs CAP_SYS_NICE; the measurements are done either way
    if (yielded) try { ctx.server.renice(0); } catch { /* stays at 19 until the cell stops it */ }
    const top = runnable(ctx.scale).at(-1)!;
    f.runnableInvoluntaryPerRequest = f[pointKey('involuntaryPerRequest', top)];
    f.runnableCpuMsPerRequest = f[pointKey('cpuMsPerRequest', top)];
    ctx.note(`runnable contention: mean service time of \`cpu ${UNITS}\` ${(serviceSec * 1000).toFixed(2)} ms alone; offered ${Math.round(offered)} req/s at every K`);
    return f;
  },
  judge,
  curves,
  profileLoad: (sec) => [{ atSec: 0, flags: chattyLoad(100, 'cpu 5', 100, sec) }],
});

/** Each curve of the contention sweep: a line per design over K (log axis). */
function curves(cells: readonly Cell[], s: Scale): Curve[] {
  const ks = runnable(s);
  const line = (key: string): CurveLine[] => cells.map((c) => sweepLine(c, key, ks)).filter((l) => l.points.length);
  const loop = cells.find(is.standingLoop) ?? cells.find(is.loop);
  const knees = (key: string): string[] => (loop ? cells.filter((c) => c !== loop).map((c) => payText(c, loop, ks, key)) : []);
  const x = { label: 'runnable clients (K)', unit: 'clients', log: true };
  const all: Curve[] = [
    { id: 'runnable-involuntary', title: 'Involuntary switches per request, K runnable requests', x, y: { label: 'involuntary switches per request', unit: 'switches' },
      lines: line('involuntaryPerRequest'), knees: knees('involuntaryPerRequest') },
    { id: 'runnable-cpu', title: `CPU per \`cpu ${UNITS}\`, K runnable requests`, x, y: { label: 'server CPU per request', unit: 'ms' },
      lines: line('cpuMsPerRequest'), knees: knees('cpuMsPerRequest') },
    { id: 'runnable-throughput', title: 'Throughput, K runnable requests', x, y: { label: `cpu ${UNITS} done`, unit: 'req/s' },
      lines: line('reqPerSec'), knees: [] },
    { id: 'runnable-working', title: 'Threads running a command mid-hold (threads designs)', x, y: { label: 'threads working', unit: 'threads' },
      lines: line('workingThreads'), knees: [] },
  ];
  return all.filter((c) => c.lines.length);
}

/** Whether threads pay at K: switches per request ×3 the loop's and CPU per request ×1.2; and the numbers. */
function paysAt(t: Pick<Cell, 'figures'>, l: Pick<Cell, 'figures'>, k: number): { pays: boolean; sw: number; cpu: number } | null {
  const v = (c: Pick<Cell, 'figures'>, key: string) => c.figures[pointKey(key, k)];
  const [ts, ls, tc, lc] = [v(t, 'switchesPerRequest'), v(l, 'switchesPerRequest'), v(t, 'cpuMsPerRequest'), v(l, 'cpuMsPerRequest')];
  if (typeof ts !== 'number' || typeof ls !== 'number' || typeof tc !== 'number' || typeof lc !== 'number') return null;
  const sw = ratio(ts, Math.max(ls, 0.01));
  const cpu = ratio(tc, lc);
  return { pays: sw >= SWITCHES_PAY && cpu >= CPU_PAYS, sw, cpu };
}

/** From which K a threads design pays against the loop, in words. */
function payText(c: Cell, loop: Cell, ks: readonly number[], key: string): string {
  const pts = ks.flatMap((k) => {
    const p = paysAt(c, loop, k);
    return p ? [{ x: k, y: p.pays ? 1 : 0, ...p }] : [];
  });
  if (!pts.length) return `${c.design}: not measured against ${loop.design}`;
  const k = kneeOf(pts, (p) => p.y === 1);
  const each = pts.map((p) => `K=${p.x} switches ${times(p.sw)}, CPU ${times(p.cpu)}`).join('; ');
  const which = key === 'cpuMsPerRequest' ? 'CPU per request' : 'involuntary switches per request';
  return k ? `${c.design} pays from K = ${k.at.x} (${which} shown; vs ${loop.design}: ${each})` : `${c.design} does not pay at any K up to ${pts.at(-1)!.x} (vs ${loop.design}: ${each})`;
}

/**
 * Judged over the seed's two settings, each against the loop that stands for all (else any loop): runnable contention
 * at its most clients, and a thread per task in the sleeping setting's load. Threads pay in a setting when their
 * switches per request are ×3 the loop's and their CPU per request ×1.2. Confirmed when they pay in both, refuted
 * when in neither, inconclusive when in one; the sleeping connection threads are reported beside them.
 */
function judge(cells: readonly JudgedCell<FanoutFigures>[]): Claim[] {
  const loop = figure(cells, is.standingLoop, 'switchesPerRequest') !== null ? is.standingLoop : is.loop;
  const l = cells.find(loop);
  const t = cells.find(is.threadPerConnection);
  const task = cells.find(is.threadPerTask);
  if (!l || !t || !task) return [missing('context-switch', 'cpu-fanout', 'loop, thread per connection and thread per task')];
  const num = (c: JudgedCell<FanoutFigures>, k: keyof FanoutFigures) => (typeof c.figures[k] === 'number' ? c.figures[k] as number : null);
  // runnable contention at its largest K (the key every cell carries)
  const ks = Object.keys(t.figures).filter((k) => k.startsWith('cpuMsPerRequest@')).map((k) => Number(k.split('@')[1])).sort((a, b) => a - b);
  const top = ks.at(-1);
  const contention = top === undefined ? null : paysAt(t as unknown as Cell, l as unknown as Cell, top);
  const [lSw, taskSw, lCpu, taskCpu] = [num(l, 'switchesPerRequest'), num(task, 'switchesPerRequest'), num(l, 'cpuMsPerKiloRequest'), num(task, 'cpuMsPerKiloRequest')];
  if (!contention || lSw === null || taskSw === null || lCpu === null || taskCpu === null) {
    return [missing('context-switch', 'cpu-fanout', 'runnable-contention and thread-per-task figures of both threads and loop')];
  }
  const perTask = { sw: ratio(taskSw, Math.max(lSw, 0.01)), cpu: ratio(taskCpu, lCpu) };
  const perTaskPays = perTask.sw >= SWITCHES_PAY && perTask.cpu >= CPU_PAYS;
  const pays = [contention.pays, perTaskPays].filter(Boolean).length;
  const v: Verdict = pays === 2 ? 'confirmed' : pays === 0 ? 'refuted' : 'inconclusive';
  const tSw = num(t, 'switchesPerRequest');
  const said = (p: boolean) => (p ? 'threads pay' : 'threads do not pay');
  return [verdict('context-switch', v, `${top} runnable requests: ${said(contention.pays)} (switches per request ${times(contention.sw)} the loop's, CPU per request ${times(contention.cpu)}); ` +
    `a thread per task: ${said(perTaskPays)} (${taskSw.toFixed(2)} vs ${lSw.toFixed(2)} switches per request, ${times(perTask.sw)}; CPU per 1000 requests ${taskCpu} vs ${lCpu} ms, ${times(perTask.cpu)}); ` +
    `sleeping connection threads, not a seed setting: ${tSw === null ? 'not measured' : `${tSw.toFixed(2)} switches per request (${times(ratio(tSw, Math.max(lSw, 0.01)))})`}; ` +
    `threads pay where switches ≥ ×${SWITCHES_PAY} and CPU ≥ ×${CPU_PAYS} the loop's`)];
}
