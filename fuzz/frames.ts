/**
 * A seeded WebSocket frame fuzzer and a reference model of how each design must answer, shared by the fuzz tests
 * (test/server/fuzz.test.ts over every design, test/server/threads-frames.test.ts for the native one) and by the
 * long-run bench (bench/fuzz.ts).
 *
 * The generator ({@link FrameFuzzer}) is deterministic from a seed: the same seed replays the same bytes on every
 * connection of a worker, however workers interleave. The model ({@link simulate}) takes every byte a client sent on
 * one connection and predicts, byte for byte, the frames the server must send back (replies, binary echoes, pongs)
 * and how the connection ends: the first RFC 6455 violation in the stream is looked up in the design's
 * {@link Dialect}, whose `answers` table is the per-design expectation (close code, close frame without code, or TCP
 * end without a close frame) and the `reason` label the server must count. docs/protocol.md explains each divergence.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import type { CloseReason } from '../metrics/index.js';
import type { Dialect as DesignDialect } from '../server/design.js';

// ---- seeded randomness ---------------------------------------------------------------------------------------------

/** mulberry32: small, fast, and good enough to drive a fuzzer; the state is one uint32. */
export class Rng {
  private state: number;
  constructor(seed: number) { this.state = seed >>> 0 || 1; }
  /** An independent stream for worker `n` of a run seeded with `seed`. */
  static forWorker(seed: number, n: number): Rng { return new Rng((seed + Math.imul(n + 1, 0x9e3779b9)) >>> 0); }
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(lo: number, hi: number): number { return lo + Math.floor(this.next() * (hi - lo + 1)); }
  chance(p: number): boolean { return this.next() < p; }
  pick<T>(xs: readonly T[]): T { return xs[this.int(0, xs.length - 1)]!; }
  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = this.int(0, 255);
    return b;
  }
}

/** A fresh random seed, or WSLAB_FUZZ_SEED when set (to replay a failure). */
export const seedFromEnv = (): number => Number(process.env.WSLAB_FUZZ_SEED ?? randomBytes(4).readUInt32LE(0));

// ---- client frames --------------------------------------------------------------------------------------------------

export interface FrameSpec {
  opcode: number;
  payload?: Buffer;
  fin?: boolean;
  rsv?: number;          // 0..7
  masked?: boolean;
  lenForm?: 7 | 16 | 64; // default: minimal
  declared?: bigint;     // length field to write instead of payload.length
  key?: Buffer;
}

const FIXED_KEY = Buffer.from([0x37, 0xfa, 0x21, 0x3d]);

/** A client frame: masked unless told otherwise, with any length form or a lying length field. */
export function frame(f: FrameSpec): Buffer {
  const payload = f.payload ?? Buffer.alloc(0);
  const len = f.declared ?? BigInt(payload.length);
  const form = f.lenForm ?? (len < 126n ? 7 : len <= 0xffffn ? 16 : 64);
  const masked = f.masked ?? true;
  const head = [((f.fin ?? true) ? 0x80 : 0) | ((f.rsv ?? 0) << 4) | f.opcode];
  const m = masked ? 0x80 : 0;
  if (form === 7) head.push(m | Number(len));
  else if (form === 16) head.push(m | 126, Number(len >> 8n) & 0xff, Number(len) & 0xff);
  else {
    head.push(m | 127);
    for (let i = 7; i >= 0; i--) head.push(Number((len >> BigInt(8 * i)) & 0xffn));
  }
  if (!masked) return Buffer.concat([Buffer.from(head), payload]);
  const key = f.key ?? FIXED_KEY;
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i]! ^= key[i & 3]!;
  return Buffer.concat([Buffer.from(head), key, body]);
}

export const closePayload = (code: number, reason: Buffer = Buffer.alloc(0)): Buffer =>
  Buffer.concat([Buffer.from([code >> 8, code & 0xff]), reason]);

export const INVALID_UTF8 = [
  [0xff], [0xc0, 0x80], [0xc1, 0xbf], [0xe0, 0x80, 0x80], [0xed, 0xa0, 0x80], [0xf0, 0x80, 0x80, 0x80],
  [0xf4, 0x90, 0x80, 0x80], [0xf5, 0x80, 0x80, 0x80], [0x80], [0xce, 0x41], [0xe2, 0x82, 0x41], [0xf0, 0x9f, 0x98],
].map((b) => Buffer.from(b));

// ---- what each design must answer -----------------------------------------------------------------------------------

/** The first thing in a client's stream that RFC 6455 (or --max-payload) forbids. */
export const VIOLATIONS = Object.freeze([
  'rsv', 'bad_opcode', 'unmasked', 'control_fragmented', 'control_too_long', 'continuation_without_start',
  'data_inside_message', 'length_top_bit', 'too_big', 'invalid_utf8', 'close_one_byte', 'close_code', 'close_reason_utf8',
] as const);
export type Violation = (typeof VIOLATIONS)[number];

/**
 * What a server sends on the wire when a connection ends: a close frame with this status code (and no reason, unless
 * it echoes the client's), a close frame with no payload (`'empty'`), or no close frame at all, only the TCP end
 * (`'drop'`).
 */
export type Wire = number | 'empty' | 'drop';
export interface Answer { readonly wire: Wire; readonly reason: CloseReason }

/** How one design parses and answers: the expectation table plus the few parser details that change the outcome. */
export interface Dialect {
  readonly name: string;
  readonly answers: Readonly<Record<Violation, Answer>>;
  /** false: the mask bit is not checked and a 4-byte key is read after every header (uWS). */
  readonly maskRequired: boolean;
  /** Bytes a frame needs before any check runs: 2, or 6 (uWS waits for the shortest masked header). */
  readonly minHeader: number;
  /**
   * true: fragmentation state, control-frame length and a 1-byte close are checked on a frame's first two bytes, and
   * its length against the limit before the mask key arrives (ws); false: after the whole header incl. the key.
   */
  readonly early: boolean;
  /**
   * true: uWS's fragmentation state — a stack of two opcodes and the previous frame's FIN — instead of "in a message or
   * not": a new data frame is refused only when the previous frame had FIN clear and it is a text frame, or when the
   * stack is full; otherwise it nests, and its message is the fragments so far plus its own, with its own opcode.
   */
  readonly opStack: boolean;
  /** `protocol`: a 64-bit length with the top bit set is `length_top_bit`; `size`: just a length over the limit. */
  readonly topBit: 'protocol' | 'size';
  /** `message`: a fragmented message over the limit is caught on the declared length of the fragment that crosses
   * it; `frame`: each frame's declared length against the limit, the reassembled size once its payload arrived. */
  readonly limit: 'message' | 'frame';
  /** true: text is validated fragment by fragment as it arrives; false: once the message is complete. */
  readonly utf8FailFast: boolean;
  readonly closeCodeOk: (code: number) => boolean;
  /**
   * true: when the server drops a connection, replies it had not yet written are lost, so the client sees a prefix
   * of the expected replies (uWS corks the replies of one read and force-closes before the cork is flushed).
   */
  readonly dropLosesReplies: boolean;
  /** The close frame a valid client close is answered with (`code` undefined: the client sent no status code). */
  readonly echoClose: (code: number | undefined, reason: Buffer) => Wire | Buffer;
}

/** RFC 6455 §7.4: codes a peer may send (1000–1014 but 1004–1006, and the 3000–4999 registered/private range). */
export const RFC_CLOSE_OK = (c: number): boolean =>
  (c >= 1000 && c <= 1014 && c !== 1004 && c !== 1005 && c !== 1006) || (c >= 3000 && c <= 4999);

/** Answers that are close codes, counted as `too_big` for 1009 and `protocol_error` for the rest. */
const closeWith = (codes: Record<Violation, number>): Record<Violation, Answer> => Object.fromEntries(VIOLATIONS.map((v) =>
  [v, { wire: codes[v], reason: codes[v] === 1009 ? 'too_big' : 'protocol_error' }])) as Record<Violation, Answer>;

/** The RFC-preferred answer to each violation: what the native `threads` design does, and the goal for the others. */
export const RFC_CODES: Readonly<Record<Violation, number>> = Object.freeze({
  rsv: 1002, bad_opcode: 1002, unmasked: 1002, control_fragmented: 1002, control_too_long: 1002,
  continuation_without_start: 1002, data_inside_message: 1002, length_top_bit: 1002, too_big: 1009,
  invalid_utf8: 1007, close_one_byte: 1002, close_code: 1002, close_reason_utf8: 1007,
});

export const DIALECTS: Readonly<Record<'threads' | 'ws' | 'uws', Dialect>> = Object.freeze({
  /** native/src/connection.cc: the RFC table; a client close is answered with its status code only (1000 if none). */
  threads: {
    name: 'threads', answers: closeWith(RFC_CODES), maskRequired: true, minHeader: 2, early: false, opStack: false, topBit: 'protocol', limit: 'message',
    utf8FailFast: true, closeCodeOk: RFC_CLOSE_OK, dropLosesReplies: false, echoClose: (code) => code ?? 1000,
  },
  /**
   * ws 8: the RFC codes, except that a 64-bit length with the top bit set is refused as too big (1009, "payload
   * length > 2^53 - 1"); a client close is echoed with its code and reason, an empty one with an empty close frame.
   */
  ws: {
    name: 'ws', answers: closeWith({ ...RFC_CODES, length_top_bit: 1009 }), maskRequired: true, minHeader: 2, early: true, opStack: false, topBit: 'size',
    limit: 'message', utf8FailFast: false, closeCodeOk: RFC_CLOSE_OK, dropLosesReplies: false,
    echoClose: (code, reason) => (code === undefined ? 'empty' : closePayload(code, reason)),
  },
  /**
   * uWebSockets.js 20.30, measured on the wire (docs/protocol.md): every violation in a data or control frame header,
   * an oversize message and invalid UTF-8 end the TCP connection without a close frame; uWS reports them to JS as 1006,
   * with a message only for the last two (so the others count as `error`). The mask bit is not checked: an unmasked
   * frame is parsed as if masked, its first 4 payload bytes taken for the key. A close frame that is invalid (a 1-byte
   * payload, a code uWS does not accept — which includes 1012–1014 and 3000–3999 — or a reason that is not UTF-8) is
   * answered with an empty close frame; the 1-byte one reaches JS as 1005 (`normal`), the others as 1006 (`error`).
   * When it drops a connection, the replies to messages that arrived in the same read as the violation are lost. A
   * binary frame (or a text frame after a ping) inside a fragmented message is not refused but nests (`opStack`).
   */
  uws: {
    name: 'uws',
    answers: {
      ...Object.fromEntries(VIOLATIONS.map((v) => [v, { wire: 'drop', reason: 'error' }])) as Record<Violation, Answer>,
      too_big: { wire: 'drop', reason: 'too_big' },
      invalid_utf8: { wire: 'drop', reason: 'protocol_error' },
      close_one_byte: { wire: 'empty', reason: 'normal' },
      close_code: { wire: 'empty', reason: 'error' },
      close_reason_utf8: { wire: 'empty', reason: 'error' },
    },
    maskRequired: false, minHeader: 6, early: false, opStack: true, topBit: 'size', limit: 'frame', utf8FailFast: false, dropLosesReplies: true,
    closeCodeOk: (c) => !(c < 1000 || c > 4999 || (c > 1011 && c < 4000) || (c >= 1004 && c <= 1006)),
    echoClose: (code, reason) => (code === undefined ? 'empty' : closePayload(code, reason)),
  },
});

// ---- reference model ------------------------------------------------------------------------------------------------

export interface Expected { opcode: number; exact: Buffer }
/** How the connection must end: `open` (waiting for more bytes), or the server's wire answer and counted reason. */
export type Ending = 'open' | { wire: Wire | Buffer; reason: CloseReason; violation?: Violation };
export interface Outcome { expect: Expected[]; end: Ending; frames: number; messages: number; payloadBytes: number }

function cpu(n: number): string {
  let x = (0x9e3779b9 ^ n) >>> 0;
  for (let i = 0; i < n * 1000; i++) {
    x = (x ^ (x << 13)) >>> 0;
    x = (x ^ (x >>> 17)) >>> 0;
    x = (x ^ (x << 5)) >>> 0;
  }
  return x.toString(16).padStart(8, '0');
}

/** docs/protocol.md for one text request, byte for byte as server/protocol.ts answers it (ids may hold any UTF-8). */
export function reply(req: Buffer): Expected {
  const text = (s: string | Buffer, ...more: (string | Buffer)[]): Expected =>
    ({ opcode: 1, exact: Buffer.concat([s, ...more].map((x) => (typeof x === 'string' ? Buffer.from(x) : x))) });
  const sp = req.indexOf(0x20);
  const id = sp < 0 ? req : req.subarray(0, sp);
  if (id.length === 0 || id.length > 32) return text('- err bad_request missing or oversized request id');
  if (sp < 0) return text(id, ' err unknown_command missing command');
  const rest = req.subarray(sp + 1);
  const sp2 = rest.indexOf(0x20);
  const verb = (sp2 < 0 ? rest : rest.subarray(0, sp2)).toString('utf8');
  const arg = sp2 < 0 ? '' : rest.subarray(sp2 + 1).toString('latin1');
  const num = (max: number): number | undefined => (/^[0-9]{1,9}$/.test(arg) && Number(arg) <= max ? Number(arg) : undefined);
  const run = (max: number, result: (n: number) => string): Expected => {
    const n = num(max);
    return n === undefined ? text(id, ` err bad_argument ${verb} takes an integer 0-${max}`) : text(id, ' ok ', result(n));
  };
  switch (verb) {
    case 'echo': return text(id, ' ok ', sp2 < 0 ? Buffer.alloc(0) : rest.subarray(sp2 + 1));
    case 'wait': case 'block': return run(60000, String);
    case 'cpu': return run(1000000, cpu);
    case 'fill': return run(8388608, (n) => 'x'.repeat(n));
    default: return text(id, ' err unknown_command ', verb.slice(0, 32)); // a split surrogate pair encodes as U+FFFD
  }
}

const validUtf8 = (b: Buffer): boolean => {
  try { new TextDecoder('utf-8', { fatal: true }).decode(b); return true; } catch { return false; }
};

/**
 * What a server speaking `d` must answer to `stream` (all bytes a client sent on one connection after the handshake).
 * The threads dialect mirrors native/src/connection.cc check for check: first two bytes, then the whole header incl.
 * the mask key, the 64-bit length's top bit, continuation rules, the size limit on the declared length, then the
 * payload (text validated fail-fast, fragment by fragment). The other dialects differ where their flags say.
 */
export function simulate(stream: Buffer, maxPayload: number, d: Dialect): Outcome {
  const out: Outcome = { expect: [], end: 'open', frames: 0, messages: 0, payloadBytes: 0 };
  const fail = (v: Violation): Outcome => ({ ...out, end: { ...d.answers[v], violation: v } });
  let pos = 0;
  let msg: { opcode: number; parts: Buffer[]; size: number; utf8: TextDecoder } | undefined;
  const stack = { top: -1, ops: [0, 0], lastFin: true }; // d.opStack only
  for (;;) {
    if (stream.length - pos < d.minHeader) return out;
    const b0 = stream[pos]!, b1 = stream[pos + 1]!;
    const fin = (b0 & 0x80) !== 0, rsv = (b0 >> 4) & 7, op = b0 & 0x0f, masked = (b1 & 0x80) !== 0, len7 = b1 & 0x7f;
    const control = op >= 8;
    out.frames++;
    if (rsv !== 0) return fail('rsv');
    if (![0, 1, 2, 8, 9, 10].includes(op)) return fail('bad_opcode');
    if (control && !fin) return fail('control_fragmented');
    if (control && len7 > 125) return fail('control_too_long');
    if (d.maskRequired && !masked) return fail('unmasked');
    const continuation = (): Violation | undefined =>
      (op === 0 && !msg ? 'continuation_without_start' : op !== 0 && !control && msg ? 'data_inside_message' : undefined);
    if (d.early) {
      const v = continuation() ?? (op === 8 && len7 === 1 ? 'close_one_byte' : undefined);
      if (v) return fail(v);
    }
    const ext = len7 === 126 ? 2 : len7 === 127 ? 8 : 0;
    if (stream.length - pos < 2 + ext + (d.early ? 0 : 4)) return out;
    let len = BigInt(len7);
    if (ext === 2) len = BigInt(stream.readUInt16BE(pos + 2));
    if (ext === 8) len = stream.readBigUInt64BE(pos + 2);
    if (ext === 8 && len >> 63n && d.topBit === 'protocol') return fail('length_top_bit');
    if (d.opStack) {
      if (op !== 0) {
        if (stack.top === 1 || (!stack.lastFin && op < 2)) return fail('data_inside_message');
        stack.ops[++stack.top] = op;
      } else if (stack.top === -1) return fail('continuation_without_start');
      stack.lastFin = fin;
    } else if (!d.early) {
      const v = continuation();
      if (v) return fail(v);
    }
    if (!control) {
      const size = msg?.size ?? 0;
      if (d.limit === 'message' ? len > BigInt(maxPayload - size) : len > BigInt(maxPayload)) return fail('too_big');
    }
    if (stream.length - pos < 2 + ext + 4) return out;
    const key = stream.subarray(pos + 2 + ext, pos + 6 + ext);
    const start = pos + 6 + ext;
    const unmasked = (n: number): Buffer => {
      const p = Buffer.from(stream.subarray(start, start + n));
      for (let i = 0; i < n; i++) p[i]! ^= key[i & 3]!;
      return p;
    };
    if (control) {
      const n = Number(len);
      if (stream.length - start < n) return out;
      const p = unmasked(n);
      pos = start + n;
      if (op === 9) out.expect.push({ opcode: 10, exact: p });
      stack.top--;
      if (op !== 8) continue;
      if (n === 1) return fail('close_one_byte');
      const code = n >= 2 ? p.readUInt16BE(0) : undefined;
      if (code !== undefined && !d.closeCodeOk(code)) return fail('close_code');
      if (!validUtf8(p.subarray(2))) return fail('close_reason_utf8');
      return { ...out, end: { wire: d.echoClose(code, p.subarray(2)), reason: 'normal' } };
    }
    msg ??= { opcode: op, parts: [], size: 0, utf8: new TextDecoder('utf-8', { fatal: true }) };
    const n = Number(len);
    if (stream.length - start < n) return out;
    const p = unmasked(n);
    pos = start + n;
    msg.parts.push(p);
    msg.size += n;
    if (d.limit === 'frame' && msg.size > maxPayload) return fail('too_big');
    if (msg.opcode === 1 && d.utf8FailFast) {
      try { msg.utf8.decode(p, { stream: true }); } catch { return fail('invalid_utf8'); }
    }
    if (!fin) continue;
    if (d.opStack) msg.opcode = stack.ops[stack.top--]!;
    const body = Buffer.concat(msg.parts);
    if (msg.opcode === 1) {
      try { if (d.utf8FailFast) msg.utf8.decode(); else msg.utf8.decode(body); } catch { return fail('invalid_utf8'); }
    }
    out.messages++;
    out.payloadBytes += body.length;
    out.expect.push(msg.opcode === 2 ? { opcode: 2, exact: body } : reply(body));
    msg = undefined;
  }
}

// ---- generators -----------------------------------------------------------------------------------------------------

export interface FuzzOptions {
  /** The server's --max-payload, bytes. */
  readonly maxPayload: number;
  /**
   * Whether `wait` replies keep their place in the reply order: true for a thread design (it sleeps in the connection
   * thread); a loop design answers `wait` from a timer, after the replies that follow it, so its fuzz leaves it out.
   */
  readonly orderedWait: boolean;
}

/** Generates one connection's stream at a time from its own {@link Rng}. */
export class FrameFuzzer {
  constructor(readonly rng: Rng, readonly o: FuzzOptions) {}

  /** A masked frame with a key drawn from the seed. */
  frame(f: FrameSpec): Buffer { return frame({ key: this.rng.bytes(4), ...f }); }

  utf8Text(maxLen: number): Buffer {
    const r = this.rng;
    const parts: string[] = [];
    for (let i = r.int(0, maxLen); i > 0; i--) {
      parts.push(r.pick(['a', 'z', '0', ' ', '~', 'é', 'ß', '€', '中', '😀', '\u0000', '\u{10FFFF}', '\uFFFD']));
    }
    return Buffer.from(parts.join(''));
  }

  request(): Buffer {
    const r = this.rng;
    const id = r.chance(0.05) ? r.pick(['', ' ', 'x'.repeat(33), '\u00e9'.repeat(17)]) : String(r.int(0, 1e9));
    const verbs: (() => string | Buffer)[] = [
      () => Buffer.concat([Buffer.from(`${id} echo `), this.utf8Text(r.chance(0.01) ? 3000 : 40)]),
      () => `${id} echo`,
      () => `${id} cpu ${r.pick([0, 1, 2, 5, 20])}`,
      () => `${id} ${this.o.orderedWait ? r.pick(['wait', 'block']) : 'block'} ${r.pick(['0', '1', '00'])}`,
      () => `${id} fill ${r.pick([0, 1, 125, 126, 4000])}`,
      () => {
        const [verb, over] = r.pick([['wait', '60001'], ['block', '60001'], ['cpu', '1000001'], ['fill', '8388609']] as const);
        const arg = r.pick(['', '-1', '1e3', ' 5', '5 ', '99999999999', '0000000001', '000000001', over, 'x']);
        // '000000001' is a valid 1: a loop answers a valid `wait` out of order (see FuzzOptions.orderedWait).
        return `${id} ${verb === 'wait' && !this.o.orderedWait && /^\d{1,9}$/.test(arg) ? 'block' : verb} ${arg}`;
      },
      () => `${id} ${r.pick(['ECHO', 'sleep', '', 'echo\u00e9', 'v'.repeat(31) + '\u{1F600}', 'v'.repeat(30) + '\u{1F600}', '\u00e9'.repeat(40), '\u4e2d'.repeat(33)])} 1`,
      () => id,
    ];
    const out = r.pick(verbs)();
    return typeof out === 'string' ? Buffer.from(out) : out;
  }

  lenForm(n: number): 7 | 16 | 64 | undefined {
    if (!this.rng.chance(0.05)) return undefined; // minimal, usually; non-minimal forms are accepted (ws, uWS, native)
    return n < 126 ? this.rng.pick([16, 64] as const) : n <= 0xffff ? 64 : undefined;
  }

  /** One valid data message, maybe fragmented with pings (and unsolicited pongs) between its fragments. */
  message(): Buffer[] {
    const r = this.rng;
    const binary = r.chance(0.15);
    const big = Math.min(this.o.maxPayload, 70000);
    const payload = binary ? r.bytes(r.chance(0.002) ? r.int(big - 5000, big) : r.int(0, 200)) : this.request();
    const pieces = r.chance(0.2) ? r.int(2, 4) : 1;
    const cuts = Array.from({ length: pieces - 1 }, () => r.int(0, payload.length)).sort((a, b) => a - b);
    const out: Buffer[] = [];
    let at = 0;
    for (let i = 0; i < pieces; i++) {
      const end = i === pieces - 1 ? payload.length : cuts[i]!;
      const p = payload.subarray(at, end);
      at = end;
      out.push(this.frame({ opcode: i === 0 ? (binary ? 2 : 1) : 0, fin: i === pieces - 1, payload: p, lenForm: this.lenForm(p.length) }));
      if (i < pieces - 1 && r.chance(0.3)) out.push(this.frame({ opcode: r.chance(0.8) ? 9 : 10, payload: r.bytes(r.int(0, 125)) }));
    }
    return out;
  }

  /** One malformed thing (or a valid close); the model decides what it must cause. */
  malformed(): Buffer[] {
    const r = this.rng, max = this.o.maxPayload, f = (s: FrameSpec): Buffer => this.frame(s);
    const gens: (() => Buffer[])[] = [
      () => [frame({ opcode: r.pick([1, 2, 9]), payload: this.utf8Text(10), masked: false })],
      () => [f({ opcode: r.pick([0, 1, 2, 8, 9, 10]), payload: r.bytes(3), rsv: r.int(1, 7) })],
      () => [f({ opcode: r.pick([3, 4, 5, 6, 7, 11, 12, 13, 14, 15]), payload: r.bytes(r.int(0, 10)) })],
      () => [f({ opcode: r.pick([8, 9, 10]), payload: r.bytes(r.int(0, 10)), fin: false })],
      () => [f({ opcode: r.pick([8, 9, 10]), payload: r.bytes(r.int(126, 300)) })],
      () => [f({ opcode: 9, payload: r.bytes(r.int(0, 125)), lenForm: r.pick([16, 64] as const) })],
      () => [f({ opcode: 0, payload: Buffer.from('1 echo x') })],
      () => [f({ opcode: 1, fin: false, payload: Buffer.from('1 ec') }), f({ opcode: r.pick([1, 2]), payload: r.bytes(3) })],
      () => [f({ opcode: r.pick([1, 2]), lenForm: 64, declared: (1n << 63n) | BigInt(r.int(0, 1000)) })],
      () => [f({ opcode: r.pick([1, 2]), lenForm: 64, declared: BigInt(r.int(max + 1, 2 ** 40)) })],
      () => [f({ opcode: r.pick([1, 2]), lenForm: 64, declared: (1n << 62n) + BigInt(r.int(0, 1e6)) })],
      () => [f({ opcode: 2, fin: false, payload: r.bytes(max - 10) }), f({ opcode: 0, payload: r.bytes(11) })],
      () => [f({ opcode: 1, payload: Buffer.concat([Buffer.from('1 echo '), r.pick(INVALID_UTF8)]) })],
      () => { // invalid only across the fragment boundary, or left incomplete at the end
        const bad = r.pick(INVALID_UTF8), cut = r.int(0, bad.length);
        return [f({ opcode: 1, fin: false, payload: Buffer.concat([Buffer.from('1 echo '), bad.subarray(0, cut)]) }),
          f({ opcode: 0, payload: bad.subarray(cut) })];
      },
      () => [f({ opcode: 1, fin: false, payload: Buffer.from('1 echo \xe2\x82', 'latin1') }), f({ opcode: 0, payload: Buffer.alloc(0) })],
      () => [f({ opcode: 8, payload: r.bytes(1) })],
      () => [f({ opcode: 8, payload: closePayload(r.pick([0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535])) })],
      () => [f({ opcode: 8, payload: closePayload(r.pick([1000, 1001, 3000, 4999]), r.pick(INVALID_UTF8)) })],
      () => [f({ opcode: 8, payload: closePayload(r.pick([1000, 1001, 1002, 1003, 1007, 1011, 1014, 3000, 4000, 4999]), this.utf8Text(20).subarray(0, 100)) })],
      () => [f({ opcode: 8 })],
      () => { const x = f({ opcode: r.pick([1, 2, 8, 9]), payload: r.bytes(r.int(1, 300)).subarray(0, 125) }); return [x.subarray(0, r.int(1, x.length - 1))]; },
      () => [r.bytes(r.int(1, 64))],
    ];
    const out = r.pick(gens)();
    if (r.chance(0.2)) out.push(r.bytes(r.int(1, 200))); // trailing junk after the violation
    return out;
  }

  /** One pipelined batch: valid traffic, and when `last` the connection's ending (malformed, a close, or EOF). */
  batch(last: boolean): { kind: 'valid' | 'malformed' | 'close' | 'eof'; data: Buffer } {
    const r = this.rng;
    const chunks: Buffer[] = [];
    for (let i = r.int(1, 30); i > 0; i--) {
      if (r.chance(0.08)) chunks.push(this.frame({ opcode: r.chance(0.7) ? 9 : 10, payload: r.bytes(r.int(0, 125)) }));
      chunks.push(...this.message());
    }
    let kind: 'valid' | 'malformed' | 'close' | 'eof' = 'valid';
    if (last) {
      const x = r.next();
      if (x < 0.55) { kind = 'malformed'; chunks.push(...this.malformed()); }
      else if (x < 0.8) {
        kind = 'close';
        chunks.push(this.frame({ opcode: 8, payload: r.chance(0.2) ? undefined : closePayload(r.pick([1000, 1001, 3001, 4999]), this.utf8Text(10)) }));
      } else kind = 'eof';
    }
    return { kind, data: Buffer.concat(chunks) };
  }
}

// ---- raw client -----------------------------------------------------------------------------------------------------

export interface ServerFrame { fin: boolean; opcode: number; payload: Buffer }

/** A raw TCP client that reads server frames strictly, with a deadline on every wait. */
export class RawClient {
  private buf: Buffer = Buffer.alloc(0);
  private wake: (() => void) | undefined;
  closed = false;
  private constructor(readonly socket: net.Socket, private readonly timeoutMs: number) {
    socket.on('data', (d: Buffer) => { this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d; this.notify(); });
    socket.on('close', () => { this.closed = true; this.notify(); });
    socket.on('error', () => {}); // a reset after our close is fine; what matters is what we read before it
  }

  static async open(port: number, timeoutMs = 10_000): Promise<RawClient> {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.setNoDelay(true);
    await new Promise<void>((ok, ko) => socket.once('connect', ok).once('error', ko));
    const c = new RawClient(socket, timeoutMs);
    const key = randomBytes(16).toString('base64');
    socket.write(`GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    const head = await c.until(() => {
      const end = c.buf.indexOf('\r\n\r\n');
      if (end < 0) return undefined;
      const h = c.buf.subarray(0, end).toString('latin1');
      c.buf = c.buf.subarray(end + 4);
      return h;
    }, 'the 101 response');
    const accept = createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
    assert.match(head, /^HTTP\/1\.1 101 /);
    assert.match(head, new RegExp(`\r\nSec-WebSocket-Accept: ${accept.replace(/[+/]/g, '\\$&')}(\r\n|$)`, 'i'));
    return c;
  }

  private notify(): void { const w = this.wake; this.wake = undefined; w?.(); }

  private async until<T>(take: () => T | undefined, what: string): Promise<T> {
    const deadline = Date.now() + this.timeoutMs;
    for (;;) {
      const v = take();
      if (v !== undefined) return v;
      if (this.closed) throw new Error(`connection closed while waiting for ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((ok) => {
        const t = setTimeout(ok, left);
        this.wake = () => { clearTimeout(t); ok(); };
      });
    }
  }

  /** The next server frame; server frames must be unmasked with RSV 0. */
  frame(what = 'a frame'): Promise<ServerFrame> {
    return this.until(() => {
      const b = this.buf;
      if (b.length < 2) return undefined;
      assert.equal(b[1]! & 0x80, 0, 'server frames are not masked');
      assert.equal(b[0]! & 0x70, 0, 'server frames have RSV 0');
      const len7 = b[1]! & 0x7f, ext = len7 === 126 ? 2 : len7 === 127 ? 8 : 0;
      if (b.length < 2 + ext) return undefined;
      const len = ext === 2 ? b.readUInt16BE(2) : ext === 8 ? Number(b.readBigUInt64BE(2)) : len7;
      if (b.length < 2 + ext + len) return undefined;
      this.buf = b.subarray(2 + ext + len);
      return { fin: (b[0]! & 0x80) !== 0, opcode: b[0]! & 0x0f, payload: b.subarray(2 + ext, 2 + ext + len) };
    }, what);
  }

  /** Resolves true once bytes are waiting, false if the connection ended with none. */
  more(what: string): Promise<boolean> {
    return this.until(() => (this.buf.length > 0 ? true : this.closed ? false : undefined), what);
  }

  /** Resolves once the server has ended the TCP connection, with whatever it sent that was not read as a frame. */
  async ended(): Promise<Buffer> {
    await this.until(() => (this.closed ? true : undefined), 'the server to close the connection');
    return this.buf;
  }
}

// ---- one connection, checked ---------------------------------------------------------------------------------------

/** What a run caused, to compare with the server's counters. */
export interface Totals {
  connections: number;
  frames: number;
  messages: number;
  payloadBytes: number;
  closed: Partial<Record<CloseReason, number>>;
  /** Connections by how they ended on the wire: `close 1002`, `close empty`, `drop`, `eof`. */
  wire: Record<string, number>;
  violations: Partial<Record<Violation, number>>;
  /** Replies a dropped connection never delivered (dialects with `dropLosesReplies`). */
  lostReplies: number;
  cases: Record<string, number>;
}
export const newTotals = (): Totals =>
  ({ connections: 0, frames: 0, messages: 0, payloadBytes: 0, closed: {}, wire: {}, violations: {}, lostReplies: 0, cases: {} });
const bump = <K extends string>(r: Partial<Record<K, number>>, k: K, n = 1): void => { r[k] = (r[k] ?? 0) + n; };
export const wireLabel = (w: Wire | Buffer): string =>
  (w === 'drop' ? 'drop' : w === 'empty' ? 'close empty' : typeof w === 'number' ? `close ${w}` : `close ${w.readUInt16BE(0)}`);

/**
 * Reads the expected frames, then checks the ending: the close frame (or its absence) and the TCP end. With
 * `lossyDrop`, a connection the server drops may end after any prefix of the expected replies; returns how many
 * replies were lost that way.
 */
export async function checkOutcome(c: RawClient, o: Outcome, label: string, lossyDrop = false): Promise<number> {
  const dropped = lossyDrop && o.end !== 'open' && o.end.wire === 'drop';
  for (const [i, e] of o.expect.entries()) {
    const what = `reply ${i + 1}/${o.expect.length} (${label})`;
    if (dropped && !(await c.more(what))) {
      await c.ended();
      return o.expect.length - i;
    }
    const f = await c.frame(what);
    assert.equal(f.fin, true, 'replies are single unfragmented frames');
    assert.equal(f.opcode, e.opcode, `${label}: reply ${i} opcode`);
    assert.ok(f.payload.equals(e.exact), `${label}: reply ${i} ${JSON.stringify(f.payload.subarray(0, 80).toString())} != ${JSON.stringify(e.exact.subarray(0, 80).toString())}`);
  }
  if (o.end === 'open') return 0;
  const { wire } = o.end;
  const what = `${label}: ${o.end.violation ?? 'client close'} → ${wireLabel(wire)}`;
  if (wire !== 'drop') {
    const f = await c.frame(what);
    assert.equal(f.opcode, 8, `${what}: expected a close frame, got opcode ${f.opcode} ${f.payload.subarray(0, 60)}`);
    const want = wire === 'empty' ? Buffer.alloc(0) : typeof wire === 'number' ? closePayload(wire) : wire;
    assert.ok(f.payload.equals(want), `${what}: close payload ${f.payload.toString('hex')} != ${want.toString('hex')}`);
  }
  c.socket.end();
  const rest = await c.ended();
  assert.equal(rest.length, 0, `${what}: nothing after the close, got ${rest.subarray(0, 40).toString('hex')}`);
  return 0;
}

/**
 * One connection: a few pipelined batches of valid traffic, then maybe something malformed, then the end. Every
 * reply is checked byte for byte against the model as each batch is answered. Returns the frames it sent.
 */
export async function fuzzConnection(port: number, fz: FrameFuzzer, d: Dialect, t: Totals, seed: number): Promise<number> {
  const c = await RawClient.open(port);
  t.connections++;
  const sent: Buffer[] = [];
  let consumed = 0, frames = 0;
  const r = fz.rng;
  const batches = r.int(1, 4);
  try {
    for (let b = 0; b < batches; b++) {
      const last = b === batches - 1;
      const { kind, data } = fz.batch(last);
      sent.push(data);
      // Written in a few pieces so that the server's reads split frames anywhere.
      for (let at = 0; at < data.length;) {
        const n = r.chance(0.5) ? data.length - at : r.int(1, data.length - at);
        c.socket.write(data.subarray(at, at + n));
        at += n;
      }
      const all = simulate(Buffer.concat(sent), fz.o.maxPayload, d);
      const before = simulate(Buffer.concat(sent.slice(0, -1)), fz.o.maxPayload, d);
      const o: Outcome = { ...all, expect: all.expect.slice(consumed) };
      consumed = all.expect.length;
      bump(t.cases, kind);
      const ending = o.end === 'open' ? 'open' : `${o.end.violation ?? 'client close'} → ${wireLabel(o.end.wire)}`;
      t.lostReplies += await checkOutcome(c, o, `seed ${seed}, ${d.name}, ${kind}, expecting ${ending}`, d.dropLosesReplies);
      t.frames += all.frames - before.frames;
      frames += all.frames - before.frames;
      if (o.end !== 'open') {
        t.messages += all.messages; t.payloadBytes += all.payloadBytes;
        bump(t.closed, o.end.reason);
        bump(t.wire, wireLabel(o.end.wire));
        if (o.end.violation) bump(t.violations, o.end.violation);
        return frames;
      }
      if (last) {
        // Incomplete frame or clean boundary: the client half-closes; the server must end the TCP connection without a
        // close frame (the client never closed the WebSocket), counted as 'error'.
        c.socket.end();
        const rest = await c.ended();
        assert.equal(rest.length, 0, `seed ${seed}, ${d.name}: no frame after EOF, got ${rest.subarray(0, 40).toString('hex')}`);
        t.messages += all.messages; t.payloadBytes += all.payloadBytes;
        bump(t.closed, 'error');
        bump(t.wire, 'eof');
      }
    }
    return frames;
  } finally {
    c.socket.destroy();
  }
}

// ---- one of each ----------------------------------------------------------------------------------------------------

/** The largest message {@link ONE_OF_EACH} assumes (the server's --max-payload). */
export const ONE_OF_EACH_MAX_PAYLOAD = 1000;

/**
 * The per-design expectation table: one connection's bytes per violation (and a few client closes, valid or not), for
 * a 1000-byte --max-payload, and what each dialect answers — `<close code | empty | drop> <counted reason>`, measured
 * on the wire and explained in docs/protocol.md, after the kinds of the frames sent before it (`pong`, `text`,
 * `binary`); `open` = no ending (uWS reads the unmasked frame's payload as its mask key and waits for more; it lets a
 * data frame nest in a fragmented message), the client then ends the connection. The tests check both the servers and the
 * model against this table.
 */
export const ONE_OF_EACH: readonly (readonly [name: string, bytes: Buffer, expect: Readonly<Record<keyof typeof DIALECTS, string>>])[] = ([
  ['unmasked', [frame({ opcode: 1, payload: Buffer.from('1 echo x'), masked: false })], '1002 protocol_error', '1002 protocol_error', 'open error'],
  ['rsv1', [frame({ opcode: 1, payload: Buffer.from('1 echo x'), rsv: 4 })], '1002 protocol_error', '1002 protocol_error', 'drop error'],
  ['opcode 3', [frame({ opcode: 3 })], '1002 protocol_error', '1002 protocol_error', 'drop error'],
  ['opcode 11', [frame({ opcode: 11 })], '1002 protocol_error', '1002 protocol_error', 'drop error'],
  ['fragmented ping', [frame({ opcode: 9, fin: false })], '1002 protocol_error', '1002 protocol_error', 'drop error'],
  ['ping of 126 bytes', [frame({ opcode: 9, payload: Buffer.alloc(126) })], '1002 protocol_error', '1002 protocol_error', 'drop error'],
  ['continuation first', [frame({ opcode: 0, payload: Buffer.from('x') })], '1002 protocol_error', '1002 protocol_error', 'drop error'],
  ['text inside text', [frame({ opcode: 1, fin: false, payload: Buffer.from('1 ') }), frame({ opcode: 1 })], '1002 protocol_error', '1002 protocol_error', 'drop error'],
  ['binary inside text', [frame({ opcode: 1, fin: false, payload: Buffer.from('1 ec') }), frame({ opcode: 2, payload: Buffer.from([1, 2, 3]) })], '1002 protocol_error', '1002 protocol_error', 'binary open error'],
  ['text after a ping inside text', [frame({ opcode: 1, fin: false, payload: Buffer.from('1 ec') }), frame({ opcode: 9 }), frame({ opcode: 1, payload: Buffer.from('ho x') })], 'pong 1002 protocol_error', 'pong 1002 protocol_error', 'pong text open error'],
  ['64-bit length with top bit', [frame({ opcode: 2, lenForm: 64, declared: 1n << 63n })], '1002 protocol_error', '1009 too_big', 'drop too_big'],
  ['huge 64-bit length', [frame({ opcode: 2, lenForm: 64, declared: (1n << 62n) })], '1009 too_big', '1009 too_big', 'drop too_big'],
  ['over maxPayload', [frame({ opcode: 2, payload: Buffer.alloc(1001) })], '1009 too_big', '1009 too_big', 'drop too_big'],
  ['over maxPayload in fragments', [frame({ opcode: 2, fin: false, payload: Buffer.alloc(600) }), frame({ opcode: 0, payload: Buffer.alloc(401) })], '1009 too_big', '1009 too_big', 'drop too_big'],
  ['invalid UTF-8', [frame({ opcode: 1, payload: Buffer.from([0x31, 0x20, 0xff]) })], '1007 protocol_error', '1007 protocol_error', 'drop protocol_error'],
  ['UTF-8 cut at the end', [frame({ opcode: 1, fin: false, payload: Buffer.from('1 echo \xe2', 'latin1') }), frame({ opcode: 0 })], '1007 protocol_error', '1007 protocol_error', 'drop protocol_error'],
  ['surrogate', [frame({ opcode: 1, payload: Buffer.from([0x31, 0x20, 0xed, 0xa0, 0x80]) })], '1007 protocol_error', '1007 protocol_error', 'drop protocol_error'],
  ['close with 1 byte', [frame({ opcode: 8, payload: Buffer.from([3]) })], '1002 protocol_error', '1002 protocol_error', 'empty normal'],
  ['close 1005', [frame({ opcode: 8, payload: closePayload(1005) })], '1002 protocol_error', '1002 protocol_error', 'empty error'],
  ['close reason not UTF-8', [frame({ opcode: 8, payload: closePayload(1000, Buffer.from([0xc0, 0x80])) })], '1007 protocol_error', '1007 protocol_error', 'empty error'],
  ['close 1012', [frame({ opcode: 8, payload: closePayload(1012) })], '1012 normal', '1012 normal', 'empty error'],
  ['close 3001', [frame({ opcode: 8, payload: closePayload(3001) })], '3001 normal', '3001 normal', 'empty error'],
  ['close 1002 from the client', [frame({ opcode: 8, payload: closePayload(1002) })], '1002 normal', '1002 normal', '1002 normal'],
  ['close 4321 bye', [frame({ opcode: 8, payload: closePayload(4321, Buffer.from('bye')) })], '4321 normal', '4321 normal', '4321 normal'],
  ['close without code', [frame({ opcode: 8 })], '1000 normal', 'empty normal', 'empty normal'],
] as const).map(([name, frames, threads, ws, uws]) => [name, Buffer.concat(frames), { threads, ws, uws }] as const);

const KIND: Record<number, string> = { 1: 'text', 2: 'binary', 10: 'pong' };

/**
 * Plays one {@link ONE_OF_EACH} case and returns what the server did on the wire: the kinds of the frames before the
 * ending (`text`, `binary`, `pong`), then a close code, `empty`, `drop` or `open`.
 */
export async function answerTo(port: number, bytes: Buffer): Promise<string> {
  const c = await RawClient.open(port, 1000);
  const seen: string[] = [];
  try {
    c.socket.write(bytes);
    for (;;) {
      let f: ServerFrame;
      try {
        f = await c.frame();
      } catch (err) {
        if (!/^timed out|^connection closed/.test((err as Error).message)) throw err;
        seen.push(c.closed ? 'drop' : 'open');
        break;
      }
      if (f.opcode !== 8) { seen.push(KIND[f.opcode] ?? `opcode ${f.opcode}`); continue; }
      seen.push(f.payload.length === 0 ? 'empty' : String(f.payload.readUInt16BE(0)));
      break;
    }
    c.socket.end();
    await c.ended();
    return seen.join(' ');
  } finally {
    c.socket.destroy();
  }
}

/** The table's notation for a model outcome. */
export const notation = (o: Outcome): string => [...o.expect.map((e) => KIND[e.opcode]!), o.end === 'open' ? 'open error'
  : `${o.end.wire === 'drop' || o.end.wire === 'empty' ? o.end.wire : typeof o.end.wire === 'number' ? o.end.wire : o.end.wire.readUInt16BE(0)} ${o.end.reason}`].join(' ');

/** The model of a dialect a design speaks, by its trait (server/design.ts `Traits.dialect`; a cluster speaks its --inner design's). */
export function dialectFor(dialect: DesignDialect): Dialect {
  return DIALECTS[dialect];
}
