import { sumOf, type Sample } from '../../metrics/exposition.js';
import { CONNECTIONS_OPEN } from '../../metrics/index.js';
import { figure, missing, ms, ratio, times, verdict, type JudgedCell } from '../claims.js';
import { kneeOf, pointKey, sweepLine, type Curve, type CurvePoint } from '../curves.js';
import { is, oneLoop } from '../designs.js';
import type { Cell, Claim, Verdict } from '../results.js';
import { at, chattyLoad, defineScenario, sleep, SOURCE_IPS, type Scale } from '../scenario.js';

const CLIENTS = { quick: 20, default: 50, full: 200 } as const;
/** The backend latencies swept, ms: the first is the fast backend, the last the slow one the claim names. */
const WAITS = { quick: [50, 200, 500], default: [50, 150, 250, 350, 500], full: [50, 100, 150, 200, 250, 300, 400, 500] } as const;
const PHASE_S = { quick: 1, default: 1.5, full: 8 } as const;
const INTERVAL_MS = 200;
/** A point bends where its RTT p99 is at least twice the backend latency: requests waited a whole service time more. */
const BENT = 2;

/**
 * A backend slowing from 50 ms to 500 ms at the same arrival rate, swept. Each client sends every 200 ms. A thread (or
 * a pool worker) serves its connection's requests one after another, so once a request takes longer than the time
 * between two of them its queue grows; a loop waits on timers for all of them at once.
 */
type SlowBackendFigures = {
  fastP50Ms: number | null; fastP99Ms: number | null; slowP50Ms: number | null; slowP99Ms: number | null; slowAnsweredRatio: number | null;
  kneeMs: number | null; [point: string]: number | null;
};

const waits = (s: Scale): readonly number[] => at<readonly number[]>(s, WAITS);
const arrivalPerSec = (s: Scale): number => at(s, CLIENTS) * (1000 / INTERVAL_MS);

/**
 * Where queueing theory puts the knee of a worker design, ms, or null for a loop (it waits on timers). Each of our
 * workers keeps the connection it serves (a thread per connection, or a sync pool worker), so it saturates once a
 * request outlasts the time between two of its connection's requests: the interval. Pool size ÷ arrival rate is
 * where a pool taking requests from any connection would bend; it is named beside the prediction when it differs.
 */
function predictedKneeMs(c: Pick<Cell, 'traits'>): number | null {
  return c.traits.model === 'threads' ? INTERVAL_MS : null;
}

/** What the knee text says was expected: the prediction and its grounds. */
function expected(c: Pick<Cell, 'traits'>, s: Scale): string {
  const predicted = predictedKneeMs(c);
  if (predicted === null) return 'a loop waits on timers: no knee expected';
  const clients = at(s, CLIENTS);
  const pool = c.traits.workers;
  const perRequest = pool === null ? '' : `; pool size ÷ arrival rate, where a pool taking any connection's requests would bend, is ${Math.round((pool / arrivalPerSec(s)) * 1000)} ms`;
  const unserved = pool !== null && pool < clients ? `; ${clients - pool} of the ${clients} connections wait for a worker, unanswered` : '';
  return `predicted ${predicted} ms = the time between a connection's requests, each worker keeping its connection${perRequest}${unserved}`;
}

const bentAt = (points: readonly CurvePoint[]) => kneeOf(points, (p) => p.y >= BENT * p.x);

export const slowBackend = defineScenario<SlowBackendFigures>({
  id: 'slow-backend',
  title: 'Backend slows from 50 ms to 500 ms',
  question: 'Do fixed workers queue when the backend slows, while a loop just waits longer? Where is the knee?',
  claims: ['slow-backend-queueing'],
  serverOptions: { idleTimeoutMs: 0 },
  columns: [
    { key: 'fastP50Ms', label: 'wait 50: RTT p50', unit: 'ms' },
    { key: 'fastP99Ms', label: 'wait 50: RTT p99', unit: 'ms' },
    { key: 'slowP50Ms', label: 'wait 500: RTT p50', unit: 'ms' },
    { key: 'slowP99Ms', label: 'wait 500: RTT p99', unit: 'ms' },
    { key: 'slowAnsweredRatio', label: 'wait 500: answered', unit: 'ratio' },
    { key: 'kneeMs', label: `knee: first wait with RTT p99 ≥ ×${BENT} it`, unit: 'ms' },
  ],
  // one loop stands for all below full: a timer-based wait is the same in every loop; and the pool for the threads
  // design (fewer clients than workers: each connection has its own thread either way; measured the same, 703 vs 706 ms).
  designs: (all, scale) => all.filter((d) => !is.processes(d)).filter(oneLoop(all, scale))
    .filter((d) => scale === 'full' || !is.threadPerConnection(d) || !all.some(is.pool)),
  method: (s) => `${at(s, CLIENTS)} clients each send a request every ${INTERVAL_MS} ms (open loop, ${arrivalPerSec(s)} req/s), ` +
    `\`wait W\` for W = ${waits(s).join(', ')} ms in turn, ${at(s, PHASE_S)} s each (a new swarm per W, started once the server closed the last one's connections). ` +
    `RTT from the swarm. The knee is the first W whose RTT p99 is at least ×${BENT} W; queueing theory puts a worker design's where a request outlasts the time between its connection's requests (each worker keeps its connection), and a request-level pool's at pool size ÷ arrival rate.`,
  seconds: (s) => waits(s).length * (at(s, PHASE_S) + 0.8) + 1,
  async run(ctx) {
    const f: SlowBackendFigures = { fastP50Ms: null, fastP99Ms: null, slowP50Ms: null, slowP99Ms: null, slowAnsweredRatio: null, kneeMs: null };
    const ws = waits(ctx.scale);
    for (const [i, w] of ws.entries()) {
      if (i > 0) await drained(ctx.server.scrape, 2 * ws[i - 1] + 2000);
      const s = await ctx.finish(await ctx.swarm({ connections: at(ctx.scale, CLIENTS), rate: 1000, holdMs: at(ctx.scale, PHASE_S) * 1000,
        profile: 'chatty', command: `wait ${w}`, intervalMs: INTERVAL_MS, sourceIps: SOURCE_IPS }));
      f[pointKey('rttP50Ms', w)] = s.rttMs.p50;
      f[pointKey('rttP99Ms', w)] = s.rttMs.p99;
      f[pointKey('answeredRatio', w)] = s.messages.sent ? +(s.messages.received / s.messages.sent).toFixed(3) : null;
    }
    const [first, last] = [ws[0], ws[ws.length - 1]];
    f.fastP50Ms = f[pointKey('rttP50Ms', first)]; f.fastP99Ms = f[pointKey('rttP99Ms', first)];
    f.slowP50Ms = f[pointKey('rttP50Ms', last)]; f.slowP99Ms = f[pointKey('rttP99Ms', last)];
    f.slowAnsweredRatio = f[pointKey('answeredRatio', last)];
    const knee = bentAt(sweepLine({ design: '', figures: f }, 'rttP99Ms', ws).points);
    f.kneeMs = knee?.at.x ?? null;
    if (!knee) ctx.note(`no knee up to ${last} ms: RTT p99 stayed under ×${BENT} the backend latency at every point`);
    return f;
  },
  judge,
  curves,
  profileLoad: (sec) => [
    { atSec: 0, flags: chattyLoad(20, 'wait 50', 200, sec / 2) },
    { atSec: sec / 2, flags: chattyLoad(20, 'wait 500', 200, sec / 2) },
  ],
});

/**
 * Waits (bounded) until the server holds no connection: a worker design still serves a closed swarm's queued
 * requests (a sleep each, until its reply fails), which would delay the next point's clients.
 */
async function drained(scrape: () => Promise<Sample[]>, boundMs: number): Promise<void> {
  const until = performance.now() + boundMs;
  while (performance.now() < until) {
    if (sumOf(await scrape(), CONNECTIONS_OPEN.name) === 0) return;
    await sleep(100);
  }
}

/** The knee of each design's line in words, with the points around it and queueing theory's prediction. */
function kneeText(line: ReturnType<typeof sweepLine>, cell: Cell, s: Scale): string {
  const expect = expected(cell, s);
  const k = bentAt(line.points);
  if (!k) return `${line.design}: no knee up to ${line.points.at(-1)?.x ?? '?'} ms (RTT p99 at most ${times(Math.max(...line.points.map((p) => p.y / p.x)))} the wait; ${expect})`;
  return `${line.design}: knee at ${k.at.x} ms (RTT p99 ${ms(k.at.y)}${k.before ? `; at ${k.before.x} ms: ${ms(k.before.y)}` : ''}; ${expect})`;
}

function curves(cells: readonly Cell[], s: Scale): Curve[] {
  const lines = cells.map((c) => ({ cell: c, line: sweepLine(c, 'rttP99Ms', waits(s)) })).filter((l) => l.line.points.length);
  if (!lines.length) return [];
  return [{
    id: 'rtt-p99', title: 'RTT p99 over backend latency', x: { label: 'backend latency (wait)', unit: 'ms' }, y: { label: 'RTT p99', unit: 'ms', log: true },
    lines: lines.map((l) => l.line), knees: lines.map((l) => kneeText(l.line, l.cell, s)),
  }];
}

/** Fixed workers (a pool, else a thread per connection) against the loop that stands for all: p99 at wait 500, ×2 confirms. */
function judge(cells: readonly JudgedCell<SlowBackendFigures>[]): Claim[] {
  const workers = figure(cells, is.pool, 'slowP99Ms') !== null ? is.pool : is.threadPerConnection;
  const loop = figure(cells, is.standingLoop, 'slowP99Ms') !== null ? is.standingLoop : is.loop;
  const wP99 = figure(cells, workers, 'slowP99Ms');
  const lP99 = figure(cells, loop, 'slowP99Ms');
  if (wP99 === null || lP99 === null) return [missing('slow-backend-queueing', 'slow-backend', 'threads and loop')];
  const r = ratio(wP99, lP99);
  const v: Verdict = r >= 2 ? 'confirmed' : r <= 1.2 ? 'refuted' : 'inconclusive';
  const [w, l] = [cells.find(workers)!, cells.find(loop)!];
  const knee = (c: JudgedCell<SlowBackendFigures>) => (typeof c.figures.kneeMs === 'number' ? `${c.figures.kneeMs} ms` : 'none');
  return [verdict('slow-backend-queueing', v, `at wait 500: ${w.design} RTT p99 ${ms(wP99)} vs loop ${ms(lP99)} (${times(r)}); ` +
    `at wait 50: ${w.design} ${ms(w.figures.fastP99Ms ?? NaN)} vs loop ${ms(l.figures.fastP99Ms ?? NaN)}; knee (RTT p99 ≥ ×${BENT} the wait): ` +
    `${w.design} ${knee(w)}, ${l.design} ${knee(l)}`)];
}
