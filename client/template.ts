/**
 * The user's own messages (`--send`, `--subscribe`, `--reader-send`) and header values (`--header`), compiled once
 * at the CLI edge into parts and rendered per message from a connection index and a message number: a literal is
 * a Buffer made once, a placeholder is a number or a column of `--vars`. Nothing is kept per message.
 *
 * Placeholders (docs/swarm-summary.md, "Your own messages"):
 * - `{{conn}}` the connection's global index (stable across workers and `--shard`s),
 * - `{{seq}}` the connection's message number (0, 1, …),
 * - `{{id}}` a request id unique in the run: seq × total connections + conn, so a reply carrying it names its
 *   connection and message without any table (client/match.ts decodes it),
 * - `{{now}}` epoch milliseconds at the send, `{{rand:N}}` N random characters [a-z0-9],
 * - `{{var:NAME}}` column NAME of `--vars FILE.csv`, row conn mod rows.
 * A source `@path` reads the template from a file; `base64:…` and `hex:…` give a binary message (no placeholders).
 */
import { readFileSync } from 'node:fs';
import { UsageError } from '../core/errors.js';

/** `--vars FILE.csv`: a header row of names, then one row per connection (used round-robin by connection index). */
export interface VarTable {
  readonly names: readonly string[];
  readonly rows: readonly (readonly string[])[];
}

type Part =
  | { readonly k: 'lit'; readonly bytes: Buffer }
  | { readonly k: 'conn' | 'seq' | 'id' | 'now' }
  | { readonly k: 'rand'; readonly n: number }
  | { readonly k: 'var'; readonly column: number };

/** A compiled template: plain data, so that it crosses the IPC channel to the workers as JSON and back. */
export interface Template {
  /** What the user wrote (for messages and reports). */
  readonly source: string;
  /** base64: or hex: — sent as a binary frame. */
  readonly binary: boolean;
  /** The parts in order; a literal's bytes as latin1-safe base64 (JSON-safe), decoded by {@link prepare}. */
  readonly parts: readonly ({ k: 'lit'; b64: string } | Exclude<Part, { k: 'lit' }>)[];
  readonly hasId: boolean;
  /** No {{now}} or {{rand}}: the same connection and number always render the same bytes. */
  readonly deterministic: boolean;
}

const PLACEHOLDER = /\{\{\s*([a-z]+)(?::([^}]*))?\s*\}\}/g;
const MAX_RAND = 1024 * 1024;
const MAX_TEMPLATE_BYTES = 16 * 1024 * 1024;
const RAND_ALPHABET = Buffer.from('abcdefghijklmnopqrstuvwxyz0123456789', 'latin1');

/** Reads `@path` (relative to the working directory) or returns the text itself. */
function sourceText(flag: string, raw: string): string {
  if (!raw.startsWith('@')) return raw;
  const path = raw.slice(1);
  try {
    const text = readFileSync(path, 'utf8');
    if (Buffer.byteLength(text) > MAX_TEMPLATE_BYTES) throw new UsageError(`--${flag}: ${path} is larger than 16 MiB`);
    return text;
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(`--${flag}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}

/** Compiles a template once; every mistake is a one-line UsageError naming the flag. */
export function compileTemplate(flag: string, raw: string, vars: VarTable | undefined): Template {
  const binary = /^(base64|hex):/.exec(raw);
  if (binary) {
    const body = raw.slice(binary[0].length);
    const enc = binary[1] as 'base64' | 'hex';
    const ok = enc === 'hex' ? /^([0-9a-fA-F]{2})*$/.test(body) : /^[A-Za-z0-9+/]*={0,2}$/.test(body);
    if (!ok) throw new UsageError(`--${flag}: "${raw.slice(0, 40)}" is not valid ${enc}`);
    const bytes = Buffer.from(body, enc);
    return Object.freeze({ source: raw, binary: true, parts: [{ k: 'lit' as const, b64: bytes.toString('base64') }], hasId: false, deterministic: true });
  }
  const text = sourceText(flag, raw);
  const parts: Template['parts'][number][] = [];
  let at = 0;
  const lit = (s: string): void => { if (s) parts.push({ k: 'lit', b64: Buffer.from(s, 'utf8').toString('base64') }); };
  for (const m of text.matchAll(PLACEHOLDER)) {
    lit(text.slice(at, m.index));
    at = m.index + m[0].length;
    const [name, arg] = [m[1], m[2]?.trim()];
    if ((name === 'conn' || name === 'seq' || name === 'id' || name === 'now') && arg === undefined) parts.push({ k: name });
    else if (name === 'rand') {
      const n = Number(arg);
      if (!Number.isInteger(n) || n < 1 || n > MAX_RAND) throw new UsageError(`--${flag}: {{rand:N}} needs N from 1 to ${MAX_RAND} (got "${arg ?? ''}")`);
      parts.push({ k: 'rand', n });
    } else if (name === 'var') {
      if (!vars) throw new UsageError(`--${flag}: {{var:${arg ?? ''}}} needs --vars FILE.csv`);
      const column = vars.names.indexOf(arg ?? '');
      if (column < 0) throw new UsageError(`--${flag}: {{var:${arg ?? ''}}}: --vars has no column "${arg ?? ''}" (it has ${vars.names.join(', ')})`);
      parts.push({ k: 'var', column });
    } else {
      throw new UsageError(`--${flag}: unknown placeholder "${m[0]}" (use {{conn}}, {{seq}}, {{id}}, {{now}}, {{rand:N}}, {{var:NAME}})`);
    }
  }
  lit(text.slice(at));
  if (/\{\{|\}\}/.test(parts.filter((p) => p.k === 'lit').map((p) => Buffer.from((p as { b64: string }).b64, 'base64').toString('utf8')).join(''))) {
    throw new UsageError(`--${flag}: an unclosed or malformed {{…}} in "${text.slice(0, 60)}"`);
  }
  return Object.freeze({
    source: raw, binary: false, parts,
    hasId: parts.some((p) => p.k === 'id'),
    deterministic: !parts.some((p) => p.k === 'now' || p.k === 'rand'),
  });
}

/**
 * A template ready to render in a worker: literals decoded once. `total` is the run's connection count (the whole
 * run's, across shards), the modulus of `{{id}}`.
 */
export class Renderer {
  private readonly parts: readonly Part[];
  readonly binary: boolean;
  readonly hasId: boolean;
  readonly deterministic: boolean;
  private readonly scratch: string[];

  constructor(t: Template, readonly total: number, private readonly vars: VarTable | undefined) {
    this.parts = t.parts.map((p) => (p.k === 'lit' ? { k: 'lit', bytes: Buffer.from(p.b64, 'base64') } : p));
    this.binary = t.binary;
    this.hasId = t.hasId;
    this.deterministic = t.deterministic;
    this.scratch = new Array<string>(this.parts.length).fill('');
  }

  /** The request id of message `seq` of connection `conn`. */
  id(conn: number, seq: number): number { return seq * this.total + conn; }

  /** Bytes of message `seq` of connection `conn` (the payload alone). */
  length(conn: number, seq: number): number {
    let n = 0;
    const parts = this.parts, s = this.scratch;
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i];
      switch (p.k) {
        case 'lit': n += p.bytes.length; break;
        case 'rand': n += p.n; break;
        case 'conn': n += (s[i] = String(conn)).length; break;
        case 'seq': n += (s[i] = String(seq)).length; break;
        case 'id': n += (s[i] = String(this.id(conn, seq))).length; break;
        case 'now': n += (s[i] = String(Date.now())).length; break;
        case 'var': n += Buffer.byteLength(s[i] = this.vars!.rows[conn % this.vars!.rows.length][p.column] ?? ''); break;
      }
    }
    return n;
  }

  /** Writes the message that {@link length} just measured into `out` at `at` (the same call's values). */
  write(out: Buffer, at: number): void {
    const parts = this.parts, s = this.scratch;
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i];
      if (p.k === 'lit') at += p.bytes.copy(out, at);
      else if (p.k === 'rand') {
        for (let j = 0; j < p.n; j++) out[at++] = RAND_ALPHABET[(Math.random() * RAND_ALPHABET.length) | 0];
      } else at += out.write(s[i], at, 'utf8');
    }
  }

  /** The message as a string (headers, reports, tests). */
  text(conn: number, seq: number): string {
    const out = Buffer.allocUnsafe(this.length(conn, seq));
    this.write(out, 0);
    return out.toString(this.binary ? 'latin1' : 'utf8');
  }

  /**
   * Does `data[start, end)` equal message `seq` of `conn`? Parts that cannot be rendered again ({{now}}, {{rand}})
   * are compared by length only; everything else byte for byte.
   */
  equals(conn: number, seq: number, data: Buffer, start: number, end: number): boolean {
    if (end - start !== this.length(conn, seq)) return false;
    const parts = this.parts, s = this.scratch;
    let at = start;
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i];
      if (p.k === 'lit') {
        if (data.compare(p.bytes, 0, p.bytes.length, at, at + p.bytes.length) !== 0) return false;
        at += p.bytes.length;
      } else if (p.k === 'rand') at += p.n;
      else if (p.k === 'now') at += s[i].length;
      else {
        const n = Buffer.byteLength(s[i]);
        if (data.toString('utf8', at, at + n) !== s[i]) return false;
        at += n;
      }
    }
    return true;
  }
}

const MAX_VARS_BYTES = 64 * 1024 * 1024;

/** One CSV line into fields: commas, double-quoted fields with "" for a quote (RFC 4180). */
function csvFields(line: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i <= line.length) {
    if (line[i] === '"') {
      let v = '';
      i++;
      for (;;) {
        const q = line.indexOf('"', i);
        if (q < 0) throw new Error('an unclosed quote');
        v += line.slice(i, q);
        if (line[q + 1] === '"') { v += '"'; i = q + 2; continue; }
        i = q + 1;
        break;
      }
      out.push(v);
      if (i < line.length && line[i] !== ',') throw new Error('text after a closing quote');
      i++;
    } else {
      const c = line.indexOf(',', i);
      const e = c < 0 ? line.length : c;
      out.push(line.slice(i, e));
      i = e + 1;
    }
  }
  return out;
}

/** `--vars FILE.csv`: a header row of column names, then at least one row. */
export function readVars(path: string): VarTable {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new UsageError(`--vars: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  if (Buffer.byteLength(text) > MAX_VARS_BYTES) throw new UsageError(`--vars: ${path} is larger than 64 MiB`);
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/).filter((l) => l.length > 0);
  const rows: string[][] = [];
  lines.forEach((l, n) => {
    try {
      rows.push(csvFields(l));
    } catch (err) {
      throw new UsageError(`--vars: ${path} line ${n + 1}: ${(err as Error).message}`);
    }
  });
  const [names, ...data] = rows;
  if (!names || data.length === 0) throw new UsageError(`--vars: ${path} needs a header row of column names and at least one row`);
  const bad = names.find((n) => !/^[A-Za-z_][A-Za-z0-9_.-]*$/.test(n));
  if (bad !== undefined) throw new UsageError(`--vars: ${path}: column name "${bad}" must be letters, digits, _ . - (starting with a letter or _)`);
  const short = data.findIndex((r) => r.length !== names.length);
  if (short >= 0) throw new UsageError(`--vars: ${path} line ${short + 2} has ${data[short].length} fields, the header has ${names.length}`);
  return Object.freeze({ names: Object.freeze(names), rows: Object.freeze(data) });
}
