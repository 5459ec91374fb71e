/**
 * The idle-timeout scan of the loop designs, run only when something can be due. A connection last heard from at
 * `seen` is due a ping at `seen + idle/2` and, once pinged, a close at `seen + idle`; `seen` only moves forward,
 * so the earliest due time found by one scan is a lower bound for every connection it saw, and one that opened
 * after the scan is due no sooner than half the timeout later. Between those times the scan is skipped, so a loop
 * holding idle connections touches none of them until one can be due (bench/idle-cpu measures what idling costs).
 */
export class IdleSweep {
  private nextScan = 0;

  constructor(private readonly idleMs: number) {}

  /** Whether the scan has work at `now` (never, without an idle timeout). */
  due(now: number): boolean {
    return this.idleMs > 0 && now >= this.nextScan;
  }

  /** When a connection still open after this scan is next due. */
  dueAt(seen: number, pinged: boolean): number {
    return seen + (pinged ? this.idleMs : this.idleMs / 2);
  }

  /** After a scan at `now`: `earliest` is the least {@link dueAt} of the connections it left open (Infinity: none). */
  scanned(now: number, earliest: number): void {
    this.nextScan = Math.min(earliest, now + this.idleMs / 2);
  }
}
