/**
 * Event-loop delay without a fast timer, for every process of ours that reports it (server, swarm worker, the
 * swarm's /metrics). perf_hooks' monitorEventLoopDelay wakes the loop every `resolution` ms and records the time
 * since its previous wake-up; at 1 ms that was ≈1,000 wake-ups a second and the biggest cost of an idle server.
 * Here it wakes every {@link LOOP_DELAY_RESOLUTION_MS}, and a reading is how late a wake-up came (the interval less
 * the resolution, never below 0): a stall shows within 100 ms of its length (a 2 s block reads 1.9–2 s); stalls
 * shorter than that may read 0.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';

export const LOOP_DELAY_RESOLUTION_MS = 100;
const RESOLUTION_NS = LOOP_DELAY_RESOLUTION_MS * 1e6;

export class LoopDelay {
  private readonly h = monitorEventLoopDelay({ resolution: LOOP_DELAY_RESOLUTION_MS });

  constructor() {
    this.h.enable();
  }

  /** Lateness at percentile `p` (0–100) since the last reset, in seconds; 0 without a recorded wake-up. */
  seconds(p: number): number {
    return this.h.count > 0 ? Math.max(0, this.h.percentile(p) - RESOLUTION_NS) / 1e9 : 0;
  }

  /** The largest lateness since the last reset, in seconds; 0 without a recorded wake-up. */
  maxSeconds(): number {
    return this.h.count > 0 ? Math.max(0, this.h.max - RESOLUTION_NS) / 1e9 : 0;
  }

  reset(): void {
    this.h.reset();
  }

  disable(): void {
    this.h.disable();
  }
}
