/**
 * `--reconnect`: held connections that the server drops come back, as real clients do after a deploy or a crash.
 * Two policies, the two a reconnect storm is about:
 *
 * - `fixed`: every retry `--reconnect-delay` after the drop or the failed attempt (default 1 s), no jitter: every
 *   client dropped together retries together, in lockstep, for as long as the server refuses them.
 * - `backoff`: exponential backoff with full jitter (AWS's "full jitter"): retry k waits uniform(0, min(max,
 *   delay × 2^k)), so the herd spreads out as it keeps failing.
 *
 * Per-slot state is two numbers in typed arrays; the waiting slots sit in one binary min-heap on their due times and
 * one timer is armed for the earliest, so a hundred thousand waiting clients cost one timer, not one each.
 */
import { performance } from 'node:perf_hooks';

export const RECONNECT_MODES = Object.freeze(['off', 'fixed', 'backoff'] as const);
export type ReconnectMode = (typeof RECONNECT_MODES)[number];

export interface ReconnectOptions {
  readonly mode: Exclude<ReconnectMode, 'off'>;
  /** fixed: the wait before every retry; backoff: the base (the first retry's ceiling), ms. Default 1 s. */
  readonly delayMs: number;
  /** backoff: the ceiling of one wait, ms. Default 30 s. */
  readonly maxMs: number;
}

/** Retries started in one timer turn at most, so a herd due at once still lets reads and upgrades through. */
const BATCH = 500;

export class Reconnector {
  /** Retries made per slot since its last successful open. */
  private readonly tries: Uint16Array;
  private readonly heapDue: Float64Array;
  private readonly heapSlot: Int32Array;
  private size = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  /** @param reopen starts a new attempt for `slot` (the pool's {@link import('./pool.js').Pool.reopen}) */
  constructor(private readonly o: ReconnectOptions, capacity: number, private readonly reopen: (slot: number) => void,
    private readonly random: () => number = Math.random) {
    this.tries = new Uint16Array(capacity);
    this.heapDue = new Float64Array(capacity);
    this.heapSlot = new Int32Array(capacity);
  }

  /** Slots waiting for their retry. */
  get waiting(): number { return this.size; }

  /** The wait before retry number `k` (0 = the first after a drop). */
  waitMs(k: number): number {
    if (this.o.mode === 'fixed') return this.o.delayMs;
    return this.random() * Math.min(this.o.maxMs, this.o.delayMs * 2 ** Math.min(k, 30));
  }

  /** `slot` is down (dropped, or its retry failed): schedule its next attempt. */
  down(slot: number): void {
    if (this.stopped) return;
    const due = performance.now() + this.waitMs(this.tries[slot]);
    if (this.tries[slot] < 0xffff) this.tries[slot]++;
    this.push(due, slot);
    if (this.heapSlot[0] === slot) this.arm();
  }

  /** `slot` opened again: its next drop starts from the first wait. */
  up(slot: number): void { this.tries[slot] = 0; }

  /** No more retries (the close phase). */
  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.size = 0;
  }

  private arm(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = this.size === 0 ? undefined : setTimeout(fire, Math.max(0, this.heapDue[0] - performance.now()), this);
  }

  /** Starts every retry that is due (at most BATCH per turn), then waits for the next. */
  fire(): void {
    this.timer = undefined;
    const now = performance.now();
    for (let n = 0; n < BATCH && this.size > 0 && this.heapDue[0] <= now; n++) this.reopen(this.pop());
    if (!this.stopped) this.arm();
  }

  private push(due: number, slot: number): void {
    let i = this.size++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.heapDue[parent] <= due) break;
      this.heapDue[i] = this.heapDue[parent];
      this.heapSlot[i] = this.heapSlot[parent];
      i = parent;
    }
    this.heapDue[i] = due;
    this.heapSlot[i] = slot;
  }

  private pop(): number {
    const top = this.heapSlot[0];
    const due = this.heapDue[--this.size];
    const slot = this.heapSlot[this.size];
    let i = 0;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= this.size) break;
      if (c + 1 < this.size && this.heapDue[c + 1] < this.heapDue[c]) c++;
      if (this.heapDue[c] >= due) break;
      this.heapDue[i] = this.heapDue[c];
      this.heapSlot[i] = this.heapSlot[c];
      i = c;
    }
    this.heapDue[i] = due;
    this.heapSlot[i] = slot;
    return top;
  }
}

function fire(r: Reconnector): void {
  r.fire();
}
