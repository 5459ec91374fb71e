import { at, SOURCE_IPS, sleep, type Scenario } from '../scenario.js';

const CLIENTS = { quick: 100, default: 500, full: 1000 } as const;
const HOLD_S = { quick: 4, default: 8, full: 10 } as const;
export const BLOCK_MS = 2000;

/** The time.sleep() mistake: one client's blocking call, everyone else's latency. */
export const blockingCall: Scenario = {
  id: 'blocking-call',
  title: 'One blocking call',
  question: 'Does one blocking call stall every client (loop) or only its own (threads)?',
  claims: ['blocking-call'],
  serverFlags: ['--idle-timeout', '0'],
  columns: [
    { key: 'healthyRttP50Ms', label: 'others: RTT p50', unit: 'ms' },
    { key: 'healthyRttP99Ms', label: 'others: RTT p99', unit: 'ms' },
    { key: 'healthyRttMaxMs', label: 'others: RTT max', unit: 'ms' },
    { key: 'blockRttMs', label: 'the blocking call', unit: 'ms' },
    { key: 'loopDelayMaxMs', label: 'event-loop delay max', unit: 'ms' },
  ],
  // cluster only at full: each of its workers is a loop that stalls the same way; cpu-bound is where it is the question.
  designs: (all, scale) => all.filter((d) => !d.flags.includes('--pool') && (scale === 'full' || d.model !== 'processes')),
  method: (s) => `${at(s, CLIENTS)} clients send \`echo 16\` every 100 ms (open loop) for ${at(s, HOLD_S)} s; 0.5 s in, ` +
    `one more client starts and sends \`block ${BLOCK_MS}\` once (about 1.5–2 s in), so the block ends inside the others' run. Others' RTT is measured by the swarm from the intended send time.`,
  seconds: (s) => at(s, HOLD_S) + 1.5,
  async run(ctx) {
    const healthy = await ctx.swarm(['--connections', String(at(ctx.scale, CLIENTS)), '--rate', '2000', '--hold', `${at(ctx.scale, HOLD_S)}s`,
      '--profile', 'chatty', '--command', 'echo 16', '--interval', '100ms', '--source-ips', SOURCE_IPS]);
    await sleep(500);
    const from = ctx.sampler.elapsedSec();
    // Chatty sends first at open + interval and the hold ends 0.8 s after open: exactly one `block` goes out.
    const blocker = await ctx.swarm(['--connections', '1', '--hold', '800ms', '--profile', 'chatty',
      '--command', `block ${BLOCK_MS}`, '--interval', '500ms']);
    const [h, b] = await Promise.all([ctx.finish(healthy), ctx.finish(blocker)]);
    return {
      healthyRttP50Ms: h.rttMs.p50, healthyRttP99Ms: h.rttMs.p99, healthyRttMaxMs: h.rttMs.max,
      blockRttMs: b.rttMs.max, loopDelayMaxMs: ctx.sampler.max('loopDelayMs', from),
      healthyReplies: h.messages.received,
    };
  },
};
