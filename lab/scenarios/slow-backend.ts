import { at, SOURCE_IPS, type Scenario } from '../scenario.js';

const CLIENTS = { quick: 20, default: 50, full: 200 } as const;
const PHASE_S = { quick: 1, default: 4, full: 10 } as const;
const INTERVAL_MS = 200;

/**
 * A backend slowing from 50 ms to 500 ms at the same arrival rate. Each client sends every 200 ms. A thread (or a
 * pool worker) serves its connection's requests one after another, so at 500 ms per request its queue grows; a
 * loop waits on timers for all of them at once.
 */
export const slowBackend: Scenario = {
  id: 'slow-backend',
  title: 'Backend slows from 50 ms to 500 ms',
  question: 'Do fixed workers queue when the backend slows, while a loop just waits longer?',
  claims: ['slow-backend-queueing'],
  serverFlags: ['--idle-timeout', '0'],
  columns: [
    { key: 'fastP50Ms', label: 'wait 50: RTT p50', unit: 'ms' },
    { key: 'fastP99Ms', label: 'wait 50: RTT p99', unit: 'ms' },
    { key: 'slowP50Ms', label: 'wait 500: RTT p50', unit: 'ms' },
    { key: 'slowP99Ms', label: 'wait 500: RTT p99', unit: 'ms' },
    { key: 'slowAnsweredRatio', label: 'wait 500: answered', unit: 'ratio' },
  ],
  // one loop (uws) stands for both below full: a timer-based wait is the same in ws and uws.
  designs: (all, scale) => all.filter((d) => d.model !== 'processes' && (scale === 'full' || d.design !== 'ws' || !all.some((x) => x.design === 'uws'))),
  method: (s) => `${at(s, CLIENTS)} clients each send a request every ${INTERVAL_MS} ms (open loop): \`wait 50\` for ` +
    `${at(s, PHASE_S)} s, then a new swarm at the same rate with \`wait 500\` for ${at(s, PHASE_S)} s. RTT from the swarm.`,
  seconds: (s) => 2 * at(s, PHASE_S) + 3,
  async run(ctx) {
    const phase = (ms: number) => ctx.swarm(['--connections', String(at(ctx.scale, CLIENTS)), '--rate', '1000',
      '--hold', `${at(ctx.scale, PHASE_S)}s`, '--profile', 'chatty', '--command', `wait ${ms}`, '--interval', `${INTERVAL_MS}ms`,
      '--source-ips', SOURCE_IPS]);
    const fast = await ctx.finish(await phase(50));
    const slow = await ctx.finish(await phase(500));
    return {
      fastP50Ms: fast.rttMs.p50, fastP99Ms: fast.rttMs.p99,
      slowP50Ms: slow.rttMs.p50, slowP99Ms: slow.rttMs.p99,
      slowAnsweredRatio: slow.messages.sent ? +(slow.messages.received / slow.messages.sent).toFixed(3) : null,
    };
  },
};
