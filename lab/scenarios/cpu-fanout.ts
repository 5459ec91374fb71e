import { sumOf, type Sample } from '../../metrics/exposition.js';
import { COMMAND_DURATION, CONTEXT_SWITCHES } from '../../metrics/index.js';
import { treeCpuSeconds } from '../../metrics/proc-status.js';
import { figure, missing, ratio, times, verdict, type JudgedCell } from '../claims.js';
import { is, oneLoop } from '../designs.js';
import type { Claim, Verdict } from '../results.js';
import { at, chattyLoad, defineScenario, SOURCE_IPS, sleep } from '../scenario.js';

const CLIENTS = { quick: 100, default: 400, full: 1000 } as const;
const HOLD_S = { quick: 2, default: 4, full: 10 } as const;

/** The same work in many tiny pieces: one loop vs a thread per connection, and what the switching costs. */
type FanoutFigures = {
  requestsPerSec: number | null; switchesPerRequest: number | null; involuntaryPerSec: number | null; cpuMsPerKiloRequest: number | null;
};

export const cpuFanout = defineScenario<FanoutFigures>({
  id: 'cpu-fanout',
  title: 'Tiny pieces over many threads',
  question: 'What do many threads pay in context switches for the same work a loop does without them?',
  claims: ['context-switch'],
  serverOptions: { idleTimeoutMs: 0 },
  columns: [
    { key: 'requestsPerSec', label: 'cpu 5 done', unit: 'req/s' },
    { key: 'switchesPerRequest', label: 'context switches per request', unit: 'switches' },
    { key: 'involuntaryPerSec', label: 'involuntary switches', unit: '1/s' },
    { key: 'cpuMsPerKiloRequest', label: 'server CPU per 1000 requests', unit: 'ms' },
  ],
  // one loop stands for all below full: every loop wakes on an epoll loop (libuv, uSockets) per request.
  designs: (all, scale) => all.filter((d) => !is.processes(d) && !is.pool(d)).filter(oneLoop(all, scale)),
  method: (s) => `${at(s, CLIENTS)} clients each send \`cpu 5\` (≈10–25 µs of work) every 100 ms for ${at(s, HOLD_S)} s; ` +
    `context switches of the server process from its ${CONTEXT_SWITCHES.name} (from /proc), requests from its command counter.`,
  seconds: (s) => at(s, HOLD_S) + 1.5,
  async run(ctx) {
    const read = (s: Sample[]) => ({
      requests: sumOf(s, `${COMMAND_DURATION.name}_count`, { command: 'cpu' }),
      voluntary: sumOf(s, CONTEXT_SWITCHES.name, { kind: 'voluntary' }),
      involuntary: sumOf(s, CONTEXT_SWITCHES.name, { kind: 'involuntary' }),
    });
    const run = await ctx.swarm({ connections: at(ctx.scale, CLIENTS), rate: 2000, holdMs: at(ctx.scale, HOLD_S) * 1000,
      profile: 'chatty', command: 'cpu 5', intervalMs: 100, sourceIps: SOURCE_IPS });
    await sleep(1000);
    const a = read(await ctx.server.scrape());
    const [t0, cpu0] = [performance.now(), treeCpuSeconds(ctx.server.pid)];
    await ctx.finish(run);
    const b = read(await ctx.server.scrape());
    const [t1, cpu1] = [performance.now(), treeCpuSeconds(ctx.server.pid)];
    const requests = b.requests - a.requests;
    const sec = (t1 - t0) / 1000;
    return {
      requestsPerSec: +(requests / sec).toFixed(1),
      switchesPerRequest: requests ? +((b.voluntary + b.involuntary - a.voluntary - a.involuntary) / requests).toFixed(2) : null,
      involuntaryPerSec: +((b.involuntary - a.involuntary) / sec).toFixed(1),
      cpuMsPerKiloRequest: requests ? +(((cpu1 - cpu0) * 1000 * 1000) / requests).toFixed(1) : null,
    };
  },
  judge,
  profileLoad: (sec) => [{ atSec: 0, flags: chattyLoad(100, 'cpu 5', 100, sec) }],
});

/** Switches per request, a thread per connection vs the loop that stands for all (else any loop): ×3 confirms. */
function judge(cells: readonly JudgedCell<FanoutFigures>[]): Claim[] {
  const loop = figure(cells, is.standingLoop, 'switchesPerRequest') !== null ? is.standingLoop : is.loop;
  const tSw = figure(cells, is.threadPerConnection, 'switchesPerRequest');
  const lSw = figure(cells, loop, 'switchesPerRequest');
  if (tSw === null || lSw === null) return [missing('context-switch', 'cpu-fanout', 'threads and loop')];
  const r = ratio(tSw, Math.max(lSw, 0.01));
  const v: Verdict = r >= 3 ? 'confirmed' : r <= 1.2 ? 'refuted' : 'inconclusive';
  return [verdict('context-switch', v, `context switches per request: threads ${tSw.toFixed(2)} vs loop ${lSw.toFixed(2)} (${times(r)}); ` +
    `CPU per 1000 requests: threads ${figure(cells, is.threadPerConnection, 'cpuMsPerKiloRequest')} ms vs loop ${figure(cells, loop, 'cpuMsPerKiloRequest')} ms`)];
}
