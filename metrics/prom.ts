import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { MetricSpec } from './spec.js';

/** Runs at each scrape before the value is read; may be async (prom-client awaits it). */
type Collect<M> = (this: M) => void | Promise<void>;

/** prom-client metrics built from contract specs, so name, help, labels, buckets and aggregator are never retyped. */
export function counter(s: MetricSpec, registry: Registry, collect?: Collect<Counter<string>>): Counter<string> {
  return new Counter({ name: s.name, help: s.help, labelNames: [...s.labelNames], registers: [registry], aggregator: s.aggregator, collect });
}
export function gauge(s: MetricSpec, registry: Registry, collect?: Collect<Gauge<string>>): Gauge<string> {
  return new Gauge({ name: s.name, help: s.help, labelNames: [...s.labelNames], registers: [registry], aggregator: s.aggregator, collect });
}
export function histogram(s: MetricSpec, registry: Registry | undefined): Histogram<string> {
  return new Histogram({
    name: s.name, help: s.help, labelNames: [...s.labelNames], buckets: [...(s.buckets ?? [])], registers: registry ? [registry] : [],
    aggregator: s.aggregator,
  });
}
