/**
 * The close phase, measured rather than budgeted: the coordinator waits for its workers to finish closing for a
 * base budget, and past it for as long as they keep making progress — the connections they still have open,
 * closing or connecting (from their 0.5 s reports) keep falling. A worker is given up on only when nothing moved for
 * `graceMs`: on a busy box 19,000 close handshakes can outlast any fixed budget while every one of them succeeds.
 */
export interface Closing {
  /** It reported its final figures, or exited. */
  done(): boolean;
  /** Connections it still has open, closing or connecting, as last reported. */
  left(): number;
}

export interface ClosePhase {
  /** How long to wait in any case, ms. */
  readonly budgetMs: number;
  /** Past the budget: how long without progress before giving up, ms (0 = never extend). */
  readonly graceMs: number;
  /** How often to look, ms. Default 250. */
  readonly pollMs?: number;
}

/** Resolves when every worker is done, or with those that stopped making progress (to be killed), and how long it took. */
export async function awaitClosing<W extends Closing>(workers: readonly W[], p: ClosePhase): Promise<{ stuck: W[]; ms: number }> {
  const t0 = performance.now();
  let deadline = t0 + p.budgetMs;
  const left = new Map(workers.map((w) => [w, w.left()]));
  for (;;) {
    const open = workers.filter((w) => !w.done());
    const now = performance.now();
    if (open.length === 0) return { stuck: [], ms: now - t0 };
    for (const w of open) {
      const n = w.left();
      if (n < left.get(w)!) {
        left.set(w, n);
        if (p.graceMs > 0) deadline = Math.max(deadline, now + p.graceMs);
      }
    }
    if (now >= deadline) return { stuck: open, ms: now - t0 };
    await new Promise((r) => setTimeout(r, Math.min(p.pollMs ?? 250, Math.max(1, deadline - now))));
  }
}
