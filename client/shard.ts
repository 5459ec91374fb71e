/**
 * `wslab swarm --shard i/N`: one of N swarms (pods of an Indexed Job, hosts, network namespaces) takes its
 * deterministic slice of the run, so that the N of them together open exactly `--connections`, as one swarm would.
 *
 * - Connections: shard i opens floor(C / N) connections, plus one more when i < C mod N, and its connections are
 *   the global indices first..first+count (shards in index order): the N counts sum to C exactly.
 * - Source addresses: address j goes to shard j mod N, so no two shards bind the same address. Fewer addresses than
 *   shards is refused: two swarms on one box sharing an address would compete for its ephemeral ports.
 * - URLs: with at least N URLs, URL j goes to shard j mod N (each shard loads its own servers, e.g. one per server
 *   pod). With fewer, every shard loads all of them, rotated by its first global index, so that the union of the
 *   shards spreads connections over the URLs exactly as one unsharded swarm does (connection g → URL g mod U).
 *
 * Pure functions of the options: the CLI edge (cli/swarm.ts) parses `--shard`, `--shards` and the Job's
 * `JOB_COMPLETION_INDEX` into a {@link Shard} and applies it before anything else checks the per-shard figures.
 */
import { UsageError } from '../core/errors.js';

/** Which of how many shards this swarm is. */
export interface Shard {
  /** 0-based. */
  readonly index: number;
  /** N, at least 1. */
  readonly of: number;
}

/** The most shards accepted: an Indexed Job allows up to 100,000 completions, far more than a lab needs. */
export const MAX_SHARDS = 10_000;

const INDEX_RE = /^\d{1,9}$/;

/**
 * `--shard 2/5`, or `--shards 5` with the index from `JOB_COMPLETION_INDEX` (what Kubernetes sets in each pod of an
 * Indexed Job); undefined when neither flag is given. `--shard` wins over the environment; both flags naming
 * different N is an error.
 */
export function parseShard(shard: unknown, shards: unknown, jobIndex: string | undefined): Shard | undefined {
  let index: number;
  let of: number;
  if (shard !== undefined) {
    const m = /^\s*(\d{1,9})\s*\/\s*(\d{1,9})\s*$/.exec(String(shard));
    if (!m) throw new UsageError(`--shard: "${String(shard)}" is not i/N (e.g. --shard 0/3 for the first of three swarms)`);
    [index, of] = [Number(m[1]), Number(m[2])];
    if (shards !== undefined && Number(shards) !== of) throw new UsageError(`--shard ${String(shard)} and --shards ${String(shards)} name different shard counts: give one of them`);
  } else if (shards !== undefined) {
    if (!INDEX_RE.test(String(shards).trim())) throw new UsageError(`--shards: "${String(shards)}" must be a whole number from 1 to ${MAX_SHARDS}`);
    of = Number(shards);
    if (jobIndex === undefined) throw new UsageError('--shards needs the shard index: set JOB_COMPLETION_INDEX (an Indexed Job does) or give --shard i/N');
    if (!INDEX_RE.test(jobIndex.trim())) throw new UsageError(`JOB_COMPLETION_INDEX: "${jobIndex}" is not a whole number (--shards ${of} takes its shard index from it)`);
    index = Number(jobIndex);
  } else {
    return undefined;
  }
  if (of < 1 || of > MAX_SHARDS) throw new UsageError(`--shard: N must be from 1 to ${MAX_SHARDS} (got ${of})`);
  if (index >= of) throw new UsageError(`--shard: index ${index} is not below N = ${of} (shards are numbered 0 to ${of - 1})`);
  return Object.freeze({ index, of });
}

/** Shard i's connections: global indices first..first+count; the N counts differ by at most one and sum to `total`. */
export function shardConnections(total: number, s: Shard): { first: number; count: number } {
  const base = Math.floor(total / s.of);
  const extra = total % s.of;
  return { first: s.index * base + Math.min(s.index, extra), count: base + (s.index < extra ? 1 : 0) };
}

/** Shard i's source addresses: every N-th, starting at i (disjoint between shards). Empty stays empty. */
export function shardSources<T>(sources: readonly T[], s: Shard): T[] {
  if (sources.length === 0) return [];
  if (sources.length < s.of) {
    throw new UsageError(`--source-ips: ${sources.length} address${sources.length === 1 ? '' : 'es'} cannot be split over ${s.of} shards without sharing: give at least ${s.of}, or none (each machine's kernel then chooses)`);
  }
  return sources.filter((_, j) => j % s.of === s.index);
}

/** Shard i's URLs: every N-th when there are at least N; otherwise all of them, rotated to its first connection. */
export function shardTargets<T>(targets: readonly T[], s: Shard, firstConnection: number): T[] {
  if (targets.length >= s.of) return targets.filter((_, j) => j % s.of === s.index);
  const r = firstConnection % targets.length;
  return [...targets.slice(r), ...targets.slice(0, r)];
}

/** The whole slice at once: what one shard of a `total`-connection run opens, from where, to where. */
export function shardSlice<S, T>(run: { connections: number; sources: readonly S[]; targets: readonly T[] }, s: Shard) {
  const { first, count } = shardConnections(run.connections, s);
  if (count === 0) throw new UsageError(`--connections ${run.connections} is fewer than ${s.of} shards: shard ${s.index} would open nothing`);
  return { first, connections: count, sources: shardSources(run.sources, s), targets: shardTargets(run.targets, s, first) };
}
