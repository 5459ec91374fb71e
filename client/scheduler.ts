/**
 * The phases of one worker's connections: a token-bucket ramp (at most `rate` new connections per second and at
 * most `maxPending` attempts in flight), then the hold (timed by the coordinator, so that every worker holds over
 * the same interval), then a close with 1000 in batches, bounded by the close timeout.
 */
import { performance } from 'node:perf_hooks';
import { setImmediate as nextTurn } from 'node:timers/promises';

/** Most attempts started in one turn of the event loop, so reads and upgrades keep flowing during a fast ramp. */
const BATCH = 500;

export class Ramp {
  /** Epoch ms of the first attempt and of the moment every attempt had settled (0 = not yet). */
  startedAt = 0;
  endedAt = 0;
  private next = 0;
  private pending = 0;
  private tokens = 1;
  private last = 0;
  private readonly burst: number;
  private timer: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;
  private stopped = false;

  /**
   * @param count attempts to make (slots 0…count-1)
   * @param rate new connections per second; 0 = no rate limit (only `maxPending`)
   * @param maxPending attempts in flight
   * @param open starts the attempt for a slot; the pool calls {@link settled} when it opens or fails
   * @param done called once, when every attempt has settled
   */
  constructor(private readonly count: number, private readonly rate: number, private readonly maxPending: number,
    private readonly open: (slot: number) => void, private readonly done: () => void) {
    // 20 ms of tokens: enough to ride over a busy loop turn, too few for a visible burst.
    this.burst = rate > 0 ? Math.max(1, rate / 50) : Infinity;
  }

  get inFlight(): number { return this.pending; }
  get remaining(): number { return this.count - this.next; }

  start(): void {
    this.startedAt = performance.timeOrigin + performance.now();
    this.last = performance.now();
    if (this.count === 0) return this.finish();
    this.pump();
  }

  /** An attempt ended (opened or failed). */
  settled(): void {
    this.pending--;
    if (this.next >= this.count && this.pending === 0) return this.finish();
    if (!this.stopped && this.next < this.count && this.timer === undefined && this.immediate === undefined) {
      this.immediate = setImmediate(pumpRamp, this);
    }
  }

  /** No new attempts (abort, early end). */
  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.immediate !== undefined) clearImmediate(this.immediate);
    this.timer = this.immediate = undefined;
  }

  pump(): void {
    this.timer = this.immediate = undefined;
    if (this.stopped) return;
    const now = performance.now();
    this.tokens = this.rate > 0 ? Math.min(this.burst, this.tokens + (now - this.last) * this.rate / 1000) : Infinity;
    this.last = now;
    let n = Math.min(Math.floor(this.tokens), this.maxPending - this.pending, this.count - this.next, BATCH);
    if (this.rate > 0) this.tokens -= Math.max(0, n);
    for (; n > 0 && !this.stopped; n--) {
      this.pending++;
      this.open(this.next++); // may settle at once (a bind error), which is fine: pending was counted first
    }
    if (this.stopped || this.next >= this.count || this.immediate !== undefined) return;
    if (this.pending >= this.maxPending) return; // settled() wakes us
    if (this.rate > 0 && this.tokens < 1) this.timer = setTimeout(pumpRamp, Math.max(1, (1 - this.tokens) * 1000 / this.rate), this);
    else this.immediate = setImmediate(pumpRamp, this);
  }

  private finish(): void {
    if (this.endedAt !== 0) return;
    this.endedAt = performance.timeOrigin + performance.now();
    this.stop();
    this.done();
  }
}

function pumpRamp(r: Ramp): void {
  r.pump();
}

/** The slice of the pool the close phase needs. */
export interface Closable {
  readonly slotsUsed: number;
  readonly counts: { closing: number; connecting: number };
  startClose(slot: number, code?: number): void;
  destroyAll(): void;
}

/**
 * Sends a close (1000) on every open connection, BATCH per loop turn, then waits for the servers' echoes and TCP
 * ends for at most `timeoutMs`; whatever is left (no echo, attempts still connecting) is dropped.
 */
export async function closeAll(pool: Closable, timeoutMs: number): Promise<void> {
  const used = pool.slotsUsed;
  for (let s = 0; s < used; s += BATCH) {
    for (let k = s; k < Math.min(used, s + BATCH); k++) pool.startClose(k, 1000);
    await nextTurn();
  }
  const deadline = performance.now() + timeoutMs + 200;
  while ((pool.counts.closing > 0 || pool.counts.connecting > 0) && performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
  }
  pool.destroyAll();
}
