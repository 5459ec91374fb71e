/**
 * Which server message answers which request, for a server that does not speak our protocol (`--match`), and
 * whether a matched reply is good (`--expect`). Nothing is stored per message: the request a reply answers is
 * found from the reply itself (`{{id}}` = seq × total + conn, client/template.ts) or from one counter per
 * connection (`next`, `echo`: replies come in request order), and its intended send time follows from the
 * connection's open-loop schedule (client/profiles.ts), so round trips stay coordinated-omission corrected.
 */
import { UsageError } from '../core/errors.js';
import type { ReplyExpect, ReplyMatch } from './options.js';
import type { Renderer } from './template.js';

const MATCH_HELP = 'wslab, echo, next, json:PATH or regex:RE';

/** `a.b.0.c` → path steps; `$.a` and `$` are accepted too. */
function jsonPath(flag: string, path: string): string[] {
  const p = path.replace(/^\$\.?/, '');
  if (p === '' || p.split('.').some((s) => s === '')) throw new UsageError(`--${flag}: "${path}" is not a JSON path like id or data.request.id`);
  return p.split('.');
}

function regex(flag: string, re: string, needGroup: boolean): RegExp {
  let r: RegExp;
  try {
    r = new RegExp(re);
  } catch (err) {
    throw new UsageError(`--${flag}: /${re}/ is not a regular expression (${(err as Error).message})`);
  }
  if (needGroup && new RegExp(`${re}|`).exec('')!.length < 2) throw new UsageError(`--${flag}: /${re}/ needs a capture group for the request id, e.g. 'regex:"id":(\\d+)'`);
  return r;
}

/** Checks `--match` once at the edge. */
export function parseMatch(raw: string): ReplyMatch {
  if (raw === 'wslab' || raw === 'echo' || raw === 'next') return raw;
  if (raw.startsWith('json:')) { jsonPath('match', raw.slice(5)); return raw as ReplyMatch; }
  if (raw.startsWith('regex:')) { regex('match', raw.slice(6), true); return raw as ReplyMatch; }
  throw new UsageError(`--match: "${raw}" is not one of ${MATCH_HELP}`);
}

/** Checks `--expect` once at the edge. */
export function parseExpect(raw: string): ReplyExpect {
  if (raw.startsWith('json:')) {
    const eq = raw.indexOf('==');
    if (eq < 0) throw new UsageError(`--expect: "${raw}" needs ==VALUE, e.g. 'json:type==pong'`);
    jsonPath('expect', raw.slice(5, eq));
    return raw as ReplyExpect;
  }
  if (raw.startsWith('regex:')) { regex('expect', raw.slice(6), false); return raw as ReplyExpect; }
  throw new UsageError(`--expect: "${raw}" is not json:PATH==VALUE or regex:RE`);
}

/** Matches by id (`json:`, `regex:`) need the request to carry `{{id}}`; `echo`/`next` do not. */
export const matchNeedsId = (m: ReplyMatch): boolean => m.startsWith('json:') || m.startsWith('regex:');

const walk = (v: unknown, path: readonly string[]): unknown => {
  for (const step of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[step];
  }
  return v;
};

const NOT_JSON = Symbol('not json');

/**
 * One worker's matcher over its slots. {@link reply} returns the message number of the request a server message
 * answers on `slot`, or -1 (no request: a push).
 */
export class Matcher {
  private readonly mode: 'echo' | 'next' | 'json' | 'regex';
  private readonly path: readonly string[] = [];
  private readonly re: RegExp | undefined;
  /** echo, next: replies matched so far per slot (the next one answers this message number). */
  private readonly answered: Uint32Array | undefined;
  private readonly expectPath: readonly string[] | undefined;
  private readonly expectValue: string | undefined;
  private readonly expectRe: RegExp | undefined;
  /** The last message parsed as JSON by {@link reply}, so that {@link good} does not parse it twice. */
  private parsed: unknown = NOT_JSON;

  constructor(match: ReplyMatch, expect: ReplyExpect | undefined, private readonly renderer: Renderer,
    private readonly firstIndex: number, capacity: number) {
    if (match.startsWith('json:')) {
      this.mode = 'json';
      this.path = jsonPath('match', match.slice(5));
    } else if (match.startsWith('regex:')) {
      this.mode = 'regex';
      this.re = regex('match', match.slice(6), true);
    } else {
      this.mode = match === 'echo' ? 'echo' : 'next';
      this.answered = new Uint32Array(capacity);
    }
    if (expect?.startsWith('json:')) {
      const eq = expect.indexOf('==');
      this.expectPath = jsonPath('expect', expect.slice(5, eq));
      this.expectValue = expect.slice(eq + 2);
    } else if (expect !== undefined) this.expectRe = regex('expect', expect.slice(6), false);
  }

  /** `sent` = messages sent on `slot` so far (a reply can only answer one of them). */
  reply(slot: number, data: Buffer, start: number, end: number, sent: number): number {
    this.parsed = NOT_JSON;
    if (this.answered) {
      const seq = this.answered[slot];
      if (seq >= sent) return -1;
      if (this.mode === 'echo' && !this.renderer.equals(this.firstIndex + slot, seq, data, start, end)) return -1;
      this.answered[slot] = seq + 1;
      return seq;
    }
    let id: unknown;
    if (this.mode === 'json') {
      id = walk(this.json(data, start, end), this.path);
    } else {
      id = this.re!.exec(data.toString('utf8', start, end))?.[1];
    }
    const n = typeof id === 'number' ? id : typeof id === 'string' && /^\d{1,16}$/.test(id) ? Number(id) : -1;
    if (!Number.isSafeInteger(n) || n < 0) return -1;
    const total = this.renderer.total;
    const seq = Math.floor(n / total);
    // the id must name this connection and a message it sent
    return n % total === this.firstIndex + slot && seq < sent ? seq : -1;
  }

  /** `--expect` on the message {@link reply} just matched; true without `--expect`. */
  good(data: Buffer, start: number, end: number): boolean {
    if (this.expectPath) {
      const v = walk(this.json(data, start, end), this.expectPath);
      return v !== undefined && (typeof v === 'object' ? JSON.stringify(v) : String(v)) === this.expectValue;
    }
    return this.expectRe ? this.expectRe.test(data.toString('utf8', start, end)) : true;
  }

  private json(data: Buffer, start: number, end: number): unknown {
    if (this.parsed !== NOT_JSON) return this.parsed;
    try {
      this.parsed = JSON.parse(data.toString('utf8', start, end));
    } catch {
      this.parsed = undefined;
    }
    return this.parsed;
  }
}
