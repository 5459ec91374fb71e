/**
 * One metric of the contract, declared as data so that the servers, the swarm, the dashboards and the report all
 * read the same names, help texts and labels. Label sets are fixed up front and low-cardinality: `design`,
 * `reason`, `command`, `cause`, `state`, `kind`, `quantile` — never a connection id.
 */
export type MetricType = 'counter' | 'gauge' | 'histogram';
/** How the cluster primary combines the workers' values (prom-client AggregatorRegistry). */
export type Aggregator = 'sum' | 'max' | 'min' | 'average' | 'first' | 'omit';

export interface MetricSpec {
  readonly name: string;
  readonly help: string;
  readonly type: MetricType;
  readonly labelNames: readonly string[];
  readonly buckets?: readonly number[];
  readonly aggregator: Aggregator;
}

const NAME = /^wslab_[a-z0-9_]+$/;
const HIST_UNIT = /_(seconds|bytes)$/;

/** Declares a metric, checking the house rules once at module load (prefix, unit suffix, help, labels). */
export function spec(s: MetricSpec): MetricSpec {
  if (!NAME.test(s.name)) throw new Error(`metric ${s.name}: name must match ${NAME}`);
  if (s.type === 'histogram' && !HIST_UNIT.test(s.name)) throw new Error(`metric ${s.name}: a histogram ends in its unit`);
  if (s.type === 'counter' && !s.name.endsWith('_total')) throw new Error(`metric ${s.name}: a counter ends in _total`);
  if (s.help.length < 10) throw new Error(`metric ${s.name}: help text required`);
  if (s.labelNames.some((l) => /id$/.test(l))) throw new Error(`metric ${s.name}: no per-connection labels`);
  return Object.freeze({ ...s, labelNames: Object.freeze([...s.labelNames]) });
}

/** Latency buckets from 100 µs to 60 s: wide enough for a 2 s block and a 1 s SYN retransmit. */
export const LATENCY_BUCKETS = Object.freeze([
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 10, 30, 60,
]);
