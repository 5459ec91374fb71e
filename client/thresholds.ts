/**
 * `--threshold 'heldAtEnd>=100000' --threshold 'rtt.p99<5ms'`: pass/fail expressions over the JSON summary
 * (docs/swarm-summary.md), parsed once at the CLI edge, evaluated at the end; one failing = exit 99 (as k6 does).
 */
import { UsageError } from '../core/errors.js';
import { parseDuration, parseSize } from '../core/units.js';
import { ATTACK_OUTCOMES, SWARM_CAUSES } from '../metrics/swarm.js';

export type Op = '<' | '<=' | '>' | '>=' | '==' | '!=';
type Unit = 'ms' | 'bytes' | 'number';

export interface Threshold {
  /** As written by the user. */
  readonly expression: string;
  /** The summary value compared, as a path (`rttMs.p99`). */
  readonly path: string;
  readonly op: Op;
  /** In the summary's unit: milliseconds for latencies, bytes for memory. */
  readonly value: number;
  readonly unit: Unit;
}

const PERCENTILES = ['p50', 'p90', 'p99', 'p999', 'max'] as const;

/** Threshold names → summary paths; short aliases (`rtt.p99`, `connect.p99`, `failed`, `lost`) included. */
const METRICS: ReadonlyMap<string, { path: string; unit: Unit }> = new Map([
  ...['target', 'opened', 'peakOpen', 'heldAtEnd', 'connectRatePerSec', 'durationSec'].map((k) => [k, { path: k, unit: 'number' as Unit }] as const),
  ['connectRate', { path: 'connectRatePerSec', unit: 'number' }],
  ['failed', { path: 'failed.total', unit: 'number' }],
  ['failed.total', { path: 'failed.total', unit: 'number' }],
  ...SWARM_CAUSES.map((c) => [`failed.${c}`, { path: `failed.${c}`, unit: 'number' as Unit }] as const),
  ['lost', { path: 'lost.total', unit: 'number' }],
  ['lost.total', { path: 'lost.total', unit: 'number' }],
  ...PERCENTILES.flatMap((p) => [
    [`rtt.${p}`, { path: `rttMs.${p}`, unit: 'ms' as Unit }],
    [`rttMs.${p}`, { path: `rttMs.${p}`, unit: 'ms' as Unit }],
    [`connect.${p}`, { path: `connectLatencyMs.${p}`, unit: 'ms' as Unit }],
    [`connectLatencyMs.${p}`, { path: `connectLatencyMs.${p}`, unit: 'ms' as Unit }],
  ] as const),
  ['rtt.count', { path: 'rttMs.count', unit: 'number' }],
  ['rttMs.count', { path: 'rttMs.count', unit: 'number' }],
  ...['sent', 'received', 'errors', 'pushed', 'pingsSent', 'pongsReceived'].map((k) => [`messages.${k}`, { path: `messages.${k}`, unit: 'number' as Unit }] as const),
  ['client.rssBytes', { path: 'client.rssBytes', unit: 'bytes' }],
  ['client.bytesPerConnection', { path: 'client.bytesPerConnection', unit: 'bytes' }],
  ['client.cpuSeconds', { path: 'client.cpuSeconds', unit: 'number' }],
  // --reconnect (null without it: such a threshold fails as not measured)
  ...['attempts', 'reconnected', 'stillDown', 'recoveredAfterSec', 'failed.total'].map((k) => [`reconnect.${k}`, { path: `reconnect.${k}`, unit: 'number' as Unit }] as const),
  ...PERCENTILES.map((p) => [`reconnect.connect.${p}`, { path: `reconnect.connectLatencyMs.${p}`, unit: 'ms' as Unit }] as const),
]);

/** `profiles.<profile>.<key>`: the per-profile section (docs/swarm-summary.md); latencies with or without `Ms`. */
const PROFILE_KEYS: ReadonlyMap<string, { path: string; unit: Unit }> = new Map([
  ...['target', 'attempted', 'opened', 'failed', 'heldAtEnd', 'deflated', 'lost', 'connectSuccessRate', 'requestsDue', 'repliesOk', 'servedRate',
    'bytesSent', 'bytesReceived', 'replyErrors', 'unmatched', 'push.messages', 'push.perConnectionPerSec', 'push.stalled',
    ...[...ATTACK_OUTCOMES, 'held'].map((o) => `outcomes.${o}`)].map((k) => [k, { path: k, unit: 'number' as Unit }] as const),
  ...(['rtt', 'connectLatency', 'timeToCut'] as const).flatMap((l) => [...PERCENTILES, 'count'].flatMap((p) => {
    const v = { path: `${l}Ms.${p}`, unit: (p === 'count' ? 'number' : 'ms') as Unit };
    return [[`${l}Ms.${p}`, v], [`${l === 'connectLatency' ? 'connect' : l}.${p}`, v]] as const;
  })),
  ...[...PERCENTILES, 'count'].map((p) => [`push.gap.${p}`, { path: `push.gapMs.${p}`, unit: (p === 'count' ? 'number' : 'ms') as Unit }] as const),
]);
const PROFILE_METRIC = /^profiles\.([a-z-]+)\.(.+)$/;

function lookup(name: string): { path: string; unit: Unit } | undefined {
  const m = PROFILE_METRIC.exec(name);
  if (!m) return METRICS.get(name);
  const key = PROFILE_KEYS.get(m[2]);
  return key && { path: `profiles.${m[1]}.${key.path}`, unit: key.unit };
}

const EXPRESSION = /^\s*([A-Za-z][\w.-]*)\s*(<=|>=|==|!=|<|>)\s*(\S+)\s*$/;

/** Parses one `--threshold`; a bad one is a UsageError naming the expression and what would be accepted. */
export function parseThreshold(expression: string): Threshold {
  const bad = (why: string): UsageError => new UsageError(`--threshold "${expression}": ${why}`);
  const m = EXPRESSION.exec(expression);
  if (!m) throw bad('not of the form <metric><op><value>, e.g. heldAtEnd>=100000 or rtt.p99<5ms (ops: < <= > >= == !=)');
  const metric = lookup(m[1]);
  if (!metric) {
    throw bad(`unknown metric "${m[1]}" (known: target, opened, failed, failed.<cause>, lost, peakOpen, heldAtEnd, connectRatePerSec, ` +
      'rtt.p50|p90|p99|p999|max|count, connect.p50|p90|p99|p999|max, messages.sent|received|errors|pingsSent|pongsReceived, ' +
      'client.rssBytes, client.bytesPerConnection, client.cpuSeconds, durationSec, profiles.<profile>.servedRate|connectSuccessRate|' +
      'heldAtEnd|opened|attempted|failed|lost|outcomes.<outcome>|rtt.p99|timeToCut.p50|…)');
  }
  let value: number;
  try {
    value = metric.unit === 'ms' ? (/^\d+(\.\d+)?$/.test(m[3]) ? Number(m[3]) : parseDuration('threshold', m[3]))
      : metric.unit === 'bytes' ? parseSize('threshold', m[3]) : Number(m[3]);
  } catch {
    throw bad(`"${m[3]}" is not a ${metric.unit === 'ms' ? 'duration (e.g. 5ms, 1.5s; a bare number is ms)' : 'size (e.g. 3500, 3.5kb, 4KiB)'}`);
  }
  if (!Number.isFinite(value)) throw bad(`"${m[3]}" is not a number`);
  return Object.freeze({ expression: expression.trim(), path: metric.path, op: m[2] as Op, value, unit: metric.unit });
}

export interface Verdict {
  readonly threshold: Threshold;
  /** The summary value, or null when the run measured none (e.g. no RTT in the idle profile): a failure. */
  readonly actual: number | null;
  readonly ok: boolean;
}

/** Checks every threshold against a summary object. */
export function evaluate(thresholds: readonly Threshold[], summary: object): Verdict[] {
  return thresholds.map((t) => {
    let v: unknown = summary;
    for (const key of t.path.split('.')) v = typeof v === 'object' && v !== null ? (v as Record<string, unknown>)[key] : undefined;
    const actual = typeof v === 'number' && Number.isFinite(v) ? v : null;
    return { threshold: t, actual, ok: actual !== null && compare(actual, t.op, t.value) };
  });
}

/** `a op b`, for every comparison operator a threshold takes (the swarm's and `wslab compare`'s). */
export function compare(a: number, op: Op, b: number): boolean {
  switch (op) {
    case '<': return a < b;
    case '<=': return a <= b;
    case '>': return a > b;
    case '>=': return a >= b;
    case '==': return a === b;
    case '!=': return a !== b;
  }
}

/** `rtt.p99<5ms (actual 7.21 ms)`. */
export function describeVerdict(v: Verdict): string {
  const unit = v.threshold.unit === 'ms' ? ' ms' : v.threshold.unit === 'bytes' ? ' bytes' : '';
  return `${v.threshold.expression} (actual ${v.actual === null ? 'none measured' : `${round(v.actual)}${unit}`})`;
}

const round = (n: number): number => Math.round(n * 100) / 100;
