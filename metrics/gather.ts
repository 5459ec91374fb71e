/**
 * The one IPC gather: a parent (the cluster primary, the swarm coordinator) asks each of its child processes for its
 * registry as JSON, tagged with a request id, and combines the replies with prom-client's
 * AggregatorRegistry.aggregate, each metric by the aggregator its spec names (sum for counts, max for event-loop
 * delay). What travels over IPC is the caller's business; this keeps the requests, the replies and the timeout.
 */
import { AggregatorRegistry, type Registry } from 'prom-client';

/** One metric of a registry's `getMetricsAsJSON()`. */
export type MetricJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>[number];

interface Request<C> {
  readonly want: Set<C>;
  readonly got: MetricJson[][];
  readonly done: () => void;
}

/**
 * Only the children given to {@link gather} are asked, and one that dies, cannot be sent to or stays silent past the
 * timeout is left out of that scrape: prom-client's own clusterMetrics() asks every connected worker and fails the
 * whole scrape when a restarting one stays silent.
 */
export class IpcGather<C> {
  private readonly pending = new Map<number, Request<C>>();
  private nextId = 0;

  /**
   * @param ask sends request `id` to `child`; calls `failed` when the send fails (the child will not answer).
   * @param timeoutMs how long a scrape waits for replies; default 2000.
   */
  constructor(private readonly ask: (child: C, id: number, failed: () => void) => void, private readonly timeoutMs = 2000) {}

  /** Asks every one of `children` and resolves with `own` (the parent's metrics, first) and their replies, aggregated. */
  async gather(children: Iterable<C>, own: readonly MetricJson[][] = []): Promise<Registry> {
    const id = this.nextId++;
    const want = new Set(children);
    const got: MetricJson[][] = [...own];
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, this.timeoutMs);
      const done = (): void => { clearTimeout(timer); resolve(); };
      this.pending.set(id, { want, got, done });
      for (const child of want) this.ask(child, id, () => this.answered(child, id));
      if (want.size === 0) done();
    });
    this.pending.delete(id);
    return AggregatorRegistry.aggregate(got);
  }

  /** `child`'s reply to request `id`; without `metrics`, it will not answer that request (the send failed). */
  answered(child: C, id: number, metrics?: MetricJson[]): void {
    const p = this.pending.get(id);
    if (!p || !p.want.delete(child)) return;
    if (metrics) p.got.push(metrics);
    if (p.want.size === 0) p.done();
  }

  /** `child` exited: no pending scrape waits for it any longer. */
  gone(child: C): void {
    for (const id of this.pending.keys()) this.answered(child, id);
  }
}
