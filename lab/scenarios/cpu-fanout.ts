import { sumOf, type Sample } from '../../metrics/exposition.js';
import { COMMAND_DURATION, CONTEXT_SWITCHES } from '../../metrics/index.js';
import { treeCpuSeconds } from '../sampler.js';
import { at, SOURCE_IPS, sleep, type Scenario } from '../scenario.js';

const CLIENTS = { quick: 100, default: 400, full: 1000 } as const;
const HOLD_S = { quick: 2, default: 4, full: 10 } as const;

/** The same work in many tiny pieces: one loop vs a thread per connection, and what the switching costs. */
export const cpuFanout: Scenario = {
  id: 'cpu-fanout',
  title: 'Tiny pieces over many threads',
  question: 'What do many threads pay in context switches for the same work a loop does without them?',
  claims: ['context-switch'],
  serverFlags: ['--idle-timeout', '0'],
  columns: [
    { key: 'requestsPerSec', label: 'cpu 5 done', unit: 'req/s' },
    { key: 'switchesPerRequest', label: 'context switches per request', unit: 'switches' },
    { key: 'involuntaryPerSec', label: 'involuntary switches', unit: '1/s' },
    { key: 'cpuMsPerKiloRequest', label: 'server CPU per 1000 requests', unit: 'ms' },
  ],
  // one loop stands for both below full: ws and uws wake on the same epoll loop (libuv vs uSockets) per request.
  designs: (all, scale) => all.filter((d) => d.model !== 'processes' && !d.flags.includes('--pool') && (scale === 'full' || d.design !== 'ws' || !all.some((x) => x.design === 'uws'))),
  method: (s) => `${at(s, CLIENTS)} clients each send \`cpu 5\` (≈10–25 µs of work) every 100 ms for ${at(s, HOLD_S)} s; ` +
    `context switches of the server process from its ${CONTEXT_SWITCHES.name} (from /proc), requests from its command counter.`,
  seconds: (s) => at(s, HOLD_S) + 1.5,
  async run(ctx) {
    const read = (s: Sample[]) => ({
      requests: sumOf(s, `${COMMAND_DURATION.name}_count`, { command: 'cpu' }),
      voluntary: sumOf(s, CONTEXT_SWITCHES.name, { kind: 'voluntary' }),
      involuntary: sumOf(s, CONTEXT_SWITCHES.name, { kind: 'involuntary' }),
    });
    const run = await ctx.swarm(['--connections', String(at(ctx.scale, CLIENTS)), '--rate', '2000', '--hold', `${at(ctx.scale, HOLD_S)}s`,
      '--profile', 'chatty', '--command', 'cpu 5', '--interval', '100ms', '--source-ips', SOURCE_IPS]);
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
};
