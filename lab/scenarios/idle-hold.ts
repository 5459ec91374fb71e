import { readFileSync } from 'node:fs';
import { variant } from '../designs.js';
import { MAX_COLUMNS, maxMethod, maxSeconds, runMaxHold } from '../hold-max.js';
import { at, SOURCE_IPS, sleep, type Scenario } from '../scenario.js';

/**
 * Kernel memory that grows with threads but is not in any process's RSS: each thread's kernel stack and page
 * tables (/proc/meminfo, machine-wide; the swarm's thread count does not change during a cell, so the change is the
 * server's).
 */
function kernelThreadBytes(): number {
  const info = readFileSync('/proc/meminfo', 'latin1');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(info)?.[1] ?? 0);
  return (kb('KernelStack') + kb('PageTables')) * 1024;
}

const N = { quick: 1000, default: 10_000, full: 19_000 } as const;
const RATE = { quick: 2000, default: 5000, full: 5000 } as const;
const HOLD_S = { quick: 1, default: 2, full: 10 } as const;

/** Memory and threads per idle connection: the thread-per-connection vs single-loop cost, measured. */
export const idleHold: Scenario = {
  id: 'idle-hold',
  title: 'Idle connections held',
  question: 'What does one idle connection cost in memory and threads, and where does each design stop?',
  claims: ['thread-per-connection-memory', 'loop-unlimited-connections', 'tasks-vs-threads-scale'],
  serverFlags: ['--idle-timeout', '0'],
  columns: [
    { key: 'held', label: 'held', unit: 'connections' },
    { key: 'failed', label: 'failed', unit: 'connections' },
    { key: 'rssPerConnectionBytes', label: 'RSS per connection', unit: 'bytes' },
    { key: 'kernelPerConnectionBytes', label: 'kernel stacks + page tables per connection', unit: 'bytes' },
    { key: 'threadsPerConnection', label: 'threads per connection', unit: 'threads' },
    { key: 'peakRssBytes', label: 'server RSS at peak', unit: 'bytes' },
    { key: 'connectRatePerSec', label: 'open rate', unit: 'conn/s' },
  ],
  columnsAt: (scale) => (scale === 'max' ? MAX_COLUMNS : idleHold.columns),
  // quick leaves cluster to cpu-bound, where it is the question; max is one cluster as wide as the plan (lab/hold-max.ts).
  designs: (all, scale, max) => scale === 'max'
    ? [variant('cluster', ['--workers', String(max?.plan.serverWorkers ?? 1), '--inner', 'uws'])]
    : all.filter((d) => !d.flags.includes('--pool') && (scale !== 'quick' || d.model !== 'processes')),
  method: (s, max) => s === 'max' ? maxMethod(max) : `A swarm opens ${at(s, N)} idle connections at ${at(s, RATE)}/s from ${SOURCE_IPS} and holds them ` +
    `${at(s, HOLD_S)} s; the server's whole process tree is sampled from /proc every 0.5 s. Per-connection cost = ` +
    '(peak − baseline before the swarm) ÷ connections held, for the server\'s RSS and, separately, for the kernel stacks ' +
    'and page tables in /proc/meminfo (memory a thread costs outside any RSS).',
  seconds: (s, max) => (s === 'max' ? maxSeconds(max) : at(s, N) / at(s, RATE) + at(s, HOLD_S) + 3),
  async run(ctx) {
    if (ctx.scale === 'max') return runMaxHold(ctx);
    await sleep(500);
    const baseRss = ctx.sampler.last('rssBytes');
    const baseThreads = ctx.sampler.last('threads');
    const baseKernel = kernelThreadBytes();
    let peakKernel = baseKernel;
    const kernelWatch = setInterval(() => { peakKernel = Math.max(peakKernel, kernelThreadBytes()); }, 250);
    const from = ctx.sampler.elapsedSec();
    const summary = await ctx.finish(await ctx.swarm(['--connections', String(at(ctx.scale, N)), '--rate', String(at(ctx.scale, RATE)),
      '--hold', `${at(ctx.scale, HOLD_S)}s`, '--profile', 'idle', '--source-ips', SOURCE_IPS]));
    clearInterval(kernelWatch);
    const peakRss = ctx.sampler.max('rssBytes', from);
    const peakThreads = ctx.sampler.max('threads', from);
    const held = summary.heldAtEnd;
    return {
      held,
      failed: summary.failed.total,
      rssPerConnectionBytes: held && peakRss !== null && baseRss !== null ? Math.round((peakRss - baseRss) / held) : null,
      kernelPerConnectionBytes: held ? Math.max(0, Math.round((peakKernel - baseKernel) / held)) : null,
      threadsPerConnection: held && peakThreads !== null && baseThreads !== null ? +((peakThreads - baseThreads) / held).toFixed(3) : null,
      peakRssBytes: peakRss,
      connectRatePerSec: summary.connectRatePerSec,
      peakOpenScraped: ctx.sampler.max('open', from),
    };
  },
};
