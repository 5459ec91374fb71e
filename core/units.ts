import { closeSync, mkdirSync, openSync, rmSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { UsageError } from './errors.js';

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/;
const DURATION_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const SIZE = /^(\d+(?:\.\d+)?)(b|kb|kib|mb|mib|gb|gib)?$/i;
const SIZE_BYTES: Record<string, number> = { b: 1, kb: 1e3, kib: 1024, mb: 1e6, mib: 1024 ** 2, gb: 1e9, gib: 1024 ** 3 };

/** `500ms`, `10s`, `2m`, `1h` → milliseconds; `0` alone means "off". The unit is required: `10` is ambiguous. */
export function parseDuration(flag: string, value: unknown): number {
  const text = String(value).trim();
  if (text === '0') return 0;
  const m = DURATION.exec(text);
  if (!m) throw new UsageError(`--${flag}: "${text}" is not a duration (use e.g. 500ms, 10s, 2m, 1h, or 0 for off)`);
  return Math.round(Number(m[1]) * DURATION_MS[m[2]]);
}

/** `65536`, `64KiB`, `1MiB`, `16kb` → bytes (a bare number is bytes). */
export function parseSize(flag: string, value: unknown): number {
  const text = String(value).trim();
  const m = SIZE.exec(text);
  if (!m) throw new UsageError(`--${flag}: "${text}" is not a size (use e.g. 65536, 64KiB, 1MiB)`);
  const bytes = Math.round(Number(m[1]) * SIZE_BYTES[(m[2] ?? 'b').toLowerCase()]);
  if (!Number.isSafeInteger(bytes)) throw new UsageError(`--${flag}: "${text}" is too large`);
  return bytes;
}

/** A whole number within [min, max], named in the error. */
export function parseInteger(flag: string, value: unknown, min: number, max: number): number {
  const n = typeof value === 'number' ? value : Number(String(value).trim());
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new UsageError(`--${flag}: "${String(value)}" must be a whole number from ${min} to ${max}`);
  }
  return n;
}

/** A file the command will write: its absolute path, once its directory is known to exist. */
export function outputFile(flag: string, value: unknown): string {
  const file = resolve(String(value));
  let dirOk = false;
  try { dirOk = statSync(dirname(file)).isDirectory(); } catch { /* reported below */ }
  if (!dirOk) throw new UsageError(`--${flag}: the directory of "${String(value)}" does not exist`);
  let existed = false;
  try {
    if (statSync(file).isDirectory()) throw new UsageError(`--${flag}: "${String(value)}" is a directory: give a file path, e.g. ${join(String(value), 'out.json')}`);
    existed = true;
  } catch (err) {
    if (err instanceof UsageError) throw err;
  }
  // Opened for append now, so that a path the run could not write fails here, not after the run (EACCES, EROFS, …)
  try {
    closeSync(openSync(file, 'a'));
  } catch (err) {
    throw new UsageError(`--${flag}: cannot write "${String(value)}" (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  if (!existed) rmSync(file, { force: true });
  return file;
}

/*
 * mkdir -p, one level at a time: Node's `mkdirSync(…, { recursive: true })` spins forever where the kernel answers
 * ENOENT to every mkdir (measured under /proc on Node 20), so the missing levels are made here, each by itself.
 */
function makeDirs(dir: string): void {
  const missing: string[] = [];
  for (let d = dir; ; d = dirname(d)) {
    try {
      if (!statSync(d).isDirectory()) throw Object.assign(new Error(`${d} is a file`), { code: 'ENOTDIR' });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || dirname(d) === d) throw err;
      missing.unshift(d);
    }
  }
  for (const d of missing) mkdirSync(d);
}

/**
 * A folder the run writes into (`--out reports`): made now if missing, and proved writable by a probe file, so that
 * an existing file in its place or a read-only place fails before any work instead of after it.
 */
export function outputDir(flag: string, value: unknown): string {
  const dir = resolve(String(value));
  try {
    if (!statSync(dir).isDirectory()) throw new UsageError(`--${flag}: "${String(value)}" is a file, not a folder: give a folder (it may not exist yet)`);
  } catch (err) {
    if (err instanceof UsageError) throw err;
  }
  try {
    makeDirs(dir);
    const probe = join(dir, `.wslab-write-check-${process.pid}`);
    closeSync(openSync(probe, 'w'));
    rmSync(probe, { force: true });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new UsageError(`--${flag}: cannot write into "${String(value)}" (${e.code === 'ENOTDIR' ? 'a file is in the way' : e.code ?? e.message})`);
  }
  return dir;
}
