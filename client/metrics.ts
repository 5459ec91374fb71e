/**
 * The swarm's own /metrics (`--metrics-port`; off unless given, 0 = any free port, loopback by default), with the
 * `wslab_swarm_*` series of metrics/swarm.ts. Each worker keeps a prom-client registry; the coordinator asks every
 * worker for it on a scrape and combines them with prom-client's AggregatorRegistry, each metric by the aggregator
 * its spec names (sum for counts, max for event-loop delay), as the cluster server design does.
 */
import { Registry, type Histogram } from 'prom-client';
import {
  ATTACK_CLOSE_CODES, ATTACK_OUTCOMES, SWARM_ATTACKERS_HELD, SWARM_ATTACK_CLOSE_CODES, SWARM_ATTACK_OUTCOMES, SWARM_ATTACK_TIME_TO_CUT,
  SWARM_CAUSES, SWARM_CONNECTING, SWARM_CONNECT_DURATION, SWARM_ERRORS, SWARM_EVENT_LOOP_DELAY, SWARM_MESSAGES_RECEIVED,
  SWARM_MESSAGES_PUSHED, SWARM_MESSAGES_SENT, SWARM_OPEN, SWARM_RTT, SWARM_TARGET,
} from '../metrics/swarm.js';
import { serveMetrics, type MetricsEndpoint } from '../metrics/endpoint.js';
import { LoopDelay } from '../metrics/loop-delay.js';
import type { MetricJson } from '../metrics/gather.js';
import { counter, gauge, histogram } from '../metrics/prom.js';
import type { PoolCounts } from './pool.js';
import type { Traffic } from './profiles.js';
import type { AttackTally } from './attacks.js';

export type WorkerMetrics = MetricJson[];

/**
 * One worker's series. Gauges and counters read the pool's plain counts at scrape time (a counter adds what happened
 * since the previous scrape); only the two histograms are fed as events happen.
 */
export class SwarmMetrics {
  readonly registry = new Registry();
  private readonly connectSeconds: Histogram.Internal<string>;
  private readonly rttSeconds: Histogram.Internal<string>;
  private readonly loopDelay = new LoopDelay();

  constructor(counts: PoolCounts, traffic: Traffic, target: number, attack?: { profile: string; tally: AttackTally }) {
    const r = this.registry;
    gauge(SWARM_OPEN, r, function () { this.set(counts.open); });
    gauge(SWARM_CONNECTING, r, function () { this.set(counts.connecting); });
    gauge(SWARM_TARGET, r, function () { this.set(target); });
    const reported = new Float64Array(SWARM_CAUSES.length);
    counter(SWARM_ERRORS, r, function () {
      SWARM_CAUSES.forEach((cause, i) => {
        const total = counts.failed[i] + counts.lost[i];
        this.inc({ cause }, total - reported[i]);
        reported[i] = total;
      });
    });
    const seen = { sent: 0, received: 0, pushed: 0 };
    counter(SWARM_MESSAGES_SENT, r, function () { this.inc(traffic.sent - seen.sent); seen.sent = traffic.sent; });
    counter(SWARM_MESSAGES_RECEIVED, r, function () { this.inc(traffic.received - seen.received); seen.received = traffic.received; });
    counter(SWARM_MESSAGES_PUSHED, r, function () { this.inc(traffic.pushed - seen.pushed); seen.pushed = traffic.pushed; });
    this.connectSeconds = histogram(SWARM_CONNECT_DURATION, r).labels();
    this.rttSeconds = histogram(SWARM_RTT, r).labels();
    if (attack) this.attackSeries(counts, attack.profile, attack.tally);
    const loop = this.loopDelay;
    gauge(SWARM_EVENT_LOOP_DELAY, r, function () {
      this.set({ quantile: '0.5' }, loop.seconds(50));
      this.set({ quantile: '0.99' }, loop.seconds(99));
      this.set({ quantile: '1' }, loop.maxSeconds());
      loop.reset();
    });
  }

  /** An attack worker's series, labelled with its profile (one profile per worker). */
  private attackSeries(counts: PoolCounts, profile: string, tally: AttackTally): void {
    const r = this.registry;
    gauge(SWARM_ATTACKERS_HELD, r, function () { this.set({ profile }, counts.open + counts.dribbling); });
    const outcomes = new Float64Array(ATTACK_OUTCOMES.length);
    counter(SWARM_ATTACK_OUTCOMES, r, function () {
      ATTACK_OUTCOMES.forEach((outcome, i) => { this.inc({ profile, outcome }, tally.outcomes[i] - outcomes[i]); outcomes[i] = tally.outcomes[i]; });
    });
    const codes = new Float64Array(ATTACK_CLOSE_CODES.length);
    counter(SWARM_ATTACK_CLOSE_CODES, r, function () {
      ATTACK_CLOSE_CODES.forEach((code, i) => { this.inc({ profile, code }, tally.closeCodes[i] - codes[i]); codes[i] = tally.closeCodes[i]; });
    });
    const cut = histogram(SWARM_ATTACK_TIME_TO_CUT, r).labels({ profile });
    tally.onCut = (seconds) => cut.observe(seconds);
  }

  connect(seconds: number): void { this.connectSeconds.observe(seconds); }
  rtt(seconds: number): void { this.rttSeconds.observe(seconds); }
  json(): Promise<WorkerMetrics> { return this.registry.getMetricsAsJSON() as Promise<WorkerMetrics>; }
  close(): void { this.loopDelay.disable(); }
}

/** Serves GET /metrics on host:port, rendering what `gather` collects from the workers, aggregated. */
export function serveSwarmMetrics(host: string, port: number, gather: () => Promise<Registry>): Promise<MetricsEndpoint> {
  return serveMetrics({
    host, port, who: 'wslab swarm', what: 'swarm metrics',
    render: async () => {
      const r = await gather();
      return { body: await r.metrics(), contentType: r.contentType };
    },
  });
}
